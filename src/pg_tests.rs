//! `#[pg_test]`s: SQL-level behaviour inside a real backend, checked against references that
//! do not use the code under test (PostgreSQL's own partition routing, closed forms, catalogs).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn scalar_i64(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql)
            .expect("query failed")
            .expect("NULL result")
    }

    #[pg_test]
    fn stripe_names_the_partition_postgres_routes_to() {
        // Heights whose bounds are not exact binary fractions, where a naive
        // floor((dec + 90) / h) disagrees with the partition bounds.
        for h in ["0.1", "0.3", "1", "7", "2.5"] {
            Spi::run("DROP TABLE IF EXISTS pt").unwrap();
            Spi::run("CREATE TABLE pt (id int, dec float8) PARTITION BY RANGE (dec)").unwrap();
            let n = Spi::get_one::<i32>(&format!(
                "SELECT skycat.create_stripe_partitions('pt', {h})"
            ))
            .unwrap()
            .unwrap();
            let expected = scalar_i64(&format!("SELECT count(*) FROM skycat.stripe_bounds({h})"));
            assert_eq!(n as i64, expected);
            // Rows at every stripe boundary, one ulp either side, the poles and random decs.
            Spi::run(&format!(
                "INSERT INTO pt
                 SELECT row_number() OVER (), d FROM (
                   SELECT unnest(ARRAY[dec_min, dec_min + 1e-13, dec_min - 1e-13]) AS d FROM skycat.stripe_bounds({h})
                   UNION ALL SELECT 90 UNION ALL SELECT -90 UNION ALL SELECT 89.99999999999999
                   UNION ALL SELECT -90 + 180 * random() FROM generate_series(1, 2000)) x
                 WHERE d BETWEEN -90 AND 90"
            ))
            .unwrap();
            let mismatches = scalar_i64(&format!(
                "SELECT count(*) FROM pt
                  WHERE skycat.stripe(dec, {h})
                        <> substring(tableoid::regclass::text from '_s([0-9]+)$')::int"
            ));
            assert_eq!(mismatches, 0, "height {h}");
        }
    }

    #[pg_test]
    fn create_stripe_partitions_is_idempotent() {
        Spi::run(
            "CREATE TABLE obj (id bigint, ra float8, \"dec\" float8) PARTITION BY RANGE (\"dec\")",
        )
        .unwrap();
        let first = Spi::get_one::<i32>("SELECT skycat.create_stripe_partitions('obj', 1.0)")
            .unwrap()
            .unwrap();
        assert_eq!(first, 180);
        let second = Spi::get_one::<i32>("SELECT skycat.create_stripe_partitions('obj', 1.0)")
            .unwrap()
            .unwrap();
        assert_eq!(second, 0);
        assert_eq!(
            scalar_i64("SELECT count(*) FROM pg_inherits WHERE inhparent = 'obj'::regclass"),
            180
        );
        // Every finite dec in range has a home, and nothing outside it does.
        Spi::run("INSERT INTO obj VALUES (1, 0, 90), (2, 0, -90), (3, 0, 0)").unwrap();
        assert_eq!(scalar_i64("SELECT count(*) FROM obj"), 3);
    }

    #[pg_test(error = "no partition of relation \"obj2\" found for row")]
    fn dec_above_ninety_has_no_partition() {
        Spi::run("CREATE TABLE obj2 (dec float8) PARTITION BY RANGE (dec)").unwrap();
        Spi::run("SELECT skycat.create_stripe_partitions('obj2', 10)").unwrap();
        Spi::run("INSERT INTO obj2 VALUES (90.000001)").unwrap();
    }

    #[pg_test(
        error = "skycat.create_stripe_partitions: table public.obj3 already has 180 partition(s) that are not its stripes of 2 deg"
    )]
    fn different_height_on_striped_table_is_an_error() {
        Spi::run("CREATE TABLE obj3 (dec float8) PARTITION BY RANGE (dec)").unwrap();
        Spi::run("SELECT skycat.create_stripe_partitions('obj3', 1)").unwrap();
        Spi::run("SELECT skycat.create_stripe_partitions('obj3', 2)").unwrap();
    }

    #[pg_test]
    fn functions_are_marked_honestly() {
        // Every pure function: IMMUTABLE, PARALLEL SAFE and STRICT (NULL in, NULL out).
        let wrong = Spi::get_one::<String>(
            "SELECT string_agg(p.oid::regprocedure::text, ', ')
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'skycat' AND p.prokind = 'f'
                AND p.proname <> 'create_stripe_partitions'
                AND NOT (p.provolatile = 'i' AND p.proparallel = 's' AND p.proisstrict)",
        )
        .unwrap();
        assert_eq!(wrong, None);
        let vol = Spi::get_one::<String>(
            "SELECT provolatile::text || proparallel::text FROM pg_proc
              WHERE proname = 'create_stripe_partitions'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(vol, "vu", "DDL must be VOLATILE and PARALLEL UNSAFE");
        assert_eq!(
            Spi::get_one::<f64>("SELECT skycat.sep_arcsec(NULL, 0, 0, 0)").unwrap(),
            None
        );
    }

    #[pg_test]
    fn separation_closed_forms_in_sql() {
        // Along a meridian: the dec difference; across RA 0/360 on the equator: the ra difference.
        let meridian = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(10, 20, 10, 21)")
            .unwrap()
            .unwrap();
        assert!((meridian - 3600.0).abs() < 1e-9);
        let wrap = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(359.9, 0, 0.1, 0)")
            .unwrap()
            .unwrap();
        assert!((wrap - 720.0).abs() < 1e-8);
        let ra_outside = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(-0.1, 0, 360.1, 0)")
            .unwrap()
            .unwrap();
        assert!((ra_outside - 720.0).abs() < 1e-8);
    }

    #[pg_test(
        error = "skycat.sep_arcsec: argument \"dec2\" must be a finite number of degrees in [-90, 90], got 90.5"
    )]
    fn bad_dec_is_22023() {
        Spi::run("SELECT skycat.sep_arcsec(0, 0, 0, 90.5)").unwrap();
    }

    #[pg_test]
    fn drop_extension_removes_every_function() {
        Spi::run("DROP EXTENSION skycat CASCADE").unwrap();
        assert_eq!(
            scalar_i64(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = 'skycat'"
            ),
            0
        );
    }
}
