-- The nightly Association Pipeline as SQL (SQL-API section 6, docs/nightly-ap.md).
--
-- One AP lives in one schema, created by skycat.ap_create(schema). Its tables:
--   disk:    object, dia_source (stripe-partitioned by dec), object_position (every object's
--            id and position, narrow and never updated: what a visit matches against),
--            moving_object, mops_pred, dia_source_match, visit_log, source_classification,
--            policy, the exposure tables, dia_source_id_tonight, dia_source_tonight;
--   memory:  dia_source_new (the detection pipeline's output) and ws_visit (visits prepared
--            and not yet post-processed, in prepare order), both UNLOGGED.
--
-- A visit works in place, on the disk tables, and reads nothing of the history:
--   prepare    records the field (and checks the policy);
--   associate  matches the visit's DIASources against object_position within the field,
--              writes every candidate pair, the routed DIASources into dia_source, the new
--              objects and the moving objects' detections: everything the alert needs;
--   post       folds each matched DIASource into its object's counters and band summary
--              (skycat.flux_summary_add: exact running statistics, so no light curve is read
--              again), appends tonight's ids, ingests the exposure files, and clears the
--              visit's detections from dia_source_new.
-- Object positions never change, so associate n+1 can match while post n updates the
-- statistics of the same objects: associates run one at a time in prepare order (lock 1),
-- posts and daytime one at a time (lock 2), and an object's summary is only ever written by
-- posts, in visit order. Every procedure is one transaction: an error or a killed backend
-- leaves nothing half done.
--
-- The procedures run with jit off (their SET clauses): their statements take milliseconds,
-- and JIT compilation of them would cost more (~0.25 s per statement) than they do.
--
-- Every function and procedure runs with a fixed search_path (pg_catalog, skycat, pg_temp):
-- nothing a caller's schemas hold can stand in for a function or operator used here. Values
-- reach dynamic SQL through USING or as exactly printed numbers (extra_float_digits = 3);
-- names only through %I.

-- The two advisory locks of one AP schema.
CREATE FUNCTION ap_lock_key(schema name, which int) RETURNS bigint
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql
  SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT (hashtext('skycat.ap.' || schema)::bigint << 8) | which $$;

-- A policy value of an AP schema (the whole policy checked, see skycat._policy).
CREATE FUNCTION ap_policy(schema name, key text) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT skycat._policy(schema, 'ap') ->> key $$;

-- The per-band summary columns of object, one row each, in table order: for u g r i z y, the
-- SQL-API's mean, mean_err, sigma, ndata, min, max of psf_flux; then, after all of them, the
-- plain sum of each band's used fluxes (the state skycat.flux_summary_add needs to fold a new
-- detection into sigma without the history). `field` names the skycat.flux_summary field.
CREATE FUNCTION _ap_band_column_defs() RETURNS TABLE (band text, name text, decl text, ord int, field text)
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT b, format('%s_psf_flux_%s', b, f), t, (CASE f WHEN 'sum' THEN 1000 + bo ELSE bo * 10 + fo END)::int, f
    FROM unnest(ARRAY['u', 'g', 'r', 'i', 'z', 'y']) WITH ORDINALITY AS bb(b, bo),
         unnest(ARRAY['mean', 'mean_err', 'sigma', 'ndata', 'min', 'max', 'sum'],
                ARRAY['float8', 'float8', 'float8', 'int', 'float8', 'float8', 'float8']) WITH ORDINALITY AS ff(f, t, fo)
$$;

-- The band summary columns of `bands` as SQL text. kind 'names': the column list; 'declare':
-- names and types; 'assign': `col = src.col, ...`; 'aggregate': the aggregate expressions that
-- compute them from DIASources (psf_flux, psf_flux_err, band), via skycat.flux_mean (callers
-- feed them rows sorted by dia_source_id); 'add': `(col, ...) = (SELECT ... FROM
-- skycat.flux_summary_add(<the row's columns>, src.psf_flux, src.psf_flux_err))`, one band only:
-- the summary with one more detection folded in.
CREATE FUNCTION ap_band_columns(kind text, src text DEFAULT 's', bands text[] DEFAULT ARRAY['u', 'g', 'r', 'i', 'z', 'y']) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT CASE kind
    WHEN 'add' THEN (
      SELECT format('(%s) = (SELECT %s FROM skycat.flux_summary_add(%s, %I.psf_flux, %I.psf_flux_err) m)',
                    string_agg(quote_ident(d.name), ', ' ORDER BY d.ord),
                    string_agg('m.' || quote_ident(d.field), ', ' ORDER BY d.ord),
                    string_agg(quote_ident(d.name), ', ' ORDER BY d.ord), src, src)
        FROM skycat._ap_band_column_defs() d WHERE d.band = bands[1] AND cardinality(bands) = 1)
    ELSE (
      SELECT string_agg(
        CASE kind
          WHEN 'names' THEN quote_ident(d.name)
          WHEN 'declare' THEN format('%I %s', d.name, d.decl)
          WHEN 'assign' THEN format('%1$I = %2$I.%1$I', d.name, src)
          WHEN 'aggregate' THEN format(CASE d.field
            WHEN 'mean' THEN '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).mean'
            WHEN 'mean_err' THEN '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).mean_err'
            WHEN 'sigma' THEN 'stddev_samp(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err))'
            WHEN 'ndata' THEN '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).n::int'
            WHEN 'min' THEN 'min(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err))'
            WHEN 'max' THEN 'max(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err))'
            WHEN 'sum' THEN 'sum(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err))'
            END || ' AS %2$I', d.band, d.name)
        END, ', ' ORDER BY d.ord)
        FROM skycat._ap_band_column_defs() d WHERE d.band = ANY (bands))
  END
$$;

-- The columns of the AP's row tables, in table order, defined once: ap_create declares the
-- tables from them and the procedures move rows between them by name, never by position.
-- dia_source_new is the detection pipeline's output; dia_source adds what association decides.
CREATE FUNCTION _ap_columns(tbl text) RETURNS TABLE (name text, decl text)
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  WITH dia_source_new(name, decl, ord) AS (VALUES
         ('dia_source_id', 'bigint NOT NULL', 1), ('visit', 'bigint NOT NULL', 2), ('detector', 'int', 3),
         ('ra', 'float8 NOT NULL', 4), ('dec', 'float8 NOT NULL', 5), ('ra_err_arcsec', 'float8', 6),
         ('dec_err_arcsec', 'float8', 7), ('mjd', 'float8 NOT NULL', 8), ('band', 'text NOT NULL', 9),
         ('psf_flux', 'float8', 10), ('psf_flux_err', 'float8', 11), ('snr', 'float8', 12),
         ('class_id', 'int NOT NULL', 13)),
       associated(name, decl, ord) AS (VALUES
         ('object_id', 'bigint', 101), ('moving_object_id', 'bigint', 102), ('route', 'text NOT NULL', 103)),
       object(name, decl, ord) AS (
         SELECT * FROM (VALUES
           ('object_id', 'bigint NOT NULL', 1), ('ra', 'float8 NOT NULL', 2), ('dec', 'float8 NOT NULL', 3),
           ('n_dia_sources', 'int NOT NULL DEFAULT 0', 4), ('first_mjd', 'float8', 5), ('last_mjd', 'float8', 6),
           ('reclassified_moving', 'boolean NOT NULL DEFAULT false', 7)) v
         UNION ALL
         SELECT c.name, c.decl, 100 + c.ord FROM skycat._ap_band_column_defs() c)
  SELECT name, decl FROM (
    SELECT * FROM dia_source_new WHERE tbl IN ('dia_source_new', 'dia_source')
    UNION ALL SELECT * FROM associated WHERE tbl = 'dia_source'
    UNION ALL SELECT * FROM object WHERE tbl = 'object') c
   ORDER BY ord
$$;

-- A column list of an AP table for SQL text: `kind` 'names' (optionally prefixed by `alias.`)
-- or 'declare' (name and type, for CREATE TABLE).
CREATE FUNCTION _ap_column_list(tbl text, kind text, alias text DEFAULT NULL) RETURNS text
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT string_agg(CASE kind WHEN 'declare' THEN format('%I %s', c.name, c.decl)
                              ELSE coalesce(quote_ident(alias) || '.', '') || quote_ident(c.name) END, ', ')
    FROM skycat._ap_columns(tbl) c
$$;
-- The primary key of object: (object_id, dec), as PostgreSQL requires the partition key in it.
-- Object ids are unique across all stripes: object_position's primary key is object_id.
CREATE FUNCTION _ap_object_key() RETURNS text
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT 'object_id, "dec"' $$;

-- Keeps object_position equal to object's ids and positions: statement triggers for INSERT,
-- DELETE and TRUNCATE (the transition table `changed` holds the rows), a row trigger for an
-- UPDATE that sets object_id, ra or dec (the AP's own updates set neither, so they never pay
-- for it).
CREATE FUNCTION _ap_object_position_sync() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  IF TG_LEVEL = 'ROW' THEN
    EXECUTE format('UPDATE %I.object_position SET object_id = $1, ra = $2, "dec" = $3 WHERE object_id = $4', TG_TABLE_SCHEMA)
      USING NEW.object_id, NEW.ra, NEW."dec", OLD.object_id;
    RETURN NULL;
  END IF;
  CASE TG_OP
    WHEN 'INSERT' THEN
      EXECUTE format('INSERT INTO %I.object_position (object_id, ra, "dec") SELECT object_id, ra, "dec" FROM changed', TG_TABLE_SCHEMA);
    WHEN 'DELETE' THEN
      EXECUTE format('DELETE FROM %I.object_position p USING changed c WHERE p.object_id = c.object_id', TG_TABLE_SCHEMA);
    WHEN 'TRUNCATE' THEN
      EXECUTE format('TRUNCATE %I.object_position', TG_TABLE_SCHEMA);
  END CASE;
  RETURN NULL;
END $$;

-- object_position rebuilt from object, in object's order: stripe by stripe, and within a
-- stripe as loaded (load objects in ra order, and the BRIN index on (dec, ra) prunes a field
-- to the blocks holding it); its indexes built once, at the end.
CREATE FUNCTION _ap_rebuild_positions(schema name) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  EXECUTE format($q$
    TRUNCATE %1$I.object_position;
    ALTER TABLE %1$I.object_position DROP CONSTRAINT IF EXISTS object_position_pkey;
    DROP INDEX IF EXISTS %1$I.object_position_field_idx;
    INSERT INTO %1$I.object_position (object_id, ra, "dec")
      SELECT object_id, ra, "dec" FROM %1$I.object;
    ALTER TABLE %1$I.object_position ADD CONSTRAINT object_position_pkey PRIMARY KEY (object_id);
    %2$s
    ANALYZE %1$I.object_position;$q$, schema, skycat._ap_position_brin(schema));
END $$;

-- The BRIN index of object_position: a field is a dec band and an ra range, and the rows are
-- stored in stripe then ra order, so each 8-page block range spans a small box of both.
CREATE FUNCTION _ap_position_brin(schema name) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format('CREATE INDEX object_position_field_idx ON %I.object_position USING brin ("dec", ra)
                   WITH (pages_per_range = 8, autosummarize = on);', schema)
$$;

-- The fillfactor of the object stripes: post rewrites each matched object's row every visit,
-- and a row updated on its own page (HOT) costs no index entry and dirties one page, not three.
CREATE FUNCTION _ap_object_fillfactor(schema name) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE part regclass;
BEGIN
  FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = format('%I.object', schema)::regclass LOOP
    EXECUTE format('ALTER TABLE %s SET (fillfactor = 80)', part);
  END LOOP;
END $$;

-- The triggers that keep object_position equal to object (see _ap_object_position_sync).
CREATE FUNCTION _ap_position_triggers(schema name) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format($f$
    CREATE TRIGGER object_position_insert AFTER INSERT ON %1$I.object REFERENCING NEW TABLE AS changed
      FOR EACH STATEMENT EXECUTE FUNCTION skycat._ap_object_position_sync();
    CREATE TRIGGER object_position_delete AFTER DELETE ON %1$I.object REFERENCING OLD TABLE AS changed
      FOR EACH STATEMENT EXECUTE FUNCTION skycat._ap_object_position_sync();
    CREATE TRIGGER object_position_truncate AFTER TRUNCATE ON %1$I.object
      FOR EACH STATEMENT EXECUTE FUNCTION skycat._ap_object_position_sync();
    CREATE TRIGGER object_position_update AFTER UPDATE OF object_id, ra, "dec" ON %1$I.object
      FOR EACH ROW EXECUTE FUNCTION skycat._ap_object_position_sync();$f$, schema)
$$;

-- For bulk loads of object: `ap_object_key(schema, false)` drops the primary key and pauses
-- the upkeep of object_position (a bulk load then builds both once at the end, instead of
-- maintaining them row by row); `true` creates the key again and rebuilds object_position.
-- Nothing else is needed to load a catalog into an AP schema.
CREATE FUNCTION ap_object_key(schema name, present boolean) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  pk name;
  paused boolean;
BEGIN
  SELECT c.conname INTO pk FROM pg_constraint c
   WHERE c.conrelid = to_regclass(format('%I.object', schema)) AND c.contype = 'p';
  SELECT t.tgenabled = 'D' INTO paused FROM pg_trigger t
   WHERE t.tgrelid = to_regclass(format('%I.object', schema)) AND t.tgname = 'object_position_insert';
  IF paused IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_object_key: % is not an AP schema of this skycat version', schema
      USING ERRCODE = '22023', HINT = 'Create it with skycat.ap_create.';
  END IF;
  IF present THEN
    IF pk IS NULL THEN
      EXECUTE format('ALTER TABLE %I.object ADD PRIMARY KEY (%s)', schema, skycat._ap_object_key());
    END IF;
    IF paused THEN
      PERFORM skycat._ap_rebuild_positions(schema);
      EXECUTE format('ALTER TABLE %I.object ENABLE TRIGGER object_position_insert', schema);
    END IF;
  ELSE
    IF pk IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %I.object DROP CONSTRAINT %I', schema, pk);
    END IF;
    EXECUTE format('ALTER TABLE %I.object DISABLE TRIGGER object_position_insert', schema);
  END IF;
END $$;

CREATE FUNCTION ap_create(schema name, stripe_height_deg float8 DEFAULT 1.0) RETURNS text
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp
  -- The height is stored in the policy as text: print it exactly whatever the session says.
  SET extra_float_digits = 3 AS $$
BEGIN
  IF stripe_height_deg IS NULL OR NOT stripe_height_deg > 0 THEN
    RAISE EXCEPTION 'skycat.ap_create: stripe_height_deg must be > 0' USING ERRCODE = '22023';
  END IF;
  PERFORM count(*) FROM skycat.stripe_bounds(stripe_height_deg);  -- 22023 naming the allowed range
  EXECUTE format('CREATE SCHEMA %I', schema);
  EXECUTE format($f$
    CREATE TABLE %1$I.policy (key text PRIMARY KEY, value text NOT NULL);
    INSERT INTO %1$I.policy VALUES
      ('match_radius_arcsec', '1.0'), ('mops_radius_arcsec', '1.0'), ('fov_radius_deg', '1.75'),
      ('stripe_height_deg', %2$L), ('assoc_mode', 'greedy'), ('retention_days', '365');
    CREATE TABLE %1$I.source_classification (
      class_id int PRIMARY KEY, name text NOT NULL,
      route text NOT NULL CHECK (route IN ('object', 'alert', 'mops', 'junk')));
    INSERT INTO %1$I.source_classification VALUES
      (1, 'variable', 'object'), (2, 'transient', 'object'), (3, 'moving', 'mops'), (4, 'artefact', 'junk');

    CREATE TABLE %1$I.object (%3$s, PRIMARY KEY (%4$s)) PARTITION BY RANGE ("dec");
    -- Every object's id and position: what a visit matches against (narrow rows, never
    -- updated, so its BRIN index stays tight however often the objects' summaries change).
    CREATE TABLE %1$I.object_position (object_id bigint NOT NULL, ra float8 NOT NULL, "dec" float8 NOT NULL,
      CONSTRAINT object_position_pkey PRIMARY KEY (object_id));
    %7$s
    %8$s
    CREATE TABLE %1$I.dia_source (%5$s) PARTITION BY RANGE ("dec");
    CREATE UNLOGGED TABLE %1$I.dia_source_new (%6$s, PRIMARY KEY (dia_source_id));
    CREATE INDEX ON %1$I.dia_source_new (visit);
    -- The table holds the detections of the visits in flight: one visit is a large share of
    -- it, never the sliver a new value of a column with many values would be (the planner
    -- then hashes the small inputs joined to a visit's detections, not the detections).
    ALTER TABLE %1$I.dia_source_new ALTER COLUMN visit SET (n_distinct = 1);
    CREATE TABLE %1$I.dia_source_match (
      visit bigint NOT NULL, dia_source_id bigint NOT NULL, object_id bigint NOT NULL,
      sep_arcsec float8 NOT NULL, rank int NOT NULL, chosen boolean NOT NULL DEFAULT false);
    CREATE INDEX ON %1$I.dia_source_match (visit);
    CREATE TABLE %1$I.moving_object (
      moving_object_id bigint PRIMARY KEY, ra float8, "dec" float8, n_detections int NOT NULL DEFAULT 0,
      last_mjd float8);
    CREATE TABLE %1$I.mops_pred (
      moving_object_id bigint NOT NULL, visit bigint NOT NULL, ra float8 NOT NULL, "dec" float8 NOT NULL,
      ra_err_arcsec float8, dec_err_arcsec float8, mjd float8, PRIMARY KEY (visit, moving_object_id));
    CREATE TABLE %1$I.dia_source_id_tonight (dia_source_id bigint NOT NULL);
    CREATE TABLE %1$I.visit_log (
      visit bigint NOT NULL, phase text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL,
      n_sources int, n_matched int, n_new_objects int, n_moving int, n_objects int, n_loaded int,
      PRIMARY KEY (visit, phase));
    CREATE TABLE %1$I.night_log (night date PRIMARY KEY, prepared_at timestamptz, posted_at timestamptz);
    CREATE UNLOGGED TABLE %1$I.ws_visit (
      seq bigserial, visit bigint PRIMARY KEY, ra float8 NOT NULL, "dec" float8 NOT NULL, radius_deg float8 NOT NULL,
      associated boolean NOT NULL DEFAULT false);
  $f$, schema, stripe_height_deg::text, skycat._ap_column_list('object', 'declare'), skycat._ap_object_key(),
     skycat._ap_column_list('dia_source', 'declare'), skycat._ap_column_list('dia_source_new', 'declare'),
     skycat._ap_position_brin(schema), skycat._ap_position_triggers(schema));
  PERFORM skycat._ap_create_exposure_tables(schema);
  PERFORM skycat.create_stripe_partitions(format('%I.object', schema)::regclass, stripe_height_deg);
  -- Room on every page for the new version of a row: post's updates of the summaries are then
  -- HOT (the new version on the same page, no index entry to add).
  PERFORM skycat._ap_object_fillfactor(schema);
  PERFORM skycat.create_stripe_partitions(format('%I.dia_source', schema)::regclass, stripe_height_deg);
  -- Within a stripe, a field is a narrow ra range. BRIN indexes on ra find it without the
  -- per-row maintenance a B-tree costs on the hot path: objects are loaded in ra order, and a
  -- visit's DIASources are appended together, so block ranges have tight ra bounds.
  -- (autosummarize: autovacuum summarises block ranges as they fill; a range not yet
  -- summarised is always read, so a bulk load should be followed by VACUUM.)
  EXECUTE format('CREATE INDEX ON %1$I.object USING brin (ra) WITH (pages_per_range = 16, autosummarize = on);
                  CREATE INDEX ON %1$I.dia_source USING brin (ra) WITH (pages_per_range = 16, autosummarize = on)', schema);
  RETURN format('AP schema %s created (object and dia_source in %s-degree dec stripes)', schema, stripe_height_deg);
END $$;

-- Stops `caller` with 55000 while visits of `schema` are in flight (prepared, not posted).
CREATE FUNCTION _ap_require_idle(schema name, caller text) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE busy boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.ws_visit)', schema) INTO busy;
  IF busy THEN
    RAISE EXCEPTION 'skycat.%: visits of % are still in flight', caller, schema
      USING ERRCODE = '55000', HINT = 'Post-process every prepared visit first.';
  END IF;
END $$;

-- Recomputes every band summary of the objects listed in table `ids` (column object_id) from
-- the DIASources they have, in dia_source_id order (objects without any get empty summaries).
CREATE FUNCTION _ap_recompute_summaries(schema name, ids regclass) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  EXECUTE format($q$
    UPDATE %1$I.object o SET %3$s
      FROM (SELECT t.object_id, %4$s
              FROM %2$s t
              LEFT JOIN (SELECT * FROM %1$I.dia_source d
                          WHERE d.object_id IN (SELECT object_id FROM %2$s)
                          ORDER BY d.object_id, d.dia_source_id) h ON h.object_id = t.object_id
             GROUP BY t.object_id) s
     WHERE o.object_id = s.object_id$q$, schema, ids, skycat.ap_band_columns('assign', 's'),
    skycat.ap_band_columns('aggregate'));
END $$;

-- Brings an AP schema made by an earlier skycat version (a working set of ws_object,
-- ws_written and ws_dia_source copied in and out per visit) to this version's layout: the
-- per-band flux sums (computed from the DIASources kept), object_position and its upkeep, the
-- stripes' fillfactor, the index of dia_source_match by visit; the working-set tables are
-- dropped. Run it between nights (no visit may be in flight). Returns what it did.
CREATE FUNCTION ap_upgrade_schema(schema name) RETURNS text
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF to_regclass(format('%I.ws_visit', schema)) IS NULL OR to_regclass(format('%I.object', schema)) IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_upgrade_schema: % is not an AP schema', schema USING ERRCODE = '22023';
  END IF;
  IF to_regclass(format('%I.object_position', schema)) IS NOT NULL THEN
    RETURN format('AP schema %s is up to date', schema);
  END IF;
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 1));
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  PERFORM skycat._ap_require_idle(schema, 'ap_upgrade_schema');
  EXECUTE format('ALTER TABLE %I.object %s', schema,
                 (SELECT string_agg(format('ADD COLUMN %I %s', d.name, d.decl), ', ' ORDER BY d.ord)
                    FROM skycat._ap_band_column_defs() d WHERE d.field = 'sum'));
  -- The summaries (sums included) of the objects with DIASources, from the DIASources kept.
  EXECUTE format('CREATE TEMP TABLE ap_seen ON COMMIT DROP AS
                    SELECT DISTINCT object_id FROM %I.dia_source WHERE object_id IS NOT NULL', schema);
  PERFORM skycat._ap_recompute_summaries(schema, 'pg_temp.ap_seen');
  EXECUTE format($f$
    CREATE TABLE %1$I.object_position (object_id bigint NOT NULL, ra float8 NOT NULL, "dec" float8 NOT NULL);
    %2$s
    CREATE INDEX ON %1$I.dia_source_match (visit);
    DROP TABLE IF EXISTS %1$I.ws_object, %1$I.ws_written, %1$I.ws_dia_source;
    ALTER TABLE %1$I.ws_visit DROP COLUMN IF EXISTS source_radius_deg;$f$, schema, skycat._ap_position_triggers(schema));
  PERFORM skycat._ap_rebuild_positions(schema);
  PERFORM skycat._ap_object_fillfactor(schema);
  EXECUTE format('SELECT count(*) FROM %I.object_position', schema) INTO n;
  RETURN format('AP schema %s upgraded: %s object positions', schema, n);
END $$;

-- Start a night: record it, empty the nightly tables.
CREATE PROCEDURE ap_prepare_night(schema name, night date) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  EXECUTE format('INSERT INTO %I.night_log (night, prepared_at) VALUES ($1, now())
                    ON CONFLICT (night) DO UPDATE SET prepared_at = now()', schema) USING night;
  EXECUTE format('TRUNCATE %I.dia_source_id_tonight', schema);
END $$;

-- The query text of the objects of a field for skycat.crossmatch: object_position rows within
-- radius_deg of (ra, dec), found through its BRIN index by the dec band and the field's ra
-- ranges. Callers run with extra_float_digits = 3, so the numbers print exactly.
CREATE FUNCTION _ap_field_query(schema name, ra float8, "dec" float8, radius_deg float8) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp SET extra_float_digits = 3 AS $$
  -- One ra range, or two across ra = 0/360 (an unused second range is [1, 0]: left out, since
  -- a BRIN index cannot tell that an empty range matches nothing).
  SELECT format('SELECT p.object_id, p.ra, p."dec", NULL::float8, NULL::float8 FROM %I.object_position p
                  WHERE p."dec" BETWEEN %s AND %s AND (p.ra BETWEEN %s AND %s%s)
                    AND skycat.dwithin(p.ra, p."dec", %s, %s, %s)',
                schema, greatest(-90, "dec" - radius_deg), least(90, "dec" + radius_deg), r.ra_lo[1], r.ra_hi[1],
                CASE WHEN r.ra_lo[2] <= r.ra_hi[2] THEN format(' OR p.ra BETWEEN %s AND %s', r.ra_lo[2], r.ra_hi[2]) ELSE '' END,
                ra, "dec", radius_deg * 3600)
    FROM skycat.ap_ra_ranges(ra, "dec", radius_deg) r
$$;

-- Prepare `visit`: check the policy and record the field (what associate will match against:
-- the objects within the field of view plus the match radius), in prepare order. Nothing is
-- copied: associate reads the field's positions from object_position, whose narrow,
-- never-updated rows stay in the buffer cache night after night.
CREATE PROCEDURE ap_prepare_visit(schema name, visit bigint, ra float8, "dec" float8) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET jit = off AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'ap');
  r_deg float8 := (p ->> 'fov_radius_deg')::float8
                  + greatest((p ->> 'match_radius_arcsec')::float8, (p ->> 'mops_radius_arcsec')::float8) / 3600;
  done boolean;
  n_new bigint;
BEGIN
  IF visit IS NULL OR ra IS NULL OR "dec" IS NULL OR NOT ("dec" BETWEEN -90 AND 90) OR ra = 'NaN' OR ra IN ('Infinity', '-Infinity') THEN
    RAISE EXCEPTION 'skycat.ap_prepare_visit: visit, ra and dec must be given, |dec| <= 90' USING ERRCODE = '22023';
  END IF;
  IF to_regclass(format('%I.object_position', schema)) IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_prepare_visit: % is not an AP schema of this skycat version', schema
      USING ERRCODE = '22023', HINT = 'Create it with skycat.ap_create, or bring an older one up to date with skycat.ap_upgrade_schema.';
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.visit_log WHERE visit = $1 AND phase = ''associate'')', schema)
    INTO done USING visit;
  IF done THEN
    RAISE EXCEPTION 'skycat.ap_prepare_visit: visit % of % is already associated', visit, schema USING ERRCODE = '55000';
  END IF;
  EXECUTE format('INSERT INTO %I.ws_visit (visit, ra, "dec", radius_deg) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', schema)
    USING visit, ra, "dec", r_deg;
  GET DIAGNOSTICS n_new = ROW_COUNT;
  IF n_new = 0 THEN
    RAISE NOTICE 'skycat.ap_prepare_visit: visit % is already prepared', visit;
    RETURN;
  END IF;
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at) VALUES ($1, ''prepare'', $2, clock_timestamp())', schema)
    USING visit, t0;
END $$;

-- Associate the DIASources of `visit` (in dia_source_new) with the objects of its field: every
-- candidate pair within the match radius into dia_source_match, a one-to-one assignment
-- (policy assoc_mode) marked chosen, the unmatched sources that may move matched to the MOPS
-- predictions, new objects for unmatched sources whose class routes to 'object', and every
-- source, routed, into dia_source. The matched objects' statistics are ap_post_visit's.
CREATE PROCEDURE ap_associate(schema name, visit bigint) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET enable_nestloop = off SET jit = off SET extra_float_digits = 3 AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'ap');
  radius float8 := (p ->> 'match_radius_arcsec')::float8;
  mops_radius float8 := (p ->> 'mops_radius_arcsec')::float8;
  assoc_mode text := p ->> 'assoc_mode';
  n_sources int; n_matched int; n_new int; n_moving int; earlier bigint; found_visit boolean; clash bigint;
  v_ra float8; v_dec float8; v_radius float8; left_q text; mops_left_q text;
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 1));
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.visit_log WHERE visit = $1 AND phase = ''associate'')', schema)
    INTO found_visit USING visit;
  IF found_visit THEN
    RAISE EXCEPTION 'skycat.ap_associate: visit % of % is already associated', visit, schema
      USING ERRCODE = '55000', HINT = 'Each visit is associated once; its DIASources are in dia_source.';
  END IF;
  EXECUTE format('SELECT ra, "dec", radius_deg FROM %I.ws_visit WHERE visit = $1', schema)
    INTO v_ra, v_dec, v_radius USING visit;
  IF v_ra IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_associate: visit % of % is not prepared', visit, schema
      USING ERRCODE = '55000', HINT = 'CALL skycat.ap_prepare_visit(schema, visit, ra, dec) first.';
  END IF;
  EXECUTE format('SELECT min(visit) FROM %1$I.ws_visit WHERE NOT associated
                    AND seq < (SELECT seq FROM %1$I.ws_visit WHERE visit = $1)', schema) INTO earlier USING visit;
  IF earlier IS NOT NULL THEN
    RAISE EXCEPTION 'skycat.ap_associate: visit % was prepared before visit % and is not associated yet', earlier, visit
      USING ERRCODE = '55000', HINT = 'Associate visits in the order they were prepared.';
  END IF;

  -- Candidates: every non-junk source against the objects of the field (crossmatch runs the
  -- two query texts; the visit id is an integer, the field's numbers print exactly). Every
  -- pair is persisted, the assignment's pairs marked chosen.
  left_q := format('SELECT n.dia_source_id, n.ra, n."dec", n.ra_err_arcsec, n.dec_err_arcsec
                      FROM %1$I.dia_source_new n JOIN %1$I.source_classification c USING (class_id)
                     WHERE n.visit = %2$s AND c.route <> ''junk''', schema, visit);
  EXECUTE format($q$
    INSERT INTO %1$I.dia_source_match (visit, dia_source_id, object_id, sep_arcsec, rank, chosen)
    SELECT $1, a.left_id, a.right_id, a.sep_arcsec, a.rank, a.chosen FROM skycat.crossmatch_marked($2, $3, $4, $5) a$q$,
    schema) USING visit, left_q, skycat._ap_field_query(schema, v_ra, v_dec, v_radius), radius, assoc_mode;

  -- Then, in one statement: the unmatched sources that may move against this visit's MOPS
  -- predictions (greedy, mops_radius_arcsec); every source of the visit, routed, into
  -- dia_source; the moving objects' detections; a new object for every unmatched source whose
  -- class routes to 'object' (LSST: the new object's id is its first DIASource's id).
  mops_left_q := format('SELECT n.dia_source_id, n.ra, n."dec", n.ra_err_arcsec, n.dec_err_arcsec
                           FROM %1$I.dia_source_new n JOIN %1$I.source_classification c USING (class_id)
                          WHERE n.visit = %2$s AND c.route IN (''mops'', ''alert'')
                            AND NOT EXISTS (SELECT 1 FROM %1$I.dia_source_match m
                                             WHERE m.visit = %2$s AND m.chosen AND m.dia_source_id = n.dia_source_id)',
                        schema, visit);
  BEGIN
    EXECUTE format($q$
      WITH mops AS (
        SELECT c.left_id, c.right_id FROM skycat.crossmatch($2,
          format('SELECT moving_object_id, ra, "dec", ra_err_arcsec, dec_err_arcsec FROM %1$I.mops_pred WHERE visit = %%s', $1),
          $3, 'greedy') c),
      src AS (
        SELECT n.*, c.route AS class_route, ch.object_id AS matched, mp.right_id AS moving
          FROM %1$I.dia_source_new n JOIN %1$I.source_classification c ON c.class_id = n.class_id
          LEFT JOIN (SELECT m.dia_source_id, m.object_id FROM %1$I.dia_source_match m WHERE m.visit = $1 AND m.chosen) ch
                 ON ch.dia_source_id = n.dia_source_id
          LEFT JOIN mops mp ON mp.left_id = n.dia_source_id
         WHERE n.visit = $1),
      ins AS (
        INSERT INTO %1$I.dia_source (%2$s, object_id, moving_object_id, route)
        SELECT %2$s,
               CASE WHEN class_route = 'junk' THEN NULL WHEN matched IS NOT NULL THEN matched
                    WHEN moving IS NULL AND class_route = 'object' THEN dia_source_id END,
               CASE WHEN class_route <> 'junk' AND matched IS NULL THEN moving END,
               CASE WHEN class_route = 'junk' THEN 'junk' WHEN matched IS NOT NULL THEN 'object'
                    WHEN moving IS NOT NULL THEN 'mops' ELSE class_route END
          FROM src
        RETURNING object_id),
      mo AS (
        UPDATE %1$I.moving_object mo SET n_detections = mo.n_detections + 1, last_mjd = s.mjd, ra = s.ra, "dec" = s."dec"
          FROM src s WHERE s.moving IS NOT NULL AND s.matched IS NULL AND s.class_route <> 'junk'
           AND mo.moving_object_id = s.moving
        RETURNING 1),
      new AS (
        INSERT INTO %1$I.object (object_id, ra, "dec", n_dia_sources, first_mjd, last_mjd, %3$s)
        SELECT dia_source_id, ra, "dec", 1, mjd, mjd, %4$s FROM src
         WHERE class_route = 'object' AND matched IS NULL AND moving IS NULL
         GROUP BY dia_source_id, ra, "dec", mjd
        RETURNING 1)
      SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM src WHERE matched IS NOT NULL),
             (SELECT count(*) FROM new), (SELECT count(*) FROM mo)$q$,
      schema, skycat._ap_column_list('dia_source_new', 'names'), skycat.ap_band_columns('names'),
      skycat.ap_band_columns('aggregate'))
      INTO n_sources, n_matched, n_new, n_moving USING visit, mops_left_q, mops_radius;
  EXCEPTION WHEN unique_violation THEN
    -- object_position's key: a new object would take an id an object already has.
    EXECUTE format($q$
      SELECT min(n.dia_source_id) FROM %1$I.dia_source_new n JOIN %1$I.object_position o ON o.object_id = n.dia_source_id
       WHERE n.visit = $1$q$, schema) INTO clash USING visit;
    RAISE EXCEPTION 'skycat.ap_associate: DIASource % of visit % would create object %, but %.object already has an object with that id',
      clash, visit, clash, schema
      USING ERRCODE = '23505',
            HINT = 'A new object takes the id of its first DIASource: DIASource ids must not reuse object ids (give objects loaded from elsewhere ids outside the DIASource id range).';
  END;
  EXECUTE format('UPDATE %I.ws_visit SET associated = true WHERE visit = $1', schema) USING visit;
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at, n_sources, n_matched, n_new_objects, n_moving)
                    VALUES ($1, ''associate'', $2, clock_timestamp(), $3, $4, $5, $6)', schema)
    USING visit, t0, n_sources, n_matched, n_new, n_moving;
END $$;

-- Post-process `visit`: fold each DIASource matched to an existing object into the object's
-- counters and its band's summary (skycat.flux_summary_add: the exact running statistics, no
-- history read), append the visit's ids to dia_source_id_tonight, ingest its exposure files,
-- and clear its detections from dia_source_new.
CREATE PROCEDURE ap_post_visit(schema name, visit bigint) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET jit = off AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'ap');
  -- An object is within one match radius of its DIASource, so within that much in dec.
  dec_margin float8 := (p ->> 'match_radius_arcsec')::float8 / 3600 * (1 + 1e-9);
  height float8 := (p ->> 'stripe_height_deg')::float8;
  n_stripes int := (SELECT count(*) FROM skycat.stripe_bounds(height));
  n_objects bigint := 0; n_band bigint; n_sources int; assoc boolean; b text; k int; k_lo int; k_hi int;
  bands text[];
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  EXECUTE format('SELECT associated FROM %I.ws_visit WHERE visit = $1', schema) INTO assoc USING visit;
  IF assoc IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_post_visit: visit % of % is not prepared, or already post-processed', visit, schema
      USING ERRCODE = '55000';
  ELSIF NOT assoc THEN
    RAISE EXCEPTION 'skycat.ap_post_visit: visit % of % is not associated yet', visit, schema USING ERRCODE = '55000';
  END IF;
  -- The objects matched in this visit, each with its one DIASource (the assignment is
  -- one-to-one) and the stripes it can be in: its dec is within one match radius of the
  -- DIASource's. Then one UPDATE per stripe partition and band (normally the field's 4-5
  -- stripes and the visit's one band), each a primary-key probe per object: no Append to
  -- walk per row, no read of the field's other objects.
  EXECUTE format($q$
    CREATE TEMP TABLE ap_matched ON COMMIT DROP AS
    SELECT m.object_id, n.band, n.mjd, n.psf_flux, n.psf_flux_err,
           skycat.stripe(greatest(-90, n."dec" - $2), $3) AS stripe_lo, skycat.stripe(least(90, n."dec" + $2), $3) AS stripe_hi
      FROM %1$I.dia_source_match m JOIN %1$I.dia_source_new n ON n.dia_source_id = m.dia_source_id
     WHERE m.visit = $1 AND m.chosen AND n.visit = $1$q$, schema) USING visit, dec_margin, height;
  -- (No ANALYZE: with hash and merge joins off, each UPDATE can only probe the primary key.)
  PERFORM set_config('enable_hashjoin', 'off', true);
  PERFORM set_config('enable_mergejoin', 'off', true);
  EXECUTE 'SELECT array_agg(DISTINCT band ORDER BY band), min(stripe_lo), max(stripe_hi) FROM pg_temp.ap_matched'
    INTO bands, k_lo, k_hi;
  FOR k, b IN SELECT s.k, t.b FROM generate_series(k_lo, k_hi) s(k), unnest(bands) t(b) LOOP
    EXECUTE format($q$
      UPDATE %1$I.%2$I t SET n_dia_sources = t.n_dia_sources + 1, first_mjd = least(t.first_mjd, s.mjd),
             last_mjd = greatest(t.last_mjd, s.mjd), %3$s
        FROM pg_temp.ap_matched s
       WHERE s.band = $1 AND $2 BETWEEN s.stripe_lo AND s.stripe_hi AND t.object_id = s.object_id$q$,
      schema, skycat.stripe_partition_name('object', k, n_stripes), skycat.ap_band_columns('add', 's', ARRAY[b]))
      USING b, k;
    GET DIAGNOSTICS n_band = ROW_COUNT;
    n_objects := n_objects + n_band;
  END LOOP;
  PERFORM set_config('enable_hashjoin', 'on', true);
  PERFORM set_config('enable_mergejoin', 'on', true);
  EXECUTE format($q$
    INSERT INTO %1$I.dia_source_id_tonight SELECT dia_source_id FROM %1$I.dia_source_new WHERE visit = $1$q$, schema)
    USING visit;
  GET DIAGNOSTICS n_sources = ROW_COUNT;
  PERFORM skycat._ap_ingest_exposures(schema, visit);
  EXECUTE format($q$
    DELETE FROM %1$I.dia_source_new WHERE visit = %2$s;
    DELETE FROM %1$I.ws_visit WHERE visit = %2$s;$q$, schema, visit);
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at, n_sources, n_objects)
                    VALUES ($1, ''post'', $2, clock_timestamp(), $3, $4)', schema)
    USING visit, t0, n_sources, n_objects::int;
END $$;

-- After a server crash: the UNLOGGED tables (dia_source_new, ws_visit) come back empty, the
-- logged ones hold every committed phase. Visits prepared but not associated are forgotten
-- (prepare them again and re-insert their detections); visits associated but not
-- post-processed get their detections back from dia_source and their place in ws_visit, and
-- are returned, in visit order, with the call that finishes them.
CREATE FUNCTION ap_recover(schema name) RETURNS TABLE (visit bigint, next_call text)
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE v bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 1));
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  EXECUTE format($q$
    DELETE FROM %1$I.visit_log l WHERE l.phase = 'prepare'
       AND NOT EXISTS (SELECT 1 FROM %1$I.visit_log a WHERE a.visit = l.visit AND a.phase = 'associate')
       AND NOT EXISTS (SELECT 1 FROM %1$I.ws_visit w WHERE w.visit = l.visit)$q$, schema);
  FOR v IN EXECUTE format($q$
    SELECT a.visit FROM %1$I.visit_log a
     WHERE a.phase = 'associate'
       AND NOT EXISTS (SELECT 1 FROM %1$I.visit_log p WHERE p.visit = a.visit AND p.phase = 'post')
       AND NOT EXISTS (SELECT 1 FROM %1$I.ws_visit w WHERE w.visit = a.visit)
     ORDER BY a.visit$q$, schema) LOOP
    EXECUTE format($q$
      INSERT INTO %1$I.dia_source_new (%2$s) SELECT %2$s FROM %1$I.dia_source d WHERE d.visit = $1
      ON CONFLICT (dia_source_id) DO NOTHING;
      $q$, schema, skycat._ap_column_list('dia_source_new', 'names')) USING v;
    -- post reads nothing of the field but whether the visit is associated.
    EXECUTE format('INSERT INTO %I.ws_visit (visit, ra, "dec", radius_deg, associated) VALUES ($1, 0, 0, 0, true)', schema)
      USING v;
    visit := v;
    next_call := format('CALL skycat.ap_post_visit(%L, %s)', schema, v);
    RETURN NEXT;
  END LOOP;
END $$;

-- After the night: the indexed table of tonight's DIASources for QA.
CREATE PROCEDURE ap_post_night(schema name, night date) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  EXECUTE format($q$
    DROP TABLE IF EXISTS %1$I.dia_source_tonight;
    CREATE TABLE %1$I.dia_source_tonight AS
      SELECT d.* FROM %1$I.dia_source d WHERE d.dia_source_id IN (SELECT dia_source_id FROM %1$I.dia_source_id_tonight);
    ALTER TABLE %1$I.dia_source_tonight ADD PRIMARY KEY (dia_source_id);
    CREATE INDEX ON %1$I.dia_source_tonight (object_id);
    CREATE INDEX ON %1$I.dia_source_tonight (visit);
    ANALYZE %1$I.dia_source_tonight;$q$, schema);
  EXECUTE format('UPDATE %I.night_log SET posted_at = now() WHERE night = $1', schema) USING night;
END $$;


-- Daytime: trim DIASources older than the retention window (policy retention_days, counted
-- back from the newest DIASource), recompute the band summaries of the objects that lost
-- DIASources from the ones they keep (the night only ever adds to them), and delete objects
-- flagged as reclassified to moving.
CREATE PROCEDURE ap_daytime(schema name) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  PERFORM skycat._ap_require_idle(schema, 'ap_daytime');
  EXECUTE format($q$
    CREATE TEMP TABLE ap_trimmed ON COMMIT DROP AS
    WITH gone AS (DELETE FROM %1$I.dia_source WHERE mjd < (SELECT max(mjd) FROM %1$I.dia_source) - $1 RETURNING object_id)
    SELECT DISTINCT object_id FROM gone WHERE object_id IS NOT NULL$q$, schema)
    USING (skycat._policy(schema, 'ap') ->> 'retention_days')::float8;
  ANALYZE pg_temp.ap_trimmed;
  PERFORM skycat._ap_recompute_summaries(schema, 'pg_temp.ap_trimmed');
  EXECUTE format($q$DELETE FROM %1$I.object WHERE reclassified_moving$q$, schema);
END $$;
