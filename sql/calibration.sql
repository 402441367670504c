-- Bulk calibration of per-tract tables (docs/calibration.md).
--
-- calibrate_sources(raw, calibs, target): raw table -> calibrated table, in batches of
-- physical blocks (TID range scans), one transaction per batch, resumable after a crash or
-- a cancel. recalibrate_sources(target, new_calibs): applies new calibrations in place,
-- idempotently. Both are plpgsql: the per-row work is skycat's C functions, and the
-- procedures only generate the SQL and drive the batches.
--
-- The functions have a fixed search_path. The two procedures cannot have one (PostgreSQL
-- forbids COMMIT in a procedure with a SET clause, e.g. SET search_path), so they fix their
-- search_path with set_config(..., true) at the start of every transaction they run (the
-- first, and after each COMMIT) and give the caller's back at the end; every name below is
-- schema-qualified as well.

-- One row per (target, raw leaf relation): where the last committed batch ended.
CREATE TABLE calibration_progress (
    target        text        NOT NULL,
    source        text        NOT NULL,
    next_block    bigint      NOT NULL,
    total_blocks  bigint      NOT NULL,
    rows_written  bigint      NOT NULL DEFAULT 0,
    started       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (target, source)
);
COMMENT ON TABLE calibration_progress IS
  'Progress of skycat.calibrate_sources runs: an interrupted CALL resumes after the last committed batch. Delete a target''s rows to calibrate it again from scratch.';
SELECT pg_catalog.pg_extension_config_dump('calibration_progress', '');
-- Every role may run calibrate_sources, so every role may keep progress rows, but only for
-- targets it may write: a row is visible and writable to the roles with INSERT on its target
-- (stored schema-qualified, so to_regclass finds it whatever the reader's search_path).
ALTER TABLE calibration_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY calibration_progress_target_writers ON calibration_progress
  USING (pg_catalog.has_table_privilege(pg_catalog.to_regclass(target), 'INSERT'))
  WITH CHECK (pg_catalog.has_table_privilege(pg_catalog.to_regclass(target), 'INSERT'));
GRANT SELECT, INSERT, UPDATE, DELETE ON calibration_progress TO PUBLIC;

-- Column-level description of a calibration table: the SQL expressions giving the
-- calibration (nJy per count) and its error for raw row alias `r_alias` and calibration
-- row alias `c_alias`.
CREATE FUNCTION _calibration_exprs(calibs regclass, r_alias text, c_alias text,
                                   OUT calib_expr text, OUT calib_err_expr text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    cols text[];
BEGIN
    SELECT pg_catalog.array_agg(a.attname::text) INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = calibs AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT (cols @> ARRAY['visit', 'detector']) THEN
        RAISE EXCEPTION 'skycat: calibration table % must have columns visit and detector', calibs
            USING ERRCODE = 'undefined_column';
    END IF;
    IF 'photo_calib' = ANY (cols) THEN
        calib_expr := pg_catalog.format('@extschema@.calibration(%s.photo_calib, %s.x, %s.y)', c_alias, r_alias, r_alias);
        calib_err_expr := pg_catalog.format('@extschema@.calibration_err(%s.photo_calib)', c_alias);
    ELSIF 'calib_mean' = ANY (cols) THEN
        calib_expr := pg_catalog.format('%s.calib_mean', c_alias);
        calib_err_expr := CASE WHEN 'calib_err' = ANY (cols)
                               THEN pg_catalog.format('COALESCE(%s.calib_err, 0)', c_alias) ELSE '0::float8' END;
    ELSE
        RAISE EXCEPTION 'skycat: calibration table % needs a photo_calib column (skycat.photo_calib) or calib_mean [, calib_err] columns', calibs
            USING ERRCODE = 'undefined_column';
    END IF;
END
$fn$;

-- The tables holding a relation's rows: its leaf partitions, or the table itself.
CREATE FUNCTION _leaf_tables(rel regclass) RETURNS TABLE (relid regclass)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT t.relid FROM pg_catalog.pg_partition_tree(rel) t
      JOIN pg_catalog.pg_class k ON k.oid = t.relid
     WHERE t.isleaf AND k.relkind IN ('r', 'm')
    UNION ALL
    SELECT rel WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(rel))
    ORDER BY 1
$fn$;

CREATE PROCEDURE calibrate_sources(
    raw            regclass,
    calibs         regclass,
    target         text,
    batch_rows     bigint  DEFAULT 1000000,
    commit_batches boolean DEFAULT true
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    raw_cols    text[];
    cal_cols    text[];
    fluxes      text[];
    f           text;
    calib_expr  text;
    calib_err_expr text;
    inner_sel   text;
    outer_sel   text := '';
    out_names   text := '';
    col         text;
    has_cov     boolean;
    target_rel  regclass;
    target_q    text;
    leaf        regclass;
    n_blocks    bigint;
    per_block   float8;
    step        bigint;
    b0          bigint;
    n           bigint;
    total_rows  bigint := 0;
    missing     bigint;
    examples    text;
    t_start     timestamptz := pg_catalog.clock_timestamp();
    insert_sql  text;
    caller_path text := pg_catalog.current_setting('search_path');
    -- Resolved before the search_path is fixed: the target as the caller names it.
    caller_target  regclass := pg_catalog.to_regclass(target);
    caller_schema  name := pg_catalog.current_schema();
BEGIN
    -- The procedure's own "SET search_path", for this transaction (see the top of the file).
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, @extschema@, pg_temp', true);
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'skycat.calibrate_sources: batch_rows must be >= 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO raw_cols
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = raw AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT (raw_cols @> ARRAY['visit', 'detector', 'x', 'y']) THEN
        RAISE EXCEPTION 'skycat.calibrate_sources: raw table % must have columns visit, detector, x, y', raw
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT pg_catalog.array_agg(pg_catalog.left(c, -10) ORDER BY c) INTO fluxes
      FROM pg_catalog.unnest(raw_cols) c
     WHERE c LIKE '%\_inst\_flux' AND (c || '_err') = ANY (raw_cols);
    IF fluxes IS NULL THEN
        RAISE EXCEPTION 'skycat.calibrate_sources: raw table % has no <name>_inst_flux / <name>_inst_flux_err column pair', raw
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT e.calib_expr, e.calib_err_expr INTO calib_expr, calib_err_expr
      FROM @extschema@._calibration_exprs(calibs, 'r', 'c') e;
    SELECT pg_catalog.array_agg(a.attname::text) INTO cal_cols
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = calibs AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT ('wcs' = ANY (cal_cols)) THEN
        RAISE EXCEPTION 'skycat.calibrate_sources: calibration table % must have a wcs column (skycat.wcs)', calibs
            USING ERRCODE = 'undefined_column';
    END IF;
    has_cov := raw_cols @> ARRAY['x_err', 'y_err'];

    -- The inner query computes each composite once per row (OFFSET 0 keeps it from being
    -- flattened into the outer one, which would call pixel_to_sky once per output column).
    inner_sel := pg_catalog.format(
        'SELECT r.*, @extschema@.pixel_to_sky(c.wcs, r.x, r.y) AS _skycat_sky, %s AS _skycat_calib, %s AS _skycat_calib_err%s
           FROM %s r JOIN %s c ON c.visit = r.visit AND c.detector = r.detector',
        calib_expr, calib_err_expr,
        CASE WHEN has_cov THEN
            ', @extschema@.pixel_to_sky_cov(c.wcs, r.x, r.y, r.x_err, r.y_err, '
            || CASE WHEN 'xy_cov' = ANY (raw_cols) THEN 'COALESCE(r.xy_cov, 0)' ELSE '0' END || ') AS _skycat_cov'
        ELSE '' END,
        '%s', calibs);
    FOREACH col IN ARRAY raw_cols LOOP
        CONTINUE WHEN col LIKE '%\_inst\_flux' OR col LIKE '%\_inst\_flux\_err';
        outer_sel := outer_sel || pg_catalog.format('q.%I, ', col);
        out_names := out_names || pg_catalog.format('%I, ', col);
    END LOOP;
    outer_sel := outer_sel || '(q._skycat_sky).ra, (q._skycat_sky).dec, ';
    out_names := out_names || 'ra, dec, ';
    IF has_cov THEN
        outer_sel := outer_sel || '(q._skycat_cov).ra_err_arcsec, (q._skycat_cov).dec_err_arcsec, (q._skycat_cov).ra_dec_cov, ';
        out_names := out_names || 'ra_err, dec_err, ra_dec_cov, ';
    END IF;
    outer_sel := outer_sel || @extschema@._calibrated_fluxes(fluxes, 'q', 'q._skycat_calib', 'q._skycat_calib_err') || ', ';
    FOREACH f IN ARRAY fluxes LOOP
        out_names := out_names || pg_catalog.format('%I, %I, ', f || '_flux', f || '_flux_err');
    END LOOP;
    outer_sel := outer_sel || 'q._skycat_calib, q._skycat_calib_err';
    out_names := out_names || 'calib_applied, calib_err_applied';

    -- The target: created from the query's shape if it does not exist (one session at a time,
    -- so two concurrent calls do not both try to create it).
    -- An existing table is the one the caller's search_path finds; a new unqualified name goes
    -- where the caller's own CREATE TABLE would put it (its current schema).
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.') INTO target_q FROM pg_catalog.unnest(pg_catalog.parse_ident(target)) p;
    IF caller_target IS NOT NULL THEN
        target_q := caller_target::text;  -- schema-qualified under the fixed search_path
    ELSIF pg_catalog.cardinality(pg_catalog.parse_ident(target)) = 1 THEN
        IF caller_schema IS NULL THEN
            RAISE EXCEPTION 'skycat.calibrate_sources: no schema has been selected to create % in', target
                USING ERRCODE = 'invalid_schema_name', HINT = 'Qualify the target (schema.table) or set search_path.';
        END IF;
        target_q := pg_catalog.quote_ident(caller_schema) || '.' || target_q;
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('skycat.calibrate_sources'), pg_catalog.hashtext(target_q));
    target_rel := pg_catalog.to_regclass(target_q);
    IF target_rel IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %s (%s) AS SELECT %s FROM (%s OFFSET 0) q WITH NO DATA',
                                  target_q, out_names, outer_sel, pg_catalog.format(inner_sel, raw));
        RAISE NOTICE 'skycat.calibrate_sources: created table %', target_q;
        target_rel := target_q::regclass;
    END IF;

    -- Rows that cannot be calibrated are reported, not silently dropped unannounced.
    EXECUTE pg_catalog.format(
        'SELECT count(*), pg_catalog.string_agg(DISTINCT pg_catalog.format(''(%%s, %%s)'', r.visit, r.detector), '', '')
           FROM %s r WHERE NOT EXISTS (SELECT 1 FROM %s c WHERE c.visit = r.visit AND c.detector = r.detector)',
        raw, calibs) INTO missing, examples;
    IF missing > 0 THEN
        RAISE WARNING 'skycat.calibrate_sources: % raw rows have no calibration and are not written; (visit, detector) without one: %',
            missing, pg_catalog.left(examples, 300);
    END IF;

    insert_sql := pg_catalog.format('INSERT INTO %s (%s) SELECT %s FROM (%s WHERE r.ctid >= $1 AND r.ctid < $2 OFFSET 0) q',
                                    target_rel, out_names, outer_sel, inner_sel);
    FOR leaf IN
        SELECT l.relid FROM @extschema@._leaf_tables(raw) l
    LOOP
        n_blocks := pg_catalog.pg_relation_size(leaf) / pg_catalog.current_setting('block_size')::bigint;
        INSERT INTO @extschema@.calibration_progress AS p (target, source, next_block, total_blocks)
        VALUES (target_rel::text, leaf::text, 0, n_blocks)
        ON CONFLICT ON CONSTRAINT calibration_progress_pkey DO NOTHING;
        SELECT p.next_block INTO b0 FROM @extschema@.calibration_progress p
         WHERE p.target = target_rel::text AND p.source = leaf::text;
        IF b0 >= n_blocks THEN
            CONTINUE;
        ELSIF b0 > 0 THEN
            RAISE NOTICE 'skycat.calibrate_sources: % resumes at block % of %', leaf, b0, n_blocks;
        END IF;
        SELECT CASE WHEN k.relpages > 0 AND k.reltuples > 0 THEN k.reltuples / k.relpages ELSE 100 END
          INTO per_block FROM pg_catalog.pg_class k WHERE k.oid = leaf;
        step := GREATEST(1, (batch_rows / per_block)::bigint);
        LOOP
            -- Each batch locks its progress row and starts where the last committed batch
            -- ended: two sessions calibrating the same target share the batches instead of
            -- writing each one twice.
            SELECT p.next_block INTO b0 FROM @extschema@.calibration_progress p
             WHERE p.target = target_rel::text AND p.source = leaf::text FOR UPDATE;
            EXIT WHEN b0 IS NULL OR b0 >= n_blocks;
            EXECUTE pg_catalog.format(insert_sql, leaf)
              USING pg_catalog.format('(%s,0)', b0)::tid,
                    pg_catalog.format('(%s,0)', LEAST(b0 + step, 4294967295))::tid;
            GET DIAGNOSTICS n = ROW_COUNT;
            b0 := LEAST(b0 + step, n_blocks);
            total_rows := total_rows + n;
            UPDATE @extschema@.calibration_progress p
               SET next_block = b0, rows_written = p.rows_written + n, updated = pg_catalog.clock_timestamp()
             WHERE p.target = target_rel::text AND p.source = leaf::text;
            IF commit_batches THEN
                COMMIT;
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, @extschema@, pg_temp', true);
            END IF;
            RAISE NOTICE 'skycat.calibrate_sources: % rows written (%/s), % block % of %', total_rows,
                pg_catalog.round(total_rows / GREATEST(EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t_start), 1e-3)),
                leaf, b0, n_blocks;
        END LOOP;
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$fn$;
COMMENT ON PROCEDURE calibrate_sources(regclass, regclass, text, bigint, boolean) IS
  'Calibrates a raw table (visit, detector, x, y, <f>_inst_flux, <f>_inst_flux_err ...) into target using a (visit, detector) -> (photo_calib or calib_mean/calib_err, wcs) table. One transaction per batch; resumable.';

CREATE PROCEDURE recalibrate_sources(
    target         regclass,
    new_calibs     regclass,
    commit_batches boolean DEFAULT true
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    cols        text[];
    fluxes      text[];
    calib_expr  text;
    calib_err_expr text;
    sets        text;
    leaf        regclass;
    n           bigint;
    total       bigint := 0;
    caller_path text := pg_catalog.current_setting('search_path');
BEGIN
    -- The procedure's own "SET search_path", for this transaction (see the top of the file).
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, @extschema@, pg_temp', true);
    SELECT pg_catalog.array_agg(a.attname::text) INTO cols
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT (cols @> ARRAY['visit', 'detector', 'x', 'y', 'calib_applied', 'calib_err_applied']) THEN
        RAISE EXCEPTION 'skycat.recalibrate_sources: % must have columns visit, detector, x, y, calib_applied, calib_err_applied (as skycat.calibrate_sources writes them)', target
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT pg_catalog.array_agg(pg_catalog.left(c, -5) ORDER BY c) INTO fluxes
      FROM pg_catalog.unnest(cols) c WHERE c LIKE '%\_flux' AND (c || '_err') = ANY (cols);
    SELECT e.calib_expr, e.calib_err_expr INTO calib_expr, calib_err_expr
      FROM @extschema@._calibration_exprs(new_calibs, 't', 'c') e;
    sets := @extschema@._recalibration_sets(COALESCE(fluxes, '{}'), 't', calib_expr, calib_err_expr);
    FOR leaf IN
        SELECT l.relid FROM @extschema@._leaf_tables(target) l
    LOOP
        -- Idempotent: a row whose stored calibration already is the new one is not touched,
        -- so applying the same table twice changes nothing the second time.
        EXECUTE pg_catalog.format(
            'UPDATE %s t SET %s FROM %s c WHERE c.visit = t.visit AND c.detector = t.detector AND %s',
            leaf, sets, new_calibs, @extschema@._calibration_changed('t', calib_expr, calib_err_expr));
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        IF commit_batches THEN
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, @extschema@, pg_temp', true);
        END IF;
        RAISE NOTICE 'skycat.recalibrate_sources: % rows recalibrated in %', n, leaf;
    END LOOP;
    RAISE NOTICE 'skycat.recalibrate_sources: % rows recalibrated in total', total;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$fn$;
COMMENT ON PROCEDURE recalibrate_sources(regclass, regclass, boolean) IS
  'Applies a new (visit, detector) -> calibration table to a table written by calibrate_sources, in place and idempotently.';
