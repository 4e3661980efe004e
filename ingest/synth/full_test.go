package synth_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-privacy/custos/ingest/synth"
)

// fullEventsPerDay keeps the full-scenario tests quick: fewer events a day
// than the demo's million make per-actor volumes smaller and first-seen
// gaps likelier, so the guarantees are checked where they are hardest.
const fullEventsPerDay = 150_000

// week is the full scenario generated once: the decoded events that move
// or share data, the large queries, and event counts per department and
// day.
type week struct {
	g        *synth.Generator
	moving   []tev
	queries  []tev // queries of at least bulkThreshold records
	deptDay  map[string]map[string]int
	lastDay  time.Time
	statuses map[string]time.Time // subject -> earliest status time
}

var (
	weekOnce sync.Once
	theWeek  week
)

func fullWeek(t *testing.T) *week {
	t.Helper()
	if testing.Short() {
		t.Skip("generates eight days of events")
	}
	weekOnce.Do(func() {
		g, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Incidents: true, Events: synth.DefaultFullDays * fullEventsPerDay})
		if err != nil {
			panic(err)
		}
		c := g.Config()
		w := week{g: g, deptDay: map[string]map[string]int{}, statuses: map[string]time.Time{},
			lastDay: c.Start.Add(c.Duration - 24*time.Hour)}
		var buf []byte
		for {
			_, v, ok := g.Next(buf)
			if !ok {
				break
			}
			buf = v
			i := bytes.Index(v, []byte(`"time":"`))
			day := string(v[i+8 : i+18])
			if j := bytes.Index(v, []byte(`"department":"`)); j >= 0 {
				k := bytes.IndexByte(v[j+14:], '"')
				dept := string(v[j+14 : j+14+k])
				if w.deptDay[dept] == nil {
					w.deptDay[dept] = map[string]int{}
				}
				w.deptDay[dept][day]++
			}
			moving := bytes.Contains(v, []byte(`"action":"export"`)) || bytes.Contains(v, []byte(`"action":"download"`)) ||
				bytes.Contains(v, []byte(`"action":"transfer"`))
			query := bytes.Contains(v, []byte(`"action":"query"`))
			if !moving && !query {
				continue
			}
			var e tev
			if err := json.Unmarshal(v, &e); err != nil {
				panic(err)
			}
			switch {
			case moving:
				w.moving = append(w.moving, e)
			case e.records() >= bulkThreshold:
				w.queries = append(w.queries, e)
			}
		}
		for _, s := range g.SubjectStatuses() {
			if _, ok := w.statuses[string(s.Key)]; !ok {
				w.statuses[string(s.Key)] = s.Time
			}
		}
		theWeek = w
	})
	if theWeek.g == nil {
		t.Fatal("full scenario not generated")
	}
	return &theWeek
}

// partnerOf returns the registry entry with the id.
func partnerOf(f *synth.PartnerFile, id string) *synth.Partner {
	for i := range f.Partners {
		if f.Partners[i].ID == id {
			return &f.Partners[i]
		}
	}
	return nil
}

// gaps returns what the partner's best agreement does not cover of e:
// "" when one agreement covers it all, else the gaps of the agreement with
// the fewest, as a sorted comma list (category, use, channel, country,
// expired, not_yet_valid).
func gaps(p *synth.Partner, e *tev) string {
	best := "no_agreement"
	for _, a := range p.Agreements {
		var g []string
		for _, c := range e.Data.Categories {
			if !covers(a.Categories, c) {
				g = append(g, "category")
				break
			}
		}
		if !covers(a.Uses, e.Purpose) {
			g = append(g, "use")
		}
		if !slices.Contains(a.Channels, e.Channel.Kind) {
			g = append(g, "channel")
		}
		if !slices.Contains(a.Countries, e.Recipient.Country) {
			g = append(g, "country")
		}
		if e.Time.Before(a.ValidFrom.Time) {
			g = append(g, "not_yet_valid")
		}
		if !e.Time.Before(a.ValidTo.AddDate(0, 0, 1)) {
			g = append(g, "expired")
		}
		if len(g) == 0 {
			return ""
		}
		sort.Strings(g)
		if best == "no_agreement" || len(g) < strings.Count(best, ",")+1 {
			best = strings.Join(g, ",")
		}
	}
	return best
}

// policyBreaches returns the demo promises e breaks.
func policyBreaches(f *synth.PartnerFile, e *tev) []string {
	if e.Type != "share" || e.Recipient == nil || e.Recipient.Kind == "data_subject" || e.Recipient.Kind == "internal" {
		return nil
	}
	var out []string
	if covers([]string{"marketing.sale"}, e.Purpose) {
		out = append(out, synth.PromiseNoSale)
	}
	if slices.Contains(synth.Advertisers, e.Recipient.ID) && slices.ContainsFunc(e.Data.Categories, func(c string) bool {
		return covers([]string{"user.location.precise"}, c)
	}) {
		out = append(out, synth.PromiseNoPreciseLocationToAdvertisers)
	}
	if slices.ContainsFunc(e.Data.Categories, func(c string) bool { return covers([]string{"user.health_and_medical"}, c) }) {
		p := partnerOf(f, e.Recipient.ID)
		if p == nil || p.Kind != "processor" || gaps(p, e) != "" {
			out = append(out, synth.PromiseHealthOnlyToProcessors)
		}
	}
	if slices.Contains(e.Data.SubjectKinds, "child") {
		out = append(out, synth.PromiseNoChildrenData)
	}
	return out
}

func cleartext(e *tev) bool {
	return e.Channel != nil && (e.Channel.Kind == "ftp" || e.Channel.Kind == "http" || (e.Channel.Encrypted != nil && !*e.Channel.Encrypted))
}

func recipientKey(e *tev) string {
	if e.Recipient.ID != "" {
		return e.Recipient.ID
	}
	return e.Recipient.Domain
}

// TestFullIncidents: every incident of the full plan is in the stream on
// the last day, and its events show exactly what its kind says.
func TestFullIncidents(t *testing.T) {
	w := fullWeek(t)
	reg := w.g.Partners()
	byID := map[string]tev{}
	for _, e := range w.moving {
		byID[e.EventID] = e
	}
	for _, e := range w.queries {
		byID[e.EventID] = e
	}
	want := map[synth.IncidentKind]int{}
	for _, s := range synth.FullIncidentPlan(synth.DefaultFullDays) {
		want[s.Kind]++
	}
	got := map[synth.IncidentKind]int{}
	// What the learning days saw, for the first-seen kinds.
	seenDS, seenCat, seenCountry := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range w.moving {
		if e.Time.Before(w.lastDay) {
			seenDS[e.Actor.ID+" "+e.Source.System+"/"+e.Source.Dataset] = true
			if e.Type == "share" {
				seenCountry[e.Recipient.Country] = true
				for _, c := range e.Data.Categories {
					seenCat[recipientKey(&e)+" "+c] = true
				}
			}
		}
	}
	for _, inc := range w.g.Incidents() {
		got[inc.Kind]++
		t.Run(string(inc.Kind)+"/"+inc.Actor, func(t *testing.T) {
			if inc.Description == "" || inc.Actor == "" || len(inc.EventIDs) == 0 || inc.Start.Before(w.lastDay) {
				t.Fatalf("incomplete or early incident %+v", inc)
			}
			var evs []tev
			var sum int64
			for _, id := range inc.EventIDs {
				e, ok := byID[id]
				if !ok {
					t.Fatalf("event %s not in the stream", id)
				}
				if e.Actor.ID != inc.Actor {
					t.Fatalf("event %s by %s, want %s", id, e.Actor.ID, inc.Actor)
				}
				sum += e.records()
				evs = append(evs, e)
			}
			if sum != inc.Records || !evs[0].Time.Equal(inc.Start) && evs[0].Time.After(inc.Start) {
				t.Errorf("events carry %d records, incident says %d", sum, inc.Records)
			}
			last := evs[len(evs)-1]
			share := func() *tev {
				for i := range evs {
					if evs[i].Type == "share" {
						return &evs[i]
					}
				}
				t.Fatal("no share")
				return nil
			}
			p := func(e *tev) *synth.Partner {
				p := partnerOf(reg, e.Recipient.ID)
				if p == nil || !domainIn(p.Domains, e.Recipient.Domain) {
					t.Fatalf("recipient %s/%s not a registered partner", e.Recipient.ID, e.Recipient.Domain)
				}
				return p
			}
			switch inc.Kind {
			case synth.KindRecipientNotApproved:
				if st := p(share()).Status; st == "approved" {
					t.Errorf("partner status %s", st)
				}
			case synth.KindAgreementCategory, synth.KindAgreementUse, synth.KindAgreementChannel, synth.KindAgreementCountry,
				synth.KindAgreementExpired, synth.KindAgreementNotYetValid:
				e := share()
				pp := p(e)
				gap := strings.TrimPrefix(string(inc.Kind), "agreement_")
				if g := gaps(pp, e); pp.Status != "approved" || g != gap {
					t.Errorf("partner %s (%s): gaps %q, want %q", pp.ID, pp.Status, g, gap)
				}
			case synth.KindSubjectOptedOut, synth.KindSubjectClosed:
				e := share()
				if g := gaps(p(e), e); g != "" || len(inc.Subjects) == 0 {
					t.Errorf("gaps %q, %d subjects", g, len(inc.Subjects))
				}
				for _, sub := range inc.Subjects {
					at, ok := w.statuses[sub]
					if !ok || !at.Before(e.Time) || !slices.Contains(e.Data.Subjects, sub) {
						t.Errorf("subject %s: status at %s (%v), listed %v", sub, at, ok, slices.Contains(e.Data.Subjects, sub))
					}
				}
			case synth.KindCleartextChannel:
				if !cleartext(share()) {
					t.Error("channel is encrypted")
				}
			case synth.KindPolicyViolation:
				if b := policyBreaches(reg, share()); !slices.Contains(b, inc.Promise) || inc.Promise == "" {
					t.Errorf("breaches %v, promise %q", b, inc.Promise)
				}
			case synth.KindPartnerVolumeSpike:
				e := share()
				daily := map[string]int64{}
				for _, x := range w.moving {
					if x.Type == "share" && x.Recipient.ID == e.Recipient.ID && x.Time.Before(w.lastDay) {
						daily[x.Time.Format(time.DateOnly)] += x.records()
					}
				}
				if med := median(daily); float64(inc.Records) < 5*med || gaps(p(e), e) != "" {
					t.Errorf("%d records vs a median of %.0f a day", inc.Records, med)
				}
				checkUnderBulk(t, evs)
			case synth.KindExportBaseline:
				daily := map[string]int64{}
				for _, x := range w.moving {
					if x.Actor.ID == inc.Actor && x.Time.Before(w.lastDay) && x.Time.Weekday() != time.Saturday && x.Time.Weekday() != time.Sunday {
						daily[x.Time.Format(time.DateOnly)] += x.records()
					}
				}
				if med := median(daily); float64(inc.Records) < 5*med {
					t.Errorf("%d records vs a median of %.0f a day", inc.Records, med)
				}
				for _, e := range evs {
					if e.records() > 300 {
						t.Errorf("export of %d records", e.records())
					}
				}
				checkUnderBulk(t, evs)
			case synth.KindFirstSeenDataset:
				if seenDS[inc.Actor+" "+last.Source.System+"/"+last.Source.Dataset] {
					t.Error("dataset seen before")
				}
			case synth.KindFirstSeenCategory:
				e := share()
				fresh := false
				for _, c := range e.Data.Categories {
					fresh = fresh || !seenCat[recipientKey(e)+" "+c]
				}
				if !fresh || gaps(p(e), e) != "" {
					t.Error("no new category, or not within the agreement")
				}
			case synth.KindFirstSeenCountry:
				if e := share(); seenCountry[e.Recipient.Country] || gaps(p(e), e) != "" {
					t.Errorf("country %s seen before, or not within the agreement", e.Recipient.Country)
				}
			case synth.KindQueryThenShare:
				q, s := evs[0], share()
				if q.Action != "query" || q.records() < bulkThreshold || s.Time.Sub(q.Time) >= time.Hour || gaps(p(s), s) != "" {
					t.Errorf("query of %d records, share %s later", q.records(), s.Time.Sub(q.Time))
				}
			}
			t.Log(inc.Description)
		})
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d incidents, want %d", k, got[k], n)
		}
	}
}

func median(m map[string]int64) float64 {
	var xs []int64
	for _, x := range m {
		xs = append(xs, x)
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return float64(xs[len(xs)/2])
}

// checkUnderBulk fails when the events move bulkThreshold records in a
// sliding hour.
func checkUnderBulk(t *testing.T, evs []tev) {
	t.Helper()
	var sum int64
	j := 0
	for i := range evs {
		sum += evs[i].records()
		for evs[i].Time.Sub(evs[j].Time) >= bulkWindow {
			sum -= evs[j].records()
			j++
		}
		if sum >= bulkThreshold/4*3 {
			t.Fatalf("%d records within an hour", sum)
		}
	}
}

// TestFullNormalTrafficQuiet: outside the incidents, the full scenario
// gives none of the built-in detections a reason to fire.
func TestFullNormalTrafficQuiet(t *testing.T) {
	w := fullWeek(t)
	reg := w.g.Partners()
	inc := incidentIDs(w.g)
	seenDS, seenCat, seenCountry := map[string]bool{}, map[string]bool{}, map[string]bool{}
	type hour struct {
		actor string
		h     int64
	}
	perHour := map[hour]int64{}
	daily := map[string]map[string]int64{} // actor -> day -> records
	partnerDaily := map[string]map[string]int64{}
	lastShare := map[string]time.Time{}
	var shares, lastDayFirsts int
	for _, e := range w.moving {
		if _, ok := inc[e.EventID]; ok {
			continue
		}
		last := !e.Time.Before(w.lastDay)
		day := e.Time.Format(time.DateOnly)
		if e.Actor.ID != synth.ServiceNightlyBackup && e.Actor.ID != synth.ServiceDWHETL {
			perHour[hour{e.Actor.ID, e.Time.Unix() / 3600}] += e.records()
			if daily[e.Actor.ID] == nil {
				daily[e.Actor.ID] = map[string]int64{}
			}
			daily[e.Actor.ID][day] += e.records()
		}
		k := e.Actor.ID + " " + e.Source.System + "/" + e.Source.Dataset
		if last && !seenDS[k] {
			t.Errorf("first-seen dataset on the last day: %s (%s %s)", k, e.Action, e.Time)
			lastDayFirsts++
		}
		seenDS[k] = true
		for _, s := range e.Data.Subjects {
			if _, ok := w.statuses[s]; ok {
				t.Errorf("normal event %s lists subject %s of the subjects topic", e.EventID, s)
			}
		}
		if b := policyBreaches(reg, &e); b != nil {
			t.Errorf("normal event %s breaks %v", e.EventID, b)
		}
		if e.Type != "share" {
			continue
		}
		shares++
		lastShare[e.Actor.ID] = e.Time
		if cleartext(&e) {
			t.Errorf("normal share %s in clear text", e.EventID)
		}
		if last && !seenCountry[e.Recipient.Country] {
			t.Errorf("first share to %s on the last day", e.Recipient.Country)
		}
		seenCountry[e.Recipient.Country] = true
		for _, c := range e.Data.Categories {
			k := recipientKey(&e) + " " + c
			if last && !seenCat[k] {
				t.Errorf("first share of %s on the last day", k)
			}
			seenCat[k] = true
		}
		if e.Recipient.Kind == "data_subject" {
			continue
		}
		p := partnerOf(reg, e.Recipient.ID)
		if p == nil || p.Status != "approved" || !domainIn(p.Domains, e.Recipient.Domain) {
			t.Fatalf("normal share %s to %s/%s", e.EventID, e.Recipient.ID, e.Recipient.Domain)
		}
		if g := gaps(p, &e); g != "" {
			t.Errorf("normal share %s to %s: gaps %s", e.EventID, p.ID, g)
		}
		if partnerDaily[p.ID] == nil {
			partnerDaily[p.ID] = map[string]int64{}
		}
		partnerDaily[p.ID][day] += e.records()
	}
	if shares < 10_000 {
		t.Fatalf("only %d normal shares", shares)
	}
	for k, n := range perHour {
		if n > 2*4000+600 { // the hourly caps, plus the first day's habits
			t.Errorf("%s moved %d records in one clock hour", k.actor, n)
		}
	}
	// Sequences: no actor that queries in bulk shares anything within the
	// hour (it suffices that such actors never share at all).
	for _, q := range w.queries {
		if _, ok := inc[q.EventID]; ok {
			continue
		}
		if _, ok := lastShare[q.Actor.ID]; ok {
			t.Errorf("%s queries %d records and also shares", q.Actor.ID, q.records())
		}
	}
	// Baselines: the last day's volume stays within 3 times the learning
	// weekdays' median for every actor (floor 2,000 records) and partner.
	lastDay := w.lastDay.Format(time.DateOnly)
	check := func(what string, m map[string]map[string]int64, floor float64) {
		for k, days := range m {
			learn := map[string]int64{}
			for d, n := range days {
				if d < lastDay && !weekend(d) {
					learn[d] = n
				}
			}
			if med := max(median(learn), floor); float64(days[lastDay]) > 3*med {
				t.Errorf("%s %s: %d records on the last day, median %.0f", what, k, days[lastDay], med)
			}
		}
	}
	check("actor", daily, 2000)
	check("partner", partnerDaily, 2000)
	t.Logf("%d moving events, %d normal shares, %d bulk queries", len(w.moving), shares, len(w.queries))
}

func weekend(day string) bool {
	t, _ := time.Parse(time.DateOnly, day)
	return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday
}

// TestFullPeaks: the campaign day and the month-end close are in the
// period, and the departments concerned are 2-3 times busier than on
// their other weekdays.
func TestFullPeaks(t *testing.T) {
	w := fullWeek(t)
	peaks := w.g.Peaks()
	if len(peaks) != 2 {
		t.Fatalf("peaks %v", peaks)
	}
	for _, p := range peaks {
		for _, dept := range p.Departments {
			days := w.deptDay[dept]
			normal := map[string]int64{}
			for d, n := range days {
				if !weekend(d) && d != p.Day.Format(time.DateOnly) {
					normal[d] = int64(n)
				}
			}
			ratio := float64(days[p.Day.Format(time.DateOnly)]) / median(normal)
			t.Logf("%s %s: %s %.2fx", p.Day.Format(time.DateOnly), p.Name, dept, ratio)
			if ratio < 2 || ratio > 3 {
				t.Errorf("%s on %s: %.2f times its usual weekday", dept, p.Name, ratio)
			}
		}
	}
	// A weekly rhythm: weekends are much quieter for office departments.
	if hr := w.deptDay["people"]; hr["2026-02-28"]*5 > hr["2026-02-24"] {
		t.Errorf("people: %d events on Saturday, %d on Tuesday", hr["2026-02-28"], hr["2026-02-24"])
	}
}

func TestScenarioConfig(t *testing.T) {
	for _, s := range []string{"", "foundation", "full"} {
		if _, err := synth.ParseScenario(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, err := synth.ParseScenario("fool"); err == nil {
		t.Error("fool parsed")
	}
	full := synth.Config{Scenario: synth.ScenarioFull, Incidents: true}
	cases := []struct {
		name string
		cfg  synth.Config
		want string
	}{
		{"full defaults", full, ""},
		{"full without incidents", synth.Config{Scenario: synth.ScenarioFull}, ""},
		{"full one day", synth.Config{Scenario: synth.ScenarioFull, Duration: 24 * time.Hour}, "at least 48h"},
		{"unknown scenario", synth.Config{Scenario: "party"}, "scenario"},
		{"agreement already valid", func() synth.Config { c := full; c.Start = time.Date(2027, 9, 6, 0, 0, 0, 0, time.UTC); return c }(), "has begun"},
		{"agreement not over", func() synth.Config { c := full; c.Start = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC); return c }(), "is not over"},
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
	g, err := synth.New(synth.Config{Scenario: synth.ScenarioFull, Incidents: true, Events: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c := g.Config()
	if !c.Start.Equal(synth.DefaultFullStart) || c.Duration != 8*24*time.Hour || len(g.Incidents()) != len(synth.FullIncidentPlan(8)) {
		t.Fatalf("full defaults: %s, %s, %d incidents", c.Start, c.Duration, len(g.Incidents()))
	}
	if c.Start.Add(c.Duration-24*time.Hour) != synth.DefaultStart {
		t.Fatal("the full scenario's last day is not the foundation's day")
	}
}
