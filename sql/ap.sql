-- The nightly Association Pipeline as SQL (SQL-API section 6, docs/nightly-ap.md).
--
-- One AP lives in one schema, created by skycat.ap_create(schema). Its tables:
--   disk:    object, dia_source (stripe-partitioned by dec, no secondary index), moving_object,
--            mops_pred, dia_source_match, visit_log, source_classification, policy, the
--            exposure tables, dia_source_id_tonight, dia_source_tonight;
--   memory:  dia_source_new and the working set ws_* (UNLOGGED):
--            ws_visit   visits prepared and not yet post-processed, in prepare order, with
--                       the radius of their objects (FOV + match radius) and of those
--                       objects' DIASources (one match radius more);
--            ws_object  the objects within some prepared field (one copy, shared between
--                       overlapping fields, so an object updated by visit n is what visit n+1
--                       sees), with a version counter bumped by every change;
--            ws_written the version of each object last written back to disk;
--            ws_dia_source  the DIASources within some prepared field: the history of its
--                       objects, plus tonight's rows not yet written back.
-- What a visit needs is geometric: the working-set rows within its radius. No membership
-- table is kept (writing one row per object per field cost more than the association).
--
-- Concurrency (prepare n+1, associate n, post n-1 in three sessions): associates run one at a
-- time in prepare order (lock 1); prepare and post take lock 2, so loading from disk and
-- releasing to disk never interleave. Objects an associate creates are inside its own field,
-- which stays prepared until its post, so a concurrent post never releases them. Post never
-- updates ws_object rows (it records what it wrote in ws_written), so it never waits for a
-- row an associate holds. Every procedure is one transaction: an error or a killed backend
-- leaves nothing half done.
--
-- The procedures that run a visit's statements plan with enable_nestloop and jit off (their
-- SET clauses): the working-set tables change size by orders of magnitude within a night, so
-- their statistics are always stale and every join is a bulk join, never a per-row lookup;
-- disabling nested loops inflates plan costs past jit_above_cost, and JIT compilation would
-- then cost more (~0.25 s per statement) than these statements take.
--
-- Every function and procedure runs with a fixed search_path (pg_catalog, skycat, pg_temp):
-- nothing a caller's schemas hold can stand in for a function or operator used here. Values
-- reach dynamic SQL through USING; only names (%I) and integer ids are formatted into it.

-- The two advisory locks of one AP schema.
CREATE FUNCTION ap_lock_key(schema name, which int) RETURNS bigint
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql
  SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT (hashtext('skycat.ap.' || schema)::bigint << 8) | which $$;

-- A policy value of an AP schema (the whole policy checked, see skycat._policy).
CREATE FUNCTION ap_policy(schema name, key text) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT skycat._policy(schema, 'ap') ->> key $$;

-- The per-band summary columns of object (SQL-API: <b>_psf_flux_mean, _mean_err, _sigma, _ndata,
-- _min, _max for u g r i z y), as a column list, a declaration list, assignments from the
-- relation aliased `src`, or the aggregate
-- expressions that compute them from DIASources (via skycat.flux_mean). Callers feed the
-- aggregates rows sorted by dia_source_id, so the float sums do not depend on the order rows
-- reached the working set (the three-session night must equal the sequential one to the last
-- bit). A sorted subquery rather than ORDER BY inside each aggregate: PostgreSQL 15 sorts
-- every group once per ordered aggregate, 12 sorts per object.
-- The per-band summary columns of object, one row each, in table order (for u g r i z y:
-- mean, mean_err, sigma, ndata, min, max of psf_flux).
CREATE FUNCTION _ap_band_column_defs() RETURNS TABLE (band text, name text, decl text, ord int)
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT b, format('%s_psf_flux_%s', b, f), t, (bo * 10 + fo)::int
    FROM unnest(ARRAY['u', 'g', 'r', 'i', 'z', 'y']) WITH ORDINALITY AS bb(b, bo),
         unnest(ARRAY['mean', 'mean_err', 'sigma', 'ndata', 'min', 'max'],
                ARRAY['float8', 'float8', 'float8', 'int', 'float8', 'float8']) WITH ORDINALITY AS ff(f, t, fo)
$$;

CREATE FUNCTION ap_band_columns(kind text, src text DEFAULT 's', bands text[] DEFAULT ARRAY['u', 'g', 'r', 'i', 'z', 'y']) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT CASE
    WHEN kind IN ('names', 'declare') THEN (
      SELECT string_agg(CASE kind WHEN 'names' THEN quote_ident(d.name) ELSE format('%I %s', d.name, d.decl) END,
                        ', ' ORDER BY d.ord)
        FROM skycat._ap_band_column_defs() d WHERE d.band = ANY (bands))
    ELSE (
      SELECT string_agg(
        CASE kind
          WHEN 'assign' THEN format('%1$s_psf_flux_mean = %2$s.%1$s_psf_flux_mean, %1$s_psf_flux_mean_err = %2$s.%1$s_psf_flux_mean_err, '
                                    '%1$s_psf_flux_sigma = %2$s.%1$s_psf_flux_sigma, %1$s_psf_flux_ndata = %2$s.%1$s_psf_flux_ndata, '
                                    '%1$s_psf_flux_min = %2$s.%1$s_psf_flux_min, %1$s_psf_flux_max = %2$s.%1$s_psf_flux_max', b, src)
          WHEN 'aggregate' THEN format(
            '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).mean AS %1$s_psf_flux_mean, '
            '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).mean_err AS %1$s_psf_flux_mean_err, '
            'stddev_samp(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err)) AS %1$s_psf_flux_sigma, '
            '(skycat.flux_mean(psf_flux, psf_flux_err) FILTER (WHERE band = %1$L)).n::int AS %1$s_psf_flux_ndata, '
            'min(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err)) AS %1$s_psf_flux_min, '
            'max(psf_flux) FILTER (WHERE band = %1$L AND skycat.lc_row_used(psf_flux, psf_flux_err)) AS %1$s_psf_flux_max', b)
        END, ', ' ORDER BY ord)
        FROM unnest(ARRAY['u', 'g', 'r', 'i', 'z', 'y']) WITH ORDINALITY AS t(b, ord)
       WHERE b = ANY (bands))
  END
$$;

-- The columns of the AP's row tables, in table order, defined once: ap_create declares the
-- tables from them and the procedures move rows between them by name, never by position.
-- dia_source_new is the detection pipeline's output; dia_source and ws_dia_source add what
-- association decides; ws_object adds the working set's bookkeeping to object.
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
         SELECT c.name, c.decl, 100 + c.ord FROM skycat._ap_band_column_defs() c),
       working(name, decl, ord) AS (VALUES
         ('version', 'int NOT NULL DEFAULT 0', 1001), ('created_visit', 'bigint', 1002))
  SELECT name, decl FROM (
    SELECT * FROM dia_source_new WHERE tbl IN ('dia_source_new', 'dia_source', 'ws_dia_source')
    UNION ALL SELECT * FROM associated WHERE tbl IN ('dia_source', 'ws_dia_source')
    UNION ALL SELECT * FROM object WHERE tbl IN ('object', 'ws_object')
    UNION ALL SELECT * FROM working WHERE tbl = 'ws_object') c
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

-- The primary key of object: (object_id, dec), as PostgreSQL requires the partition key in it
-- (object ids are unique by construction; see ap_associate).
CREATE FUNCTION _ap_object_key() RETURNS text
  IMMUTABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT 'object_id, "dec"' $$;

-- For bulk loads of object: `ap_object_key(schema, false)` drops the primary key (a bulk load
-- then builds it once at the end, instead of maintaining it row by row), `true` creates it
-- again. Nothing else is needed to load a catalog into an AP schema.
CREATE FUNCTION ap_object_key(schema name, present boolean) RETURNS void
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  pk name;
BEGIN
  SELECT c.conname INTO pk FROM pg_constraint c
   WHERE c.conrelid = to_regclass(format('%I.object', schema)) AND c.contype = 'p';
  IF present AND pk IS NULL THEN
    EXECUTE format('ALTER TABLE %I.object ADD PRIMARY KEY (%s)', schema, skycat._ap_object_key());
  ELSIF NOT present AND pk IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %I.object DROP CONSTRAINT %I', schema, pk);
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
    CREATE TABLE %1$I.dia_source (%5$s) PARTITION BY RANGE ("dec");
    CREATE UNLOGGED TABLE %1$I.dia_source_new (%6$s, PRIMARY KEY (dia_source_id));
    CREATE INDEX ON %1$I.dia_source_new (visit);
    CREATE TABLE %1$I.dia_source_match (
      visit bigint NOT NULL, dia_source_id bigint NOT NULL, object_id bigint NOT NULL,
      sep_arcsec float8 NOT NULL, rank int NOT NULL, chosen boolean NOT NULL DEFAULT false);
    CREATE TABLE %1$I.moving_object (
      moving_object_id bigint PRIMARY KEY, ra float8, "dec" float8, n_detections int NOT NULL DEFAULT 0,
      last_mjd float8);
    CREATE TABLE %1$I.mops_pred (
      moving_object_id bigint NOT NULL, visit bigint NOT NULL, ra float8 NOT NULL, "dec" float8 NOT NULL,
      ra_err_arcsec float8, dec_err_arcsec float8, mjd float8, PRIMARY KEY (visit, moving_object_id));
    CREATE TABLE %1$I.dia_source_id_tonight (dia_source_id bigint NOT NULL);
    CREATE TABLE %1$I.visit (visit bigint PRIMARY KEY, ra float8, "dec" float8, mjd float8, band text);
    CREATE TABLE %1$I.fpa_exposure (exposure_id bigint PRIMARY KEY, ra float8, "dec" float8, mjd float8,
      band text, exp_time float8);
    CREATE TABLE %1$I.ccd_exposure (exposure_id bigint NOT NULL, ccd int NOT NULL, PRIMARY KEY (exposure_id, ccd));
    CREATE TABLE %1$I.amp_exposure (exposure_id bigint NOT NULL, ccd int NOT NULL, amp int NOT NULL,
      PRIMARY KEY (exposure_id, ccd, amp));
    CREATE TABLE %1$I.fpa_exposure_to_visit (exposure_id bigint PRIMARY KEY, visit bigint NOT NULL);
    CREATE TABLE %1$I.visit_log (
      visit bigint NOT NULL, phase text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL,
      n_sources int, n_matched int, n_new_objects int, n_moving int, n_objects int, n_loaded int,
      PRIMARY KEY (visit, phase));
    CREATE TABLE %1$I.night_log (night date PRIMARY KEY, prepared_at timestamptz, posted_at timestamptz);

    CREATE UNLOGGED TABLE %1$I.ws_visit (
      seq bigserial, visit bigint PRIMARY KEY, ra float8 NOT NULL, "dec" float8 NOT NULL, radius_deg float8 NOT NULL,
      source_radius_deg float8 NOT NULL, associated boolean NOT NULL DEFAULT false);
    -- No index: every statement on it is a bulk join or a scan (object ids are unique by
    -- construction, under lock 2).
    CREATE UNLOGGED TABLE %1$I.ws_object (%7$s);
    CREATE UNLOGGED TABLE %1$I.ws_written (object_id bigint PRIMARY KEY, version int NOT NULL);
    CREATE UNLOGGED TABLE %1$I.ws_dia_source (%8$s, PRIMARY KEY (dia_source_id));
    CREATE INDEX ON %1$I.ws_dia_source (object_id);
    CREATE INDEX ON %1$I.ws_dia_source (visit);
  $f$, schema, stripe_height_deg::text, skycat._ap_column_list('object', 'declare'), skycat._ap_object_key(),
     skycat._ap_column_list('dia_source', 'declare'), skycat._ap_column_list('dia_source_new', 'declare'),
     skycat._ap_column_list('ws_object', 'declare'), skycat._ap_column_list('ws_dia_source', 'declare'));
  PERFORM skycat.create_stripe_partitions(format('%I.object', schema)::regclass, stripe_height_deg);
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

-- Start a night: record it, empty the nightly tables.
CREATE PROCEDURE ap_prepare_night(schema name, night date) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  EXECUTE format('INSERT INTO %I.night_log (night, prepared_at) VALUES ($1, now())
                    ON CONFLICT (night) DO UPDATE SET prepared_at = now()', schema) USING night;
  EXECUTE format('TRUNCATE %I.dia_source_id_tonight', schema);
END $$;

-- Load what the field of `visit` needs into the working set: objects within the field (plus
-- the match radius), the DIASources of those objects, and membership rows. Objects already in
-- memory for an earlier prepared field are shared, not loaded again.
CREATE PROCEDURE ap_prepare_visit(schema name, visit bigint, ra float8, "dec" float8) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET enable_nestloop = off SET jit = off AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'ap');
  margin_deg float8 := greatest((p ->> 'match_radius_arcsec')::float8, (p ->> 'mops_radius_arcsec')::float8) / 3600;
  -- Objects within r_deg; their DIASources within one match radius more.
  r_deg float8 := (p ->> 'fov_radius_deg')::float8 + margin_deg;
  lo float8 := greatest(-90, "dec" - r_deg - margin_deg);
  hi float8 := least(90, "dec" + r_deg + margin_deg);
  ra_lo float8[];
  ra_hi float8[];
  n_loaded bigint;
  n_members bigint;
BEGIN
  IF visit IS NULL OR ra IS NULL OR "dec" IS NULL OR NOT ("dec" BETWEEN -90 AND 90) OR ra = 'NaN' OR ra IN ('Infinity', '-Infinity') THEN
    RAISE EXCEPTION 'skycat.ap_prepare_visit: visit, ra and dec must be given, |dec| <= 90' USING ERRCODE = '22023';
  END IF;
  SELECT r.ra_lo, r.ra_hi INTO ra_lo, ra_hi FROM skycat.ap_ra_ranges(ra, "dec", r_deg + margin_deg) r;
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  EXECUTE format('SELECT count(*) FROM %I.visit_log WHERE visit = $1 AND phase = ''associate''', schema)
    INTO n_loaded USING visit;
  IF n_loaded > 0 THEN
    RAISE EXCEPTION 'skycat.ap_prepare_visit: visit % of % is already associated', visit, schema USING ERRCODE = '55000';
  END IF;
  EXECUTE format('INSERT INTO %I.ws_visit (visit, ra, "dec", radius_deg, source_radius_deg)
                    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', schema)
    USING visit, ra, "dec", r_deg, r_deg + margin_deg;
  GET DIAGNOSTICS n_loaded = ROW_COUNT;
  IF n_loaded = 0 THEN
    RAISE NOTICE 'skycat.ap_prepare_visit: visit % is already prepared', visit;
    RETURN;
  END IF;
  -- Objects on disk in the field that are not in memory yet (only the stripes the field
  -- touches are scanned: the dec range prunes partitions, the BRIN index the ra range), then
  -- their DIASources: every one within the source radius that is not in memory.
  EXECUTE format($q$
    INSERT INTO %1$I.ws_object (%2$s)
    SELECT %3$s FROM %1$I.object o
     WHERE o."dec" BETWEEN $1 AND $2 AND (o.ra BETWEEN $6[1] AND $7[1] OR o.ra BETWEEN $6[2] AND $7[2])
       AND skycat.dwithin(o.ra, o."dec", $3, $4, $5)
       AND NOT EXISTS (SELECT 1 FROM %1$I.ws_object w WHERE w.object_id = o.object_id)$q$,
    schema, skycat._ap_column_list('object', 'names'), skycat._ap_column_list('object', 'names', 'o'))
    USING lo, hi, ra, "dec", r_deg * 3600, ra_lo, ra_hi;
  GET DIAGNOSTICS n_loaded = ROW_COUNT;
  EXECUTE format($q$
    INSERT INTO %1$I.ws_dia_source (%2$s)
    SELECT %3$s FROM %1$I.dia_source d
     WHERE d."dec" BETWEEN $1 AND $2 AND (d.ra BETWEEN $6[1] AND $7[1] OR d.ra BETWEEN $6[2] AND $7[2])
       AND d.object_id IS NOT NULL AND skycat.dwithin(d.ra, d."dec", $3, $4, $5)
       AND NOT EXISTS (SELECT 1 FROM %1$I.ws_dia_source w WHERE w.dia_source_id = d.dia_source_id)$q$,
    schema, skycat._ap_column_list('dia_source', 'names'), skycat._ap_column_list('dia_source', 'names', 'd'))
    USING lo, hi, ra, "dec", (r_deg + margin_deg) * 3600, ra_lo, ra_hi;
  EXECUTE format('SELECT count(*) FROM %I.ws_object w WHERE skycat.dwithin(w.ra, w."dec", $1, $2, $3)', schema)
    INTO n_members USING ra, "dec", r_deg * 3600;
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at, n_objects, n_loaded)
                    VALUES ($1, ''prepare'', $2, clock_timestamp(), $3, $4)', schema)
    USING visit, t0, n_members::int, n_loaded::int;
END $$;

-- Associate the DIASources of `visit` (in dia_source_new): every candidate pair within the match
-- radius into dia_source_match, a one-to-one assignment (policy assoc_mode), matched objects
-- updated, new objects for unmatched sources whose class routes to 'object', the rest matched to
-- MOPS predictions, every source routed and kept in the working set for ap_post_visit.
CREATE PROCEDURE ap_associate(schema name, visit bigint) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET enable_nestloop = off SET jit = off AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'ap');
  radius float8 := (p ->> 'match_radius_arcsec')::float8;
  mops_radius float8 := (p ->> 'mops_radius_arcsec')::float8;
  assoc_mode text := p ->> 'assoc_mode';
  retention float8 := (p ->> 'retention_days')::float8;
  n_sources int; n_matched int; n_new int; n_moving int; earlier bigint; found_visit boolean; bands text[];
  new_ids bigint[]; clash bigint;
  v_ra float8; v_dec float8; v_radius float8; left_q text; right_q text;
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

  -- Candidates: every non-junk source against the objects of the field. The inputs are query
  -- texts (crossmatch runs them): the field's centre and radius come from ws_visit, never as
  -- printed floats (whose digits depend on extra_float_digits); the visit id is an integer.
  left_q := format('SELECT n.dia_source_id, n.ra, n."dec", n.ra_err_arcsec, n.dec_err_arcsec
                      FROM %1$I.dia_source_new n JOIN %1$I.source_classification c USING (class_id)
                     WHERE n.visit = %2$s AND c.route <> ''junk''', schema, visit);
  right_q := format('SELECT w.object_id, w.ra, w."dec", NULL::float8, NULL::float8
                       FROM %1$I.ws_object w, %1$I.ws_visit v
                      WHERE v.visit = %2$s AND skycat.dwithin(w.ra, w."dec", v.ra, v."dec", v.radius_deg * 3600)',
                    schema, visit);
  -- Every candidate pair persisted, the assignment's pairs marked chosen, and every source of
  -- the visit into the working set with its chosen object (one statement: the pairs come from
  -- the INSERT itself, never from scanning the whole night's dia_source_match).
  EXECUTE format($q$
    WITH pairs AS (
      INSERT INTO %1$I.dia_source_match (visit, dia_source_id, object_id, sep_arcsec, rank, chosen)
      SELECT $1, a.left_id, a.right_id, a.sep_arcsec, a.rank, a.chosen
        FROM skycat.crossmatch_marked($2, $3, $4, $5) a
      RETURNING dia_source_id, object_id, chosen)
    INSERT INTO %1$I.ws_dia_source (%2$s, object_id, moving_object_id, route)
    SELECT %3$s, p.object_id, NULL,
           CASE WHEN c.route = 'junk' THEN 'junk' WHEN p.object_id IS NOT NULL THEN 'object' ELSE c.route END
      FROM %1$I.dia_source_new n JOIN %1$I.source_classification c ON c.class_id = n.class_id
      LEFT JOIN (SELECT dia_source_id, object_id FROM pairs WHERE chosen) p ON p.dia_source_id = n.dia_source_id
     WHERE n.visit = $1$q$,
    schema, skycat._ap_column_list('dia_source_new', 'names'), skycat._ap_column_list('dia_source_new', 'names', 'n'))
    USING visit, left_q, right_q, radius, assoc_mode;
  GET DIAGNOSTICS n_sources = ROW_COUNT;
  EXECUTE format('SELECT count(*) FROM %I.ws_dia_source WHERE visit = $1 AND object_id IS NOT NULL', schema)
    INTO n_matched USING visit;

  -- Unmatched sources that are not objects or junk: MOPS predictions of this visit.
  EXECUTE format($q$
    WITH pairs AS (
      SELECT c.left_id, c.right_id FROM skycat.crossmatch(
        format('SELECT dia_source_id, ra, "dec", ra_err_arcsec, dec_err_arcsec FROM %1$I.ws_dia_source
                 WHERE visit = %%s AND object_id IS NULL AND route IN (''mops'', ''alert'')', $1),
        format('SELECT moving_object_id, ra, "dec", ra_err_arcsec, dec_err_arcsec FROM %1$I.mops_pred WHERE visit = %%s', $1),
        $2, 'greedy') c),
    upd AS (
      UPDATE %1$I.ws_dia_source d SET moving_object_id = p.right_id, route = 'mops'
        FROM pairs p WHERE d.dia_source_id = p.left_id RETURNING d.*)
    UPDATE %1$I.moving_object mo SET n_detections = mo.n_detections + 1, last_mjd = u.mjd, ra = u.ra, "dec" = u."dec"
      FROM upd u WHERE mo.moving_object_id = u.moving_object_id$q$, schema) USING visit, mops_radius;
  GET DIAGNOSTICS n_moving = ROW_COUNT;

  -- Matched objects: counts, times and per-band statistics over their DIASources within the
  -- retention window (LSST's DiaObject summaries), via skycat.flux_mean; only the bands this
  -- visit observed change (one per visit, normally).
  EXECUTE format('SELECT array_agg(DISTINCT band) FROM %I.ws_dia_source WHERE visit = $1 AND object_id IS NOT NULL', schema)
    INTO bands USING visit;
  IF bands IS NOT NULL THEN  -- some source matched an object
    EXECUTE format($q$
      UPDATE %1$I.ws_object o SET
        n_dia_sources = o.n_dia_sources + s.n_new, first_mjd = least(o.first_mjd, s.first_mjd),
        last_mjd = greatest(o.last_mjd, s.last_mjd), version = o.version + 1, %2$s
      FROM (SELECT object_id, count(*) FILTER (WHERE visit = $1) AS n_new, min(mjd) AS first_mjd, max(mjd) AS last_mjd, %3$s
              FROM (SELECT * FROM %1$I.ws_dia_source
                     WHERE object_id IN (SELECT object_id FROM %1$I.ws_dia_source WHERE visit = $1 AND object_id IS NOT NULL)
                       AND mjd >= (SELECT max(mjd) FROM %1$I.ws_dia_source WHERE visit = $1) - $2
                     ORDER BY object_id, dia_source_id) h
             GROUP BY object_id) s
     WHERE o.object_id = s.object_id$q$, schema, skycat.ap_band_columns('assign', 's', bands),
      skycat.ap_band_columns('aggregate', 's', bands))
    USING visit, retention;
  END IF;

  -- New objects: unmatched sources whose class routes to 'object' (LSST: the new object's id
  -- is its first DIASource's id). They lie in this visit's field, so later fields that
  -- overlap it find them in the working set. An id already taken by an object (in memory, or
  -- anywhere on disk: objects loaded from another catalog) stops the visit: the primary key
  -- (object_id, dec) cannot see a duplicate at another dec.
  EXECUTE format($q$
    SELECT array_agg(d.dia_source_id) FROM %1$I.ws_dia_source d JOIN %1$I.source_classification c ON c.class_id = d.class_id
     WHERE d.visit = $1 AND d.object_id IS NULL AND d.moving_object_id IS NULL AND c.route = 'object'$q$, schema)
    INTO new_ids USING visit;
  IF new_ids IS NOT NULL THEN
    EXECUTE format('SELECT min(object_id) FROM (SELECT object_id FROM %1$I.ws_object WHERE object_id = ANY ($1)
                    UNION ALL SELECT object_id FROM %1$I.object WHERE object_id = ANY ($1)) t', schema)
      INTO clash USING new_ids;
    IF clash IS NOT NULL THEN
      RAISE EXCEPTION 'skycat.ap_associate: DIASource % of visit % would create object %, but %.object already has an object with that id',
        clash, visit, clash, schema
        USING ERRCODE = '23505',
              HINT = 'A new object takes the id of its first DIASource: DIASource ids must not reuse object ids (give objects loaded from elsewhere ids outside the DIASource id range).';
    END IF;
  END IF;
  EXECUTE format($q$
    WITH new AS (
      UPDATE %1$I.ws_dia_source d SET object_id = d.dia_source_id, route = 'object'
        FROM %1$I.source_classification c
       WHERE d.visit = $1 AND d.object_id IS NULL AND d.moving_object_id IS NULL
         AND c.class_id = d.class_id AND c.route = 'object'
      RETURNING d.*)
    INSERT INTO %1$I.ws_object (object_id, ra, "dec", n_dia_sources, first_mjd, last_mjd, version, created_visit, %2$s)
    SELECT dia_source_id, ra, "dec", 1, mjd, mjd, 1, $1, %3$s FROM new GROUP BY dia_source_id, ra, "dec", mjd$q$,
    schema, skycat.ap_band_columns('names'), skycat.ap_band_columns('aggregate'))
    USING visit;
  GET DIAGNOSTICS n_new = ROW_COUNT;
  EXECUTE format('UPDATE %I.ws_visit SET associated = true WHERE visit = $1', schema) USING visit;
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at, n_sources, n_matched, n_new_objects, n_moving)
                    VALUES ($1, ''associate'', $2, clock_timestamp(), $3, $4, $5, $6)', schema)
    USING visit, t0, n_sources, n_matched, n_new, n_moving;
END $$;

-- Write the working set of `visit` back to disk: its objects changed since they were last
-- written (updated in place, or inserted when new), its DIASources appended to dia_source and
-- their ids to dia_source_id_tonight; then release what no other prepared field needs.
CREATE PROCEDURE ap_post_visit(schema name, visit bigint) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp SET enable_nestloop = off SET jit = off AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  n_objects int; n_new int; n_sources int; assoc boolean; lo float8; hi float8;
  v_ra float8; v_dec float8; v_radius float8; ra_lo float8[]; ra_hi float8[];
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  EXECUTE format('SELECT associated, greatest(-90, "dec" - radius_deg), least(90, "dec" + radius_deg), ra, "dec", radius_deg
                    FROM %I.ws_visit WHERE visit = $1', schema) INTO assoc, lo, hi, v_ra, v_dec, v_radius USING visit;
  IF assoc IS NULL THEN
    RAISE EXCEPTION 'skycat.ap_post_visit: visit % of % is not prepared, or already post-processed', visit, schema
      USING ERRCODE = '55000';
  ELSIF NOT assoc THEN
    RAISE EXCEPTION 'skycat.ap_post_visit: visit % of % is not associated yet', visit, schema USING ERRCODE = '55000';
  END IF;
  -- The objects to write: those of this visit's field (and any it created) whose version is
  -- newer than the one on disk.
  EXECUTE format($q$
    CREATE TEMP TABLE ap_dirty ON COMMIT DROP AS
    SELECT o.*, (o.created_visit IS NULL OR w.object_id IS NOT NULL) AS on_disk FROM %1$I.ws_object o
      LEFT JOIN %1$I.ws_written w ON w.object_id = o.object_id
     WHERE o.version > coalesce(w.version, 0)
       AND (skycat.dwithin(o.ra, o."dec", $1, $2, $3) OR o.created_visit = $4)$q$, schema)
    USING v_ra, v_dec, v_radius * 3600, visit;
  -- A few thousand objects to write into stripes of millions: the dec range prunes stripes,
  -- the field's ra ranges (BRIN) the blocks within them; the planner picks a hash join on
  -- those or primary-key probes (ap_dirty's statistics are fresh).
  ANALYZE pg_temp.ap_dirty;
  PERFORM set_config('enable_nestloop', 'on', true);
  SELECT r.ra_lo, r.ra_hi INTO ra_lo, ra_hi FROM skycat.ap_ra_ranges(v_ra, v_dec, v_radius) r;
  EXECUTE format($q$
    UPDATE %1$I.object t SET n_dia_sources = d.n_dia_sources, first_mjd = d.first_mjd, last_mjd = d.last_mjd,
           reclassified_moving = d.reclassified_moving, %2$s
      FROM pg_temp.ap_dirty d WHERE d.on_disk AND t.object_id = d.object_id AND t."dec" = d."dec"
       AND t."dec" BETWEEN $1 AND $2 AND (t.ra BETWEEN $3[1] AND $4[1] OR t.ra BETWEEN $3[2] AND $4[2])$q$,
    schema, skycat.ap_band_columns('assign', 'd')) USING lo, hi, ra_lo, ra_hi;
  GET DIAGNOSTICS n_objects = ROW_COUNT;
  PERFORM set_config('enable_nestloop', 'off', true);
  -- Objects loaded from disk are on disk even before their first write-back.
  EXECUTE format($q$
    INSERT INTO %1$I.object (%2$s) SELECT %2$s FROM pg_temp.ap_dirty WHERE NOT on_disk$q$,
    schema, skycat._ap_column_list('object', 'names'));
  GET DIAGNOSTICS n_new = ROW_COUNT;
  EXECUTE format($q$
    INSERT INTO %1$I.ws_written (object_id, version) SELECT object_id, version FROM pg_temp.ap_dirty
    ON CONFLICT (object_id) DO UPDATE SET version = greatest(%1$I.ws_written.version, EXCLUDED.version)$q$, schema);
  EXECUTE format('INSERT INTO %1$I.dia_source (%2$s) SELECT %2$s FROM %1$I.ws_dia_source WHERE visit = $1',
                 schema, skycat._ap_column_list('dia_source', 'names')) USING visit;
  GET DIAGNOSTICS n_sources = ROW_COUNT;
  EXECUTE format($q$
    INSERT INTO %1$I.dia_source_id_tonight SELECT dia_source_id FROM %1$I.ws_dia_source WHERE visit = %2$s;
    DELETE FROM %1$I.dia_source_new WHERE visit = %2$s;$q$, schema, visit);
  -- Release this visit, then what no prepared field needs any more: objects outside every
  -- remaining field, DIASources of posted visits (and history) outside every remaining
  -- field's source radius, and this visit's DIASources without an object. Rows of visits
  -- still in flight are inside their own fields, so they stay.
  EXECUTE format($q$
    DELETE FROM %1$I.ws_visit WHERE visit = %2$s;
    DELETE FROM %1$I.ws_dia_source d WHERE (d.visit = %2$s AND d.object_id IS NULL)
       OR (NOT EXISTS (SELECT 1 FROM %1$I.ws_visit v WHERE v.visit = d.visit)
           AND NOT EXISTS (SELECT 1 FROM %1$I.ws_visit v
                            WHERE skycat.dwithin(d.ra, d."dec", v.ra, v."dec", v.source_radius_deg * 3600)));
    DELETE FROM %1$I.ws_object o WHERE NOT EXISTS (SELECT 1 FROM %1$I.ws_visit v
                                                    WHERE skycat.dwithin(o.ra, o."dec", v.ra, v."dec", v.radius_deg * 3600));
    DELETE FROM %1$I.ws_written w WHERE NOT EXISTS (SELECT 1 FROM %1$I.ws_object o WHERE o.object_id = w.object_id);$q$,
    schema, visit);
  EXECUTE format('INSERT INTO %I.visit_log (visit, phase, started_at, finished_at, n_sources, n_new_objects, n_objects)
                    VALUES ($1, ''post'', $2, clock_timestamp(), $3, $4, $5)', schema)
    USING visit, t0, n_sources, n_new, n_objects + n_new;
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
-- back from the newest DIASource) and delete objects flagged as reclassified to moving.
CREATE PROCEDURE ap_daytime(schema name) LANGUAGE plpgsql
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE busy boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(skycat.ap_lock_key(schema, 2));
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.ws_visit)', schema) INTO busy;
  IF busy THEN
    RAISE EXCEPTION 'skycat.ap_daytime: visits of % are still in the working set', schema
      USING ERRCODE = '55000', HINT = 'Post-process every prepared visit first.';
  END IF;
  EXECUTE format('DELETE FROM %1$I.dia_source WHERE mjd < (SELECT max(mjd) FROM %1$I.dia_source) - $1', schema)
    USING (skycat._policy(schema, 'ap') ->> 'retention_days')::float8;
  EXECUTE format($q$
    DELETE FROM %1$I.object WHERE reclassified_moving;
    TRUNCATE %1$I.ws_object, %1$I.ws_written, %1$I.ws_dia_source;$q$, schema);
END $$;
