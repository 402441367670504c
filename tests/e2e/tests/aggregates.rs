//! A DRP developer summarises ForcedSource light curves with skycat's aggregates: the fixture
//! curves against numpy/pandas (tests/fixtures/gen_lightcurves.py), a parallel plan that gives
//! exactly the serial answer, the light aggregates against closed forms computed here, and the
//! memory limit as a clear error.

use std::io::Write;

use postgres::error::SqlState;
use skycat_core::lightcurve::FLOAT_FIELD_NAMES;
use skycat_e2e::{fixture, ScratchDb};
use skycat_sim::{csv_f64, forced};

const FIELDS: [&str; 18] = FLOAT_FIELD_NAMES;

#[test]
fn lc_stats_in_sql_match_numpy_and_pandas() {
    let mut db = ScratchDb::new("lc_fixture");
    let c = &mut db.client;
    c.batch_execute(
        "CREATE EXTENSION skycat;
         CREATE TABLE curves (curve int, flux float8, flux_err float8, mjd float8);
         CREATE TABLE expect (curve int, n bigint, mean float8, mean_err float8, sigma float8, chi2 float8,
            min float8, max float8, mad float8, skew float8, p05 float8, p25 float8, p50 float8, p75 float8,
            p95 float8, stetson_j float8, linear_slope float8, linear_intercept float8, max_slope float8,
            err_mean float8);",
    )
    .unwrap();
    for (table, file) in [("curves", "lightcurves/curves.csv"), ("expect", "lightcurves/stats.csv")] {
        let text = std::fs::read_to_string(fixture(file)).unwrap();
        let mut w = c.copy_in(&format!("COPY {table} FROM STDIN (FORMAT csv, HEADER true)")).unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap();
    }
    // A NULL row and a NULL-time row are ignored / used without time, like NaN ones.
    c.batch_execute("INSERT INTO curves VALUES (3, NULL, 1, 60000), (3, 5, NULL, 60000)").unwrap();
    let checks: Vec<String> = FIELDS
        .iter()
        .map(|f| {
            let tol = if f.starts_with("linear") { "1e-8" } else { "1e-10" };
            format!(
                "((s).{f} IS NULL) = (e.{f} IS NULL) AND coalesce(abs((s).{f} - e.{f}) <= {tol} * greatest(abs(e.{f}), 1e-3), true) AS {f}"
            )
        })
        .collect();
    let sql = format!(
        "SELECT e.curve, (s).n = e.n, {} FROM expect e LEFT JOIN
           (SELECT curve, skycat.lc_stats(flux, flux_err, mjd) AS s FROM curves GROUP BY curve) g USING (curve)
         ORDER BY e.curve",
        checks.join(", ")
    );
    let rows = c.query(&sql, &[]).unwrap();
    assert!(rows.len() >= 20);
    for r in &rows {
        let curve: i32 = r.get(0);
        if curve == 0 {
            continue; // the empty curve has no rows, so no group: checked below
        }
        assert!(r.get::<_, bool>(1), "n of curve {curve}");
        for (k, f) in FIELDS.iter().enumerate() {
            assert!(r.get::<_, bool>(k + 2), "curve {curve}: {f} differs from the numpy/pandas reference");
        }
    }
    // No rows at all: n = 0 and every other field NULL.
    let r = c.query_one("SELECT (s).n, (s).mean IS NULL AND (s).p50 IS NULL FROM (SELECT skycat.lc_stats(flux, flux_err, mjd) s FROM curves WHERE false) q", &[]).unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, bool>(1)), (0, true));
}

#[test]
fn parallel_lc_stats_equal_the_serial_plan() {
    let mut db = ScratchDb::new("lc_parallel");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat; CREATE TABLE forced_source (object_id bigint, band int2, mjd float8, psf_flux float8, psf_flux_err float8)").unwrap();
    let mut w = c.copy_in("COPY forced_source FROM STDIN (FORMAT csv)").unwrap();
    let mut n = 0usize;
    forced::forced_sources(3000, 6, 17.0, 5, |s| {
        writeln!(w, "{},{},{},{},{}", s.object_id, s.band, s.mjd, csv_f64(s.psf_flux), csv_f64(s.psf_flux_err))
            .unwrap();
        n += 1;
    });
    w.finish().unwrap();
    assert!(n > 250_000);
    c.batch_execute(
        "ANALYZE forced_source;
         SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
         SET max_parallel_workers_per_gather = 2;",
    )
    .unwrap();
    let q = "SELECT object_id, band, skycat.lc_stats(psf_flux, psf_flux_err, mjd)::text AS s,
                    skycat.flux_mean(psf_flux, psf_flux_err)::text AS m FROM forced_source GROUP BY 1, 2";
    let plan: Vec<String> =
        c.query(&format!("EXPLAIN (ANALYZE, COSTS OFF) {q}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let plan = plan.join("\n");
    assert!(plan.contains("Partial") && plan.contains("Workers Launched: 2"), "not a parallel plan:\n{plan}");
    c.batch_execute(&format!(
        "CREATE TABLE par AS {q}; SET max_parallel_workers_per_gather = 0; CREATE TABLE ser AS {q}"
    ))
    .unwrap();
    let r = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE p.s <> q.s),
                    max(abs(split_part(trim(p.m, '()'), ',', 1)::float8 / split_part(trim(q.m, '()'), ',', 1)::float8 - 1))
               FROM par p JOIN ser q USING (object_id, band)",
            &[],
        )
        .unwrap();
    let (groups, differ, flux_mean_rel): (i64, i64, f64) = (r.get(0), r.get(1), r.get(2));
    assert_eq!(groups, 18_000);
    assert_eq!(differ, 0, "lc_stats differs between the parallel and the serial plan");
    assert!(flux_mean_rel < 1e-12, "flux_mean parallel vs serial: {flux_mean_rel}");
}

#[test]
fn light_aggregates_and_the_memory_limit() {
    let mut db = ScratchDb::new("lc_light");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    // flux_mean: closed form for 1, 3 with sigma 1 and 2 (weights 1 and 1/4); NaN and zero-error rows skipped.
    let r = c
        .query_one(
            "SELECT (m).mean, (m).mean_err, (m).n FROM (SELECT skycat.flux_mean(f, e) m
               FROM (VALUES (1.0, 1.0), (3.0, 2.0), ('NaN', 1.0), (7.0, 0.0), (NULL, 1.0)) v(f, e)) s",
            &[],
        )
        .unwrap();
    let (mean, err, n): (f64, f64, i64) = (r.get(0), r.get(1), r.get(2));
    assert!((mean - (1.0 + 3.0 / 4.0) / 1.25).abs() < 1e-15 && (err - (1.0f64 / 1.25).sqrt()).abs() < 1e-15 && n == 2);
    // mean_position across RA 0/360 and around the north pole, against unit vectors summed here.
    for (pts, what) in [
        (vec![(359.5f64, -20.0f64), (0.7, -20.2), (0.1, -19.9)], "across RA 0"),
        (vec![(0.0, 89.9), (90.0, 89.9), (180.0, 89.9), (270.0, 89.95)], "around the pole"),
    ] {
        let values: Vec<String> = pts.iter().map(|(a, d)| format!("({a}::float8, {d}::float8)")).collect();
        let r = c
            .query_one(
                &format!(
                    "SELECT (p).ra, (p).dec FROM (SELECT skycat.mean_position(a, d) p FROM (VALUES {}) v(a, d)) s",
                    values.join(", ")
                ),
                &[],
            )
            .unwrap();
        let mut v = [0.0f64; 3];
        for (a, d) in &pts {
            let (a, d) = (a.to_radians(), d.to_radians());
            v[0] += d.cos() * a.cos();
            v[1] += d.cos() * a.sin();
            v[2] += d.sin();
        }
        let ra = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
        let dec = v[2].atan2(v[0].hypot(v[1])).to_degrees();
        let (got_ra, got_dec): (f64, f64) = (r.get(0), r.get(1));
        assert!((got_dec - dec).abs() < 1e-12, "{what}: dec {got_dec} vs {dec}");
        assert!((got_ra - ra).abs() < 1e-9 || (got_ra - ra).abs() > 360.0 - 1e-9, "{what}: ra {got_ra} vs {ra}");
    }
    // The memory limit: a clear error, not a crash or an out-of-memory kill.
    c.batch_execute("SET skycat.lc_stats_max_rows = 1000").unwrap();
    let err = c.query_one("SELECT skycat.lc_stats(g::float8, 1, g) FROM generate_series(1, 5000) g", &[]).unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::PROGRAM_LIMIT_EXCEEDED), "{err:?}");
    c.batch_execute("RESET skycat.lc_stats_max_rows").unwrap();
    let n: i64 =
        c.query_one("SELECT (skycat.lc_stats(g::float8, 1, g)).n FROM generate_series(1, 5000) g", &[]).unwrap().get(0);
    assert_eq!(n, 5000);
}
