//! `#[pg_test]`s: SQL-level behaviour inside a real backend, checked against references that
//! do not use the code under test (PostgreSQL's own partition routing, closed forms, catalogs).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn scalar_i64(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).expect("query failed").expect("NULL result")
    }

    #[pg_test]
    fn stripe_names_the_partition_postgres_routes_to() {
        // Heights whose bounds are not exact binary fractions, where a naive
        // floor((dec + 90) / h) disagrees with the partition bounds.
        for h in ["0.1", "0.3", "1", "7", "2.5"] {
            Spi::run("DROP TABLE IF EXISTS pt").unwrap();
            Spi::run("CREATE TABLE pt (id int, dec float8) PARTITION BY RANGE (dec)").unwrap();
            let n =
                Spi::get_one::<i32>(&format!("SELECT skycat.create_stripe_partitions('pt', {h})")).unwrap().unwrap();
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
        Spi::run("CREATE TABLE obj (id bigint, ra float8, \"dec\" float8) PARTITION BY RANGE (\"dec\")").unwrap();
        let first = Spi::get_one::<i32>("SELECT skycat.create_stripe_partitions('obj', 1.0)").unwrap().unwrap();
        assert_eq!(first, 180);
        let second = Spi::get_one::<i32>("SELECT skycat.create_stripe_partitions('obj', 1.0)").unwrap().unwrap();
        assert_eq!(second, 0);
        assert_eq!(scalar_i64("SELECT count(*) FROM pg_inherits WHERE inhparent = 'obj'::regclass"), 180);
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
        // Every pure function is IMMUTABLE, PARALLEL SAFE and STRICT (NULL in, NULL out); the
        // exceptions are exactly these, with these markings.
        let others = Spi::get_one::<String>(
            "SELECT string_agg(p.proname || ':' || p.provolatile::text || p.proparallel::text || p.proisstrict::text, ' '
                               ORDER BY p.proname)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'skycat'
                AND NOT (p.provolatile = 'i' AND p.proparallel = 's' AND p.proisstrict)",
        )
        .unwrap()
        .unwrap();
        // Not STRICT: the aggregates and their support functions (they see NULL states and
        // skip NULL rows themselves) and the plpgsql helpers; VOLATILE: what writes or runs
        // queries.
        let aggregates: Vec<String> = ["flux_mean", "lc_stats", "mean_position"]
            .iter()
            .flat_map(|a| {
                [a.to_string(), format!("{a}_combine"), format!("{a}_final"), format!("{a}_sfunc")]
                    .map(|f| format!("{f}:isfalse"))
            })
            .collect();
        let expected = format!(
            "_calibration_exprs:sufalse _leaf_tables:sufalse calibrate_sources:vufalse create_stripe_partitions:vutrue \
             crossmatch:vrtrue crossmatch_input_rows:vrtrue dwithin_support:vutrue {} recalibrate_sources:vufalse",
            aggregates.join(" ")
        );
        assert_eq!(others, expected);
        assert_eq!(Spi::get_one::<f64>("SELECT skycat.sep_arcsec(NULL, 0, 0, 0)").unwrap(), None);
    }

    #[pg_test]
    fn separation_closed_forms_in_sql() {
        // Along a meridian: the dec difference; across RA 0/360 on the equator: the ra difference.
        let meridian = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(10, 20, 10, 21)").unwrap().unwrap();
        assert!((meridian - 3600.0).abs() < 1e-9);
        let wrap = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(359.9, 0, 0.1, 0)").unwrap().unwrap();
        assert!((wrap - 720.0).abs() < 1e-8);
        let ra_outside = Spi::get_one::<f64>("SELECT skycat.sep_arcsec(-0.1, 0, 360.1, 0)").unwrap().unwrap();
        assert!((ra_outside - 720.0).abs() < 1e-8);
    }

    #[pg_test(error = "skycat.sep_arcsec: argument \"dec2\" must be a finite number of degrees in [-90, 90], got 90.5")]
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

    /// A table of points with dense patches at RA 0/360 and both poles, indexed on sky_key.
    fn make_points(name: &str, n: i32, indexed: bool) {
        Spi::run(&format!(
            "CREATE TABLE {name} AS
             SELECT i::bigint AS id, ra, dec FROM (
               SELECT i,
                      CASE i % 4 WHEN 0 THEN 360 * random()
                                 WHEN 1 THEN (359.9 + 0.2 * random())::numeric % 360
                                 ELSE 360 * random() END::float8 AS ra,
                      CASE i % 4 WHEN 0 THEN degrees(asin(2 * random() - 1))
                                 WHEN 1 THEN -1 + 2 * random()
                                 WHEN 2 THEN 89.8 + 0.2 * random()
                                 ELSE -90 + 0.2 * random() END::float8 AS dec
                 FROM generate_series(1, {n}) i) x"
        ))
        .unwrap();
        if indexed {
            Spi::run(&format!("CREATE INDEX ON {name} (skycat.sky_key(ra, dec)); ANALYZE {name}")).unwrap();
        }
    }

    fn plan(sql: &str) -> String {
        Spi::connect(|c| {
            c.select(&format!("EXPLAIN (COSTS OFF) {sql}"), None, &[])
                .unwrap()
                .map(|r| r.get::<String>(1).unwrap().unwrap() + "\n")
                .collect()
        })
    }

    #[pg_test]
    fn dwithin_cone_search_uses_the_index_and_is_exact() {
        Spi::run("SELECT setseed(0.3)").unwrap();
        make_points("pts", 40000, true);
        let cones =
            [(0.0, 0.0), (359.95, 0.5), (0.02, -0.5), (123.0, 89.95), (10.0, 90.0), (200.0, -89.99), (45.0, -30.0)];
        for (ra, dec) in cones {
            for r in [0.001, 1.0, 30.0, 600.0, 3600.0, 36000.0] {
                let q = format!("SELECT count(*) FROM pts WHERE skycat.dwithin(ra, dec, {ra}, {dec}, {r})");
                let got = scalar_i64(&q);
                let exact = scalar_i64(&format!(
                    "SELECT count(*) FROM pts WHERE skycat.sep_arcsec(ra, dec, {ra}, {dec}) <= {r}"
                ));
                assert_eq!(got, exact, "cone ({ra}, {dec}) r={r}");
                // Argument order does not matter.
                let swapped =
                    scalar_i64(&format!("SELECT count(*) FROM pts WHERE skycat.dwithin({ra}, {dec}, ra, dec, {r})"));
                assert_eq!(swapped, exact);
                if r <= 3600.0 {
                    let p = plan(&q);
                    // A bitmap scan, or a plain index scan when the cover is one key range.
                    assert!(
                        p.contains("Bitmap Index Scan on pts_sky_key_idx")
                            || p.contains("Index Scan using pts_sky_key_idx"),
                        "cone ({ra}, {dec}) r={r}:\n{p}"
                    );
                }
            }
        }
    }

    #[pg_test]
    fn dwithin_join_uses_the_index_of_either_side() {
        Spi::run("SELECT setseed(0.4)").unwrap();
        make_points("big", 50000, true);
        make_points("small", 300, false);
        Spi::run("ANALYZE small").unwrap();
        for r in [1.0, 60.0, 600.0] {
            let exact = scalar_i64(&format!(
                "SELECT count(*) FROM small s, big b WHERE skycat.sep_arcsec(s.ra, s.dec, b.ra, b.dec) <= {r}"
            ));
            for q in [
                format!("SELECT count(*) FROM small s JOIN big b ON skycat.dwithin(s.ra, s.dec, b.ra, b.dec, {r})"),
                format!("SELECT count(*) FROM small s JOIN big b ON skycat.dwithin(b.ra, b.dec, s.ra, s.dec, {r})"),
            ] {
                assert_eq!(scalar_i64(&q), exact, "{q}");
                let p = plan(&q);
                assert!(p.contains("Bitmap Index Scan on big_sky_key_idx"), "{q}\n{p}");
            }
        }
    }

    #[pg_test]
    fn dwithin_without_an_index_is_just_exact() {
        Spi::run("SELECT setseed(0.5)").unwrap();
        make_points("plain_pts", 2000, false);
        let got = scalar_i64("SELECT count(*) FROM plain_pts WHERE skycat.dwithin(ra, dec, 0, 0, 7200)");
        let exact = scalar_i64("SELECT count(*) FROM plain_pts WHERE skycat.sep_arcsec(ra, dec, 0, 0) <= 7200");
        assert_eq!(got, exact);
        assert!(!plan("SELECT * FROM plain_pts WHERE skycat.dwithin(ra, dec, 0, 0, 7200)").contains("Index"));
    }

    #[pg_test]
    fn crossmatch_modes_agree_with_sql_brute_force() {
        Spi::run("SELECT setseed(0.6)").unwrap();
        make_points("l", 3000, false);
        make_points("r", 3000, false);
        let r = 600.0;
        let brute =
            scalar_i64(&format!("SELECT count(*) FROM l, r WHERE skycat.sep_arcsec(l.ra, l.dec, r.ra, r.dec) <= {r}"));
        let all = scalar_i64(&format!(
            "SELECT count(*) FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', {r})"
        ));
        assert_eq!(all, brute);
        let same = scalar_i64(&format!(
            "SELECT count(*) FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', {r}) m
               JOIN l ON l.id = m.left_id JOIN r ON r.id = m.right_id
              WHERE m.sep_arcsec = skycat.sep_arcsec(l.ra, l.dec, r.ra, r.dec)"
        ));
        assert_eq!(same, brute);
        let nearest = scalar_i64(&format!(
            "SELECT count(*) FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', {r}, 'nearest')"
        ));
        let lefts = scalar_i64(&format!(
            "SELECT count(DISTINCT l.id) FROM l, r WHERE skycat.sep_arcsec(l.ra, l.dec, r.ra, r.dec) <= {r}"
        ));
        assert_eq!(nearest, lefts);
        for mode in ["greedy", "optimal"] {
            let dup = scalar_i64(&format!(
                "SELECT count(*) - count(DISTINCT right_id) FROM skycat.crossmatch('SELECT id, ra, dec FROM l', 'SELECT id, ra, dec FROM r', {r}, '{mode}')"
            ));
            assert_eq!(dup, 0, "{mode} must be one-to-one");
        }
    }

    #[pg_test(
        error = "skycat.crossmatch: right input row with id 7: argument \"dec\" must be a finite number of degrees in [-90, 90], got 91"
    )]
    fn crossmatch_names_the_bad_row() {
        Spi::run("SELECT * FROM skycat.crossmatch('SELECT 1::bigint, 0::float8, 0::float8', 'SELECT 7::bigint, 0::float8, 91::float8', 1)").unwrap();
    }
}
