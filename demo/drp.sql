-- make demo, section 12: a tiny simulated data release through the DRP procedures
-- (docs/drp.md). The Makefile wrote the release with `skycat-sim drp` to :release and picked
-- an empty :export directory.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = notice;
DROP SCHEMA IF EXISTS drp CASCADE;
DROP SERVER IF EXISTS drp_files CASCADE;
SELECT skycat.drp_create('drp', :'release');

\echo '-- the release: which tracts of the 120-ring skymap, and their inner regions'
SELECT t AS tract, r.ring, round(r.ra_min::numeric, 3) AS ra_min, round(r.ra_max::numeric, 3) AS ra_max,
       round(r.dec_min::numeric, 3) AS dec_min, round(r.dec_max::numeric, 3) AS dec_max
  FROM (SELECT DISTINCT tract AS t FROM drp.files_calib) x, skycat.skymap_tract_region(x.t) r ORDER BY 1;

\echo '-- ingest every tract: files -> calibrated, stripe-partitioned tables (one transaction each)'
SELECT t AS tract, i.table_name, i.rows
  FROM (SELECT DISTINCT tract AS t FROM drp.files_calib) x, skycat.drp_ingest_tract('drp', x.t) i ORDER BY 1, 2;

\echo '-- de-duplicate objects between overlapping tracts (isPrimary: the tract inner region holds the object)'
SELECT * FROM skycat.drp_deduplicate_objects('drp');

\echo '-- a later pipeline adds and fills Object columns (one write per object)'
SELECT skycat.drp_add_columns('drp', ARRAY['g_ab_mag'], ARRAY['float8']::regtype[]);

\echo '-- light-curve summaries of every object and band from forced_source (progress per stripe)'
CALL skycat.drp_summarize_forced_sources('drp');
CREATE TEMP TABLE mags AS SELECT object_id, skycat.ab_mag(g_psf_flux_mean) AS g_ab_mag FROM drp.object;
SELECT skycat.drp_update_objects('drp', 'mags') AS objects_updated;
SELECT object_id, tract, round(ra::numeric, 5) AS ra, round("dec"::numeric, 5) AS "dec", g_psf_flux_ndata AS g_n,
       round(g_psf_flux_mean::numeric, 1) AS g_mean_njy, round(g_psf_flux_stetson_j::numeric, 2) AS g_stetson_j,
       round(g_ab_mag::numeric, 3) AS g_ab_mag
  FROM drp.object ORDER BY g_psf_flux_stetson_j DESC NULLS LAST LIMIT 5;

\echo '-- a new calibration for two visits: applied in place, affected objects summarised again; twice = no-op'
CREATE TEMP TABLE calib_v2 AS
  SELECT visit, detector, calib_mean * 1.02 AS calib_mean, calib_err FROM drp.calib
   WHERE visit IN (SELECT DISTINCT visit FROM drp.calib ORDER BY visit LIMIT 2);
SELECT * FROM skycat.drp_apply_recalibration('drp', 'calib_v2');
SELECT * FROM skycat.drp_apply_recalibration('drp', 'calib_v2');

\echo '-- write-once Qserv input: chunk files with chunkId / subChunkId, object overlaps'
SELECT count(*) AS chunks, sum(rows) AS rows, sum(overlap_rows) AS overlap_rows
  FROM skycat.drp_export('drp', 'object', :'export' || '/object');
SELECT count(*) AS chunks, sum(rows) AS rows FROM skycat.drp_export('drp', 'forced_source', :'export' || '/forced_source');
