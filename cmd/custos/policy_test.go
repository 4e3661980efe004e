package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-privacy/custos/rules/consent"
)

// TestLoadRulesPolicy checks that the privacy statement loads with the
// rules and that a broken one is refused with file:line: cause, so that a
// reload keeps the rules in force.
func TestLoadRulesPolicy(t *testing.T) {
	cfg := defaultConfig()
	cfg.Rules.Partners = "../../deploy/demo/partners.yml"
	cfg.Rules.Policy = "../../deploy/demo/policy.yml"
	e, err := loadRules(&cfg, consent.New())
	if err != nil {
		t.Fatal(err)
	}
	if e.Policy() == nil || len(e.Policy().Promises()) == 0 || e.Consent() == nil {
		t.Fatalf("policy %v, consent %v: want both", e.Policy(), e.Consent())
	}

	bad := filepath.Join(t.TempDir(), "policy.yml")
	if err := os.WriteFile(bad, []byte("promises:\n  - id: no-sale\n    text: We never sell your data.\n    checks:\n      - when: {purposes: [Not A Term]}\n        forbid: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Rules.Policy = bad
	_, err = loadRules(&cfg, nil)
	if err == nil || !strings.Contains(err.Error(), bad+":5") {
		t.Fatalf("broken policy: err = %v, want %s:5: cause", err, bad)
	}

	cfg.Rules.Policy = ""
	if e, err = loadRules(&cfg, nil); err != nil || e.Policy() != nil {
		t.Fatalf("no policy: %v, %v", e.Policy(), err)
	}
}
