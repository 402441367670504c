-- Nightly Association Pipeline: the SQL pieces checked against closed forms here; whole
-- simulated nights run in the end-to-end tier (tests/e2e/tests/ap.rs).
CREATE EXTENSION IF NOT EXISTS skycat;

-- ap_ra_ranges: every point on the circle of radius r around a centre (the extreme points,
-- from the spherical destination formula) lies in the returned ra ranges, at the wrap, near a
-- pole and on the equator; the half-widths are asin(sin r / cos dec): 1.75 on the equator,
-- 10.1290 at dec 80, 2.0207 at dec 30 (r = 1.75), the whole circle when the cap covers a pole.
WITH c(ra, d, r) AS (VALUES (0.5, 10.0, 1.75), (359.5, -30.0, 1.75), (180.0, 88.0, 3.0), (100.0, 80.0, 1.75),
                            (20.0, 0.0, 1.75), (200.0, -87.0, 2.0)),
     p AS (SELECT c.ra, c.d, c.r, t,
                  degrees(asin(sin(radians(c.d)) * cos(radians(c.r)) + cos(radians(c.d)) * sin(radians(c.r)) * cos(radians(t)))) AS pdec
             FROM c, generate_series(0, 3599) AS t0, LATERAL (SELECT t0 / 10.0 AS t) tt),
     q AS (SELECT p.*, mod((p.ra + degrees(atan2(sin(radians(t)) * sin(radians(r)) * cos(radians(d)),
                                                 cos(radians(r)) - sin(radians(d)) * sin(radians(pdec))))
                             + 720)::numeric, 360)::float8 AS pra
             FROM p)
SELECT q.ra, q.d, q.r, g.ra_lo, g.ra_hi,
       count(*) FILTER (WHERE NOT (q.pra BETWEEN g.ra_lo[1] AND g.ra_hi[1] OR q.pra BETWEEN g.ra_lo[2] AND g.ra_hi[2])) AS outside
  FROM q, skycat.ap_ra_ranges(q.ra, q.d, q.r) g
 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2;

-- The schema, its policy defaults and the stripes.
SELECT skycat.ap_create('ap_regress', 2.0);
SELECT key, value FROM ap_regress.policy ORDER BY key;
SELECT count(*) AS object_stripes FROM pg_inherits WHERE inhparent = 'ap_regress.object'::regclass;
SELECT relname, relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ap_regress' AND relkind IN ('r', 'p') AND relname NOT LIKE '%\_s%' ORDER BY relname;

-- Errors name what is wrong (terse: no PL/pgSQL line numbers in the expected output).
\set VERBOSITY terse
SELECT skycat.ap_create('ap_bad', 0);
CALL skycat.ap_associate('ap_regress', 1);
CALL skycat.ap_post_visit('ap_regress', 1);
CALL skycat.ap_prepare_visit('ap_regress', 1, 10, 95);
UPDATE ap_regress.policy SET value = 'best' WHERE key = 'assoc_mode';
CALL skycat.ap_associate('ap_regress', 1);
DELETE FROM ap_regress.policy WHERE key = 'fov_radius_deg';
CALL skycat.ap_prepare_visit('ap_regress', 1, 10, 5);

\set VERBOSITY default
-- A one-visit night by hand: two objects, three DIASources (one at each object, one far from
-- both) and an artefact on the first object: pairs, matches, a new object, junk.
UPDATE ap_regress.policy SET value = 'greedy' WHERE key = 'assoc_mode';
INSERT INTO ap_regress.policy VALUES ('fov_radius_deg', '1.75');
INSERT INTO ap_regress.object (object_id, ra, "dec") VALUES (1, 10, 5), (2, 10.01, 5);
CALL skycat.ap_prepare_night('ap_regress', '2026-11-23');
CALL skycat.ap_prepare_visit('ap_regress', 7, 10, 5);
INSERT INTO ap_regress.dia_source_new VALUES
  (7000001, 7, 1, 10.0001, 5, 0.1, 0.1, 61000.1, 'g', 100, 10, 10, 1),
  (7000002, 7, 1, 10.0100, 5.0001, 0.1, 0.1, 61000.1, 'g', 300, 30, 10, 1),
  (7000003, 7, 1, 10.5, 5.5, 0.1, 0.1, 61000.1, 'g', 50, 5, 10, 2),
  (7000004, 7, 1, 10, 5, 0.1, 0.1, 61000.1, 'g', 20, 5, 4, 4);
CALL skycat.ap_associate('ap_regress', 7);
CALL skycat.ap_post_visit('ap_regress', 7);
SELECT dia_source_id, object_id, round(sep_arcsec::numeric, 4) AS sep_arcsec, rank, chosen
  FROM ap_regress.dia_source_match ORDER BY dia_source_id;
SELECT dia_source_id, object_id, moving_object_id, route FROM ap_regress.dia_source ORDER BY dia_source_id;
SELECT object_id, n_dia_sources, g_psf_flux_mean, round(g_psf_flux_mean_err::numeric, 6) AS g_err, g_psf_flux_ndata
  FROM ap_regress.object ORDER BY object_id;
SELECT visit, phase, n_sources, n_matched, n_new_objects, n_moving FROM ap_regress.visit_log ORDER BY phase;
SET client_min_messages = warning;
DROP SCHEMA ap_regress CASCADE;
