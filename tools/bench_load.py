#!/usr/bin/env python3
"""Times `idgraph load` next to what a user would otherwise do, on the same generated archives.

For each size (default 1M and 10M events), in one run:
  1. `idgraph generate` writes a native archive (seeded, so every run sees the same data);
  2. `idgraph load` (release build) into a new database, then `idgraph export`;
  3. DuckDB identity stitching: read the NDJSON, normalize identifiers as idgraph's built-in
     schema does, build an edges table, iterate min-label propagation until nothing changes
     (the way warehouse identity-stitching models work), write identifier,entity;
  4. igraph connected components over the same edges (exported by DuckDB, timed separately);
  5. checks that all three give the same partition of the same identifiers.
Each step runs as its own process, timed from outside (wall clock, peak RSS via wait4).

Usage: tools/bench_load.py [--sizes 1000000,10000000] [--work DIR] [--threads N]
Needs: pip install duckdb python-igraph (the script installs them when missing).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release", "idgraph")

# idgraph's built-in schema: merge types and how their values are normalized (SQL).
MERGE_TYPES = {
    "email": "lower(trim({v}))",
    "phone": "(CASE WHEN ltrim({v}) LIKE '+%' THEN '+' ELSE '' END) || regexp_replace({v}, '[^0-9]', '', 'g')",
    "user_id": "trim({v})",
    "anonymous_id": "trim({v})",
    "cookie": "trim({v})",
    "device": "trim({v})",
    "crm": "trim({v})",
    "loyalty": "trim({v})",
}


def timed(cmd, **kwargs):
    """Runs cmd; returns (seconds, peak RSS in MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, **kwargs)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024, out.decode()


def duckdb_stitch(archive, out_csv, edges_path, threads):
    """Step 3, in its own process: prints JSON with the iteration count and timings."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    t0 = time.perf_counter()
    columns = ", ".join(f"'{t}': 'VARCHAR'" for t in list(MERGE_TYPES) + ["ip", "address"])
    con.execute(f"""
        CREATE TABLE ev AS
        SELECT row_number() OVER () AS eid, ids
        FROM read_json('{archive}', format = 'newline_delimited',
                       columns = {{'ids': 'STRUCT({", ".join(f"{t} VARCHAR" for t in list(MERGE_TYPES) + ["ip", "address"])})'}})
    """)
    parts = " UNION ALL ".join(
        f"SELECT eid, '{t}:' || ({norm.format(v=f'ids.{t}')}) AS identifier FROM ev WHERE ids.{t} IS NOT NULL"
        for t, norm in MERGE_TYPES.items())
    con.execute(f"CREATE TABLE occ AS {parts}")
    con.execute("CREATE TABLE nodes AS SELECT identifier, row_number() OVER () - 1 AS nid FROM (SELECT DISTINCT identifier FROM occ)")
    con.execute("CREATE TABLE occn AS SELECT o.eid, n.nid FROM occ o JOIN nodes n USING (identifier)")
    # A star per event (its smallest node to each other one) connects what a clique would.
    con.execute("""
        CREATE TABLE edges AS
        SELECT DISTINCT f.m AS a, o.nid AS b
        FROM occn o JOIN (SELECT eid, min(nid) AS m FROM occn GROUP BY eid) f USING (eid)
        WHERE o.nid <> f.m
    """)
    prepared = time.perf_counter() - t0
    con.execute("CREATE TABLE label AS SELECT nid, nid AS l FROM nodes")
    iterations = 0
    while True:
        iterations += 1
        con.execute("""
            CREATE OR REPLACE TABLE next AS
            SELECT n.nid, least(n.l, coalesce(m.l, n.l)) AS l
            FROM label n LEFT JOIN (
                SELECT e.a AS nid, min(x.l) AS l FROM edges e JOIN label x ON x.nid = e.b GROUP BY e.a
                UNION ALL
                SELECT e.b AS nid, min(x.l) AS l FROM edges e JOIN label x ON x.nid = e.a GROUP BY e.b
            ) m USING (nid)
        """)
        con.execute("CREATE OR REPLACE TABLE next AS SELECT nid, min(l) AS l FROM next GROUP BY nid")
        changed = con.execute("SELECT count(*) FROM next JOIN label USING (nid) WHERE next.l <> label.l").fetchone()[0]
        con.execute("DROP TABLE label")
        con.execute("ALTER TABLE next RENAME TO label")
        if changed == 0:
            break
    con.execute(f"COPY (SELECT n.identifier, l.l AS entity FROM nodes n JOIN label l USING (nid)) TO '{out_csv}' (HEADER, DELIMITER ',')")
    con.execute(f"COPY (SELECT a, b FROM edges) TO '{edges_path}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT identifier, nid FROM nodes) TO '{edges_path}.nodes.parquet' (FORMAT parquet)")
    print(json.dumps({"iterations": iterations, "prepare_seconds": prepared, "total_seconds": time.perf_counter() - t0}))


def igraph_components(edges_path, out_csv):
    """Step 4, in its own process."""
    import duckdb
    import igraph

    t0 = time.perf_counter()
    con = duckdb.connect()
    edges = con.execute(f"SELECT a, b FROM '{edges_path}'").fetchnumpy()
    nodes = con.execute(f"SELECT identifier, nid FROM '{edges_path}.nodes.parquet' ORDER BY nid").fetchnumpy()
    loaded = time.perf_counter() - t0
    g = igraph.Graph(n=len(nodes["nid"]), edges=list(zip(edges["a"].tolist(), edges["b"].tolist())))
    membership = g.connected_components().membership
    with open(out_csv, "w") as f:
        f.write("identifier,entity\n")
        for identifier, component in zip(nodes["identifier"].tolist(), membership):
            f.write(f"{identifier},{component}\n")
    print(json.dumps({"load_seconds": loaded, "total_seconds": time.perf_counter() - t0}))


def same_partition(a_csv, b_csv):
    """Whether two identifier,entity files put the same identifiers in the same groups
    (entity numbers may differ: the mapping between them must be one-to-one)."""
    import duckdb

    con = duckdb.connect()
    a = f"read_csv('{a_csv}', header = true, columns = {{'identifier': 'VARCHAR', 'entity': 'VARCHAR'}}, quote = '\"')"
    b = f"read_csv('{b_csv}', header = true, columns = {{'identifier': 'VARCHAR', 'entity': 'VARCHAR'}}, quote = '\"')"
    row = con.execute(f"""
        SELECT (SELECT count(*) FROM {a}), (SELECT count(*) FROM {b}),
               count(*), count(DISTINCT x.entity), count(DISTINCT y.entity),
               count(DISTINCT (x.entity, y.entity))
        FROM {a} x JOIN {b} y USING (identifier)
    """).fetchone()
    na, nb, joined, ea, eb, pairs = row
    return na == nb == joined and ea == eb == pairs, row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--work", default="/tmp/idgraph-bench-load")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.step == "duckdb":
        return duckdb_stitch(*opts.args, threads=opts.threads)
    if opts.step == "igraph":
        return igraph_components(*opts.args)

    try:
        import duckdb  # noqa: F401
        import igraph  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "duckdb", "python-igraph"], check=True)
    if not os.path.exists(BIN) or os.environ.get("IDGRAPH_BENCH_BUILD", "1") == "1":
        subprocess.run(["swift", "build", "-c", "release", "--product", "idgraph"], cwd=ROOT, check=True)
    os.makedirs(opts.work, exist_ok=True)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, {cpu}; threads for DuckDB: {opts.threads}")
    print("| events | tool | seconds | events/s | peak RSS MiB | notes |")
    print("|---:|---|---:|---:|---:|---|")
    for size in [int(s) for s in opts.sizes.split(",")]:
        w = lambda name: os.path.join(opts.work, f"{size}-{name}")
        archive = w("events.ndjson")
        if not os.path.exists(archive):
            subprocess.run([BIN, "generate", "--events", str(size), "--output", archive], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", w("db")], check=True)
        seconds, rss, out = timed([BIN, "load", "--json", "--db", w("db"), archive])
        summary = json.loads(out)
        print(f"| {size:,} | idgraph load | {seconds:.1f} | {size / seconds:,.0f} | {rss:,.0f} | "
              f"{summary['merges']:,} merges, {summary.get('bulk_records', 0):,} via bulk path |", flush=True)
        subprocess.run([BIN, "export", "--db", w("db"), "--output", w("idgraph.csv")], check=True)
        seconds, rss, out = timed([sys.executable, __file__, "--step", "duckdb", "--threads", str(opts.threads), archive, w("duckdb.csv"), w("edges.parquet")])
        info = json.loads(out)
        duck_seconds = seconds
        print(f"| {size:,} | DuckDB stitching | {seconds:.1f} | {size / seconds:,.0f} | {rss:,.0f} | "
              f"{info['iterations']} label-propagation rounds; reading + edges {info['prepare_seconds']:.1f} s |", flush=True)
        seconds, rss, out = timed([sys.executable, __file__, "--step", "igraph", w("edges.parquet"), w("igraph.csv")])
        info = json.loads(out)
        print(f"| {size:,} | igraph components | {seconds:.1f} | - | {rss:,.0f} | over DuckDB's edges (reading them {info['load_seconds']:.1f} s); add DuckDB's reading + edges for end to end |", flush=True)
        ok1, row1 = same_partition(w("idgraph.csv"), w("duckdb.csv"))
        ok2, row2 = same_partition(w("idgraph.csv"), w("igraph.csv"))
        print(f"  same partition: idgraph = DuckDB: {ok1} {row1}; idgraph = igraph: {ok2} {row2}", flush=True)
        if not (ok1 and ok2):
            sys.exit("the partitions differ")


if __name__ == "__main__":
    main()
