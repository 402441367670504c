//! A user indexes positions as `skycat.sky_point` (GiST) and asks for the k nearest neighbours
//! of points without a radius, and for cones with `<@`: answers from the index, equal to a
//! brute force computed here (unit vectors, not skycat's formula), near the poles and across
//! ra = 0/360 too; `dwithin` uses the same index when there is no sky_key one; bad values are
//! refused with 22023.

use postgres::error::SqlState;
use postgres::Client;
use skycat_e2e::{copy_positions, reference_sep, ScratchDb};
use skycat_sim::sky::{self, SimSource};

fn explain(c: &mut Client, sql: &str) -> String {
    c.query(&format!("EXPLAIN (COSTS OFF) {sql}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ids(c: &mut Client, sql: &str) -> Vec<i64> {
    c.query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

fn query_points() -> Vec<SimSource> {
    let mut points = sky::uniform(40, 77, 0);
    for (i, (ra, dec)) in
        [(0.0, 89.999), (180.0, -89.99), (359.9999, 0.0), (0.0001, -30.0), (123.0, 0.0)].into_iter().enumerate()
    {
        points.push(SimSource { id: 100 + i as i64, ra, dec, ra_err_arcsec: 0.1, dec_err_arcsec: 0.1 });
    }
    points
}

#[test]
fn nearest_neighbours_and_cones_from_the_gist_index() {
    let mut db = ScratchDb::new("sky_point");
    let c = &mut db.client;
    let stars = sky::uniform(200_000, 31, 0);
    c.batch_execute("CREATE EXTENSION skycat; CREATE TABLE stars (id bigint, ra float8, dec float8);").unwrap();
    copy_positions(c, "stars", &stars);
    c.batch_execute("CREATE INDEX stars_pos ON stars USING gist (skycat.sky_point(ra, dec)); ANALYZE stars;").unwrap();

    let knn = |ra: f64, dec: f64, k: usize| {
        format!(
            "SELECT id FROM stars ORDER BY skycat.sky_point(ra, dec) OPERATOR(skycat.<->) skycat.sky_point({ra}, {dec}) LIMIT {k}"
        )
    };
    let plan = explain(c, &knn(10.0, 20.0, 10));
    assert!(
        plan.contains("Index Scan using stars_pos") && plan.contains("Order By"),
        "KNN not from the index:\n{plan}"
    );

    for q in query_points() {
        let mut by_distance: Vec<(f64, i64)> = stars.iter().map(|s| (reference_sep(&q, s), s.id)).collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for k in [1, 10, 100] {
            let expected: Vec<i64> = by_distance[..k].iter().map(|p| p.1).collect();
            assert_eq!(ids(c, &knn(q.ra, q.dec, k)), expected, "{k} nearest of ({}, {})", q.ra, q.dec);
        }
        for r in [10.0, 600.0, 3600.0] {
            let sql = format!(
                "SELECT id FROM stars WHERE skycat.sky_point(ra, dec) OPERATOR(skycat.<@) skycat.sky_cone({}, {}, {r}) ORDER BY id",
                q.ra, q.dec
            );
            let mut expected: Vec<i64> = by_distance.iter().take_while(|p| p.0 <= r).map(|p| p.1).collect();
            expected.sort();
            assert_eq!(ids(c, &sql), expected, "cone of {r}\" at ({}, {})", q.ra, q.dec);
        }
    }
    let cone =
        "SELECT count(*) FROM stars WHERE skycat.sky_point(ra, dec) OPERATOR(skycat.<@) skycat.sky_cone(10, 20, 600)";
    assert!(explain(c, cone).contains("Index Cond"), "cone not from the index:\n{}", explain(c, cone));

    // Cones as one statement (LATERAL), from the index, equal to the brute force.
    let centres = sky::uniform(300, 78, 0);
    c.batch_execute("CREATE TABLE centres (id bigint, ra float8, dec float8)").unwrap();
    copy_positions(c, "centres", &centres);
    let lateral = "SELECT count(*) FROM centres p CROSS JOIN LATERAL
                     (SELECT 1 FROM stars s WHERE skycat.sky_point(s.ra, s.dec) OPERATOR(skycat.<@) skycat.sky_cone(p.ra, p.dec, 900)) x";
    assert!(explain(c, lateral).contains("Index Cond"), "LATERAL cones not from the index:\n{}", explain(c, lateral));
    let expected =
        centres.iter().map(|p| stars.iter().filter(|s| reference_sep(p, s) <= 900.0).count() as i64).sum::<i64>();
    assert_eq!(c.query_one(lateral, &[]).unwrap().get::<_, i64>(0), expected);

    // dwithin on a table with only the GiST index: a cone, LATERAL cones and a join, all through it.
    let dwithin_cases = [
        "SELECT count(*) FROM stars WHERE skycat.dwithin(ra, dec, 10, 20, 600)".to_string(),
        "SELECT count(*) FROM centres p CROSS JOIN LATERAL
           (SELECT 1 FROM stars s WHERE skycat.dwithin(s.ra, s.dec, p.ra, p.dec, 900)) x"
            .to_string(),
        "SELECT count(*) FROM centres p JOIN stars s ON skycat.dwithin(p.ra, p.dec, s.ra, s.dec, 900)".to_string(),
    ];
    let ten_twenty = SimSource { id: 0, ra: 10.0, dec: 20.0, ra_err_arcsec: 0.1, dec_err_arcsec: 0.1 };
    let dwithin_expected =
        [stars.iter().filter(|s| reference_sep(&ten_twenty, s) <= 600.0).count() as i64, expected, expected];
    for (sql, want) in dwithin_cases.iter().zip(dwithin_expected) {
        let plan = explain(c, sql);
        assert!(plan.contains("stars_pos") && plan.contains("<@"), "dwithin not through the GiST index:\n{plan}");
        assert_eq!(c.query_one(sql.as_str(), &[]).unwrap().get::<_, i64>(0), want, "{sql}");
    }

    // A composite a user can read .ra / .dec from, ra wrapped as every skycat position.
    let row = c.query_one("SELECT (skycat.sky_point(370, 1)).ra, (skycat.sky_point(370, 1)).dec", &[]).unwrap();
    assert_eq!((row.get::<_, f64>(0), row.get::<_, f64>(1)), (10.0, 1.0));
    let sep: f64 =
        c.query_one("SELECT skycat.sky_point(0, 0) OPERATOR(skycat.<->) skycat.sky_point(0, 1)", &[]).unwrap().get(0);
    assert!((sep - 3600.0).abs() < 1e-9, "{sep}");

    // Bad values: 22023, in the operators, the constructors and the index alike.
    for bad in [
        "SELECT skycat.sky_point(0, 91)",
        "SELECT skycat.sky_point('NaN', 0)",
        "SELECT skycat.sky_cone(0, 0, -1)",
        "SELECT ROW(NULL, 1)::skycat.sky_point OPERATOR(skycat.<->) skycat.sky_point(0, 0)",
        "SELECT ROW(0, 100)::skycat.sky_point OPERATOR(skycat.<@) skycat.sky_cone(0, 0, 1)",
        "SELECT count(*) FROM stars WHERE skycat.sky_point(ra, dec) OPERATOR(skycat.<@) ROW(0, 0, -5)::skycat.sky_cone",
        "SELECT id FROM stars ORDER BY skycat.sky_point(ra, dec) OPERATOR(skycat.<->) ROW(0, 95)::skycat.sky_point LIMIT 1",
        "CREATE TABLE pts AS SELECT ROW(0, 100)::skycat.sky_point AS p; CREATE INDEX ON pts USING gist (p)",
    ] {
        let e = c.batch_execute(bad).expect_err(bad);
        assert_eq!(e.code(), Some(&SqlState::INVALID_PARAMETER_VALUE), "{bad}: {e}");
    }
}
