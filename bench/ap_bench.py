"""`make bench-ap`: the nightly Association Pipeline on a simulated survey night, skycat side by
side with two baselines on the same data, as markdown on stdout (bench/run.sh writes it to
docs/benchmarks/ap.md).

    python ap_bench.py DSN OBJECTS REGION VISITS PEAK_VISITS OUTDIR

1. `skycat-ap night` (crates/skycat-ap) simulates a night over a sky of OBJECTS objects in
   REGION (ra0,ra1,dec0,dec1), loads it into a fresh AP schema and runs it through
   ap_prepare_visit / ap_associate / ap_post_visit: 10k DIASources per visit in one session
   (per-phase latencies without contention), the same night in three sessions (prepare n+1,
   associate n and post n-1 at once: the cadence the pipeline sustains), and a night of 40k
   DIASources per visit (DC2's peak).
2. bench/ap_baselines.py runs the one-session night's visits again from the same starting state
   as (a) plain SQL with q3c and (b) a Python client with psycopg + scipy cKDTree, and reports
   how often their chosen object equals skycat's.
Per-visit numbers are medians over the visits of the night.
"""
import json
import os
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
skycat_ap = os.path.join(repo, "target", "release", "skycat-ap")


# AP_BENCH_REPORT_ONLY=1: rewrite the report from the JSON files of the last run in OUTDIR.
REPORT_ONLY = os.environ.get("AP_BENCH_REPORT_ONLY") == "1"


def run(cmd):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    if not REPORT_ONLY:
        subprocess.run(cmd, check=True, stdout=sys.stderr)


def night(dsn, schema, objects, region, visits, per_visit, sessions, outdir, plot=None, variable_fraction=0.2):
    out = os.path.join(outdir, f"{schema}.json")
    cmd = [skycat_ap, "night", "--dsn", dsn, "--schema", schema, "--objects", str(objects), "--region", region,
           "--visits", str(visits), "--sources-per-visit", str(per_visit), "--sessions", str(sessions), "--json", out,
           "--variable-fraction", str(variable_fraction)]
    if plot:
        cmd += ["--plot", plot]
    run(cmd)
    with open(out) as f:
        return json.load(f)


def baseline(dsn, schema, which, outdir):
    out = os.path.join(outdir, f"{schema}_{which}.json")
    run([sys.executable, os.path.join(here, "ap_baselines.py"), "--dsn", dsn, "--schema", schema,
         "--baseline", which, "--json", out])
    with open(out) as f:
        return json.load(f)


def write_floor(dsn, schema, outdir):
    out = os.path.join(outdir, f"{schema}_floor.json")
    run([sys.executable, os.path.join(here, "ap_floor.py"), "--dsn", dsn, "--schema", schema, "--json", out])
    with open(out) as f:
        return json.load(f)


def med(xs):
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else float("nan")


def phase_medians(doc):
    v = doc["visits"]
    return {
        "sources": med([x["n_sources"] for x in v]),
        "prepare": med([x["prepare_s"] for x in v]),
        "associate": med([x["associate_s"] for x in v]),
        "post": med([x["post_s"] for x in v]),
        "cycle": med([x["prepare_s"] + x["associate_s"] + x["post_s"] for x in v]),
        "assoc_post": med([x["associate_s"] + x["post_s"] for x in v]),
        "step": med(doc["step_s"]),
    }


def score_md(doc):
    s = doc["score"]
    return (f"completeness {100 * s['completeness']:.3f}%, purity {100 * s['purity']:.3f}%, moving objects "
            f"{100 * s['moving']:.2f}%, artefacts routed to junk {100 * s['artefacts_junk']:.2f}%, "
            f"DIASources lost {s['lost']}, duplicated {s['duplicated']} (of {s['n_truth']:,})")


def main():
    dsn, objects, region, visits, peak_visits, outdir = sys.argv[1:7]
    objects, visits, peak_visits = int(objects), int(visits), int(peak_visits)
    os.makedirs(outdir, exist_ok=True)
    plot = os.path.join(repo, "docs", "benchmarks", "ap-latency.png")
    one = night(dsn, "ap10k", objects, region, visits, 10_000, 1, outdir)
    q3c = baseline(dsn, "ap10k", "q3c", outdir)
    kd = baseline(dsn, "ap10k", "kdtree", outdir)
    floor = write_floor(dsn, "ap10k", outdir)
    run(["psql", "-X", "-q", dsn, "-c", "DROP SCHEMA ap10k CASCADE; DROP SCHEMA IF EXISTS ap10k_base_q3c CASCADE; "
         "DROP SCHEMA IF EXISTS ap10k_base_kdtree CASCADE"])
    three = night(dsn, "ap10k3", objects, region, visits, 10_000, 3, outdir, plot=plot)
    run(["psql", "-X", "-q", dsn, "-c", "DROP SCHEMA ap10k3 CASCADE"])
    # Only variable objects are detected: 40k per visit needs half the field's objects varying.
    peak = night(dsn, "ap40k", objects, region, peak_visits, 40_000, 1, outdir, variable_fraction=0.5)
    run(["psql", "-X", "-q", dsn, "-c", "DROP SCHEMA ap40k CASCADE"])

    m1, m3, mp = phase_medians(one), phase_medians(three), phase_medians(peak)
    q3c_s = med([v["seconds"] for v in q3c["visits"]])
    kd_s = med([v["seconds"] for v in kd["visits"]])
    fv = floor["visits"]
    floor_s, floor_upd, floor_ins = (med([v[k] for v in fv]) for k in ("seconds", "update_s", "insert_s"))
    floor_n = med([v["n_updated"] for v in fv])
    read_s = med([v["read_s"] for v in fv])
    n_read = med([v["n_read"] for v in fv])
    budget = min(q3c_s, kd_s) / 5  # 5x faster than both baselines
    if floor_s > budget:
        floor_verdict = ("Writing alone takes longer than a visit 5x faster than both baselines may take: on this "
                         "machine no pipeline that updates the object rows each visit (as the AP design requires) can reach "
                         "the target, however it matches.")
    elif floor_s + read_s > budget:
        floor_verdict = (f"Writing fits in that budget ({budget:.3f} s), but with one read of the field's objects it "
                         "does not: a pipeline reaching 5x would have to keep the field in memory across visits and do "
                         f"the matching, the statistics over the history and its bookkeeping in the "
                         f"{1000 * (budget - floor_s):.0f} ms left. skycat's working set keeps the field, but copying it "
                         f"in and out costs more than the read it saves (prepare {m1['prepare']:.3f} s, post "
                         f"{m1['post']:.3f} s).")
    else:
        floor_verdict = ("The floor leaves room for a 5x-faster visit: the gap is skycat's own overhead above it "
                         "(the working-set copies), not the work every pipeline must do.")
    print(f"""## The night

Sky: {objects:,} objects in ra,dec {region} (skycat-sim `night`, seed 1; 20% variable), FOV radius
1.75 deg, fields visited in pairs and back to back; per visit ~10,000 DIASources (variables at
their objects with 0.1 arcsec noise, recurring and new transients, 3% moving objects with MOPS
predictions, 3% artefacts). {visits} visits, plus {peak_visits} visits of ~40,000 (a sky with 50% of
the objects variable, so that a field has enough to detect). Objects and
DIASources stripe-partitioned (1 deg), BRIN on ra, no other index on the hot path; match radius
1 arcsec, greedy one-to-one. Load (simulate + COPY + primary key + VACUUM) of the 10k night:
{one['load_s']:.0f} s.

## Targets (medians over the visits of a night)

| | measured | target |
|---|---:|---:|
| associate, 10k DIASources (one session) | **{m1['associate']:.3f} s** | < 0.5 s |
| prepare + associate + post, 10k (one session) | **{m1['cycle']:.3f} s** | < 2 s |
| pipeline step, 10k (three sessions: prepare n+1, associate n, post n-1 at once) | **{m3['step']:.3f} s** | (DC2 budget 37 s) |
| prepare + associate + post, 40k (one session) | **{mp['cycle']:.3f} s** | < 5 s |

Per phase (median seconds):

| night | DIASources/visit | prepare | associate | post | sum | step (wall per visit) |
|---|---:|---:|---:|---:|---:|---:|
| 10k, one session | {m1['sources']:,.0f} | {m1['prepare']:.3f} | {m1['associate']:.3f} | {m1['post']:.3f} | {m1['cycle']:.3f} | {m1['step']:.3f} |
| 10k, three sessions | {m3['sources']:,.0f} | {m3['prepare']:.3f} | {m3['associate']:.3f} | {m3['post']:.3f} | {m3['cycle']:.3f} | {m3['step']:.3f} |
| 40k, one session | {mp['sources']:,.0f} | {mp['prepare']:.3f} | {mp['associate']:.3f} | {mp['post']:.3f} | {mp['cycle']:.3f} | {mp['step']:.3f} |

In three sessions the phases overlap on two cores, so each phase takes longer while the night
advances one visit per step. Per-visit latencies of the three-session night:
![per-visit phase latencies](ap-latency.png)

Association against the simulator's truth: 10k night {score_md(one)}; 40k night {score_md(peak)}.

## Side by side with the baselines (the 10k night, same visits, same starting state)

| per visit (median) | seconds | skycat is faster by |
|---|---:|---:|
| skycat: prepare + associate + post (one session) | {m1['cycle']:.3f} | |
| skycat: associate only (what the alert deadline waits for) | {m1['associate']:.3f} | |
| skycat: associate + post (the work a baseline's transaction does) | {m1['assoc_post']:.3f} | |
| (a) plain SQL with q3c: q3c_join + window functions + UPDATE/INSERT | {q3c_s:.3f} | cycle {q3c_s / m1['cycle']:.2f}x, associate + post {q3c_s / m1['assoc_post']:.2f}x, associate {q3c_s / m1['associate']:.2f}x |
| (b) Python client: psycopg + scipy cKDTree, COPY back | {kd_s:.3f} | cycle {kd_s / m1['cycle']:.2f}x, associate + post {kd_s / m1['assoc_post']:.2f}x, associate {kd_s / m1['associate']:.2f}x |

Reading it: a baseline visit is one transaction that matches against the indexed object table
and writes the results, so it compares with skycat's associate + post; skycat's prepare has no
counterpart there (it runs ahead, while the previous visit is associated). Only the associate
phase is on the alert path, and there skycat is faster; per visit in total it is not, and the
5x target is not met: both pipelines write the same rows (candidate pairs, ~9,000
object updates, ~10,000 DIASources), and skycat writes them twice (working set, then disk).

### The floor: what any pipeline must spend per visit

Whatever a pipeline computes, a visit ends with the durable writes the pipeline requires: the
candidate pairs, the DIASources, the matched objects' new statistics, the new objects.
bench/ap_floor.py replays exactly the rows skycat wrote for each visit of this night on skycat's
own disk layout (dec stripes with only a primary key and BRIN, fewer indexes than the baselines
keep), with the matching already done, in a transaction rolled back after the timing (the
faster of the planner's plan and primary-key probes; median over the visits), and, apart, one
read of the field's objects as ap_prepare_visit selects them:

| per visit (median) | seconds |
|---|---:|
| UPDATE of the ~{floor_n:,.0f} matched objects | {floor_upd:.3f} |
| INSERT of the new objects, DIASources and pairs, UPDATE of the moving objects | {floor_ins:.3f} |
| **the write floor** (the two above) | **{floor_s:.3f}** |
| reading the field's ~{n_read:,.0f} objects (ids and positions) from the stripes | {read_s:.3f} |
| the write floor + one read of the field | {floor_s + read_s:.3f} |
| a visit 5x faster than (a) q3c | {q3c_s / 5:.3f} |
| a visit 5x faster than (b) cKDTree | {kd_s / 5:.3f} |

The write floor is {100 * floor_s / q3c_s:.0f}% of a q3c visit and {100 * floor_s / kd_s:.0f}% of a cKDTree visit; skycat's
whole cycle is {m1['cycle'] / floor_s:.1f}x the floor. {floor_verdict}

Baseline setup (copying the {objects:,}-object table and building its indexes, not counted per
visit): q3c {q3c['setup_s']:.0f} s, kdtree {kd['setup_s']:.0f} s. Agreement of the chosen object
with skycat's: q3c {fmt_agree(q3c)}, kdtree {fmt_agree(kd)} (q3c's plain-SQL assignment is mutual
nearest, not greedy).
""")


def fmt_agree(doc):
    a = doc.get("agreement")
    if not a:
        return "n/a"
    return f"{100 * a['fraction']:.3f}% ({a['n_differ']} of {a['n_sources']:,} differ)"


if __name__ == "__main__":
    main()
