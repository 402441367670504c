//! A survey's catalogs on a Citus cluster (a coordinator and two workers, started by
//! `make test-cluster`): objects and sources distributed by Qserv chunk with their children
//! co-located, cone searches pruned to the chunks' shards, margins, and the distributed
//! cross-match in every mode equal to the single-node `skycat.crossmatch` on the same rows.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use skycat_sim::sky::{self, SimSource};

/// The coordinator's connection string (set by `make test-cluster`).
fn coordinator_dsn() -> String {
    std::env::var("SKYCAT_CITUS_DSN")
        .unwrap_or_else(|_| panic!("SKYCAT_CITUS_DSN is not set: run the cluster tier with `make test-cluster`"))
}

/// A schema of its own on the cluster, dropped (with its shards) at the end; the client keeps
/// the server's notices.
struct Scratch {
    client: Client,
    schema: String,
    notices: Arc<Mutex<Vec<String>>>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = notices.clone();
        let mut config = Config::from_str(&coordinator_dsn()).unwrap();
        // Citus' remote command log: the command in the message, the node in the detail.
        config.notice_callback(move |n| {
            let line = format!("{} {}", n.message(), n.detail().unwrap_or(""));
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line)
        });
        let mut client = config.connect(NoTls).expect("connect to the Citus coordinator");
        let schema = format!("e2e_{name}_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}, public"
            ))
            .unwrap();
        Scratch { client, schema, notices }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("SKYCAT_KEEP").is_some() {
            return;
        }
        // A fresh session: this one may hold a dead connection to a worker that was restarted.
        if let Ok(mut c) = Client::connect(&coordinator_dsn(), NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

fn load(c: &mut Client, table: &str, rows: &[SimSource]) {
    c.batch_execute(&format!("CREATE TABLE {table} (id bigint PRIMARY KEY, ra float8, dec float8)")).unwrap();
    skycat_e2e::copy_positions(c, table, rows);
}

type Row = (i64, i64, u64, i32);

fn rows(c: &mut Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Vec<Row> {
    let mut v: Vec<Row> = c
        .query(sql, params)
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, f64>(2).to_bits(), r.get(3)))
        .collect();
    v.sort();
    v
}

/// Two fields (one across RA 0/360, one at the north pole), each spanning dozens of chunks.
fn sky_and_sources() -> (Vec<SimSource>, Vec<SimSource>) {
    let mut objects = sky::in_field(12_000, 21, 1, 0.2, -10.0, 1.5);
    objects.extend(sky::in_field(4_000, 22, 100_001, 40.0, 89.4, 0.6));
    // Re-observed with 4" of extra noise, plus unrelated sources: at the radii below many
    // sources have several candidates, so one-to-one assignments compete across chunk edges.
    let sources = sky::reobserve(&objects, 23, 1_000_000, 0.8, 4.0, 0);
    let mut more = sky::in_field(4_000, 24, 2_000_000, 0.2, -10.0, 1.5);
    more.extend(sky::in_field(1_000, 25, 2_100_000, 40.0, 89.4, 0.6));
    (objects, sources.into_iter().chain(more).collect())
}

#[test]
fn cluster_catalogs_cones_and_crossmatch_equal_one_node() {
    let mut s = Scratch::new("xmatch");
    let c = &mut s.client;
    let (objects, sources) = sky_and_sources();
    load(c, "object", &objects);
    load(c, "source", &sources);
    // Single-node copies of the same rows: the reference.
    c.batch_execute(
        "CREATE TABLE object_one AS SELECT * FROM object; CREATE TABLE source_one AS SELECT * FROM source;
         CREATE TABLE forced (object_id bigint, mjd float8, flux float8);
         INSERT INTO forced SELECT id, 60000 + k, k FROM object, generate_series(1, 3) k;",
    )
    .unwrap();

    // A forced source whose object is missing has no chunk to follow (and no position): the
    // call fails naming the count, and nothing changes.
    c.batch_execute("INSERT INTO forced VALUES (-5, 60000, 1)").unwrap();
    let e = c.query("SELECT * FROM skycat.distribute_sky_table('object', '{forced}')", &[]).unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION), "{e}");
    assert_eq!(count(c, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'object'::regclass"), 0);
    c.batch_execute("DELETE FROM forced WHERE object_id = -5").unwrap();

    // Objects with their forced sources co-located; sources by their own position.
    let dist =
        c.query("SELECT table_name, rows, shards FROM skycat.distribute_sky_table('object', '{forced}')", &[]).unwrap();
    let got: Vec<(String, i64)> = dist.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (format!("{}.object", s.schema), objects.len() as i64),
            (format!("{}.forced", s.schema), 3 * objects.len() as i64)
        ]
    );
    c.query("SELECT skycat.distribute_sky_table('source')", &[]).unwrap();
    // Every row is on its chunk: objects by position (a constraint checks it), forced sources by object.
    let misplaced: i64 = c
        .query_one("SELECT count(*) FROM forced f JOIN object o ON o.id = f.object_id AND o.chunk = f.chunk", &[])
        .unwrap()
        .get(0);
    assert_eq!(misplaced, 3 * objects.len() as i64);
    let wrong: i64 =
        c.query_one("SELECT count(*) FROM object WHERE chunk <> skycat.chunk_id(ra, dec)", &[]).unwrap().get(0);
    assert_eq!(wrong, 0);
    let e = c.batch_execute("INSERT INTO object VALUES (-1, 10, 10, 0)").unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::CHECK_VIOLATION), "{e}");
    // An object joined to its forced sources stays on the workers (no repartition).
    let plan: Vec<String> = c
        .query("EXPLAIN SELECT o.id, count(*) FROM object o JOIN forced f ON f.chunk = o.chunk AND f.object_id = o.id GROUP BY o.id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().any(|l| l.contains("Task Count: 32")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.contains("Repartition") || l.contains("MERGE")), "{plan:#?}");

    // Cone searches: the documented chunk predicate prunes to the chunks' shards, and the
    // result equals the single-node one.
    // (One statement per call: Citus forwards a DDL statement's text to the workers.)
    c.batch_execute("CREATE INDEX ON object (skycat.sky_key(ra, dec))").unwrap();
    c.batch_execute("CREATE INDEX ON object_one (skycat.sky_key(ra, dec))").unwrap();
    for (ra, dec, r) in [(0.0, -10.0, 600.0), (359.8, -9.5, 300.0), (40.0, 89.9, 1200.0)] {
        let cone = "SELECT id, 0::bigint, 0::float8, 0 FROM object
                     WHERE chunk = ANY (skycat.chunks_in_circle($1, $2, $3)) AND skycat.dwithin(ra, dec, $1, $2, $3)";
        let one = "SELECT id, 0::bigint, 0::float8, 0 FROM object_one WHERE skycat.dwithin(ra, dec, $1, $2, $3)";
        let expected = rows(c, one, &[&ra, &dec, &r]);
        assert!(!expected.is_empty());
        assert_eq!(rows(c, cone, &[&ra, &dec, &r]), expected, "cone at ({ra}, {dec}) r {r}");
        let tasks: i64 = c
            .query(
                &format!(
                    "EXPLAIN {}",
                    cone.replace("$1", &ra.to_string()).replace("$2", &dec.to_string()).replace("$3", &r.to_string())
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|x| x.get::<_, String>(0))
            .find_map(|l| l.trim().strip_prefix("Task Count: ").map(|n| n.parse().unwrap()))
            .unwrap();
        let chunks: i64 = c
            .query_one("SELECT cardinality(skycat.chunks_in_circle($1, $2, $3))::int8", &[&ra, &dec, &r])
            .unwrap()
            .get(0);
        assert!(tasks <= chunks && tasks < 32, "cone at ({ra}, {dec}): {tasks} tasks for {chunks} chunks");
    }

    // The margin: every row of another chunk within 30" of a chunk, exactly (brute force in SQL
    // over the single-node copy: a row belongs to the margin of each chunk its circle reaches).
    let n_margin: i64 = c.query_one("SELECT skycat.build_margin('object', 30)", &[]).unwrap().get(0);
    let expected_margin: i64 = c
        .query_one(
            "SELECT count(*) FROM object_one o, unnest(skycat.chunks_in_circle(o.ra, o.dec, 30)) m(c) WHERE m.c <> skycat.chunk_id(o.ra, o.dec)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n_margin, expected_margin);
    assert!(n_margin > 500, "{n_margin}");

    // The distributed cross-match equals the single-node one, pair for pair and bit for bit.
    let e = c.query("SELECT * FROM skycat.crossmatch_distributed('source', 'object', 31)", &[]).unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::INVALID_PARAMETER_VALUE), "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
    assert!(message.contains("margin"), "{message}");
    c.batch_execute("SET citus.log_remote_commands = on").unwrap();
    for r in [5.0f64, 20.0] {
        for mode in ["all", "nearest", "greedy", "optimal"] {
            let expected = rows(
                c,
                "SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM source_one', 'SELECT id, ra, dec FROM object_one', $1, $2)",
                &[&r, &mode],
            );
            assert!(expected.len() > 2_000, "{mode} at {r}: {}", expected.len());
            s.notices.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let got = rows(c, "SELECT * FROM skycat.crossmatch_distributed('source', 'object', $1, $2)", &[&r, &mode]);
            assert_eq!(got.len(), expected.len(), "{mode} at {r}");
            assert!(got == expected, "{mode} at {r}: the distributed cross-match differs");
            // It ran chunk by chunk on both workers.
            let notices = s.notices.lock().unwrap_or_else(|p| p.into_inner());
            for w in ["citus-w1", "citus-w2"] {
                assert!(
                    notices.iter().any(|n| n.contains(w) && n.contains("crossmatch_chunk")),
                    "{mode}: no crossmatch_chunk sent to {w}"
                );
            }
        }
    }
    c.batch_execute("SET citus.log_remote_commands = off").unwrap();

    // A large result stays distributed: written to a table co-located with the left one.
    for mode in ["all", "greedy"] {
        let table = format!("xm_{mode}");
        c.query("SELECT * FROM skycat.crossmatch_distributed('source', 'object', 20, $1, $2)", &[&mode, &table])
            .unwrap();
        let expected = rows(
            c,
            "SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM source_one', 'SELECT id, ra, dec FROM object_one', 20, $1)",
            &[&mode],
        );
        assert_eq!(
            rows(c, &format!("SELECT left_id, right_id, sep_arcsec, rank FROM {table}"), &[]),
            expected,
            "{mode} into a table"
        );
        // Each row sits with its left row's chunk (a co-located join finds every one).
        let with_left: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM {table} x JOIN source s ON s.chunk = x.chunk AND s.id = x.left_id"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(with_left as usize, expected.len());
    }
    let e = c
        .query("SELECT * FROM skycat.crossmatch_distributed('source', 'object', 20, 'all', 'xm_all')", &[])
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::DUPLICATE_TABLE), "{e}");
    let e = c.query("SELECT * FROM skycat.crossmatch_distributed('source', 'object_one', 20)", &[]).unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::INVALID_PARAMETER_VALUE), "{e}");
}

/// The repository's scripts/ (the test stops and restarts a worker with them).
fn script(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

fn run_script(args: &[&str]) {
    let (name, rest) = args.split_first().unwrap();
    let out = std::process::Command::new(script(name)).args(rest).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// Starts every node again when dropped: a failing scenario leaves no worker stopped.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script("citus-cluster.sh")).arg("start").output();
    }
}

#[test]
fn cluster_worker_stopped_mid_operation_leaves_nothing_and_the_retry_equals_one_node() {
    let mut s = Scratch::new("fault");
    let _restart = RestartOnDrop; // dropped first: the nodes are up again when the schema goes
    let schema = s.schema.clone();
    let c = &mut s.client;
    let (objects, sources) = sky_and_sources();
    load(c, "object", &objects);
    load(c, "source", &sources);
    c.batch_execute("CREATE TABLE object_one AS SELECT * FROM object").unwrap();
    c.batch_execute("CREATE TABLE source_one AS SELECT * FROM source").unwrap();
    let expected = rows(
        c,
        "SELECT * FROM skycat.crossmatch('SELECT id, ra, dec FROM source_one', 'SELECT id, ra, dec FROM object_one', 20, 'greedy')",
        &[],
    );
    // 1. A worker down while a table is distributed: the call fails, the table stays local
    //    and whole (no chunk column, every row); with the worker back, the same call works.
    run_script(&["pg-cluster.sh", "stop", "citus-w1"]);
    let e = c.query("SELECT skycat.distribute_sky_table('object')", &[]).unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    assert_eq!(count(c, "SELECT count(*) FROM object"), objects.len() as i64);
    assert_eq!(
        count(c, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'object'::regclass AND attname = 'chunk'"),
        0
    );
    let registered = format!("SELECT count(*) FROM skycat.sky_tables WHERE table_name = '{schema}.object'");
    assert_eq!(count(c, &registered), 0);
    run_script(&["citus-cluster.sh", "start"]);
    c.query("SELECT skycat.distribute_sky_table('object')", &[]).unwrap();
    c.query("SELECT skycat.distribute_sky_table('source')", &[]).unwrap();
    c.query("SELECT skycat.build_margin('object', 20)", &[]).unwrap();

    // 2. A worker stopped in the middle of a distributed cross-match into a table: a session
    //    on the worker holds a lock on one of its shards, so the cross-match is under way and
    //    waiting there when the worker stops. Nothing of it remains: no result table, no
    //    half-written shards, no prepared transactions left behind.
    {
        let mut locker = lock_shard_on_w1(c, "object", "ORDER BY d.shardminvalue::int");
        fails_when_worker_stops(
            &mut locker,
            &format!(
                "SET search_path = {schema}, public;
                 SELECT skycat.crossmatch_distributed('source', 'object', 20, 'greedy', 'xm_fault')"
            ),
        );
    }
    // A new session (this one's cached connection to the stopped worker is gone).
    let mut c = Client::connect(&coordinator_dsn(), NoTls).unwrap();
    let c = &mut c;
    c.batch_execute(&format!("SET search_path = {schema}, public")).unwrap();
    assert_eq!(count(c, "SELECT count(*) FROM pg_class WHERE relname = 'xm_fault'"), 0);
    run_script(&["citus-cluster.sh", "start"]);
    c.batch_execute("SELECT recover_prepared_transactions()").unwrap();
    let left_prepared: i64 = c
        .query_one(
            "SELECT sum(result::int8)::int8 FROM run_command_on_workers('SELECT count(*) FROM pg_prepared_xacts')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left_prepared, 0);

    // 3. The same call again: the result equals the single-node one.
    c.query("SELECT skycat.crossmatch_distributed('source', 'object', 20, 'greedy', 'xm_fault')", &[]).unwrap();
    assert_eq!(rows(c, "SELECT left_id, right_id, sep_arcsec, rank FROM xm_fault", &[]), expected);
}

/// A DRP schema's tables as comparable digests: every row, every column but the cluster's
/// own `chunk` (and the timings the steps record).
fn drp_digests(c: &mut Client, schema: &str) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for t in ["object_staging", "object", "source", "dia_source", "forced_source", "calib", "tract"] {
        let r = c
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '')
                       FROM (SELECT to_jsonb(r) - 'chunk' - 'ingested_at' - 'ingest_seconds' AS x FROM {schema}.{t} r) a"
                ),
                &[],
            )
            .unwrap();
        out.push((t.to_string(), r.get(0), r.get(1)));
    }
    out
}

/// The files of an export directory (name and bytes), sorted by name.
fn export_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap().path();
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            let name = f.strip_prefix(dir).unwrap().display().to_string();
            files.push((name, std::fs::read(&f).unwrap()));
        }
    }
    files.sort();
    files
}

/// The DRP schemas and directories of one test, removed at the end.
struct DrpRelease {
    schemas: Vec<String>,
    dirs: Vec<std::path::PathBuf>,
}

impl Drop for DrpRelease {
    fn drop(&mut self) {
        if std::env::var_os("SKYCAT_KEEP").is_some() {
            return;
        }
        if let Ok(mut c) = Client::connect(&coordinator_dsn(), NoTls) {
            for s in &self.schemas {
                let _ = c.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {s} CASCADE; DROP SERVER IF EXISTS {s}_files CASCADE"
                ));
            }
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A session on a worker holding an exclusive lock on one shard of `table` there, so that a
/// statement touching that shard waits until the worker is stopped. `pick` orders the
/// worker's shards (the first is locked).
fn lock_shard_on_w1(c: &mut Client, table: &str, pick: &str) -> Client {
    let r = c.query_one("SELECT nodename, nodeport FROM pg_dist_node WHERE nodename LIKE '%/citus-w1'", &[]).unwrap();
    let (host, port): (String, i32) = (r.get(0), r.get(1));
    let shard: String = c
        .query_one(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname || '_' || d.shardid)
                   FROM citus_shards s JOIN pg_dist_shard d USING (shardid)
                   JOIN pg_class c ON c.oid = d.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE s.table_name = '{table}'::regclass AND s.nodename = $1 {pick} LIMIT 1"
            ),
            &[&host],
        )
        .unwrap()
        .get(0);
    let mut locker = Client::connect(&format!("host={host} port={port} user=postgres dbname=skycat"), NoTls).unwrap();
    locker
        .batch_execute(&format!(
            "BEGIN; SET LOCAL citus.enable_manual_changes_to_shards = on; LOCK TABLE {shard} IN ACCESS EXCLUSIVE MODE"
        ))
        .unwrap();
    locker
}

/// Runs `sql` on the coordinator in another session, waits until it is blocked on the
/// locker's shard, stops worker 1 and returns the statement's error.
fn fails_when_worker_stops(locker: &mut Client, sql: &str) -> postgres::Error {
    let dsn = coordinator_dsn();
    let statement = sql.to_string();
    let runner = std::thread::spawn(move || {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        c.batch_execute(&statement)
    });
    let mut waiting = false;
    for _ in 0..200 {
        locker.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
        waiting = locker
            .query_one(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(waiting, "never reached the locked shard: {sql}");
    run_script(&["pg-cluster.sh", "stop", "citus-w1"]);
    let e = runner.join().unwrap().unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    e
}

#[test]
fn cluster_drp_release_equals_one_node_and_survives_a_stopped_worker() {
    use skycat_sim::drp::DrpConfig;
    let _restart = RestartOnDrop;
    let pid = std::process::id();
    let one = format!("e2e_drp_one_{pid}");
    let dist = format!("e2e_drp_dist_{pid}");
    let root = std::path::PathBuf::from(format!("/tmp/skycat_e2e_cluster_drp_{pid}"));
    let exports = [root.with_extension("export_one"), root.with_extension("export_dist")];
    let _cleanup = DrpRelease {
        schemas: vec![one.clone(), dist.clone()],
        dirs: vec![root.clone(), exports[0].clone(), exports[1].clone()],
    };
    for d in [&root, &exports[0], &exports[1]] {
        let _ = std::fs::remove_dir_all(d);
    }
    // A small release: 4 tracts with their overlaps, ~150k forced sources.
    let config = DrpConfig { objects: 20_000, visits_per_tract: 8, ..DrpConfig::default() };
    skycat_sim::drp_parquet::write_release(&config, &root, |_, _| {}).unwrap();
    let tracts = skycat_sim::drp::true_sky(&config).tract_ids;

    let mut config = Config::from_str(&coordinator_dsn()).unwrap();
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = notices.clone();
    config.notice_callback(move |n| sink.lock().unwrap_or_else(|p| p.into_inner()).push(n.message().to_string()));
    let mut client = config.connect(NoTls).unwrap();
    let c = &mut client;
    for s in [&one, &dist] {
        c.query("SELECT skycat.drp_create($1, $2)", &[s, &root.display().to_string()]).unwrap();
    }
    let spread = c.query("SELECT table_name, shards FROM skycat.drp_distribute($1)", &[&dist]).unwrap();
    assert_eq!(spread.len(), 5, "object_staging, object, source, forced_source, dia_source");
    assert!(spread.iter().all(|r| r.get::<_, i32>(1) == 32));
    let e = c.query("SELECT * FROM skycat.drp_distribute($1)", &[&dist]).unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE), "{e}");

    // ---- ingest: the single node, then the cluster; a worker stopped in the middle of a
    // tract's ingest leaves nothing of it, and the tract ingested again equals the single node.
    for t in &tracts {
        c.query("SELECT * FROM skycat.drp_ingest_tract($1, $2)", &[&one, t]).unwrap();
    }
    for t in &tracts[..3] {
        c.query("SELECT * FROM skycat.drp_ingest_tract($1, $2)", &[&dist, t]).unwrap();
    }
    let before = drp_digests(c, &dist);
    {
        let mut locker = lock_shard_on_w1(c, &format!("{dist}.forced_source"), "ORDER BY d.shardminvalue::int");
        fails_when_worker_stops(
            &mut locker,
            &format!("SELECT * FROM skycat.drp_ingest_tract('{dist}', {})", tracts[3]),
        );
    }
    run_script(&["citus-cluster.sh", "start"]);
    let mut client = config.connect(NoTls).unwrap();
    let c = &mut client;
    c.batch_execute("SELECT recover_prepared_transactions()").unwrap();
    assert_eq!(drp_digests(c, &dist), before, "a failed ingest left rows behind");
    c.query("SELECT * FROM skycat.drp_ingest_tract($1, $2)", &[&dist, &tracts[3]]).unwrap();
    assert_eq!(drp_digests(c, &dist), drp_digests(c, &one), "ingested tables");
    // Rows sit on their object's chunk (a co-located join finds every one), on both workers.
    let fs = count(c, &format!("SELECT count(*) FROM {dist}.forced_source"));
    assert!(fs > 100_000, "{fs}");
    assert_eq!(
        count(c, &format!("SELECT count(*) FROM {dist}.forced_source f JOIN {dist}.object_staging o ON o.chunk = f.chunk AND o.object_id = f.object_id")),
        fs
    );
    assert_eq!(
        count(
            c,
            &format!("SELECT count(DISTINCT nodename) FROM citus_shards WHERE table_name = '{dist}.forced_source'::regclass AND shard_size > 8192")
        ),
        2
    );

    // ---- de-duplication
    for s in [&one, &dist] {
        c.query("SELECT * FROM skycat.drp_deduplicate_objects($1)", &[s]).unwrap();
    }
    assert_eq!(drp_digests(c, &dist), drp_digests(c, &one), "de-duplicated tables");

    // ---- summarise. The aggregate runs on the workers: the plan of the summary statement
    // (auto_explain) is an UPDATE of the object shards whose forced sources are aggregated
    // there, shard by shard.
    c.batch_execute(&format!("CALL skycat.drp_summarize_forced_sources('{one}')")).unwrap();
    c.batch_execute(&format!("ANALYZE {dist}.forced_source")).unwrap();
    // A worker stopped in the middle: groups of shards already done are complete, the rest
    // untouched, no object half-summarised; called again, the result equals the single node.
    {
        let mut locker = lock_shard_on_w1(
            c,
            &format!("{dist}.forced_source"),
            &format!(
                "AND s.shardid IN (SELECT get_shard_id_for_distribution_column('{dist}.forced_source', chunk)
                                     FROM (SELECT DISTINCT chunk FROM {dist}.object) k)
                 ORDER BY d.shardminvalue::int DESC"
            ),
        );
        fails_when_worker_stops(&mut locker, &format!("CALL skycat.drp_summarize_forced_sources('{dist}')"));
    }
    run_script(&["citus-cluster.sh", "start"]);
    let mut client = config.connect(NoTls).unwrap();
    let c = &mut client;
    c.batch_execute("SELECT recover_prepared_transactions()").unwrap();
    let summary_cols: Vec<String> = c
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname LIKE '%\\_psf\\_flux\\_%' AND NOT attisdropped",
            &[&format!("{one}.object")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(summary_cols.len(), 6 * 19);
    let row_of = |alias: &str| summary_cols.iter().map(|k| format!("{alias}.{k}")).collect::<Vec<_>>().join(", ");
    let states: Vec<(String, i64)> = c
        .query(
            &format!(
                "SELECT CASE WHEN ROW({d}) IS NOT DISTINCT FROM ROW({o}) THEN 'done'
                             WHEN ROW({d}) IS NULL THEN 'untouched' ELSE 'half' END AS state, count(*)
                   FROM {dist}.object d JOIN {one}.object o USING (object_id) GROUP BY 1 ORDER BY 1",
                d = row_of("d"),
                o = row_of("o")
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(states.iter().all(|(s, _)| s != "half"), "{states:?}");
    assert_eq!(states.len(), 2, "some shard groups done before the worker stopped, some not: {states:?}");
    c.batch_execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_level = notice",
    )
    .unwrap();
    notices.lock().unwrap_or_else(|p| p.into_inner()).clear();
    c.batch_execute(&format!("CALL skycat.drp_summarize_forced_sources('{dist}')")).unwrap();
    c.batch_execute("RESET auto_explain.log_min_duration; RESET auto_explain.log_level").unwrap();
    {
        let notices = notices.lock().unwrap_or_else(|p| p.into_inner());
        let plan = notices
            .iter()
            .find(|n| n.contains("UPDATE") && n.contains("lc_stats") && n.contains("Custom Scan (Citus Adaptive)"))
            .expect("the summary statement's plan");
        let update = plan.find("Update on object_").expect(plan);
        let aggregate = plan[update..].find("Aggregate").expect(plan);
        assert!(plan[update + aggregate..].contains("Seq Scan on forced_source_"), "{plan}");
        assert!(plan.contains("Node: host=") && plan.contains("citus-w"), "{plan}");
        // Progress: one notice per shard group.
        assert!(notices.iter().filter(|n| n.contains("shard group")).count() >= 16, "{notices:#?}");
    }
    assert_eq!(drp_digests(c, &dist), drp_digests(c, &one), "summarised tables");

    // ---- recalibration (twice: the second changes nothing), later pipelines' columns
    c.batch_execute(&format!(
        "CREATE TABLE public.e2e_calib_{pid} AS SELECT visit, detector, calib_mean * 1.07 AS calib_mean, calib_err
           FROM {one}.calib WHERE visit % 3 = 0;
         CREATE TABLE public.e2e_updates_{pid} AS SELECT object_id, object_id * 0.5 AS shape_xx FROM {one}.object WHERE object_id % 5 = 0;"
    ))
    .unwrap();
    for s in [&one, &dist] {
        let r = c
            .query_one(&format!("SELECT forced_sources, objects FROM skycat.drp_apply_recalibration('{s}', 'public.e2e_calib_{pid}')"), &[])
            .unwrap();
        assert!(r.get::<_, i64>(0) > 1000 && r.get::<_, i64>(1) > 1000);
        let r = c
            .query_one(&format!("SELECT forced_sources, objects FROM skycat.drp_apply_recalibration('{s}', 'public.e2e_calib_{pid}')"), &[])
            .unwrap();
        assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (0, 0));
        c.query("SELECT skycat.drp_add_columns($1, '{shape_xx}', '{float8}')", &[s]).unwrap();
        let n: i64 = c
            .query_one(&format!("SELECT skycat.drp_update_objects('{s}', 'public.e2e_updates_{pid}')"), &[])
            .unwrap()
            .get(0);
        assert!(n > 1000, "{n}");
    }
    c.batch_execute(&format!("DROP TABLE public.e2e_calib_{pid}, public.e2e_updates_{pid}")).unwrap();
    assert_eq!(drp_digests(c, &dist), drp_digests(c, &one), "recalibrated and updated tables");

    // ---- the Qserv export: the same files, byte for byte
    for (s, dir) in [(&one, &exports[0]), (&dist, &exports[1])] {
        for t in ["object", "source", "forced_source"] {
            c.query("SELECT * FROM skycat.drp_export($1, $2, $3)", &[s, &t, &format!("{}/{t}", dir.display())])
                .unwrap();
        }
    }
    let (a, b) = (export_files(&exports[0]), export_files(&exports[1]));
    assert!(a.len() > 100, "{} files", a.len());
    assert!(a == b, "the exports differ");
}
