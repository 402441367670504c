"""The two baselines of the nightly Association Pipeline (AP) benchmark: the association of
skycat's sql/ap.sql (ap_associate + ap_post_visit), done per visit the ways one can without skycat.

    python ap_baselines.py --dsn DSN --schema S --baseline q3c|kdtree
                           [--stage TABLE] [--visits N] [--json OUT]

q3c     plain SQL with the q3c extension: candidate pairs by q3c_join into dia_source_match
        (rank by separation), a one-to-one assignment with window functions (mutual nearest),
        matched objects updated, new objects inserted, MOPS leftovers matched to mops_pred,
        DIASources inserted; plain heap tables with conventional indexes.
kdtree  what LSST does today: a Python client (psycopg 3, numpy, scipy cKDTree) reads the objects
        of the field (q3c_radial_query), matches in memory (greedy one-to-one, as skycat's
        policy assoc_mode = 'greedy'), computes the object statistics in numpy and writes
        everything back with COPY (objects via a temp table + UPDATE ... FROM).

Input: an AP schema S made by skycat.ap_create(S) and loaded (object, moving_object, mops_pred,
visit, source_classification, policy) and a staging table with the night's DIASources in
dia_source_new's columns (--stage, default S.sim_dia_source). S is only read.

Each baseline first builds a private schema S_base_q3c / S_base_kdtree holding S's state before
tonight (if skycat ran the night in S first, what it did tonight is left out, see setup()) and
a copy of the staging rows of the visits to run, indexed by visit. That setup is timed apart.
Then every visit is one transaction, in visit order, timed (wall clock, time.perf_counter) from
reading the visit's DIASources to the commit. Progress goes to stdout, results to --json:
  {"baseline", "setup_s", "visits": [{"visit", "n_sources", "n_pairs", "n_matched",
   "n_new_objects", "n_moving", "seconds"}, ...], "agreement"}
"agreement" compares each DIASource's object_id with skycat's in S.dia_source, when skycat ran
those visits in S (null otherwise).

Environment: bench/run.sh installs the packages into target/bench-venv:
    target/bench-venv/bin/pip install -q 'psycopg[binary]' numpy scipy
"""
import argparse
import json
import math
import time

import numpy as np
import psycopg
from psycopg import sql
from scipy.spatial import cKDTree

BANDS = "ugrizy"
STATS = ("mean", "mean_err", "sigma", "ndata", "min", "max")
SOURCE_COLUMNS = ("dia_source_id", "visit", "detector", "ra", "dec", "ra_err_arcsec", "dec_err_arcsec",
                  "mjd", "band", "psf_flux", "psf_flux_err", "snr", "class_id")
# A flux enters the statistics when flux and error are finite and the error positive (the rule
# of skycat.flux_mean). NaN sorts above Infinity in PostgreSQL and NULL compares as unknown, so
# these comparisons also drop NaN and NULL.
USED = "abs(psf_flux) < 'Infinity' AND psf_flux_err > 0 AND psf_flux_err < 'Infinity'"


def band_columns(band):
    return [f"{band}_psf_flux_{s}" for s in STATS]


def band_stats_sql(band):
    """skycat's per-band object statistics of `band` as aggregates over DIASource rows."""
    f = f"FILTER (WHERE band = '{band}' AND {USED})"
    mean, err, sigma, ndata, lo, hi = band_columns(band)
    return (f"sum(psf_flux / psf_flux_err ^ 2) {f} / sum(1 / psf_flux_err ^ 2) {f} AS {mean}, "
            f"1 / sqrt(sum(1 / psf_flux_err ^ 2) {f}) AS {err}, stddev_samp(psf_flux) {f} AS {sigma}, "
            f"count(*) {f} AS {ndata}, min(psf_flux) {f} AS {lo}, max(psf_flux) {f} AS {hi}")


def band_assign_sql(band, src):
    return ", ".join(f"{c} = {src}.{c}" for c in band_columns(band))


def columns(prefix=""):
    return sql.SQL(", ").join(sql.SQL(prefix) + sql.Identifier(c) for c in SOURCE_COLUMNS)


class Run:
    """One baseline run: schema names, policy, visits."""

    def __init__(self, conn, schema, stage, baseline, n_visits):
        self.conn = conn
        self.schema = schema
        self.base = f"{schema}_base_{baseline}"
        self.names = {"S": sql.Identifier(schema), "B": sql.Identifier(self.base),
                      "stage": sql.Identifier(*stage.split(".")), "cols": columns(), "s_cols": columns("s.")}
        policy = dict(self.fetch("SELECT key, value FROM {S}.policy"))
        self.match_radius = float(policy["match_radius_arcsec"])
        self.mops_radius = float(policy["mops_radius_arcsec"])
        self.fov_radius = float(policy["fov_radius_deg"])
        self.routes = dict(self.fetch("SELECT class_id, route FROM {S}.source_classification"))
        # The night's visits are those with DIASources in the staging table.
        self.visits = self.fetch('SELECT visit, ra, "dec", band FROM {S}.visit '
                                 'WHERE visit IN (SELECT visit FROM {stage}) ORDER BY visit LIMIT %s', (n_visits,))
        for visit, _, _, band in self.visits:
            if band not in BANDS:
                raise SystemExit(f"visit {visit}: band {band!r} is not one of {BANDS}")

    def q(self, text):
        """`text` with {S} (the AP schema), {B} (this baseline's schema), {stage}, and {cols} /
        {s_cols} (the DIASource columns of dia_source_new, bare / qualified by s) filled in."""
        return sql.SQL(text).format(**self.names)

    def execute(self, text, params=None):
        return self.conn.execute(self.q(text), params)

    def fetch(self, text, params=None):
        return self.execute(text, params).fetchall()


def setup(run):
    """Build the baseline's schema B from S's state before tonight.

    If skycat ran the night in S first, S also holds tonight's DIASources, the objects created
    from them (object_id = dia_source_id) and counters and statistics that include them. Those
    are left out: DIASources and objects whose id is a staging row's id are not copied, and the
    objects and moving objects skycat matched tonight get their counts decremented and their
    mjd range and band statistics recomputed from the DIASources before tonight (NULL when there
    are none, as after loading). Moving objects keep S's ra, dec, last_mjd: they are the last
    detection, which matching does not use.
    """
    all_bands = ", ".join(band_stats_sql(b) for b in BANDS)
    assign_all = ", ".join(band_assign_sql(b, "h") for b in BANDS)
    visits = [v[0] for v in run.visits]
    with run.conn.transaction():
        run.execute("DROP SCHEMA IF EXISTS {B} CASCADE")
        run.execute("CREATE SCHEMA {B}")
        run.execute("CREATE TABLE {B}.stage AS SELECT * FROM {stage} WHERE visit = ANY(%s) ORDER BY visit, dia_source_id",
                    (visits,))
        run.execute("CREATE INDEX ON {B}.stage (visit)")
        run.execute("""CREATE TABLE {B}.dia_source AS SELECT d.* FROM {S}.dia_source d
                        WHERE NOT EXISTS (SELECT 1 FROM {stage} t WHERE t.dia_source_id = d.dia_source_id)""")
        # Ordered by q3c pixel: what CLUSTER on the q3c index (q3c's advice) would do.
        run.execute("""CREATE TABLE {B}.object AS SELECT o.* FROM {S}.object o
                        WHERE NOT EXISTS (SELECT 1 FROM {stage} t WHERE t.dia_source_id = o.object_id)
                        ORDER BY q3c_ang2ipix(o.ra, o."dec")""")
        run.execute("CREATE TABLE {B}.moving_object AS SELECT * FROM {S}.moving_object")
        run.execute("""CREATE TEMP TABLE skycat_tonight ON COMMIT DROP AS
                       SELECT d.object_id, d.moving_object_id FROM {S}.dia_source d JOIN {stage} t USING (dia_source_id)""")
        run.execute(f"""
            UPDATE {{B}}.object o SET n_dia_sources = o.n_dia_sources - t.n, first_mjd = h.first_mjd,
                   last_mjd = h.last_mjd, {assign_all}
              FROM (SELECT object_id, count(*) AS n FROM skycat_tonight GROUP BY object_id) t
              LEFT JOIN (SELECT object_id, min(mjd) AS first_mjd, max(mjd) AS last_mjd, {all_bands}
                           FROM {{B}}.dia_source
                          WHERE object_id IN (SELECT object_id FROM skycat_tonight)
                          GROUP BY object_id) h USING (object_id)
             WHERE o.object_id = t.object_id""")
        run.execute("""UPDATE {B}.moving_object m SET n_detections = m.n_detections - t.n
                         FROM (SELECT moving_object_id, count(*) AS n FROM skycat_tonight GROUP BY 1) t
                        WHERE m.moving_object_id = t.moving_object_id""")
        run.execute("ALTER TABLE {B}.object ADD PRIMARY KEY (object_id)")
        run.execute('CREATE INDEX ON {B}.object (q3c_ang2ipix(ra, "dec"))')
        run.execute("ALTER TABLE {B}.moving_object ADD PRIMARY KEY (moving_object_id)")
        run.execute("CREATE INDEX ON {B}.dia_source (object_id)")
        run.execute("CREATE TABLE {B}.dia_source_match (LIKE {S}.dia_source_match INCLUDING DEFAULTS)")
        run.execute("CREATE INDEX ON {B}.dia_source_match (visit)")
        for table in ("stage", "object", "moving_object", "dia_source", "dia_source_match"):
            run.execute(f"ANALYZE {{B}}.{table}")


# ---------------------------------------------------------------- baseline (a): plain SQL + q3c

def q3c_visit(run, visit, band):
    """One visit in plain SQL. The one-to-one assignment is mutual nearest neighbours (a source's
    nearest object whose nearest source of the visit is that source): what window functions can
    express. skycat's greedy assignment (repeatedly take the closest pair whose sides are both
    free) is a loop, not a set operation; a source whose nearest object is taken by
    another source stays unmatched here, where greedy would give it its next nearest."""
    p = {"visit": visit, "radius": run.match_radius / 3600, "mops_radius": run.mops_radius / 3600}
    # The planner cannot estimate q3c_join's pixel ranges (it expects ~90k objects per probe of
    # the q3c index), so depending on statistics it may scan all objects for every source
    # (~70 s a visit instead of ~30 ms). Every table this transaction reads has the index it
    # needs, so seq scans are simply ruled out.
    run.execute("SET LOCAL enable_seqscan = off")
    # Candidate pairs (q3c_join uses the index on the second position), ranked by separation from
    # both sides; the pairs first on both sides are the assignment.
    n_pairs, n_matched = run.execute("""
        WITH pairs AS (
          SELECT n.dia_source_id, o.object_id, q3c_dist(n.ra, n."dec", o.ra, o."dec") * 3600 AS sep
            FROM {B}.stage n JOIN {S}.source_classification c USING (class_id)
            JOIN {B}.object o ON q3c_join(n.ra, n."dec", o.ra, o."dec", %(radius)s)
           WHERE n.visit = %(visit)s AND c.route <> 'junk'),
        ranked AS (
          SELECT *, row_number() OVER (PARTITION BY dia_source_id ORDER BY sep, object_id) AS rank,
                    row_number() OVER (PARTITION BY object_id ORDER BY sep, dia_source_id) AS object_rank
            FROM pairs),
        ins AS (
          INSERT INTO {B}.dia_source_match (visit, dia_source_id, object_id, sep_arcsec, rank, chosen)
          SELECT %(visit)s, dia_source_id, object_id, sep, rank, rank = 1 AND object_rank = 1 FROM ranked
          RETURNING chosen)
        SELECT count(*), count(*) FILTER (WHERE chosen) FROM ins""", p).fetchone()
    # The visit's DIASources with their object (matched, or a new one for route 'object'), the
    # unmatched mops/alert ones matched to the visit's MOPS predictions (mutual nearest again),
    # and from the inserted rows: moving objects updated, new objects created.
    new_stats = band_stats_sql(band)
    n_sources, n_moving, n_new = run.execute(f"""
        WITH src AS (
          SELECT n.*, c.route AS class_route, m.object_id AS matched
            FROM {{B}}.stage n JOIN {{S}}.source_classification c USING (class_id)
            LEFT JOIN {{B}}.dia_source_match m
                   ON m.visit = n.visit AND m.dia_source_id = n.dia_source_id AND m.chosen
           WHERE n.visit = %(visit)s),
        mops_pairs AS (
          SELECT s.dia_source_id, p.moving_object_id,
                 row_number() OVER (PARTITION BY s.dia_source_id
                                    ORDER BY q3c_dist(s.ra, s."dec", p.ra, p."dec"), p.moving_object_id) AS rank,
                 row_number() OVER (PARTITION BY p.moving_object_id
                                    ORDER BY q3c_dist(s.ra, s."dec", p.ra, p."dec"), s.dia_source_id) AS pred_rank
            FROM src s JOIN {{S}}.mops_pred p
                 ON p.visit = %(visit)s AND q3c_join(s.ra, s."dec", p.ra, p."dec", %(mops_radius)s)
           WHERE s.matched IS NULL AND s.class_route IN ('mops', 'alert')),
        ins AS (
          INSERT INTO {{B}}.dia_source ({{cols}}, object_id, moving_object_id, route)
          SELECT {{s_cols}},
                 coalesce(s.matched, CASE WHEN s.class_route = 'object' THEN s.dia_source_id END),
                 mp.moving_object_id,
                 CASE WHEN s.matched IS NOT NULL OR s.class_route = 'object' THEN 'object'
                      WHEN mp.moving_object_id IS NOT NULL THEN 'mops' ELSE s.class_route END
            FROM src s LEFT JOIN mops_pairs mp ON mp.dia_source_id = s.dia_source_id AND mp.rank = 1 AND mp.pred_rank = 1
          RETURNING *),
        moved AS (
          UPDATE {{B}}.moving_object mo SET n_detections = mo.n_detections + 1, last_mjd = i.mjd, ra = i.ra, "dec" = i."dec"
            FROM ins i WHERE mo.moving_object_id = i.moving_object_id
          RETURNING 1),
        created AS (
          INSERT INTO {{B}}.object (object_id, ra, "dec", n_dia_sources, first_mjd, last_mjd, reclassified_moving,
                                    {", ".join(band_columns(band))})
          SELECT object_id, ra, "dec", 1, mjd, mjd, false, {new_stats}
            FROM ins WHERE object_id = dia_source_id GROUP BY object_id, ra, "dec", mjd
          RETURNING 1)
        SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM moved), (SELECT count(*) FROM created)""",
        p).fetchone()
    # Matched objects: counts, mjd range, and the visit band's statistics recomputed from their
    # DIASource history (which now includes this visit's).
    run.execute(f"""
        UPDATE {{B}}.object o SET n_dia_sources = o.n_dia_sources + 1, first_mjd = least(o.first_mjd, h.mjd),
               last_mjd = greatest(o.last_mjd, h.mjd), {band_assign_sql(band, "h")}
          FROM (SELECT object_id, max(mjd) FILTER (WHERE visit = %(visit)s) AS mjd, {new_stats}
                  FROM {{B}}.dia_source
                 WHERE object_id IN (SELECT object_id FROM {{B}}.dia_source_match WHERE visit = %(visit)s AND chosen)
                 GROUP BY object_id) h
         WHERE o.object_id = h.object_id""", p)
    return {"n_sources": n_sources, "n_pairs": n_pairs, "n_matched": n_matched,
            "n_new_objects": n_new, "n_moving": n_moving}


# ------------------------------------------------ baseline (b): Python client, LSST-style cKDTree

def unit_vectors(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.column_stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)))


def pairs_within(points, tree_points, radius_arcsec):
    """All (point index, tree point index, separation in arcsec) within the radius: a cKDTree
    on the unit vectors, queried with the chord length of the radius."""
    if len(points) == 0 or len(tree_points) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    hits = cKDTree(tree_points).query_ball_point(points, 2 * math.sin(math.radians(radius_arcsec / 3600) / 2))
    left = np.repeat(np.arange(len(points)), [len(h) for h in hits])
    right = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=len(left))
    chord = np.linalg.norm(points[left] - tree_points[right], axis=1)
    return left, right, np.degrees(2 * np.arcsin(np.minimum(chord / 2, 1))) * 3600


def greedy(left_ids, right_ids, sep):
    """Mask of the pairs a greedy one-to-one assignment keeps: pairs by (sep, left id, right id),
    a pair is taken when neither side is taken yet (skycat's greedy)."""
    keep = np.zeros(len(sep), bool)
    taken_left, taken_right = set(), set()
    lids, rids = left_ids.tolist(), right_ids.tolist()
    for k in np.lexsort((right_ids, left_ids, sep)).tolist():
        if lids[k] not in taken_left and rids[k] not in taken_right:
            taken_left.add(lids[k])
            taken_right.add(rids[k])
            keep[k] = True
    return keep


def flux_stats(group, n_groups, flux, err):
    """skycat's band statistics per group (mean, mean_err, sigma, ndata, min, max), NaN where
    undefined."""
    used = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    g, f = group[used], flux[used]
    w = 1 / err[used] ** 2
    n = np.bincount(g, minlength=n_groups)
    sw = np.bincount(g, w, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(g, w * f, n_groups) / sw
        mean_err = 1 / np.sqrt(sw)
        plain_mean = np.bincount(g, f, n_groups) / n
        sigma = np.sqrt(np.bincount(g, (f - plain_mean[g]) ** 2, n_groups) / (n - 1))
    lo, hi = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    np.minimum.at(lo, g, f)
    np.maximum.at(hi, g, f)
    sigma[n < 2] = np.nan
    mean[n == 0] = mean_err[n == 0] = lo[n == 0] = hi[n == 0] = np.nan
    return mean, mean_err, sigma, n, lo, hi


def nullable(values):
    """A column for COPY: NaN becomes NULL."""
    return [None if isinstance(x, float) and math.isnan(x) else x for x in values]


def copy_rows(run, table, cols, rows):
    """COPY `rows` into `table` ({B}.x or a temp table) for the columns `cols`."""
    target = sql.SQL("COPY {} ({}) FROM STDIN").format(
        run.q(table), sql.SQL(", ").join(sql.Identifier(c) for c in cols))
    with run.conn.cursor().copy(target) as cp:
        for row in rows:
            cp.write_row(row)


def positions(rows):
    """Unit vectors of the (id, ra, dec) rows, and their ids."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    xyz = unit_vectors(np.array([r[1] for r in rows], dtype=float), np.array([r[2] for r in rows], dtype=float))
    return ids, xyz


def kdtree_session(run):
    """The temp tables of the UPDATE ... FROM of objects and moving objects (emptied at each commit)."""
    run.execute("""CREATE TEMP TABLE object_update (object_id bigint, mjd float8, mean float8, mean_err float8,
                   sigma float8, ndata int, flux_min float8, flux_max float8) ON COMMIT DELETE ROWS""")
    run.execute('CREATE TEMP TABLE moving_update (moving_object_id bigint, mjd float8, ra float8, "dec" float8) '
                "ON COMMIT DELETE ROWS")


def kdtree_visit(run, visit, band, ra0, dec0):
    """One visit the LSST way: match in the client, write back with COPY."""
    rows = run.fetch("SELECT {cols} FROM {B}.stage WHERE visit = %s ORDER BY dia_source_id", (visit,))
    col = SOURCE_COLUMNS.index
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    ra, dec, mjd, flux, err = (np.array([r[col(c)] for r in rows], dtype=float)
                               for c in ("ra", "dec", "mjd", "psf_flux", "psf_flux_err"))
    route = np.array([run.routes[r[col("class_id")]] for r in rows], dtype=object)
    xyz = unit_vectors(ra, dec)

    # Objects of the field, a tree on them, candidate pairs for the non-junk sources.
    obj_ids, obj_xyz = positions(run.fetch(
        'SELECT object_id, ra, "dec" FROM {B}.object WHERE q3c_radial_query(ra, "dec", %s, %s, %s)',
        (ra0, dec0, run.fov_radius + run.match_radius / 3600)))
    candidates = np.flatnonzero(route != "junk")
    left, obj, sep = pairs_within(xyz[candidates], obj_xyz, run.match_radius)
    src = candidates[left]
    chosen = greedy(ids[src], obj_ids[obj], sep)
    n_pairs = len(sep)
    # rank of each pair among its source's pairs by separation (1 = nearest)
    order = np.lexsort((obj_ids[obj], sep, src))
    starts = np.flatnonzero(np.r_[True, src[order][1:] != src[order][:-1]])
    rank = np.empty(n_pairs, dtype=np.int64)
    rank[order] = np.arange(n_pairs) - np.repeat(starts, np.diff(np.r_[starts, n_pairs])) + 1
    copy_rows(run, "{B}.dia_source_match", ["visit", "dia_source_id", "object_id", "sep_arcsec", "rank", "chosen"],
              zip([visit] * n_pairs, ids[src].tolist(), obj_ids[obj].tolist(), sep.tolist(), rank.tolist(),
                  chosen.tolist()))
    object_id = np.full(len(ids), -1, dtype=np.int64)  # -1: none
    object_id[src[chosen]] = obj_ids[obj[chosen]]
    matched = np.flatnonzero(object_id >= 0)

    # Matched objects: this band's statistics over their history plus the new DIASource.
    m_ids = object_id[matched]
    hist = run.fetch("SELECT object_id, psf_flux, psf_flux_err FROM {B}.dia_source "
                     "WHERE object_id = ANY(%s) AND band = %s", (m_ids.tolist(), band))
    sorter = np.argsort(m_ids)
    h_group = sorter[np.searchsorted(m_ids, np.array([h[0] for h in hist], dtype=np.int64), sorter=sorter)]
    stats = flux_stats(np.concatenate((h_group, np.arange(len(matched)))), len(matched),
                       np.concatenate((np.array([h[1] for h in hist], dtype=float), flux[matched])),
                       np.concatenate((np.array([h[2] for h in hist], dtype=float), err[matched])))
    copy_rows(run, "object_update", ["object_id", "mjd", "mean", "mean_err", "sigma", "ndata", "flux_min", "flux_max"],
              zip(m_ids.tolist(), mjd[matched].tolist(), *(nullable(s.tolist()) for s in stats)))
    assign = ", ".join(f"{c} = u.{s}" for c, s in zip(
        band_columns(band), ("mean", "mean_err", "sigma", "ndata", "flux_min", "flux_max")))
    run.execute(f"""UPDATE {{B}}.object o SET n_dia_sources = o.n_dia_sources + 1,
                           first_mjd = least(o.first_mjd, u.mjd), last_mjd = greatest(o.last_mjd, u.mjd), {assign}
                      FROM object_update u WHERE o.object_id = u.object_id""")

    # New objects for unmatched sources of route 'object' (object_id = dia_source_id).
    new = np.flatnonzero((object_id < 0) & (route == "object"))
    object_id[new] = ids[new]
    stats = flux_stats(np.arange(len(new)), len(new), flux[new], err[new])
    copy_rows(run, "{B}.object", ["object_id", "ra", "dec", "n_dia_sources", "first_mjd", "last_mjd",
                                  "reclassified_moving", *band_columns(band)],
              zip(ids[new].tolist(), ra[new].tolist(), dec[new].tolist(), [1] * len(new), mjd[new].tolist(),
                  mjd[new].tolist(), [False] * len(new), *(nullable(s.tolist()) for s in stats)))

    # The rest of route mops/alert against this visit's MOPS predictions (a second tree, greedy).
    leftover = np.flatnonzero((object_id < 0) & np.isin(route, ["mops", "alert"]))
    pred_ids, pred_xyz = positions(run.fetch(
        'SELECT moving_object_id, ra, "dec" FROM {S}.mops_pred WHERE visit = %s', (visit,)))
    left, pred, sep = pairs_within(xyz[leftover], pred_xyz, run.mops_radius)
    keep = greedy(ids[leftover[left]], pred_ids[pred], sep)
    moved = leftover[left[keep]]
    moving_id = np.full(len(ids), -1, dtype=np.int64)  # -1: none
    moving_id[moved] = pred_ids[pred[keep]]
    copy_rows(run, "moving_update", ["moving_object_id", "mjd", "ra", "dec"],
              zip(moving_id[moved].tolist(), mjd[moved].tolist(), ra[moved].tolist(), dec[moved].tolist()))
    run.execute("""UPDATE {B}.moving_object m SET n_detections = m.n_detections + 1, last_mjd = u.mjd,
                          ra = u.ra, "dec" = u."dec"
                     FROM moving_update u WHERE m.moving_object_id = u.moving_object_id""")

    # The visit's DIASources with their object or moving object, routed.
    final_route = np.where(object_id >= 0, "object", np.where(moving_id >= 0, "mops", route))
    copy_rows(run, "{B}.dia_source", [*SOURCE_COLUMNS, "object_id", "moving_object_id", "route"],
              (row + (o if o >= 0 else None, m if m >= 0 else None, r)
               for row, o, m, r in zip(rows, object_id.tolist(), moving_id.tolist(), final_route.tolist())))
    return {"n_sources": len(ids), "n_pairs": n_pairs, "n_matched": len(matched),
            "n_new_objects": len(new), "n_moving": len(moved)}


# ---------------------------------------------------------------------------------------- driver

def agreement(run, visits):
    """The fraction of the visits' DIASources whose object_id equals skycat's in S.dia_source
    (None when skycat has not run these visits in S)."""
    n, same = run.fetch("""
        SELECT count(*), count(*) FILTER (WHERE b.object_id IS NOT DISTINCT FROM s.object_id)
          FROM {B}.dia_source b JOIN {S}.dia_source s USING (dia_source_id)
         WHERE b.visit = ANY(%(v)s) AND s.visit = ANY(%(v)s)""", {"v": visits})[0]
    n_sources = run.fetch("SELECT count(*) FROM {B}.stage")[0][0]
    if n == 0:
        return None
    if n < n_sources:
        print(f"note: skycat's result in {run.schema}.dia_source covers {n} of {n_sources} DIASources")
    return {"fraction": same / n, "n_sources": n, "n_differ": n - same}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--schema", required=True, help="the AP schema (skycat.ap_create) holding the night")
    ap.add_argument("--baseline", required=True, choices=["q3c", "kdtree"])
    ap.add_argument("--stage", help="staging table of the night's DIASources (default SCHEMA.sim_dia_source)")
    ap.add_argument("--visits", type=int, help="run only the first N visits")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    with psycopg.connect(args.dsn, autocommit=True, application_name=f"ap_baseline_{args.baseline}") as conn:
        # q3c_join's cost estimates are huge (~1e9 for a 30 ms join of one visit), far above
        # jit_above_cost, so PostgreSQL would spend ~0.6 s JIT-compiling every pair query; anyone
        # running q3c joins per visit turns JIT off.
        conn.execute("SET jit = off")
        run = Run(conn, args.schema, args.stage or f"{args.schema}.sim_dia_source", args.baseline, args.visits)
        t0 = time.perf_counter()
        setup(run)
        setup_s = time.perf_counter() - t0
        print(f"{args.baseline}: setup of {run.base} {setup_s:.2f} s, {len(run.visits)} visits")
        if args.baseline == "kdtree":
            kdtree_session(run)
        results = []
        for visit, ra, dec, band in run.visits:
            t0 = time.perf_counter()
            with conn.transaction():
                r = q3c_visit(run, visit, band) if args.baseline == "q3c" else kdtree_visit(run, visit, band, ra, dec)
            r = {"visit": visit, **r, "seconds": time.perf_counter() - t0}
            results.append(r)
            print(f"visit {visit}: {r['n_sources']} sources, {r['n_pairs']} pairs, {r['n_matched']} matched, "
                  f"{r['n_new_objects']} new objects, {r['n_moving']} moving, {r['seconds']:.3f} s", flush=True)
        agree = agreement(run, [v[0] for v in run.visits])
        if agree:
            print(f"agreement with skycat: {agree['fraction']:.2%} of {agree['n_sources']} DIASources "
                  f"have skycat's object_id ({agree['n_differ']} differ)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"baseline": args.baseline, "schema": args.schema, "setup_s": setup_s,
                       "visits": results, "agreement": agree}, f, indent=1)


if __name__ == "__main__":
    main()
