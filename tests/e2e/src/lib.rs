//! Helpers for the end-to-end scenarios: each scenario gets its own fresh database on the
//! server named by `SKYCAT_TEST_DSN` (set by `make test-e2e`), which has skycat installed.

use std::path::PathBuf;

use postgres::{Client, NoTls};

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
