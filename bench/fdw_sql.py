"""Files as tables: skycat_files over simulated Parquet vs a heap table with the same rows.

    python3 fdw_sql.py OBJECTS DIR

1. Generates OBJECTS objects' ForcedSource rows as Parquet (skycat-sim forced-parquet: 20 files,
   12 columns, 131,072-row row groups; 196,000 objects = ~20M rows) in DIR, unless DIR already
   holds that size.
2. Loads the same rows into a heap table with `COPY FROM` of a CSV export (the usual way in),
   timed, and for comparison through the wrapper (`INSERT ... SELECT * FROM` the foreign table).
3. Times each query on both tables (median of RUNS runs after a warm-up, PostgreSQL's default
   planner settings, then with parallel workers off): full scans of two float columns, of a
   text and a float column, a selective range on the sorted id (no index on the heap table).
4. write_parquet throughput against `COPY ... TO` CSV of the same rows.
Writes the markdown body to stdout; progress to stderr.
"""
import json
import os
import subprocess
import sys

from sqlbench import psql, time_once, time_query

OBJECTS = int(sys.argv[1]) if len(sys.argv) > 1 else 196_000
DIR = sys.argv[2] if len(sys.argv) > 2 else "/tmp/skycat_bench_fdw"
SIM = os.environ.get("SKYCAT_SIM", "../target/release/skycat-sim")
DB = "skycat_bench_fdw"
RUNS = 5
EXPORT_ROWS = 2_000_000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def q(sql):
    return psql(sql, db=DB)


def timed(sql):
    return time_once(sql, db=DB)


def generate():
    marker = os.path.join(DIR, "objects.txt")
    if os.path.exists(marker) and open(marker).read().strip() == str(OBJECTS):
        log(f"reusing {DIR}")
        return
    log(f"writing Parquet for {OBJECTS:,} objects to {DIR}")
    subprocess.run(["rm", "-rf", DIR], check=True)
    subprocess.run([SIM, "forced-parquet", "--objects", str(OBJECTS), "--files", "20", "--dir", DIR], check=True)
    subprocess.run(["chmod", "-R", "a+rwX", DIR], check=True)
    open(marker, "w").write(str(OBJECTS))


def setup():
    psql(f"DROP DATABASE IF EXISTS {DB};", db="postgres")
    psql(f"CREATE DATABASE {DB};", db="postgres")
    q(f"""SET client_min_messages = warning; CREATE EXTENSION skycat;
          CREATE SERVER outputs FOREIGN DATA WRAPPER skycat_files OPTIONS (root '{DIR}');
          IMPORT FOREIGN SCHEMA files FROM SERVER outputs INTO public
            OPTIONS (files 'tract=*/forcedSource.parquet', table 'fs');""")
    rows = int(q("SELECT count(*) FROM fs;").strip())
    csv = os.path.join(DIR, "all.csv")
    if not os.path.exists(csv):
        log("exporting CSV for the COPY FROM baseline")
        q(f"COPY (SELECT * FROM fs) TO '{csv}' (FORMAT csv);")
    cols = q("""SELECT string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                  FROM pg_attribute WHERE attrelid = 'fs'::regclass AND attnum > 0;""").strip()
    log("loading the heap table with COPY FROM")
    q(f"CREATE TABLE heap ({cols});")
    copy_ms = timed(f"COPY heap FROM '{csv}' (FORMAT csv);")
    q("VACUUM ANALYZE heap; CHECKPOINT;")
    log("loading a second heap table through the wrapper")
    q(f"CREATE TABLE heap_via_fdw ({cols});")
    fdw_load_ms = timed("INSERT INTO heap_via_fdw SELECT * FROM fs;")
    same = q("SELECT (SELECT count(*) FROM heap) = (SELECT count(*) FROM heap_via_fdw);").strip()
    assert same == "t", "the two loads differ in row count"
    q("DROP TABLE heap_via_fdw; CHECKPOINT;")
    return rows, copy_ms, fdw_load_ms


QUERIES = [
    ("two float columns", "SELECT sum(psf_flux), sum(psf_flux_err) FROM {t}"),
    ("a text and a float column", "SELECT band, sum(psf_flux) FROM {t} GROUP BY band"),
    ("five columns, filtered", "SELECT count(*), avg(mjd) FROM {t} WHERE psf_flux / psf_flux_err > 5 AND ra < 180 AND flags = 0"),
    ("selective: 10k ids of 20M", "SELECT count(*), sum(psf_flux) FROM {t} WHERE forced_source_id BETWEEN 5000000 AND 5010000"),
]


def row_groups_read(sql):
    plan = json.loads(q(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql};"))

    def find(node):
        if node.get("Node Type") == "Foreign Scan":
            return node.get("Row Groups Read")
        for child in node.get("Plans", []):
            r = find(child)
            if r:
                return r
        return None

    return find(plan[0]["Plan"])


def main():
    generate()
    rows, copy_ms, fdw_load_ms = setup()
    out = [f"**Data:** {rows:,} rows x 12 columns in 20 Parquet files ({OBJECTS:,} simulated objects), "
           f"{int(subprocess.run(['du', '-sm', DIR], capture_output=True, text=True).stdout.split()[0]):,} MB "
           "on disk including the CSV export.", ""]
    out += ["## Loading the same rows into a heap table", "",
            "| how | time | rows/s |", "|---|---|---|",
            f"| `COPY heap FROM` CSV (the usual way in) | {copy_ms / 1000:.1f} s | {rows / copy_ms * 1000 / 1e6:.2f}M |",
            f"| `INSERT INTO heap SELECT * FROM` the foreign table | {fdw_load_ms / 1000:.1f} s | "
            f"{rows / fdw_load_ms * 1000 / 1e6:.2f}M |",
            "", "Querying the files in place needs neither.", ""]
    for title, settings in [("default planner settings (parallel plans allowed, 2 workers)", ""),
                            ("max_parallel_workers_per_gather = 0 (serial)", "SET max_parallel_workers_per_gather = 0;")]:
        out += [f"## Queries, {title}", "",
                f"Median of {RUNS} runs after a warm-up (all runs in ms in the last column).", "",
                "| query | skycat_files | heap table | speed vs heap | runs (files / heap) |", "|---|---|---|---|---|"]
        for name, sql in QUERIES:
            log(f"timing: {name} ({title})")
            f_med, f_all = time_query(sql.format(t="fs"), runs=RUNS, settings=settings, db=DB)
            h_med, h_all = time_query(sql.format(t="heap"), runs=RUNS, settings=settings, db=DB)
            fmt = lambda xs: ", ".join(f"{x:.0f}" for x in xs)  # noqa: E731
            out.append(f"| {name}: `{sql.format(t='t')}` | {f_med:,.0f} ms | {h_med:,.0f} ms | "
                       f"**{h_med / f_med:.2f}x** | {fmt(f_all)} / {fmt(h_all)} |")
        out.append("")
    sel = QUERIES[-1][1].format(t="fs")
    out += [f"Row groups read by the selective query (EXPLAIN ANALYZE): {row_groups_read(sel)}.", ""]

    log("timing write_parquet")
    export = f"SELECT * FROM heap WHERE forced_source_id < {EXPORT_ROWS}"
    wp, cp = [], []
    for i in range(3):
        wp.append(timed(f"SELECT skycat.write_parquet($${export}$$, '{DIR}/export_{i}.parquet');"))
        cp.append(timed(f"COPY ({export}) TO '{DIR}/export_{i}.csv' (FORMAT csv);"))
    n = int(q(f"SELECT count(*) FROM ({export}) e;").strip())
    wp.sort()
    cp.sort()
    subprocess.run(f"rm -f {DIR}/export_*", shell=True)
    out += ["## Export", "",
            f"{n:,} rows x 12 columns, median of 3 runs (the query itself included in both):", "",
            "| how | time | rows/s |", "|---|---|---|",
            f"| `skycat.write_parquet` (zstd, statistics) | {wp[1] / 1000:.2f} s | {n / wp[1] * 1000 / 1e6:.2f}M |",
            f"| `COPY (...) TO` CSV | {cp[1] / 1000:.2f} s | {n / cp[1] * 1000 / 1e6:.2f}M |", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
