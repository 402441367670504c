//! A survey engineer sets up a stripe-partitioned catalog and loads positions through a
//! client: partitions, routing, Qserv chunk ids (checked against LSST's sphgeom values),
//! parallel plans, errors crossing the wire, and a clean DROP EXTENSION.

use std::io::Write;

use postgres::error::SqlState;
use skycat_e2e::{fixture, ScratchDb};

#[test]
fn stripe_partitioned_catalog_end_to_end() {
    let mut db = ScratchDb::new("stripes");
    let c = &mut db.client;
    c.batch_execute("CREATE EXTENSION skycat").unwrap();

    // The catalog, striped at 1 degree.
    c.batch_execute(
        "CREATE TABLE object (object_id bigint, ra float8, \"dec\" float8, chunk int, sub_chunk int,
                              ns int, nss int) PARTITION BY RANGE (\"dec\")",
    )
    .unwrap();
    let n: i32 = c.query_one("SELECT skycat.create_stripe_partitions('object', 1.0)", &[]).unwrap().get(0);
    assert_eq!(n, 180);

    // Load sphgeom's reference points with COPY, as a loader would.
    let csv = std::fs::read_to_string(fixture("geometry/chunks.csv")).unwrap();
    let mut w =
        c.copy_in("COPY object (ns, nss, ra, \"dec\", chunk, sub_chunk) FROM STDIN (FORMAT csv, HEADER true)").unwrap();
    w.write_all(csv.as_bytes()).unwrap();
    let loaded = w.finish().unwrap();
    assert_eq!(loaded as usize, csv.lines().count() - 1);

    // Every row is in the partition stripe() names, and its chunk ids equal sphgeom's.
    let misplaced: i64 = c
        .query_one(
            "SELECT count(*) FROM object
              WHERE skycat.stripe(\"dec\", 1.0) <> substring(tableoid::regclass::text from '_s([0-9]+)$')::int",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(misplaced, 0);
    let wrong: i64 = c
        .query_one(
            "SELECT count(*) FROM object
              WHERE skycat.chunk_id(ra, \"dec\", ns, nss) <> chunk
                 OR skycat.sub_chunk_id(ra, \"dec\", ns, nss) <> sub_chunk",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(wrong, 0);

    // A cone's stripes contain every row within the cone (checked by brute force).
    let missed: i64 = c
        .query_one(
            "SELECT count(*) FROM object o,
                    (VALUES (10.0::float8, 20.0::float8), (0.1, 89.5), (359.0, -89.9)) c(ra, dec)
              WHERE skycat.sep_arcsec(o.ra, o.\"dec\", c.ra, c.dec) <= 7200
                AND NOT skycat.stripe(o.\"dec\", 1.0) = ANY (skycat.stripes_in_circle(c.ra, c.dec, 7200, 1.0))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(missed, 0);

    // The functions are parallel safe, so a forced parallel plan actually uses workers and
    // gives the serial answer.
    let serial: i64 = c.query_one("SELECT sum(skycat.chunk_id(ra, \"dec\"))::bigint FROM object", &[]).unwrap().get(0);
    c.batch_execute(
        "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
         SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = off",
    )
    .unwrap();
    let plan: String = c
        .query(
            "EXPLAIN (ANALYZE, COSTS OFF, FORMAT TEXT) SELECT sum(skycat.chunk_id(ra, \"dec\"))::bigint FROM object",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0) + "\n")
        .collect();
    assert!(plan.contains("Workers Launched: 2") || plan.contains("Workers Launched: 1"), "{plan}");
    let parallel: i64 =
        c.query_one("SELECT sum(skycat.chunk_id(ra, \"dec\"))::bigint FROM object", &[]).unwrap().get(0);
    assert_eq!(serial, parallel);

    // Bad input reaches the client as SQLSTATE 22023 with the argument named.
    let err = c.query_one("SELECT skycat.stripe(95, 1)", &[]).unwrap_err();
    let db_err = err.as_db_error().expect("a server error");
    assert_eq!(db_err.code(), &SqlState::INVALID_PARAMETER_VALUE);
    assert!(db_err.message().contains("argument \"dec\""), "{}", db_err.message());
    // ... and the session keeps working afterwards.
    let ok: i32 = c.query_one("SELECT skycat.stripe(45, 1)", &[]).unwrap().get(0);
    assert_eq!(ok, 135);

    // DROP EXTENSION removes every skycat object (the partitions stay: they are user data).
    c.batch_execute("DROP EXTENSION skycat").unwrap();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'skycat'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let rows: i64 = c.query_one("SELECT count(*) FROM object", &[]).unwrap().get(0);
    assert_eq!(rows as u64, loaded);
}
