package synth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/custos-privacy/custos/ingest/synth"
)

var update = flag.Bool("update", false, "rewrite deploy/demo/partners.yml")

// Demo thresholds the normal traffic must stay under.
const (
	bulkThreshold = 10_000
	bulkWindow    = time.Hour
)

// tev is the part of an event the tests look at.
type tev struct {
	EventID string    `json:"event_id"`
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Action  string    `json:"action"`
	Actor   struct {
		ID         string `json:"id"`
		Kind       string `json:"kind"`
		Role       string `json:"role"`
		Department string `json:"department"`
	} `json:"actor"`
	Source struct {
		System  string `json:"system"`
		Dataset string `json:"dataset"`
	} `json:"source"`
	Data struct {
		Categories   []string `json:"categories"`
		Records      *int64   `json:"records"`
		Subjects     []string `json:"subjects"`
		SubjectKinds []string `json:"subject_kinds"`
	} `json:"data"`
	Recipient *struct {
		ID      string `json:"id"`
		Domain  string `json:"domain"`
		Country string `json:"country"`
		Kind    string `json:"kind"`
	} `json:"recipient"`
	Channel *struct {
		Kind      string `json:"kind"`
		Encrypted *bool  `json:"encrypted"`
	} `json:"channel"`
	Purpose string `json:"purpose"`
	Outcome string `json:"outcome"`
	Request struct {
		Ticket string `json:"ticket"`
	} `json:"request"`
}

func (e *tev) records() int64 {
	if e.Data.Records == nil {
		return 0
	}
	return *e.Data.Records
}

// day is the demo's default day, generated once: the key of every event,
// and the decoded events that move data or share it (the others are only
// counted).
type day struct {
	g       *synth.Generator
	keys    map[string]int
	total   int
	bytes   int
	moving  []tev
	sampled []tev // every 50th event, whatever it is
}

var (
	dayOnce sync.Once
	theDay  day
)

func demoDay(t *testing.T) *day {
	t.Helper()
	if testing.Short() {
		t.Skip("generates a full day of events")
	}
	dayOnce.Do(func() {
		g, err := synth.New(synth.Config{Incidents: true})
		if err != nil {
			panic(err)
		}
		d := day{g: g, keys: map[string]int{}}
		var buf []byte
		for {
			k, v, ok := g.Next(buf)
			if !ok {
				break
			}
			buf = v
			d.keys[string(k)]++
			d.total++
			d.bytes += len(v)
			moving := bytes.Contains(v, []byte(`"action":"export"`)) || bytes.Contains(v, []byte(`"action":"download"`)) ||
				bytes.Contains(v, []byte(`"action":"transfer"`))
			if moving || d.total%50 == 0 {
				var e tev
				if err := json.Unmarshal(v, &e); err != nil {
					panic(err)
				}
				if moving {
					d.moving = append(d.moving, e)
				}
				if d.total%50 == 0 {
					d.sampled = append(d.sampled, e)
				}
			}
		}
		theDay = d
	})
	if theDay.g == nil {
		t.Fatal("demo day not generated")
	}
	return &theDay
}

func incidentIDs(g *synth.Generator) map[string]synth.Incident {
	m := map[string]synth.Incident{}
	for _, inc := range g.Incidents() {
		for _, id := range inc.EventIDs {
			m[id] = inc
		}
	}
	return m
}

func digest(t *testing.T, c synth.Config, n int) [32]byte {
	t.Helper()
	g, err := synth.New(c)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var buf []byte
	for i := 0; i < n; i++ {
		k, v, ok := g.Next(buf)
		if !ok {
			break
		}
		buf = v
		h.Write(k)
		h.Write(v)
	}
	var p bytes.Buffer
	if err := g.WritePartners(&p); err != nil {
		t.Fatal(err)
	}
	h.Write(p.Bytes())
	for _, s := range g.SubjectStatuses() {
		h.Write(s.Value)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func TestDeterministic(t *testing.T) {
	c := synth.Config{Seed: 7, Events: 30_000, Incidents: true}
	a, b := digest(t, c, 1<<30), digest(t, c, 1<<30)
	if a != b {
		t.Fatal("same config gave different streams")
	}
	c.Seed = 8
	if digest(t, c, 1<<30) == a {
		t.Fatal("different seeds gave the same stream")
	}
	full := synth.Config{Scenario: synth.ScenarioFull, Seed: 7, Events: 40_000, Incidents: true}
	if first, second := digest(t, full, 1<<30), digest(t, full, 1<<30); first != second {
		t.Fatal("same full config gave different streams")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  synth.Config
		want string // substring of the error, "" for none
	}{
		{"defaults", synth.Config{}, ""},
		{"with incidents", synth.Config{Incidents: true}, ""},
		{"short day drops late incidents", synth.Config{Incidents: true, Duration: 12 * time.Hour}, ""},
		{"few employees", synth.Config{Employees: 5}, "employees 5"},
		{"few services", synth.Config{Services: 3}, "services 3"},
		{"negative events", synth.Config{Events: -1}, "events -1"},
		{"tiny duration", synth.Config{Duration: time.Second}, "duration"},
		{"unknown incident", synth.Config{Incidents: true, IncidentPlan: []synth.IncidentSpec{{Kind: "alien"}}}, "unknown kind"},
		{"incident outside", synth.Config{Incidents: true, IncidentPlan: []synth.IncidentSpec{{Kind: synth.KindBulkExport, At: 30 * time.Hour}}}, "outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOrderAndUniqueIDs(t *testing.T) {
	g, err := synth.New(synth.Config{Events: 100_000, Incidents: true, Duration: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, g.Total())
	var last time.Time
	var buf []byte
	n := 0
	end := g.Config().Start.Add(g.Config().Duration)
	for {
		k, v, ok := g.Next(buf)
		if !ok {
			break
		}
		buf = v
		n++
		var e tev
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatalf("event %d: %v\n%s", n, err, v)
		}
		if e.Time.Before(last) {
			t.Fatalf("event %d at %s before previous %s", n, e.Time, last)
		}
		if e.Time.Before(g.Config().Start) || !e.Time.Before(end) {
			t.Fatalf("event %d at %s outside the period", n, e.Time)
		}
		last = e.Time
		if seen[e.EventID] {
			t.Fatalf("duplicate event id %s", e.EventID)
		}
		seen[e.EventID] = true
		if string(k) != e.Actor.ID {
			t.Fatalf("key %q, actor %q", k, e.Actor.ID)
		}
	}
	if n != g.Total() || n != g.Emitted() {
		t.Fatalf("yielded %d, Total %d, Emitted %d", n, g.Total(), g.Emitted())
	}
	if n < 100_000 {
		t.Fatalf("only %d events", n)
	}
}

// TestNormalTrafficUnderThreshold: apart from the incidents and the two
// excepted batch services, no actor moves 10,000 records in any sliding
// hour; users stay at a few thousand.
func TestNormalTrafficUnderThreshold(t *testing.T) {
	d := demoDay(t)
	inc := incidentIDs(d.g)
	per := map[string][]tev{}
	for _, e := range d.moving {
		if _, ok := inc[e.EventID]; ok {
			continue
		}
		per[e.Actor.ID] = append(per[e.Actor.ID], e)
	}
	var batch int64
	for actor, es := range per {
		maxSum, sum, j := int64(0), int64(0), 0
		for i := range es {
			sum += es[i].records()
			for es[i].Time.Sub(es[j].Time) >= bulkWindow {
				sum -= es[j].records()
				j++
			}
			maxSum = max(maxSum, sum)
		}
		switch {
		case actor == synth.ServiceNightlyBackup || actor == synth.ServiceDWHETL:
			if maxSum < 100_000 {
				t.Errorf("%s moved only %d records in its busiest hour", actor, maxSum)
			}
			batch += maxSum
		case es[0].Actor.Kind == "user" && maxSum > 4000:
			t.Errorf("user %s moved %d records in one sliding hour", actor, maxSum)
		case maxSum >= bulkThreshold:
			t.Errorf("%s moved %d records in one sliding hour", actor, maxSum)
		}
	}
	if batch < 5_000_000 {
		t.Errorf("nightly batch jobs moved %d records, want millions", batch)
	}
}

// covers reports whether a dotted name is in list or below one of it.
func covers(list []string, name string) bool {
	for _, l := range list {
		if name == l || strings.HasPrefix(name, l+".") {
			return true
		}
	}
	return false
}

func domainIn(domains []string, d string) bool {
	for _, x := range domains {
		if d == x || strings.HasSuffix(d, "."+x) {
			return true
		}
	}
	return false
}

// TestSharesWithinAgreements: every normal share goes to the data subject
// or to an approved partner's domain within a valid agreement covering its
// categories, use, channel and country; incident shares go to domains no
// partner lists.
func TestSharesWithinAgreements(t *testing.T) {
	d := demoDay(t)
	inc := incidentIDs(d.g)
	reg := d.g.Partners()
	var toSubject, toPartner int
	for _, e := range d.moving {
		if e.Type != "share" {
			continue
		}
		if e.Recipient == nil || e.Channel == nil {
			t.Fatalf("share %s without recipient or channel", e.EventID)
		}
		if i, ok := inc[e.EventID]; ok {
			for _, p := range reg.Partners {
				if domainIn(p.Domains, e.Recipient.Domain) {
					t.Errorf("incident %s shares to registered domain %s", i.Kind, e.Recipient.Domain)
				}
			}
			continue
		}
		if e.Channel.Encrypted == nil || !*e.Channel.Encrypted {
			t.Errorf("share %s over a clear-text channel", e.EventID)
		}
		if e.Recipient.Kind == "data_subject" {
			toSubject++
			if e.Channel.Kind != "email" || len(e.Data.Subjects) != 1 || e.records() != 1 {
				t.Errorf("share to subject %s: channel %s, %d subjects", e.EventID, e.Channel.Kind, len(e.Data.Subjects))
			}
			continue
		}
		toPartner++
		ok := false
		for _, p := range reg.Partners {
			if p.Status != "approved" || p.ID != e.Recipient.ID || !domainIn(p.Domains, e.Recipient.Domain) || p.Kind != e.Recipient.Kind {
				continue
			}
			for _, a := range p.Agreements {
				if e.Time.Before(a.ValidFrom.Time) || !e.Time.Before(a.ValidTo.AddDate(0, 0, 1)) ||
					!covers(a.Uses, e.Purpose) || !slices.Contains(a.Channels, e.Channel.Kind) ||
					!slices.Contains(a.Countries, e.Recipient.Country) {
					continue
				}
				all := true
				for _, c := range e.Data.Categories {
					all = all && covers(a.Categories, c)
				}
				ok = ok || all
			}
		}
		if !ok {
			t.Errorf("share %s to %s (%s) not within any agreement: %+v", e.EventID, e.Recipient.Domain, e.Recipient.ID, e)
		}
	}
	if toSubject < 1000 || toPartner < 1000 {
		t.Errorf("shares: %d to data subjects, %d to partners; want plenty of both", toSubject, toPartner)
	}
}

// TestIncidents: the default plan's incidents are in the stream with the
// stated volumes.
func TestIncidents(t *testing.T) {
	d := demoDay(t)
	incs := d.g.Incidents()
	kinds := map[synth.IncidentKind]int{}
	byID := map[string]tev{}
	for _, e := range d.moving {
		byID[e.EventID] = e
	}
	for _, inc := range incs {
		kinds[inc.Kind]++
		if inc.Description == "" || inc.Actor == "" || len(inc.EventIDs) == 0 {
			t.Fatalf("incomplete incident %+v", inc)
		}
		var sum int64
		for _, id := range inc.EventIDs {
			e, ok := byID[id]
			if !ok {
				t.Fatalf("%s: event %s not in the stream", inc.Kind, id)
			}
			if e.Actor.ID != inc.Actor || e.Actor.Kind != "user" {
				t.Fatalf("%s: event %s by %s (%s), want %s", inc.Kind, id, e.Actor.ID, e.Actor.Kind, inc.Actor)
			}
			sum += e.records()
		}
		if sum != inc.Records {
			t.Errorf("%s: events carry %d records, incident says %d", inc.Kind, sum, inc.Records)
		}
		switch inc.Kind {
		case synth.KindBulkExport:
			if inc.Records < 2*bulkThreshold || inc.End.Sub(inc.Start) >= bulkWindow {
				t.Errorf("bulk export of %d records over %s", inc.Records, inc.End.Sub(inc.Start))
			}
		case synth.KindUnknownRecipient:
			if inc.Records >= bulkThreshold || inc.Domain == "" {
				t.Errorf("unknown recipient incident: %d records to %q", inc.Records, inc.Domain)
			}
		}
		t.Log(inc.Description)
	}
	if kinds[synth.KindBulkExport] != 2 || kinds[synth.KindUnknownRecipient] != 2 {
		t.Fatalf("incident kinds %v", kinds)
	}
}

// TestSkewAndSize: keys are skewed (services emit most events, one about
// a third) and events average about 600 bytes.
func TestSkewAndSize(t *testing.T) {
	d := demoDay(t)
	type kv struct {
		k string
		n int
	}
	var all []kv
	services := 0
	for k, n := range d.keys {
		all = append(all, kv{k, n})
		if strings.HasPrefix(k, "svc-") {
			services += n
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	top := float64(all[0].n) / float64(d.total)
	svc := float64(services) / float64(d.total)
	avg := d.bytes / d.total
	t.Logf("%d events, %d actors, top %s %.1f%%, services %.1f%%, %d B/event", d.total, len(all), all[0].k, 100*top, 100*svc, avg)
	if all[0].k != "svc-app-backend" || top < 0.25 || top > 0.40 {
		t.Errorf("top actor %s with %.1f%%", all[0].k, 100*top)
	}
	if svc < 0.5 || svc > 0.8 {
		t.Errorf("services emit %.1f%%", 100*svc)
	}
	if len(all) < 400 {
		t.Errorf("only %d actors", len(all))
	}
	if avg < 500 || avg > 700 {
		t.Errorf("average event %d B", avg)
	}
}

// TestDailyRhythm: working hours are busier than the night, and users act
// mostly in working hours.
func TestDailyRhythm(t *testing.T) {
	d := demoDay(t)
	var hours [24]int
	var userNight, users int
	for _, e := range d.sampled {
		h := e.Time.Hour()
		hours[h]++
		if e.Actor.Kind == "user" {
			users++
			if h < 5 {
				userNight++
			}
		}
	}
	if hours[14] < 2*hours[3] {
		t.Errorf("14:00 has %d events, 03:00 %d", hours[14], hours[3])
	}
	if users == 0 || float64(userNight)/float64(users) > 0.05 {
		t.Errorf("%d of %d user events between 00:00 and 05:00", userNight, users)
	}
}

func TestPartnersFile(t *testing.T) {
	g, err := synth.New(synth.Config{Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := g.WritePartners(&buf); err != nil {
		t.Fatal(err)
	}
	var back synth.PartnerFile
	if err := yaml.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("registry does not parse: %v", err)
	}
	if len(back.Partners) < 12 {
		t.Fatalf("%d partners", len(back.Partners))
	}
	for i, p := range back.Partners {
		want := g.Partners().Partners[i]
		if p.ID != want.ID || p.Status != want.Status || len(p.Agreements) != len(want.Agreements) ||
			(len(p.Agreements) > 0 && !p.Agreements[0].ValidTo.Equal(want.Agreements[0].ValidTo.Time)) {
			t.Fatalf("partner %d round-trips as %+v, want %+v", i, p, want)
		}
	}
	const golden = "../../deploy/demo/partners.yml"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./ingest/synth -run PartnersFile -update)", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("%s is stale: run go test ./ingest/synth -run PartnersFile -update", golden)
	}
}

func TestSubjectStatuses(t *testing.T) {
	g, err := synth.New(synth.Config{Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	subs := g.SubjectStatuses()
	if len(subs) < 100 {
		t.Fatalf("%d subject statuses", len(subs))
	}
	for i, s := range subs {
		var m struct {
			Subject string    `json:"subject"`
			Time    time.Time `json:"time"`
			Status  string    `json:"status"`
			Uses    []string  `json:"uses"`
		}
		if err := json.Unmarshal(s.Value, &m); err != nil {
			t.Fatalf("status %d: %v: %s", i, err, s.Value)
		}
		if m.Subject != string(s.Key) || !m.Time.Equal(s.Time) || m.Uses == nil {
			t.Fatalf("status %d: %s", i, s.Value)
		}
		if i > 0 && s.Time.Before(subs[i-1].Time) {
			t.Fatalf("status %d out of order", i)
		}
	}
}
