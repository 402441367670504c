//! A user's first `dwithin` joins are planned as index probes, never as a test of every pair:
//! the join shapes users write (small x big partitioned, big x big, both argument orders, a
//! partitioned indexed side, LATERAL cones), with parallel query on and off. For each: the plan
//! probes the sky_key index, no Nested Loop tests dwithin in its join filter, the join's row
//! estimate is within 10x of the actual rows, JIT stays off even when forced on by cost, a
//! declination-partitioned side is pruned to the stripes each circle meets, and the count
//! equals a brute-force reference computed here.

use postgres::{Client, SimpleQueryMessage};
use serde_json::Value;
use skycat_e2e::{brute_pairs, copy_positions, ScratchDb};
use skycat_sim::sky::{self, SimSource};

/// EXPLAIN (ANALYZE, FORMAT JSON) of a statement: its top object (Plan, JIT, ...).
fn explain(c: &mut Client, sql: &str) -> Value {
    let text = c
        .simple_query(&format!("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sql}"))
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
            _ => None,
        })
        .unwrap();
    serde_json::from_str::<Value>(&text).unwrap()[0].clone()
}

/// Every node of a plan, depth first.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut out = vec![plan];
    for child in plan["Plans"].as_array().into_iter().flatten() {
        out.extend(nodes(child));
    }
    out
}

fn text(node: &Value, key: &str) -> String {
    node[key].as_str().unwrap_or("").to_string()
}

/// What every dwithin join plan must satisfy; returns the join node.
fn check_probe_plan<'a>(what: &str, top: &'a Value, jit_available: bool) -> &'a Value {
    let all = nodes(&top["Plan"]);
    for n in &all {
        let t = text(n, "Node Type");
        assert!(
            !(t == "Nested Loop" && text(n, "Join Filter").contains("dwithin")),
            "{what}: a nested loop tests dwithin on every pair: {top:#}"
        );
    }
    assert!(
        all.iter().any(|n| text(n, "Index Cond").contains("sky_key_bound")),
        "{what}: no probe of the sky_key index: {top:#}"
    );
    let join = all
        .iter()
        .find(|n| text(n, "Node Type") == "Nested Loop")
        .unwrap_or_else(|| panic!("{what}: no join node: {top:#}"));
    let (planned, actual) = (join["Plan Rows"].as_f64().unwrap(), join["Actual Rows"].as_f64().unwrap());
    let ratio = planned.max(1.0) / actual.max(1.0);
    assert!((0.1..=10.0).contains(&ratio), "{what}: estimated {planned} rows, actual {actual}: {top:#}");
    if jit_available {
        assert!(top.get("JIT").is_none(), "{what}: compiled with JIT: {top:#}");
    }
    join
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn dwithin_joins_are_index_probes_in_every_shape() {
    let mut db = ScratchDb::new("join_plans");
    let c = &mut db.client;
    c.batch_execute(
        "CREATE EXTENSION skycat;
         CREATE TABLE small (id bigint, ra float8, dec float8);
         CREATE TABLE big (id bigint, ra float8, dec float8);
         CREATE TABLE probes (id bigint, ra float8, dec float8);
         CREATE TABLE part36 (id bigint, ra float8, dec float8) PARTITION BY RANGE (dec);
         SELECT skycat.create_stripe_partitions('part36', 5.0);
         CREATE TABLE stars (id bigint, ra float8, dec float8) PARTITION BY RANGE (dec);
         SELECT skycat.create_stripe_partitions('stars', 1.0);",
    )
    .unwrap();
    let small = sky::uniform(200_000, 21, 0);
    let big = sky::uniform(500_000, 22, 1_000_000);
    let probes = sky::uniform(22_000, 23, 2_000_000);
    let stars = sky::uniform(200_000, 24, 3_000_000);
    for (table, rows) in [("small", &small), ("big", &big), ("probes", &probes), ("part36", &probes), ("stars", &stars)]
    {
        copy_positions(c, table, rows);
    }
    c.batch_execute(
        "CREATE INDEX ON small (skycat.sky_key(ra, dec));
         CREATE INDEX ON big (skycat.sky_key(ra, dec));
         CREATE INDEX ON part36 (skycat.sky_key(ra, dec));
         CREATE INDEX ON stars (skycat.sky_key(ra, dec));
         ANALYZE;
         SET jit_above_cost = 0; SET jit_inline_above_cost = 0; SET jit_optimize_above_cost = 0;",
    )
    .unwrap();
    // Can this server JIT at all? Then a plain scan is compiled at these settings (so the test
    // of "no JIT" below can fail).
    let jit_available = c.query_one("SELECT pg_catalog.pg_jit_available()", &[]).unwrap().get::<_, bool>(0);
    if jit_available {
        assert!(explain(c, "SELECT count(*) FROM big").get("JIT").is_some(), "a plain scan is not JIT-compiled");
    }

    let pairs = |a: &[SimSource], b: &[SimSource], r: f64| brute_pairs(a, b, r).len() as i64;
    let cases: Vec<(&str, String, i64)> = vec![
        (
            "small x big partitioned",
            "SELECT count(*) FROM small s JOIN part36 p ON skycat.dwithin(s.ra, s.dec, p.ra, p.dec, 36)".into(),
            pairs(&small, &probes, 36.0),
        ),
        (
            "small x big partitioned, other order",
            "SELECT count(*) FROM part36 p JOIN small s ON skycat.dwithin(p.ra, p.dec, s.ra, s.dec, 36)".into(),
            pairs(&small, &probes, 36.0),
        ),
        (
            "big x big",
            "SELECT count(*) FROM big b JOIN small s ON skycat.dwithin(b.ra, b.dec, s.ra, s.dec, 5)".into(),
            pairs(&big, &small, 5.0),
        ),
        (
            "big x big, other order",
            "SELECT count(*) FROM small s JOIN big b ON skycat.dwithin(s.ra, s.dec, b.ra, b.dec, 5)".into(),
            pairs(&big, &small, 5.0),
        ),
        (
            "probes x stripe-partitioned",
            "SELECT count(*) FROM probes p JOIN stars s ON skycat.dwithin(p.ra, p.dec, s.ra, s.dec, 36)".into(),
            pairs(&probes, &stars, 36.0),
        ),
        (
            "LATERAL cones",
            "SELECT count(*) FROM probes p CROSS JOIN LATERAL
               (SELECT s.id FROM small s WHERE skycat.dwithin(s.ra, s.dec, p.ra, p.dec, 600)) x
             WHERE p.id < 2002000"
                .into(),
            pairs(&probes[..2000], &small, 600.0),
        ),
    ];
    for parallel in [2, 0] {
        c.batch_execute(&format!("SET max_parallel_workers_per_gather = {parallel}")).unwrap();
        for (name, sql, expected) in &cases {
            let what = format!("{name} (parallel workers {parallel})");
            let top = explain(c, sql);
            let join = check_probe_plan(&what, &top, jit_available);
            if name.contains("stripe-partitioned") {
                // Each probe's circle meets one stripe, two near a stripe edge: the partitions'
                // scans together run about once per probe, not once per probe and stripe.
                let outer_rows = 22_000.0;
                let inner = &join["Plans"][1];
                let loops: f64 = inner["Plans"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: the inner side is not an Append: {top:#}"))
                    .iter()
                    .map(|n| n["Actual Loops"].as_f64().unwrap())
                    .sum();
                assert!(loops < 1.2 * outer_rows, "{what}: {loops} partition scans for 22,000 probes: {top:#}");
            }
            assert_eq!(count(c, sql), *expected, "{what}: wrong count");
        }
    }
}
