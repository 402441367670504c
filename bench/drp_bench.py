"""`make bench-drp`: DRP post-processing (sql/drp.sql) on a simulated data release, each step
side by side with a plain-PostgreSQL baseline measured in the same run, as markdown on stdout
(bench/run.sh writes it to docs/benchmarks/drp.md; progress goes to stderr).

    python drp_bench.py DSN OUTDIR

1. skycat-sim drp writes a 4-tract release (DRP_BENCH_OBJECTS objects, DRP_BENCH_VISITS visits per tract)
   under DRP_BENCH_DIR (default /tmp/skycat_bench_drp: the server must read it); an existing
   release of the same size is reused.
2. Ingest + calibrate: drp_ingest_tract for every tract on a fresh schema (first ingest, no
   re-ingest); baseline: the same rows of one tract as CSV, COPY'd into empty tables with the
   same stripe partitioning and BRIN index.
3. drp_deduplicate_objects, then CALL drp_summarize_forced_sources beside count(*) and a plain
   GROUP BY object_id, band over forced_source in the same session.
4. drp_export of object (full size) and forced_source (full size with
   DRP_BENCH_EXPORT_FULL=1, else on a small release of DRP_BENCH_EXPORT_OBJECTS objects).

Knobs: DRP_BENCH_OBJECTS (740,000) and DRP_BENCH_VISITS (96): ~50M forced sources (an object
keeps one per visit of its tract; ~71% of the simulated objects are primary), DRP_BENCH_COPY_RUNS (1),
DRP_BENCH_COUNT_RUNS (3), DRP_BENCH_EXPORT_OBJECTS (50,000), DRP_BENCH_EXPORT_FULL (0),
DRP_BENCH_STAGES (ingest,summarise,copy,export: re-run some; the others keep their last
results in OUTDIR/results.json), DRP_BENCH_REPORT_ONLY=1 (rewrite the report from that file).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import psycopg

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
sys.path.insert(0, here)
import sqlbench  # noqa: E402

SIM = os.path.join(repo, "target", "release", "skycat-sim")
OBJECTS = int(os.environ.get("DRP_BENCH_OBJECTS", "740000"))
VISITS = int(os.environ.get("DRP_BENCH_VISITS", "96"))
DATA = os.environ.get("DRP_BENCH_DIR", "/tmp/skycat_bench_drp")
COPY_RUNS = int(os.environ.get("DRP_BENCH_COPY_RUNS", "1"))
COUNT_RUNS = int(os.environ.get("DRP_BENCH_COUNT_RUNS", "3"))
SUMMARISE_RUNS = int(os.environ.get("DRP_BENCH_SUMMARISE_RUNS", "3"))
EXPORT_OBJECTS = int(os.environ.get("DRP_BENCH_EXPORT_OBJECTS", "50000"))
EXPORT_FULL = os.environ.get("DRP_BENCH_EXPORT_FULL") == "1"
STAGES = os.environ.get("DRP_BENCH_STAGES", "ingest,summarise,copy,export").split(",")
NESTLOOP_OFF = os.environ.get("DRP_BENCH_NESTLOOP", "off") == "off"
REPORT_ONLY = os.environ.get("DRP_BENCH_REPORT_ONLY") == "1"
TABLES = ["source", "dia_source", "forced_source"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def connect(dsn):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.add_notice_handler(lambda d: log("  NOTICE " + d.message_primary))
    return conn


def timed(conn, sql, params=None):
    t0 = time.perf_counter()
    cur = conn.execute(sql, params)
    rows = cur.fetchall() if cur.description else None
    return time.perf_counter() - t0, rows


def simulate(root, objects, visits):
    """The release under root (reused when its release.json has these objects and visits)."""
    meta = os.path.join(root, "release.json")
    if os.path.exists(meta):
        with open(meta) as f:
            doc = json.load(f)
        if doc.get("objects") == objects and doc.get("visits_per_tract") == visits:
            log(f"reusing the release in {root}")
            return None
    subprocess.run(["rm", "-rf", root], check=True)
    log(f"skycat-sim drp --objects {objects} -> {root}")
    t0 = time.perf_counter()
    subprocess.run([SIM, "drp", "--dir", root, "--objects", str(objects), "--tracts", "4",
                    "--visits-per-tract", str(visits), "--seed", "1"], check=True, stdout=sys.stderr)
    return time.perf_counter() - t0


def tracts(root):
    return sorted(int(d.split("=")[1]) for d in os.listdir(root) if d.startswith("tract="))


def du(path):
    return subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0]


def fresh_schema(conn, schema, root):
    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.execute(f"DROP SERVER IF EXISTS {schema}_files CASCADE")
    conn.execute("SELECT skycat.drp_create(%s, %s)", (schema, root))


def ingest_all(conn, schema, root):
    """drp_ingest_tract of every tract on a fresh schema: per-tract seconds and rows."""
    fresh_schema(conn, schema, root)
    if NESTLOOP_OFF:
        # Once autovacuum has analysed object_staging after the first tract, the planner
        # estimates ~1 staged object for the next tract (its rows are not in the statistics
        # yet) and runs the source insert as a nested loop that re-reads the tract's
        # source.parquet once per object: hours instead of seconds.
        conn.execute("SET enable_nestloop = off")
    out = []
    for t in tracts(root):
        log(f"drp_ingest_tract({schema}, {t})")
        s, rows = timed(conn, "SELECT * FROM skycat.drp_ingest_tract(%s, %s)", (schema, t))
        rows = dict(rows)
        written = sum(rows[k] for k in TABLES)
        out.append({"tract": t, "seconds": s, "rows": rows, "written": written, "rows_per_s": written / s})
        log(f"  {s:.1f} s, {written:,} rows written ({written / s:,.0f} rows/s)")
    log(f"drp_deduplicate_objects({schema})")
    s, rows = timed(conn, "SELECT * FROM skycat.drp_deduplicate_objects(%s)", (schema,))
    return out, {"seconds": s, "result": list(rows[0])}


def stage_ingest(dsn, res):
    res["sim_seconds"] = simulate(DATA, OBJECTS, VISITS) or res.get("sim_seconds")
    res["release_bytes"] = int(du(DATA))
    with connect(dsn) as conn:
        res["ingest"], res["dedup"] = ingest_all(conn, "drp", DATA)
        res["table_rows"] = {t: conn.execute(f"SELECT count(*) FROM drp.{t}").fetchone()[0]
                             for t in TABLES + ["object", "object_staging", "calib"]}
        res["table_bytes"] = {t: int(conn.execute("SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s)",
                                              (f"drp.{t}",)).fetchone()[0] or 0)
                              for t in TABLES + ["object"]}


def scan_all_sql(conn):
    """The summary's stream alone over every stripe (no temp table, no write of object): the query
    drp_summarize_partition runs, one statement per stripe as it does."""
    return [r[0] for r in conn.execute(
        "SELECT format('SELECT count(*), sum(rows) FROM (%s) s', "
        "skycat._drp_summary_stream(part, skycat.drp_policy('drp', 'bands')::text[])) "
        "FROM skycat.drp_stripes('drp', 'forced_source') WHERE pg_relation_size(part) > 0 ORDER BY dec_lo").fetchall()]


def timed_all(conn, sqls):
    """Total seconds and the summed first two columns of statements run one after another."""
    total, a, b = 0.0, 0, 0
    for q in sqls:
        s, rows = timed(conn, q)
        total, a, b = total + s, a + rows[0][0], b + (rows[0][1] or 0)
    return total, [(a, b)]


def stage_summarise(dsn, res):
    with connect(dsn) as conn:
        out = {"max_parallel_workers_per_gather": conn.execute("SHOW max_parallel_workers_per_gather").fetchone()[0],
               "work_mem": conn.execute("SHOW work_mem").fetchone()[0]}
        n = conn.execute("SELECT count(*) FROM drp.forced_source").fetchone()[0]  # warm-up
        out["rows"] = n
        log(f"count(*) x {COUNT_RUNS} over {n:,} forced sources")
        out["count_s"] = [timed(conn, "SELECT count(*) FROM drp.forced_source")[0] for _ in range(COUNT_RUNS)]
        log(f"  median {statistics.median(out['count_s']):.2f} s")
        out["summarise_runs"] = []
        out["summarise_serial_runs"] = []
        for k in range(SUMMARISE_RUNS):
            for workers, key in [(out["max_parallel_workers_per_gather"], "summarise_runs"), ("0", "summarise_serial_runs")]:
                conn.execute("SELECT set_config('max_parallel_workers_per_gather', %s, false)", (workers,))
                log(f"CALL skycat.drp_summarize_forced_sources('drp') with {workers} workers (run {k + 1})")
                out[key].append(timed(conn, "CALL skycat.drp_summarize_forced_sources('drp')")[0])
                log(f"  {out[key][-1]:.1f} s")
        conn.execute("RESET max_parallel_workers_per_gather")
        out["summarise_s"] = statistics.median(out["summarise_runs"])
        out["summarise_serial_s"] = statistics.median(out["summarise_serial_runs"])
        out["objects_summarised"] = conn.execute(
            "SELECT count(*) FROM drp.object WHERE r_psf_flux_ndata IS NOT NULL").fetchone()[0]
        out["count_after_s"] = [timed(conn, "SELECT count(*) FROM drp.forced_source")[0] for _ in range(COUNT_RUNS)]
        # The baselines below get the work_mem the summary runs with.
        out["summary_work_mem"] = conn.execute("SELECT skycat.drp_policy('drp', 'work_mem')").fetchone()[0]
        conn.execute("SELECT set_config('work_mem', %s, false)", (out["summary_work_mem"],))
        out["group_by_runs"], out["scan_runs"] = [], []
        scan_sql = scan_all_sql(conn)
        for _ in range(COUNT_RUNS):
            log("SELECT count(*) ... GROUP BY object_id, band")
            s, rows = timed(conn, "SELECT count(*) FROM (SELECT count(*) FROM drp.forced_source GROUP BY object_id, band) g")
            out["group_by_runs"].append(s)
            out["groups"] = rows[0][0]
            log(f"  {s:.1f} s, {out['groups']:,} groups")
            # The summary's own aggregation step alone: every stripe's stream of lc_stats (the
            # scans drp_summarize_partition runs), without the temporary table and the write of object.
            log("the summary's stream alone")
            s, rows = timed_all(conn, scan_sql)
            out["scan_runs"].append(s)
            out["aggregate_objects"] = rows[0][0]
            log(f"  {s:.1f} s, {rows[0][0]:,} objects, {rows[0][1]:,} rows")
        out["group_by_s"] = statistics.median(out["group_by_runs"])
        out["aggregate_s"] = statistics.median(out["scan_runs"])
        plan = conn.execute("EXPLAIN (COSTS OFF) " + max(scan_sql, key=len)).fetchall()
        out["scan_plan_parallel"] = any("Parallel Append" in r[0] for r in plan)
        conn.execute("RESET work_mem")
    res["summarise"] = out


def csv_path(t):
    return f"/tmp/skycat_bench_drp_copy_{t}.csv"


def stage_copy(dsn, res):
    """COPY baseline of the rows drp_ingest_tract wrote for one tract (the median-sized one)."""
    ing = sorted(res["ingest"], key=lambda x: x["written"])
    tract = ing[len(ing) // 2]["tract"]
    out = {"tract": tract, "runs": []}
    with connect(dsn) as conn:
        cols = {}
        for t in TABLES:
            cols[t] = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum", (f"drp.{t}",))]
            collist = ", ".join(f'"{c}"' for c in cols[t])
            log(f"COPY drp.{t} of tract {tract} TO {csv_path(t)}")
            conn.execute(f"COPY (SELECT {collist} FROM drp.{t} WHERE tract = {tract}) TO '{csv_path(t)}' (FORMAT csv)")
            conn.execute(f"DROP TABLE IF EXISTS public.base_{t}")
            conn.execute(f"CREATE TABLE public.base_{t} (LIKE drp.{t} INCLUDING ALL) PARTITION BY RANGE (\"dec\")")
            conn.execute(f"SELECT skycat.create_stripe_partitions('public.base_{t}', 1.0)")
            if not conn.execute("SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s",
                                (f"base_{t}",)).fetchone():
                conn.execute(f"CREATE INDEX ON public.base_{t} USING brin (tract)")
        out["csv_bytes"] = {t: os.path.getsize(csv_path(t)) for t in TABLES}
        for k in range(COPY_RUNS):
            run = {}
            for t in TABLES:
                conn.execute(f"TRUNCATE public.base_{t}")
            conn.execute("CHECKPOINT")
            collist = {t: ", ".join(f'"{c}"' for c in cols[t]) for t in TABLES}
            t0 = time.perf_counter()
            with conn.transaction():  # one transaction, as drp_ingest_tract is
                for t in TABLES:
                    s, _ = timed(conn, f"COPY public.base_{t} ({collist[t]}) FROM '{csv_path(t)}' (FORMAT csv)")
                    run[t] = s
            run["total"] = time.perf_counter() - t0
            out["runs"].append(run)
            log(f"COPY run {k + 1}: {run['total']:.1f} s")
        out["rows"] = {t: conn.execute(f"SELECT count(*) FROM public.base_{t}").fetchone()[0] for t in TABLES}
        for t in TABLES:
            conn.execute(f"DROP TABLE public.base_{t}")
    for t in TABLES:
        os.remove(csv_path(t))
    res["copy"] = out


def export(conn, schema, table, ts):
    d = f"/tmp/skycat_bench_drp_export_{schema}_{table}_{ts}"
    log(f"drp_export({schema}, {table}, {d})")
    s, rows = timed(conn, "SELECT * FROM skycat.drp_export(%s, %s, %s)", (schema, table, d))
    n = sum(r[1] for r in rows)
    files = sum((r[1] > 0) + (r[2] > 0) for r in rows)
    size = int(du(d))
    subprocess.run(["rm", "-rf", d], check=True)
    log(f"  {s:.1f} s, {n:,} rows, {files} files")
    return {"schema": schema, "table": table, "seconds": s, "rows": n, "overlap_rows": sum(r[2] for r in rows),
            "chunks": len(rows), "files": files, "bytes": size, "rows_per_s": n / s}


def stage_export(dsn, res):
    ts = int(time.time())
    out = []
    with connect(dsn) as conn:
        out.append(export(conn, "drp", "object", ts))
        if EXPORT_FULL:
            out.append(export(conn, "drp", "forced_source", ts))
            out += [e for e in res.get("export", []) if e["schema"] == "drp_small"]  # keep earlier small-release rows
        else:
            small = DATA + "_small"
            simulate(small, EXPORT_OBJECTS, VISITS)
            log(f"small release ({EXPORT_OBJECTS:,} objects) for the forced_source export")
            ing, _ = ingest_all(conn, "drp_small", small)
            out.append(export(conn, "drp_small", "object", ts))
            out.append(export(conn, "drp_small", "forced_source", ts))
            res["export_small_ingest"] = ing
            conn.execute("DROP SCHEMA drp_small CASCADE")
            conn.execute("DROP SERVER drp_small_files CASCADE")
    res["export"] = out


def med(xs):
    return statistics.median(xs)


def report(res):
    ing = res["ingest"]
    tot_rows = sum(x["written"] for x in ing)
    tot_s = sum(x["seconds"] for x in ing)
    rows = res["table_rows"]
    gb = lambda b: f"{b / 1e9:.2f} GB"  # noqa: E731
    sim = f"generated in {res['sim_seconds']:.0f} s, " if res.get("sim_seconds") else "release reused from an earlier run, "
    L = []
    L.append(f"""## Data

skycat-sim `drp --objects {OBJECTS:,} --tracts 4 --visits-per-tract {VISITS} --seed 1` ({sim}{gb(res['release_bytes'])}
of Parquet, in DRP_BENCH_DIR). After ingesting the 4 tracts
and de-duplicating: forced_source **{rows['forced_source']:,}** rows ({gb(res['table_bytes']['forced_source'])} with index),
source {rows['source']:,} ({gb(res['table_bytes']['source'])}), dia_source {rows['dia_source']:,}, object {rows['object']:,}
(from {rows['object_staging']:,} staged), calib {rows['calib']:,}. All tables stripe-partitioned by dec (1 deg).

Load average: start `{res.get('uptime_start', '?')}`, end `{res.get('uptime_end', '?')}`.
""")
    if "summarise" in res:
        s = res["summarise"]
        c = med(s["count_s"])
        ca = med(s.get("count_after_s") or s["count_s"])
        wm = f", work_mem {s['summary_work_mem']}" if "summary_work_mem" in s else ""
        runs = len(s["summarise_runs"])
        L.append(f"""
## 1. Summarise forced sources

Same session, work_mem {s['work_mem']} (the summary itself runs with the policy's{wm}).
Every time is the median of {runs} runs (count(*): {len(s['count_s'])}, after a warm-up, and again
after the summaries), the summarise with `max_parallel_workers_per_gather` =
{s['max_parallel_workers_per_gather']} and 0 alternating. The forced sources are stored in object order
(docs/drp.md), so the summary reads every stripe as a stream (Parallel Append of block
ranges: {'yes' if s.get('scan_plan_parallel') else 'no'}, in the plan of the stream alone).

| | seconds | rows/s | ratio |
|---|---:|---:|---:|
| `CALL skycat.drp_summarize_forced_sources('drp')` ({s['rows']:,} rows -> {s['objects_summarised']:,} objects x 6 bands, 114 columns), {s['max_parallel_workers_per_gather']} workers | **{s['summarise_s']:.1f}** | {s['rows'] / s['summarise_s']:,.0f} | |
| the same, serial (0 workers) | {s['summarise_serial_s']:.1f} | {s['rows'] / s['summarise_serial_s']:,.0f} | {s['max_parallel_workers_per_gather']} workers **{s['summarise_serial_s'] / s['summarise_s']:.2f}x** faster |
| `SELECT count(*) FROM drp.forced_source` (before / after) | {c:.2f} / {ca:.2f} | {s['rows'] / c:,.0f} | summarise / count(*) **{s['summarise_s'] / c:.1f}x** |
| the summary's aggregation alone: every stripe's `_drp_summary_scan` stream ({s['aggregate_objects']:,} objects; no temp table, no write of object) | {s['aggregate_s']:.1f} | {s['rows'] / s['aggregate_s']:,.0f} | |
| `SELECT count(*) ... GROUP BY object_id, band` ({s['groups']:,} groups{wm}) | {s['group_by_s']:.1f} | {s['rows'] / s['group_by_s']:,.0f} | aggregation / this **{s['aggregate_s'] / s['group_by_s']:.2f}x** |

Goals: the summarise within 5x of count(*): **{'met' if s['summarise_s'] <= 5 * c else 'not met'}**
({s['summarise_s'] / c:.1f}x); the aggregation within 1.5x of the GROUP BY count:
**{'met' if s['aggregate_s'] <= 1.5 * s['group_by_s'] else 'not met'}** ({s['aggregate_s'] / s['group_by_s']:.2f}x); with
{s['max_parallel_workers_per_gather']} workers at least 1.6x faster than serial:
**{'met' if s['summarise_serial_s'] >= 1.6 * s['summarise_s'] else 'not met'}** ({s['summarise_serial_s'] / s['summarise_s']:.2f}x).
""")
    L.append(f"""
## 2. Ingest + calibrate (`drp_ingest_tract`)

First ingest of each tract into a fresh schema (no re-ingest: nothing to delete). Rows written =
source + dia_source + forced_source (plus a few hundred calib and ~{ing[0]['rows']['object_staging']:,} object_staging rows per
tract, not counted). Each call reads the tract's Parquet files through skycat_files, joins the
calibrations, computes ra/dec and their errors from the WCS for source and dia_source, converts
fluxes to nJy, keeps only rows of the tract's inner region, and writes the partitioned tables
(BRIN on tract) in one transaction.

| tract | seconds | source | dia_source | forced_source | rows written | rows/s |
|---|---:|---:|---:|---:|---:|---:|
""")
    for x in ing:
        r = x["rows"]
        L.append(f"| {x['tract']} | {x['seconds']:.1f} | {r['source']:,} | {r['dia_source']:,} | {r['forced_source']:,} | "
                 f"{x['written']:,} | {x['rows_per_s']:,.0f} |\n")
    L.append(f"| all 4 | {tot_s:.1f} | | | | {tot_rows:,} | **{tot_rows / tot_s:,.0f}** |\n")
    if "copy" in res:
        cp = res["copy"]
        x = next(i for i in ing if i["tract"] == cp["tract"])
        ct = med([r["total"] for r in cp["runs"]])
        crows = sum(cp["rows"].values())
        per = "; ".join(f"{t} {med([r[t] for r in cp['runs']]):.1f} s" for t in TABLES)
        L.append(f"""
Baseline on tract {cp['tract']} (the median-sized one): its {crows:,} rows as they were written, `COPY ... TO`
CSV ({gb(sum(cp['csv_bytes'].values()))}), then `COPY ... FROM` those files into empty tables
`(LIKE drp.<t> INCLUDING ALL) PARTITION BY RANGE ("dec")` + `skycat.create_stripe_partitions(x, 1.0)` +
BRIN (tract), three COPYs in one transaction, after a CHECKPOINT; {len(cp['runs'])} run(s), median
({per}).

| tract {cp['tract']} | seconds | rows | rows/s |
|---|---:|---:|---:|
| `drp_ingest_tract` (Parquet -> calibrated rows) | {x['seconds']:.1f} | {x['written']:,} | **{x['rows_per_s']:,.0f}** |
| `COPY FROM` CSV of the same rows | {ct:.1f} | {crows:,} | **{crows / ct:,.0f}** |

Ratio ingest rows/s / COPY rows/s: **{x['rows_per_s'] / (crows / ct):.2f}x** (goal >= 1x:
**{'met' if x['rows_per_s'] >= crows / ct else 'not met'}**).
""")
    if "export" in res:
        L.append("""
## 3. Export (`drp_export`, Qserv chunk files: 340 stripes, 3 sub-stripes, overlap 0.01667 deg)

| schema.table | rows | overlap rows | chunks | files | size | seconds | rows/s |
|---|---:|---:|---:|---:|---:|---:|---:|
""")
        for e in res["export"]:
            L.append(f"| {e['schema']}.{e['table']} | {e['rows']:,} | {e['overlap_rows']:,} | {e['chunks']} | {e['files']} | "
                     f"{e['bytes'] / 1e6:,.0f} MB | {e['seconds']:.1f} | **{e['rows_per_s']:,.0f}** |\n")
        if any(e["schema"] == "drp_small" for e in res["export"]):
            L.append(f"""
drp_small is a second release of {EXPORT_OBJECTS:,} objects (same simulator settings), ingested and
de-duplicated the same way (a run without DRP_BENCH_EXPORT_FULL=1 exports forced_source there
only, not at full size).
""")
    return "".join(L)


def main():
    dsn, outdir = sys.argv[1:3]
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "results.json")
    res = {}
    if os.path.exists(path):
        with open(path) as f:
            res = json.load(f)
    if not REPORT_ONLY:
        start = uptime()
        log(f"start: {start}")
        if "ingest" in STAGES or "uptime_start" not in res:  # a partial re-run keeps the first start
            res["uptime_start"] = start
        for name, fn in [("ingest", stage_ingest), ("summarise", stage_summarise), ("copy", stage_copy),
                         ("export", stage_export)]:
            if name in STAGES:
                fn(dsn, res)
                res["uptime_end"] = uptime()
                with open(path + ".tmp", "w") as f:
                    json.dump(res, f, indent=1, default=float)
                os.replace(path + ".tmp", path)
        log(f"end: {res['uptime_end']}")
    print(report(res))


if __name__ == "__main__":
    main()
