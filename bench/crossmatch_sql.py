"""Side-by-side cross-match benchmarks against q3c 2.0 (apt), in one session on one cluster.

    python3 crossmatch_sql.py SCALE OUT_DIR     (SCALE 1.0 = the sizes of issue #3)

1. bulk: 1M x 1M within 2, 7.2 and 36 arcsec, uniform and clustered skies:
   skycat.crossmatch(..., 'all') vs q3c_join (indexed) vs skycat.dwithin join (indexed),
   and the "just read both inputs" baseline (skycat.crossmatch_input_rows, the same SPI path).
2. cone: 10k cone searches of 10 arcmin on a 10M-row table: dwithin (B-tree on sky_key) and
   sky_point <@ sky_cone (GiST on sky_point) vs q3c_radial_query; then k nearest neighbours
   (k = 1, 10, 100) of 1,000 points: ORDER BY sky_point <-> LIMIT k (GiST) vs a growing-radius
   dwithin search and q3c with a radius known to be enough.
3. unbalanced: a 100k catalogue against a 500k one (a fifth of a re-observation of the big
   sky, clustered like stars): crossmatch vs q3c_join (indexed) vs the dwithin join.
4. partitioned: a dwithin join probing a table in 180 one-degree declination stripes
   (create_stripe_partitions) against the same rows unpartitioned, serial and parallel.
5. association-sized: 10k sources vs 200k objects in a 1.75-degree field, 1 arcsec, greedy
   and optimal (with error columns).
Data comes from skycat-sim (deterministic); every query's result count is checked equal
between the methods it compares, so a fast wrong answer cannot win.
Writes the markdown body to stdout and plots to OUT_DIR.
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from sqlbench import machine, psql, time_query

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
OUT = sys.argv[2] if len(sys.argv) > 2 else "."
SIM = os.environ.get("SKYCAT_SIM", "../target/release/skycat-sim")
N_BULK = int(1_000_000 * SCALE)
N_CONE_TABLE = int(10_000_000 * SCALE)
N_CONES = 10_000
N_KNN = 1_000
KNN_K = [1, 10, 100]
RADII = [2.0, 7.2, 36.0]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load(table, *sim_args):
    """Create `table` (id, ra, dec, errors) from a skycat-sim run, via COPY."""
    psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id bigint, ra float8, dec float8, "
         "ra_err_arcsec float8, dec_err_arcsec float8);")
    sim = subprocess.Popen([SIM, "sky", *map(str, sim_args)], stdout=subprocess.PIPE)
    copy = subprocess.run(["psql", "-X", "-q", "-d", "skycat_bench", "-c", f"COPY {table} FROM STDIN (FORMAT csv)"],
                          stdin=sim.stdout, capture_output=True, text=True)
    sim.wait()
    if copy.returncode or sim.returncode:
        raise SystemExit(f"loading {table} failed: {copy.stderr}")


def count(sql):
    return int(psql(sql).strip().splitlines()[-1])


def match_queries(left, right, r, what):
    """The three ways of matching table `left` with indexed table `right` within r arcsec
    (crossmatch, q3c_join, dwithin join), after checking that they find the same pairs;
    returns (queries by name, the number of pairs)."""
    queries = {
        "crossmatch": f"SELECT count(*) FROM skycat.crossmatch('SELECT id, ra, dec FROM {left}', 'SELECT id, ra, dec FROM {right}', {r})",
        "q3c_join": f"SELECT count(*) FROM {left} l, {right} r WHERE q3c_join(l.ra, l.dec, r.ra, r.dec, {r} / 3600.0)",
        "dwithin": f"SELECT count(*) FROM {left} l JOIN {right} r ON skycat.dwithin(l.ra, l.dec, r.ra, r.dec, {r})",
    }
    pairs = {name: count(q) for name, q in queries.items()}
    if len(set(pairs.values())) != 1:
        raise SystemExit(f"{what}: result counts differ at {r} arcsec: {pairs}")
    return queries, pairs["crossmatch"]


def bulk():
    rows = []
    for sky, args in [("uniform", ["--kind", "uniform"]), ("clustered", ["--kind", "clustered"])]:
        log(f"bulk: loading {sky} skies ({N_BULK:,} rows each)")
        load(f"l_{sky}", *args, "--n", N_BULK, "--seed", 11)
        load(f"r_{sky}", *args, "--n", N_BULK, "--seed", 11, "--reobserve-seed", 12, "--id0", 50_000_000)
        psql(f"CREATE INDEX ON r_{sky} (q3c_ang2ipix(ra, dec)); CREATE INDEX ON r_{sky} (skycat.sky_key(ra, dec));"
             f"VACUUM ANALYZE l_{sky}; VACUUM ANALYZE r_{sky};")
        n_right = count(f"SELECT count(*) FROM r_{sky}")
        read_ms, _ = time_query(f"SELECT skycat.crossmatch_input_rows('SELECT id, ra, dec FROM l_{sky}') + "
                                f"skycat.crossmatch_input_rows('SELECT id, ra, dec FROM r_{sky}')", 3)
        for r in RADII:
            queries, n_pairs = match_queries(f"l_{sky}", f"r_{sky}", r, f"bulk ({sky})")
            t_xm, runs_xm = time_query(queries["crossmatch"], 3)
            t_q3, runs_q3 = time_query(queries["q3c_join"], 3)
            t_dw, runs_dw = time_query(queries["dwithin"], 3)
            row = dict(sky=sky, radius=r, pairs=n_pairs, n_left=N_BULK, n_right=n_right,
                       read_ms=read_ms, crossmatch_ms=t_xm, q3c_join_ms=t_q3, dwithin_ms=t_dw,
                       runs=dict(crossmatch=runs_xm, q3c_join=runs_q3, dwithin=runs_dw))
            log(json.dumps(row))
            rows.append(row)
        psql(f"DROP TABLE l_{sky}; DROP TABLE r_{sky};")
    return rows


def cone():
    log(f"cone: loading {N_CONE_TABLE:,} rows")
    load("big", "--kind", "uniform", "--n", N_CONE_TABLE, "--seed", 21)
    load("centres", "--kind", "uniform", "--n", N_CONES, "--seed", 22)
    psql("CREATE INDEX ON big (q3c_ang2ipix(ra, dec)); CREATE INDEX ON big (skycat.sky_key(ra, dec));"
         "VACUUM ANALYZE big; VACUUM ANALYZE centres;")
    dw = ("SELECT sum(n) FROM centres c CROSS JOIN LATERAL "
          "(SELECT count(*) AS n FROM big b WHERE skycat.dwithin(b.ra, b.dec, c.ra, c.dec, 600)) x")
    sp = ("SELECT sum(n) FROM centres c CROSS JOIN LATERAL (SELECT count(*) AS n FROM big b "
          "WHERE skycat.sky_point(b.ra, b.dec) OPERATOR(skycat.<@) skycat.sky_cone(c.ra, c.dec, 600)) x")
    q3 = ("SELECT sum(n) FROM centres c CROSS JOIN LATERAL "
          "(SELECT count(*) AS n FROM big b WHERE q3c_radial_query(b.ra, b.dec, c.ra, c.dec, 600 / 3600.0)) x")
    serial = "SET max_parallel_workers_per_gather = 0;"
    centres = [tuple(map(float, line.split("|"))) for line in psql("SELECT ra, dec FROM centres ORDER BY id").split()]
    # As a client would: 10k separate statements with constant centres, one psql session.
    scripts = {
        "dwithin": "".join(f"SELECT count(*) FROM big WHERE skycat.dwithin(ra, dec, {ra!r}, {dec!r}, 600);\n" for ra, dec in centres),
        "q3c": "".join(f"SELECT count(*) FROM big WHERE q3c_radial_query(ra, dec, {ra!r}, {dec!r}, 600 / 3600.0);\n" for ra, dec in centres),
        "sky_point": "".join("SELECT count(*) FROM big WHERE skycat.sky_point(ra, dec) OPERATOR(skycat.<@) "
                             f"skycat.sky_cone({ra!r}, {dec!r}, 600);\n" for ra, dec in centres),
    }
    res = dict(rows=N_CONE_TABLE, cones=N_CONES)

    def measure(name, lateral):
        res[f"{name}_separate_ms"], res[f"{name}_separate_runs"], out = run_script(scripts[name])
        total = sum(int(x) for x in out.split())
        if total != res["found"]:
            raise SystemExit(f"{name}: separate cone searches found {total}, expected {res['found']}")
        res[f"{name}_ms"], res[f"{name}_runs"] = time_query(lateral, 5)
        if name != "q3c":
            res[f"{name}_serial_ms"], res[f"{name}_serial_runs"] = time_query(lateral, 5, serial)
            plan = psql("EXPLAIN (COSTS OFF) " + lateral)
            res[f"{name}_parallel_plan"] = "Gather" in plan
            res[f"{name}_plan"] = plan

    # First with the B-tree on sky_key only (dwithin would use the GiST index once it exists).
    res["found"] = count(q3)
    if count(dw) != res["found"]:
        raise SystemExit("cone search counts differ between dwithin and q3c")
    measure("dwithin", dw)
    measure("q3c", q3)
    t = time.perf_counter()
    psql("CREATE INDEX big_sky_point ON big USING gist (skycat.sky_point(ra, dec)); ANALYZE big;")
    res["gist_build_s"] = time.perf_counter() - t
    if count(sp) != res["found"]:
        raise SystemExit("cone search counts differ between sky_point <@ and q3c")
    measure("sky_point", sp)
    res["knn"] = knn(centres[:N_KNN])
    log(json.dumps({k: v for k, v in res.items() if not k.endswith("_plan")}))
    psql("DROP TABLE big; DROP TABLE centres;")
    return res


def run_script(script, runs=4):
    """Runs a psql script `runs` times; returns (median ms of all but the first, the runs,
    the output of the last)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(["psql", "-X", "-q", "-At", "-d", "skycat_bench"], input=script, capture_output=True, text=True)
        times.append((time.perf_counter() - t) * 1000)
        if r.returncode:
            raise SystemExit(r.stderr)
    return statistics.median(times[1:]), times[1:], r.stdout


def knn(points):
    """The k nearest neighbours of each point, one statement per point, three ways; every
    way must return the same ids in the same order."""
    density = N_CONE_TABLE / 41252.96  # rows per square degree of the uniform sky
    # The plain-SQL way without a radius: start where k rows are expected (times 1.5), double
    # until k are found, then order them.
    psql(f"""CREATE FUNCTION knn_growing(cra float8, cdec float8, k int) RETURNS SETOF bigint
        LANGUAGE plpgsql STABLE AS $$
        DECLARE r float8 := 1.5 * 3600 * sqrt(k / (pi() * {density!r})); n bigint;
        BEGIN
          LOOP
            SELECT count(*) INTO n FROM big WHERE skycat.dwithin(ra, dec, cra, cdec, r);
            EXIT WHEN n >= k;
            r := 2 * r;
          END LOOP;
          RETURN QUERY SELECT id FROM big WHERE skycat.dwithin(ra, dec, cra, cdec, r)
                        ORDER BY skycat.sep_arcsec(ra, dec, cra, cdec), id LIMIT k;
        END $$;""")
    rows = []
    for k in KNN_K:
        gist = "".join("SELECT id FROM big ORDER BY skycat.sky_point(ra, dec) OPERATOR(skycat.<->) "
                       f"skycat.sky_point({ra!r}, {dec!r}) LIMIT {k};\n" for ra, dec in points)
        t_gist, runs_gist, out_gist = run_script(gist)
        # q3c's radius: the largest k-th neighbour distance over these points (known here from
        # the answer; a user would have to guess it), so q3c never comes back short.
        kth = psql("SELECT max(d) FROM (VALUES " + ",".join(f"({ra!r},{dec!r})" for ra, dec in points) + ") p(ra, dec) "
                   "CROSS JOIN LATERAL (SELECT skycat.sky_point(b.ra, b.dec) OPERATOR(skycat.<->) skycat.sky_point(p.ra, p.dec) AS d "
                   "FROM big b ORDER BY 1 LIMIT " + str(k) + ") x").strip().splitlines()[-1]
        radius_deg = float(kth) * 1.0001 / 3600
        q3c = "".join(f"SELECT id FROM big WHERE q3c_radial_query(ra, dec, {ra!r}, {dec!r}, {radius_deg!r}) "
                      f"ORDER BY q3c_dist(ra, dec, {ra!r}, {dec!r}), id LIMIT {k};\n" for ra, dec in points)
        t_q3c, runs_q3c, out_q3c = run_script(q3c)
        grow = "".join(f"SELECT knn_growing({ra!r}, {dec!r}, {k});\n" for ra, dec in points)
        t_grow, runs_grow, out_grow = run_script(grow)
        if not (out_gist.split() == out_q3c.split() == out_grow.split()):
            raise SystemExit(f"k = {k}: the nearest neighbours differ between the methods")
        row = dict(k=k, points=len(points), gist_ms=t_gist, q3c_ms=t_q3c, growing_ms=t_grow, q3c_radius_arcsec=radius_deg * 3600,
                   runs=dict(gist=runs_gist, q3c=runs_q3c, growing=runs_grow))
        log(json.dumps(row))
        rows.append(row)
    return rows


def unbalanced():
    n_big, n_small = int(500_000 * SCALE), int(100_000 * SCALE)
    log(f"unbalanced: {n_small:,} x {n_big:,}")
    load("u_big", "--kind", "clustered", "--n", n_big, "--seed", 41)
    load("u_small", "--kind", "clustered", "--n", n_big, "--seed", 41, "--reobserve-seed", 42, "--id0", 60_000_000)
    psql("DELETE FROM u_small WHERE id % 5 <> 0;"
         "CREATE INDEX ON u_big (q3c_ang2ipix(ra, dec)); CREATE INDEX ON u_big (skycat.sky_key(ra, dec));"
         "VACUUM ANALYZE u_big; VACUUM ANALYZE u_small;")
    rows = []
    for r in [2.0, 36.0]:
        queries, n_pairs = match_queries("u_small", "u_big", r, "unbalanced")
        row = dict(radius=r, pairs=n_pairs, n_small=count("SELECT count(*) FROM u_small"), n_big=n_big)
        for name, q in queries.items():
            row[f"{name}_ms"], row[f"{name}_runs"] = time_query(q, 5)
        log(json.dumps(row))
        rows.append(row)
    psql("DROP TABLE u_big; DROP TABLE u_small;")
    return rows


def partitioned():
    n_big, n_probes = int(2_000_000 * SCALE), int(200_000 * SCALE)
    log(f"partitioned: {n_probes:,} probes x {n_big:,} rows, 180 stripes")
    load("p_flat", "--kind", "uniform", "--n", n_big, "--seed", 51)
    load("p_probes", "--kind", "uniform", "--n", n_probes, "--seed", 52)
    psql("CREATE TABLE p_striped (LIKE p_flat) PARTITION BY RANGE (dec);"
         "SELECT skycat.create_stripe_partitions('p_striped', 1.0);"
         "INSERT INTO p_striped SELECT * FROM p_flat;"
         "CREATE INDEX ON p_flat (skycat.sky_key(ra, dec)); CREATE INDEX ON p_striped (skycat.sky_key(ra, dec));"
         "VACUUM ANALYZE p_flat; VACUUM ANALYZE p_striped; VACUUM ANALYZE p_probes;")
    res = dict(rows=n_big, probes=n_probes, stripes=180, radius=36.0)
    serial = "SET max_parallel_workers_per_gather = 0;"
    q = "SELECT count(*) FROM p_probes p JOIN {t} s ON skycat.dwithin(p.ra, p.dec, s.ra, s.dec, 36)"
    found = {t: count(q.format(t=t)) for t in ["p_flat", "p_striped"]}
    if len(set(found.values())) != 1:
        raise SystemExit(f"partitioned: counts differ: {found}")
    res["pairs"] = found["p_flat"]
    for t in ["p_flat", "p_striped"]:
        res[f"{t}_ms"], res[f"{t}_runs"] = time_query(q.format(t=t), 5)
        res[f"{t}_serial_ms"], res[f"{t}_serial_runs"] = time_query(q.format(t=t), 5, serial)
    plan = psql("EXPLAIN " + q.format(t="p_striped"))
    res["striped_plan_cost"] = plan.split("cost=")[1].split("..")[1].split(" ")[0]
    res["striped_plan_jit"] = "JIT" in plan
    log(json.dumps(res))
    psql("DROP TABLE p_flat; DROP TABLE p_striped; DROP TABLE p_probes;")
    return res


def association():
    log("association: 200k objects, 10k sources in a 1.75 deg field")
    load("objects", "--kind", "field", "--n", 200_000, "--seed", 31)
    load("sources", "--kind", "field", "--n", 200_000, "--seed", 31, "--reobserve-seed", 32,
         "--detect-fraction", 0.05, "--new-fraction", 0, "--id0", 9_000_000)
    psql("VACUUM ANALYZE objects; VACUUM ANALYZE sources;")
    res = dict(objects=count("SELECT count(*) FROM objects"), sources=count("SELECT count(*) FROM sources"))
    for mode in ["greedy", "optimal"]:
        q = (f"SELECT count(*) FROM skycat.crossmatch('SELECT * FROM sources', 'SELECT * FROM objects', 1.0, '{mode}')")
        res[f"{mode}_matches"] = count(q)
        res[f"{mode}_ms"], res[f"{mode}_runs"] = time_query(q, 5)
    log(json.dumps(res))
    return res


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, sky in zip(axes, ["uniform", "clustered"]):
        sel = [r for r in rows if r["sky"] == sky]
        xs = range(len(sel))
        w = 0.2
        for k, (key, label) in enumerate([("read_ms", "read inputs only (SPI)"), ("crossmatch_ms", "skycat.crossmatch"),
                                          ("dwithin_ms", "dwithin join"), ("q3c_join_ms", "q3c_join")]):
            ax.bar([x + (k - 1.5) * w for x in xs], [r[key] / 1000 for r in sel], w, label=label)
        ax.set_xticks(list(xs), [f'{r["radius"]:g}"' for r in sel])
        ax.set_title(f"{N_BULK:,} x {N_BULK:,}, {sky} sky")
        ax.set_xlabel("radius")
    axes[0].set_ylabel("seconds (median)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    # BENCH_PARTS=bulk,cone,association re-runs some parts and reuses the others' last results
    # (docs/benchmarks/crossmatch.json), so one part can be refreshed without the rest.
    parts = os.environ.get("BENCH_PARTS", "bulk,cone,unbalanced,partitioned,association").split(",")
    cache_path = os.path.join(OUT, "crossmatch.json")
    cached = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    psql("DROP DATABASE IF EXISTS skycat_bench;", db="postgres")
    psql("CREATE DATABASE skycat_bench;", db="postgres")
    psql("CREATE EXTENSION skycat; CREATE EXTENSION q3c;")
    # When each part was measured (a reused part keeps its own date and commit, and says so).
    stamps = cached.get("measured", {})
    now = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {machine()['commit']}"
    for part in ["bulk", "cone", "unbalanced", "partitioned", "association"]:
        if part in parts or part not in cached:
            stamps[part] = now
    rows = bulk() if "bulk" in parts or "bulk" not in cached else cached["bulk"]
    c = cone() if "cone" in parts or "cone" not in cached else cached["cone"]
    a = association() if "association" in parts or "association" not in cached else cached["association"]
    u = unbalanced() if "unbalanced" in parts or "unbalanced" not in cached else cached["unbalanced"]
    pt = partitioned() if "partitioned" in parts or "partitioned" not in cached else cached["partitioned"]

    def measured(part):
        when = stamps.get(part, "in an earlier run")
        return "" if when == now else f"(Measured {when}, in an earlier run of this suite.)\n"
    plotted = plot(rows, os.path.join(OUT, "crossmatch-bulk.png"))
    out = []
    out.append(f"### Bulk: {N_BULK:,} x ~{rows[0]['n_right']:,} (right = the left sky re-observed: 80% re-detected "
               "with astrometric noise, 20% new)\n")
    out.append(measured("bulk"))
    out.append("Median of 3 runs. Indexes: `q3c_ang2ipix(ra, dec)` and `skycat.sky_key(ra, dec)` on the right table. "
               "Every method returned the same number of pairs. Speed-ups are q3c_join's time divided by the method's.\n")
    out.append("| sky | radius | pairs | read inputs only | crossmatch | dwithin join | q3c_join | crossmatch vs q3c | "
               "crossmatch / read | dwithin vs q3c | crossmatch input rows/s |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = (r["n_left"] + r["n_right"]) / (r["crossmatch_ms"] / 1000)
        out.append(f"| {r['sky']} | {r['radius']:g}\" | {r['pairs']:,} | {r['read_ms']:.0f} ms | {r['crossmatch_ms']:.0f} ms | "
                   f"{r['dwithin_ms']:.0f} ms | {r['q3c_join_ms']:.0f} ms | **{r['q3c_join_ms'] / r['crossmatch_ms']:.1f}x** | "
                   f"{r['crossmatch_ms'] / r['read_ms']:.2f}x | {r['q3c_join_ms'] / r['dwithin_ms']:.2f}x | {rate / 1e6:.2f} M |")
    if plotted:
        out.append("\n![bulk cross-match times](crossmatch-bulk.png)\n")
    out.append(f"\n### Cone searches: {c['cones']:,} cones of 10 arcmin on {c['rows']:,} rows\n")
    out.append(measured("cone"))
    out.append(f"Both methods found the same {c['found']:,} rows in total. First as a client runs them: "
               f"{c['cones']:,} separate statements with constant centres through one psql session (median of 3 runs "
               "after a warm-up; the per-statement client cost is the same for both).\n")
    out.append("| method | median | per cone | ratio q3c / method |")
    out.append("|---|---:|---:|---:|")
    for key, label in [("dwithin_separate_ms", "skycat.dwithin (B-tree on sky_key)"),
                       ("sky_point_separate_ms", "sky_point <@ sky_cone (GiST on sky_point)"),
                       ("q3c_separate_ms", "q3c_radial_query")]:
        if key in c:
            out.append(f"| {label} | {c[key]:.0f} ms | {c[key] * 1000 / c['cones']:.0f} µs | {c['q3c_separate_ms'] / c[key]:.2f} |")
    out.append("\nThen as one statement, `centres CROSS JOIN LATERAL (count within the cone)` (median of 5 runs):\n")
    out.append("| method | median | ratio q3c / method |")
    out.append("|---|---:|---:|")
    def choice(key):
        return ", parallel" if c.get(key) else ", it chose a serial plan"
    for key, label in [("dwithin_ms", "skycat.dwithin (planner's choice%s)" % choice("dwithin_parallel_plan")),
                       ("dwithin_serial_ms", "skycat.dwithin, serial"),
                       ("sky_point_ms", "sky_point <@ sky_cone (planner's choice%s)" % choice("sky_point_parallel_plan")),
                       ("sky_point_serial_ms", "sky_point <@ sky_cone, serial"),
                       ("q3c_ms", "q3c_radial_query (not parallel safe)")]:
        if key in c:
            out.append(f"| {label} | {c[key]:.0f} ms | {c['q3c_ms'] / c[key]:.2f} |")
    out.append("\n<details><summary>dwithin plan</summary>\n\n```\n" + c["dwithin_plan"].strip() + "\n```\n</details>\n")
    if "knn" in c:
        out.append(f"\n### Nearest neighbours: k nearest of {c['knn'][0]['points']:,} points on {c['rows']:,} rows\n")
        out.append(f"One statement per point through one psql session, median of 3 runs after a warm-up. The GiST index "
                   f"on `skycat.sky_point(ra, dec)` took {c['gist_build_s']:.0f} s to build. All three methods returned the "
                   "same ids in the same order. q3c is given the largest k-th neighbour distance over these points as its "
                   "radius (known here from the answer: a user would have to guess one, and a guess too small returns "
                   "fewer than k); the growing-radius search starts at 1.5x the radius where k rows are expected and "
                   "doubles it until k are found (a PL/pgSQL function over `skycat.dwithin`).\n")
        out.append("| k | ORDER BY sky_point <-> LIMIT k | growing-radius dwithin | q3c with a radius (radius) | vs growing | vs q3c |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for r in c["knn"]:
            out.append(f"| {r['k']} | {r['gist_ms']:.0f} ms | {r['growing_ms']:.0f} ms | {r['q3c_ms']:.0f} ms ({r['q3c_radius_arcsec']:.0f}\") | "
                       f"**{r['growing_ms'] / r['gist_ms']:.2f}x** | **{r['q3c_ms'] / r['gist_ms']:.2f}x** |")
    out.append(f"\n### Unbalanced: {u[0]['n_small']:,} x {u[0]['n_big']:,} (a small catalogue against a big indexed one)\n")
    out.append(measured("unbalanced"))
    out.append("The small side is a fifth of a re-observation of the big, clustered sky. Median of 5 runs; indexes "
               "`q3c_ang2ipix(ra, dec)` and `skycat.sky_key(ra, dec)` on the big table. Every method returned the same "
               "number of pairs.\n")
    out.append("| radius | pairs | crossmatch | dwithin join | q3c_join | crossmatch vs q3c | dwithin vs q3c |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in u:
        out.append(f"| {r['radius']:g}\" | {r['pairs']:,} | {r['crossmatch_ms']:.0f} ms | {r['dwithin_ms']:.0f} ms | "
                   f"{r['q3c_join_ms']:.0f} ms | **{r['q3c_join_ms'] / r['crossmatch_ms']:.1f}x** | "
                   f"{r['q3c_join_ms'] / r['dwithin_ms']:.2f}x |")
    out.append(f"\n### A dwithin join into a declination-partitioned table: {pt['probes']:,} probes x {pt['rows']:,} rows "
               f"in {pt['stripes']} one-degree stripes, {pt['radius']:g}\"\n")
    out.append(measured("partitioned"))
    out.append(f"The same rows in one table and in `create_stripe_partitions` stripes, each with its `sky_key` index; "
               f"{pt['pairs']:,} pairs. Median of 5 runs. The striped plan costs {pt['striped_plan_cost']} "
               f"({'with' if pt['striped_plan_jit'] else 'without'} JIT).\n")
    out.append("| table | planner's choice | serial |")
    out.append("|---|---:|---:|")
    for t, label in [("p_flat", "one table"), ("p_striped", "180 stripes")]:
        out.append(f"| {label} | {pt[t + '_ms']:.0f} ms | {pt[t + '_serial_ms']:.0f} ms |")
    out.append(f"| striped / one table | {pt['p_striped_ms'] / pt['p_flat_ms']:.2f}x | "
               f"{pt['p_striped_serial_ms'] / pt['p_flat_serial_ms']:.2f}x |")
    out.append(f"\n### Association-sized: {a['sources']:,} sources vs {a['objects']:,} objects in a 1.75-degree field, 1 arcsec\n")
    out.append(measured("association"))
    out.append("With error columns on both sides (so `optimal` minimises the Gaussian negative log-likelihood). Median of 5 runs, "
               "including reading both inputs.\n")
    out.append("| mode | matches | median | target |")
    out.append("|---|---:|---:|---|")
    out.append(f"| greedy | {a['greedy_matches']:,} | {a['greedy_ms']:.0f} ms | < 300 ms |")
    out.append(f"| optimal | {a['optimal_matches']:,} | {a['optimal_ms']:.0f} ms | < 1000 ms |")
    print("\n".join(out))
    with open(cache_path, "w") as f:
        json.dump(dict(bulk=rows, cone={k: v for k, v in c.items()}, unbalanced=u, partitioned=pt, association=a, measured=stamps), f, indent=1)


if __name__ == "__main__":
    main()
