-- Exposure metadata of the nightly Association Pipeline (SQL-API section 6, docs/nightly-ap.md).
--
-- Image processing writes, per visit, the visit row, its two snaps (FPA_Exposure), their link
-- to the visit (FPAExposure2Visit), one row per CCD per snap (CCD_Exposure) and one per
-- amplifier per CCD per snap (AmpExposure), as files:
--
--   <directory>/visit=<visit>/visit.parquet
--   <directory>/visit=<visit>/fpa_exposure.parquet
--   <directory>/visit=<visit>/fpa_exposure_to_visit.parquet
--   <directory>/visit=<visit>/ccd_exposure.parquet
--   <directory>/visit=<visit>/amp_exposure.parquet
--
-- LSST's design ingests them into the database in the post-process phase. Here:
--   _ap_create_exposure_tables(schema)  the five tables of an AP schema (called by ap_create);
--   ap_exposure_files(schema, server, directory)  the operator's one-time setup: foreign tables
--                       files_<kind> over the files (visit is the hive key of the path, so a
--                       visit's rows are read from its own directory only) and the policy key
--                       exposure_files (the absolute directory); NULL, NULL turns it off;
--   _ap_ingest_exposures(schema, visit)  called by ap_post_visit in its transaction: the
--                       visit's rows from the five files into the five tables.
--
-- Every function runs with a fixed search_path; names reach dynamic SQL through %I only and
-- values through USING (the `files` option of a foreign table, which DDL cannot take as a
-- parameter, through %L).

-- The columns of the five exposure tables, in table order, with the primary keys LSST gives
-- them: visit (visit), fpa_exposure (exposure_id), fpa_exposure_to_visit (exposure_id: an
-- exposure belongs to one visit), ccd_exposure (exposure_id, ccd), amp_exposure (exposure_id,
-- ccd, amp). The files carry the same columns.
CREATE FUNCTION _ap_exposure_columns()
  RETURNS TABLE (kind text, kind_ord int, col name, typ text, is_key boolean, not_null boolean, col_ord int)
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT c.kind, c.kind_ord, c.col::name, c.typ, c.is_key, c.not_null, c.col_ord
    FROM (VALUES
      ('visit', 1, 'visit', 'bigint', true, true, 1),
      ('visit', 1, 'ra', 'float8', false, false, 2),
      ('visit', 1, 'dec', 'float8', false, false, 3),
      ('visit', 1, 'mjd', 'float8', false, false, 4),
      ('visit', 1, 'band', 'text', false, false, 5),
      ('fpa_exposure', 2, 'exposure_id', 'bigint', true, true, 1),
      ('fpa_exposure', 2, 'ra', 'float8', false, false, 2),
      ('fpa_exposure', 2, 'dec', 'float8', false, false, 3),
      ('fpa_exposure', 2, 'mjd', 'float8', false, false, 4),
      ('fpa_exposure', 2, 'band', 'text', false, false, 5),
      ('fpa_exposure', 2, 'exp_time', 'float8', false, false, 6),
      ('fpa_exposure_to_visit', 3, 'exposure_id', 'bigint', true, true, 1),
      ('fpa_exposure_to_visit', 3, 'visit', 'bigint', false, true, 2),
      ('ccd_exposure', 4, 'exposure_id', 'bigint', true, true, 1),
      ('ccd_exposure', 4, 'ccd', 'int', true, true, 2),
      ('ccd_exposure', 4, 'ra', 'float8', false, false, 3),
      ('ccd_exposure', 4, 'dec', 'float8', false, false, 4),
      ('ccd_exposure', 4, 'zero_point', 'float8', false, false, 5),
      ('ccd_exposure', 4, 'seeing_arcsec', 'float8', false, false, 6),
      ('ccd_exposure', 4, 'sky_background', 'float8', false, false, 7),
      ('amp_exposure', 5, 'exposure_id', 'bigint', true, true, 1),
      ('amp_exposure', 5, 'ccd', 'int', true, true, 2),
      ('amp_exposure', 5, 'amp', 'int', true, true, 3),
      ('amp_exposure', 5, 'gain', 'float8', false, false, 4),
      ('amp_exposure', 5, 'read_noise', 'float8', false, false, 5),
      ('amp_exposure', 5, 'bias_level', 'float8', false, false, 6)
    ) AS c(kind, kind_ord, col, typ, is_key, not_null, col_ord)
$$;

-- One exposure table: its CREATE TABLE statement (columns, NOT NULLs, primary key).
CREATE FUNCTION _ap_exposure_table_ddl(schema name, kind text) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format('CREATE TABLE %I.%I (%s, PRIMARY KEY (%s))', schema, _ap_exposure_table_ddl.kind,
                string_agg(format('%I %s%s', c.col, c.typ, CASE WHEN c.not_null THEN ' NOT NULL' ELSE '' END), ', '
                           ORDER BY c.col_ord),
                string_agg(format('%I', c.col), ', ' ORDER BY c.col_ord) FILTER (WHERE c.is_key))
    FROM skycat._ap_exposure_columns() c
   WHERE c.kind = _ap_exposure_table_ddl.kind
$$;

-- The five exposure tables of an AP schema (ap_create calls this). 42P07 if one exists.
CREATE FUNCTION _ap_create_exposure_tables(schema name) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  k record;
BEGIN
  FOR k IN SELECT DISTINCT c.kind, c.kind_ord FROM skycat._ap_exposure_columns() c ORDER BY c.kind_ord LOOP
    EXECUTE skycat._ap_exposure_table_ddl(schema, k.kind);
  END LOOP;
  -- The exposures of a visit, found from the visit.
  EXECUTE format('CREATE INDEX ON %I.fpa_exposure_to_visit (visit)', schema);
END $$;

-- The operator's one-time setup: the AP schema `schema` ingests, at every ap_post_visit, the
-- visit's exposure metadata from `directory`/visit=<visit>/<kind>.parquet, read through the
-- skycat_files server `server`. `directory` is relative to the server's root, or absolute
-- and inside it ('' or '.' or the root itself: the root). Creates (or re-creates) the foreign
-- tables files_visit, files_fpa_exposure, files_fpa_exposure_to_visit, files_ccd_exposure,
-- files_amp_exposure in the schema and sets the policy key exposure_files to the absolute
-- directory. Exposure tables of an AP schema made before the metadata columns existed get
-- them (nullable). ap_exposure_files(schema, NULL, NULL) turns the ingestion off (drops the
-- foreign tables and the policy key; the ingested rows stay).
-- Errors: 42P01 not an AP schema; 42704 no such server; 22023 a server of another wrapper or
-- without a root, a directory outside the root, with a `..` component or glob characters, or
-- only one of server and directory given; 42501 (from the wrapper) without the right to read
-- server files.
CREATE FUNCTION ap_exposure_files(schema name, server name, directory text) RETURNS text
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  wrapper name;
  root text;
  rel text;
  dir text;
  k record;
  missing text;
BEGIN
  IF schema IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_exposure_files: schema must not be NULL' USING ERRCODE = '22023';
  END IF;
  PERFORM skycat._policy(schema, 'ap');  -- 42P01 when not an AP schema
  IF server IS NULL AND directory IS NULL THEN
    FOR k IN SELECT DISTINCT c.kind, c.kind_ord FROM skycat._ap_exposure_columns() c ORDER BY c.kind_ord LOOP
      IF to_regclass(format('%I.%I', schema, 'files_' || k.kind)) IS NOT NULL THEN
        EXECUTE format('DROP FOREIGN TABLE %I.%I', schema, 'files_' || k.kind);
      END IF;
    END LOOP;
    EXECUTE format('DELETE FROM %I.policy WHERE key = $1', schema) USING 'exposure_files';
    RETURN format('AP schema %s: exposure metadata no longer ingested at post', schema);
  END IF;
  IF server IS NULL OR directory IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_exposure_files: give both a server and a directory (both NULL turns the ingestion off)'
      USING ERRCODE = '22023';
  END IF;

  SELECT w.fdwname, (SELECT substr(o, 6) FROM unnest(s.srvoptions) o WHERE o LIKE 'root=%' LIMIT 1)
    INTO wrapper, root
    FROM pg_catalog.pg_foreign_server s JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
   WHERE s.srvname = server;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'skycat.ap_exposure_files: server "%" does not exist', server USING ERRCODE = '42704',
      HINT = 'CREATE SERVER ... FOREIGN DATA WRAPPER skycat_files OPTIONS (root ''/absolute/dir'')';
  END IF;
  IF wrapper <> 'skycat_files' OR root IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_exposure_files: server "%" is not a skycat_files server with a root', server
      USING ERRCODE = '22023';
  END IF;

  -- The directory relative to the root: '' for the root itself.
  root := rtrim(root, '/');
  rel := regexp_replace(directory, '/+', '/', 'g');
  IF left(rel, 1) = '/' THEN
    rel := rtrim(rel, '/');
    IF rel = root THEN
      rel := '';
    ELSIF left(rel, length(root) + 1) = root || '/' THEN
      rel := substr(rel, length(root) + 2);
    ELSE
      RAISE EXCEPTION 'skycat.ap_exposure_files: directory % is not inside the root % of server "%"',
        directory, coalesce(nullif(root, ''), '/'), server USING ERRCODE = '22023';
    END IF;
  END IF;
  rel := rtrim(regexp_replace(rel, '^(\./)+', ''), '/');
  IF rel = '.' THEN
    rel := '';
  END IF;
  IF rel ~ '(^|/)\.\.?(/|$)' OR rel ~ '[][*?\\]' THEN
    RAISE EXCEPTION 'skycat.ap_exposure_files: directory % must not hold . or .. components or glob characters (* ? [ ] \)',
      directory USING ERRCODE = '22023';
  END IF;
  dir := CASE WHEN rel = '' THEN coalesce(nullif(root, ''), '/') ELSE root || '/' || rel END;

  -- The tables: created when missing, the metadata columns added when missing.
  FOR k IN SELECT DISTINCT c.kind, c.kind_ord FROM skycat._ap_exposure_columns() c ORDER BY c.kind_ord LOOP
    IF to_regclass(format('%I.%I', schema, k.kind)) IS NULL THEN
      EXECUTE skycat._ap_exposure_table_ddl(schema, k.kind);
    ELSE
      SELECT string_agg(format('ADD COLUMN %I %s', c.col, c.typ), ', ' ORDER BY c.col_ord) INTO missing
        FROM skycat._ap_exposure_columns() c
       WHERE c.kind = k.kind
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                          WHERE a.attrelid = format('%I.%I', schema, k.kind)::regclass
                            AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped);
      IF missing IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %I.%I %s', schema, k.kind, missing);
      END IF;
    END IF;
  END LOOP;

  -- The foreign tables: the table's columns, plus the hive key visit of the path.
  FOR k IN SELECT c.kind, min(c.kind_ord) AS kind_ord,
                  string_agg(format('%I %s', c.col, c.typ), ', ' ORDER BY c.col_ord) AS decl,
                  bool_or(c.col = 'visit') AS has_visit
             FROM skycat._ap_exposure_columns() c GROUP BY c.kind ORDER BY 2 LOOP
    IF to_regclass(format('%I.%I', schema, 'files_' || k.kind)) IS NOT NULL THEN
      EXECUTE format('DROP FOREIGN TABLE %I.%I', schema, 'files_' || k.kind);
    END IF;
    EXECUTE format('CREATE FOREIGN TABLE %I.%I (%s%s) SERVER %I OPTIONS (files %L)',
                   schema, 'files_' || k.kind, k.decl, CASE WHEN k.has_visit THEN '' ELSE ', visit bigint' END,
                   server, CASE WHEN rel = '' THEN '' ELSE rel || '/' END || 'visit=*/' || k.kind || '.parquet');
  END LOOP;
  EXECUTE format('INSERT INTO %I.policy (key, value) VALUES ($1, $2)
                    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', schema)
    USING 'exposure_files', dir;
  RETURN format('AP schema %s ingests exposure metadata at post from %s/visit=<visit>/'
                '{visit,fpa_exposure,fpa_exposure_to_visit,ccd_exposure,amp_exposure}.parquet '
                '(server %s, foreign tables %s.files_*)', schema, rtrim(dir, '/'), server, schema);
END $$;

-- Called by ap_post_visit, in its transaction: when the schema's policy has exposure_files,
-- the visit's rows of the five files into the five tables, and the number of rows ingested;
-- 0 (nothing done) when it has not. The visit row is upserted (the pipeline may have loaded
-- ap.visit before the night; the file's row is the observed one); the exposures, CCDs and
-- amplifiers are inserted, so ingesting a visit twice is an error (23505) that leaves
-- nothing of the second attempt, and a post rolled back ingests again when re-run.
-- Errors: 58P01 when a file of the visit is missing or holds no rows (naming the visit and
-- the file); 42P01 when the foreign tables are gone (run ap_exposure_files again).
CREATE FUNCTION _ap_ingest_exposures(schema name, visit bigint) RETURNS int
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  dir text := skycat._policy(schema, 'ap') ->> 'exposure_files';
  k record;
  n bigint;
  total bigint := 0;
BEGIN
  IF dir IS NULL THEN
    RETURN 0;
  END IF;
  IF visit IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_post_visit: visit must not be NULL' USING ERRCODE = '22023';
  END IF;
  FOR k IN SELECT c.kind, min(c.kind_ord) AS kind_ord,
                  string_agg(format('%I', c.col), ', ' ORDER BY c.col_ord) AS cols,
                  string_agg(format('%1$I = EXCLUDED.%1$I', c.col), ', ' ORDER BY c.col_ord)
                    FILTER (WHERE NOT c.is_key) AS sets
             FROM skycat._ap_exposure_columns() c GROUP BY c.kind ORDER BY 2 LOOP
    IF to_regclass(format('%I.%I', schema, 'files_' || k.kind)) IS NULL THEN
      RAISE EXCEPTION 'skycat.ap_post_visit: %.policy has exposure_files = % but the foreign table %.% is missing',
        schema, dir, schema, 'files_' || k.kind USING ERRCODE = '42P01',
        HINT = 'Run skycat.ap_exposure_files again, or turn the ingestion off with skycat.ap_exposure_files(schema, NULL, NULL).';
    END IF;
    EXECUTE format('INSERT INTO %1$I.%2$I AS t (%3$s) SELECT %3$s FROM %1$I.%4$I f WHERE f.visit = $1 %5$s',
                   schema, k.kind, k.cols, 'files_' || k.kind,
                   CASE WHEN k.kind = 'visit' THEN 'ON CONFLICT (visit) DO UPDATE SET ' || k.sets ELSE '' END)
      USING visit;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
      RAISE EXCEPTION 'skycat.ap_post_visit: no exposure metadata for visit %: %/visit=%/%.parquet is missing or empty',
        visit, rtrim(dir, '/'), visit, k.kind USING ERRCODE = '58P01',
        HINT = format('Exposure files are ingested at post (%s.policy exposure_files). Write the visit''s five files and '
                      'call ap_post_visit again, or turn the ingestion off with skycat.ap_exposure_files(schema, NULL, NULL).',
                      schema);
    END IF;
    total := total + n;
  END LOOP;
  RETURN total;
END $$;
