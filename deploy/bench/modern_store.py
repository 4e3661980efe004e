"""What storing Custos's rows costs ClickHouse 18.16 and a current ClickHouse.

Usage: python modern_store.py --native FILE --columns COLS --ddl-old OLD.sql
                              --ddl-new NEW.sql [--http URL] [--chunk N]

The same rows (FILE: the events table of a `custos bench -store-only -keep`
run, in ClickHouse's Native format; COLS: its comma-separated column list)
go into two fresh databases built by Custos's own DDL for each server
version (`custos migrate -print VERSION`): one on the ClickHouse 18.16
server of this machine (over HTTP), one in chDB (current ClickHouse, in
this process). Each server first loads the rows into a Memory table; then
INSERT ... SELECT moves them into `events` in inserts of N rows (the
materialized views fill subject_index and event_offsets), and the server
merges until no merge runs. The script prints, for each server, CPU
microseconds a row: for the inserts (less what reading the Memory table
costs, measured by the same SELECTs into a Null table) and for the inserts
and the merges that follow.

CPU is the server process's user+system time (/proc for 18.16, getrusage
for chDB, whose merges run on threads of this process). Run it on an
otherwise idle machine.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from chdb import session as chs


def ticks():
    return os.sysconf("SC_CLK_TCK")


class Old:
    """ClickHouse 18.16 over HTTP; CPU from /proc of clickhouse-server."""

    name = "ClickHouse 18.16 (this machine's server)"

    def __init__(self, url):
        self.url = url
        self.pid = self._pid()

    @staticmethod
    def _pid():
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"clickhouse-server" in cmd or cmd.startswith(b"/usr/bin/clickhouse\0server"):
                return int(d)
        sys.exit("clickhouse-server is not running (bash deploy/up.sh)")

    def cpu(self):
        with open(f"/proc/{self.pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / ticks()

    def query(self, sql, body=None):
        params = {"query": sql} if body is not None else {}
        data = body if body is not None else sql.encode()
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params), data=data, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            sys.exit(f"18.16: {e.read().decode()[:500]}\n{sql[:300]}")

    def load(self, db, cols, native):
        with open(native, "rb") as f:
            self.query(f"INSERT INTO {db}.src ({cols}) FORMAT Native", body=f.read())


class New:
    """chDB: current ClickHouse in this process; CPU from getrusage."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="custos-chdb-")
        self.sess = chs.Session(self.dir)
        self.name = f"ClickHouse {self.query('SELECT version()').strip()} (chDB)"

    @staticmethod
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def query(self, sql, body=None):
        res = self.sess.query(sql, "TabSeparated")
        return res.bytes().decode() if hasattr(res, "bytes") else str(res)

    def load(self, db, cols, native):
        self.query(f"INSERT INTO {db}.src ({cols}) SELECT * FROM file('{native}', Native)")


def statements(path, db):
    with open(path) as f:
        text = f.read()
    return [s.strip() for s in text.split(";\n\n") if s.strip()]


def wait_merges(server, limit=600):
    """Waits until no merge has run for two seconds; returns the time waited."""
    start = time.time()
    quiet = 0
    while time.time() - start < limit and quiet < 2:
        time.sleep(1)
        n = int(server.query("SELECT count() FROM system.merges").strip() or 0)
        quiet = quiet + 1 if n == 0 else 0
    return time.time() - start


def measure(server, ddl, db, cols, native, rows, chunk):
    for s in ddl:
        server.query(s)
    server.query(f"CREATE TABLE {db}.src AS {db}.events ENGINE = Memory")
    server.query(f"CREATE TABLE {db}.sink AS {db}.events ENGINE = Null")
    server.load(db, cols, native)
    n = int(server.query(f"SELECT count() FROM {db}.src").strip())
    if n != rows:
        sys.exit(f"{server.name}: loaded {n} rows, want {rows}")
    wait_merges(server)

    def chunks(table):
        c0, t0 = server.cpu(), time.time()
        for off in range(0, rows, chunk):
            server.query(f"INSERT INTO {db}.{table} ({cols}) SELECT {cols} FROM {db}.src "
                         f"LIMIT {off}, {chunk} SETTINGS max_threads = 1")
        return server.cpu() - c0, time.time() - t0

    read_cpu, _ = chunks("sink")
    insert_cpu, insert_wall = chunks("events")
    c0 = server.cpu()
    waited = wait_merges(server)
    merge_cpu = server.cpu() - c0
    stored = int(server.query(f"SELECT count() FROM {db}.events").strip())
    subj = int(server.query(f"SELECT count() FROM {db}.subject_index").strip())
    offs = int(server.query(f"SELECT count() FROM {db}.event_offsets").strip())
    parts = int(server.query(f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = 'events' AND active").strip())
    server.query(f"DROP DATABASE IF EXISTS {db}")
    us = lambda s: s * 1e6 / rows
    return {
        "server": server.name, "rows": rows, "stored": stored, "subject_index": subj, "event_offsets": offs,
        "inserts": (rows + chunk - 1) // chunk, "parts_after_merges": parts,
        "read_us": round(us(read_cpu), 2), "insert_us": round(us(insert_cpu - read_cpu), 2),
        "merge_us": round(us(merge_cpu), 2), "total_us": round(us(insert_cpu - read_cpu + merge_cpu), 2),
        "insert_wall_s": round(insert_wall, 2), "merge_wait_s": round(waited, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--native", required=True)
    ap.add_argument("--columns", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--ddl-old", required=True)
    ap.add_argument("--ddl-new", required=True)
    ap.add_argument("--db", default="custos_storecost")
    ap.add_argument("--http", default=os.environ.get("CUSTOS_CLICKHOUSE_HTTP_URL", "http://127.0.0.1:8123"))
    ap.add_argument("--chunk", type=int, default=32768)
    a = ap.parse_args()
    native = os.path.abspath(a.native)
    results = []
    for server, ddl in ((Old(a.http), a.ddl_old), (New(), a.ddl_new)):
        r = measure(server, statements(ddl, a.db), a.db, a.columns, native, a.rows, a.chunk)
        print(json.dumps(r), flush=True)
        results.append(r)
    old, new = results
    for r in results:
        if r["stored"] < r["rows"] or r["event_offsets"] < r["rows"] or r["subject_index"] == 0:
            sys.exit(f"{r['server']}: stored {r['stored']} events, {r['event_offsets']} offsets, "
                     f"{r['subject_index']} subject rows of {r['rows']} events")
    print(f"\nCPU µs a row, inserts + merges: {old['server']} {old['total_us']} "
          f"({old['insert_us']} + {old['merge_us']}), {new['server']} {new['total_us']} "
          f"({new['insert_us']} + {new['merge_us']}): {old['total_us'] / new['total_us']:.2f}x")


if __name__ == "__main__":
    main()
