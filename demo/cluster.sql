-- The scale-out demo (make demo-cluster): catalogs on a private Citus cluster of a coordinator
-- and two workers, run from the coordinator. docs/scale-out.md explains each step.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;
SET search_path = demo, public;
SET client_min_messages = notice;

\echo
\echo '== 1. The cluster: a coordinator and two workers, Citus and skycat on each'
SELECT nodeid, regexp_replace(nodename, '.*/', '') AS node, nodeport, shouldhaveshards AS holds_shards
  FROM pg_dist_node ORDER BY nodeid;

\echo
\echo '== 2. 300,000 objects in a 3-degree field, their re-observation, and 3 forced sources each (skycat-sim)'
CREATE TABLE object (object_id bigint PRIMARY KEY, ra float8, "dec" float8, ra_err float8, dec_err float8);
\copy object FROM PROGRAM 'target/release/skycat-sim sky --kind field --field-radius-deg 3 --n 300000 --seed 5' WITH (FORMAT csv)
CREATE TABLE source (source_id bigint PRIMARY KEY, ra float8, "dec" float8, ra_err float8, dec_err float8);
\copy source FROM PROGRAM 'target/release/skycat-sim sky --kind field --field-radius-deg 3 --n 300000 --seed 5 --reobserve-seed 6 --id0 10000000' WITH (FORMAT csv)
CREATE TABLE forced_source (object_id bigint, mjd float8, psf_flux float8);
INSERT INTO forced_source SELECT object_id, 60000 + k, 1000 + k FROM object, generate_series(1, 3) k;
SELECT (SELECT count(*) FROM object) AS objects, (SELECT count(*) FROM source) AS sources,
       (SELECT count(*) FROM forced_source) AS forced_sources;

\echo
\echo '== 3. Distributed by Qserv chunk: forced sources follow their object (co-located), sources by position'
SET client_min_messages = warning;  -- (Citus reports each table's copy to its shards)
SELECT * FROM skycat.distribute_sky_table('object', '{forced_source}', id_column => 'object_id');
SELECT * FROM skycat.distribute_sky_table('source', id_column => 'source_id');
SET client_min_messages = notice;
SELECT regexp_replace(nodename, '.*/', '') AS node, count(*) AS shards, pg_size_pretty(sum(shard_size)) AS size
  FROM citus_shards WHERE table_name IN ('object'::regclass, 'source'::regclass, 'forced_source'::regclass)
 GROUP BY 1 ORDER BY 1;

\echo
\echo '== 4. A cone search with the chunk predicate asks only the shards of the chunks it touches'
CREATE INDEX ON object (skycat.sky_key(ra, "dec"));
SELECT count(*) AS objects_within_5_arcmin
  FROM object
 WHERE chunk = ANY (skycat.chunks_in_circle(150.0, 2.2, 300)) AND skycat.dwithin(ra, "dec", 150.0, 2.2, 300);
CREATE TEMP TABLE plan (k serial, line text);
DO $$
DECLARE
  l text;
BEGIN
  FOR l IN EXPLAIN (COSTS OFF) SELECT count(*) FROM demo.object
            WHERE chunk = ANY (skycat.chunks_in_circle(150.0, 2.2, 300)) AND skycat.dwithin(ra, "dec", 150.0, 2.2, 300)
  LOOP
    INSERT INTO plan (line) VALUES (l);
  END LOOP;
END $$;
SELECT left(line, 90) AS "EXPLAIN, abridged: few tasks, index scans"
  FROM plan WHERE line ~ 'Custom Scan|Task Count|Node:|Scan on|Index Scan' ORDER BY k LIMIT 6;

\echo
\echo '== 5. A light curve summary per object, computed on the workers (co-located join on chunk)'
SELECT o.object_id, count(*) AS n, avg(f.psf_flux) AS mean_flux
  FROM object o JOIN forced_source f ON f.chunk = o.chunk AND f.object_id = o.object_id
 GROUP BY o.object_id ORDER BY o.object_id LIMIT 3;

\echo
\echo '== 6. A margin of 2 arcsec around every chunk, then the distributed cross-match chunk by chunk'
SELECT skycat.build_margin('object', 2) AS margin_rows;
SELECT mode, count(*) AS pairs, round(avg(sep_arcsec)::numeric, 3) AS mean_sep_arcsec
  FROM (VALUES ('all'), ('nearest'), ('greedy')) m(mode),
       LATERAL skycat.crossmatch_distributed('source', 'object', 1.0, m.mode)
 GROUP BY mode ORDER BY mode;

\echo
\echo '== 7. The same greedy match on one node gives the same pairs'
CREATE TEMP TABLE object_one AS SELECT object_id AS id, ra, "dec" FROM object;
CREATE TEMP TABLE source_one AS SELECT source_id AS id, ra, "dec" FROM source;
SELECT count(*) AS differing_pairs FROM (
  (SELECT left_id, right_id FROM skycat.crossmatch_distributed('source', 'object', 1.0, 'greedy')
   EXCEPT SELECT left_id, right_id FROM skycat.crossmatch('SELECT id, ra, dec FROM source_one', 'SELECT id, ra, dec FROM object_one', 1.0, 'greedy'))
  UNION ALL
  (SELECT left_id, right_id FROM skycat.crossmatch('SELECT id, ra, dec FROM source_one', 'SELECT id, ra, dec FROM object_one', 1.0, 'greedy')
   EXCEPT SELECT left_id, right_id FROM skycat.crossmatch_distributed('source', 'object', 1.0, 'greedy'))) d;

\echo
\echo '== 8. A large result stays distributed: into a table co-located with the sources'
SELECT skycat.crossmatch_distributed('source', 'object', 1.0, 'all', into_table => 'source_object_match');
SELECT count(*) AS rows, count(DISTINCT chunk) AS chunks FROM source_object_match;

\echo
\echo '== 9. A data release post-processed on the workers: a DRP schema spread by chunk (skycat-sim drp: 4 tracts)'
\! rm -rf /tmp/skycat_demo_cluster_drp && target/release/skycat-sim drp --dir /tmp/skycat_demo_cluster_drp --objects 20000 >/dev/null 2>&1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS demo_drp CASCADE;
DROP SERVER IF EXISTS demo_drp_files CASCADE;
SELECT skycat.drp_create('demo_drp', '/tmp/skycat_demo_cluster_drp');
SELECT * FROM skycat.drp_distribute('demo_drp');
SELECT t.tract, sum(r.rows) AS rows_ingested
  FROM (SELECT DISTINCT tract FROM demo_drp.files_calib) t, skycat.drp_ingest_tract('demo_drp', t.tract) r
 GROUP BY 1 ORDER BY 1;
SELECT staged, kept, dropped FROM skycat.drp_deduplicate_objects('demo_drp');
CALL skycat.drp_summarize_forced_sources('demo_drp');
SET client_min_messages = notice;
SELECT part, rows_done, rows_total FROM demo_drp.progress ORDER BY updated_at DESC LIMIT 2;
SELECT regexp_replace(nodename, '.*/', '') AS node, pg_size_pretty(sum(shard_size)) AS forced_source_size
  FROM citus_shards WHERE table_name = 'demo_drp.forced_source'::regclass GROUP BY 1 ORDER BY 1;
SELECT object_id, round(g_psf_flux_mean::numeric, 1) AS g_mean_njy, g_psf_flux_ndata AS g_n,
       round(r_psf_flux_percentile50::numeric, 1) AS r_median_njy
  FROM demo_drp.object WHERE g_psf_flux_ndata > 0 ORDER BY object_id LIMIT 3;
