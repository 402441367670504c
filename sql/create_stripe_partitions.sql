-- create_stripe_partitions(parent, stripe_height_deg, dec_column): RANGE partitions of a
-- table declared PARTITION BY RANGE (dec_column), one per declination stripe, covering
-- [-90, 90]. Re-running it with the same height on an already striped table is a no-op
-- (returns 0); any other existing partitioning is an error. Bounds come from
-- skycat.stripe_bounds, so skycat.stripe(dec, h) names the partition PostgreSQL routes to.
-- The name of stripe `stripe`'s partition of table `parent` cut into `n_stripes` stripes:
-- `<parent>_s<stripe>`, the stripe zero-padded to the width of the last one.
CREATE FUNCTION stripe_partition_name(parent name, stripe int, n_stripes int) RETURNS text
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql SET search_path = pg_catalog, pg_temp
  AS $$ SELECT format('%s_s%s', parent, lpad(stripe::text, length((n_stripes - 1)::text), '0')) $$;
COMMENT ON FUNCTION stripe_partition_name(name, int, int) IS
  'The name create_stripe_partitions gives stripe `stripe` of `n_stripes` of table `parent`.';

CREATE FUNCTION create_stripe_partitions(
    parent regclass,
    stripe_height_deg float8,
    dec_column name DEFAULT 'dec'
) RETURNS int
LANGUAGE plpgsql VOLATILE STRICT
-- Bounds must print exactly (shortest round-trip form) whatever the session setting.
SET extra_float_digits = 1
-- Resolve nothing through the caller's search_path (names below are qualified).
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_strategy   "char";
    v_natts      int2;
    v_keyatt     int2;
    v_attnum     int2;
    v_atttype    regtype;
    v_nsp        name;
    v_rel        name;
    v_existing   int;
    v_matching   int;
    v_count      int;
    v_width      int;
    v_created    int := 0;
    v_name       text;
    b            record;
BEGIN
    SELECT n.nspname, c.relname INTO v_nsp, v_rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = parent;

    SELECT p.partstrat, p.partnatts, p.partattrs[0] INTO v_strategy, v_natts, v_keyatt
      FROM pg_partitioned_table p WHERE p.partrelid = parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'skycat.create_stripe_partitions: table % is not partitioned', parent
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Declare it with PARTITION BY RANGE (%I).', dec_column);
    END IF;

    SELECT a.attnum, a.atttypid::regtype INTO v_attnum, v_atttype
      FROM pg_attribute a
     WHERE a.attrelid = parent AND a.attname = dec_column AND NOT a.attisdropped AND a.attnum > 0;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'skycat.create_stripe_partitions: column "%" of table % does not exist', dec_column, parent
            USING ERRCODE = 'undefined_column';
    END IF;

    IF v_strategy <> 'r' OR v_natts <> 1 OR v_keyatt <> v_attnum THEN
        RAISE EXCEPTION 'skycat.create_stripe_partitions: table % must be partitioned by RANGE (%) alone, it is partitioned by %',
                parent, quote_ident(dec_column), pg_get_partkeydef(parent)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF v_atttype <> 'double precision'::regtype THEN
        RAISE EXCEPTION 'skycat.create_stripe_partitions: column "%" of table % must be double precision, it is %',
                dec_column, parent, v_atttype
            USING ERRCODE = 'datatype_mismatch';
    END IF;

    -- Validates the height (22023 with the allowed range) and fixes the stripes.
    SELECT count(*) INTO v_count FROM @extschema@.stripe_bounds(stripe_height_deg);
    v_width := length((v_count - 1)::text);

    SELECT count(*) INTO v_existing FROM pg_inherits WHERE inhparent = parent;
    IF v_existing > 0 THEN
        -- Idempotent re-run: every expected stripe exists with the expected bounds.
        SELECT count(*) INTO v_matching
          FROM @extschema@.stripe_bounds(stripe_height_deg) s
          JOIN pg_class c ON c.relname = @extschema@.stripe_partition_name(v_rel, s.stripe, v_count)
          JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = parent
         WHERE pg_get_expr(c.relpartbound, c.oid)
               = format('FOR VALUES FROM (%L) TO (%L)', s.dec_min::text, s.dec_max::text);
        IF v_matching = v_count AND v_existing = v_count THEN
            RAISE NOTICE 'skycat.create_stripe_partitions: % already has its % stripe partitions of % deg; nothing created',
                parent, v_count, stripe_height_deg;
            RETURN 0;
        END IF;
        RAISE EXCEPTION 'skycat.create_stripe_partitions: table % already has % partition(s) that are not its stripes of % deg',
                parent, v_existing, stripe_height_deg
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Detach or drop the existing partitions first, or use the height they were made with.';
    END IF;

    IF length(v_rel) + 2 + v_width > 63 THEN
        RAISE EXCEPTION 'skycat.create_stripe_partitions: table name "%" is too long to name its stripe partitions', v_rel
            USING ERRCODE = 'name_too_long';
    END IF;

    FOR b IN SELECT * FROM @extschema@.stripe_bounds(stripe_height_deg) LOOP
        v_name := @extschema@.stripe_partition_name(v_rel, b.stripe, v_count);
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       v_nsp, v_name, parent, b.dec_min::text, b.dec_max::text);
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END;
$fn$;

COMMENT ON FUNCTION create_stripe_partitions(regclass, float8, name) IS
    'Creates one RANGE partition per declination stripe of the given height on a table partitioned by RANGE (dec_column); returns how many.';
