//! The nightly Association Pipeline (sql/ap.sql) end to end: a simulated night run through the
//! procedures in three concurrent sessions and in one, scored against the simulator's truth,
//! candidate pairs checked by brute force, the two databases compared row by row, and the
//! failure paths: a second associate of a visit, calls out of order, and backends killed in
//! the middle of associate and of post. The association of a fixed night is compared with the
//! one the previous implementation (a working set copied in and out of memory) produced.

use postgres::Client;
use skycat_ap::run::{self, Phase, Sessions};
use skycat_ap::{load, score};
use skycat_e2e::ScratchDb;
use skycat_sim::night::{simulate, Night, NightConfig};

const NIGHT: &str = "2026-11-23";

fn no_progress(_: Phase, _: i64) {}

/// A scratch database with skycat.
fn ap_db(scenario: &str) -> ScratchDb {
    let mut db = ScratchDb::new(scenario);
    db.client.batch_execute("CREATE EXTENSION skycat").unwrap();
    db
}

/// Loads `night` into `schema` and runs it to the end with `sessions`.
fn load_and_run(db: &mut ScratchDb, schema: &str, night: &Night, sessions: Sessions) {
    load::load_night(&mut db.client, schema, night, true).unwrap();
    let visits = run::pointings(&mut db.client, schema).unwrap();
    run::run_night(&db.dsn(), schema, NIGHT, &visits, sessions, &no_progress).unwrap();
}

/// Rows of `table` in schema `a` and not in `b`, plus the other way round (multisets).
fn differing_rows(c: &mut Client, a: &str, b: &str, table: &str) -> i64 {
    c.query_one(
        &format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM {a}.{table} EXCEPT ALL SELECT * FROM {b}.{table}) x)
                  + (SELECT count(*) FROM (SELECT * FROM {b}.{table} EXCEPT ALL SELECT * FROM {a}.{table}) y)"
        ),
        &[],
    )
    .unwrap()
    .get(0)
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// The tables a night writes, which must not depend on how the phases were interleaved.
const RESULT_TABLES: [&str; 6] =
    ["object", "object_position", "dia_source", "dia_source_match", "moving_object", "dia_source_id_tonight"];

fn assert_same_database(c: &mut Client, a: &str, b: &str) {
    for t in RESULT_TABLES {
        assert_eq!(differing_rows(c, a, b, t), 0, "{a}.{t} and {b}.{t} differ");
    }
}

#[test]
fn three_session_night_scores_against_truth_and_equals_the_sequential_night() {
    let mut db = ap_db("ap_night");
    // 200k objects, 30 visits of ~2,000 DIASources, fields visited in pairs and back to back.
    let night = simulate(&NightConfig::default());
    let n_sources: usize = night.sources.iter().map(Vec::len).sum();
    load_and_run(&mut db, "ap_three", &night, Sessions::Three);
    load_and_run(&mut db, "ap_one", &night, Sessions::One);

    for schema in ["ap_three", "ap_one"] {
        let s = score::score(&mut db.client, schema).unwrap();
        assert_eq!(s.n_truth, n_sources as i64);
        assert_eq!((s.lost(), s.duplicated()), (0, 0), "{schema}: every DIASource persisted exactly once");
        // 1 arcsec radius, 0.1 arcsec noise: a correct association is right for > 99%.
        assert!(s.completeness() > 0.99 && s.purity() > 0.99, "{schema}: {s:?}");
        assert!(s.moving_correct() > 0.99, "{schema}: moving objects {s:?}");
        assert_eq!(s.n_artefact_junk, s.n_artefact_truth, "{schema}: artefacts are junk");
        let (expected, missing, extra) = score::check_pairs(&mut db.client, schema).unwrap();
        assert!(expected > n_sources as i64 / 2, "the brute force finds the pairs ({expected})");
        assert_eq!((missing, extra), (0, 0), "{schema}: every candidate pair persisted, nothing else");
        // Each DIASource has a route, and the pairs it was given are marked in dia_source_match.
        let unrouted = count(&mut db.client, &format!("SELECT count(*) FROM {schema}.dia_source WHERE route IS NULL"));
        assert_eq!(unrouted, 0);
        let chosen_mismatch = count(
            &mut db.client,
            &format!(
                "SELECT count(*) FROM {schema}.dia_source d
                   FULL JOIN (SELECT * FROM {schema}.dia_source_match WHERE chosen) m USING (dia_source_id)
                  WHERE m.object_id IS DISTINCT FROM (CASE WHEN d.object_id <> d.dia_source_id THEN d.object_id END)"
            ),
        );
        assert_eq!(chosen_mismatch, 0, "{schema}: chosen pairs are the matched objects");
    }
    assert_same_database(&mut db.client, "ap_three", "ap_one");

    // Objects seen tonight carry the statistics of their DIASources: recompute them in plain
    // SQL (PostgreSQL's own aggregates over every DIASource of the object) and compare.
    assert_summaries_match_dia_sources(&mut db.client, "ap_one");
    // object_position holds every object's id and position, nothing else.
    assert_eq!(
        count(
            &mut db.client,
            "SELECT count(*) FROM (SELECT object_id, ra, \"dec\" FROM ap_one.object
                                   EXCEPT ALL SELECT * FROM ap_one.object_position) d"
        ) + count(&mut db.client, "SELECT count(*) FROM ap_one.object_position")
            - count(&mut db.client, "SELECT count(*) FROM ap_one.object"),
        0
    );

    // After the night: the indexed copy holds tonight's DIASources.
    let tonight = count(&mut db.client, "SELECT count(*) FROM ap_one.dia_source_tonight");
    assert_eq!(tonight, n_sources as i64);
}

/// Every object's counters and per-band summaries equal PostgreSQL's own aggregates over the
/// object's DIASources in `schema` (inverse-variance mean and error, sample sigma, rows used,
/// min, max, plain sum of the used fluxes), to 1e-9 relative: the night folds detections in one
/// at a time, this recomputes each light curve whole. Objects without DIASources are left out.
fn assert_summaries_match_dia_sources(c: &mut Client, schema: &str) {
    for band in ["u", "g", "r", "i", "z", "y"] {
        let sql = format!(
            "WITH h AS (SELECT object_id, band, psf_flux AS f, psf_flux_err AS e, mjd,
                              (psf_flux = psf_flux AND psf_flux_err = psf_flux_err AND psf_flux_err > 0
                               AND abs(psf_flux) < 'Infinity' AND psf_flux_err < 'Infinity') AS used
                         FROM {schema}.dia_source WHERE object_id IS NOT NULL),
                  s AS (SELECT object_id, count(*) AS n, min(mjd) AS first_mjd, max(mjd) AS last_mjd,
                               sum(f / e ^ 2) FILTER (WHERE used AND band = '{band}')
                                 / sum(e ^ -2) FILTER (WHERE used AND band = '{band}') AS mean,
                               sum(e ^ -2) FILTER (WHERE used AND band = '{band}') ^ -0.5 AS mean_err,
                               stddev_samp(f) FILTER (WHERE used AND band = '{band}') AS sigma,
                               count(*) FILTER (WHERE used AND band = '{band}') AS ndata,
                               min(f) FILTER (WHERE used AND band = '{band}') AS min,
                               max(f) FILTER (WHERE used AND band = '{band}') AS max,
                               sum(f) FILTER (WHERE used AND band = '{band}') AS sum
                          FROM h GROUP BY object_id)
             SELECT count(*) FROM s JOIN {schema}.object o USING (object_id)
              WHERE o.n_dia_sources <> s.n OR o.first_mjd <> s.first_mjd OR o.last_mjd <> s.last_mjd
                 OR o.{band}_psf_flux_ndata <> s.ndata
                 OR o.{band}_psf_flux_min IS DISTINCT FROM s.min OR o.{band}_psf_flux_max IS DISTINCT FROM s.max
                 OR (o.{band}_psf_flux_mean IS NULL) <> (s.mean IS NULL)
                 OR abs(o.{band}_psf_flux_mean - s.mean) > 1e-9 * greatest(abs(s.mean), 1)
                 OR abs(o.{band}_psf_flux_mean_err - s.mean_err) > 1e-9 * s.mean_err
                 OR (o.{band}_psf_flux_sigma IS NULL) <> (s.sigma IS NULL)
                 OR abs(o.{band}_psf_flux_sigma - s.sigma) > 1e-9 * greatest(s.sigma, 1)
                 OR abs(o.{band}_psf_flux_sum - s.sum) > 1e-9 * greatest(abs(s.sum), 1)"
        );
        assert_eq!(count(c, &sql), 0, "{schema}: band {band} summaries equal an independent recomputation");
    }
    let seen = count(c, &format!("SELECT count(*) FROM {schema}.object WHERE n_dia_sources > 0"));
    assert!(seen > 0, "{schema}: the night updated objects");
}

/// Per visit, a digest of the association (each DIASource's object, moving object and route;
/// every candidate pair with its separation, rank and choice), and one of the objects' ids,
/// positions and counters and one of the moving objects, as `kind visit md5` lines.
fn association_digests(c: &mut Client, schema: &str) -> Vec<String> {
    c.batch_execute("SET extra_float_digits = 3").unwrap();
    let sql = format!(
        "SELECT 'sources', visit, md5(string_agg(format('%s,%s,%s,%s', dia_source_id, object_id, moving_object_id, route), ';' ORDER BY dia_source_id))
           FROM {schema}.dia_source GROUP BY visit
         UNION ALL
         SELECT 'pairs', visit, md5(string_agg(format('%s,%s,%s,%s,%s', dia_source_id, object_id, sep_arcsec, rank, chosen), ';' ORDER BY dia_source_id, object_id))
           FROM {schema}.dia_source_match GROUP BY visit
         UNION ALL
         SELECT 'objects', NULL, md5(string_agg(format('%s,%s,%s,%s,%s,%s', object_id, ra, \"dec\", n_dia_sources, first_mjd, last_mjd), ';' ORDER BY object_id))
           FROM {schema}.object
         UNION ALL
         SELECT 'moving', NULL, md5(string_agg(format('%s,%s,%s,%s,%s', moving_object_id, ra, \"dec\", n_detections, last_mjd), ';' ORDER BY moving_object_id))
           FROM {schema}.moving_object
         ORDER BY 1, 2"
    );
    c.query(&sql, &[])
        .unwrap()
        .iter()
        .map(|r| {
            let visit: Option<i64> = r.get(1);
            format!(
                "{} {} {}",
                r.get::<_, String>(0),
                visit.map(|v| v.to_string()).unwrap_or_default(),
                r.get::<_, String>(2)
            )
        })
        .collect()
}

/// The default night (200k objects, 30 visits of ~2,000 DIASources) associates exactly as the
/// previous implementation did: tests/e2e/fixtures/ap_night_association.txt holds the digests
/// of the night it produced (every DIASource's object, moving object and route, every candidate
/// pair, every object's id, position and counters, every moving object).
#[test]
fn the_night_associates_as_the_previous_implementation_did() {
    let mut db = ap_db("ap_regression");
    load_and_run(&mut db, "ap", &simulate(&NightConfig::default()), Sessions::Three);
    let expected: Vec<String> =
        include_str!("../fixtures/ap_night_association.txt").lines().map(String::from).collect();
    let got = association_digests(&mut db.client, "ap");
    assert_eq!(got.len(), expected.len(), "as many visits");
    let differ: Vec<_> = got.iter().zip(&expected).filter(|(g, e)| g != e).map(|(g, _)| g.clone()).collect();
    assert!(differ.is_empty(), "association differs from the previous implementation in: {differ:?}");
}

/// A small night for the failure paths.
fn small_night() -> Night {
    simulate(&NightConfig { objects: 20_000, visits: 6, sources_per_visit: 500, ..NightConfig::default() })
}

fn sqlstate(e: &postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_default()
}

#[test]
fn visits_are_associated_once_and_in_order() {
    let mut db = ap_db("ap_order");
    let night = small_night();
    load::load_night(&mut db.client, "ap", &night, true).unwrap();
    let visits = run::pointings(&mut db.client, "ap").unwrap();
    let c = &mut db.client;
    c.execute("CALL skycat.ap_prepare_night('ap', '2026-11-23')", &[]).unwrap();

    // Associate before prepare, post before associate: clear errors, nothing written.
    let e = c.execute("CALL skycat.ap_associate('ap', $1)", &[&visits[0].visit]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "{e}");
    assert!(e.as_db_error().unwrap().message().contains("not prepared"));
    run::run_phase(c, "ap", Phase::Prepare, &visits[0]).unwrap();
    run::run_phase(c, "ap", Phase::Prepare, &visits[1]).unwrap();
    let e = c.execute("CALL skycat.ap_post_visit('ap', $1)", &[&visits[0].visit]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "{e}");
    // Visits are associated in the order they were prepared.
    let e = c.execute("CALL skycat.ap_associate('ap', $1)", &[&visits[1].visit]).unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("not associated yet"), "{e}");

    run::run_phase(c, "ap", Phase::Associate, &visits[0]).unwrap();
    let before: Vec<i64> = ["object", "object_position", "dia_source_match", "dia_source"]
        .iter()
        .map(|t| count(c, &format!("SELECT count(*) FROM ap.{t}")))
        .collect();
    // A second associate of the same visit is an error and changes nothing.
    let e = c.execute("CALL skycat.ap_associate('ap', $1)", &[&visits[0].visit]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    assert!(e.as_db_error().unwrap().message().contains("already associated"), "{e}");
    let after: Vec<i64> = ["object", "object_position", "dia_source_match", "dia_source"]
        .iter()
        .map(|t| count(c, &format!("SELECT count(*) FROM ap.{t}")))
        .collect();
    assert_eq!(before, after);
    // Daytime work refuses to run while visits are in flight.
    let e = c.execute("CALL skycat.ap_daytime('ap')", &[]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    // Preparing an associated visit again is refused too.
    let v0 = visits[0];
    let e = c.execute("CALL skycat.ap_prepare_visit('ap', $1, $2, $3)", &[&v0.visit, &v0.ra, &v0.dec]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000");

    run::run_phase(c, "ap", Phase::Post, &visits[0]).unwrap();
    let e = c.execute("CALL skycat.ap_post_visit('ap', $1)", &[&visits[0].visit]).unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "post twice: {e}");
    let persisted = count(c, &format!("SELECT count(*) FROM ap.dia_source WHERE visit = {}", v0.visit));
    assert_eq!(persisted, night.sources[0].len() as i64);
}

#[test]
fn killed_backends_leave_no_partial_visit_and_the_night_resumes() {
    let mut db = ap_db("ap_kill");
    let night = small_night();
    load_and_run(&mut db, "ap_ref", &night, Sessions::One);
    load::load_night(&mut db.client, "ap", &night, true).unwrap();
    let visits = run::pointings(&mut db.client, "ap").unwrap();
    let dsn = db.dsn();
    let mut blocker = run::connect(&dsn).unwrap();
    let c = &mut db.client;
    c.execute("CALL skycat.ap_prepare_night('ap', '2026-11-23')", &[]).unwrap();
    for v in &visits[..2] {
        run::run_visit(c, "ap", v, &no_progress).unwrap();
    }
    let (v, vs) = (visits[2], visits[2].visit);
    run::run_phase(c, "ap", Phase::Prepare, &v).unwrap();

    // Associate killed after it matched and wrote the candidate pairs, while its next statement
    // (the DIASources, the new objects) waits to update the moving objects.
    blocker.batch_execute("BEGIN; LOCK TABLE ap.moving_object IN ACCESS EXCLUSIVE MODE").unwrap();
    skycat_e2e::kill_ap_phase_while_blocked(&dsn, "ap", Phase::Associate, v, c);
    blocker.batch_execute("ROLLBACK").unwrap();
    for (sql, what) in [
        (format!("SELECT count(*) FROM ap.dia_source_match WHERE visit = {vs}"), "candidate pairs"),
        (format!("SELECT count(*) FROM ap.visit_log WHERE visit = {vs} AND phase = 'associate'"), "a log row"),
        (format!("SELECT count(*) FROM ap.dia_source WHERE visit = {vs}"), "DIASources"),
        (
            format!("SELECT count(*) FROM ap.object_position WHERE object_id IN (SELECT dia_source_id FROM ap.dia_source_new WHERE visit = {vs})"),
            "new objects",
        ),
    ] {
        assert_eq!(count(c, &sql), 0, "a killed associate left {what}");
    }
    run::run_phase(c, "ap", Phase::Associate, &v).unwrap();

    // Post killed after it updated the objects, while it waits to append tonight's ids.
    let summaries = "SELECT sum(n_dia_sources)::bigint FROM ap.object";
    let before = count(c, summaries);
    blocker.batch_execute("BEGIN; LOCK TABLE ap.dia_source_id_tonight IN ACCESS EXCLUSIVE MODE").unwrap();
    skycat_e2e::kill_ap_phase_while_blocked(&dsn, "ap", Phase::Post, v, c);
    blocker.batch_execute("ROLLBACK").unwrap();
    assert_eq!(count(c, summaries), before, "a killed post left object updates");
    assert_eq!(count(c, &format!("SELECT count(*) FROM ap.visit_log WHERE visit = {vs} AND phase = 'post'")), 0);
    assert!(count(c, &format!("SELECT count(*) FROM ap.dia_source_new WHERE visit = {vs}")) > 0, "the detections stay");

    // The night goes on from there and ends exactly as the uninterrupted one.
    run::run_phase(c, "ap", Phase::Post, &v).unwrap();
    for v in &visits[3..] {
        run::run_visit(c, "ap", v, &no_progress).unwrap();
    }
    c.execute("CALL skycat.ap_post_night('ap', '2026-11-23')", &[]).unwrap();
    assert_same_database(c, "ap", "ap_ref");
    let s = score::score(c, "ap").unwrap();
    assert_eq!((s.lost(), s.duplicated()), (0, 0));
}

/// A server crash empties the UNLOGGED tables (dia_source_new, ws_visit). Truncating them does
/// the same to a night with one visit associated but not post-processed and the next prepared:
/// ap_recover hands back the first with its detections, forgets the second, and the night
/// ends exactly as the uninterrupted one.
#[test]
fn a_crash_between_associate_and_post_is_recovered() {
    let mut db = ap_db("ap_crash");
    let night = small_night();
    load_and_run(&mut db, "ap_ref", &night, Sessions::One);
    load::load_night(&mut db.client, "ap", &night, true).unwrap();
    let visits = run::pointings(&mut db.client, "ap").unwrap();
    let c = &mut db.client;
    c.execute("CALL skycat.ap_prepare_night('ap', '2026-11-23')", &[]).unwrap();
    for v in &visits[..2] {
        run::run_visit(c, "ap", v, &no_progress).unwrap();
    }
    run::run_phase(c, "ap", Phase::Prepare, &visits[2]).unwrap();
    run::run_phase(c, "ap", Phase::Associate, &visits[2]).unwrap();
    run::run_phase(c, "ap", Phase::Prepare, &visits[3]).unwrap();
    c.batch_execute("TRUNCATE ap.dia_source_new, ap.ws_visit").unwrap();

    let todo: Vec<(i64, String)> =
        c.query("SELECT * FROM skycat.ap_recover('ap')", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(todo.len(), 1, "{todo:?}");
    assert_eq!(todo[0].0, visits[2].visit);
    assert_eq!(todo[0].1, format!("CALL skycat.ap_post_visit('ap', {})", visits[2].visit));
    assert_eq!(
        count(c, &format!("SELECT count(*) FROM ap.dia_source_new WHERE visit = {}", visits[2].visit)),
        night.sources[2].len() as i64,
        "the associated visit's detections are back"
    );
    c.batch_execute(&todo[0].1).unwrap();
    for v in &visits[3..] {
        run::run_visit(c, "ap", v, &no_progress).unwrap();
    }
    c.execute("CALL skycat.ap_post_night('ap', '2026-11-23')", &[]).unwrap();
    assert_same_database(c, "ap", "ap_ref");
}

#[test]
fn daytime_trims_old_dia_sources_and_reclassified_objects() {
    let mut db = ap_db("ap_daytime");
    let night = small_night();
    load_and_run(&mut db, "ap", &night, Sessions::One);
    let c = &mut db.client;
    let total = count(c, "SELECT count(*) FROM ap.dia_source");
    // Keep only the last 0.001 day (86 s: the last visits) of DIASources; flag three objects as moving.
    let newest: f64 = c.query_one("SELECT max(mjd) FROM ap.dia_source", &[]).unwrap().get(0);
    let keep = count(c, &format!("SELECT count(*) FROM ap.dia_source WHERE mjd >= {newest} - 0.001"));
    assert!(keep > 0 && keep < total, "the window cuts the night ({keep} of {total})");
    c.batch_execute(
        "UPDATE ap.policy SET value = '0.001' WHERE key = 'retention_days';
         UPDATE ap.object SET reclassified_moving = true
          WHERE object_id IN (SELECT object_id FROM ap.object ORDER BY object_id LIMIT 3);",
    )
    .unwrap();
    let objects = count(c, "SELECT count(*) FROM ap.object");
    c.execute("CALL skycat.ap_daytime('ap')", &[]).unwrap();
    assert_eq!(count(c, "SELECT count(*) FROM ap.dia_source"), keep);
    assert_eq!(count(c, "SELECT count(*) FROM ap.object"), objects - 3);
    assert_eq!(count(c, "SELECT count(*) FROM ap.object WHERE reclassified_moving"), 0);
    assert_eq!(count(c, "SELECT count(*) FROM ap.object_position"), objects - 3, "positions follow the objects");
    // The band summaries of the objects that lost DIASources are those of the ones they keep
    // (the counters n_dia_sources, first_mjd, last_mjd count the whole history and stay).
    let stale = count(
        c,
        "WITH kept AS (SELECT object_id, count(*) FILTER (WHERE band = 'g') AS n, min(psf_flux) FILTER (WHERE band = 'g') AS lo
                         FROM ap.dia_source WHERE object_id IS NOT NULL GROUP BY object_id)
         SELECT count(*) FROM ap.object o LEFT JOIN kept k USING (object_id)
          WHERE o.n_dia_sources > 0 AND (o.g_psf_flux_ndata <> coalesce(k.n, 0) OR o.g_psf_flux_min IS DISTINCT FROM k.lo)",
    );
    assert_eq!(stale, 0, "summaries recomputed from the kept DIASources");
}
