"""Run Custos's modern-version schema and forensic queries in chDB.

Usage: python chdb_check.py SPEC.json

SPEC (written by TestIntegrationChDB) holds the DDL that Migrate runs on a
current server, the column list of each table Custos inserts into, and every
query of queries.go with its parameters already bound. The script creates the
schema in chDB (current ClickHouse, in process), inserts a few rows into each
table with explicit column lists (so the materialized views fire), runs each
query and checks it returns rows. Exit status 1 on any failure.
"""
import json
import sys
import tempfile

import chdb
from chdb import session as chs


def literal(col, typ, i, spec):
    """A literal of type typ for column col of row i."""
    base = typ
    if base.startswith("LowCardinality("):
        base = base[len("LowCardinality("):-1]
    fixed = {
        "actor_id": f"'{spec['actor']}'",
        "type": "'share'",
        "action": "'transfer'",
        "outcome": "'success'",
        "subjects": f"['{spec['subject']}', '{i:032x}']",
        "severity": "'high'",
        "rule": "'bulk_export'",
        "source_system": "'crm'",
        "recipient_domain": "'api.adnet.example'",
        "kafka_topic": "'custos.events'",
        "subject": f"'{spec['subject']}'",
    }
    if col in fixed:
        return fixed[col]
    if base.startswith("DateTime"):
        return f"toDateTime('{spec['time']}', 'UTC')"
    if base.startswith("Array("):
        return f"['{col}-a', '{col}-b']"
    if base.startswith(("Int", "UInt")):
        if col == "kafka_offset":
            return str(1000 + i)
        return str(i + 1)
    if col.endswith("_id"):
        return f"'{col}-{i}'"
    return f"'{col}'"


def main():
    spec = json.load(open(sys.argv[1]))
    db = spec["database"]
    failures = 0
    with tempfile.TemporaryDirectory() as path:
        sess = chs.Session(path)
        print("chdb", chdb.__version__, "engine", sess.query("SELECT version()", "CSV").data().strip())
        for stmt in spec["ddl"]:
            try:
                sess.query(stmt)
            except Exception as e:  # noqa: BLE001
                failures += 1
                print("DDL FAILED:", e, "\n", stmt)
        for table, cols in spec["tables"].items():
            names = ", ".join(c for c, _ in cols)
            rows = ", ".join(
                "(" + ", ".join(literal(c, t, i, spec) for c, t in cols) + ")" for i in range(3)
            )
            try:
                sess.query(f"INSERT INTO {db}.{table} ({names}) VALUES {rows}")
            except Exception as e:  # noqa: BLE001
                failures += 1
                print(f"INSERT {table} FAILED:", e)
        for t in ("events", "event_offsets", "subject_index", "alerts", "subject_status"):
            n = sess.query(f"SELECT count() FROM {db}.{t}", "CSV").data().strip()
            print(f"{t}: {n} rows")
        sess.query(f"USE {db}")
        for q in spec["queries"]:
            try:
                res = sess.query(q["sql"], "JSONCompact")
                data = json.loads(res.data())["data"] if res.data() else []
            except Exception as e:  # noqa: BLE001
                failures += 1
                print(f"QUERY {q['name']} FAILED:", e)
                continue
            ok = len(data) >= q["min_rows"]
            failures += 0 if ok else 1
            print(f"query {q['name']}: {len(data)} rows {'ok' if ok else 'TOO FEW'}")
        sess.close()
    if failures:
        print(f"{failures} failures")
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    main()
