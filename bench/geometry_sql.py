"""Side-by-side SQL benchmark of the per-row geometry functions against q3c 2.0 (apt) on the
same table in the same session: separations (skycat.sep_arcsec vs q3c_dist) and partition keys
(skycat.chunk_id / h3_cell / healpix_cell vs q3c_ang2ipix), each over a plain-scan baseline."""
import sys

from sqlbench import psql, time_query

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
RUNS = 5
SERIAL = "SET max_parallel_workers_per_gather = 0;"

SETUP = f"""
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS skycat;
CREATE EXTENSION IF NOT EXISTS q3c;
DROP TABLE IF EXISTS pairs;
SELECT setseed(0.5);
CREATE TABLE pairs AS
SELECT 360 * random() AS ra1, degrees(asin(2 * random() - 1)) AS dec1,
       360 * random() AS ra2, degrees(asin(2 * random() - 1)) AS dec2
  FROM generate_series(1, {ROWS});
VACUUM ANALYZE pairs;
"""

CASES = [
    ("scan baseline: sum(ra1 + dec1 + ra2 + dec2)", "SELECT sum(ra1 + dec1 + ra2 + dec2) FROM pairs"),
    ("skycat.sep_arcsec", "SELECT sum(skycat.sep_arcsec(ra1, dec1, ra2, dec2)) FROM pairs"),
    ("q3c_dist * 3600", "SELECT sum(q3c_dist(ra1, dec1, ra2, dec2) * 3600) FROM pairs"),
    ("skycat.chunk_id (340x3)", "SELECT sum(skycat.chunk_id(ra1, dec1)) FROM pairs"),
    ("skycat.stripe (1 deg)", "SELECT sum(skycat.stripe(dec1, 1.0)) FROM pairs"),
    ("skycat.healpix_cell (depth 12)", "SELECT sum(skycat.healpix_cell(ra1, dec1, 12)) FROM pairs"),
    ("skycat.h3_cell (res 7)", "SELECT sum(skycat.h3_cell(ra1, dec1, 7)) FROM pairs"),
    ("q3c_ang2ipix", "SELECT sum(q3c_ang2ipix(ra1, dec1)) FROM pairs"),
]


def main():
    psql("DROP DATABASE IF EXISTS skycat_bench;", db="postgres")
    psql("CREATE DATABASE skycat_bench;", db="postgres")
    psql(SETUP)
    results = []
    for name, sql in CASES:
        med, runs = time_query(sql, RUNS, SERIAL)
        results.append((name, med, runs))
        print(f"{name}: median {med:.1f} ms {['%.0f' % r for r in runs]}", file=sys.stderr)
    base = results[0][1]
    by_name = {n: m for n, m, _ in results}
    lines = [
        f"Table `pairs`: {ROWS:,} rows of two uniform random positions; serial plans "
        f"(`max_parallel_workers_per_gather = 0`) so the per-row cost is isolated; median of "
        f"{RUNS} runs after a warm-up.",
        "",
        "| query | median ms | all runs (ms) | ns/row over the scan |",
        "|---|---:|---|---:|",
    ]
    for name, med, runs in results:
        extra = (med - base) * 1e6 / ROWS
        lines.append(f"| {name} | {med:.1f} | {', '.join('%.0f' % r for r in runs)} | "
                     f"{'-' if name.startswith('scan') else '%.1f' % extra} |")
    sep = (by_name["skycat.sep_arcsec"] - base) / (by_name["q3c_dist * 3600"] - base)
    lines += [
        "",
        f"- `skycat.sep_arcsec` per-row cost / `q3c_dist` per-row cost: **{sep:.2f}** "
        "(below 1 means skycat is faster).",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
