//! A pipeline developer calibrates a simulated raw tract in the database, survives an
//! interrupted run, recalibrates twice, and checks pixel -> sky against astropy's answers.
//!
//! References: fluxes from the closed forms written here (and a Chebyshev field from the
//! trigonometric definition T_n(cos t) = cos(n t)); positions from the astropy fixtures in
//! tests/fixtures/calibration (tests/fixtures/gen_calibration.py) and, for the simulated
//! tract, from the same WCS evaluated in-process by skycat-core (itself checked against
//! astropy to 1e-13 degree by crates/skycat-core/tests/calibration_fixtures.rs).

use std::collections::HashMap;
use std::io::Write;

use skycat_e2e::{fixture, ScratchDb};
use skycat_sim::csv_f64 as f;
use skycat_sim::tract::{self, DetectorCalib, RawSource};

const RAW_DDL: &str = "CREATE TABLE raw (source_id bigint, visit bigint, detector int, x float8, y float8,
    x_err float8, y_err float8, psf_inst_flux float8, psf_inst_flux_err float8, ap_inst_flux float8, ap_inst_flux_err float8)";

fn load_tract(c: &mut postgres::Client, calibs: &[DetectorCalib], per_detector: usize) -> Vec<RawSource> {
    c.batch_execute(
        "CREATE TABLE calibs (visit bigint, detector int, calib_mean float8, calib_err float8, wcs skycat.wcs,
                              PRIMARY KEY (visit, detector))",
    )
    .unwrap();
    for k in calibs {
        c.execute(
            "INSERT INTO calibs VALUES ($1, $2, $3, $4, $5::text::skycat.wcs)",
            &[&k.visit, &k.detector, &k.calib_mean, &k.calib_err, &k.wcs.to_json()],
        )
        .unwrap();
    }
    c.batch_execute(RAW_DDL).unwrap();
    let mut rows = Vec::new();
    tract::raw_sources(calibs, per_detector, 11, |s| rows.push(*s));
    let mut w = c.copy_in("COPY raw FROM STDIN (FORMAT csv)").unwrap();
    for s in &rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{}",
            s.source_id,
            s.visit,
            s.detector,
            s.x,
            s.y,
            s.x_err,
            s.y_err,
            f(s.psf_inst_flux),
            f(s.psf_inst_flux_err),
            f(s.ap_inst_flux),
            f(s.ap_inst_flux_err)
        )
        .unwrap();
    }
    w.finish().unwrap();
    c.batch_execute("ANALYZE raw").unwrap();
    rows
}

fn same(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn calibrate_a_simulated_tract_resuming_after_a_failure() {
    let mut db = ScratchDb::new("calibrate");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    let calibs = tract::calibs(2, 4, 1000, 53.1, -28.1, 5);
    let rows = load_tract(c, &calibs, 1500);
    // One raw row whose (visit, detector) has no calibration: reported, not written.
    c.batch_execute("INSERT INTO raw VALUES (-1, 77, 1, 1, 1, 0.1, 0.1, 100, 10, 100, 10)").unwrap();

    // A failure half-way (a trigger standing in for a crash or a full disk): the batches
    // committed before it stay, the failing one leaves nothing.
    // Calibrating an empty table of the same shape creates the (empty) target, so a trigger
    // that fails on one row can be attached to it.
    c.batch_execute(
        "CREATE TABLE raw_empty (LIKE raw);
         CALL skycat.calibrate_sources('raw_empty', 'calibs', 'src');
         CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.source_id = 7000 THEN RAISE EXCEPTION 'simulated failure'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER fail BEFORE INSERT ON src FOR EACH ROW EXECUTE FUNCTION fail_once();",
    )
    .unwrap();
    let err = c.batch_execute("CALL skycat.calibrate_sources('raw', 'calibs', 'src', batch_rows => 2000)").unwrap_err();
    assert!(
        err.to_string().contains("simulated failure") || format!("{err:?}").contains("simulated failure"),
        "{err:?}"
    );
    let partial: i64 = c.query_one("SELECT count(*) FROM src", &[]).unwrap().get(0);
    let progress: i64 = c
        .query_one("SELECT rows_written FROM skycat.calibration_progress WHERE source = 'public.raw'", &[])
        .unwrap()
        .get(0);
    assert!(partial > 0 && partial < rows.len() as i64, "partial run wrote {partial}");
    assert_eq!(partial, progress, "progress records exactly what was committed");
    c.batch_execute("DROP TRIGGER fail ON src").unwrap();
    c.batch_execute("CALL skycat.calibrate_sources('raw', 'calibs', 'src', batch_rows => 2000)").unwrap();

    // Every raw row with a calibration is there exactly once, and right.
    let by_key: HashMap<(i64, i32), &DetectorCalib> = calibs.iter().map(|k| ((k.visit, k.detector), k)).collect();
    let out = c
        .query(
            "SELECT source_id, count(*) OVER (PARTITION BY source_id), ra, dec, ra_err, dec_err, psf_flux, psf_flux_err,
                    ap_flux, ap_flux_err, calib_applied FROM src ORDER BY source_id",
            &[],
        )
        .unwrap();
    assert_eq!(out.len(), rows.len(), "one calibrated row per calibrated raw row");
    let mut nan_rows = 0;
    for (r, s) in out.iter().zip(&rows) {
        assert_eq!(r.get::<_, i64>(0), s.source_id);
        assert_eq!(r.get::<_, i64>(1), 1, "source {} written twice", s.source_id);
        let k = by_key[&(s.visit, s.detector)];
        let (ra, dec) = k.wcs.pixel_to_sky(s.x, s.y);
        assert!(same(r.get(2), ra, 1e-15) && same(r.get(3), dec, 1e-13), "position of {}", s.source_id);
        // 0.2 arcsec pixels: the position error is the pixel error times 0.2, to a few %.
        let ra_err: f64 = r.get(4);
        assert!((ra_err / (s.x_err * 0.2) - 1.0).abs() < 0.15, "ra_err {ra_err} for x_err {}", s.x_err);
        let psf: f64 = r.get(6);
        assert!(same(psf, s.psf_inst_flux * k.calib_mean, 1e-15));
        let want_err = ((s.psf_inst_flux_err * k.calib_mean).powi(2) + (s.psf_inst_flux * k.calib_err).powi(2)).sqrt();
        assert!(same(r.get(7), want_err, 1e-12));
        assert!(same(r.get(8), s.ap_inst_flux * k.calib_mean, 1e-15));
        assert_eq!(r.get::<_, f64>(10), k.calib_mean);
        nan_rows += psf.is_nan() as usize;
    }
    assert!(nan_rows > 0, "failed measurements stay NaN");
}

#[test]
fn two_sessions_calibrating_one_target_write_each_row_once() {
    let db = ScratchDb::new("calibrate_concurrent");
    let mut c = postgres::Client::connect(&db.dsn(), postgres::NoTls).unwrap();
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    let calibs = tract::calibs(2, 4, 1000, 53.1, -28.1, 5);
    let rows = load_tract(&mut c, &calibs, 5000);
    // The target exists already (an earlier, empty run), as when a run is resumed.
    c.batch_execute("CREATE TABLE raw_empty (LIKE raw); CALL skycat.calibrate_sources('raw_empty', 'calibs', 'out')")
        .unwrap();
    // Two sessions start the same calibration at once, in small batches.
    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (dsn, go) = (db.dsn(), go.clone());
            std::thread::spawn(move || {
                let mut s = postgres::Client::connect(&dsn, postgres::NoTls).unwrap();
                go.wait();
                s.batch_execute("CALL skycat.calibrate_sources('raw', 'calibs', 'out', batch_rows => 1000)")
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap().unwrap();
    }
    let (n, distinct): (i64, i64) = {
        let r = c.query_one("SELECT count(*), count(DISTINCT source_id) FROM out", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(distinct, rows.len() as i64, "every raw row calibrated");
    assert_eq!(n, rows.len() as i64, "no raw row written twice");
    let recorded: i64 = c
        .query_one("SELECT rows_written FROM skycat.calibration_progress WHERE source = 'public.raw'", &[])
        .unwrap()
        .get(0);
    assert_eq!(recorded, n, "progress counts each batch once");
}

/// T_n(x) by its trigonometric definition.
fn cheb(n: usize, x: f64) -> f64 {
    (n as f64 * x.clamp(-1.0, 1.0).acos()).cos()
}

#[test]
fn recalibrate_with_a_chebyshev_field_twice() {
    let mut db = ScratchDb::new("recalibrate");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    let calibs = tract::calibs(1, 3, 1, 150.0, 2.2, 9);
    let rows = load_tract(c, &calibs, 800);
    c.batch_execute("CALL skycat.calibrate_sources('raw', 'calibs', 'src')").unwrap();
    // New calibrations: a field 0.5 + 0.01 T1(x') + 0.02 T1(y') - 0.004 T2(x') on each detector.
    let coef = [[0.5, 0.01, -0.004], [0.02, 0.0, 0.0]];
    let json = format!(r#"{{"calibrationErr": 0.002, "bbox": [0, 0, 4071, 3999], "coefficients": {coef:?}}}"#);
    c.execute(
        "CREATE TABLE new_calibs AS SELECT visit, detector, $1::text::skycat.photo_calib AS photo_calib FROM calibs",
        &[&json],
    )
    .unwrap();
    c.batch_execute("CALL skycat.recalibrate_sources('src', 'new_calibs')").unwrap();
    let check = |c: &mut postgres::Client| {
        let out = c
            .query("SELECT source_id, psf_flux, psf_flux_err, ap_flux, xmin::text FROM src ORDER BY source_id", &[])
            .unwrap();
        assert_eq!(out.len(), rows.len());
        for (r, s) in out.iter().zip(&rows) {
            let (xs, ys) = ((s.x - 2035.5) / 2036.0, (s.y - 1999.5) / 2000.0);
            let mut cal = 0.0;
            for (j, row) in coef.iter().enumerate() {
                for (i, a) in row.iter().enumerate() {
                    cal += a * cheb(i, xs) * cheb(j, ys);
                }
            }
            assert!(
                same(r.get(1), s.psf_inst_flux * cal, 1e-12),
                "{} {} {}",
                s.source_id,
                r.get::<_, f64>(1),
                s.psf_inst_flux * cal
            );
            let want_err = ((s.psf_inst_flux_err * cal).powi(2) + (s.psf_inst_flux * 0.002).powi(2)).sqrt();
            assert!(same(r.get(2), want_err, 1e-9), "err of {}", s.source_id);
            assert!(same(r.get(3), s.ap_inst_flux * cal, 1e-12));
        }
        out.iter().map(|r| r.get::<_, String>(4)).collect::<Vec<_>>()
    };
    let first = check(c);
    // Applying the same table again changes nothing: not a value, not even a row version.
    c.batch_execute("CALL skycat.recalibrate_sources('src', 'new_calibs')").unwrap();
    assert_eq!(check(c), first, "the second recalibration rewrote rows");
}

#[test]
fn pixel_to_sky_in_sql_matches_astropy() {
    let mut db = ScratchDb::new("wcs_fixture");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat; CREATE TABLE headers (i int, w skycat.wcs)").unwrap();
    let text = std::fs::read_to_string(fixture("calibration/wcs_headers.json")).unwrap();
    let headers: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (i, h) in headers.as_array().unwrap().iter().enumerate() {
        c.execute("INSERT INTO headers VALUES ($1, $2::text::skycat.wcs)", &[&(i as i32), &h.to_string()]).unwrap();
    }
    c.batch_execute(
        "CREATE TABLE expect (i int, x float8, y float8, ra float8, dec float8, j1 float8, j2 float8, j3 float8, j4 float8)",
    )
    .unwrap();
    let csv = std::fs::read_to_string(fixture("calibration/wcs_pixel_to_sky.csv")).unwrap();
    let mut w = c.copy_in("COPY expect FROM STDIN (FORMAT csv, HEADER true)").unwrap();
    w.write_all(csv.as_bytes()).unwrap();
    w.finish().unwrap();
    // Interleave the headers row by row (ORDER BY random) so the per-backend WCS cache is
    // exercised with a different WCS on most rows.
    let row = c
        .query_one(
            "SELECT count(*), max(skycat.sep_arcsec((p).ra, (p).dec, ra, dec)) / 3600,
                    max(greatest(abs((q).x - x), abs((q).y - y)))
               FROM (SELECT e.*, skycat.pixel_to_sky(h.w, e.x, e.y) AS p, skycat.sky_to_pixel(h.w, e.ra, e.dec) AS q
                       FROM expect e JOIN headers h USING (i) ORDER BY random() OFFSET 0) s",
            &[],
        )
        .unwrap();
    let (n, worst_deg, worst_px): (i64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    assert!(n > 1000);
    assert!(worst_deg < 1e-9, "pixel_to_sky differs from astropy by {worst_deg} degree");
    assert!(worst_px < 1e-6, "sky_to_pixel of astropy's positions is {worst_px} pixel off");
}
