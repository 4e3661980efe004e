package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/custos-privacy/custos/ingest/event"
	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/consent"
)

// cmdReplay runs the rules over a JSON-lines file of v1 events, without
// Kafka or ClickHouse, prints the alerts and ends with a noise report.
func cmdReplay(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	var noisy float64
	var quiet bool
	var subjects string
	cfg, fs, err := loadConfig("replay", args, env, func(fs *flag.FlagSet) {
		fs.Float64Var(&noisy, "noisy", 0.01, "warn about a rule that fires for more than this share of actors")
		fs.BoolVar(&quiet, "quiet", false, "print only the noise report, not each alert")
		fs.StringVar(&subjects, "subjects", "", "JSON lines of subject status changes (opt-outs, closed accounts) to apply first")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: custos replay [flags] FILE (JSON lines of v1 events; - for stdin)")
	}
	var reg *consent.Registry
	if subjects != "" {
		if reg, err = loadStatuses(subjects); err != nil {
			return err
		}
	}
	e, err := loadRules(cfg, reg)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		in = f
	}
	return replay(ctx, e, in, stdout, noisy, quiet)
}

func replay(ctx context.Context, e *rules.Engine, in io.Reader, out io.Writer, noisy float64, quiet bool) error {
	dec := event.NewDecoder(event.Limits{})
	st := e.NewState(0)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	actors := map[string]bool{}
	alerted := map[string]map[string]bool{} // rule -> actors
	perRule := map[string]int{}
	var n, invalid int
	emit := func(a *rules.Alert) {
		perRule[a.Rule]++
		if alerted[a.Rule] == nil {
			alerted[a.Rule] = map[string]bool{}
		}
		alerted[a.Rule][a.Actor] = true
		if !quiet {
			fmt.Fprintf(out, "%s  %-8s %-20s %s\n      %s\n", a.EventTime.Format("2006-01-02T15:04:05Z"), a.Severity, a.Rule, a.ID, a.Summary)
		}
	}
	line := 0
	for sc.Scan() {
		line++
		if line%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var ev event.Event
		if err := dec.Decode(b, nil, &ev); err != nil {
			invalid++
			if invalid <= 5 {
				fmt.Fprintf(out, "line %d: invalid event: %v\n", line, err)
			}
			continue
		}
		n++
		actors[ev.Actor.ID] = true
		st.Evaluate(&ev, emit)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: read: %w", err)
	}
	fmt.Fprintf(out, "\nnoise report: %d events (%d invalid), %d actors, %d late\n", n, invalid, len(actors), st.Late())
	ids := make([]string, 0, len(e.Rules()))
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		share := 0.0
		if len(actors) > 0 {
			share = float64(len(alerted[id])) / float64(len(actors))
		}
		fmt.Fprintf(out, "  %-24s %6d alerts  %6d actors (%.2f%%)\n", id, perRule[id], len(alerted[id]), 100*share)
		if share > noisy {
			fmt.Fprintf(out, "  WARNING: %s fires for %.2f%% of actors (more than %.2f%%): it needs tuning before deployment\n", id, 100*share, 100*noisy)
		}
	}
	for _, x := range e.ExpiredExceptions(st.Watermark()) {
		fmt.Fprintf(out, "  note: rule %s exception (%s) expired on %s and no longer applies\n", x.Rule, x.When, x.Expires.Format("2006-01-02"))
	}
	return nil
}

// loadStatuses reads JSON lines of subject status changes into a consent
// registry. Subject ids are used as they are in the file: the events
// replayed must carry the same (raw or pseudonymised) ids.
func loadStatuses(path string) (*consent.Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	defer f.Close()
	reg := consent.New()
	dec := event.NewDecoder(event.Limits{})
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var s event.SubjectStatus
		if err := dec.DecodeSubjectStatus(sc.Bytes(), nil, &s); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		reg.Apply(&s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	return reg, nil
}
