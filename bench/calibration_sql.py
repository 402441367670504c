"""Calibration benchmarks on a simulated raw tract (skycat-sim tract-raw / tract-calibs).

    python3 calibration_sql.py ROWS      (default 10,000,000)

1. photometry: skycat.nanojansky / nanojansky_err / ab_mag against the same arithmetic
   written as plain SQL expressions, over ROWS rows, serial plans (the function-call
   overhead is what is measured).
2. pixel_to_sky with the simulated SIP order-4 WCSs over ROWS rows joined to their
   (visit, detector) calibration, serial: rows/s per core, and the cost over the bare join.
3. bulk: CALL skycat.calibrate_sources over the raw table end to end (rows/s), with the
   time share of reading (scan + join), computing (the calibrated SELECT, not written) and
   writing (the rest).
Every compared pair is checked to give the same sum, so a fast wrong answer cannot win.
Writes the markdown body to stdout.
"""
import os
import statistics
import subprocess
import sys
import time

from sqlbench import psql, time_query

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
SIM = os.environ.get("SKYCAT_SIM", "../target/release/skycat-sim")
VISITS, DETECTORS = 3, 189
PER_DETECTOR = max(1, ROWS // (VISITS * DETECTORS))
N = VISITS * DETECTORS * PER_DETECTOR
RUNS = 5
SERIAL = "SET max_parallel_workers_per_gather = 0;"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def copy_from_sim(table, *args):
    sim = subprocess.Popen([SIM, *map(str, args)], stdout=subprocess.PIPE)
    copy = subprocess.run(["psql", "-X", "-q", "-d", "skycat_bench", "-c", f"COPY {table} FROM STDIN (FORMAT csv)"],
                          stdin=sim.stdout, capture_output=True, text=True)
    sim.wait()
    if copy.returncode or sim.returncode:
        raise SystemExit(f"loading {table} failed: {copy.stderr}")


def setup():
    psql("DROP DATABASE IF EXISTS skycat_bench;", db="postgres")
    psql("CREATE DATABASE skycat_bench;", db="postgres")
    psql("SET client_min_messages = warning; CREATE EXTENSION skycat;"
         "CREATE TABLE calibs (visit bigint, detector int, calib_mean float8, calib_err float8, wcs skycat.wcs,"
         " PRIMARY KEY (visit, detector));"
         "CREATE TABLE raw (source_id bigint, visit bigint, detector int, x float8, y float8, x_err float8,"
         " y_err float8, psf_inst_flux float8, psf_inst_flux_err float8, ap_inst_flux float8, ap_inst_flux_err float8);")
    tract = ["--visits", VISITS, "--detectors", DETECTORS]
    copy_from_sim("calibs", "tract-calibs", *tract)
    log(f"loading {N:,} raw rows")
    copy_from_sim("raw", "tract-raw", *tract, "--per-detector", PER_DETECTOR)
    psql("CREATE TABLE phot AS SELECT r.psf_inst_flux AS f, r.psf_inst_flux_err AS fe, c.calib_mean AS c,"
         " c.calib_err AS ce FROM raw r JOIN calibs c USING (visit, detector);"
         "VACUUM ANALYZE raw; VACUUM ANALYZE calibs; VACUUM ANALYZE phot; CHECKPOINT;")


def timed(name, sql, settings=SERIAL):
    med, runs = time_query(sql, RUNS, settings)
    log(f"{name}: median {med:.0f} ms {['%.0f' % r for r in runs]}")
    return med, runs


def same_result(a, b, rel=1e-9):
    va = float(psql(SERIAL + a).strip().splitlines()[-1])
    vb = float(psql(SERIAL + b).strip().splitlines()[-1])
    assert abs(va - vb) <= rel * max(abs(va), abs(vb)), (a, va, b, vb)


def photometry():
    # NaN fluxes (failed measurements) are left out so the sums compare (NaN = NaN in SQL).
    where = " FROM phot WHERE f <> 'NaN'"
    pairs = [
        ("nanojansky", "SELECT sum(f * c)" + where, "SELECT sum(skycat.nanojansky(f, c))" + where),
        ("nanojansky_err", "SELECT sum(sqrt((fe * c) * (fe * c) + (f * ce) * (f * ce)))" + where,
         "SELECT sum(skycat.nanojansky_err(f, fe, c, ce))" + where),
        ("ab_mag", "SELECT sum(CASE WHEN f > 0 THEN -2.5 * log(f * c) + 31.4 END)" + where,
         "SELECT sum(skycat.ab_mag(f * c))" + where),
    ]
    base, base_runs = timed("scan", "SELECT sum(f)" + where)
    lines = [
        f"Table `phot`: {N:,} rows (instrumental flux and error, calibration and error, joined from the "
        f"simulated tract); serial plans; median of {RUNS} runs after a warm-up. Each pair gives the "
        "same sum (checked). The plain expressions use `x * x`, not `x ^ 2` (float8pow is slower).",
        "",
        "| computation | plain SQL expression | skycat function | ratio function / expression | over the scan: expression | over the scan: function |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, plain, ours in pairs:
        same_result(plain, ours)
        p, _ = timed(f"{name} plain", plain)
        o, _ = timed(f"{name} skycat", ours)
        lines.append(f"| {name} | {p:.0f} ms | {o:.0f} ms | **{o / p:.2f}** | "
                     f"{(p - base) * 1e6 / N:.1f} ns/row | {(o - base) * 1e6 / N:.1f} ns/row |")
    lines += ["", f"Scan baseline `sum(f)`: {base:.0f} ms ({', '.join('%.0f' % r for r in base_runs)})."]
    return lines


def astrometry():
    join = " FROM raw r JOIN calibs c USING (visit, detector)"
    base, _ = timed("join", "SELECT sum(r.x + r.y)" + join)
    one, one_runs = timed(
        "pixel_to_sky once per row",
        "SELECT sum((p).ra + (p).dec) FROM (SELECT skycat.pixel_to_sky(c.wcs, r.x, r.y) AS p" + join + " OFFSET 0) s")
    twice, _ = timed(
        "pixel_to_sky per column",
        "SELECT sum((skycat.pixel_to_sky(c.wcs, r.x, r.y)).ra + (skycat.pixel_to_sky(c.wcs, r.x, r.y)).dec)" + join)
    lateral, _ = timed(
        "pixel_to_sky lateral",
        "SELECT sum(p.ra + p.dec)" + join + " CROSS JOIN LATERAL skycat.pixel_to_sky(c.wcs, r.x, r.y) p")
    cov, _ = timed(
        "pixel_to_sky_cov",
        "SELECT sum((e).ra_err_arcsec) FROM (SELECT skycat.pixel_to_sky_cov(c.wcs, r.x, r.y, r.x_err, r.y_err) AS e"
        + join + " OFFSET 0) s")
    psql("DROP TABLE IF EXISTS pos; CREATE TABLE pos AS SELECT visit, detector, (p).ra, (p).dec"
         " FROM (SELECT r.visit, r.detector, skycat.pixel_to_sky(c.wcs, r.x, r.y) AS p" + join +
         " WHERE r.source_id % 10 = 0 OFFSET 0) s; VACUUM ANALYZE pos;")
    n_pos = N // 10
    pos_join = " FROM pos p JOIN calibs c USING (visit, detector)"
    pos_base, _ = timed("pos join", "SELECT sum(p.ra + p.dec)" + pos_join)
    inv, _ = timed("sky_to_pixel",
                   "SELECT sum((q).x + (q).y) FROM (SELECT skycat.sky_to_pixel(c.wcs, p.ra, p.dec) AS q" + pos_join +
                   " OFFSET 0) s")
    per_row = (one - base) * 1e6 / N
    return [
        f"{N:,} raw rows joined to their (visit, detector) row of `calibs` (567 simulated TAN-SIP order-4 WCSs, "
        f"4072 x 4000 pixels); serial plans; median of {RUNS} runs.",
        "",
        "| query | median | rows/s (one core) | ns/row over the join |",
        "|---|---:|---:|---:|",
        f"| join only, `sum(x + y)` | {base:.0f} ms | {N / base * 1e3:,.0f} | - |",
        f"| `pixel_to_sky` once per row (subquery with `OFFSET 0`) | {one:.0f} ms | **{N / one * 1e3:,.0f}** | {per_row:.0f} |",
        f"| `(pixel_to_sky(...)).ra + (pixel_to_sky(...)).dec` (called per column) | {twice:.0f} ms | {N / twice * 1e3:,.0f} | {(twice - base) * 1e6 / N:.0f} |",
        f"| `CROSS JOIN LATERAL pixel_to_sky(...)` | {lateral:.0f} ms | {N / lateral * 1e3:,.0f} | {(lateral - base) * 1e6 / N:.0f} |",
        f"| `pixel_to_sky_cov` | {cov:.0f} ms | {N / cov * 1e3:,.0f} | {(cov - base) * 1e6 / N:.0f} |",
        "",
        f"`sky_to_pixel` (the SIP inverse by Newton's method from the forward coefficients; these headers have no "
        f"AP/BP) on the sky positions of every tenth source ({n_pos:,} rows, joined the same way): {inv:.0f} ms, "
        f"{n_pos / inv * 1e3:,.0f} rows/s, {(inv - pos_base) * 1e6 / n_pos:.0f} ns/row over the join.",
        "",
        f"pixel_to_sky runs: {', '.join('%.0f' % r for r in one_runs)} ms.",
    ]


def bulk():
    psql("DROP TABLE IF EXISTS src; DELETE FROM skycat.calibration_progress;")
    join = " FROM raw r JOIN calibs c USING (visit, detector)"
    read, _ = timed("read", "SELECT sum(r.x + r.y + r.psf_inst_flux + r.ap_inst_flux)" + join)
    compute, _ = timed(
        "read+compute",
        "SELECT sum((q.p).ra + (q.e).ra_err_arcsec + skycat.nanojansky(q.psf_inst_flux, q.calib_mean)"
        " + skycat.nanojansky_err(q.psf_inst_flux, q.psf_inst_flux_err, q.calib_mean, q.calib_err)"
        " + skycat.nanojansky(q.ap_inst_flux, q.calib_mean)"
        " + skycat.nanojansky_err(q.ap_inst_flux, q.ap_inst_flux_err, q.calib_mean, q.calib_err))"
        " FROM (SELECT r.*, c.calib_mean, c.calib_err, skycat.pixel_to_sky(c.wcs, r.x, r.y) AS p,"
        " skycat.pixel_to_sky_cov(c.wcs, r.x, r.y, r.x_err, r.y_err, 0) AS e" + join + " OFFSET 0) q")
    totals = []
    for k in range(3):
        psql("DROP TABLE IF EXISTS src; DELETE FROM skycat.calibration_progress; CHECKPOINT;")
        t0 = time.monotonic()
        psql("SET client_min_messages = warning; CALL skycat.calibrate_sources('raw', 'calibs', 'src');")
        totals.append((time.monotonic() - t0) * 1e3)
        log(f"calibrate_sources run {k + 1}: {totals[-1]:.0f} ms")
    written = int(psql("SELECT count(*) FROM src;").strip())
    assert written == N, (written, N)
    total = statistics.median(totals)
    write = max(total - compute, 0.0)
    return [
        f"`CALL skycat.calibrate_sources('raw', 'calibs', 'src')` on {N:,} raw rows (default batches of about "
        "1,000,000 rows, one transaction each), into a new heap table without indexes; "
        f"median of 3 runs ({', '.join('%.0f' % t for t in totals)} ms). The shares come from two more "
        "queries timed in the same session (serial, median of 5): the scan and join alone, and the whole "
        "calibrated SELECT aggregated instead of written.",
        "",
        "| | time | share |",
        "|---|---:|---:|",
        f"| reading (scan raw + hash join calibs) | {read:.0f} ms | {read / total:.0%} |",
        f"| computing (pixel_to_sky, pixel_to_sky_cov, 2 x nanojansky, 2 x nanojansky_err) | {compute - read:.0f} ms | {(compute - read) / total:.0%} |",
        f"| writing (INSERT, WAL, batch commits, progress; also the procedure's one scan for raw rows without a calibration) | {write:.0f} ms | {write / total:.0%} |",
        f"| **end to end** | **{total:.0f} ms** | **{N / total * 1e3:,.0f} rows/s** |",
    ]


def main():
    setup()
    out = ["### Photometry: function call against the plain SQL expression", ""]
    out += photometry()
    out += ["", "### pixel_to_sky (TAN-SIP order 4)", ""]
    out += astrometry()
    out += ["", "### Bulk calibration of a raw tract", ""]
    out += bulk()
    print("\n".join(out))


if __name__ == "__main__":
    main()
