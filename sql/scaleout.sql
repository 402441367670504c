-- Scale-out on a Citus cluster (docs/scale-out.md): sky tables distributed by Qserv chunk,
-- their margins, and the cross-match of two distributed sky tables chunk by chunk on the
-- workers. Orchestration only: chunk ids, margins and matching are skycat's C functions.
-- Citus's functions (create_distributed_table ...) live in pg_catalog.

-- The distributed sky tables: how each is keyed and partitioned, and its margin. (Each is
-- distributed by its column `chunk`.)
CREATE TABLE sky_tables (
    table_name       text    PRIMARY KEY,    -- schema-qualified
    id_column        name    NOT NULL,
    ra_column        name    NOT NULL,
    dec_column       name    NOT NULL,
    num_stripes      int     NOT NULL,
    num_sub_stripes  int     NOT NULL,
    parent           text,                   -- rows follow this table's chunks (NULL: their own position's)
    margin_table     text,
    margin_arcsec    float8
);
COMMENT ON TABLE sky_tables IS
  'Sky tables distributed by skycat.distribute_sky_table: keys, chunk layout and margins.';
SELECT pg_catalog.pg_extension_config_dump('sky_tables', '');
-- Every role may distribute its tables: a row is visible and writable to the roles that may
-- write its table.
ALTER TABLE sky_tables ENABLE ROW LEVEL SECURITY;
CREATE POLICY sky_tables_writers ON sky_tables
  USING (pg_catalog.has_table_privilege(pg_catalog.to_regclass(table_name), 'INSERT'))
  WITH CHECK (pg_catalog.has_table_privilege(pg_catalog.to_regclass(table_name), 'INSERT'));
GRANT SELECT, INSERT, UPDATE, DELETE ON sky_tables TO PUBLIC;

-- 55000 unless Citus is installed in this database.
CREATE FUNCTION _require_citus(caller text) RETURNS void
  STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'skycat.%: Citus is not installed in this database', caller
      USING ERRCODE = '55000', HINT = 'CREATE EXTENSION citus (docs/scale-out.md)';
  END IF;
END
$$;

-- The registry row of a distributed sky table; 22023 when the table is not one.
CREATE FUNCTION _sky_table(tbl regclass, caller text) RETURNS sky_tables
  STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  t skycat.sky_tables;
BEGIN
  SELECT * INTO t FROM skycat.sky_tables s WHERE s.table_name = skycat._qualified(tbl);
  -- (A row of a table dropped and created again under the same name is not this table.)
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = tbl) THEN
    RAISE EXCEPTION 'skycat.%: % is not a distributed sky table', caller, tbl
      USING ERRCODE = '22023', HINT = 'distribute it with skycat.distribute_sky_table';
  END IF;
  RETURN t;
END
$$;

-- Records a distributed sky table, replacing the row a dropped table of the same name left.
CREATE FUNCTION _register_sky_table(t sky_tables) RETURNS void
  VOLATILE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  INSERT INTO skycat.sky_tables VALUES (t.*)
  ON CONFLICT (table_name) DO UPDATE SET id_column = EXCLUDED.id_column, ra_column = EXCLUDED.ra_column,
    dec_column = EXCLUDED.dec_column, num_stripes = EXCLUDED.num_stripes,
    num_sub_stripes = EXCLUDED.num_sub_stripes, parent = EXCLUDED.parent, margin_table = NULL, margin_arcsec = NULL
$$;

-- A table's schema-qualified, quoted name.
CREATE FUNCTION _qualified(tbl regclass) RETURNS text
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = tbl
$$;

-- The type of column `col` of `tbl`; NULL when it has none.
CREATE FUNCTION _column_type(tbl regclass, col name) RETURNS regtype
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT a.atttypid::regtype FROM pg_attribute a
   WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- 42703 unless `tbl` has column `col` (of one of `types`, when given).
CREATE FUNCTION _require_column(tbl regclass, col name, types regtype[], caller text) RETURNS void
  STABLE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  t regtype := skycat._column_type(tbl, col);
BEGIN
  IF t IS NULL THEN
    RAISE EXCEPTION 'skycat.%: table % has no column %', caller, tbl, quote_ident(col) USING ERRCODE = '42703';
  END IF;
  IF types IS NOT NULL AND NOT t = ANY (types) THEN
    RAISE EXCEPTION 'skycat.%: column % of % is %, expected one of %', caller, quote_ident(col), tbl, t, types
      USING ERRCODE = '42804';
  END IF;
END
$$;

-- Citus enforces a primary key or unique constraint only shard by shard, so it must hold the
-- distribution column: each one of `tbl` without `chunk` is rebuilt as (its columns, chunk).
-- Returns how many were rebuilt.
CREATE FUNCTION _keys_with_chunk(tbl regclass) RETURNS int
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  con record;
  n int := 0;
BEGIN
  FOR con IN
    SELECT c.conname, c.contype,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
              FROM unnest(c.conkey) WITH ORDINALITY AS k(num, ord)
              JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = k.num) AS cols
      FROM pg_constraint c
     WHERE c.conrelid = tbl AND c.contype IN ('p', 'u')
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'chunk' AND a.attnum = ANY (c.conkey))
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s (%s, chunk)', tbl, con.conname, con.conname,
                   CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, con.cols);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- Distributes a catalog table (and the tables whose rows belong to its rows) over the Citus
-- cluster by Qserv chunk. `tbl` gets a column `chunk` = skycat.chunk_id of its position
-- (checked by a constraint); every table of `children` gets `chunk` = the chunk of its row's
-- parent (`child_key` = `id_column` of tbl; a child row without a parent takes its own
-- position's chunk when it has the position columns), and all are co-located, so a join of
-- an object and its sources never leaves a worker. One row per table distributed.
CREATE FUNCTION distribute_sky_table(
    tbl regclass, children regclass[] DEFAULT '{}', child_key name DEFAULT 'object_id',
    id_column name DEFAULT 'id', ra_column name DEFAULT 'ra', dec_column name DEFAULT 'dec',
    num_stripes int DEFAULT 340, num_sub_stripes int DEFAULT 3, shard_count int DEFAULT NULL)
  RETURNS TABLE (table_name text, rows bigint, shards int)
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  me constant text := 'distribute_sky_table';
  child regclass;
  orphans bigint;
  n bigint;
BEGIN
  PERFORM skycat._require_citus(me);
  IF tbl IS NULL OR id_column IS NULL OR ra_column IS NULL OR dec_column IS NULL OR num_stripes IS NULL
     OR num_sub_stripes IS NULL OR child_key IS NULL THEN
    RAISE EXCEPTION 'skycat.%: only children and shard_count may be NULL', me USING ERRCODE = '22004';
  END IF;
  PERFORM skycat.chunk_id(0, 0, num_stripes, num_sub_stripes);   -- 22023 for a bad layout
  IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
    RAISE EXCEPTION 'skycat.%: argument "shard_count" must be in [1, 64000], got %', me, shard_count
      USING ERRCODE = '22023';
  END IF;
  PERFORM skycat._require_column(tbl, id_column, '{bigint,integer}', me);
  PERFORM skycat._require_column(tbl, ra_column, '{double precision}', me);
  PERFORM skycat._require_column(tbl, dec_column, '{double precision}', me);
  FOREACH child IN ARRAY coalesce(children, '{}') LOOP
    PERFORM skycat._require_column(child, child_key, '{bigint,integer}', me);
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = ANY (tbl || coalesce(children, '{}'))) THEN
    RAISE EXCEPTION 'skycat.%: % or one of its children is already distributed', me, tbl USING ERRCODE = '55000';
  END IF;

  -- The chunk of every row, while the tables are still local (Citus never changes a row's
  -- distribution value afterwards).
  EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS chunk int', tbl);
  EXECUTE format('UPDATE %s SET chunk = skycat.chunk_id(%I, %I, $1, $2)', tbl, ra_column, dec_column)
    USING num_stripes, num_sub_stripes;
  EXECUTE format('ALTER TABLE %s ALTER COLUMN chunk SET NOT NULL, ADD CONSTRAINT %I CHECK (chunk = skycat.chunk_id(%I, %I, %s, %s))',
                 tbl, left('chunk_is_position_chunk_' || (tbl::oid)::text, 63), ra_column, dec_column,
                 num_stripes, num_sub_stripes);
  FOREACH child IN ARRAY coalesce(children, '{}') LOOP
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS chunk int', child);
    EXECUTE format('UPDATE %s c SET chunk = p.chunk FROM %s p WHERE p.%I = c.%I', child, tbl, id_column, child_key);
    IF skycat._column_type(child, ra_column) IS NOT NULL AND skycat._column_type(child, dec_column) IS NOT NULL THEN
      EXECUTE format('UPDATE %s SET chunk = skycat.chunk_id(%I, %I, $1, $2) WHERE chunk IS NULL', child, ra_column, dec_column)
        USING num_stripes, num_sub_stripes;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE chunk IS NULL', child) INTO orphans;
    IF orphans > 0 THEN
      RAISE EXCEPTION 'skycat.%: % rows of % have no parent row in % and no position', me, orphans, child, tbl
        USING ERRCODE = '23503';
    END IF;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN chunk SET NOT NULL', child);
  END LOOP;

  PERFORM skycat._keys_with_chunk(t) FROM unnest(tbl || coalesce(children, '{}')) t;
  PERFORM create_distributed_table(tbl, 'chunk', shard_count => coalesce(shard_count, current_setting('citus.shard_count')::int));
  -- Rows of tables that no longer exist go (a dropped table leaves its row behind).
  DELETE FROM skycat.sky_tables s WHERE to_regclass(s.table_name) IS NULL;
  PERFORM skycat._register_sky_table(ROW(skycat._qualified(tbl), id_column, ra_column, dec_column,
                                         num_stripes, num_sub_stripes, NULL, NULL, NULL)::skycat.sky_tables);
  FOREACH child IN ARRAY coalesce(children, '{}') LOOP
    PERFORM create_distributed_table(child, 'chunk', colocate_with => tbl::text);
    PERFORM skycat._register_sky_table(ROW(skycat._qualified(child), child_key, ra_column, dec_column,
                                           num_stripes, num_sub_stripes, skycat._qualified(tbl), NULL, NULL)::skycat.sky_tables);
  END LOOP;
  FOR table_name, child IN SELECT skycat._qualified(t), t FROM unnest(tbl || coalesce(children, '{}')) t LOOP
    EXECUTE format('SELECT count(*) FROM %s', child) INTO n;
    rows := n;
    shards := (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = child);
    RETURN NEXT;
  END LOOP;
END
$$;

-- Builds (or refreshes) the margin of a distributed sky table: `<table>_margin`, co-located,
-- holding for every chunk the rows of other chunks within `margin_arcsec` of it (Qserv's
-- overlap; a row near a corner is in the margin of several chunks). Same columns as the
-- table; `chunk` is the chunk the row is a margin of and `home_chunk` its own. Returns the
-- number of margin rows.
CREATE FUNCTION build_margin(tbl regclass, margin_arcsec float8) RETURNS bigint
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  me constant text := 'build_margin';
  t skycat.sky_tables;
  margin regclass;
  margin_name text;
  schema_name text;
  cols text;
  n bigint;
BEGIN
  PERFORM skycat._require_citus(me);
  t := skycat._sky_table(tbl, me);
  IF NOT (margin_arcsec > 0 AND margin_arcsec <= 36000) THEN
    RAISE EXCEPTION 'skycat.%: argument "margin_arcsec" must be a number of arcseconds in (0, 36000], got %', me, margin_arcsec
      USING ERRCODE = '22023';
  END IF;
  SELECT c.relname || '_margin', c.relnamespace::regnamespace::text INTO margin_name, schema_name
    FROM pg_class c WHERE c.oid = tbl;
  IF octet_length(margin_name) > 63 THEN
    RAISE EXCEPTION 'skycat.%: the name of % is too long to derive its margin table name', me, tbl USING ERRCODE = '42622';
  END IF;
  margin := to_regclass(format('%s.%I', schema_name, margin_name));
  IF margin IS NULL THEN
    EXECUTE format('CREATE TABLE %s.%I (LIKE %s INCLUDING DEFAULTS)', schema_name, margin_name, tbl);
    margin := to_regclass(format('%s.%I', schema_name, margin_name));
    EXECUTE format('ALTER TABLE %s ADD COLUMN home_chunk int NOT NULL', margin);
    PERFORM create_distributed_table(margin, 'chunk', colocate_with => tbl::text);
  ELSE
    EXECUTE format('TRUNCATE %s', margin);
  END IF;
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'chunk';
  EXECUTE format('INSERT INTO %1$s (%2$s, chunk, home_chunk)
                  SELECT %2$s, m.c, t.chunk FROM %3$s t, unnest(skycat.chunks_in_circle(t.%4$I, t.%5$I, $1, $2, $3)) AS m(c)
                   WHERE m.c <> t.chunk', margin, cols, tbl, t.ra_column, t.dec_column)
    USING margin_arcsec, t.num_stripes, t.num_sub_stripes;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE skycat.sky_tables s SET margin_table = skycat._qualified(margin), margin_arcsec = build_margin.margin_arcsec
   WHERE s.table_name = t.table_name;
  RETURN n;
END
$$;

-- The cross-match of two distributed sky tables, chunk by chunk on the workers
-- (skycat.crossmatch_chunk per chunk, with the right table's margin), equal to
-- skycat.crossmatch on the same rows. greedy and optimal: the assignment components that
-- reach across a chunk edge are solved once more together on the coordinator. Returns the
-- rows, or with `into_table` writes them into a new table distributed with the left table
-- (columns chunk = the left row's chunk, left_id, right_id, sep_arcsec, rank; an unqualified name
-- is created in the left table's schema) and returns none.
CREATE FUNCTION crossmatch_distributed(left_table regclass, right_table regclass, radius_arcsec float8,
                                       mode text DEFAULT 'all', into_table text DEFAULT NULL)
  RETURNS TABLE (left_id bigint, right_id bigint, sep_arcsec float8, rank int)
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  me constant text := 'crossmatch_distributed';
  l skycat.sky_tables;
  r skycat.sky_tables;
  m text := lower(mode);
  one_to_one boolean;
  edge_l text := '''{}''::boolean[]';   -- the flag arrays: none unless one-to-one
  edge_r text := '''{}''::boolean[]';
  per_chunk text;
  into_rel regclass;
  into_name text[];
  deferred bigint;
BEGIN
  PERFORM skycat._require_citus(me);
  IF left_table IS NULL OR right_table IS NULL OR radius_arcsec IS NULL OR mode IS NULL THEN
    RAISE EXCEPTION 'skycat.%: only into_table may be NULL', me USING ERRCODE = '22004';
  END IF;
  l := skycat._sky_table(left_table, me);
  r := skycat._sky_table(right_table, me);
  IF NOT m = ANY ('{all,nearest,greedy,optimal}') THEN
    RAISE EXCEPTION 'skycat.%: argument "mode" must be one of ''all'', ''nearest'', ''greedy'', ''optimal'', got %', me, quote_literal(mode)
      USING ERRCODE = '22023';
  END IF;
  IF NOT (radius_arcsec > 0 AND radius_arcsec <= 36000) THEN
    RAISE EXCEPTION 'skycat.%: argument "radius_arcsec" must be a number of arcseconds in (0, 36000], got %', me, radius_arcsec
      USING ERRCODE = '22023';
  END IF;
  IF (l.num_stripes, l.num_sub_stripes) IS DISTINCT FROM (r.num_stripes, r.num_sub_stripes)
     OR (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = left_table)
        IS DISTINCT FROM (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = right_table) THEN
    RAISE EXCEPTION 'skycat.%: % and % are not co-located by the same chunks', me, left_table, right_table
      USING ERRCODE = '22023', HINT = 'distribute both with skycat.distribute_sky_table and the same chunk layout';
  END IF;
  IF r.margin_table IS NULL OR r.margin_arcsec < radius_arcsec THEN
    RAISE EXCEPTION 'skycat.%: % has no margin of at least % arcsec (it has %)', me, right_table, radius_arcsec,
                    coalesce(r.margin_arcsec::text || ' arcsec', 'none')
      USING ERRCODE = '22023', HINT = format('SELECT skycat.build_margin(%L, %s)', r.table_name, radius_arcsec);
  END IF;
  one_to_one := m IN ('greedy', 'optimal');
  IF one_to_one THEN
    -- Edge rows: their circle of the radius reaches another chunk (every margin row does).
    edge_l := format('array_agg(skycat.chunk_edge(%I, %I, $1, $3, $4))', l.ra_column, l.dec_column);
    edge_r := 'array_agg(u.margin OR skycat.chunk_edge(u.ra, u.de, $1, $3, $4))';
  END IF;
  -- One row per chunk of the left table joined to its right rows and margin, matched by
  -- crossmatch_chunk: grouped and joined by the distribution column, so Citus runs it shard
  -- by shard on the workers.
  per_chunk := format(
    'SELECT lc.chunk, x.* FROM
       (SELECT chunk, array_agg(%2$I::bigint) AS i, array_agg(%3$I) AS ra, array_agg(%4$I) AS de, %5$s AS e
          FROM %1$s GROUP BY chunk) lc
       JOIN (SELECT chunk, array_agg(i) AS i, array_agg(ra) AS ra, array_agg(de) AS de, %10$s AS e
               FROM (SELECT chunk, %7$I::bigint AS i, %8$I AS ra, %9$I AS de, false AS margin FROM %6$s
                     UNION ALL
                     SELECT chunk, %7$I::bigint, %8$I, %9$I, true FROM %11$s) u
              GROUP BY chunk) rc ON rc.chunk = lc.chunk,
       LATERAL skycat.crossmatch_chunk(lc.i, lc.ra, lc.de, lc.e, rc.i, rc.ra, rc.de, rc.e, $1, $2) x',
    left_table, l.id_column, l.ra_column, l.dec_column, edge_l,
    right_table, r.id_column, r.ra_column, r.dec_column, edge_r, r.margin_table);

  IF into_table IS NOT NULL THEN
    -- A name as the caller writes it (schema.table or table): parse_ident checks it, %I quotes it.
    into_name := parse_ident(into_table);
    IF cardinality(into_name) > 2 THEN
      RAISE EXCEPTION 'skycat.%: argument "into_table" must be table or schema.table, got %', me, into_table
        USING ERRCODE = '22023';
    END IF;
    -- An unqualified name goes into the left table's schema (this function's search_path is fixed).
    IF cardinality(into_name) = 1 THEN
      into_name := ARRAY[(SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE c.oid = left_table)] || into_name;
    END IF;
    into_table := format('%I.%I', into_name[1], into_name[2]);
    IF to_regclass(into_table) IS NOT NULL THEN
      RAISE EXCEPTION 'skycat.%: table % already exists', me, into_table USING ERRCODE = '42P07';
    END IF;
    EXECUTE format('CREATE TABLE %s (chunk int NOT NULL, left_id bigint NOT NULL, right_id bigint NOT NULL, sep_arcsec float8 NOT NULL, rank int NOT NULL)',
                   into_table);
    into_rel := to_regclass(into_table);
    PERFORM create_distributed_table(into_rel, 'chunk', colocate_with => left_table::text);
    -- Deferred pairs are kept with rank 0 until the coordinator has solved them.
    EXECUTE format('INSERT INTO %s SELECT chunk, left_id, right_id, sep_arcsec, CASE WHEN deferred THEN 0 ELSE rank END FROM (%s) p',
                   into_rel, per_chunk) USING radius_arcsec, m, l.num_stripes, l.num_sub_stripes;
    IF one_to_one THEN
      PERFORM skycat._drop_temp_tables('{skycat_xm_left,skycat_xm_right}');
      EXECUTE format('CREATE TEMP TABLE skycat_xm_left AS SELECT DISTINCT t.%2$I::bigint AS id, t.%3$I AS ra, t.%4$I AS dec
                        FROM %1$s t JOIN %5$s x ON x.chunk = t.chunk AND x.left_id = t.%2$I WHERE x.rank = 0',
                     left_table, l.id_column, l.ra_column, l.dec_column, into_rel);
      EXECUTE format('CREATE TEMP TABLE skycat_xm_right AS SELECT DISTINCT t.i AS id, t.ra, t.dec
                        FROM (SELECT chunk, %2$I::bigint AS i, %3$I AS ra, %4$I AS dec FROM %1$s
                              UNION ALL SELECT chunk, %2$I::bigint, %3$I, %4$I FROM %6$s) t
                        JOIN %5$s x ON x.chunk = t.chunk AND x.right_id = t.i WHERE x.rank = 0',
                     right_table, r.id_column, r.ra_column, r.dec_column, into_rel, r.margin_table);
      EXECUTE format('DELETE FROM %s WHERE rank = 0', into_rel);
      GET DIAGNOSTICS deferred = ROW_COUNT;
      RAISE DEBUG 'skycat.%: % pairs across chunk edges solved on the coordinator', me, deferred;
      EXECUTE format('INSERT INTO %s SELECT skycat.chunk_id(l.ra, l.dec, $3, $4), x.left_id, x.right_id, x.sep_arcsec, x.rank
                        FROM skycat.crossmatch(''SELECT id, ra, dec FROM pg_temp.skycat_xm_left'',
                                               ''SELECT id, ra, dec FROM pg_temp.skycat_xm_right'', $1, $2) x
                        JOIN pg_temp.skycat_xm_left l ON l.id = x.left_id', into_rel)
        USING radius_arcsec, m, l.num_stripes, l.num_sub_stripes;
      DROP TABLE pg_temp.skycat_xm_left, pg_temp.skycat_xm_right;
    END IF;
    RETURN;
  END IF;

  IF NOT one_to_one THEN
    RETURN QUERY EXECUTE format('SELECT left_id, right_id, sep_arcsec, rank FROM (%s) p', per_chunk) USING radius_arcsec, m, l.num_stripes, l.num_sub_stripes;
    RETURN;
  END IF;
  PERFORM skycat._drop_temp_tables('{skycat_xm_pairs,skycat_xm_left,skycat_xm_right}');
  EXECUTE format('CREATE TEMP TABLE skycat_xm_pairs AS %s', per_chunk) USING radius_arcsec, m, l.num_stripes, l.num_sub_stripes;
  SELECT count(*) INTO deferred FROM pg_temp.skycat_xm_pairs p WHERE p.deferred;
  RAISE DEBUG 'skycat.%: % pairs across chunk edges solved on the coordinator', me, deferred;
  CREATE TEMP TABLE skycat_xm_left AS
    SELECT DISTINCT p.left_id AS id, p.left_ra AS ra, p.left_dec AS dec FROM pg_temp.skycat_xm_pairs p WHERE p.deferred;
  CREATE TEMP TABLE skycat_xm_right AS
    SELECT DISTINCT p.right_id AS id, p.right_ra AS ra, p.right_dec AS dec FROM pg_temp.skycat_xm_pairs p WHERE p.deferred;
  RETURN QUERY
    SELECT p.left_id, p.right_id, p.sep_arcsec, p.rank FROM pg_temp.skycat_xm_pairs p WHERE NOT p.deferred
    UNION ALL
    SELECT x.left_id, x.right_id, x.sep_arcsec, x.rank
      FROM skycat.crossmatch('SELECT id, ra, dec FROM pg_temp.skycat_xm_left',
                             'SELECT id, ra, dec FROM pg_temp.skycat_xm_right', radius_arcsec, m) x;
  DROP TABLE pg_temp.skycat_xm_pairs, pg_temp.skycat_xm_left, pg_temp.skycat_xm_right;
END
$$;

-- The chunk layout of a distributed DRP schema (the registry row of its object_staging, the
-- table every other one is co-located with); NULL for a DRP schema on one node.
CREATE FUNCTION _drp_layout(schema name) RETURNS sky_tables
  STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  staging regclass := to_regclass(format('%I.object_staging', schema));
BEGIN
  -- (Two tests: Citus's catalog exists only where Citus is installed.)
  IF staging IS NULL OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = staging) THEN
    RETURN NULL;
  END IF;
  RETURN skycat._sky_table(staging, 'drp');
END
$$;

-- Whether a DRP schema is distributed (skycat.drp_distribute).
CREATE FUNCTION _drp_distributed(schema name) RETURNS boolean
  STABLE STRICT LANGUAGE sql SET search_path = pg_catalog, skycat, pg_temp AS $$
  SELECT (skycat._drp_layout(schema)).table_name IS NOT NULL
$$;

-- Spreads a DRP schema (skycat.drp_create) over the Citus cluster: object_staging, object,
-- source and forced_source distributed by their object's Qserv chunk and co-located,
-- dia_source by its own position's chunk in the same shards; tract and calib replicated to
-- every node (reference tables); the policy, progress and logs stay on the coordinator. The
-- dec stripe partitions give way to the shards (each Citus shard already holds whole chunks,
-- and a stripe per shard would multiply the shards by the stripes). Best called on the new,
-- empty schema; rows already there are kept. Every DRP step then runs on the workers.
CREATE FUNCTION drp_distribute(schema name, shard_count int DEFAULT NULL,
                               num_stripes int DEFAULT 340, num_sub_stripes int DEFAULT 3)
  RETURNS TABLE (table_name text, rows bigint, shards int)
  VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  me constant text := 'drp_distribute';
  t text;
  old regclass;
  idx record;
BEGIN
  PERFORM skycat._require_citus(me);
  PERFORM skycat._policy(schema, 'drp');
  IF skycat._drp_distributed(schema) THEN
    RAISE EXCEPTION 'skycat.%: DRP schema % is already distributed', me, schema USING ERRCODE = '55000';
  END IF;
  PERFORM skycat.chunk_id(0, 0, num_stripes, num_sub_stripes);   -- 22023 for a bad layout
  -- Stripe-partitioned tables become plain tables of the same name, columns, keys and indexes.
  FOREACH t IN ARRAY ARRAY['object', 'source', 'dia_source', 'forced_source'] LOOP
    old := format('%I.%I', schema, t)::regclass;
    CONTINUE WHEN (SELECT relkind FROM pg_class WHERE oid = old) <> 'p';
    FOR idx IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = old LOOP
      EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', schema, idx.relname, left(idx.relname, 50) || '_striped');
    END LOOP;
    EXECUTE format('ALTER TABLE %s RENAME TO %I', old, t || '_striped');
    EXECUTE format('CREATE TABLE %1$I.%2$I (LIKE %1$I.%3$I INCLUDING ALL);
                    INSERT INTO %1$I.%2$I SELECT * FROM %1$I.%3$I;
                    DROP TABLE %1$I.%3$I', schema, t, t || '_striped');
  END LOOP;
  RETURN QUERY SELECT * FROM skycat.distribute_sky_table(
    format('%I.object_staging', schema)::regclass,
    ARRAY[format('%I.object', schema), format('%I.source', schema), format('%I.forced_source', schema)]::regclass[],
    'object_id', 'object_id', 'ra', 'dec', num_stripes, num_sub_stripes, shard_count);
  -- Same shard count and key type: Citus co-locates it with object_staging.
  RETURN QUERY SELECT * FROM skycat.distribute_sky_table(
    format('%I.dia_source', schema)::regclass, '{}', 'object_id', 'dia_source_id', 'ra', 'dec',
    num_stripes, num_sub_stripes, shard_count);
  -- The recalibration's work tables: the new calibrations on every node, the objects whose
  -- light curves they change next to those objects.
  EXECUTE format('CREATE TABLE %1$I.recalibration_calib (visit bigint NOT NULL, detector int NOT NULL,
                    calib_mean float8 NOT NULL, calib_err float8 NOT NULL, PRIMARY KEY (visit, detector));
                  CREATE TABLE %1$I.recalibrated_object (chunk int NOT NULL, object_id bigint NOT NULL,
                    PRIMARY KEY (chunk, object_id))', schema);
  FOREACH t IN ARRAY ARRAY['tract', 'calib', 'recalibration_calib'] LOOP
    PERFORM create_reference_table(format('%I.%I', schema, t)::regclass);
  END LOOP;
  PERFORM create_distributed_table(format('%I.recalibrated_object', schema)::regclass, 'chunk',
                                   colocate_with => format('%I.object_staging', schema));
END
$$;

-- The planner's row count of every shard of a distributed table (reltuples; -1 for a shard
-- never analysed), asked of each worker once (not once per shard). run_command_on_workers
-- takes no parameters, so the shard names (from Citus' catalog) go in quoted by %L.
CREATE FUNCTION _shard_reltuples(tbl regclass) RETURNS TABLE (shardid bigint, reltuples float8)
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  names text[] := (SELECT array_agg(shard_name(tbl, s.shardid)) FROM pg_dist_shard s WHERE s.logicalrelid = tbl);
  per_worker text := format('SELECT pg_catalog.json_object_agg(n, c.reltuples) FROM pg_catalog.unnest(%L::text[]) n
                               JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n)', names);
BEGIN
  RETURN QUERY
    SELECT s.shardid, (j.value)::float8
      FROM run_command_on_workers(per_worker) w, json_each_text(nullif(w.result, '')::json) j
      JOIN pg_dist_shard s ON shard_name(tbl, s.shardid) = j.key
     WHERE w.success AND s.logicalrelid = tbl;
END
$$;

-- The units of a distributed DRP schema's summarise: its forced_source shards grouped so that
-- each group holds one shard per worker (so a group runs on every worker at once), with the
-- chunks of its objects and its forced sources estimated from each shard's statistics
-- (analysed first when a shard never was).
CREATE FUNCTION _drp_shard_groups(schema name)
  RETURNS TABLE (shard_group int, chunks int[], est_rows bigint)
  VOLATILE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  fs regclass := format('%I.forced_source', schema)::regclass;
  all_chunks int[];
  shard_ids bigint[];
  shard_rows float8[];
BEGIN
  -- Each worker is asked once (twice after an ANALYZE).
  SELECT array_agg(r.shardid), array_agg(r.reltuples) INTO shard_ids, shard_rows FROM skycat._shard_reltuples(fs) r;
  IF EXISTS (SELECT 1 FROM unnest(shard_rows) n WHERE n < 0) THEN
    EXECUTE format('ANALYZE %s', fs);
    SELECT array_agg(r.shardid), array_agg(r.reltuples) INTO shard_ids, shard_rows FROM skycat._shard_reltuples(fs) r;
  END IF;
  EXECUTE format('SELECT array_agg(DISTINCT chunk) FROM %I.object', schema) INTO all_chunks;
  RETURN QUERY
    WITH shard AS (
      SELECT s.shardid, (row_number() OVER (PARTITION BY p.groupid ORDER BY s.shardminvalue::int))::int AS g
        FROM pg_dist_shard s JOIN pg_dist_placement p ON p.shardid = s.shardid
       WHERE s.logicalrelid = fs),
    est AS (SELECT e.shardid, greatest(e.n, 0)::bigint AS n FROM unnest(shard_ids, shard_rows) AS e(shardid, n)),
    chunk AS (SELECT c, get_shard_id_for_distribution_column(fs, c) AS shardid FROM unnest(all_chunks) c)
    SELECT shard.g, array_agg(chunk.c ORDER BY chunk.c),
           (SELECT sum(e.n) FROM est e JOIN shard s2 ON s2.shardid = e.shardid WHERE s2.g = shard.g)::bigint
      FROM chunk JOIN shard ON shard.shardid = chunk.shardid
     GROUP BY shard.g ORDER BY shard.g;
END
$$;

-- Summarises the forced sources of these chunks of a distributed DRP schema into object (the
-- same statistics as skycat.drp_summarize_partition): one UPDATE whose aggregate is grouped
-- by chunk, so Citus runs it on the workers shard by shard and no forced source leaves its
-- worker. With `recalibrated_only`, just the objects in <schema>.recalibrated_object.
CREATE FUNCTION _drp_summarize_chunks(schema name, chunks int[], recalibrated_only boolean DEFAULT false,
                                      OUT objects bigint, OUT rows bigint)
  VOLATILE STRICT LANGUAGE plpgsql SET jit = off SET search_path = pg_catalog, skycat, pg_temp AS $$
DECLARE
  p jsonb := skycat._policy(schema, 'drp');
  bands text[] := (p ->> 'bands')::text[];
BEGIN
  -- The workers' hash aggregates get the policy's work_mem, as on one node. (A SET statement,
  -- which Citus forwards to the workers, cannot take a parameter: the value, checked by
  -- skycat._policy as a size, goes in quoted by %L.)
  SET LOCAL citus.propagate_set_commands = 'local';
  EXECUTE format('SET LOCAL work_mem = %L', p ->> 'work_mem');
  EXECUTE format(
    'WITH u AS (
       UPDATE %1$I.object o SET (%2$s) = ROW(%3$s) FROM (%4$s) s
        WHERE o.chunk = s.chunk AND o.object_id = s.object_id AND o."dec" = s."dec" AND o.chunk = ANY ($1)
        RETURNING s.rows AS n)
     SELECT count(*), COALESCE(sum(n), 0) FROM u',
    schema, skycat.drp_summary_columns('names', bands), skycat.drp_summary_columns('values', bands),
    skycat._drp_summary_by_aggregate(bands, format('%I.forced_source', schema),
      'f.chunk = ANY ($1)' || CASE WHEN recalibrated_only THEN format(' AND EXISTS (SELECT 1 FROM %I.recalibrated_object r
                                                           WHERE r.chunk = f.chunk AND r.object_id = f.object_id)', schema)
                                   ELSE '' END,
      true))
    INTO objects, rows USING chunks;
END
$$;
