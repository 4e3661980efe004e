// Command custos is the Custos data-access audit pipeline: it consumes
// data-access and data-share events from Kafka, applies the detection rules
// and stores events and alerts in ClickHouse.
//
// Subcommands:
//
//	custos run       consume, detect and store until SIGTERM/SIGINT
//	custos migrate   create or upgrade the ClickHouse schema (also done by run)
//	custos gen       produce a synthetic day of events to Kafka
//	custos demo      the whole pipeline on a synthetic day, with a report
//	custos bench     events through real Kafka -> Custos -> real ClickHouse
//	custos rules     lint or test the rule files
//	custos replay    run the rules over a JSON-lines file of events
//	custos version   print the version
//
// Every subcommand takes -config FILE, CUSTOS_* environment variables and
// flags, in increasing order of precedence; -h lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0-dev"

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not set:
// it keeps the process within its 500 MB budget at full rate (BENCHMARKS.md).
const defaultMemoryLimit = 450 << 20

// configureMemory sets how the Go collector paces itself, from the
// environment the runtime itself read (env): a soft heap limit of
// defaultMemoryLimit unless GOMEMLIMIT is set, and, unless GOGC is set and
// while a heap limit is in force, no collection triggered by heap growth
// (GOGC=off): the collector then runs only as the heap nears the limit.
// The pipeline's memory is its budget either way; collecting every time
// the heap doubles (GOGC=100) only spends CPU earlier (0.5–1.5 µs an
// event, 9% of Custos's CPU, for the same peak RSS; BENCHMARKS.md). Without
// a limit (GOMEMLIMIT=off or a huge value) GOGC keeps its default, or the
// heap would grow without bound.
func configureMemory(env func(string) string) {
	if env("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if env("GOGC") == "" && debug.SetMemoryLimit(-1) < math.MaxInt64 {
		debug.SetGCPercent(-1)
	}
}

func main() {
	configureMemory(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmds := map[string]func(context.Context, []string, func(string) string, io.Writer) error{
		"run":     cmdRun,
		"migrate": cmdMigrate,
		"gen":     cmdGen,
		"demo":    cmdDemo,
		"bench":   cmdBench,
		"rules":   cmdRules,
		"replay":  cmdReplay,
	}
	switch args[0] {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "custos", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "custos: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd(ctx, args[1:], env, stdout); err != nil {
		fmt.Fprintf(stderr, "custos %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: custos <command> [flags]

commands:
  run       consume, detect and store until SIGTERM/SIGINT
  migrate   create or upgrade the ClickHouse schema (run does it too)
  gen       produce a synthetic day of events to Kafka
  demo      run the whole pipeline on a synthetic day and report what it caught
  bench     measure events/s and latency through real Kafka and ClickHouse
  rules     lint|test [dir]: check the rule files, run their test cases
  replay    FILE: run the rules over JSON lines of events, print alerts and a noise report
  version   print the version

Each command takes -config FILE, CUSTOS_* environment variables and flags
(highest precedence); "custos <command> -h" lists them.
`)
}
