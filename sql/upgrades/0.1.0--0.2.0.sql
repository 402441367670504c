-- skycat 0.1.0 -> 0.2.0 (ALTER EXTENSION skycat UPDATE TO '0.2.0').
-- scripts/sql-upgrade.py expands the markers below: `@copy-table` into a new table's statements
-- from the 0.2.0 install script, `@recreate-functions` into every function and procedure of
-- 0.2.0 (CREATE OR REPLACE, with comments and grants); this file holds what that cannot do.

-- ap_ra_ranges was a SQL function returning one record; it is a C function returning a set
-- now (the result type changes, which CREATE OR REPLACE refuses).
DROP FUNCTION ap_ra_ranges(float8, float8, float8);
-- drp_summarize_partition reports the objects the aggregate summarised too (a new OUT column).
DROP FUNCTION drp_summarize_partition(name, regclass, float8, float8, regclass);

-- The registry of distributed sky tables (scale-out on Citus), before the functions that use
-- its row type.
-- @copy-table sky_tables

-- The types of dwithin's index condition and of the sky_point index (before the functions
-- that take or return them).
-- @copy-type keybound
-- @copy-type decbound
-- @copy-type sky_cone
-- @copy-type sky_box
-- The flux summary the AP folds detections into.
-- @copy-type flux_summary

-- @recreate-functions

-- Their operators, and the operator families and class that index them.
-- @copy-matching CREATE\s+OPERATOR\s+(>=|<=)\s*\(\s*LEFTARG\s*=\s*(bigint|float8)\s*,\s*RIGHTARG\s*=\s*(keybound|decbound)\b
-- @copy-matching ALTER\s+OPERATOR\s+FAMILY\s+pg_catalog\.(integer_ops|float_ops)\s+USING\s+btree\s+ADD
-- @copy-matching CREATE\s+OPERATOR\s+(<->|<@)\s*\(\s*LEFTARG\s*=\s*sky_point\b
-- @copy-matching COMMENT\s+ON\s+OPERATOR\s+(<->|<@)\s*\(sky_point
-- @copy-matching (CREATE|COMMENT\s+ON)\s+OPERATOR\s+CLASS\s+sky_point_ops\b

-- Every role may run calibrate_sources: the progress table is shared, row by row limited to
-- the targets a role may write.
ALTER TABLE calibration_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY calibration_progress_target_writers ON calibration_progress
  USING (pg_catalog.has_table_privilege(pg_catalog.to_regclass(target), 'INSERT'))
  WITH CHECK (pg_catalog.has_table_privilege(pg_catalog.to_regclass(target), 'INSERT'));

-- 0.2.0 names targets and sources schema-qualified. Progress rows that 0.1.0 wrote with
-- names as a default search_path ("$user", public) finds them are qualified, so that a run
-- interrupted before the update resumes instead of starting again.
DO $upgrade$
DECLARE
  saved text := pg_catalog.current_setting('search_path');
BEGIN
  PERFORM pg_catalog.set_config('search_path', '"$user", public', true);
  UPDATE @extschema@.calibration_progress p
     SET target = COALESCE(q.target, p.target), source = COALESCE(q.source, p.source)
    FROM (SELECT p2.target AS old_target, p2.source AS old_source,
                 (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = pg_catalog.to_regclass(p2.target)) AS target,
                 (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = pg_catalog.to_regclass(p2.source)) AS source
            FROM @extschema@.calibration_progress p2) q
   WHERE q.old_target = p.target AND q.old_source = p.source;
  PERFORM pg_catalog.set_config('search_path', saved, true);
END
$upgrade$;
