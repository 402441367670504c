-- Files as tables: write Parquet with skycat.write_parquet, read it back through the
-- skycat_files foreign-data wrapper, prune row groups and partitions, refuse what must be
-- refused. Files go to /tmp/skycat_regress_files (rewritten on every run).
SET client_min_messages = warning;
-- Two tracts of a small ForcedSource-like table, 4 row groups of 250 rows each per file.
SELECT skycat.write_parquet(format($q$
    SELECT (%1$s * 1000 + g)::bigint AS id, g * 0.5::float8 AS mjd, (g %% 7) - 3.0::float8 AS psf_flux,
           CASE WHEN g %% 10 = 0 THEN NULL ELSE (ARRAY['g','r','i'])[1 + g %% 3] END AS band,
           ARRAY[g::float4, g + 0.5::float4] AS shape,
           date '2025-01-01' + g AS night, timestamptz '2025-01-01 00:00Z' + g * interval '1 min' AS t,
           g %% 2 = 0 AS even, g::int2 AS small, '\xdead'::bytea AS raw
      FROM generate_series(1, 1000) g ORDER BY g$q$, t),
    format('/tmp/skycat_regress_files/tract=%s/forcedSource.parquet', t), 250)
  FROM (VALUES (1), (2)) v(t);
CREATE SERVER regress_files FOREIGN DATA WRAPPER skycat_files OPTIONS (root '/tmp/skycat_regress_files');
IMPORT FOREIGN SCHEMA files FROM SERVER regress_files INTO public
  OPTIONS (files 'tract=*/forcedSource.parquet', table 'forced_source');
\d forced_source
-- Every row comes back with its type (round trip against the generating query).
SELECT count(*), count(band), sum(psf_flux), min(night), max(t), sum(small), bool_and(raw = '\xdead')
  FROM forced_source;
SELECT (SELECT count(*) FROM (
    SELECT id, mjd, psf_flux, band, shape, night, t, even, small, raw FROM forced_source WHERE tract = 1
    EXCEPT
    SELECT 1000 + g, g * 0.5::float8, (g % 7) - 3.0::float8,
           CASE WHEN g % 10 = 0 THEN NULL ELSE (ARRAY['g','r','i'])[1 + g % 3] END,
           ARRAY[g::float4, g + 0.5::float4], date '2025-01-01' + g,
           timestamptz '2025-01-01 00:00Z' + g * interval '1 min', g % 2 = 0, g::int2, '\xdead'::bytea
      FROM generate_series(1, 1000) g) d) AS rows_differing;
-- Row-group pruning on a sorted id, partition pruning on the path's tract=.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
  SELECT count(*) FROM forced_source WHERE id BETWEEN 1300 AND 1400;
SELECT count(*) FROM forced_source WHERE id BETWEEN 1300 AND 1400;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM forced_source WHERE tract = 2 AND id IN (2001, 2999);
SELECT id FROM forced_source WHERE tract = 2 AND id IN (2001, 2999) ORDER BY id;
-- Floats: `>` alone cannot prune (NaN sorts above every number in PostgreSQL), `<=` can.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM forced_source WHERE mjd > 499;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM forced_source WHERE mjd <= 10;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM forced_source WHERE band IS NULL;
-- Parameters prune at execution (a prepared statement's generic plan, run repeatedly).
SET plan_cache_mode = force_generic_plan;
PREPARE by_id(bigint) AS SELECT count(*) FROM forced_source WHERE id = $1;
EXECUTE by_id(1001); EXECUTE by_id(2500); EXECUTE by_id(5);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE by_id(2500);
RESET plan_cache_mode;
-- A cached plan inside PL/pgSQL, executed many times.
DO $$ DECLARE n bigint; total bigint := 0; BEGIN
  FOR i IN 1..30 LOOP SELECT count(*) INTO n FROM forced_source WHERE id <= 1000 + i; total := total + n; END LOOP;
  RAISE WARNING 'rows seen: %', total; END $$;
-- A declared table: columns matched by name, hive key and file name from the path.
CREATE FOREIGN TABLE fs_short (file text, tract int, band text, psf_flux float8)
  SERVER regress_files OPTIONS (files 'tract=*/forcedSource.parquet', filename_column 'file');
SELECT file, tract, count(*), count(band) FROM fs_short GROUP BY 1, 2 ORDER BY 1;
-- Parallel scans (forced on these small files): the leader prunes once, then leader and
-- workers claim row groups from shared memory. Every row is read exactly once: the results
-- equal closed forms over the generating series, with and without pruning.
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM forced_source;
SELECT count(*) = 2000 AS all_rows, count(DISTINCT id) = 2000 AS each_once,
       sum(id) = (SELECT sum(t * 1000 + g) FROM generate_series(1, 1000) g, (VALUES (1), (2)) v(t)) AS same_ids,
       count(band) = 2 * (1000 - 100) AS bands, sum(array_length(shape, 1)) = 4000 AS arrays
  FROM forced_source;
SELECT tract, count(*), min(id), max(id) FROM forced_source WHERE id BETWEEN 1300 AND 2400 GROUP BY tract ORDER BY tract;
-- What the leader pruned is what EXPLAIN ANALYZE reports for the whole parallel scan.
CREATE FUNCTION explain_field(q text, field text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE j jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
    RETURN jsonb_path_query_first(j, 'strict $.** ? (@."Node Type" == "Foreign Scan")') ->> field;
END $$;
SELECT explain_field('SELECT count(*) FROM forced_source WHERE id BETWEEN 1300 AND 2400', 'Parallel Aware') AS parallel,
       explain_field('SELECT count(*) FROM forced_source WHERE id BETWEEN 1300 AND 2400', 'Row Groups Read') AS row_groups;
-- A Gather rescanned once per outer row (the outer value is used above it): every rescan
-- reads every row group again.
EXPLAIN (COSTS OFF)
  SELECT k, (SELECT count(*) FROM forced_source HAVING count(*) > k) AS rows FROM generate_series(0, 2) k;
SELECT k, (SELECT count(*) FROM forced_source HAVING count(*) > k) AS rows FROM generate_series(0, 2) k;
-- No worker available: the leader reads every row group itself.
SET max_parallel_workers = 0;
SELECT count(*), sum(id) FROM forced_source;
RESET max_parallel_workers; RESET max_parallel_workers_per_gather; RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost; RESET parallel_setup_cost;
-- Errors: bad options, escaping the root, types that cannot hold the file's values.
SELECT error_of($$CREATE FOREIGN TABLE e1 (id int) SERVER regress_files OPTIONS (files '../*.parquet')$$);
SELECT error_of($$CREATE FOREIGN TABLE e2 (id int) SERVER regress_files OPTIONS (files '/etc/passwd')$$);
SELECT error_of($$CREATE FOREIGN TABLE e3 (id int) SERVER regress_files OPTIONS (files '*.parquet', colour 'red')$$);
SELECT error_of($$CREATE FOREIGN TABLE e4 (id int) SERVER regress_files$$);
SELECT error_of($$CREATE SERVER e5 FOREIGN DATA WRAPPER skycat_files OPTIONS (root 'relative/dir')$$);
SELECT error_of($$CREATE FOREIGN TABLE e6 (id int) SERVER regress_files OPTIONS (files '*.orc', format 'orc')$$);
-- A glob that matches nothing is an empty table.
CREATE FOREIGN TABLE nothing (id int) SERVER regress_files OPTIONS (files 'tract=9/*.parquet');
SELECT count(*) FROM nothing;
CREATE FOREIGN TABLE narrow (id int, psf_flux float4, small int) SERVER regress_files OPTIONS (files 'tract=1/*.parquet');
SELECT error_of('SELECT id FROM narrow');
SELECT error_of('SELECT psf_flux FROM narrow');
SELECT sum(small) FROM narrow;
CREATE FOREIGN TABLE drift (id bigint, not_there int) SERVER regress_files OPTIONS (files 'tract=*/*.parquet');
SELECT error_of('SELECT * FROM drift');
SELECT error_of('INSERT INTO forced_source (id) VALUES (1)');
SELECT error_of($$SELECT skycat.write_parquet('SELECT 1', 'relative.parquet')$$);
SELECT error_of($$SELECT skycat.write_parquet('SELECT 1', '/tmp/skycat_regress_files/x.parquet', 0)$$);
SELECT error_of($$SELECT skycat.write_parquet('CREATE TABLE zz (a int)', '/tmp/skycat_regress_files/x.parquet')$$);
-- Privileges: naming files needs pg_read_server_files, writing them pg_write_server_files.
CREATE ROLE skycat_regress_user;
GRANT USAGE ON FOREIGN DATA WRAPPER skycat_files TO skycat_regress_user;
GRANT USAGE ON FOREIGN SERVER regress_files TO skycat_regress_user;
GRANT CREATE ON SCHEMA public TO skycat_regress_user;
SET ROLE skycat_regress_user;
SELECT error_of($$CREATE FOREIGN TABLE e7 (id int) SERVER regress_files OPTIONS (files '*.parquet')$$);
SELECT error_of($$CREATE SERVER e8 FOREIGN DATA WRAPPER skycat_files OPTIONS (root '/')$$);
SELECT error_of($$SELECT skycat.write_parquet('SELECT 1', '/tmp/skycat_regress_files/x.parquet')$$);
RESET ROLE;
GRANT pg_read_server_files TO skycat_regress_user;
SET ROLE skycat_regress_user;
CREATE FOREIGN TABLE mine (id bigint) SERVER regress_files OPTIONS (files 'tract=1/*.parquet');
SELECT count(*) FROM mine;
RESET ROLE;
DROP FOREIGN TABLE mine;
REVOKE CREATE ON SCHEMA public FROM skycat_regress_user;
DROP OWNED BY skycat_regress_user;
DROP ROLE skycat_regress_user;
DROP SERVER regress_files CASCADE;
