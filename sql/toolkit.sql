-- The shared layer under the AP and DRP procedures (sql/ap.sql, sql/drp.sql): reading and
-- checking a schema's policy once, and generating the calibration SQL that calibrate_sources,
-- the DRP ingest and both recalibrations run. Orchestration only: the arithmetic is skycat's
-- C functions.

-- The policy rules: for each kind of schema ('ap', 'drp'), every key it must have and the
-- values it accepts. rule 'real' (lo, hi], 'int' [lo, hi], 'choice' one of `choices`,
-- 'bands' lower-case band names, 'size' a PostgreSQL size, 'absolute' an absolute path,
-- 'text' anything non-empty. A rule ending in '?' is for a key that may be absent (when present,
-- its value is checked as the rule without the '?' says).
CREATE FUNCTION _policy_rules(kind text)
  RETURNS TABLE (key text, rule text, lo float8, hi float8, choices text[], allowed text)
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT r.key, r.rule, r.lo, r.hi, r.choices,
         CASE rtrim(r.rule, '?')
           WHEN 'real' THEN format('a number in (%s, %s]', r.lo, r.hi)
           WHEN 'int' THEN format('an integer in [%s, %s]', r.lo, r.hi)
           WHEN 'choice' THEN 'one of ' || array_to_string(r.choices, ', ')
           WHEN 'bands' THEN 'lower-case band names such as {u,g,r,i,z,y}'
           WHEN 'size' THEN 'a size such as 256MB (64kB to 2TB)'
           WHEN 'absolute' THEN 'an absolute directory'
           ELSE 'a non-empty text' END || CASE WHEN r.rule LIKE '%?' THEN ' (or no row)' ELSE '' END
    FROM (VALUES
      ('ap', 'match_radius_arcsec', 'real', 0::float8, 3600::float8, NULL::text[]),
      ('ap', 'mops_radius_arcsec', 'real', 0, 3600, NULL),
      ('ap', 'fov_radius_deg', 'real', 0, 90, NULL),
      ('ap', 'stripe_height_deg', 'real', 0, 180, NULL),
      ('ap', 'retention_days', 'real', 0, 1e6, NULL),
      ('ap', 'assoc_mode', 'choice', NULL, NULL, ARRAY['greedy', 'optimal']),
      ('ap', 'exposure_files', 'absolute?', NULL, NULL, NULL),
      ('drp', 'stripe_height_deg', 'real', 0, 180, NULL),
      ('drp', 'num_rings', 'int', 1, 3600, NULL),
      ('drp', 'bands', 'bands', NULL, NULL, NULL),
      ('drp', 'work_mem', 'size', NULL, NULL, NULL),
      ('drp', 'summary_write', 'choice?', NULL, NULL, ARRAY['rebuild', 'update']),
      ('drp', 'files_root', 'absolute', NULL, NULL, NULL),
      ('drp', 'files_server', 'text', NULL, NULL, NULL)) AS r(kind, key, rule, lo, hi, choices)
   WHERE r.kind = _policy_rules.kind
$$;

-- The policy of an AP or DRP schema as one jsonb object {key: value}, every key checked
-- against its rule: read once per call of a procedure. 42P01 when the schema has no policy
-- table, 22023 naming the key, its value and what is allowed when a key is missing or its
-- value is not acceptable (a bad value must stop the pipeline, not delete or duplicate rows).
CREATE FUNCTION _policy(schema name, kind text) RETURNS jsonb
  STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  p jsonb;
  r record;
  v text;
  ok boolean;
BEGIN
  IF to_regclass(format('%I.policy', schema)) IS NULL THEN
    RAISE EXCEPTION 'skycat.%: % is not a % schema (no %.policy table; create one with skycat.%_create)',
      kind, schema, upper(kind), schema, kind USING ERRCODE = '42P01';
  END IF;
  EXECUTE format('SELECT jsonb_object_agg(key, value) FROM %I.policy', schema) INTO p;
  FOR r IN SELECT * FROM skycat._policy_rules(kind) LOOP
    v := p ->> r.key;
    CONTINUE WHEN v IS NULL AND r.rule LIKE '%?';
    IF v IS NULL THEN
      RAISE EXCEPTION 'skycat.%: policy "%" is not set in %.policy', kind, r.key, schema USING ERRCODE = '22023';
    END IF;
    BEGIN
      ok := CASE rtrim(r.rule, '?')
        WHEN 'real' THEN v::float8 > r.lo AND v::float8 <= r.hi  -- NaN fails: it sorts above every number
        WHEN 'int' THEN v::int BETWEEN r.lo AND r.hi
        WHEN 'choice' THEN v = ANY (r.choices)
        WHEN 'bands' THEN cardinality(v::text[]) > 0
                          AND NOT EXISTS (SELECT 1 FROM unnest(v::text[]) b WHERE b !~ '^[a-z][a-z0-9]*$')
        WHEN 'size' THEN pg_size_bytes(v) BETWEEN 64 * 1024 AND 2147483647::bigint * 1024
        WHEN 'absolute' THEN left(v, 1) = '/'
        ELSE v <> '' END;
    EXCEPTION WHEN data_exception THEN
      ok := false;
    END;
    IF NOT ok THEN
      RAISE EXCEPTION 'skycat.%: policy "%" in %.policy must be %, got "%"', kind, r.key, schema, r.allowed, v
        USING ERRCODE = '22023';
    END IF;
  END LOOP;
  RETURN p;
END $$;

-- The SELECT list that turns instrumental fluxes into calibrated ones: for each name f,
-- `nanojansky(<src>.<f>_inst_flux, calib) AS <f>_flux` and its error, with the calibration
-- and its error given as SQL expressions.
CREATE FUNCTION _calibrated_fluxes(fluxes text[], src text, calib text, calib_err text) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT string_agg(format('skycat.nanojansky(%2$s.%3$I, %4$s) AS %5$I, '
                           'skycat.nanojansky_err(%2$s.%3$I, %2$s.%6$I, %4$s, %7$s) AS %8$I',
                           f, src, f || '_inst_flux', calib, f || '_flux', f || '_inst_flux_err', calib_err,
                           f || '_flux_err'), ', ' ORDER BY o)
    FROM unnest(fluxes) WITH ORDINALITY AS t(f, o)
$$;

-- The SET list that re-applies a new calibration to calibrated fluxes in place, from the
-- calibration each row records (`calib_applied`, `calib_err_applied`): for each name f,
-- `<f>_flux = recalibrate(...)`, `<f>_flux_err = recalibrate_err(...)`, then the new
-- calibration recorded. Every right-hand side reads the row's old values.
CREATE FUNCTION _recalibration_sets(fluxes text[], row_alias text, calib text, calib_err text) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT coalesce(string_agg(format('%1$I = skycat.recalibrate(%2$s.%1$I, %2$s.calib_applied, %3$s), '
                                    '%4$I = skycat.recalibrate_err(%2$s.%1$I, %2$s.%4$I, %2$s.calib_applied, '
                                    '%2$s.calib_err_applied, %3$s, %5$s), ',
                                    f || '_flux', row_alias, calib, f || '_flux_err', calib_err), '' ORDER BY o), '')
         || format('calib_applied = %s, calib_err_applied = %s', calib, calib_err)
    FROM unnest(fluxes) WITH ORDINALITY AS t(f, o)
$$;

-- Whether a row's recorded calibration differs from a new one (the rows a recalibration
-- touches: applying the same calibration twice changes nothing the second time).
CREATE FUNCTION _calibration_changed(row_alias text, calib text, calib_err text) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format('(%1$s.calib_applied IS DISTINCT FROM %2$s OR %1$s.calib_err_applied IS DISTINCT FROM %3$s)',
                row_alias, calib, calib_err)
$$;

-- Raises work_mem to `wanted` for the rest of the transaction unless the session already has
-- more (a big sort or aggregate of a policy), and returns the setting before, which the
-- caller restores with set_config('work_mem', before, true). (The function's own SET clause
-- restores only search_path at exit, not work_mem.)
CREATE FUNCTION _raise_work_mem(wanted text) RETURNS text
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  before text := current_setting('work_mem');
BEGIN
  IF pg_size_bytes(wanted) > pg_size_bytes(before) THEN
    PERFORM set_config('work_mem', wanted, true);
  END IF;
  RETURN before;
END
$$;

-- Drops this session's temporary tables of these names that exist (quietly: no notice for
-- the others, as DROP TABLE IF EXISTS would give).
CREATE FUNCTION _drop_temp_tables(names text[]) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  n text;
BEGIN
  FOREACH n IN ARRAY names LOOP
    IF to_regclass(format('pg_temp.%I', n)) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', n);
    END IF;
  END LOOP;
END
$$;
