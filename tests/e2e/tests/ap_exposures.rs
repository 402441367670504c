//! The AP's exposure metadata end to end (sql/ap_exposures.sql): a simulated night whose
//! per-visit exposure files (visit, fpa_exposure, fpa_exposure_to_visit, ccd_exposure,
//! amp_exposure) are written by the driver and ingested by `ap_post_visit`, compared row by row
//! with the simulator's own truth (`Night::exposures`, not the files read back); a post killed
//! in the middle of the ingest and run again; a second ingest of a visit; and visits whose file
//! is missing or empty, which stop their post with 58P01 and keep nothing of the visit.

use std::path::PathBuf;

use postgres::Client;
use skycat_ap::run::{self, Phase, Sessions};
use skycat_ap::{load, score};
use skycat_e2e::ScratchDb;
use skycat_sim::night::{
    simulate, AmpExposure, CcdExposure, FpaExposure, FpaExposureToVisit, Night, NightConfig, Visit, VisitExposures,
};
use skycat_sim::night_parquet::write_visit_exposures;
use skycat_sim::BANDS;

const NIGHT: &str = "2026-11-23";

fn no_progress(_: Phase, _: i64) {}

/// A scratch database with skycat.
fn ap_db(scenario: &str) -> ScratchDb {
    let mut db = ScratchDb::new(scenario);
    db.client.batch_execute("CREATE EXTENSION IF NOT EXISTS skycat").unwrap();
    db
}

/// A directory under /tmp the server (another OS user) reads the exposure files from, removed
/// at the end.
struct FilesDir(PathBuf);

impl FilesDir {
    fn new(scenario: &str) -> FilesDir {
        let p = PathBuf::from(format!("/tmp/skycat_e2e_{scenario}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        FilesDir(p)
    }

    fn visit_file(&self, visit: i64, kind: &str) -> PathBuf {
        self.0.join(format!("visit={visit}/{kind}.parquet"))
    }
}

impl Drop for FilesDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small_night() -> Night {
    simulate(&NightConfig { objects: 20_000, visits: 6, sources_per_visit: 500, ..NightConfig::default() })
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

fn sqlstate(e: &postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_default()
}

fn band(s: &str) -> &'static str {
    BANDS.iter().find(|b| **b == s).unwrap_or_else(|| panic!("not a band: {s}"))
}

/// The five tables of `schema` as the simulator's types, each sorted by its primary key.
fn database_exposures(c: &mut Client, schema: &str) -> (Vec<Visit>, VisitExposures) {
    let visits = c
        .query(&format!("SELECT visit, ra, \"dec\", mjd, band FROM {schema}.visit ORDER BY visit"), &[])
        .unwrap()
        .iter()
        .map(|r| Visit { visit: r.get(0), ra: r.get(1), dec: r.get(2), mjd: r.get(3), band: band(r.get(4)) })
        .collect();
    let fpa = c
        .query(
            &format!("SELECT exposure_id, ra, \"dec\", mjd, band, exp_time FROM {schema}.fpa_exposure ORDER BY 1"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| FpaExposure {
            exposure_id: r.get(0),
            ra: r.get(1),
            dec: r.get(2),
            mjd: r.get(3),
            band: band(r.get(4)),
            exp_time: r.get(5),
        })
        .collect();
    let to_visit = c
        .query(&format!("SELECT exposure_id, visit FROM {schema}.fpa_exposure_to_visit ORDER BY 1"), &[])
        .unwrap()
        .iter()
        .map(|r| FpaExposureToVisit { exposure_id: r.get(0), visit: r.get(1) })
        .collect();
    let ccds = c
        .query(
            &format!(
                "SELECT exposure_id, ccd, ra, \"dec\", zero_point, seeing_arcsec, sky_background
                   FROM {schema}.ccd_exposure ORDER BY 1, 2"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| CcdExposure {
            exposure_id: r.get(0),
            ccd: r.get(1),
            ra: r.get(2),
            dec: r.get(3),
            zero_point: r.get(4),
            seeing_arcsec: r.get(5),
            sky_background: r.get(6),
        })
        .collect();
    let amps = c
        .query(
            &format!(
                "SELECT exposure_id, ccd, amp, gain, read_noise, bias_level FROM {schema}.amp_exposure ORDER BY 1, 2, 3"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| AmpExposure {
            exposure_id: r.get(0),
            ccd: r.get(1),
            amp: r.get(2),
            gain: r.get(3),
            read_noise: r.get(4),
            bias_level: r.get(5),
        })
        .collect();
    let none = Visit { visit: 0, ra: 0.0, dec: 0.0, mjd: 0.0, band: "" };
    (visits, VisitExposures { visit: none, fpa, to_visit, ccds, amps })
}

/// The simulator's truth for `visits`, in the same shape (visit ids and exposure ids grow
/// together, so concatenating the visits in order keeps every list sorted by its key).
fn truth_exposures(night: &Night, visits: &[Visit]) -> (Vec<Visit>, VisitExposures) {
    let none = Visit { visit: 0, ra: 0.0, dec: 0.0, mjd: 0.0, band: "" };
    let mut all = VisitExposures { visit: none, fpa: vec![], to_visit: vec![], ccds: vec![], amps: vec![] };
    for v in visits {
        let e = night.exposures(v);
        all.fpa.extend(e.fpa);
        all.to_visit.extend(e.to_visit);
        all.ccds.extend(e.ccds);
        all.amps.extend(e.amps);
    }
    (visits.to_vec(), all)
}

/// Every row of the five tables equals the truth of the whole night, field by field (floats to
/// the bit), and nothing else is there.
fn assert_tables_equal_truth(c: &mut Client, schema: &str, night: &Night) {
    let (db_visits, db) = database_exposures(c, schema);
    let (want_visits, want) = truth_exposures(night, &night.visits);
    assert_eq!(db_visits, want_visits, "{schema}.visit");
    assert_eq!(db.fpa, want.fpa, "{schema}.fpa_exposure");
    assert_eq!(db.to_visit, want.to_visit, "{schema}.fpa_exposure_to_visit");
    assert_eq!(db.ccds.len(), want.ccds.len(), "{schema}.ccd_exposure rows");
    assert!(db.ccds == want.ccds, "{schema}.ccd_exposure differs from the truth");
    assert_eq!(db.amps.len(), want.amps.len(), "{schema}.amp_exposure rows");
    assert!(db.amps == want.amps, "{schema}.amp_exposure differs from the truth");
    assert_eq!(want.fpa.len(), 2 * night.visits.len());
    assert_eq!(want.amps.len(), 2 * 189 * 16 * night.visits.len());
}

/// What a post of `visit` changes, as text: the visit's rows in the exposure tables (its
/// exposures, CCDs and amplifiers), and a digest of the tables the post writes (objects, the
/// visit's DIASources, tonight's ids) and of the post's log row.
fn post_state(c: &mut Client, schema: &str, visit: i64) -> Vec<(&'static str, String)> {
    let ids = format!("({}, {})", visit * 2, visit * 2 + 1);
    let digest = |from: &str, order: &str| {
        format!("SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY {order})), '') FROM {from}")
    };
    [
        ("fpa_exposure", format!("SELECT count(*)::text FROM {schema}.fpa_exposure WHERE exposure_id IN {ids}")),
        (
            "fpa_exposure_to_visit",
            format!("SELECT count(*)::text FROM {schema}.fpa_exposure_to_visit WHERE visit = {visit}"),
        ),
        ("ccd_exposure", format!("SELECT count(*)::text FROM {schema}.ccd_exposure WHERE exposure_id IN {ids}")),
        ("amp_exposure", format!("SELECT count(*)::text FROM {schema}.amp_exposure WHERE exposure_id IN {ids}")),
        ("object", digest(&format!("{schema}.object t"), "t.object_id")),
        (
            "dia_source",
            digest(&format!("(SELECT * FROM {schema}.dia_source WHERE visit = {visit}) t"), "t.dia_source_id"),
        ),
        ("dia_source_id_tonight", digest(&format!("{schema}.dia_source_id_tonight t"), "t.dia_source_id")),
        (
            "visit_log",
            format!("SELECT count(*)::text FROM {schema}.visit_log WHERE visit = {visit} AND phase = 'post'"),
        ),
    ]
    .into_iter()
    .map(|(what, sql)| (what, c.query_one(&sql, &[]).unwrap().get(0)))
    .collect()
}

/// After a failed post of `visit`: the state is what it was before the post (`before`), and
/// none of the visit's exposure rows are there.
fn assert_nothing_of_post(c: &mut Client, schema: &str, visit: i64, before: &[(&'static str, String)], after: &str) {
    let now = post_state(c, schema, visit);
    assert_eq!(now, before, "{after} changed what the post writes");
    assert_eq!(
        now[..4],
        [
            ("fpa_exposure", "0".into()),
            ("fpa_exposure_to_visit", "0".into()),
            ("ccd_exposure", "0".into()),
            ("amp_exposure", "0".into())
        ],
        "{after} left exposure rows"
    );
}

/// The visit row as the pipeline loaded it before the night.
fn visit_row(c: &mut Client, schema: &str, visit: i64) -> Option<(f64, f64, f64, String)> {
    c.query_opt(&format!("SELECT ra, \"dec\", mjd, band FROM {schema}.visit WHERE visit = $1"), &[&visit])
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

#[test]
fn a_night_ingests_the_simulators_exposures_and_nothing_else_changes() {
    let mut db = ap_db("ap_exp_night");
    let night = small_night();
    let files = FilesDir::new("ap_exp_night");
    let dsn = db.dsn();
    let c = &mut db.client;

    // Not configured: the same night without exposure files leaves the tables empty.
    load::load_night(c, "ap_plain", &night, true).unwrap();
    let visits = run::pointings(c, "ap_plain").unwrap();
    run::run_night(&dsn, "ap_plain", NIGHT, &visits, Sessions::One, &no_progress).unwrap();
    for t in ["fpa_exposure", "fpa_exposure_to_visit", "ccd_exposure", "amp_exposure"] {
        assert_eq!(count(c, &format!("SELECT count(*) FROM ap_plain.{t}")), 0, "ap_plain.{t}");
    }
    let n: i32 = c.query_one("SELECT skycat._ap_ingest_exposures('ap_plain', $1)", &[&visits[0].visit]).unwrap().get(0);
    assert_eq!(n, 0, "nothing to ingest when not configured");

    // Configured, three sessions. The pipeline loaded ap.visit before the night: one visit's
    // row is missing (the ingest inserts it) and one holds a planned pointing (the file's row,
    // the observed one, replaces it).
    load::load_night(c, "ap", &night, true).unwrap();
    let visits = run::pointings(c, "ap").unwrap();
    let msg = load::exposure_files(c, "ap", &night, &files.0).unwrap();
    assert!(msg.contains("ingests exposure metadata"), "{msg}");
    c.execute("DELETE FROM ap.visit WHERE visit = $1", &[&visits[1].visit]).unwrap();
    c.execute("UPDATE ap.visit SET ra = 0, \"dec\" = 0, mjd = 0, band = 'u' WHERE visit = $1", &[&visits[2].visit])
        .unwrap();
    let policy: String = c.query_one("SELECT skycat.ap_policy('ap', 'exposure_files')", &[]).unwrap().get(0);
    assert_eq!(PathBuf::from(&policy), std::fs::canonicalize(&files.0).unwrap());
    run::run_night(&dsn, "ap", NIGHT, &visits, Sessions::Three, &no_progress).unwrap();

    assert_tables_equal_truth(c, "ap", &night);
    // The association is the same as without the exposure files.
    for t in ["object", "dia_source", "dia_source_match", "moving_object", "dia_source_id_tonight"] {
        let diff = count(
            c,
            &format!(
                "SELECT (SELECT count(*) FROM (SELECT * FROM ap.{t} EXCEPT ALL SELECT * FROM ap_plain.{t}) x)
                      + (SELECT count(*) FROM (SELECT * FROM ap_plain.{t} EXCEPT ALL SELECT * FROM ap.{t}) y)"
            ),
        );
        assert_eq!(diff, 0, "ap.{t} differs from ap_plain.{t}");
    }
    let s = score::score(c, "ap").unwrap();
    assert_eq!((s.lost(), s.duplicated()), (0, 0));

    // The setup's own errors: no such server, a directory outside the root, a bad directory.
    let server = load::exposure_server("ap");
    for (server, dir, state) in [
        ("no_such_server", files.0.to_str().unwrap().to_string(), "42704"),
        (server.as_str(), "/elsewhere".to_string(), "22023"),
        (server.as_str(), "a/../b".to_string(), "22023"),
    ] {
        let e = c.query_one("SELECT skycat.ap_exposure_files('ap', $1, $2)", &[&server, &dir]).unwrap_err();
        assert_eq!(sqlstate(&e), state, "{server} {dir}: {e}");
    }
    let e = c.query_one("SELECT skycat.ap_exposure_files('ap_none', 'ap_exposure_files', '.')", &[]).unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e}");
    // Turned off: the policy key and the foreign tables go, the rows stay.
    c.query_one("SELECT skycat.ap_exposure_files('ap', NULL, NULL)", &[]).unwrap();
    assert_eq!(count(c, "SELECT count(*) FROM ap.policy WHERE key = 'exposure_files'"), 0);
    assert_eq!(count(c, "SELECT count(*) FROM pg_class WHERE relname LIKE 'files\\_%' AND relkind = 'f'"), 0);
    let n: i32 = c.query_one("SELECT skycat._ap_ingest_exposures('ap', $1)", &[&visits[0].visit]).unwrap().get(0);
    assert_eq!(n, 0);
    assert_tables_equal_truth(c, "ap", &night);
}

#[test]
fn a_killed_post_ingests_again_and_a_second_ingest_fails_cleanly() {
    let mut db = ap_db("ap_exp_kill");
    let night = small_night();
    let files = FilesDir::new("ap_exp_kill");
    let dsn = db.dsn();
    let mut blocker = run::connect(&dsn).unwrap();
    let c = &mut db.client;
    load::load_night(c, "ap", &night, true).unwrap();
    let visits = run::pointings(c, "ap").unwrap();
    load::exposure_files(c, "ap", &night, &files.0).unwrap();
    c.execute("CALL skycat.ap_prepare_night('ap', $1::text::date)", &[&NIGHT]).unwrap();
    for p in &visits[..2] {
        run::run_visit(c, "ap", p, &no_progress).unwrap();
    }
    let (p, v) = (visits[2], visits[2].visit);
    // A planned pointing the pipeline loaded: the killed post's upsert must not survive.
    c.execute("UPDATE ap.visit SET ra = 0, \"dec\" = 0, mjd = 0, band = 'u' WHERE visit = $1", &[&v]).unwrap();
    run::run_phase(c, "ap", Phase::Prepare, &p).unwrap();
    run::run_phase(c, "ap", Phase::Associate, &p).unwrap();
    let before = post_state(c, "ap", v);

    // Post killed inside the ingest: it wrote the visit's DIASources and objects, its visit,
    // exposure and CCD rows, and waits to insert the amplifiers.
    blocker.batch_execute("BEGIN; LOCK TABLE ap.amp_exposure IN ACCESS EXCLUSIVE MODE").unwrap();
    skycat_e2e::kill_ap_phase_while_blocked(&dsn, "ap", Phase::Post, p, c);
    blocker.batch_execute("ROLLBACK").unwrap();
    assert_nothing_of_post(c, "ap", v, &before, "a killed post");
    assert_eq!(visit_row(c, "ap", v), Some((0.0, 0.0, 0.0, "u".to_string())), "the visit row as loaded");

    // Run again: the same rows as the truth.
    run::run_phase(c, "ap", Phase::Post, &p).unwrap();
    let posted = post_state(c, "ap", v);
    assert_eq!(
        posted[..4],
        [
            ("fpa_exposure", "2".into()),
            ("fpa_exposure_to_visit", "2".into()),
            ("ccd_exposure", "378".into()),
            ("amp_exposure", "6048".into())
        ]
    );
    assert_ne!(posted, before, "the post wrote");
    // A second ingest of the visit: 23505 on the primary keys, nothing changes.
    let e = c.query_one("SELECT skycat._ap_ingest_exposures('ap', $1)", &[&v]).unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{e}");
    assert_eq!(post_state(c, "ap", v), posted);
    let e = c.execute("CALL skycat.ap_post_visit('ap', $1)", &[&v]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "post twice: {e}");

    for p in &visits[3..] {
        run::run_visit(c, "ap", p, &no_progress).unwrap();
    }
    c.execute("CALL skycat.ap_post_night('ap', $1::text::date)", &[&NIGHT]).unwrap();
    assert_tables_equal_truth(c, "ap", &night);
}

#[test]
fn a_missing_or_empty_file_stops_post_with_58p01_and_keeps_nothing_of_the_visit() {
    let mut db = ap_db("ap_exp_missing");
    let night = small_night();
    let files = FilesDir::new("ap_exp_missing");
    let c = &mut db.client;
    load::load_night(c, "ap", &night, true).unwrap();
    let visits = run::pointings(c, "ap").unwrap();
    load::exposure_files(c, "ap", &night, &files.0).unwrap();
    let dir = std::fs::canonicalize(&files.0).unwrap();
    let (v2, v3) = (night.visits[2], night.visits[3]);
    // Visit 2's CCD file is missing; visit 3's amplifier file holds no rows.
    std::fs::remove_file(files.visit_file(v2.visit, "ccd_exposure")).unwrap();
    let mut empty = night.exposures(&v3);
    empty.amps.clear();
    write_visit_exposures(&dir, &empty).unwrap();

    c.execute("CALL skycat.ap_prepare_night('ap', $1::text::date)", &[&NIGHT]).unwrap();
    for p in &visits[..2] {
        run::run_visit(c, "ap", p, &no_progress).unwrap();
    }
    for (k, v, kind) in [(2, v2, "ccd_exposure"), (3, v3, "amp_exposure")] {
        let p = visits[k];
        assert_eq!(p.visit, v.visit);
        run::run_phase(c, "ap", Phase::Prepare, &p).unwrap();
        run::run_phase(c, "ap", Phase::Associate, &p).unwrap();
        let before = post_state(c, "ap", p.visit);
        let e = c.execute("CALL skycat.ap_post_visit('ap', $1)", &[&p.visit]).unwrap_err();
        assert_eq!(sqlstate(&e), "58P01", "{e}");
        let msg = e.as_db_error().unwrap().message().to_string();
        let file = format!("{}/visit={}/{kind}.parquet", dir.display(), p.visit);
        assert!(msg.contains(&format!("visit {}", p.visit)) && msg.contains(&file), "{msg}");
        assert_nothing_of_post(c, "ap", p.visit, &before, "a post without its file");
        // The file arrives; post again.
        write_visit_exposures(&dir, &night.exposures(&v)).unwrap();
        run::run_phase(c, "ap", Phase::Post, &p).unwrap();
    }
    for p in &visits[4..] {
        run::run_visit(c, "ap", p, &no_progress).unwrap();
    }
    c.execute("CALL skycat.ap_post_night('ap', $1::text::date)", &[&NIGHT]).unwrap();
    assert_tables_equal_truth(c, "ap", &night);
    let s = score::score(c, "ap").unwrap();
    assert_eq!((s.lost(), s.duplicated()), (0, 0));
}
