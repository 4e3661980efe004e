package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/custos-privacy/custos/rules"
	"github.com/custos-privacy/custos/rules/partner"
	"github.com/custos-privacy/custos/rules/policy"
)

// cmdRules runs "custos rules lint|test [dir]".
func cmdRules(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "lint" && args[0] != "test") {
		return errors.New(`usage: custos rules lint|test [flags] [dir]
  lint   check the rule files: schema, CEL type check, unknown list or macro,
         expired and unreachable exceptions, unused lists and macros, untested rules
  test   run the test cases of the rule files
dir defaults to rules.dir; the shipped rules are always included`)
	}
	sub := args[0]
	cfg, fs, err := loadConfig("rules "+sub, args[1:], env, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		cfg.Rules.Dir = fs.Arg(0)
	}
	var reg *partner.Registry
	if cfg.Rules.Partners != "" {
		if reg, err = partner.Load(cfg.Rules.Partners); err != nil {
			return err
		}
	}
	var pol *policy.Policy
	if cfg.Rules.Policy != "" {
		if pol, err = policy.Load(cfg.Rules.Policy); err != nil {
			return fmt.Errorf("policy refused:\n%w", err)
		}
	}
	e, err := rules.Load(cfg.Rules.Dir, rules.Options{Registry: reg, Policy: pol})
	if err != nil {
		return fmt.Errorf("rule files refused:\n%w", err)
	}
	switch sub {
	case "lint":
		warnings := e.Lint(time.Now())
		for _, w := range warnings {
			fmt.Fprintln(stdout, "warning:", w)
		}
		fmt.Fprintf(stdout, "%d rules in %d files: OK, %d warning(s)\n", len(e.Rules()), len(e.Files()), len(warnings))
		return nil
	default:
		failed := 0
		results := e.RunTests()
		for _, r := range results {
			if r.Passed() {
				fmt.Fprintf(stdout, "ok    %s:%d %s\n", r.File, r.Line, r.Name)
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL  %s:%d %s\n", r.File, r.Line, r.Name)
			for _, f := range r.Failures {
				fmt.Fprintln(stdout, "      "+f)
			}
		}
		fmt.Fprintf(stdout, "%d test case(s), %d failed\n", len(results), failed)
		if failed > 0 {
			return fmt.Errorf("%d rule test case(s) failed", failed)
		}
		return nil
	}
}
