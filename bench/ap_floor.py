"""The write floor of a nightly AP visit: how long PostgreSQL takes just to persist what one visit
must persist, with the matching already done. Part of `make bench-ap` (bench/ap_bench.py).

    python ap_floor.py --dsn DSN --schema S [--visits N] [--json OUT]

The issue's target is a visit 5x faster than a baseline's. Whatever a pipeline computes, each
visit ends with durable writes the issue itself requires: every candidate pair into
dia_source_match, every DIASource into dia_source, the matched objects' new counters and
statistics into object, the new objects, the moving objects' detections. This script times
exactly those writes on skycat's own disk layout (S's dec-stripe partitions with their primary
key and BRIN indexes, fewer indexes than the baselines maintain), replaying what skycat wrote
for each visit of the night it ran in S:

- outside the timing, the visit's rows are staged in temporary tables (analysed): its DIASources
  and pairs from S.dia_source / S.dia_source_match, the objects it updated or created from
  S.object, its moving objects from S.moving_object;
- timed, in one transaction: UPDATE of the matched objects (every column a visit's update
  writes, joined on the primary key, the stripes pruned by the staged dec range), INSERT of the
  new objects (ids negated when staged, so they do not collide with the rows already there), INSERT of the
  DIASources and of the pairs, UPDATE of the moving objects; then ROLLBACK, so S is left as it
  was and the next visit replays against the same state. The rollback leaves out the commit's
  WAL flush (a few milliseconds), so the floor is, if anything, low.

Also timed, apart: reading the field's objects (ids and positions, what any matcher must see)
once, from the object stripes (dec range, BRIN ra ranges) and from object_position.

The UPDATE runs with the planner's choice and again with hash joins off (primary-key probes);
the faster of the two counts. Results to --json:
  {"schema", "visits": [{"visit", "n_updated", "n_new_objects", "n_sources", "n_pairs",
   "update_s", "insert_s", "seconds" (update + inserts), "read_s", "n_read", "update_s_planner",
   "update_s_pk"}, ...]}
"""
import argparse
import json
import time

import psycopg
from psycopg import sql

def q(s, text):
    """`text` with {S} (the AP schema's identifier) filled in."""
    return sql.SQL(text).format(S=s)


def stage(conn, s, visit):
    """The visit's rows into temporary tables: floor_source, floor_pair, floor_object (updated),
    floor_new (created, ids negated so that they do not collide with the rows already in
    object), floor_moving. Returns the row counts and the dec range of the updated objects."""
    conn.execute("DROP TABLE IF EXISTS floor_source, floor_pair, floor_object, floor_new, floor_moving")
    conn.execute(q(s, "CREATE TEMP TABLE floor_source AS SELECT * FROM {S}.dia_source WHERE visit = %s"), (visit,))
    conn.execute(q(s, "CREATE TEMP TABLE floor_pair AS SELECT * FROM {S}.dia_source_match WHERE visit = %s"), (visit,))
    # The visit created an object from each source whose object_id is its own id (LSST's rule,
    # as in sql/ap.sql), and updated the others it matched.
    conn.execute(q(s, """CREATE TEMP TABLE floor_new AS SELECT o.* FROM {S}.object o
                       WHERE o.object_id IN (SELECT dia_source_id FROM floor_source WHERE object_id = dia_source_id)"""))
    conn.execute(q(s, """CREATE TEMP TABLE floor_object AS SELECT o.* FROM {S}.object o
                       WHERE o.object_id IN (SELECT object_id FROM floor_source
                                              WHERE object_id IS NOT NULL AND object_id <> dia_source_id)"""))
    conn.execute(q(s, """CREATE TEMP TABLE floor_moving AS SELECT m.* FROM {S}.moving_object m
                       WHERE m.moving_object_id IN (SELECT moving_object_id FROM floor_source)"""))
    conn.execute("UPDATE floor_new SET object_id = -object_id")
    for t in ("floor_source", "floor_pair", "floor_new", "floor_object", "floor_moving"):
        conn.execute(f"ANALYZE {t}")
    counts = {}
    for key, t in (("n_sources", "floor_source"), ("n_pairs", "floor_pair"), ("n_updated", "floor_object"),
                   ("n_new_objects", "floor_new")):
        counts[key] = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    return counts, conn.execute('SELECT min("dec"), max("dec") FROM floor_object').fetchone()


def read_field(conn, s, schema, visit, fov_radius_deg, margin_deg):
    """Time reading the field's objects (ids and positions: what any matcher must see) once:
    from the object stripes (dec range, BRIN ra ranges, exact cap; the field's ra ranges
    computed first, so that the planner sees constants and uses the BRIN index), and from
    object_position, the narrow copy skycat's associate reads. Returns (stripes_s, n,
    positions_s)."""
    r = fov_radius_deg + margin_deg
    ra, dec = conn.execute(q(s, 'SELECT ra, "dec" FROM {S}.visit WHERE visit = %s'), (visit,)).fetchone()
    lo, hi = conn.execute("SELECT ra_lo, ra_hi FROM skycat.ap_ra_ranges(%s, %s, %s)", (ra, dec, r)).fetchone()
    arms = " OR ".join(f"o.ra BETWEEN {a!r} AND {b!r}" for a, b in zip(lo, hi) if a <= b)
    conn.execute("SET jit = off")
    t0 = time.perf_counter()
    n = conn.execute(q(s, f"""
        SELECT count(*) FROM (SELECT object_id, ra, "dec" FROM {{S}}.object o
                               WHERE o."dec" BETWEEN %(dec)s - %(r)s AND %(dec)s + %(r)s AND ({arms})
                                 AND skycat.dwithin(o.ra, o."dec", %(ra)s, %(dec)s, %(r)s * 3600)) f"""),
        {"ra": ra, "dec": dec, "r": r}).fetchone()[0]
    t1 = time.perf_counter()
    field_q = conn.execute("SELECT skycat._ap_field_query(%s, %s, %s, %s)", (schema, ra, dec, r)).fetchone()[0]
    t2 = time.perf_counter()
    conn.execute(f"SELECT count(*) FROM ({field_q}) f").fetchone()
    t3 = time.perf_counter()
    return t1 - t0, n, t3 - t2


def replay(conn, s, bands_assign, dec_range, hash_join):
    """One timed replay of the staged writes, rolled back. Returns (update_s, insert_s)."""
    conn.execute("BEGIN")
    try:
        conn.execute("SET LOCAL jit = off")
        if not hash_join:
            conn.execute("SET LOCAL enable_hashjoin = off")
            conn.execute("SET LOCAL enable_mergejoin = off")
        t0 = time.perf_counter()
        # The dec range of the staged objects (constants: pruned at planning) prunes the
        # stripes, as ap_post_visit does.
        # The columns ap_post_visit's UPDATE writes.
        conn.execute(sql.SQL("""UPDATE {S}.object t SET n_dia_sources = f.n_dia_sources, first_mjd = f.first_mjd,
                                       last_mjd = f.last_mjd, reclassified_moving = f.reclassified_moving, {assign}
                                  FROM floor_object f
                                 WHERE t.object_id = f.object_id AND t."dec" = f."dec"
                                   AND t."dec" BETWEEN %s AND %s""").format(S=s, assign=sql.SQL(bands_assign)),
                     dec_range)
        t1 = time.perf_counter()
        conn.execute(q(s, "INSERT INTO {S}.object SELECT * FROM floor_new"))
        conn.execute(q(s, "INSERT INTO {S}.dia_source SELECT * FROM floor_source"))
        conn.execute(q(s, "INSERT INTO {S}.dia_source_match SELECT * FROM floor_pair"))
        conn.execute(q(s, """UPDATE {S}.moving_object m SET n_detections = f.n_detections, last_mjd = f.last_mjd,
                                 ra = f.ra, "dec" = f."dec" FROM floor_moving f
                           WHERE m.moving_object_id = f.moving_object_id"""))
        t2 = time.perf_counter()
    finally:
        conn.execute("ROLLBACK")
    return t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--schema", required=True, help="the AP schema skycat ran the night in")
    ap.add_argument("--visits", type=int, help="replay only the first N visits")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    s = sql.Identifier(args.schema)
    results = []
    with psycopg.connect(args.dsn, autocommit=True, application_name="ap_floor") as conn:
        visits = [r[0] for r in conn.execute(
            q(s, "SELECT visit FROM {S}.visit_log WHERE phase = 'post' ORDER BY visit LIMIT %s"),
            (args.visits,)).fetchall()]
        policy = dict(conn.execute(q(s, "SELECT key, value FROM {S}.policy")).fetchall())
        bands_assign = conn.execute("SELECT skycat.ap_band_columns('assign', 'f')").fetchone()[0]
        fov = float(policy["fov_radius_deg"])
        margin = max(float(policy["match_radius_arcsec"]), float(policy["mops_radius_arcsec"])) / 3600
        for visit in visits:
            counts, dec_range = stage(conn, s, visit)
            read_s, n_read, read_positions_s = read_field(conn, s, args.schema, visit, fov, margin)
            # The planner's plan, then primary-key probes; the faster replay is the floor.
            tries = [replay(conn, s, bands_assign, dec_range, hash_join) for hash_join in (True, False)]
            update_s = min(t[0] for t in tries)
            insert_s = min(t[1] for t in tries)
            r = {"visit": visit, **counts, "update_s": update_s, "insert_s": insert_s, "seconds": update_s + insert_s,
                 "read_s": read_s, "n_read": n_read, "read_positions_s": read_positions_s,
                 "update_s_planner": tries[0][0], "update_s_pk": tries[1][0]}
            results.append(r)
            print(f"visit {visit}: {counts['n_updated']} objects updated, {counts['n_new_objects']} created, "
                  f"{counts['n_sources']} DIASources, {counts['n_pairs']} pairs: update {update_s:.3f} s "
                  f"(planner {tries[0][0]:.3f}, pk probes {tries[1][0]:.3f}), inserts {insert_s:.3f} s; "
                  f"reading the field's {n_read} objects {read_s:.3f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"schema": args.schema, "visits": results}, f, indent=1)


if __name__ == "__main__":
    main()
