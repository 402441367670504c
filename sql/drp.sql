-- DRP post-processing as SQL (docs/drp.md): the catalog-only work after the image processing
-- of a data release, in an internal DRP database of conventional, stripe-partitioned tables.
--
-- One release lives in one schema, created by skycat.drp_create(schema, files_root). Its tables:
--   files_*          foreign tables (skycat_files) over the pipeline's per-tract Parquet
--                    outputs, DIR/tract=<t>/{calib,object,source,dia_source,forced_source}.parquet;
--                    the `tract` column comes from the path, so `WHERE tract = t` opens one tract;
--   tract            one row per ingested tract: its inner region (the polygon of the rings
--                    skymap) and what its ingest wrote;
--   calib            (visit, detector) -> photometric calibration, band, mjd and WCS;
--   object_staging   every tract's objects as the pipeline wrote them, duplicates included;
--   object           each object once (after drp_deduplicate_objects), with the per-band
--                    light-curve summary columns; stripe-partitioned by dec;
--   source, dia_source, forced_source   calibrated rows, stripe-partitioned by dec (forced
--                    sources by their object's dec), BRIN-indexed by tract;
--   progress, recalibration_log, export_log   what long steps did, visible to other sessions.
--
-- Steps (each re-runnable: running one again changes nothing):
--   drp_ingest_tract(schema, tract)      files -> calibrated rows, one transaction per tract;
--   drp_deduplicate_objects(schema)      isPrimary by tract inner region -> object;
--   drp_add_columns / drp_update_objects later pipelines' Object columns, one write per row;
--   CALL drp_summarize_forced_sources(schema)   lc_stats per object and band -> object;
--   drp_apply_recalibration(schema, new_calib)  new calibrations, then re-summarise the
--                                               affected objects only;
--   drp_export(schema, table, dir, ...)  write-once Qserv chunk files.

-- A policy value of a DRP schema (the whole policy checked, see skycat._policy).
CREATE FUNCTION drp_policy(schema name, key text) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp
  AS $$ SELECT skycat._policy(schema, 'drp') ->> key $$;

-- The light-curve summary columns of object, per band (LSST DiaObject names in snake_case:
-- <band>_psf_flux_mean, <band>_psf_flux_mean_err, ... <band>_psf_flux_err_mean), and the
-- lc_stats field each comes from. kind: 'declare' (column definitions), 'aggregate' (per band,
-- `lc_stats(...) FILTER (WHERE band = b) AS st_<b>` and the band's row count `rows_<b>`, over
-- forced sources grouped by object), 'row_count' (the sum of those row counts), 'flatten' (the
-- summary columns computed from those, aliased by name, reading the relation aliased src),
-- 'names' (the summary columns' names, comma-separated), 'values' (the same columns of the
-- relation aliased src), 'scan' (the column definition list of
-- skycat._drp_summary_scan: object_id, "dec", rows, then 'declare').
--
-- One lc_stats per band, grouped by object, rather than grouping by (object, band) and
-- pivoting the rows afterwards: 6x fewer groups, and no second aggregation with one FILTERed
-- max() per column (114 per row, which took as long as the light-curve statistics
-- themselves; docs/benchmarks/drp.md).
CREATE FUNCTION drp_summary_columns(kind text, bands text[], src text DEFAULT 's') RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT CASE kind
    WHEN 'aggregate' THEN (
      SELECT string_agg(format('skycat.lc_stats(psf_flux, psf_flux_err, mjd) FILTER (WHERE band = %1$L) AS %2$I, '
                               'count(*) FILTER (WHERE band = %1$L) AS %3$I', b, 'st_' || b, 'rows_' || b),
                        ', ' ORDER BY bo)
        FROM unnest(bands) WITH ORDINALITY AS t(b, bo))
    WHEN 'row_count' THEN (
      SELECT string_agg(format('%I', 'rows_' || b), ' + ' ORDER BY bo) FROM unnest(bands) WITH ORDINALITY AS t(b, bo))
    WHEN 'scan' THEN 'object_id int8, "dec" float8, rows int8, ' || skycat.drp_summary_columns('declare', bands)
    ELSE (
      SELECT string_agg(
        CASE kind
          WHEN 'declare' THEN format('%I %s', b || '_psf_flux_' || f.name, CASE WHEN f.field = 'n' THEN 'int' ELSE 'float8' END)
          -- ndata: NULL when the object has no forced source in the band, 0 when it has some
          -- but none usable (the band's lc_stats is then all NULL but n).
          WHEN 'flatten' THEN CASE WHEN f.field = 'n'
            THEN format('CASE WHEN %2$s.%3$I > 0 THEN (%2$s.%4$I).n::int END AS %1$I', b || '_psf_flux_' || f.name, src, 'rows_' || b, 'st_' || b)
            ELSE format('(%2$s.%3$I).%4$s AS %1$I', b || '_psf_flux_' || f.name, src, 'st_' || b, f.field) END
          WHEN 'names' THEN format('%I', b || '_psf_flux_' || f.name)
          WHEN 'values' THEN format('%s.%I', src, b || '_psf_flux_' || f.name)
        END, ', ' ORDER BY bo, f.ord)
      FROM unnest(bands) WITH ORDINALITY AS t(b, bo)
      CROSS JOIN unnest(
        ARRAY['mean', 'mean_err', 'sigma', 'chi2', 'ndata', 'min', 'max', 'mad', 'skew',
              'percentile05', 'percentile25', 'percentile50', 'percentile75', 'percentile95',
              'stetson_j', 'linear_slope', 'linear_intercept', 'max_slope', 'err_mean'],
        ARRAY['mean', 'mean_err', 'sigma', 'chi2', 'n', 'min', 'max', 'mad', 'skew',
              'p05', 'p25', 'p50', 'p75', 'p95',
              'stetson_j', 'linear_slope', 'linear_intercept', 'max_slope', 'err_mean'])
        WITH ORDINALITY AS f(name, field, ord)
      WHERE kind IN ('declare', 'flatten', 'names', 'values'))
  END
$$;

-- Create a DRP schema over the pipeline outputs below files_root (an absolute server
-- directory holding tract=<t>/ subdirectories). Creates the foreign server <schema>_files.
CREATE FUNCTION drp_create(
  schema name,
  files_root text,
  stripe_height_deg float8 DEFAULT 1.0,
  num_rings int DEFAULT 120,
  bands text[] DEFAULT ARRAY['u', 'g', 'r', 'i', 'z', 'y']
) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp
  -- The policy stores the height as text: print it exactly whatever the session says.
  SET extra_float_digits = 3 AS $$
DECLARE
  server name := schema || '_files';
  calibrated text := 'psf_flux float8, psf_flux_err float8, calib_applied float8, calib_err_applied float8';
BEGIN
  IF stripe_height_deg IS NULL OR NOT stripe_height_deg > 0 THEN
    RAISE EXCEPTION 'skycat.drp_create: stripe_height_deg must be > 0' USING ERRCODE = '22023';
  END IF;
  IF files_root IS NULL OR left(files_root, 1) <> '/' THEN
    RAISE EXCEPTION 'skycat.drp_create: files_root must be an absolute server directory, got %', files_root
      USING ERRCODE = '22023';
  END IF;
  IF bands IS NULL OR cardinality(bands) = 0 OR EXISTS (SELECT 1 FROM unnest(bands) b WHERE b !~ '^[a-z][a-z0-9]*$') THEN
    RAISE EXCEPTION 'skycat.drp_create: bands must be lower-case names such as {u,g,r,i,z,y}, got %', bands
      USING ERRCODE = '22023';
  END IF;
  PERFORM skycat.skymap_tract(0, 0, num_rings);  -- validates num_rings
  PERFORM count(*) FROM skycat.stripe_bounds(stripe_height_deg);  -- validates the height
  EXECUTE format('CREATE SCHEMA %I', schema);
  EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER skycat_files OPTIONS (root %L)', server, files_root);
  EXECUTE format($f$
    CREATE TABLE %1$I.policy (key text PRIMARY KEY, value text NOT NULL);
    INSERT INTO %1$I.policy VALUES ('stripe_height_deg', %3$L), ('num_rings', %4$L), ('bands', %5$L),
      ('files_server', %2$L), ('files_root', %6$L), ('work_mem', '256MB');

    CREATE FOREIGN TABLE %1$I.files_calib (tract int, visit bigint, detector int, band text, mjd float8,
      calib_mean float8, calib_err float8, wcs text) SERVER %2$I OPTIONS (files 'tract=*/calib.parquet');
    CREATE FOREIGN TABLE %1$I.files_object (tract int, object_id bigint, ra float8, "dec" float8)
      SERVER %2$I OPTIONS (files 'tract=*/object.parquet');
    CREATE FOREIGN TABLE %1$I.files_source (tract int, source_id bigint, object_id bigint, visit bigint,
      detector int, x float8, y float8, x_err float8, y_err float8, psf_inst_flux float8, psf_inst_flux_err float8)
      SERVER %2$I OPTIONS (files 'tract=*/source.parquet');
    CREATE FOREIGN TABLE %1$I.files_dia_source (tract int, dia_source_id bigint, visit bigint, detector int,
      x float8, y float8, x_err float8, y_err float8, psf_inst_flux float8, psf_inst_flux_err float8)
      SERVER %2$I OPTIONS (files 'tract=*/dia_source.parquet');
    CREATE FOREIGN TABLE %1$I.files_forced_source (tract int, object_id bigint, visit bigint, detector int,
      ra float8, "dec" float8, x float8, y float8, psf_inst_flux float8, psf_inst_flux_err float8)
      SERVER %2$I OPTIONS (files 'tract=*/forced_source.parquet');

    CREATE TABLE %1$I.tract (
      tract int PRIMARY KEY, ring int NOT NULL, ra_center float8 NOT NULL, dec_center float8 NOT NULL,
      poly_ra float8[] NOT NULL, poly_dec float8[] NOT NULL,
      n_calib bigint, n_object_staged bigint, n_source bigint, n_dia_source bigint, n_forced_source bigint,
      ingested_at timestamptz, ingest_seconds float8);
    CREATE TABLE %1$I.calib (
      visit bigint NOT NULL, detector int NOT NULL, tract int NOT NULL, band text NOT NULL, mjd float8 NOT NULL,
      calib_mean float8 NOT NULL, calib_err float8 NOT NULL, wcs skycat.wcs NOT NULL,
      PRIMARY KEY (visit, detector));
    CREATE TABLE %1$I.object_staging (
      object_id bigint PRIMARY KEY, tract int NOT NULL, ra float8 NOT NULL, "dec" float8 NOT NULL);
    CREATE INDEX ON %1$I.object_staging (tract);
    CREATE TABLE %1$I.object (object_id bigint NOT NULL, tract int NOT NULL, ra float8 NOT NULL,
      "dec" float8 NOT NULL, %7$s, PRIMARY KEY (object_id, "dec")) PARTITION BY RANGE ("dec");
    CREATE TABLE %1$I.source (source_id bigint NOT NULL, object_id bigint, tract int NOT NULL,
      visit bigint NOT NULL, detector int NOT NULL, band text NOT NULL, mjd float8 NOT NULL,
      x float8, y float8, ra float8 NOT NULL, "dec" float8 NOT NULL,
      ra_err_arcsec float8, dec_err_arcsec float8, ra_dec_cov float8, %8$s) PARTITION BY RANGE ("dec");
    CREATE TABLE %1$I.dia_source (dia_source_id bigint NOT NULL, tract int NOT NULL,
      visit bigint NOT NULL, detector int NOT NULL, band text NOT NULL, mjd float8 NOT NULL,
      x float8, y float8, ra float8 NOT NULL, "dec" float8 NOT NULL,
      ra_err_arcsec float8, dec_err_arcsec float8, ra_dec_cov float8, %8$s) PARTITION BY RANGE ("dec");
    CREATE TABLE %1$I.forced_source (object_id bigint NOT NULL, tract int NOT NULL,
      visit bigint NOT NULL, detector int NOT NULL, band text NOT NULL, mjd float8 NOT NULL,
      ra float8 NOT NULL, "dec" float8 NOT NULL, x float8, y float8, %8$s) PARTITION BY RANGE ("dec");

    CREATE TABLE %1$I.progress (step text NOT NULL, part text NOT NULL, rows_done bigint NOT NULL,
      rows_total bigint NOT NULL, seconds float8 NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (step, part));
    CREATE TABLE %1$I.recalibration_log (applied_at timestamptz NOT NULL DEFAULT now(), calib_table text NOT NULL,
      n_calib bigint, n_source bigint, n_dia_source bigint, n_forced_source bigint, n_objects bigint, seconds float8);
    CREATE TABLE %1$I.export_log (exported_at timestamptz NOT NULL DEFAULT now(), table_name text NOT NULL,
      dir text NOT NULL, chunk_id int NOT NULL, rows bigint NOT NULL, overlap_rows bigint NOT NULL,
      PRIMARY KEY (table_name, chunk_id));
  $f$, schema, server, stripe_height_deg::text, num_rings::text, bands::text, files_root,
       skycat.drp_summary_columns('declare', bands), calibrated);
  PERFORM skycat.create_stripe_partitions(format('%I.%I', schema, t)::regclass, stripe_height_deg)
     FROM unnest(ARRAY['object', 'source', 'dia_source', 'forced_source']) t;
  -- Rows arrive tract by tract, so a BRIN index on tract finds a tract's rows (re-ingest,
  -- per-tract checks) without a B-tree's per-row cost on the bulk path.
  EXECUTE format('CREATE INDEX ON %1$I.source USING brin (tract);
                  CREATE INDEX ON %1$I.dia_source USING brin (tract);
                  CREATE INDEX ON %1$I.forced_source USING brin (tract)', schema);
  RETURN format('DRP schema %s created over %s (server %s; %s-degree dec stripes; %s-ring skymap; bands %s)',
                schema, files_root, server, stripe_height_deg, num_rings, array_to_string(bands, ''));
END $$;

-- Raised from inside an ingest query when a raw row has no calibration: the whole tract is
-- rolled back, naming the first (visit, detector) at fault.
CREATE FUNCTION drp_missing_calibration(tbl text, tract int, visit bigint, detector int) RETURNS float8
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'skycat.drp_ingest_tract: % row of tract % has no calibration for visit %, detector % (tract=%/calib.parquet)',
    tbl, tract, visit, detector, tract USING ERRCODE = '23503';
END $$;

-- Ingest one tract: its files through the wrapper -> calibrated rows. Replaces whatever an
-- earlier ingest of the same tract wrote (one transaction: an error leaves the old rows).
-- Sources and forced sources are kept for the tract's primary objects only (the object's
-- position lies in this tract's inner region), DIASources for positions in the inner region:
-- the copies that overlapping tracts also measured are dropped here, as isPrimary does.
CREATE FUNCTION drp_ingest_tract(schema name, tract int) RETURNS TABLE (table_name text, rows bigint)
  LANGUAGE plpgsql
  -- Bulk joins only: foreign scans are estimated at a few hundred rows, which would make the
  -- planner rescan a tract's file per row of a nested loop. JIT costs more than it saves here.
  SET enable_nestloop = off SET jit = off
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  p jsonb := skycat._policy(schema, 'drp');
  num_rings int := (p ->> 'num_rings')::int;
  r record;
  n_calib bigint; n_obj bigint; n_src bigint; n_dia bigint; n_fs bigint; n_files bigint;
  bad text;
  old_wm text;
  -- On a Citus cluster (skycat.drp_distribute) every row also gets its chunk: the chunk of
  -- its object (from the tract's objects), or of its own position.
  layout skycat.sky_tables := skycat._drp_layout(schema);
  ck text := CASE WHEN layout IS NULL THEN '' ELSE ', chunk' END;
  -- The calibrated flux columns of sources and DIASources (from the subquery s).
  calibrated text := skycat._calibrated_fluxes(ARRAY['psf'], 's', 's.calib_mean', 's.calib_err');
  -- pixel_to_sky once per row: the OFFSET 0 subquery is not flattened into the outer query,
  -- which would call it once per output column.
  sky_src text := $q$
    SELECT q.*, (q.sky).ra AS ra, (q.sky).dec AS "dec" FROM (
      SELECT f.*, c.band, c.mjd,
             COALESCE(c.calib_mean, skycat.drp_missing_calibration(%3$L, %2$s, f.visit, f.detector)) AS calib_mean,
             c.calib_err, skycat.pixel_to_sky(c.wcs, f.x, f.y) AS sky,
             skycat.pixel_to_sky_cov(c.wcs, f.x, f.y, f.x_err, f.y_err) AS cov
        FROM %1$I.%4$I f LEFT JOIN pg_temp.drp_tract_calib c ON c.visit = f.visit AND c.detector = f.detector
       WHERE f.tract = %2$s OFFSET 0) q $q$;
BEGIN
  IF tract IS NULL THEN
    RAISE EXCEPTION 'skycat.drp_ingest_tract: tract must not be NULL' USING ERRCODE = '22023';
  END IF;
  SELECT * INTO r FROM skycat.skymap_tract_region(tract, num_rings);
  -- Two sessions ingesting the same tract would delete each other's rows: one at a time.
  PERFORM pg_advisory_xact_lock(hashtext('skycat.drp.' || schema), tract);
  EXECUTE format('SELECT count(*) FROM %I.files_calib WHERE tract = $1', schema) INTO n_files USING tract;
  IF n_files = 0 THEN
    RAISE EXCEPTION 'skycat.drp_ingest_tract: no calibrations for tract % (expected %/tract=%/calib.parquet)',
      tract, p ->> 'files_root', tract USING ERRCODE = '58P01';
  END IF;

  -- Replace: the tract's earlier rows go (BRIN on tract finds them).
  EXECUTE format('DELETE FROM %1$I.source WHERE tract = $1;
                  DELETE FROM %1$I.dia_source WHERE tract = $1;
                  DELETE FROM %1$I.forced_source WHERE tract = $1;
                  DELETE FROM %1$I.object_staging WHERE tract = $1', schema) USING tract;
  EXECUTE format('INSERT INTO %I.tract (tract, ring, ra_center, dec_center, poly_ra, poly_dec)
                  VALUES ($1, $2, $3, $4, $5, $6)
                  ON CONFLICT (tract) DO UPDATE SET ring = EXCLUDED.ring, ra_center = EXCLUDED.ra_center,
                    dec_center = EXCLUDED.dec_center, poly_ra = EXCLUDED.poly_ra, poly_dec = EXCLUDED.poly_dec', schema)
    USING tract, r.ring, r.ra_center, r.dec_center, r.poly_ra, r.poly_dec;

  -- The tract's calibrations: a temporary table (parsed WCS, analysed), and the calib table.
  PERFORM skycat._drop_temp_tables('{drp_tract_calib}');
  EXECUTE format('CREATE TEMP TABLE drp_tract_calib ON COMMIT DROP AS
                    SELECT visit, detector, band, mjd, calib_mean, calib_err, wcs::skycat.wcs AS wcs
                      FROM %I.files_calib WHERE tract = $1', schema) USING tract;
  ALTER TABLE pg_temp.drp_tract_calib ADD PRIMARY KEY (visit, detector);
  -- A calibration that is not a finite positive number (or a negative or non-finite error)
  -- would silently turn every flux of its detector into NaN or garbage.
  SELECT format('visit %s, detector %s: calib_mean %s, calib_err %s', c.visit, c.detector, c.calib_mean, c.calib_err)
    INTO bad FROM pg_temp.drp_tract_calib c
   WHERE NOT (c.calib_mean > 0 AND c.calib_mean < 'Infinity') OR c.calib_mean IS NULL
      OR NOT (COALESCE(c.calib_err, 0) >= 0 AND COALESCE(c.calib_err, 0) < 'Infinity')
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'skycat.drp_ingest_tract: tract=%/calib.parquet has an invalid calibration (%)', tract, bad
      USING ERRCODE = '22023', HINT = 'calib_mean must be finite and > 0, calib_err finite and >= 0.';
  END IF;
  ANALYZE pg_temp.drp_tract_calib;
  EXECUTE format('INSERT INTO %I.calib AS k (visit, detector, tract, band, mjd, calib_mean, calib_err, wcs)
                    SELECT visit, detector, $1, band, mjd, calib_mean, calib_err, wcs FROM pg_temp.drp_tract_calib
                  ON CONFLICT (visit, detector) DO UPDATE SET tract = EXCLUDED.tract, band = EXCLUDED.band,
                    mjd = EXCLUDED.mjd, calib_mean = EXCLUDED.calib_mean, calib_err = EXCLUDED.calib_err, wcs = EXCLUDED.wcs',
                 schema) USING tract;
  GET DIAGNOSTICS n_calib = ROW_COUNT;

  -- Every object the tract measured, duplicates included; drp_deduplicate_objects picks.
  -- Read once into a temporary table, which the tract's sources and forced sources join.
  PERFORM skycat._drop_temp_tables('{drp_tract_object}');
  EXECUTE format('CREATE TEMP TABLE drp_tract_object ON COMMIT DROP AS
                    SELECT object_id, ra, "dec", %s AS chunk FROM %I.files_object WHERE tract = $1',
                 CASE WHEN layout IS NULL THEN 'NULL::int' ELSE 'skycat.chunk_id(ra, "dec", $2, $3)' END, schema)
    USING tract, layout.num_stripes, layout.num_sub_stripes;
  ALTER TABLE pg_temp.drp_tract_object ADD PRIMARY KEY (object_id);
  ANALYZE pg_temp.drp_tract_object;
  EXECUTE format('INSERT INTO %I.object_staging (object_id, tract, ra, "dec"%s)
                    SELECT object_id, $1, ra, "dec"%s FROM pg_temp.drp_tract_object', schema, ck, ck) USING tract;
  GET DIAGNOSTICS n_obj = ROW_COUNT;

  -- Forced sources are stored object by object (each object's rows in band and time order):
  -- drp_summarize_forced_sources then reads every light curve as a stream. Every row of an
  -- object comes from its one primary tract, so ordering each tract's rows is enough. The sort
  -- gets the policy's work_mem (unless the session has more).
  old_wm := skycat._raise_work_mem(p ->> 'work_mem');
  EXECUTE format('INSERT INTO %1$I.forced_source (object_id, tract, visit, detector, band, mjd, ra, "dec", x, y,
                    psf_flux, psf_flux_err, calib_applied, calib_err_applied%3$s)
                  SELECT f.object_id, $1, f.visit, f.detector, c.band, c.mjd, f.ra, f."dec", f.x, f.y, %2$s,
                         COALESCE(c.calib_mean, skycat.drp_missing_calibration(''forced_source'', $1, f.visit, f.detector)),
                         c.calib_err%4$s
                    FROM %1$I.files_forced_source f
                    LEFT JOIN pg_temp.drp_tract_calib c ON c.visit = f.visit AND c.detector = f.detector%5$s
                   WHERE f.tract = $1 AND skycat.polygon_contains($2, $3, f.ra, f."dec")
                   ORDER BY f.object_id, c.band, c.mjd',
                 schema, skycat._calibrated_fluxes(ARRAY['psf'], 'f', 'c.calib_mean', 'c.calib_err'), ck,
                 CASE WHEN layout IS NULL THEN '' ELSE ', COALESCE(o.chunk, skycat.chunk_id(f.ra, f."dec", $4, $5))' END,
                 CASE WHEN layout IS NULL THEN '' ELSE ' LEFT JOIN pg_temp.drp_tract_object o ON o.object_id = f.object_id' END)
    USING tract, r.poly_ra, r.poly_dec, layout.num_stripes, layout.num_sub_stripes;
  GET DIAGNOSTICS n_fs = ROW_COUNT;
  PERFORM set_config('work_mem', old_wm, true);

  EXECUTE format('INSERT INTO %1$I.source (source_id, object_id, tract, visit, detector, band, mjd, x, y, ra, "dec",
                    ra_err_arcsec, dec_err_arcsec, ra_dec_cov, psf_flux, psf_flux_err, calib_applied, calib_err_applied%4$s)
                  SELECT s.source_id, s.object_id, $1, s.visit, s.detector, s.band, s.mjd, s.x, s.y, s.ra, s."dec",
                         (s.cov).ra_err_arcsec, (s.cov).dec_err_arcsec, (s.cov).ra_dec_cov, %3$s,
                         s.calib_mean, s.calib_err%5$s
                    FROM (%2$s) s JOIN pg_temp.drp_tract_object o ON o.object_id = s.object_id
                   WHERE skycat.polygon_contains($2, $3, o.ra, o."dec")',
                 schema, format(sky_src, schema, tract, 'source', 'files_source'), calibrated, ck,
                 CASE WHEN layout IS NULL THEN '' ELSE ', o.chunk' END)
    USING tract, r.poly_ra, r.poly_dec;
  GET DIAGNOSTICS n_src = ROW_COUNT;

  EXECUTE format('INSERT INTO %1$I.dia_source (dia_source_id, tract, visit, detector, band, mjd, x, y, ra, "dec",
                    ra_err_arcsec, dec_err_arcsec, ra_dec_cov, psf_flux, psf_flux_err, calib_applied, calib_err_applied%4$s)
                  SELECT s.dia_source_id, $1, s.visit, s.detector, s.band, s.mjd, s.x, s.y, s.ra, s."dec",
                         (s.cov).ra_err_arcsec, (s.cov).dec_err_arcsec, (s.cov).ra_dec_cov, %3$s,
                         s.calib_mean, s.calib_err%5$s
                    FROM (%2$s) s
                   WHERE skycat.polygon_contains($2, $3, s.ra, s."dec")',
                 schema, format(sky_src, schema, tract, 'dia_source', 'files_dia_source'), calibrated, ck,
                 CASE WHEN layout IS NULL THEN '' ELSE ', skycat.chunk_id(s.ra, s."dec", $4, $5)' END)
    USING tract, r.poly_ra, r.poly_dec, layout.num_stripes, layout.num_sub_stripes;
  GET DIAGNOSTICS n_dia = ROW_COUNT;

  DROP TABLE pg_temp.drp_tract_calib, pg_temp.drp_tract_object;
  -- Fresh statistics for the staged objects, which drp_deduplicate_objects and the next
  -- tract's ingest join. Not for source, dia_source and forced_source: ANALYZE samples every
  -- partition of a table, so analysing them after each tract costs more with every tract
  -- loaded before (a release's ingest would be quadratic in its tracts; 76 s, cold, after four
  -- 24M-row tracts). Autovacuum analyses them as they grow, and
  -- drp_summarize_forced_sources analyses any forced_source stripe that never was.
  EXECUTE format('ANALYZE %I.object_staging', schema);
  EXECUTE format('UPDATE %I.tract SET n_calib = $2, n_object_staged = $3, n_source = $4, n_dia_source = $5,
                    n_forced_source = $6, ingested_at = now(), ingest_seconds = $7 WHERE tract = $1', schema)
    USING tract, n_calib, n_obj, n_src, n_dia, n_fs, extract(epoch FROM clock_timestamp() - t0);
  RAISE NOTICE 'skycat.drp_ingest_tract: tract % ingested in % s: % calibrations, % objects staged, % sources, % DIASources, % forced sources',
    tract, round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2), n_calib, n_obj, n_src, n_dia, n_fs;
  RETURN QUERY VALUES ('calib', n_calib), ('object_staging', n_obj), ('source', n_src),
                      ('dia_source', n_dia), ('forced_source', n_fs);
END $$;

-- Keep each object once: the copy from the tract whose inner region holds its position
-- (LSST isPrimary). object then holds exactly the primary staged objects: missing ones are
-- inserted, ones no longer staged as primary (a tract re-ingested with other content) are
-- deleted; objects already there keep their other columns, so re-running changes nothing.
CREATE FUNCTION drp_deduplicate_objects(schema name)
  RETURNS TABLE (staged bigint, kept bigint, dropped bigint, inserted bigint, deleted bigint)
  LANGUAGE plpgsql
  -- Bulk joins only: foreign scans are estimated at a few hundred rows, which would make the
  -- planner rescan a tract's file per row of a nested loop. JIT costs more than it saves here.
  SET enable_nestloop = off SET jit = off
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  n_ins bigint; n_del bigint; n_staged bigint; n_kept bigint;
  -- On a Citus cluster the object and its staged copies share a chunk: every statement below
  -- joins on it too and runs shard by shard on the workers.
  distributed boolean := skycat._drp_distributed(schema);
  ck text := CASE WHEN distributed THEN ', chunk' ELSE '' END;
  primary_staged text := format('%1$I.object_staging s JOIN %1$I.tract t ON t.tract = s.tract
                                  WHERE skycat.polygon_contains(t.poly_ra, t.poly_dec, s.ra, s."dec")', schema);
BEGIN
  PERFORM skycat._policy(schema, 'drp');
  EXECUTE format('DELETE FROM %I.object o WHERE NOT EXISTS (SELECT 1 FROM %s
                    AND s.object_id = o.object_id AND s."dec" = o."dec" AND s.tract = o.tract%s)',
                 schema, primary_staged, CASE WHEN distributed THEN ' AND s.chunk = o.chunk' ELSE '' END);
  GET DIAGNOSTICS n_del = ROW_COUNT;
  -- (In dec order on one node: the stripe partitions fill in sky order.)
  EXECUTE format('INSERT INTO %1$I.object (object_id, tract, ra, "dec"%2$s)
                    SELECT s.object_id, s.tract, s.ra, s."dec"%3$s FROM %4$s %5$s
                  ON CONFLICT (object_id, "dec"%2$s) DO NOTHING',
                 schema, ck, replace(ck, ', ', ', s.'), primary_staged,
                 CASE WHEN distributed THEN '' ELSE 'ORDER BY s."dec", s.ra' END);
  GET DIAGNOSTICS n_ins = ROW_COUNT;
  -- object now holds exactly the primary staged objects.
  EXECUTE format('SELECT count(*) FROM %I.object', schema) INTO n_kept;
  EXECUTE format('SELECT count(*) FROM %I.object_staging', schema) INTO n_staged;
  -- Planner statistics for what follows (joins on object in summaries, updates, exports).
  EXECUTE format('ANALYZE %I.object', schema);
  RAISE NOTICE 'skycat.drp_deduplicate_objects: % staged, % primary kept, % duplicates or outside every ingested tract dropped (% inserted, % deleted)',
    n_staged, n_kept, n_staged - n_kept, n_ins, n_del;
  RETURN QUERY SELECT n_staged, n_kept, n_staged - n_kept, n_ins, n_del;
END $$;

-- Add (nullable) Object columns for a later pipeline: no table rewrite.
CREATE FUNCTION drp_add_columns(schema name, names text[], types regtype[]) RETURNS int
  LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  i int;
  added int := 0;
BEGIN
  PERFORM skycat._policy(schema, 'drp');
  IF names IS NULL OR types IS NULL OR cardinality(names) <> cardinality(types) OR cardinality(names) = 0 THEN
    RAISE EXCEPTION 'skycat.drp_add_columns: names and types must be non-empty arrays of the same length' USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. cardinality(names) LOOP
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = format('%I.object', schema)::regclass
                 AND attname = names[i] AND NOT attisdropped) THEN
      CONTINUE;  -- already there: re-running adds nothing
    END IF;
    EXECUTE format('ALTER TABLE %I.object ADD COLUMN %I %s', schema, names[i], types[i]);
    added := added + 1;
  END LOOP;
  RETURN added;
END $$;

-- Fill Object columns from a relation (table or view) with an object_id column and columns
-- named like Object's: one UPDATE, so each object row is written once however many columns
-- the relation carries. Returns the objects updated; rows of `updates` naming no object are
-- reported (WARNING), never inserted: Object's row count is fixed after de-duplication.
CREATE FUNCTION drp_update_objects(schema name, updates regclass) RETURNS bigint
  LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  cols text[];
  bad text[];
  n bigint;
  unmatched bigint;
  dup bigint;
BEGIN
  PERFORM skycat._policy(schema, 'drp');
  SELECT array_agg(attname::text ORDER BY attnum) INTO cols FROM pg_attribute
   WHERE attrelid = updates AND attnum > 0 AND NOT attisdropped AND attname <> 'object_id';
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = updates AND attname = 'object_id' AND NOT attisdropped) THEN
    RAISE EXCEPTION 'skycat.drp_update_objects: % has no object_id column', updates USING ERRCODE = '42703';
  END IF;
  SELECT array_agg(c) INTO bad FROM unnest(cols) c
   WHERE c IN ('object_id', 'tract', 'ra', 'dec')
      OR NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = format('%I.object', schema)::regclass
                       AND attname = c AND NOT attisdropped);
  IF bad IS NOT NULL OR cols IS NULL THEN
    RAISE EXCEPTION 'skycat.drp_update_objects: columns % of % are not updatable columns of %.object (add them with skycat.drp_add_columns; object_id, tract, ra and dec are fixed)',
      COALESCE(bad, '{}'), updates, schema USING ERRCODE = '42703';
  END IF;
  -- An object named twice would get whichever row the join meets last: refuse instead.
  EXECUTE format('SELECT object_id FROM %s GROUP BY object_id HAVING count(*) > 1 LIMIT 1', updates) INTO dup;
  IF dup IS NOT NULL THEN
    RAISE EXCEPTION 'skycat.drp_update_objects: % has more than one row for object_id %', updates, dup
      USING ERRCODE = '22023', HINT = 'Give each object at most one row of updates.';
  END IF;
  EXECUTE format('UPDATE %I.object o SET (%s) = ROW(%s) FROM %s u WHERE o.object_id = u.object_id',
                 schema, (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) c),
                 (SELECT string_agg(format('u.%I', c), ', ') FROM unnest(cols) c), updates);
  GET DIAGNOSTICS n = ROW_COUNT;
  -- Each row names one object at most, so the rows not applied are the rest. (Counted so, not
  -- by an anti-join, which Citus cannot run between a coordinator table and a distributed one.)
  EXECUTE format('SELECT count(*) FROM %s', updates) INTO unmatched;
  unmatched := unmatched - n;
  IF unmatched > 0 THEN
    RAISE WARNING 'skycat.drp_update_objects: % rows of % name no object and were not applied', unmatched, updates;
  END IF;
  RETURN n;
END $$;

-- The summary rows of the forced sources of `source` (aliased f) that pass `filter`, by the
-- lc_stats aggregate, in the stream's columns: object_id, "dec", rows, then the summary columns
-- by name (drp_summary_columns 'names'). With `by_chunk` (Citus) chunk comes first and the
-- rows are grouped by it too, so that each shard is aggregated on its worker.
CREATE FUNCTION _drp_summary_by_aggregate(bands text[], source text, filter text, by_chunk boolean DEFAULT false)
  RETURNS text IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format('SELECT %1$ss.object_id, s."dec", %2$s AS rows, %3$s
                   FROM (SELECT %4$sobject_id, "dec", %5$s FROM %6$s f WHERE %7$s GROUP BY %4$sobject_id, "dec") s',
                CASE WHEN by_chunk THEN 's.chunk, ' ELSE '' END,
                skycat.drp_summary_columns('row_count', bands), skycat.drp_summary_columns('flatten', bands),
                CASE WHEN by_chunk THEN 'chunk, ' ELSE '' END,
                skycat.drp_summary_columns('aggregate', bands), source, filter)
$$;

-- The query of one stripe's summary stream: skycat._drp_summary_scan over block ranges of the
-- partition (unit_blocks each; by default ~32 MB, and at most 64 ranges, since planning a
-- UNION ALL of n function scans of ~120 columns takes memory growing faster than n: 1.3 GB
-- for 500), as a UNION ALL that PostgreSQL runs as a Parallel Append.
CREATE FUNCTION _drp_summary_stream(part regclass, bands text[], unit_blocks bigint DEFAULT NULL) RETURNS text
  STABLE PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  WITH b AS (SELECT pg_relation_size(part) / current_setting('block_size')::bigint AS blocks),
       u AS (SELECT blocks, COALESCE(unit_blocks, greatest(4096, ceil(blocks / 64.0)::bigint)) AS unit FROM b)
  SELECT string_agg(format('SELECT * FROM skycat._drp_summary_scan(%L::regclass, %L::text[], %s, %s) AS t(%s)',
                           part::text, bands, lo, lo + u.unit, skycat.drp_summary_columns('scan', bands)),
                    ' UNION ALL ' ORDER BY lo)
    FROM u, generate_series(0, greatest(u.blocks - 1, 0), u.unit) lo
$$;

-- Why an object stripe partition cannot be rebuilt by _drp_object_rebuild without losing
-- something a user attached to that partition alone (NULL when it can be): grants on it or its
-- columns, row-level security, its own triggers or indexes, a publication, a replica identity,
-- identity or generated columns. Whatever comes from the parent table (its indexes, row
-- triggers, foreign keys, grants) the rebuilt partition gets back on ATTACH.
CREATE FUNCTION _drp_rebuild_refusal(opart regclass) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT CASE
    WHEN c.relkind <> 'r' OR NOT c.relispartition THEN 'it is not a plain partition'
    WHEN c.relacl IS NOT NULL AND c.relacl <> acldefault('r', c.relowner) THEN 'it has grants of its own'
    WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND (cardinality(a.attacl) > 0 OR a.attidentity <> '' OR a.attgenerated <> ''))
      THEN 'it has column grants, identity or generated columns'
    WHEN c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) THEN 'it has row-level security'
    WHEN c.relreplident <> 'd' THEN 'it has a replica identity of its own'
    WHEN EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgparentid = 0)
      THEN 'it has triggers of its own'
    WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                    AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid))
      THEN 'it has indexes of its own'
    WHEN EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prrelid = c.oid) THEN 'it is in a publication'
  END
    FROM pg_class c WHERE c.oid = opart
$$;

-- Write object stripe partition `opart` anew with its summary columns (the policy's bands)
-- from pg_temp.drp_summary, and swap it in for the old one: one INSERT of each row into a new
-- table, rather than an UPDATE that writes a second version of every (~1 kB) row, dirties
-- every old page and leaves them all dead. Columns that are not summary columns, and the
-- summary columns of an object with no summary row, keep their values. The new table takes
-- the old one's name, owner, options, comment, tablespace and index names; ATTACH gives it
-- the parent's indexes, row triggers and foreign keys. DETACH and ATTACH lock the parent
-- (ACCESS EXCLUSIVE) until the transaction ends. Returns the objects given a summary.
CREATE FUNCTION _drp_object_rebuild(opart regclass, bands text[]) RETURNS bigint
  STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  c pg_class;
  ns name;
  parent regclass;
  bound text;
  new_name name;
  summary text[] := string_to_array(replace(skycat.drp_summary_columns('names', bands), '"', ''), ', ');
  cols text;
  exprs text;
  idx record;
  n bigint;
BEGIN
  SELECT * INTO c FROM pg_class WHERE oid = opart;
  ns := (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace);
  parent := (SELECT inhparent FROM pg_inherits WHERE inhrelid = opart);
  bound := pg_get_expr(c.relpartbound, c.oid);
  new_name := left(c.relname, 50) || '_rebuild';
  SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
         string_agg(CASE WHEN a.attname::text = ANY (summary)
                         THEN format('CASE WHEN s.object_id IS NULL THEN o.%1$I ELSE s.%1$I END', a.attname)
                         ELSE format('o.%I', a.attname) END, ', ' ORDER BY a.attnum)
    INTO cols, exprs
    FROM pg_attribute a WHERE a.attrelid = opart AND a.attnum > 0 AND NOT a.attisdropped;
  EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES)%s%s', ns, new_name, opart,
                 CASE WHEN c.reloptions IS NULL THEN ''
                      ELSE format(' WITH (%s)', (SELECT string_agg(format('%s = %L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', ')
                                                   FROM unnest(c.reloptions) o)) END,
                 CASE WHEN c.reltablespace = 0 THEN ''
                      ELSE format(' TABLESPACE %I', (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace)) END);
  IF (SELECT relowner FROM pg_class WHERE oid = format('%I.%I', ns, new_name)::regclass) <> c.relowner THEN
    EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', ns, new_name, (SELECT rolname FROM pg_roles WHERE oid = c.relowner));
  END IF;
  IF obj_description(opart, 'pg_class') IS NOT NULL THEN
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', ns, new_name, obj_description(opart, 'pg_class'));
  END IF;
  -- The old rows in their storage order (the summary is the hash join's inner side).
  EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %s o LEFT JOIN pg_temp.drp_summary s
                    ON s.object_id = o.object_id AND s."dec" = o."dec"', ns, new_name, cols, exprs, opart);
  EXECUTE format('SELECT count(*) FROM pg_temp.drp_summary s JOIN %I.%I o ON o.object_id = s.object_id AND o."dec" = s."dec"',
                 ns, new_name) INTO n;
  -- The old partition's index names, by the parent index each is attached to.
  CREATE TEMP TABLE drp_index_names ON COMMIT DROP AS
    SELECT h.inhparent AS parent_index, i.indexrelid::regclass::text AS old_name
      FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid WHERE i.indrelid = opart;
  EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, opart);
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I %s', parent, ns, new_name, bound);
  EXECUTE format('DROP TABLE %s', opart);
  EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', ns, new_name, c.relname);
  FOR idx IN SELECT i.indexrelid::regclass AS new_index, d.old_name
               FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid
               JOIN pg_temp.drp_index_names d ON d.parent_index = h.inhparent
              WHERE i.indrelid = format('%I.%I', ns, c.relname)::regclass LOOP
    EXECUTE format('ALTER INDEX %s RENAME TO %I', idx.new_index, (parse_ident(idx.old_name))[cardinality(parse_ident(idx.old_name))]);
  END LOOP;
  DROP TABLE pg_temp.drp_index_names;
  RETURN n;
END $$;

-- Summarise the forced sources of one stripe partition into object. The partition is stored
-- object by object (drp_ingest_tract writes each tract's forced sources ordered by object, band
-- and time), so its summaries are read as a stream: skycat._drp_summary_scan over block ranges
-- of the partition, one call per range, as a UNION ALL that PostgreSQL runs as a Parallel
-- Append (each process finalises its own objects; CREATE TABLE AS may use parallel workers, an
-- UPDATE never does). An object whose rows are not adjacent (moved by drp_apply_recalibration's
-- UPDATE, or re-ingested into freed space) comes out of the scan more than once: those objects
-- are summarised again by the lc_stats aggregate. Then the stripe's object partition is
-- written anew with the summaries and swapped in (_drp_object_rebuild), or, with the policy's
-- summary_write = 'update' or when the partition cannot be rebuilt, one UPDATE writes each
-- summarised object's row. With `only_objects` (a relation with object_id), just those
-- objects, by the aggregate and an UPDATE. Returns the objects updated, the forced sources
-- summarised (of the policy's bands) and the objects the aggregate summarised.
CREATE FUNCTION drp_summarize_partition(schema name, part regclass, dec_lo float8, dec_hi float8,
                                        only_objects regclass DEFAULT NULL,
                                        OUT objects bigint, OUT rows bigint, OUT by_aggregate bigint)
  LANGUAGE plpgsql
  -- Bulk joins only: foreign scans are estimated at a few hundred rows, which would make the
  -- planner rescan a tract's file per row of a nested loop. JIT costs more than it saves here.
  SET enable_nestloop = off SET jit = off
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  p jsonb := skycat._policy(schema, 'drp');
  bands text[] := (p ->> 'bands')::text[];
  old_wm text;
  opart regclass;
  why text;
BEGIN
  -- The aggregate holds every light curve of its objects: give it the policy's work_mem
  -- (unless the session has more) so that it does not spill to disk.
  old_wm := skycat._raise_work_mem(p ->> 'work_mem');
  PERFORM skycat._drop_temp_tables('{drp_summary, drp_split}');
  IF only_objects IS NOT NULL THEN
    EXECUTE 'CREATE TEMP TABLE drp_summary AS '
         || skycat._drp_summary_by_aggregate(bands, part::text, format('f.object_id IN (SELECT object_id FROM %s)', only_objects));
    by_aggregate := (SELECT count(*) FROM pg_temp.drp_summary);
  ELSE
    EXECUTE 'CREATE TEMP TABLE drp_summary AS ' || skycat._drp_summary_stream(part, bands);
    -- Objects met more than once (rows not adjacent): summarised again by the aggregate.
    CREATE TEMP TABLE drp_split AS
      SELECT s.object_id FROM pg_temp.drp_summary s GROUP BY s.object_id, s."dec" HAVING count(*) > 1;
    by_aggregate := (SELECT count(*) FROM pg_temp.drp_split);
    IF by_aggregate > 0 THEN
      DELETE FROM pg_temp.drp_summary s USING pg_temp.drp_split d WHERE d.object_id = s.object_id;
      ANALYZE pg_temp.drp_split;
      EXECUTE 'INSERT INTO pg_temp.drp_summary '
           || skycat._drp_summary_by_aggregate(bands, part::text, 'f.object_id IN (SELECT object_id FROM pg_temp.drp_split)');
      RAISE NOTICE 'skycat.drp_summarize_forced_sources: % objects of % are not stored together (rows moved by an update or a re-ingest): summarised by the aggregate',
        by_aggregate, part;
    END IF;
    DROP TABLE pg_temp.drp_split;
  END IF;
  PERFORM set_config('work_mem', old_wm, true);
  IF only_objects IS NULL AND COALESCE(p ->> 'summary_write', 'rebuild') = 'rebuild' THEN
    opart := (SELECT d.part FROM skycat.drp_stripes(schema, 'object') d WHERE d.dec_lo = drp_summarize_partition.dec_lo);
    why := CASE WHEN opart IS NULL THEN 'object has no partition for this stripe' ELSE skycat._drp_rebuild_refusal(opart) END;
    IF why IS NULL THEN
      BEGIN
        objects := skycat._drp_object_rebuild(opart, bands);
      EXCEPTION WHEN insufficient_privilege OR lock_not_available OR dependent_objects_still_exist OR object_in_use THEN
        -- Not the owner, a lock_timeout while other sessions use object, a view on the
        -- partition: nothing was changed (the block's work is undone); update instead.
        why := SQLERRM;
      END;
    END IF;
    IF why IS NOT NULL THEN
      RAISE NOTICE 'skycat.drp_summarize_forced_sources: % is updated in place, not rebuilt: %', COALESCE(opart::text, 'object'), why;
    END IF;
  END IF;
  IF objects IS NULL THEN
    EXECUTE format('UPDATE %I.object o SET (%s) = ROW(%s) FROM pg_temp.drp_summary s
                     WHERE o.object_id = s.object_id AND o."dec" = s."dec" AND o."dec" >= $1 AND o."dec" < $2',
                   schema, skycat.drp_summary_columns('names', bands), skycat.drp_summary_columns('values', bands))
      USING dec_lo, dec_hi;
    GET DIAGNOSTICS objects = ROW_COUNT;
  END IF;
  rows := (SELECT COALESCE(sum(s.rows), 0) FROM pg_temp.drp_summary s);
  DROP TABLE pg_temp.drp_summary;
END $$;

-- The stripe partitions of a DRP table with their bounds and estimated rows, south to north:
-- the stripes of the policy's height (skycat.stripe_bounds) and the partitions
-- create_stripe_partitions made for them. est_rows is the planner's estimate (rows per page at
-- the last ANALYZE times the pages now): 0 for a partition with no pages, -1 for one with pages
-- that was never analysed.
CREATE FUNCTION drp_stripes(schema name, tbl text)
  RETURNS TABLE (part regclass, dec_lo float8, dec_hi float8, est_rows bigint)
  STABLE LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  WITH b AS (SELECT s.stripe, s.dec_min, s.dec_max, count(*) OVER () AS n
               FROM skycat.stripe_bounds((skycat._policy(schema, 'drp') ->> 'stripe_height_deg')::float8) s)
  SELECT c.oid::regclass, b.dec_min, b.dec_max,
         CASE WHEN p.pages = 0 THEN 0
              WHEN c.reltuples > 0 AND c.relpages > 0 THEN round(c.reltuples / c.relpages * p.pages)::bigint
              ELSE -1 END
    FROM b JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', schema, skycat.stripe_partition_name(tbl, b.stripe, b.n::int))),
         LATERAL (SELECT pg_relation_size(c.oid) / current_setting('block_size')::int AS pages) p
   ORDER BY b.dec_min
$$;

-- Summarise forced_source into object's per-band columns: one full scan, stripe by stripe
-- (on a Citus cluster: shard group by shard group, on the workers), each committed (with
-- `commit`) and recorded in <schema>.progress, so another session can watch it and an
-- interrupted run can simply be called again (every unit's result is recomputed from
-- scratch: re-running changes nothing).
--
-- PostgreSQL forbids COMMIT in a procedure with a SET clause, so instead of "SET search_path"
-- the procedure fixes its search_path itself with set_config(..., true) at the start of every
-- transaction it runs (the first, and after each COMMIT), and gives the caller's back at the
-- end; every name is also qualified.
CREATE PROCEDURE drp_summarize_forced_sources(schema name, commit_stripes boolean DEFAULT true)
  LANGUAGE plpgsql AS $$
DECLARE
  s record;
  t0 timestamptz := pg_catalog.clock_timestamp();
  total bigint;
  done bigint := 0;
  rows_done bigint;
  rows_total bigint;
  r record;
  n_obj bigint := 0;
  n_rows bigint := 0;
  parts regclass[] := '{}';
  los float8[] := '{}';
  his float8[] := '{}';
  ests bigint[] := '{}';
  k int;
  caller_path text := pg_catalog.current_setting('search_path');
  elapsed float8;
  -- On a Citus cluster: the units are groups of shards (one shard per worker each), given as
  -- the chunks they hold, rather than stripes.
  distributed boolean;
  groups text[] := '{}';   -- each unit's chunks (int[] as text: the units differ in length)
  units text[] := '{}';    -- each unit's name, for the progress
BEGIN
  -- The procedure's own "SET search_path", for this transaction (see above).
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog, skycat, pg_temp', true);
  PERFORM skycat._policy(schema, 'drp');
  distributed := skycat._drp_distributed(schema);
  IF distributed THEN
    FOR s IN SELECT * FROM skycat._drp_shard_groups(schema) LOOP
      groups := groups || s.chunks::text; ests := ests || s.est_rows;
      units := units || pg_catalog.format('shard group %s (%s chunks)', s.shard_group, pg_catalog.cardinality(s.chunks));
    END LOOP;
  ELSE
    -- The stripes' sizes in pages measure the work: the percentages count pages done, and
    -- the rows to expect are the pages times the rows per page met so far (no ANALYZE of
    -- every stripe first, which on a fresh release took seconds before any work).
    FOR s IN SELECT * FROM skycat.drp_stripes(schema, 'forced_source') LOOP
      parts := parts || s.part; los := los || s.dec_lo; his := his || s.dec_hi;
      ests := ests || pg_catalog.pg_relation_size(s.part) / pg_catalog.current_setting('block_size')::bigint;
      units := units || pg_catalog.format('stripe [%s, %s)', s.dec_lo, s.dec_hi);
    END LOOP;
  END IF;
  SELECT COALESCE(pg_catalog.sum(e), 0) INTO total FROM pg_catalog.unnest(ests) e;
  EXECUTE pg_catalog.format('DELETE FROM %I.progress WHERE step = $1', schema) USING 'summarize_forced_sources';
  FOR k IN 1 .. pg_catalog.cardinality(ests) LOOP
    CONTINUE WHEN ests[k] = 0;
    IF distributed THEN
      r := skycat._drp_summarize_chunks(schema, groups[k]::int[]);
    ELSE
      r := skycat.drp_summarize_partition(schema, parts[k], los[k], his[k]);
    END IF;
    n_obj := n_obj + r.objects;
    n_rows := n_rows + r.rows;
    done := done + ests[k];
    -- Rows done and expected: on one node the units are measured in pages (above), scaled by
    -- the rows per page so far; on Citus they are row estimates already.
    rows_done := CASE WHEN distributed THEN done ELSE n_rows END;
    rows_total := CASE WHEN distributed THEN total ELSE pg_catalog.round(total::numeric * n_rows / GREATEST(done, 1))::bigint END;
    EXECUTE pg_catalog.format('INSERT INTO %I.progress (step, part, rows_done, rows_total, seconds) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (step, part) DO UPDATE SET rows_done = EXCLUDED.rows_done, rows_total = EXCLUDED.rows_total,
                      seconds = EXCLUDED.seconds, updated_at = pg_catalog.now()', schema)
      USING 'summarize_forced_sources', units[k], rows_done, rows_total,
            EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t0);
    elapsed := EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t0);
    RAISE NOTICE 'skycat.drp_summarize_forced_sources: % %% (about % of % rows), %: % forced sources, % objects, % s, % rows/s, about % s left',
      pg_catalog.round(100.0 * done / GREATEST(total, 1), 1), rows_done, rows_total, units[k], r.rows, r.objects,
      pg_catalog.round(elapsed::numeric, 1), pg_catalog.round((rows_done / GREATEST(elapsed, 1e-3))::numeric),
      pg_catalog.round((GREATEST(total - done, 0) / GREATEST(done / GREATEST(elapsed, 1e-3), 1e-9))::numeric);
    IF commit_stripes THEN
      COMMIT;
      PERFORM pg_catalog.set_config('search_path', 'pg_catalog, skycat, pg_temp', true);
    END IF;
  END LOOP;
  -- Statistics of the key columns, which the next steps join on (the rebuilt stripes have
  -- none): 0.6 s where all 118 columns took 5.5 s (50M forced sources). Autovacuum analyses
  -- the summary columns of each stripe; only a manual ANALYZE of object gives the parent
  -- table (whole-table) statistics of them.
  EXECUTE pg_catalog.format('ANALYZE %I.object (object_id, tract, ra, "dec")', schema);
  RAISE NOTICE 'skycat.drp_summarize_forced_sources: % objects summarised from % forced sources in % s',
    n_obj, n_rows, pg_catalog.round(EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t0)::numeric, 1);
  -- A caller's open transaction (commit_stripes false) keeps its own search_path afterwards.
  PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;

-- Re-apply new calibrations (a table with visit, detector, calib_mean, calib_err) to source,
-- dia_source and forced_source, in place: flux and error via skycat.recalibrate /
-- recalibrate_err from the stored calib_applied. Rows whose stored calibration already is the
-- new one are not touched, so applying the same table twice changes nothing. Then only the
-- objects with a recalibrated forced source are summarised again. One transaction.
CREATE FUNCTION drp_apply_recalibration(schema name, new_calib regclass)
  RETURNS TABLE (calibs bigint, sources bigint, dia_sources bigint, forced_sources bigint, objects bigint)
  LANGUAGE plpgsql
  -- Bulk joins only: foreign scans are estimated at a few hundred rows, which would make the
  -- planner rescan a tract's file per row of a nested loop. JIT costs more than it saves here.
  SET enable_nestloop = off SET jit = off
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  n_cal bigint; n_src bigint; n_dia bigint; n_fs bigint; n_obj bigint := 0;
  tbl text;
  n bigint;
  s record;
  sets text := skycat._recalibration_sets(ARRAY['psf'], 't', 'c.calib_mean', 'COALESCE(c.calib_err, 0)');
  changed text := skycat._calibration_changed('t', 'c.calib_mean', 'COALESCE(c.calib_err, 0)');
  -- On a Citus cluster the new calibrations are first copied to every node (the reference
  -- table recalibration_calib), and the objects to summarise again are kept next to their
  -- rows (recalibrated_object): every statement then runs on the workers.
  distributed boolean := skycat._drp_distributed(schema);
  calib_src text := new_calib::text;
  chunks int[];
BEGIN
  PERFORM skycat._policy(schema, 'drp');
  IF (SELECT count(*) FROM pg_attribute WHERE attrelid = new_calib AND NOT attisdropped
        AND attname IN ('visit', 'detector', 'calib_mean', 'calib_err')) < 4 THEN
    RAISE EXCEPTION 'skycat.drp_apply_recalibration: % must have columns visit, detector, calib_mean, calib_err', new_calib
      USING ERRCODE = '42703';
  END IF;
  -- NaN compares above every number in PostgreSQL (NaN > 0 is true): test the finite range.
  EXECUTE format('SELECT count(*) FROM %s c
                   WHERE NOT (c.calib_mean > 0 AND c.calib_mean < ''Infinity'') OR c.calib_mean IS NULL
                      OR NOT (COALESCE(c.calib_err, 0) >= 0 AND COALESCE(c.calib_err, 0) < ''Infinity'')', new_calib) INTO n;
  IF n > 0 THEN
    RAISE EXCEPTION 'skycat.drp_apply_recalibration: % has % rows whose calib_mean is not a finite number > 0 or whose calib_err is not a finite number >= 0',
      new_calib, n USING ERRCODE = '22023';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('skycat.drp.' || schema), -1);

  -- The objects whose light curves change, before their rows do.
  IF distributed THEN
    calib_src := format('%I.recalibration_calib', schema);
    EXECUTE format('DELETE FROM %1$s; DELETE FROM %2$I.recalibrated_object;
                    INSERT INTO %1$s SELECT visit, detector, calib_mean, COALESCE(calib_err, 0) FROM %3$s',
                   calib_src, schema, new_calib);
    EXECUTE format('INSERT INTO %1$I.recalibrated_object
                      SELECT DISTINCT t.chunk, t.object_id FROM %1$I.forced_source t JOIN %2$s c ON c.visit = t.visit AND c.detector = t.detector
                       WHERE %3$s', schema, calib_src, changed);
  ELSE
    PERFORM skycat._drop_temp_tables('{drp_affected}');
    EXECUTE format('CREATE TEMP TABLE drp_affected ON COMMIT DROP AS
                      SELECT DISTINCT t.object_id FROM %I.forced_source t JOIN %s c ON c.visit = t.visit AND c.detector = t.detector
                       WHERE %s', schema, new_calib, changed);
    ALTER TABLE pg_temp.drp_affected ADD PRIMARY KEY (object_id);
    ANALYZE pg_temp.drp_affected;
  END IF;

  FOREACH tbl IN ARRAY ARRAY['source', 'dia_source', 'forced_source'] LOOP
    EXECUTE format('UPDATE %I.%I t SET %s FROM %s c WHERE c.visit = t.visit AND c.detector = t.detector AND %s',
                   schema, tbl, sets, calib_src, changed);
    GET DIAGNOSTICS n = ROW_COUNT;
    CASE tbl WHEN 'source' THEN n_src := n; WHEN 'dia_source' THEN n_dia := n; ELSE n_fs := n; END CASE;
  END LOOP;
  EXECUTE format('UPDATE %I.calib k SET calib_mean = c.calib_mean, calib_err = COALESCE(c.calib_err, 0) FROM %s c
                   WHERE c.visit = k.visit AND c.detector = k.detector
                     AND (k.calib_mean IS DISTINCT FROM c.calib_mean OR k.calib_err IS DISTINCT FROM COALESCE(c.calib_err, 0))',
                 schema, calib_src);
  GET DIAGNOSTICS n_cal = ROW_COUNT;

  IF distributed THEN
    EXECUTE format('SELECT array_agg(DISTINCT chunk) FROM %I.recalibrated_object', schema) INTO chunks;
    IF chunks IS NOT NULL THEN
      n_obj := (skycat._drp_summarize_chunks(schema, chunks, true)).objects;
    END IF;
  ELSE
    IF EXISTS (SELECT 1 FROM pg_temp.drp_affected) THEN
      FOR s IN SELECT * FROM skycat.drp_stripes(schema, 'forced_source') LOOP
        n_obj := n_obj + (skycat.drp_summarize_partition(schema, s.part, s.dec_lo, s.dec_hi, 'pg_temp.drp_affected'::regclass)).objects;
      END LOOP;
    END IF;
    DROP TABLE pg_temp.drp_affected;
  END IF;
  EXECUTE format('INSERT INTO %I.recalibration_log (calib_table, n_calib, n_source, n_dia_source, n_forced_source, n_objects, seconds)
                  VALUES ($1, $2, $3, $4, $5, $6, $7)', schema)
    USING new_calib::text, n_cal, n_src, n_dia, n_fs, n_obj, extract(epoch FROM clock_timestamp() - t0);
  RAISE NOTICE 'skycat.drp_apply_recalibration: % calibrations changed: % sources, % DIASources, % forced sources recalibrated, % objects summarised again',
    n_cal, n_src, n_dia, n_fs, n_obj;
  RETURN QUERY SELECT n_cal, n_src, n_dia, n_fs, n_obj;
END $$;

-- Export a table for the final, write-once query database (Qserv): one Parquet file per
-- chunk, DIR/chunk_<id>.parquet, every row with "chunkId" and "subChunkId" (lsst sphgeom
-- Chunker, the same as skycat.chunk_id / sub_chunk_id). object is the director table: it is
-- placed by its own position, and its overlap rows (rows of neighbouring chunks within
-- overlap_deg of the chunk, by skycat.chunks_in_circle) go to DIR/chunk_<id>_overlap.parquet.
-- source and forced_source are dependent tables, placed by their object's position (no
-- overlap files). DIR must not exist or be empty: an export is never overwritten.
CREATE FUNCTION drp_export(schema name, table_name text, dir text, num_stripes int DEFAULT 340,
                           num_sub_stripes int DEFAULT 3, overlap_deg float8 DEFAULT 0.01667)
  RETURNS TABLE (chunk_id int, rows bigint, overlap_rows bigint)
  LANGUAGE plpgsql
  -- Bulk joins only: foreign scans are estimated at a few hundred rows, which would make the
  -- planner rescan a tract's file per row of a nested loop. JIT costs more than it saves here.
  SET enable_nestloop = off SET jit = off
  SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  c int;
  n bigint;
  n_ov bigint;
  n_total bigint := 0;
  n_files int := 0;
  missing bigint;
  -- On a Citus cluster a row and its object share a chunk: joined on it, Citus joins them on the
  -- workers. The rows then come to the coordinator, which writes the files.
  same_chunk text := CASE WHEN skycat._drp_distributed(schema) THEN ' AND o.chunk = t.chunk' ELSE '' END;
BEGIN
  PERFORM skycat._policy(schema, 'drp');
  IF table_name IS NULL OR table_name NOT IN ('object', 'source', 'forced_source') THEN
    RAISE EXCEPTION 'skycat.drp_export: table_name must be object (director), source or forced_source (dependent), got %', table_name
      USING ERRCODE = '22023';
  END IF;
  IF dir IS NULL OR left(dir, 1) <> '/' OR dir ~ '(^|/)\.\.(/|$)' THEN
    RAISE EXCEPTION 'skycat.drp_export: dir must be an absolute server directory without "..", got %', dir USING ERRCODE = '22023';
  END IF;
  IF overlap_deg IS NULL OR NOT (overlap_deg >= 0 AND overlap_deg <= 10) THEN
    RAISE EXCEPTION 'skycat.drp_export: overlap_deg must be in [0, 10] degrees, got %', overlap_deg USING ERRCODE = '22023';
  END IF;
  PERFORM skycat.chunk_id(0, 0, num_stripes, num_sub_stripes);  -- validates the chunking
  IF EXISTS (SELECT 1 FROM pg_ls_dir(dir, true, false)) THEN
    RAISE EXCEPTION 'skycat.drp_export: % is not empty; an export is write-once (export to a new directory)', dir
      USING ERRCODE = '55000';
  END IF;

  PERFORM skycat._drop_temp_tables('{drp_export}');
  IF table_name = 'object' THEN
    EXECUTE format('CREATE TEMP TABLE drp_export AS
                      SELECT skycat.chunk_id(t.ra, t."dec", $1, $2) AS "chunkId",
                             skycat.sub_chunk_id(t.ra, t."dec", $1, $2) AS "subChunkId", t.*
                        FROM %I.object t ORDER BY 1, 2, t.object_id', schema) USING num_stripes, num_sub_stripes;
  ELSE
    -- An anti-join (hashed), not a per-row probe of every object partition's primary key.
    EXECUTE format('SELECT count(*) FROM %1$I.%2$I t LEFT JOIN %1$I.object o ON o.object_id = t.object_id%3$s
                     WHERE o.object_id IS NULL', schema, table_name, same_chunk)
      INTO missing;
    IF missing > 0 THEN
      RAISE EXCEPTION 'skycat.drp_export: % rows of %.% have no object in %.object (run skycat.drp_deduplicate_objects first)',
        missing, schema, table_name, schema USING ERRCODE = '23503';
    END IF;
    EXECUTE format('CREATE TEMP TABLE drp_export AS
                      SELECT skycat.chunk_id(o.ra, o."dec", $1, $2) AS "chunkId",
                             skycat.sub_chunk_id(o.ra, o."dec", $1, $2) AS "subChunkId", t.*
                        FROM %1$I.%2$I t JOIN %1$I.object o ON o.object_id = t.object_id%3$s ORDER BY 1, 2, t.object_id, %4$s',
                   schema, table_name, same_chunk,
                   -- each row's key: the files are the same whatever plan produced the rows
                   CASE table_name WHEN 'source' THEN 't.source_id' ELSE 't.visit, t.detector' END)
      USING num_stripes, num_sub_stripes;
  END IF;
  IF same_chunk <> '' THEN
    ALTER TABLE pg_temp.drp_export DROP COLUMN chunk;   -- the cluster's own column: not exported
  END IF;
  CREATE INDEX ON pg_temp.drp_export ("chunkId");
  ANALYZE pg_temp.drp_export;

  PERFORM skycat._drop_temp_tables('{drp_overlap}');
  CREATE TEMP TABLE drp_overlap (target_chunk int, LIKE pg_temp.drp_export);
  IF table_name = 'object' AND overlap_deg > 0 THEN
    EXECUTE 'INSERT INTO pg_temp.drp_overlap
               SELECT k.chunk, e.* FROM pg_temp.drp_export e,
                      unnest(skycat.chunks_in_circle(e.ra, e."dec", $1 * 3600, $2, $3)) AS k(chunk)
                WHERE k.chunk <> e."chunkId"
                ORDER BY 1, e."chunkId", e."subChunkId", e.object_id'
      USING overlap_deg, num_stripes, num_sub_stripes;
  END IF;
  CREATE INDEX ON pg_temp.drp_overlap (target_chunk);
  ANALYZE pg_temp.drp_overlap;

  EXECUTE format('DELETE FROM %I.export_log WHERE table_name = $1', schema) USING table_name;
  FOR c IN SELECT DISTINCT x FROM (SELECT "chunkId" AS x FROM pg_temp.drp_export
                                   UNION SELECT target_chunk FROM pg_temp.drp_overlap) u ORDER BY 1 LOOP
    n := 0;
    n_ov := 0;
    IF EXISTS (SELECT 1 FROM pg_temp.drp_export WHERE "chunkId" = c) THEN
      n := skycat.write_parquet(format('SELECT * FROM pg_temp.drp_export WHERE "chunkId" = %s', c),
                                format('%s/chunk_%s.parquet', rtrim(dir, '/'), c));
      n_files := n_files + 1;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_temp.drp_overlap WHERE target_chunk = c) THEN
      n_ov := skycat.write_parquet(
        format('SELECT "chunkId", "subChunkId", %s FROM pg_temp.drp_overlap WHERE target_chunk = %s',
               (SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum) FROM pg_attribute
                 WHERE attrelid = 'pg_temp.drp_export'::regclass AND attnum > 2 AND NOT attisdropped), c),
        format('%s/chunk_%s_overlap.parquet', rtrim(dir, '/'), c));
      n_files := n_files + 1;
    END IF;
    n_total := n_total + n;
    EXECUTE format('INSERT INTO %I.export_log (table_name, dir, chunk_id, rows, overlap_rows) VALUES ($1, $2, $3, $4, $5)', schema)
      USING table_name, dir, c, n, n_ov;
    chunk_id := c; rows := n; overlap_rows := n_ov;
    RETURN NEXT;
  END LOOP;
  DROP TABLE pg_temp.drp_export;
  DROP TABLE pg_temp.drp_overlap;
  RAISE NOTICE 'skycat.drp_export: %.% -> % rows in % files under % in % s', schema, table_name, n_total, n_files, dir,
    round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
END $$;
