//! A pipeline developer cross-matches a simulated field through a client: bulk `crossmatch`
//! in every mode and an indexed `dwithin` join, both checked against a brute-force reference
//! computed here (unit vectors, not skycat's formula); then cancels a long match.

use std::io::Write;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use skycat_e2e::{brute_pairs, ScratchDb};
use skycat_sim::sky::{self, SimSource};

fn load(c: &mut postgres::Client, table: &str, rows: &[SimSource]) {
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, ra float8, dec float8, ra_err_arcsec float8, dec_err_arcsec float8)"
    ))
    .unwrap();
    let mut w = c.copy_in(&format!("COPY {table} FROM STDIN (FORMAT csv)")).unwrap();
    for s in rows {
        // `{}` prints the shortest representation that reads back as the same double.
        writeln!(w, "{},{},{},{},{}", s.id, s.ra, s.dec, s.ra_err_arcsec, s.dec_err_arcsec).unwrap();
    }
    w.finish().unwrap();
    c.batch_execute(&format!("ANALYZE {table}")).unwrap();
}

#[test]
fn crossmatch_a_simulated_field() {
    let mut db = ScratchDb::new("crossmatch");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    // A dense field across RA 0/360, and its re-observation with noise plus new sources.
    let objects = sky::in_field(30_000, 7, 1, 0.2, -10.0, 0.5);
    let sources = sky::reobserve(&objects, 8, 1_000_000, 0.3, 0.2, 2_000);
    let sources: Vec<SimSource> = sources
        .into_iter()
        .map(|mut s| {
            if s.id >= 1_000_000 + 9_000 {
                // keep the new sources inside the field too
                let p = sky::offset(0.2, -10.0, (s.id % 1000) as f64 / 2000.0, (s.id % 360) as f64);
                s.ra = p.0;
                s.dec = p.1;
            }
            s
        })
        .collect();
    load(c, "object", &objects);
    load(c, "source", &sources);

    for r in [0.5, 2.0, 10.0] {
        let brute = brute_pairs(&sources, &objects, r);
        assert!(brute.len() > 1000, "the field must produce matches ({} at {r})", brute.len());
        let rows = c
            .query(
                "SELECT left_id, right_id, sep_arcsec, rank FROM skycat.crossmatch(
                   'SELECT id, ra, dec FROM source', 'SELECT id, ra, dec FROM object', $1) ORDER BY 1, 2",
                &[&r],
            )
            .unwrap();
        let got: Vec<(i64, i64, f64)> = rows.iter().map(|x| (x.get(0), x.get(1), x.get(2))).collect();
        // Same pairs; separations agree far below a micro-arcsecond. Pairs within 1e-9" of the
        // radius could legitimately differ between the two formulas: there are none here.
        assert_eq!(got.len(), brute.len(), "radius {r}");
        for (g, b) in got.iter().zip(&brute) {
            assert_eq!((g.0, g.1), (b.0, b.1));
            assert!((g.2 - b.2).abs() < 1e-6, "{g:?} vs {b:?}");
        }
        // The indexed join returns the same pairs, whichever argument order.
        c.batch_execute("CREATE INDEX IF NOT EXISTS object_sky ON object (skycat.sky_key(ra, dec))").unwrap();
        for q in [
            "SELECT count(*) FROM source s JOIN object o ON skycat.dwithin(s.ra, s.dec, o.ra, o.dec, $1)",
            "SELECT count(*) FROM source s JOIN object o ON skycat.dwithin(o.ra, o.dec, s.ra, s.dec, $1)",
        ] {
            let n: i64 = c.query_one(q, &[&r]).unwrap().get(0);
            assert_eq!(n as usize, brute.len(), "{q} at {r}");
        }
        // One-to-one modes choose among those pairs, each side at most once.
        for mode in ["greedy", "optimal"] {
            let rows = c
                .query(
                    "SELECT left_id, right_id FROM skycat.crossmatch(
                       'SELECT * FROM source', 'SELECT * FROM object', $1, $2)",
                    &[&r, &mode],
                )
                .unwrap();
            let mut l: Vec<i64> = rows.iter().map(|x| x.get(0)).collect();
            let mut o: Vec<i64> = rows.iter().map(|x| x.get(1)).collect();
            for (a, b) in l.iter().zip(&o) {
                assert!(brute.binary_search_by_key(&(*a, *b), |p| (p.0, p.1)).is_ok());
            }
            l.sort();
            o.sort();
            assert!(l.windows(2).all(|w| w[0] != w[1]) && o.windows(2).all(|w| w[0] != w[1]), "{mode}");
        }
    }
}

#[test]
fn a_crossmatch_is_cancelled_while_reading_its_inputs() {
    let mut db = ScratchDb::new("cancel");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat; SET statement_timeout = '300ms'").unwrap();
    let t = Instant::now();
    let err = c
        .query(
            "SELECT count(*) FROM skycat.crossmatch(
               'SELECT i, 360 * random(), degrees(asin(2 * random() - 1)) FROM generate_series(1, 3000000) i',
               'SELECT i, 360 * random(), degrees(asin(2 * random() - 1)) FROM generate_series(1, 3000000) i', 30)",
            &[],
        )
        .unwrap_err();
    let elapsed = t.elapsed();
    assert_eq!(err.as_db_error().map(|e| e.code().clone()), Some(SqlState::QUERY_CANCELED), "{err}");
    // Reading 3 million generated rows per input takes seconds: the timeout lands while an
    // input is read, and the statement stops within moments of it.
    assert!(elapsed < Duration::from_secs(5), "the cancel took {elapsed:?} to land (timeout 300 ms)");
    c.batch_execute("SET statement_timeout = 0").unwrap();
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
}

#[test]
fn a_crossmatch_is_cancelled_in_the_middle_of_its_matching() {
    // 5,000 x 5,000 sources packed within a few hundredths of an arcsecond: 25 million
    // candidate pairs in one component, over which the optimal assignment works for about ten
    // seconds (9.6 s uncancelled on a 2-core machine). Reading the two inputs takes
    // milliseconds, so the 1 s statement_timeout lands in the matching itself, on the helper
    // threads, and must stop it there rather than at its end.
    let mut db = ScratchDb::new("cancel_matching");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();
    let input = "SELECT i::bigint, (10 + (i % 70) * 1e-6)::float8, (10 + (i / 70) * 1e-6)::float8 FROM generate_series(1, 5000) i";
    // The inputs alone are quick (the timeout cannot land while reading them).
    let t = Instant::now();
    let n: i64 = c.query_one("SELECT skycat.crossmatch_input_rows($1)", &[&input]).unwrap().get(0);
    assert_eq!(n, 5000);
    assert!(t.elapsed() < Duration::from_millis(500), "reading an input took {:?}", t.elapsed());
    c.batch_execute("SET statement_timeout = '1s'").unwrap();
    let t = Instant::now();
    let err = c.query("SELECT count(*) FROM skycat.crossmatch($1, $1, 1, 'optimal')", &[&input]).unwrap_err();
    let elapsed = t.elapsed();
    assert_eq!(err.as_db_error().map(|e| e.code().clone()), Some(SqlState::QUERY_CANCELED), "{err}");
    assert!(elapsed >= Duration::from_secs(1), "it ran until the timeout: {elapsed:?}");
    // Generous for a shared machine: the point is "within moments", not "at the end of the work".
    assert!(elapsed < Duration::from_secs(6), "the cancel took {elapsed:?} to land");
    c.batch_execute("SET statement_timeout = 0").unwrap();
    let one: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
}
