-- The skycat demo: a scripted psql session on a private, throwaway cluster (make demo).
-- It grows with every feature; each step prints what it shows.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
DROP DATABASE IF EXISTS skycat_demo;
CREATE DATABASE skycat_demo;
\c skycat_demo
SET client_min_messages = notice;
CREATE EXTENSION skycat;

\echo
\echo '== 1. Separations (arcsec), accurate at every scale, across RA 0/360 and at the poles'
SELECT skycat.sep_arcsec(359.9999, 0, 0.0001, 0)      AS across_ra_zero,
       skycat.sep_arcsec(150.0, 2.2, 150.0, 2.2000001) AS tenth_of_a_mas,
       skycat.sep_arcsec(0, 89.999, 180, 89.999)       AS over_the_pole,
       skycat.position_angle(10, 0, 10.1, 0.1)         AS pa_deg;

\echo
\echo '== 2. Declination stripes: the unit of parallelism of the nightly pipeline'
SELECT skycat.stripe(-90, 1) AS south_pole, skycat.stripe(0, 1) AS equator,
       skycat.stripe(90, 1) AS north_pole,
       skycat.stripes_in_circle(150.0, 2.2, 1.75 * 3600, 1.0) AS stripes_of_an_lsst_fov;

\echo
\echo '== 3. Qserv chunks (same ids as LSST sphgeom/partition, 340 stripes x 3 sub-stripes)'
SELECT skycat.chunk_id(150.0, 2.2) AS chunk, skycat.sub_chunk_id(150.0, 2.2) AS sub_chunk,
       skycat.chunks_in_circle(150.0, 2.2, 1800) AS chunks_within_30_arcmin;

\echo
\echo '== 4. H3 and HEALPix cells, and covers of a 10 arcmin circle'
SELECT to_hex(skycat.h3_cell(150.0, 2.2, 7)) AS h3_res7,
       cardinality(skycat.h3_cells_in_circle(150.0, 2.2, 600, 7)) AS h3_cells_in_cover,
       skycat.healpix_cell(150.0, 2.2, 12) AS healpix_nested_d12,
       cardinality(skycat.healpix_cells_in_circle(150.0, 2.2, 600, 12)) AS healpix_cells_in_cover;

\echo
\echo '== 5. A catalog partitioned by 5-degree declination stripes, loaded with 200k generated objects'
CREATE TABLE object (
    object_id bigint, ra float8, "dec" float8, chunk_id int
) PARTITION BY RANGE ("dec");
SELECT skycat.create_stripe_partitions('object', 5.0) AS partitions_created;
SELECT setseed(0.2026) \g /dev/null
INSERT INTO object (object_id, ra, "dec")
SELECT i, 360 * random(), degrees(asin(2 * random() - 1))  -- uniform on the sphere
  FROM generate_series(1, 200000) i;
UPDATE object SET chunk_id = skycat.chunk_id(ra, "dec");
\echo 'rows per stripe partition (first and last few): more near the equator, as on a sphere'
(SELECT tableoid::regclass AS partition, count(*) FROM object GROUP BY 1 ORDER BY 1 LIMIT 3)
UNION ALL
(SELECT tableoid::regclass, count(*) FROM object GROUP BY 1 ORDER BY 1 DESC LIMIT 3);
\echo 'every row sits in the partition skycat.stripe() names:'
SELECT count(*) AS rows,
       count(*) FILTER (WHERE skycat.stripe("dec", 5.0)
                              = substring(tableoid::regclass::text from '_s([0-9]+)$')::int) AS in_their_stripe
  FROM object;
\echo 'a cone search pruned to the stripes it touches (only those partitions are scanned):'
SELECT count(*) AS objects_within_1_deg
  FROM object
 WHERE "dec" BETWEEN 2.2 - 1 AND 2.2 + 1
   AND skycat.sep_arcsec(ra, "dec", 150.0, 2.2) <= 3600;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM object
 WHERE "dec" BETWEEN 2.2 - 1 AND 2.2 + 1 AND skycat.sep_arcsec(ra, "dec", 150.0, 2.2) <= 3600;

\echo
\echo '== 6. Cross-match: index-assisted dwithin, and the bulk parallel crossmatch'
CREATE INDEX object_sky ON object (skycat.sky_key(ra, "dec"));
ANALYZE object;
\echo 'a cone search is a bitmap index scan on the sky_key index:'
SELECT count(*) AS within_2_deg FROM object WHERE skycat.dwithin(ra, "dec", 150.0, 2.2, 7200);
\echo 'a "second epoch": every tenth object seen again, moved by up to 0.5 arcsec, plus 2000 new sources'
CREATE TABLE source AS
SELECT object_id + 10000000 AS source_id, ra0 - 360 * floor(ra0 / 360) AS ra, "dec"
  FROM (SELECT object_id,
               ra + (random() - 0.5) / 3600 / greatest(cos(radians("dec")), 0.01) AS ra0,
               greatest(-90, least(90, "dec" + (random() - 0.5) / 3600)) AS "dec"
          FROM object WHERE object_id % 10 = 0) moved
UNION ALL
SELECT 20000000 + i, 360 * random(), degrees(asin(2 * random() - 1)) FROM generate_series(1, 2000) i;
ANALYZE source;
\echo 'the same pairs from an indexed join and from the bulk crossmatch:'
-- One process: with parallel workers PostgreSQL may plan the join as a parallel nested loop
-- over all 4.4 billion pairs (docs/crossmatch.md, known issue).
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT count(*) FROM source s JOIN object o ON skycat.dwithin(s.ra, s."dec", o.ra, o."dec", 1.0)) AS dwithin_join_pairs,
       (SELECT count(*) FROM skycat.crossmatch('SELECT source_id, ra, "dec" FROM source',
                                               'SELECT object_id, ra, "dec" FROM object', 1.0)) AS crossmatch_pairs;
RESET max_parallel_workers_per_gather;
\echo 'one-to-one association, as the nightly pipeline does it:'
SELECT count(*) AS matched, round(avg(sep_arcsec)::numeric, 3) AS mean_sep_arcsec
  FROM skycat.crossmatch('SELECT source_id, ra, "dec" FROM source',
                         'SELECT object_id, ra, "dec" FROM object', 1.0, 'optimal');

\echo
\echo '== 7. Calibration: a raw tract (counts, pixel centroids) to nJy and ICRS, then a recalibration'
\echo 'per-(visit, detector) calibrations and TAN-SIP WCSs, and 180,000 raw sources, from skycat-sim:'
CREATE TABLE calibs (visit bigint, detector int, calib_mean float8, calib_err float8, wcs skycat.wcs,
                     PRIMARY KEY (visit, detector));
\copy calibs FROM PROGRAM 'target/release/skycat-sim tract-calibs --visits 2 --detectors 9' WITH (FORMAT csv)
CREATE TABLE raw_source (source_id bigint, visit bigint, detector int, x float8, y float8, x_err float8, y_err float8,
                         psf_inst_flux float8, psf_inst_flux_err float8, ap_inst_flux float8, ap_inst_flux_err float8);
\copy raw_source FROM PROGRAM 'target/release/skycat-sim tract-raw --visits 2 --detectors 9 --per-detector 10000' WITH (FORMAT csv)
ANALYZE raw_source;
SELECT visit, detector, round(calib_mean::numeric, 4) AS calib_mean, left(wcs::text, 72) || '...' AS wcs
  FROM calibs ORDER BY visit, detector LIMIT 3;
\echo 'calibrate the whole table in batches (resumable; progress in NOTICEs):'
CALL skycat.calibrate_sources('raw_source', 'calibs', 'source_calibrated', batch_rows => 60000);
SELECT source_id, round(ra::numeric, 6) AS ra, round("dec"::numeric, 6) AS "dec",
       round(ra_err::numeric, 4) AS ra_err_arcsec, round(psf_flux::numeric, 1) AS psf_flux_njy,
       round(skycat.ab_mag(psf_flux)::numeric, 3) AS psf_mag,
       round(skycat.ab_mag_err(psf_flux, psf_flux_err)::numeric, 3) AS psf_mag_err
  FROM source_calibrated ORDER BY source_id LIMIT 5;
\echo 'a new zero point for visit 2 (2% more nJy per count), applied twice: the second call changes nothing'
CREATE TABLE new_calibs AS SELECT visit, detector, calib_mean * 1.02 AS calib_mean, calib_err FROM calibs WHERE visit = 2;
CALL skycat.recalibrate_sources('source_calibrated', 'new_calibs');
CALL skycat.recalibrate_sources('source_calibrated', 'new_calibs');
SELECT visit, count(*) AS sources, round(avg(calib_applied)::numeric, 4) AS mean_calib_applied
  FROM source_calibrated GROUP BY visit ORDER BY visit;

\echo
\echo '== 8. Light curves: LSST DiaObject statistics as parallel aggregates over ForcedSource'
CREATE TABLE forced_source (object_id bigint, band int2, mjd float8, psf_flux float8, psf_flux_err float8);
\copy forced_source FROM PROGRAM 'target/release/skycat-sim forced-source --objects 5000' WITH (FORMAT csv)
ANALYZE forced_source;
SELECT count(*) AS forced_sources, count(DISTINCT object_id) AS objects FROM forced_source;
CREATE TABLE object_lc AS
SELECT object_id, band, skycat.lc_stats(psf_flux, psf_flux_err, mjd) AS s
  FROM forced_source GROUP BY object_id, band;
\echo 'the most variable light curves (Stetson J), with a few of the 19 fields:'
SELECT object_id, band, (s).n, round((s).mean::numeric, 1) AS mean_njy, round((s).sigma::numeric, 1) AS sigma,
       round((s).chi2::numeric) AS chi2, round((s).stetson_j::numeric, 2) AS stetson_j,
       round((s).p95::numeric, 1) AS p95, round((s).max_slope::numeric, 1) AS max_slope
  FROM object_lc ORDER BY (s).stetson_j DESC NULLS LAST LIMIT 5;
\echo 'a parallel plan: partial aggregates in the workers, combined in the leader'
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT object_id, band, skycat.lc_stats(psf_flux, psf_flux_err, mjd)
  FROM forced_source GROUP BY object_id, band;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
\echo 'the light aggregates of the nightly path: weighted mean flux, and a wrap-safe mean position'
SELECT skycat.flux_mean(psf_flux, psf_flux_err) AS object_1_band_2 FROM forced_source WHERE object_id = 1 AND band = 2;
SELECT skycat.mean_position(ra, "dec") AS mean_of_359_and_1_deg FROM (VALUES (359.0, -30.0), (1.0, -30.0)) v(ra, "dec");

\echo
\echo '== 9. Files as tables: a pipeline''s per-tract Parquet output queried in place'
\! rm -rf /tmp/skycat_demo_files && target/release/skycat-sim forced-parquet --objects 2000 --files 4 --row-group-rows 5000 --dir /tmp/skycat_demo_files && chmod -R a+rX /tmp/skycat_demo_files && chmod a+w /tmp/skycat_demo_files
CREATE SERVER demo_outputs FOREIGN DATA WRAPPER skycat_files OPTIONS (root '/tmp/skycat_demo_files');
IMPORT FOREIGN SCHEMA files FROM SERVER demo_outputs INTO public
  OPTIONS (files 'tract=*/forcedSource.parquet', table 'forced_source_files');
SELECT tract, count(*) AS rows, count(DISTINCT object_id) AS objects, round(avg(psf_flux)::numeric, 1) AS mean_flux
  FROM forced_source_files WHERE psf_flux < 'Infinity' GROUP BY tract ORDER BY tract;
\echo 'one tract, one id range: only the matching file and row groups are read'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM forced_source_files WHERE tract = 2 AND forced_source_id BETWEEN 120000 AND 121000;
\echo 'and back out: a query result written as Parquet (zstd, statistics), read again in place'
SELECT skycat.write_parquet('SELECT object_id, band, (skycat.lc_stats(psf_flux, psf_flux_err, mjd)).* FROM forced_source_files GROUP BY 1, 2',
                            '/tmp/skycat_demo_files/summary/lc_stats.parquet') AS rows_written;
CREATE FOREIGN TABLE lc_summary (object_id bigint, band text, n bigint, mean float8, stetson_j float8)
  SERVER demo_outputs OPTIONS (files 'summary/*.parquet');
SELECT band, count(*) AS curves, round(avg(stetson_j)::numeric, 2) AS mean_stetson_j FROM lc_summary GROUP BY band ORDER BY band;

\echo
\echo '== 10. Bad input is a clear error (SQLSTATE 22023 or 22P02), never a crash'
\set ON_ERROR_STOP 0
SELECT skycat.stripe(91, 1);
SELECT skycat.h3_cell(10, 10, 16);
SELECT skycat.nanojansky(1000, 0);
SELECT '{"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 2036.5}'::skycat.wcs;
\set ON_ERROR_STOP 1
