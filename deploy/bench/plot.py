#!/usr/bin/env python3
"""Cost-growth figures: raw benchmark output -> CSV, SVG charts, tables.

Reads what deploy/bench/growth.sh wrote to docs/perf/raw/ (go test -bench
output and `custos bench` summaries, each run headed by its date and load
average), writes docs/perf/growth.csv (one row per run and metric), draws
the SVG line charts of docs/perf/ by hand (standard library only), and
replaces the tables between the growth-table markers of
docs/performance.md.

    python3 deploy/bench/plot.py            # from the repository root
"""

import csv
import math
import os
import re
import statistics
import sys
from collections import defaultdict

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PERF = os.path.join(ROOT, "docs", "perf")
RAW = os.path.join(PERF, "raw")
DOC = os.path.join(ROOT, "docs", "performance.md")

HEADER = re.compile(r"^## (?P<name>.*?) \| (?P<date>\S+) \| load (?P<l1>[\d.]+) (?P<l5>[\d.]+) (?P<l15>[\d.]+)")
BENCH = re.compile(r"^Benchmark(?P<name>\S+?)-\d+\s+(?P<n>\d+)\s+(?P<rest>.*)$")
METRIC = re.compile(r"(-?[\d.]+(?:e[+-]?\d+)?) (\S+)")


# --- parsing -----------------------------------------------------------------

def runs_of(path):
    """Yields (header dict, lines) per run of a raw file."""
    if not os.path.exists(path):
        return
    head, lines = None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = HEADER.match(line)
            if m:
                if head:
                    yield head, lines
                head, lines = m.groupdict(), []
            elif head:
                lines.append(line)
    if head:
        yield head, lines


def run_number(head):
    m = re.search(r"run (\d+)", head["name"])
    return int(m.group(1)) if m else 1


def bench_metrics(lines):
    """Yields (benchmark name, {unit: value}) of go test -bench lines."""
    for line in lines:
        m = BENCH.match(line)
        if not m:
            continue
        vals = {unit: float(v) for v, unit in METRIC.findall(m.group("rest"))}
        yield m.group("name"), vals


def parse():
    """Returns the CSV rows: experiment, series, target, x, run, load, metric, value."""
    rows = []

    def add(exp, series, target, x, head, metric, value):
        rows.append({"experiment": exp, "series": series, "target": target, "x": x,
                     "run": run_number(head), "date": head["date"], "load": float(head["l1"]),
                     "metric": metric, "value": value})

    for head, lines in runs_of(os.path.join(RAW, "decode.txt")):
        for name, v in bench_metrics(lines):
            m = re.match(r"DecodeSize/(\w+)$", name)
            if not m:
                continue
            target = m.group(1)
            x = v.get("B/event", 0)
            for unit, metric in (("ns/op", "ns_per_event"), ("MB/s", "mb_per_s"), ("events/s", "events_per_s"),
                                 ("B/op", "bytes_allocated"), ("allocs/op", "allocs")):
                if unit in v:
                    add("size", "decode", target, x, head, metric, v[unit])

    for head, lines in runs_of(os.path.join(RAW, "rules.txt")):
        for name, v in bench_metrics(lines):
            m = re.match(r"RuleCount/(\d+)$", name)
            if not m:
                continue
            n = int(m.group(1))
            for unit, metric in (("ns/op", "ns_per_event"), ("events/s", "events_per_s"),
                                 ("alerts/event", "alerts_per_event"), ("keys", "keys"),
                                 ("B/op", "bytes_allocated"), ("allocs/op", "allocs")):
                if unit in v:
                    add("rules", "shipped+variants", n, n, head, metric, v[unit])

    for head, lines in runs_of(os.path.join(RAW, "actors.txt")):
        for name, v in bench_metrics(lines):
            m = re.match(r"ActiveActors/(\w+)/(\d+)$", name)
            if not m:
                continue
            series, n = m.group(1), int(m.group(2))
            for unit, metric in (("ns/op", "ns_per_event"), ("events/s", "events_per_s"),
                                 ("alerts/event", "alerts_per_event"), ("keys", "keys"),
                                 ("B/key", "bytes_per_key"), ("B/actor", "bytes_per_actor")):
                if unit in v:
                    add("actors", series, n, n, head, metric, v[unit])

    sizes = {}
    path = os.path.join(RAW, "sizes.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"size (\d+) events (\d+) mean_bytes ([\d.]+)", line)
                if m:
                    sizes[m.group(1)] = float(m.group(3))

    for head, lines in runs_of(os.path.join(RAW, "e2e.txt")):
        m = re.search(r"size (\d+)", head["name"])
        if not m:
            continue
        target = m.group(1)
        x = sizes.get(target, float(target))
        text = "\n".join(lines)
        t = re.search(r"throughput: (\d+) events in ([\d.]+)(m?s) = (\d+) events/s", text)
        if not t:
            continue
        events = int(t.group(1))
        rate = float(t.group(4))
        add("size", "e2e", target, x, head, "events_per_s", rate)
        add("size", "e2e", target, x, head, "mb_per_s", rate * x / 1e6)
        c = re.search(r"Custos: CPU ([\d.]+) s \(([\d.]+) µs/event\), peak RSS (\d+) MB", text)
        if c:
            add("size", "e2e", target, x, head, "custos_us_per_event", float(c.group(2)))
            add("size", "e2e", target, x, head, "custos_rss_mb", float(c.group(3)))
        for who, key in (("ClickHouse", "clickhouse"), ("Kafka", "kafka")):
            c = re.search(who + r" CPU ([\d.]+)(m?s)", text)
            if c:
                secs = float(c.group(1)) / (1000 if c.group(2) == "ms" else 1)
                add("size", "e2e", target, x, head, key + "_us_per_event", secs * 1e6 / events)
    return rows


def write_csv(rows):
    path = os.path.join(PERF, "growth.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["experiment", "series", "target", "x", "run", "date", "load", "metric", "value"],
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "x": f"{r['x']:g}", "value": f"{r['value']:.6g}"})
    return path


class Data:
    """Runs indexed by experiment, series, target and metric."""

    def __init__(self, rows):
        self.v = defaultdict(list)      # (exp, series, target, metric) -> [(run, value)]
        self.load = defaultdict(dict)   # (exp, series, target) -> {run: load}
        self.x = {}                     # (exp, series, target) -> x
        self.targets = defaultdict(list)
        for r in rows:
            k = (r["experiment"], r["series"], str(r["target"]))
            self.v[k + (r["metric"],)].append((r["run"], r["value"]))
            self.load[k][r["run"]] = r["load"]
            self.x[k] = r["x"]
            if str(r["target"]) not in self.targets[k[:2]]:
                self.targets[k[:2]].append(str(r["target"]))

    def values(self, exp, series, target, metric):
        return [v for _, v in sorted(self.v.get((exp, series, str(target), metric), []))]

    def loads(self, exp, series, target):
        return [l for _, l in sorted(self.load.get((exp, series, str(target)), {}).items())]

    def points(self, exp, series, metric, scale=1.0, skip=()):
        """(x, mean, min, max) per target but those of skip, in x order."""
        out = []
        for t in self.targets.get((exp, series), []):
            if t in skip:
                continue
            vs = self.values(exp, series, t, metric)
            if vs:
                vs = [v * scale for v in vs]
                out.append((self.x[(exp, series, t)], statistics.mean(vs), min(vs), max(vs)))
        return sorted(out)


# --- SVG ---------------------------------------------------------------------

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 2.5, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def log_ticks(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo / 1.0001 <= v <= hi * 1.0001:
                ticks.append(v)
        e += 1
    return ticks


def fmt(v):
    """Three significant digits at most: 1.04M, 654k, 19k, 2,028, 33.6."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.3g}"
    return f"{v:.2g}" if a < 1 else f"{v:.2g}"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chart(path, title, xlabel, ylabel, series, xlog=False, ylog=False, hline=None, xticks=None, note=None):
    """A line chart: series is [(name, [(x, y, ymin, ymax)], dashed)]."""
    W, L, R, T = 720, 80, 20, 48
    B = 74 + 16 * len(series)
    H = 330 + B
    pw, ph = W - L - R, H - T - B
    pts = [p for _, ps, _ in series for p in ps]
    if not pts:
        return
    xs = [p[0] for p in pts]
    ys = [y for p in pts for y in (p[2], p[3])] + ([hline[0]] if hline else [])
    if xlog:
        x0, x1 = min(xs) / 1.5, max(xs) * 1.5
        xt = xticks or log_ticks(x0, x1)
    else:
        xt = xticks or nice_ticks(0, max(xs) * 1.05)
        x0, x1 = min(xt[0], 0), max(xt[-1], max(xs) * 1.05)
    if ylog:
        y0, y1 = min(ys) / 1.6, max(ys) * 1.6
        yt = log_ticks(y0, y1)
    else:
        yt = nice_ticks(0, max(ys) * 1.1)
        y0, y1 = 0, yt[-1]

    def sx(x):
        if xlog:
            return L + pw * (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))
        return L + pw * (x - x0) / (x1 - x0)

    def sy(y):
        if ylog:
            return T + ph - ph * (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0))
        return T + ph - ph * (y - y0) / (y1 - y0)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{esc(title)}</text>']
    for y in yt:
        Y = sy(y)
        o.append(f'<line x1="{L}" y1="{Y:.1f}" x2="{L + pw}" y2="{Y:.1f}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{L - 6}" y="{Y + 4:.1f}" text-anchor="end">{fmt(y)}</text>')
    for x in xt:
        X = sx(x)
        o.append(f'<line x1="{X:.1f}" y1="{T}" x2="{X:.1f}" y2="{T + ph}" stroke="#f0f0f0"/>')
        o.append(f'<text x="{X:.1f}" y="{T + ph + 16}" text-anchor="middle">{fmt(x)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{L + pw / 2}" y="{T + ph + 36}" text-anchor="middle">{esc(xlabel)}</text>')
    o.append(f'<text transform="translate(18 {T + ph / 2}) rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>')
    if hline:
        Y = sy(hline[0])
        o.append(f'<line x1="{L}" y1="{Y:.1f}" x2="{L + pw}" y2="{Y:.1f}" stroke="#888" stroke-dasharray="6 4"/>')
        o.append(f'<text x="{L + pw - 4}" y="{Y - 5:.1f}" text-anchor="end" fill="#555">{esc(hline[1])}</text>')
    for i, (name, ps, dashed) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in ps)
        o.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y, lo, hi in ps:
            X = sx(x)
            if hi > lo:
                o.append(f'<line x1="{X:.1f}" y1="{sy(lo):.1f}" x2="{X:.1f}" y2="{sy(hi):.1f}" stroke="{c}" stroke-width="1.5"/>')
                for v in (lo, hi):
                    o.append(f'<line x1="{X - 4:.1f}" y1="{sy(v):.1f}" x2="{X + 4:.1f}" y2="{sy(v):.1f}" stroke="{c}"/>')
            o.append(f'<circle cx="{X:.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"/>')
            dy = -7 if i % 2 == 0 else 15
            o.append(f'<text x="{X + 6:.1f}" y="{sy(y) + dy:.1f}" fill="{c}" font-size="11">{fmt(y)}</text>')
        ly = T + ph + 58 + 16 * i
        lx = L
        o.append(f'<line x1="{lx:.1f}" y1="{ly - 4}" x2="{lx + 22:.1f}" y2="{ly - 4}" stroke="{c}" stroke-width="2"{dash}/>')
        o.append(f'<text x="{lx + 28:.1f}" y="{ly}">{esc(name)}</text>')
    if note:
        o.append(f'<text x="{W - R}" y="{H - 6}" text-anchor="end" font-size="10" fill="#666">{esc(note)}</text>')
    o.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


# --- tables ------------------------------------------------------------------

def runs(vs, f=fmt):
    return " / ".join(f(v) for v in vs) if vs else "–"


def num(v):
    return f"{v:,.0f}"


def us(v):
    return f"{v:.1f}"


def tables(d):
    out = []
    sz = d.targets.get(("size", "decode"), []) + [t for t in d.targets.get(("size", "e2e"), [])
                                                    if t not in d.targets.get(("size", "decode"), [])]
    sz.sort(key=lambda t: d.x.get(("size", "e2e", t)) or d.x.get(("size", "decode", t)) or 0)
    if sz:
        out += ["**Event size** (decode+validate: `go test -bench DecodeSize`, one core; end to end: "
                "`custos bench -rate 0 -event-size N`, each run's figures separated by /):", "",
                "| target | mean size | decode+validate ns/event | decode MB/s | end-to-end events/s | end-to-end MB/s "
                "| Custos CPU µs/event | ClickHouse CPU µs/event | Kafka CPU µs/event | Custos peak RSS MB | load (decode; e2e) |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in sz:
            x = d.x.get(("size", "e2e", t)) or d.x.get(("size", "decode", t))
            g = lambda m, s="e2e": d.values("size", s, t, m)
            out.append("| " + " | ".join([
                "as generated" if t == "natural" else f"{t} B",
                f"{x:,.0f} B" if x else "–",
                runs(g("ns_per_event", "decode"), num),
                runs(g("mb_per_s", "decode"), num),
                runs(g("events_per_s"), num),
                runs(g("mb_per_s"), lambda v: f"{v:.1f}"),
                runs(g("custos_us_per_event"), us),
                runs(g("clickhouse_us_per_event"), us),
                runs(g("kafka_us_per_event"), us),
                runs(g("custos_rss_mb"), num),
                runs(d.loads("size", "decode", t), lambda v: f"{v:.1f}") + "; " +
                runs(d.loads("size", "e2e", t), lambda v: f"{v:.1f}"),
            ]) + " |")
        out.append("")
    rt = d.targets.get(("rules", "shipped+variants"), [])
    if rt:
        out += ["**Number of rules** (`go test ./rules -bench RuleCount`, one core, the generator's day):", "",
                "| rules | ns/event | events/s per core | ns per added rule (means, against the row above) "
                "| alerts/event | tracked keys | allocs/event | load |",
                "|---|---|---|---|---|---|---|---|"]
        prev = None
        for t in sorted(rt, key=int):
            g = lambda m: d.values("rules", "shipped+variants", t, m)
            ns = g("ns_per_event")
            marginal = "–"
            if prev and ns:
                marginal = num((statistics.mean(ns) - prev[1]) / (int(t) - prev[0]))
            if ns:
                prev = (int(t), statistics.mean(ns))
            out.append("| " + " | ".join([
                t, runs(ns, num), runs(g("events_per_s"), num), marginal,
                runs(g("alerts_per_event"), lambda v: f"{v:.4f}"),
                runs(g("keys"), num), runs(g("allocs"), num),
                runs(d.loads("rules", "shipped+variants", t), lambda v: f"{v:.1f}"),
            ]) + " |")
        out.append("")
    at = d.targets.get(("actors", "shipped"), [])
    if at:
        out += ["**Active actors** (`go test ./rules -bench ActiveActors`, one core; every actor acts every 10 minutes "
                "of event time; memory after an hour of event time):", "",
                "| active actors | shipped rules ns/event | events/s per core | tracked keys | B per key | B per actor "
                "| bulk_export alone ns/event | actor-windows | B per actor-window | load |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for t in sorted(at, key=int):
            g = lambda m, s="shipped": d.values("actors", s, t, m)
            out.append("| " + " | ".join([
                f"{int(t):,}", runs(g("ns_per_event"), num), runs(g("events_per_s"), num),
                runs(g("keys"), num), runs(g("bytes_per_key"), num), runs(g("bytes_per_actor"), num),
                runs(g("ns_per_event", "bulk_export"), num), runs(g("keys", "bulk_export"), num),
                runs(g("bytes_per_key", "bulk_export"), num),
                runs(d.loads("actors", "shipped", t), lambda v: f"{v:.1f}"),
            ]) + " |")
        out.append("")
    return "\n".join(out)


def replace_tables(text):
    start, end = "<!-- growth-tables:start (deploy/bench/plot.py writes this) -->", "<!-- growth-tables:end -->"
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    i, j = doc.find(start), doc.find(end)
    if i < 0 or j < i:
        print(f"{DOC}: no growth-tables markers; tables not written", file=sys.stderr)
        return
    doc = doc[:i + len(start)] + "\n" + text + doc[j:]
    with open(DOC, "w", encoding="utf-8") as f:
        f.write(doc)


def main():
    rows = parse()
    if not rows:
        sys.exit(f"no measurements in {RAW}: run deploy/bench/growth.sh first")
    print("wrote", os.path.relpath(write_csv(rows), ROOT))
    d = Data(rows)
    note = "2 vCPU AMD EPYC, shared; dots: mean of the runs, bars: min–max"
    charts = [
        ("size-throughput.svg", "Events/s against event size", "mean event size (bytes)", "events/s (log scale)",
         [("end to end (custos bench: Kafka, Custos, ClickHouse on 2 cores)", d.points("size", "e2e", "events_per_s"), False),
          ("decode + validate alone, one core", d.points("size", "decode", "events_per_s", skip=("natural",)), True)],
         dict(ylog=True)),
        ("size-cpu.svg", "CPU per event against event size", "mean event size (bytes)", "CPU µs per event",
         [("Custos", d.points("size", "e2e", "custos_us_per_event"), False),
          ("ClickHouse", d.points("size", "e2e", "clickhouse_us_per_event"), False),
          ("Kafka", d.points("size", "e2e", "kafka_us_per_event"), False),
          ("decode + validate (part of Custos's share)", d.points("size", "decode", "ns_per_event", 1e-3, skip=("natural",)), True)], {}),
        ("rules-throughput.svg", "Rule evaluation: events/s against the number of rules", "rules in force",
         "events/s on one core", [("all rules, generator traffic", d.points("rules", "shipped+variants", "events_per_s"), False)],
         dict(xticks=[0, 10, 20, 50, 100, 150, 200])),
        ("rules-ns.svg", "Rule evaluation: cost per event against the number of rules", "rules in force",
         "ns per event (one core)", [("all rules, generator traffic", d.points("rules", "shipped+variants", "ns_per_event"), False)],
         dict(xticks=[0, 10, 20, 50, 100, 150, 200])),
        ("actors-throughput.svg", "Rule evaluation: events/s against active actors", "distinct active actors (log scale)",
         "events/s on one core",
         [("shipped rules (20)", d.points("actors", "shipped", "events_per_s"), False),
          ("bulk_export alone (one sliding window per actor)", d.points("actors", "bulk_export", "events_per_s"), True)],
         dict(xlog=True, xticks=[10_000, 100_000, 1_000_000])),
        ("actors-memory.svg", "Memory per tracked actor-window against active actors", "distinct active actors (log scale)",
         "bytes of live heap",
         [("per bulk_export actor-window", d.points("actors", "bulk_export", "bytes_per_key"), False),
          ("per tracked key, all shipped rules", d.points("actors", "shipped", "bytes_per_key"), False),
          ("per active actor, all shipped rules", d.points("actors", "shipped", "bytes_per_actor"), True)],
         dict(xlog=True, xticks=[10_000, 100_000, 1_000_000], hline=(200, "target: 200 B per actor-window"))),
    ]
    for name, title, xl, yl, series, kw in charts:
        series = [s for s in series if s[1]]
        if series:
            chart(os.path.join(PERF, name), title, xl, yl, series, note=note, **kw)
            print("wrote", os.path.relpath(os.path.join(PERF, name), ROOT))
    replace_tables(tables(d))
    print("updated the tables of", os.path.relpath(DOC, ROOT))


if __name__ == "__main__":
    main()
