-- DRP post-processing: a two-tract release written by hand (Parquet via write_parquet), run
-- through every step and checked against closed forms. Simulated releases run in the
-- end-to-end tier (tests/e2e/tests/drp.rs).
CREATE EXTENSION IF NOT EXISTS skycat;
SET extra_float_digits = 0;

-- The rings skymap: LSST's 120-ring layout has 18938 tracts; a tract's inner region holds the
-- points skymap_tract assigns to it, and an edge point has exactly one owner.
SELECT skycat.skymap_tract(60, -30) AS t1, skycat.skymap_tract(0, -90) AS south, skycat.skymap_tract(10, 90) AS north;
SELECT ring, round(ra_min::numeric, 6) AS ra_min, round(ra_max::numeric, 6) AS ra_max,
       round(dec_min::numeric, 6) AS dec_min, round(dec_max::numeric, 6) AS dec_max, cardinality(poly_ra) AS vertices
  FROM skycat.skymap_tract_region(4641);
WITH p AS (SELECT random() * 360 AS ra, random() * 20 - 40 AS d FROM generate_series(1, 20000)),
     o AS (SELECT p.*, skycat.skymap_tract(p.ra, p.d) AS t FROM p)
SELECT count(*) FILTER (WHERE NOT skycat.polygon_contains(r.poly_ra, r.poly_dec, o.ra, o.d)) AS not_in_own_tract
  FROM o, skycat.skymap_tract_region(o.t) r;
SELECT (SELECT count(*) FROM generate_series(4641, 4642) t, skycat.skymap_tract_region(t) r
         WHERE skycat.polygon_contains(r.poly_ra, r.poly_dec, e.ra_max, -30.5)) AS owners_of_shared_edge
  FROM skycat.skymap_tract_region(4641) e;
SELECT skycat.skymap_tracts_outer(60.5685, -30.5, 0.1) AS near_edge, skycat.skymap_tracts_outer(59.7, -30.5, 0.1) AS inside;
SELECT skycat.polygon_contains(ARRAY[0, 1, 1, 0], ARRAY[0, 0, 1, 1], 0, 0.5) AS west_edge_in,
       skycat.polygon_contains(ARRAY[0, 1, 1, 0], ARRAY[0, 0, 1, 1], 1, 0.5) AS east_edge_out,
       skycat.polygon_contains(ARRAY[-1, 1, 1, -1], ARRAY[0, 0, 1, 1], 359.5, 0.5) AS across_ra_0;
\set VERBOSITY terse
SELECT skycat.skymap_tract_region(18938);
SELECT skycat.polygon_contains(ARRAY[0, 1], ARRAY[0, 0], 0, 0);
SELECT skycat.skymap_tract(0, 0, 0);
\set VERBOSITY default

-- A release of tracts 4641 and 4642 (neighbours in one ring). Objects: A inside 4641; B just
-- east of their shared edge (primary in 4642, also measured by 4641); C just west of 4641
-- (primary in 4640, which this release does not ingest). Four g-band visits per tract, one
-- detector each with a TAN WCS at the tract centre; calibrations 0.50 + 0.01 v (4641) and
-- 0.40 + 0.01 v (4642) nJy per count, error 0.005.
CREATE TEMP TABLE t_obj (tract int, object_id bigint, ra float8, "dec" float8);
INSERT INTO t_obj VALUES (4641, 464100000001, 59.5, -30.5), (4641, 464100000002, 60.5757, -30.5),
  (4641, 464100000003, 58.8555, -30.4), (4642, 464200000001, 60.5757, -30.5);
CREATE TEMP TABLE t_calib AS
  SELECT r.t AS tract, r.t * 1000 + v AS visit, 0 AS detector, 'g'::text AS band, (60000.0 + v + (r.t - 4641) * 0.5)::float8 AS mjd,
         (CASE r.t WHEN 4641 THEN 0.50 ELSE 0.40 END + 0.01 * v)::float8 AS calib_mean, 0.005::float8 AS calib_err,
         json_build_object('CTYPE1', 'RA---TAN', 'CTYPE2', 'DEC--TAN', 'CRPIX1', 2000.5, 'CRPIX2', 2000.5,
                           'CRVAL1', g.ra_center, 'CRVAL2', g.dec_center, 'CD1_1', -0.2 / 3600, 'CD1_2', 0,
                           'CD2_1', 0, 'CD2_2', 0.2 / 3600)::text AS wcs
    FROM (VALUES (4641), (4642)) r(t), skycat.skymap_tract_region(r.t) g, generate_series(0, 3) v;
-- Forced photometry of every object the tract measured, at its position; instrumental flux
-- 1000 + 100 v (+ 5000 for the second object), error 10 + v.
CREATE TEMP TABLE t_forced AS
  SELECT o.tract, o.object_id, c.visit, c.detector, o.ra, o."dec", (p).x, (p).y,
         (1000.0 + 100 * (c.visit % 1000) + 5000 * (o.object_id % 10 - 1))::float8 AS psf_inst_flux,
         (10.0 + c.visit % 1000)::float8 AS psf_inst_flux_err
    FROM t_obj o JOIN t_calib c USING (tract), LATERAL (SELECT skycat.sky_to_pixel(c.wcs::skycat.wcs, o.ra, o."dec") AS p) s;
CREATE TEMP TABLE t_source AS
  SELECT tract, tract::bigint * 100000 + row_number() OVER (ORDER BY tract, object_id, visit) AS source_id, object_id, visit, detector,
         x + 0.3 AS x, y - 0.2 AS y, 0.1::float8 AS x_err, 0.1::float8 AS y_err, psf_inst_flux, psf_inst_flux_err
    FROM t_forced;
CREATE TEMP TABLE t_dia AS
  SELECT tract, object_id * 10 AS dia_source_id, visit, detector, x, y, 0.1::float8 AS x_err, 0.1::float8 AS y_err,
         50.0::float8 AS psf_inst_flux, 5.0::float8 AS psf_inst_flux_err
    FROM t_forced WHERE visit % 1000 = 2;
SELECT t, f, skycat.write_parquet(format('SELECT %s FROM pg_temp.%I WHERE tract = %s',
         CASE f WHEN 'calib' THEN 'visit, detector, band, mjd, calib_mean, calib_err, wcs'
                WHEN 'object' THEN 'object_id, ra, "dec"'
                WHEN 'forced_source' THEN 'object_id, visit, detector, ra, "dec", x, y, psf_inst_flux, psf_inst_flux_err'
                WHEN 'source' THEN 'source_id, object_id, visit, detector, x, y, x_err, y_err, psf_inst_flux, psf_inst_flux_err'
                ELSE 'dia_source_id, visit, detector, x, y, x_err, y_err, psf_inst_flux, psf_inst_flux_err' END,
         CASE f WHEN 'calib' THEN 't_calib' WHEN 'object' THEN 't_obj' WHEN 'forced_source' THEN 't_forced'
                WHEN 'source' THEN 't_source' ELSE 't_dia' END, t),
         format('/tmp/skycat_regress_drp/tract=%s/%s.parquet', t, f)) AS rows_written
  FROM (VALUES (4641), (4642)) a(t), unnest(ARRAY['calib', 'object', 'forced_source', 'source', 'dia_source']) f
 ORDER BY 1, 2;

-- The procedures' NOTICEs report timings: not part of the expected output.
SET client_min_messages = warning;
SELECT skycat.drp_create('drp_regress', '/tmp/skycat_regress_drp', 2.0, 120, ARRAY['g', 'r']);
SELECT key, value FROM drp_regress.policy ORDER BY key;

-- Ingest: B's and C's forced sources and sources are not kept by 4641 (not primary there);
-- the DIASource at B's position neither.
SELECT * FROM skycat.drp_ingest_tract('drp_regress', 4641);
SELECT * FROM skycat.drp_ingest_tract('drp_regress', 4642);
SELECT tract, n_calib, n_object_staged, n_source, n_dia_source, n_forced_source FROM drp_regress.tract ORDER BY 1;

-- Calibration against closed forms: nJy = inst * calib, error = hypot(inst_err * calib,
-- inst * calib_err); positions from the WCS back to the 0.3/-0.2 pixel offsets (0.2"/px).
SELECT count(*) AS forced,
       max(abs(f.psf_flux - t.psf_inst_flux * c.calib_mean)) AS max_flux_diff,
       max(abs(f.psf_flux_err - sqrt((t.psf_inst_flux_err * c.calib_mean) ^ 2 + (t.psf_inst_flux * c.calib_err) ^ 2))) < 1e-9 AS err_ok
  FROM drp_regress.forced_source f JOIN t_forced t USING (object_id, visit) JOIN t_calib c USING (visit);
SELECT count(*) AS sources,
       bool_and(abs(skycat.sep_arcsec(s.ra, s."dec", o.ra, o."dec") - sqrt(0.3 ^ 2 + 0.2 ^ 2) * 0.2) < 0.002) AS offsets_ok,
       bool_and(abs(s.ra_err_arcsec - 0.02) < 1e-4 AND abs(s.dec_err_arcsec - 0.02) < 1e-4) AS errors_ok
  FROM drp_regress.source s JOIN t_obj o USING (object_id);
SELECT dia_source_id, tract, band, round(psf_flux::numeric, 6) AS psf_flux FROM drp_regress.dia_source ORDER BY 1;

-- Re-ingesting a tract replaces it: the same rows, nothing doubled.
CREATE TEMP TABLE digest AS
  SELECT (SELECT md5(string_agg(f::text, ',' ORDER BY object_id, visit)) FROM drp_regress.forced_source f) AS fs,
         (SELECT md5(string_agg(s::text, ',' ORDER BY source_id)) FROM drp_regress.source s) AS src,
         (SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) FROM drp_regress.object_staging o) AS stg;
SELECT rows FROM skycat.drp_ingest_tract('drp_regress', 4641) WHERE table_name = 'forced_source';
SELECT (SELECT md5(string_agg(f::text, ',' ORDER BY object_id, visit)) FROM drp_regress.forced_source f) = fs AS fs_same,
       (SELECT md5(string_agg(s::text, ',' ORDER BY source_id)) FROM drp_regress.source s) = src AS src_same,
       (SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) FROM drp_regress.object_staging o) = stg AS staging_same
  FROM digest;

-- De-duplication: A from 4641 and B from 4642 kept; B's copy in 4641 and C dropped.
SELECT * FROM skycat.drp_deduplicate_objects('drp_regress');
SELECT object_id, tract FROM drp_regress.object ORDER BY 1;
SELECT * FROM skycat.drp_deduplicate_objects('drp_regress');

-- Summaries: the g-band columns against the formulas computed here from forced_source.
CALL skycat.drp_summarize_forced_sources('drp_regress');
SELECT o.object_id, o.g_psf_flux_ndata,
       abs(o.g_psf_flux_mean - x.wmean) < 1e-9 * x.wmean AS mean_ok,
       abs(o.g_psf_flux_mean_err - x.werr) < 1e-12 * x.wmean AS mean_err_ok,
       abs(o.g_psf_flux_sigma - x.sd) < 1e-9 * x.wmean AS sigma_ok,
       o.g_psf_flux_min = x.mn AND o.g_psf_flux_max = x.mx AS min_max_ok,
       abs(o.g_psf_flux_percentile50 - x.med) < 1e-9 * x.wmean AS median_ok,
       o.r_psf_flux_ndata IS NULL AS no_r_band
  FROM drp_regress.object o JOIN (
    SELECT object_id, sum(psf_flux / psf_flux_err ^ 2) / sum(1 / psf_flux_err ^ 2) AS wmean,
           sqrt(1 / sum(1 / psf_flux_err ^ 2)) AS werr, stddev_samp(psf_flux) AS sd, min(psf_flux) AS mn, max(psf_flux) AS mx,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY psf_flux) AS med
      FROM drp_regress.forced_source GROUP BY 1) x USING (object_id)
 ORDER BY 1;
SELECT step, rows_done, rows_total FROM drp_regress.progress ORDER BY part;
CREATE TEMP TABLE obj_digest AS SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) AS d FROM drp_regress.object o;
CALL skycat.drp_summarize_forced_sources('drp_regress', false);
SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) = (SELECT d FROM obj_digest) AS summaries_unchanged FROM drp_regress.object o;

-- How the summary lands in object: each stripe's partition written anew and swapped in (a new
-- relation with the old name and index names), or updated in place with the policy's
-- summary_write = update, or when the partition has something of its own (a grant, a view on
-- it): the same rows every way.
CREATE TEMP TABLE obj_parts AS SELECT DISTINCT tableoid AS oid, tableoid::regclass::text AS name FROM drp_regress.object;
SELECT min(name) AS part FROM obj_parts \gset
CALL skycat.drp_summarize_forced_sources('drp_regress');
SELECT count(*) FILTER (WHERE c.oid IS NOT NULL) AS old_relations_left, bool_and(to_regclass(p.name) IS NOT NULL) AS names_kept
  FROM obj_parts p LEFT JOIN pg_class c ON c.oid = p.oid;
SELECT i.indexrelid::regclass AS index_name, i.indisprimary FROM pg_index i
 WHERE i.indrelid IN (SELECT to_regclass(name) FROM obj_parts) ORDER BY 1;
SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) = (SELECT d FROM obj_digest) AS rebuilt_same FROM drp_regress.object o;
TRUNCATE obj_parts;
INSERT INTO obj_parts SELECT DISTINCT tableoid, tableoid::regclass::text FROM drp_regress.object;
INSERT INTO drp_regress.policy VALUES ('summary_write', 'update');
CALL skycat.drp_summarize_forced_sources('drp_regress');
SELECT count(*) FILTER (WHERE c.oid IS NULL) AS relations_replaced FROM obj_parts p LEFT JOIN pg_class c ON c.oid = p.oid;
SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) = (SELECT d FROM obj_digest) AS updated_same FROM drp_regress.object o;
UPDATE drp_regress.policy SET value = 'swap' WHERE key = 'summary_write';
CALL skycat.drp_summarize_forced_sources('drp_regress');
DELETE FROM drp_regress.policy WHERE key = 'summary_write';
GRANT SELECT ON :part TO PUBLIC;
SELECT skycat._drp_rebuild_refusal(:'part');
CALL skycat.drp_summarize_forced_sources('drp_regress');
SELECT count(*) FILTER (WHERE c.oid IS NULL) AS replaced_with_a_grant FROM obj_parts p LEFT JOIN pg_class c ON c.oid = p.oid
 WHERE p.name = :'part';
REVOKE SELECT ON :part FROM PUBLIC;
CREATE VIEW drp_regress.one_stripe AS SELECT object_id FROM :part;
SELECT skycat._drp_rebuild_refusal(:'part') IS NULL AS not_refused;
CALL skycat.drp_summarize_forced_sources('drp_regress');
DROP VIEW drp_regress.one_stripe;
SELECT count(*) FILTER (WHERE c.oid IS NULL) AS replaced_under_a_view FROM obj_parts p LEFT JOIN pg_class c ON c.oid = p.oid
 WHERE p.name = :'part';
CALL skycat.drp_summarize_forced_sources('drp_regress');
SELECT count(*) FILTER (WHERE c.oid IS NULL) AS replaced_when_free FROM obj_parts p LEFT JOIN pg_class c ON c.oid = p.oid
 WHERE p.name = :'part';
SELECT md5(string_agg(o::text, ',' ORDER BY object_id)) = (SELECT d FROM obj_digest) AS same_every_way FROM drp_regress.object o;

-- Recalibration: visit 4641001 gets calib 1.02 (was 0.51): its rows double, only A is
-- summarised again, and applying the same table again changes nothing.
CREATE TEMP TABLE new_calib AS SELECT 4641001::bigint AS visit, 0 AS detector, 1.02::float8 AS calib_mean, 0.005::float8 AS calib_err;
SELECT * FROM skycat.drp_apply_recalibration('drp_regress', 'new_calib');
SELECT f.object_id, round((f.psf_flux / (t.psf_inst_flux * 1.02))::numeric, 12) AS ratio_to_new, f.calib_applied
  FROM drp_regress.forced_source f JOIN t_forced t USING (object_id, visit) WHERE f.visit = 4641001;
SELECT abs(g_psf_flux_max - (SELECT max(psf_flux) FROM drp_regress.forced_source WHERE object_id = 464100000001)) < 1e-9 AS resummarised
  FROM drp_regress.object WHERE object_id = 464100000001;
SELECT * FROM skycat.drp_apply_recalibration('drp_regress', 'new_calib');

-- Later pipelines: add columns, fill them in one pass.
SELECT skycat.drp_add_columns('drp_regress', ARRAY['mf_flux', 'mf_flux_err'], ARRAY['float8', 'float8']::regtype[]);
SELECT skycat.drp_add_columns('drp_regress', ARRAY['mf_flux'], ARRAY['float8']::regtype[]);
CREATE TEMP TABLE mf AS SELECT object_id, object_id % 1000 * 1.5 AS mf_flux, 0.1::float8 AS mf_flux_err FROM drp_regress.object
  UNION ALL SELECT 42, 1, 1;
SELECT skycat.drp_update_objects('drp_regress', 'mf');
SELECT object_id, mf_flux, mf_flux_err FROM drp_regress.object ORDER BY 1;

-- Export: chunk files whose chunkId / subChunkId are the partitioning functions' values;
-- object's overlap rows (within 0.2 degree here) go to the neighbouring chunks' overlap files.
SELECT '/tmp/skycat_regress_drp/export_' || pg_backend_pid() || '_' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS export_dir \gset
SELECT * FROM skycat.drp_export('drp_regress', 'object', :'export_dir' || '/object', 340, 3, 0.2);
SELECT * FROM skycat.drp_export('drp_regress', 'forced_source', :'export_dir' || '/forced_source', 340, 3, 0.2);
CREATE SERVER drp_regress_export FOREIGN DATA WRAPPER skycat_files OPTIONS (root :'export_dir');
CREATE FOREIGN TABLE exp_object ("chunkId" int, "subChunkId" int, object_id bigint, ra float8, "dec" float8, file text)
  SERVER drp_regress_export OPTIONS (files 'object/chunk_*.parquet', filename_column 'file');
CREATE FOREIGN TABLE exp_forced ("chunkId" int, "subChunkId" int, object_id bigint, visit bigint, file text)
  SERVER drp_regress_export OPTIONS (files 'forced_source/chunk_*.parquet', filename_column 'file');
SELECT file, object_id, "chunkId" = skycat.chunk_id(ra, "dec") AS chunk_ok, "subChunkId" = skycat.sub_chunk_id(ra, "dec") AS sub_ok,
       file LIKE '%overlap%' = NOT (skycat.chunk_id(ra, "dec") = substring(file FROM 'chunk_([0-9]+)')::int) AS placement_ok
  FROM exp_object ORDER BY 1, 2;
SELECT count(*) AS forced_rows, bool_and(f."chunkId" = skycat.chunk_id(o.ra, o."dec")) AS placed_by_object
  FROM exp_forced f JOIN drp_regress.object o USING (object_id);
SET skycat_regress.dir = :'export_dir';
DO $$
BEGIN
  PERFORM skycat.drp_export('drp_regress', 'object', current_setting('skycat_regress.dir') || '/object');
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'second export into the same directory: SQLSTATE %', SQLSTATE;
END $$;

-- Errors.
\set VERBOSITY terse
SELECT skycat.drp_create('drp_regress2', 'relative/dir');
SELECT skycat.drp_create('drp_regress2', '/tmp', 1.0, 120, ARRAY['G']);
SELECT * FROM skycat.drp_ingest_tract('no_such_schema', 4641);
SELECT * FROM skycat.drp_ingest_tract('drp_regress', 4643);
SELECT * FROM skycat.drp_ingest_tract('drp_regress', 99999);
SELECT * FROM skycat.drp_export('drp_regress', 'dia_source', '/tmp/x');
CREATE TEMP TABLE bad_update AS SELECT object_id, 1.0 AS no_such_column FROM drp_regress.object;
SELECT skycat.drp_update_objects('drp_regress', 'bad_update');
CREATE TEMP TABLE bad_calib AS SELECT 4641001::bigint AS visit, 0 AS detector, 0.0::float8 AS calib_mean, 0.0::float8 AS calib_err;
SELECT * FROM skycat.drp_apply_recalibration('drp_regress', 'bad_calib');
-- NaN compares above every number in PostgreSQL: a NaN or infinite calibration is refused
-- too, and nothing was changed (the fluxes are still what the last good calibration gave).
CREATE TEMP TABLE nan_calib AS SELECT 4641001::bigint AS visit, 0 AS detector, 'NaN'::float8 AS calib_mean, 0.0::float8 AS calib_err
  UNION ALL SELECT 4641001, 1, 'Infinity', 0 UNION ALL SELECT 4641001, 2, 1.0, 'NaN';
SELECT * FROM skycat.drp_apply_recalibration('drp_regress', 'nan_calib');
SELECT count(*) FILTER (WHERE psf_flux = 'NaN' AND calib_applied = 'NaN') AS nan_fluxes FROM drp_regress.forced_source;
-- An object named twice in an update would get either row: refused.
CREATE TEMP TABLE dup_update AS SELECT object_id, 1.0::float8 AS mf_flux FROM drp_regress.object
  UNION ALL (SELECT object_id, 2.0 FROM drp_regress.object ORDER BY object_id LIMIT 1);
SELECT skycat.drp_update_objects('drp_regress', 'dup_update');
-- Policy values are checked where they are read.
UPDATE drp_regress.policy SET value = '0' WHERE key = 'num_rings';
SELECT * FROM skycat.drp_ingest_tract('drp_regress', 4641);
UPDATE drp_regress.policy SET value = '120' WHERE key = 'num_rings';
\set VERBOSITY default
-- The policy's work_mem is raised for the big sorts and aggregates only when the session has
-- less, for the transaction only, and the caller gets the setting before to restore.
BEGIN;
SET LOCAL work_mem = '4MB';
SELECT skycat._raise_work_mem('64MB') AS before, current_setting('work_mem') AS now;
SELECT skycat._raise_work_mem('1MB') AS before, current_setting('work_mem') AS now;
COMMIT;
SET work_mem = '8MB';
SELECT (skycat.drp_summarize_partition('drp_regress', d.part, d.dec_lo, d.dec_hi)).objects > 0 AS summarised
  FROM skycat.drp_stripes('drp_regress', 'forced_source') d
 WHERE EXISTS (SELECT 1 FROM drp_regress.forced_source f WHERE f."dec" >= d.dec_lo AND f."dec" < d.dec_hi)
 ORDER BY d.dec_lo LIMIT 1;
SHOW work_mem;
RESET work_mem;
