package synth

import (
	"slices"
	"time"
)

// Peak is a seasonal peak day of the full scenario: the actors (employees
// and service accounts) of some departments work at Factor times their
// usual volume, on top of everyone else's normal day.
type Peak struct {
	// Day is the day's midnight UTC.
	Day time.Time
	// Name says what happens, e.g. "month-end close".
	Name string
	// Factor multiplies the departments' events that day (2.5).
	Factor float64
	// Departments are the departments whose actors are busier.
	Departments []string
}

// PeakFactor is how much busier a department is on its peak day: within
// the 2-3x that a baseline rule comparing an actor with its peers must
// tolerate.
const PeakFactor = 2.5

// peakDays returns the peaks of the period: the month-end close (the last
// weekday of a month, finance) and the campaign day (the last Thursday of
// a month, marketing). A day that is both counts once, with both
// departments.
func peakDays(c Config) []Peak {
	var out []Peak
	end := c.Start.Add(c.Duration)
	for d := c.Start.Truncate(24 * time.Hour); d.Before(end); d = d.Add(24 * time.Hour) {
		var p Peak
		wd := d.Weekday()
		if wd != time.Saturday && wd != time.Sunday {
			next := d.AddDate(0, 0, 1)
			if wd == time.Friday {
				next = d.AddDate(0, 0, 3)
			}
			if next.Month() != d.Month() {
				p.Name, p.Departments = "month-end close", []string{"finance"}
			}
		}
		if wd == time.Thursday && d.AddDate(0, 0, 7).Month() != d.Month() {
			if p.Name != "" {
				p.Name += " and "
			}
			p.Name += "campaign day"
			p.Departments = append(p.Departments, "marketing")
		}
		if p.Name != "" {
			p.Day, p.Factor = d, PeakFactor
			out = append(out, p)
		}
	}
	return out
}

// peakRT is a Peak ready for the background: who gets the extra events
// and what share of each minute's events they take.
type peakRT struct {
	Peak
	actors []*actor
	pick   [168]picker
	pExtra [168]float64 // chance that an event of the slot is an extra one
	extra  [168]float64 // extra intensity of the slot
}

// initPeaks builds the peaks of the full scenario from the intensities
// per slot of services (svc, already scaled) and employees (emp).
func (b *background) initPeaks(c Config, svc, emp *[168]float64, svcShare float64) {
	if c.Scenario != ScenarioFull {
		return
	}
	for _, p := range peakDays(c) {
		rt := peakRT{Peak: p}
		var ws [168][]float64
		add := func(a *actor, f func(s int) float64) {
			rt.actors = append(rt.actors, a)
			for s := range 168 {
				x := (p.Factor - 1) * f(s)
				ws[s] = append(ws[s], x)
				rt.extra[s] += x
			}
		}
		for _, a := range b.w.employees {
			if slices.Contains(p.Departments, a.role.dept) {
				add(a, func(s int) float64 { return a.weight * a.group.weight(s) })
			}
		}
		for _, a := range b.w.services {
			if slices.Contains(p.Departments, a.role.dept) {
				add(a, func(s int) float64 { return svc[s] * a.weight / svcShare })
			}
		}
		if len(rt.actors) == 0 {
			continue
		}
		for s := range 168 {
			rt.pick[s] = newPicker(ws[s])
			rt.pExtra[s] = rt.extra[s] / (svc[s] + emp[s] + rt.extra[s])
		}
		b.peaks = append(b.peaks, rt)
	}
	if len(b.peaks) > 0 {
		b.peakOf = make([]uint8, len(b.weights))
		for i := range b.peakOf {
			day := time.Unix(0, b.start+int64(i)*bucketLen).UTC().Truncate(24 * time.Hour)
			for j := range b.peaks {
				if b.peaks[j].Day.Equal(day) {
					b.peakOf[i] = uint8(j + 1)
				}
			}
		}
	}
}

// peakList returns the peaks.
func (b *background) peakList() []Peak {
	out := make([]Peak, len(b.peaks))
	for i, p := range b.peaks {
		out[i] = p.Peak
	}
	return out
}
