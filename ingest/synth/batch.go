package synth

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// batchJobs schedules the nightly legitimate batch exports of every
// simulated day: svc-dwh-etl loads about 360,000 records into the
// warehouse between 01:00 and 02:00 UTC, and svc-nightly-backup exports
// about 6 million records to the backup vault between 02:00 and 03:00 UTC.
// Both exceed the bulk-export threshold by design; the demo rules carry an
// exception for each.
func (w *world) batchJobs(c Config) []*ev {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0xba7c4))
	start, end := c.Start.UnixNano(), c.Start.Add(c.Duration).UnixNano()
	var out []*ev
	add := func(a *actor, t int64, ds *dataset, records int64, purpose string, attrs []byte) {
		if t < start || t >= end {
			return
		}
		e := &ev{
			t: t, actor: a, typ: "access", action: "export", ds: ds, catJSON: ds.catJSON[0],
			records: records, bytes: records * ds.recBytes, skind: ds.skind, enc: 1, chKind: "s3",
			purpose: purpose, legal: "legitimate_interests", schema: true, reqID: rng.Uint64() | 1,
			outcome: "success", attrs: attrs,
		}
		out = append(out, e)
	}
	etl, backup := w.service(ServiceDWHETL), w.service(ServiceNightlyBackup)
	etlSources := []*dataset{
		w.dataset("app-db", "users"), w.dataset("billing", "invoices"), w.dataset("crm", "contacts"),
		w.dataset("analytics", "events"), w.dataset("app-db", "addresses"), w.dataset("billing", "subscriptions"),
		w.dataset("support-desk", "tickets"), w.dataset("identity", "accounts"),
	}
	var backupSources []*dataset
	for _, s := range datasetSpecs {
		if s.backup > 0 {
			backupSources = append(backupSources, w.dataset(s.system, s.name))
		}
	}
	for day := c.Start.Truncate(24 * time.Hour); day.UnixNano() < end; day = day.Add(24 * time.Hour) {
		date := day.Format("2006-01-02")
		etlAttrs := []byte(`"attributes":{"job":"dwh-etl","run":"` + date + `","destination":"dwh.staging"}`)
		t := day.Add(time.Hour).UnixNano()
		for i := range 24 {
			ds := etlSources[i%len(etlSources)]
			add(etl, t+int64(i)*int64(150*time.Second)+rng.Int64N(int64(20*time.Second)),
				ds, 8000+rng.Int64N(14000), "analytics.reporting", etlAttrs)
		}
		backupAttrs := []byte(`"attributes":{"job":"nightly-backup","run":"` + date + `","destination":"s3://backup-vault-eu/` + date + `/"}`)
		t = day.Add(2 * time.Hour).UnixNano()
		i := 0
		for _, ds := range backupSources {
			for left := ds.backup; left > 0; left -= 500_000 {
				add(backup, t+int64(i)*int64(3*time.Minute)+rng.Int64N(int64(30*time.Second)),
					ds, min(left, 500_000), "functional.storage", backupAttrs)
				i++
			}
		}
	}
	for n, e := range out {
		e.idHi, e.idLo = specialID(w.seed, 1<<20+n) // apart from incident ids
	}
	return out
}

// subjectStatuses returns the subject status changes of the period, about
// 150 a day, for subjects drawn from a reserved range of customer ids that
// normal traffic never shares.
func (w *world) subjectStatuses(c Config) []SubjectMessage {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), 0x5b1ec7))
	n := max(20, int(150*c.Duration/(24*time.Hour)))
	times := make([]int64, n)
	for i := range times {
		times[i] = c.Start.UnixNano() + rng.Int64N(int64(c.Duration))/1e6*1e6 // whole ms
	}
	slices.Sort(times)
	out := make([]SubjectMessage, 0, n)
	for _, t := range times {
		id := int32(w.customers + rng.IntN(100_000))
		key := appendSubject(nil, "cust-", id)
		key = key[1 : len(key)-1]
		var status, uses string
		switch x := rng.IntN(100); {
		case x < 50:
			status, uses = "opted_out", `["marketing.advertising.third_party","marketing.communications.email"]`
		case x < 65:
			status, uses = "opted_out", `[]`
		case x < 80:
			status, uses = "opted_in", `["marketing.communications.email"]`
		default:
			status, uses = "closed", `[]`
		}
		v := []byte(`{"subject":"`)
		v = append(v, key...)
		v = append(v, `","time":"`...)
		v = appendTime(v, t)
		v = append(v, `","status":"`+status+`","uses":`+uses+`}`...)
		out = append(out, SubjectMessage{Time: time.Unix(0, t).UTC(), Key: key, Value: v})
	}
	return out
}

// String returns a short description of the incident.
func (i Incident) String() string {
	return string(i.Kind) + " by " + i.Actor + " (" + strconv.Itoa(len(i.EventIDs)) + " events, " +
		strconv.FormatInt(i.Records, 10) + " records) at " + i.Start.Format(time.RFC3339)
}
