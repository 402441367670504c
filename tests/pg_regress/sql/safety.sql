-- Inputs that once crashed or wedged a backend, escalated privileges, or gave a silently wrong
-- answer: each must now give the right value or a clean error with a documented SQLSTATE.
-- (The randomised search for more such inputs is the fuzz tier, tests/e2e/tests/fuzz.rs.)
CREATE EXTENSION IF NOT EXISTS skycat;
SET client_min_messages = warning;
-- Nothing here may run long: a regression that loops again fails here instead of hanging.
SET statement_timeout = '60s';

-- Stripes thinner than 1e-6 degrees are refused: no endless loop, no int4 overflow.
SELECT error_of($$SELECT skycat.stripe(0, 1e-18)$$);
SELECT error_of($$SELECT skycat.stripe(0, 1e-8)$$);
SELECT error_of($$SELECT skycat.stripe(90, 1e-9)$$);
-- At 1e-6 degrees every index fits: 180 / 1e-6 = 180,000,000 stripes, the last one 179,999,999.
SELECT skycat.stripe(90, 1e-6) AS top, skycat.stripe(-90, 1e-6) AS bottom,
       abs(skycat.stripe(0, 1e-6) - 90000000) <= 1 AS equator;
-- Circle covers are bounded before anything is allocated (54000 past a million stripes).
SELECT error_of($$SELECT skycat.stripes_in_circle(0, 0, 3600, 1e-12)$$);
SELECT error_of($$SELECT skycat.stripes_in_circle(0, 0, 3600, 1e-6)$$);
-- 1799 arcsec of radius at 1e-6 degrees: 2 * 1799 / 3600 / 1e-6 = 999,444.4 stripes, + 1.
SELECT abs(cardinality(skycat.stripes_in_circle(0, 0, 1799, 1e-6)) - 999445) <= 1 AS cover_fits;

-- Qserv layouts whose chunk or sub-chunk ids do not fit 32 bits are refused.
SELECT error_of($$SELECT skycat.chunk_id(0, 0, 648000, 1)$$);
SELECT error_of($$SELECT skycat.sub_chunk_id(123, 45, 1, 648000)$$);
SELECT error_of($$SELECT skycat.chunks_in_circle(0, 0, 648000, 6000, 1)$$);
-- The largest accepted stripe count: the polar stripe's one chunk is 32767 * 2 * 32768.
SELECT skycat.chunk_id(10, 90, 32768, 1) AS top_chunk, skycat.chunk_id(10, 90, 32768, 1) = 32767 * 2 * 32768 AS closed_form;

-- H3 covers: a radius of 360 degrees is the whole sky, bounded like any other radius.
SELECT error_of($$SELECT skycat.h3_cells_in_circle(0, 0, 1296000, 6)$$);
SELECT error_of($$SELECT skycat.h3_cells_in_circle(0, 0, 1296000, 15)$$);
SELECT error_of($$SELECT skycat.h3_cells_in_circle(0, 0, 1296000, 5)$$);
-- H3 resolution 2 has 5,882 cells in all (the H3 documentation's table).
SELECT cardinality(skycat.h3_cells_in_circle(0, 0, 1296000, 2)) AS whole_sky_res2;

-- The cross-match memory limits are superuser settings; an ordinary role cannot raise them.
CREATE ROLE skycat_safety_user;
SET ROLE skycat_safety_user;
SELECT error_of($$SET skycat.crossmatch_max_pairs = 2147483647$$);
SELECT error_of($$SET skycat.crossmatch_max_rows = 2147483647$$);
RESET ROLE;
SET skycat.crossmatch_max_rows = 1000;
SELECT error_of($$SELECT count(*) FROM skycat.crossmatch(
    'SELECT g::bigint, 10.0::float8, 10.0::float8 FROM generate_series(1, 1001) g',
    'SELECT 1::bigint, 10.0::float8, 10.0::float8', 1)$$);
RESET skycat.crossmatch_max_rows;
-- 'optimal' with infinite or huge error columns: errors beyond the sky count as the whole sky.
SELECT left_id, right_id, round(sep_arcsec::numeric, 4) AS sep_arcsec FROM skycat.crossmatch(
    $$SELECT 1::bigint, 10.0::float8, 10.0::float8, 'Infinity'::float8, 1e308::float8$$,
    $$SELECT 2::bigint, 10.0::float8, 10.0002::float8, 1e308::float8, 'Infinity'::float8$$, 2, 'optimal');

-- Measurement errors are never negative; calibrations are finite and positive.
SELECT error_of($$SELECT skycat.ab_mag_err(1, -1)$$);
SELECT error_of($$SELECT skycat.nanojansky_err(10, -1, 0.5, 0.01)$$);
SELECT error_of($$SELECT skycat.photo_calib(1, 'NaN')$$);
SELECT error_of($$SELECT '{"calibrationMean": 1, "calibrationErr": "NaN"}'::skycat.photo_calib$$);
-- 0.1 + T1(x) over the box: negative on its left part.
SELECT error_of($$SELECT '{"calibrationMean": 1, "bbox": [0, 0, 99, 99], "coefficients": [[0.1, 1.0]]}'::skycat.photo_calib$$);
-- Arithmetic that overflows for finite arguments is 22003, as PostgreSQL's own float8
-- operators report it; infinite or NaN arguments pass through (the NaN policy).
SELECT error_of($$SELECT skycat.nanojansky(1e308, 720)$$);
SELECT error_of($$SELECT skycat.recalibrate(1e308, 1e-18, 1e-18)$$);
SELECT error_of($$SELECT skycat.ab_mag_err(1e-8, 1e308)$$);
SELECT skycat.nanojansky('Infinity', 0.5) AS infinite_in, skycat.nanojansky('NaN', 0.5) AS nan_in;
-- Extreme errors do not underflow a weighted mean: one row's mean is its flux.
SELECT (a).mean = 1e-300 AS mean_is_the_flux, (a).mean_err = 5.11e126 AS err_is_the_error
  FROM (SELECT skycat.flux_mean('1e-300', '5.11e126') AS a) s;
SELECT (skycat.lc_stats(f, e, 60000)).mean = f AS lc_mean_is_the_flux
  FROM (VALUES ('1.588152195374834e-217'::float8, '9.078517232098946e58'::float8)) v(f, e) GROUP BY f;
-- A covariance matrix has |xy_cov| <= x_err * y_err; a pixel is at most 180 degrees.
SELECT error_of($$SELECT * FROM skycat.pixel_to_sky_cov('{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1,
  "CRVAL1": 150, "CRVAL2": 2, "CD1_1": -5.5e-5, "CD2_2": 5.5e-5}'::skycat.wcs, 100, 100, 0.1, 0.1, 0.5)$$);
SELECT error_of($$SELECT '{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1,
  "CRVAL1": 150, "CRVAL2": 2, "CDELT1": -5.5e-5, "CDELT2": 1e308}'::skycat.wcs$$);
-- Far out on the tangent plane a pixel still has a position (90 degrees from CRVAL).
SELECT round(skycat.sep_arcsec(150, 2, (p).ra, (p).dec)::numeric / 3600, 6) AS deg_from_crval
  FROM (SELECT skycat.pixel_to_sky('{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1,
  "CRVAL1": 150, "CRVAL2": 2, "CD1_1": -5.5e-5, "CD2_2": 5.5e-5}'::skycat.wcs, 1e300, 0) AS p) s;
-- The wrapper's validator is STRICT: a direct call with NULL options is NULL, not an error.
SELECT skycat.skycat_files_validator(NULL, 0) IS NULL AS strict_validator;
-- Every accepted calibration survives a text round trip (what pg_dump and restore do).
SELECT skycat.photo_calib(0.3, 1e-300)::text::skycat.photo_calib::text = skycat.photo_calib(0.3, 1e-300)::text
       AS round_trip;

-- A constant light curve has no spread: sigma 0, chi2 0, skewness 0 (as pandas, LSST's
-- reference, reports it), whatever rounding the mean of 0.1s carries.
SELECT (s).n, (s).sigma, (s).chi2, (s).skew, (s).mad
  FROM (SELECT skycat.lc_stats(f, 1, m) AS s FROM (VALUES (0.1, 1), (0.1, 2), (0.1, 3)) v(f, m)) t;

-- Every point has exactly one owning tract: this one, just west of the RA 0/360 seam, used to
-- belong to neither neighbour's inner region.
SELECT skycat.skymap_tract(359.15887850367295, -29.699976771331464) AS tract,
       (SELECT array_agg(t ORDER BY t) FROM unnest(ARRAY[4817, 5030]) t, skycat.skymap_tract_region(t) r
         WHERE skycat.polygon_contains(r.poly_ra, r.poly_dec, 359.15887850367295, -29.699976771331464)) AS owners;
SELECT error_of($$SELECT skycat.polygon_contains(ARRAY[0, 1, NULL]::float8[], ARRAY[0, 0, 1]::float8[], 0.5, 0.2)$$);

-- Files: name columns written and read as names (a name is not a varlena).
SELECT skycat.write_parquet($$SELECT 'pg_statistic'::name AS n, 'abc'::name AS s, NULL::name AS z$$,
                            '/tmp/skycat_regress_safety/names/n.parquet');
CREATE SERVER safety_files FOREIGN DATA WRAPPER skycat_files OPTIONS (root '/tmp/skycat_regress_safety');
CREATE FOREIGN TABLE names_back (n name, s name, z name) SERVER safety_files OPTIONS (files 'names/*.parquet');
SELECT n, s, z IS NULL AS z_is_null, octet_length(s::text) AS s_bytes FROM names_back;
CREATE FOREIGN TABLE names_as_text (n text, s text) SERVER safety_files OPTIONS (files 'names/*.parquet');
SELECT n, s FROM names_as_text;
-- A FIFO matching a table's files is refused at once (reading it would wait forever).
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/skycat_regress_safety/fifo && rm -f /tmp/skycat_regress_safety/fifo/f.parquet && mkfifo /tmp/skycat_regress_safety/fifo/f.parquet';
CREATE FOREIGN TABLE fifo_t (x int) SERVER safety_files OPTIONS (files 'fifo/*.parquet');
SELECT error_of($$SELECT * FROM fifo_t$$);
SELECT error_of($$EXPLAIN SELECT * FROM fifo_t$$);
-- Comparisons far in the future do not overflow into "no row can match".
SELECT skycat.write_parquet($$SELECT g AS id, timestamp '2020-01-01' + g * interval '1 day' AS ts,
                                     timestamptz '2020-01-01 00:00Z' + g * interval '1 day' AS tstz,
                                     date '2020-01-01' + g AS d
                                FROM generate_series(0, 999) g$$, '/tmp/skycat_regress_safety/times/t.parquet', 100);
CREATE FOREIGN TABLE times (id int, ts timestamp, tstz timestamptz, d date) SERVER safety_files OPTIONS (files 'times/*.parquet');
SELECT count(*) FILTER (WHERE ts < '294250-01-01') AS ts_far, count(*) FILTER (WHERE tstz < '294250-01-01') AS tstz_far,
       count(*) FILTER (WHERE d < '5874000-01-01') AS date_far FROM times;
SELECT count(*) AS pruned_ts FROM times WHERE ts < '294250-01-01';
SELECT count(*) AS pruned_tstz FROM times WHERE tstz < '294250-01-01';
SELECT count(*) AS pruned_date FROM times WHERE d < '5874000-01-01';
SELECT error_of($$SELECT skycat.write_parquet('SELECT ''infinity''::timestamp AS t', '/tmp/skycat_regress_safety/inf/t.parquet')$$);
-- A nondeterministic (case-insensitive) collation: 'G' equals 'g', so nothing may be pruned
-- by comparing bytes, in row-group statistics or in hive-style path values.
CREATE COLLATION safety_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT skycat.write_parquet($$SELECT g AS id, (ARRAY['g', 'r'])[1 + g % 2] AS band FROM generate_series(1, 5000) g ORDER BY 2, 1$$,
                            '/tmp/skycat_regress_safety/bands/b.parquet', 1000);
SELECT skycat.write_parquet(format($$SELECT g AS id FROM generate_series(1, 10) g$$), format('/tmp/skycat_regress_safety/hive/band=%s/x.parquet', b))
  FROM unnest(ARRAY['g', 'r']) b;
CREATE FOREIGN TABLE bands_ci (id int, band text COLLATE safety_ci) SERVER safety_files OPTIONS (files 'bands/*.parquet');
CREATE FOREIGN TABLE hive_ci (id int, band text COLLATE safety_ci) SERVER safety_files OPTIONS (files 'hive/band=*/x.parquet');
SELECT (SELECT count(*) FROM bands_ci WHERE band = 'G') AS eq, (SELECT count(*) FROM bands_ci WHERE band IN ('G', 'R')) AS in_list,
       (SELECT count(*) FROM bands_ci WHERE band < 'H') AS below_h, (SELECT count(*) FROM hive_ci WHERE band = 'G') AS hive_eq;

-- The AP rejects policy values that would delete or duplicate rows.
SELECT skycat.ap_create('ap_safety', 1.0) IS NOT NULL AS created;
UPDATE ap_safety.policy SET value = '-1' WHERE key = 'retention_days';
\set VERBOSITY terse
CALL skycat.ap_daytime('ap_safety');
UPDATE ap_safety.policy SET value = '365' WHERE key = 'retention_days';
UPDATE ap_safety.policy SET value = '-1' WHERE key = 'fov_radius_deg';
CALL skycat.ap_prepare_visit('ap_safety', 1, 150, 2);
UPDATE ap_safety.policy SET value = 'NaN' WHERE key = 'fov_radius_deg';
CALL skycat.ap_prepare_visit('ap_safety', 1, 150, 2);
UPDATE ap_safety.policy SET value = 'wide' WHERE key = 'match_radius_arcsec';
CALL skycat.ap_prepare_visit('ap_safety', 1, 150, 2);
\set VERBOSITY default
UPDATE ap_safety.policy SET value = '1.75' WHERE key = 'fov_radius_deg';
UPDATE ap_safety.policy SET value = '1.0' WHERE key = 'match_radius_arcsec';
-- Association does not depend on how floats print: with 2 significant digits (extra_float_digits
-- = -14) a field near RA 150 still matches its sources.
SET extra_float_digits = -14;
INSERT INTO ap_safety.object (object_id, ra, "dec") VALUES (1, 150.123456789, 2.2), (5, 10, -40);
CALL skycat.ap_prepare_night('ap_safety', '2026-12-01');
CALL skycat.ap_prepare_visit('ap_safety', 1, 150.1234, 2.2001);
INSERT INTO ap_safety.dia_source_new VALUES
  (101, 1, 1, 150.123456789, 2.2000001, 0.1, 0.1, 61000.1, 'g', 100, 10, 10, 1),
  (102, 1, 1, 150.5, 2.5, 0.1, 0.1, 61000.1, 'g', 100, 10, 10, 1);
CALL skycat.ap_associate('ap_safety', 1);
RESET extra_float_digits;
SELECT dia_source_id, object_id FROM ap_safety.dia_source ORDER BY 1;
CALL skycat.ap_post_visit('ap_safety', 1);
-- A new object's id is its DIASource's id: one that an existing object has (object 5, far
-- from this field) stops the visit instead of creating a second object 5.
CALL skycat.ap_prepare_visit('ap_safety', 2, 150.1234, 2.2001);
INSERT INTO ap_safety.dia_source_new VALUES (5, 2, 1, 151, 2.9, 0.1, 0.1, 61000.2, 'r', 100, 10, 10, 1);
\set VERBOSITY terse
CALL skycat.ap_associate('ap_safety', 2);
\set VERBOSITY default
SELECT object_id, count(*) FROM ap_safety.object GROUP BY 1 ORDER BY 1;
DELETE FROM ap_safety.dia_source_new WHERE dia_source_id = 5;
CALL skycat.ap_associate('ap_safety', 2);
CALL skycat.ap_post_visit('ap_safety', 2);

-- Search path: a function planted in a schema on the caller's path (an exact match that
-- PostgreSQL would prefer to pg_catalog.format(text, VARIADIC "any")) never runs inside skycat.
CREATE SCHEMA planted;
CREATE TABLE planted.calls (fn text);
GRANT INSERT ON planted.calls TO PUBLIC;
CREATE FUNCTION planted.format(text, name) RETURNS text LANGUAGE sql AS
  $$ INSERT INTO planted.calls VALUES ('format(text, name)'); SELECT pg_catalog.format($1, $2) $$;
CREATE FUNCTION planted.format(text, name, bigint) RETURNS text LANGUAGE sql AS
  $$ INSERT INTO planted.calls VALUES ('format(text, name, bigint)'); SELECT pg_catalog.format($1, $2, $3) $$;
CREATE FUNCTION planted.text_contains(text[], text[]) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO planted.calls VALUES ('text[] @> text[]'); SELECT $1 OPERATOR(pg_catalog.@>) $2 $$;
CREATE OPERATOR planted.@> (LEFTARG = text[], RIGHTARG = text[], FUNCTION = planted.text_contains);
SET search_path = planted, public;
CALL skycat.ap_prepare_visit('ap_safety', 3, 10, -40);
CALL skycat.ap_associate('ap_safety', 3);
CALL skycat.ap_post_visit('ap_safety', 3);
CALL skycat.ap_post_night('ap_safety', '2026-12-01');
-- The calibration procedures cannot have SET clauses (they COMMIT): they set their own path.
CREATE TABLE public.safety_raw (visit bigint, detector int, x float8, y float8, psf_inst_flux float8, psf_inst_flux_err float8);
INSERT INTO public.safety_raw VALUES (1, 0, 100, 200, 1000, 10), (1, 0, 300, 400, 2000, 20);
CREATE TABLE public.safety_calib (visit bigint, detector int, calib_mean float8, calib_err float8, wcs skycat.wcs);
INSERT INTO public.safety_calib VALUES (1, 0, 0.5, 0.01, '{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1,
  "CRVAL1": 10, "CRVAL2": -40, "CD1_1": -5.5e-5, "CD2_2": 5.5e-5}');
CALL skycat.calibrate_sources('public.safety_raw', 'public.safety_calib', 'public.safety_out');
SHOW search_path;
RESET search_path;
SELECT count(*) AS planted_calls FROM planted.calls;
-- Every SQL function and procedure of skycat has a fixed search_path, but the two procedures
-- that COMMIT between batches (PostgreSQL forbids a SET clause there; they set it themselves).
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'skycat' AND l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
 ORDER BY 1;

-- An ordinary role may calibrate its own tables (the progress table is shared, row by row
-- limited to the targets a role may write).
GRANT CREATE ON SCHEMA public TO skycat_safety_user;
GRANT SELECT ON public.safety_raw, public.safety_calib TO skycat_safety_user;
SET ROLE skycat_safety_user;
CALL skycat.calibrate_sources('public.safety_raw', 'public.safety_calib', 'public.safety_user_out');
SELECT count(*) AS calibrated FROM public.safety_user_out;
SELECT target, next_block, total_blocks, rows_written FROM skycat.calibration_progress ORDER BY target;
RESET ROLE;
SELECT target, rows_written FROM skycat.calibration_progress ORDER BY target;

-- Clean up.
DROP SCHEMA ap_safety CASCADE;
DROP SCHEMA planted CASCADE;
DROP TABLE public.safety_raw, public.safety_calib, public.safety_out, public.safety_user_out;
DELETE FROM skycat.calibration_progress;
REVOKE ALL ON SCHEMA public FROM skycat_safety_user;
DROP ROLE skycat_safety_user;
DROP SERVER safety_files CASCADE;
DROP COLLATION safety_ci;
