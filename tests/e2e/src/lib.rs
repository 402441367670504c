//! Helpers for the end-to-end scenarios: each scenario gets its own fresh database on the
//! server named by `SKYCAT_TEST_DSN` (set by `make test-e2e`), which has skycat installed.

use std::path::PathBuf;

use std::io::Write;

use postgres::{Client, NoTls};
use skycat_sim::sky::SimSource;

/// The DSN of the maintenance database on the test server.
pub fn server_dsn() -> String {
    std::env::var("SKYCAT_TEST_DSN")
        .unwrap_or_else(|_| panic!("SKYCAT_TEST_DSN is not set: run the end-to-end tier with `make test-e2e`"))
}

/// A database created for one scenario and dropped when the scenario ends.
pub struct ScratchDb {
    pub client: Client,
    name: String,
}

impl ScratchDb {
    pub fn new(scenario: &str) -> ScratchDb {
        let name = format!("skycat_e2e_{scenario}_{}", std::process::id());
        let mut admin = Client::connect(&server_dsn(), NoTls).expect("connect to the test server");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let dsn = format!("{} dbname={name}", server_dsn());
        let client = Client::connect(&dsn, NoTls).expect("connect to the scratch database");
        ScratchDb { client, name }
    }

    /// The connection string of this database (for more sessions).
    pub fn dsn(&self) -> String {
        format!("{} dbname={}", server_dsn(), self.name)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&server_dsn(), NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Path of a committed fixture under tests/fixtures/.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(rel)
}

/// Separation in arcsec from unit vectors: atan2(|u x v|, u . v), independent of skycat's.
pub fn reference_sep(a: &SimSource, b: &SimSource) -> f64 {
    let v = |s: &SimSource| {
        let (ra, dec) = (s.ra.to_radians(), s.dec.to_radians());
        [dec.cos() * ra.cos(), dec.cos() * ra.sin(), dec.sin()]
    };
    let (u, w) = (v(a), v(b));
    let c = [u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]];
    let cross = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
    cross.atan2(u[0] * w[0] + u[1] * w[1] + u[2] * w[2]).to_degrees() * 3600.0
}

/// Every (source id, object id, sep) within r, by a dec-sorted sweep.
pub fn brute_pairs(sources: &[SimSource], objects: &[SimSource], r: f64) -> Vec<(i64, i64, f64)> {
    let mut by_dec: Vec<&SimSource> = objects.iter().collect();
    by_dec.sort_by(|a, b| a.dec.total_cmp(&b.dec));
    let mut out = Vec::new();
    for s in sources {
        let lo = by_dec.partition_point(|o| o.dec < s.dec - r / 3600.0 - 1e-9);
        for o in by_dec[lo..].iter().take_while(|o| o.dec <= s.dec + r / 3600.0 + 1e-9) {
            let d = reference_sep(s, o);
            if d <= r {
                out.push((s.id, o.id, d));
            }
        }
    }
    out.sort_by_key(|p| (p.0, p.1));
    out
}

/// COPYs the sources' (id, ra, dec) into those columns of an existing table.
pub fn copy_positions(c: &mut Client, table: &str, rows: &[SimSource]) {
    let mut w = c.copy_in(&format!("COPY {table} (id, ra, dec) FROM STDIN (FORMAT csv)")).unwrap();
    for s in rows {
        // `{}` prints the shortest representation that reads back as the same double.
        writeln!(w, "{},{},{}", s.id, s.ra, s.dec).unwrap();
    }
    w.finish().unwrap();
}

/// Starts `phase` of `visit` of the AP schema `schema` in a new session on a thread, waits
/// until that backend waits on a lock (held by the caller's blocking session), kills it, and
/// checks the call failed.
pub fn kill_ap_phase_while_blocked(
    dsn: &str,
    schema: &str,
    phase: skycat_ap::run::Phase,
    visit: skycat_ap::run::Pointing,
    observer: &mut Client,
) {
    use skycat_ap::run;
    use std::time::{Duration, Instant};
    let mut victim = run::connect(dsn).unwrap();
    let pid: i32 = victim.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let worker = std::thread::spawn({
        let schema = schema.to_string();
        move || run::run_phase(&mut victim, &schema, phase, &visit)
    });
    let t0 = Instant::now();
    loop {
        let waiting: bool = observer
            .query_one("SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the {phase:?} never reached the held lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    observer.execute("SELECT pg_terminate_backend($1)", &[&pid]).unwrap();
    assert!(worker.join().unwrap().is_err(), "the killed {phase:?} reports an error");
}
