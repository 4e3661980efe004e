package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/consent"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

// loadRules builds the rule engine from the shipped rules, the user's rule
// folder, the partner registry and the privacy statement of cfg, reading
// the subjects' status from subjects (nil: none). A broken registry or
// policy file is refused as a whole, with file:line: cause.
func loadRules(cfg *Config, subjects *consent.Registry) (*rules.Engine, error) {
	reg, err := partner.Load(cfg.Rules.Partners)
	if err != nil {
		return nil, err
	}
	var pol *policy.Policy
	if cfg.Rules.Policy != "" {
		if pol, err = policy.Load(cfg.Rules.Policy); err != nil {
			return nil, fmt.Errorf("policy:\n%w", err)
		}
	}
	e, err := rules.Load(cfg.Rules.Dir, rules.Options{Registry: reg, Policy: pol, Consent: subjects})
	if err != nil {
		return nil, fmt.Errorf("rules:\n%w", err)
	}
	return e, nil
}

// rulesStamp summarises the modification times and sizes of the rule files,
// the partner registry and the policy: a change means a reload.
func rulesStamp(cfg *Config) string {
	paths := []string{cfg.Rules.Partners}
	if cfg.Rules.Policy != "" {
		paths = append(paths, cfg.Rules.Policy)
	}
	if cfg.Rules.Dir != "" {
		for _, pat := range []string{"*.yml", "*.yaml"} {
			m, _ := filepath.Glob(filepath.Join(cfg.Rules.Dir, pat))
			paths = append(paths, m...)
		}
	}
	sort.Strings(paths)
	var b strings.Builder
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", p, fi.ModTime().UnixNano(), fi.Size())
		} else {
			fmt.Fprintf(&b, "%s missing\n", p)
		}
	}
	return b.String()
}

// reloadRules rebuilds the rule engine on SIGHUP and when a rule file or
// the partner registry changes, until ctx ends. A broken file is logged
// with file, line and cause, and the rules in force stay in force; on
// success the partitions move their window state onto the new engine.
func (s *service) reloadRules(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if s.cfg.Rules.Reload > 0 {
		t := time.NewTicker(s.cfg.Rules.Reload)
		defer t.Stop()
		tick = t.C
	}
	stamp := rulesStamp(s.cfg)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick:
			if st := rulesStamp(s.cfg); st == stamp {
				continue
			}
		}
		stamp = rulesStamp(s.cfg)
		e, err := loadRules(s.cfg, s.pipeline.consent)
		if err != nil {
			s.log.Error("rules not reloaded; the rules in force stay in force", "err", err)
			continue
		}
		s.pipeline.engine.Store(e)
		promises := 0
		if e.Policy() != nil {
			promises = len(e.Policy().Promises())
		}
		s.log.Info("rules reloaded", "rules", len(e.Rules()), "partners", e.Registry().Len(), "promises", promises)
	}
}
