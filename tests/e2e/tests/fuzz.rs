//! The SQL fuzz tier: no `SELECT` of skycat may crash, wedge or confuse a backend.
//!
//! For a bounded time (`SKYCAT_FUZZ_SECONDS`, default 180) it calls every function of schema
//! `skycat` (enumerated from `pg_proc` with argument types and defaults, so a new function is
//! fuzzed without touching this file) with argument combinations drawn from special values per
//! type (NULL, NaN, ±Infinity, -0, subnormals, 1e-18 .. 1e308, the poles and just past them,
//! int extremes, empty / 100 kB / odd-byte text, degenerate arrays, malformed `wcs` and
//! `photo_calib`), mostly "one bad argument among plausible ones", else fully random. It also
//! drives the aggregates over small `VALUES` lists, `crossmatch` / `crossmatch_marked` /
//! `crossmatch_input_rows` over tiny inline queries with NULL / NaN / huge values, huge radii,
//! every mode and odd error columns, and `write_parquet` into a scratch directory. A fixed
//! list of regression calls (inputs that once crashed, hung or answered wrongly) runs first,
//! every time.
//!
//! Each call runs under `SET statement_timeout` (`SKYCAT_FUZZ_STATEMENT_TIMEOUT_MS`, default
//! 1000) and is checked for:
//! - a crash: a watchdog session opened before the call must still answer `SELECT 1` after
//!   it (a backend crash makes the postmaster end every session), the call's own session must
//!   not be lost, and when `SKYCAT_TEST_SERVER_LOG` names the server log, its new lines must
//!   not say "terminated by signal" / "was terminated" / "exited with exit code";
//! - cancellation: the call must return within timeout + 1 s. One still running after
//!   timeout + 5 s is an uninterruptible hang: its backend is killed with `kill -9` (the
//!   tier runs as root or as the server's OS user) and the run waits for the server to accept
//!   connections again;
//! - a valid outcome: rows whose float8 values are finite or NULL (non-finite only when an
//!   input was non-finite, or where a function documents it) and that satisfy the cheap
//!   invariants the documentation promises (ids >= 0, covers ascending, errors >= 0, separations
//!   within the radius, one-to-one matches, lc_stats fields ordered, ...); or an error with a
//!   documented SQLSTATE (22023, 22P02, 22003, 22004, 22012, 2201E, 2201F, 54000, 53200,
//!   57014, 42883, 42804, 42846, 22P03, plus per-function ones such as create_stripe_partitions'
//!   catalogue errors). Never XX000, never a class 38/39 error.
//!
//! Not fuzzed, and why:
//! - `ap_*` and `drp_*`: they need an AP / DRP schema made by `ap_create` / `drp_create` (the
//!   AP and DRP scenarios cover them);
//! - `_`-prefixed functions: internal helpers of the procedures;
//! - functions taking or returning `cstring`, `internal` or `fdw_handler`: type I/O (`wcs_in`,
//!   `photo_calib_out`, ...; their text is fuzzed through casts of malformed literals here and
//!   in crates/skycat-core/tests/fuzz_parsers.rs), aggregate support functions (driven through
//!   the aggregates), the `dwithin` planner support function and the FDW handler;
//! - procedures (prokind 'p').
//!
//! Every [`CANARY_EVERY`] calls a fixed "canary" query (photo_calib text round trips, separations,
//! float division, a TAN-SIP position, lc_stats, covers) must still answer exactly as it did in
//! the fresh session: a difference means an earlier call corrupted backend state (a cache, the
//! floating-point environment, freed memory), reported with the calls since the last good canary.
//!
//! At the end it prints the seed, per-function outcome counts, and every failure grouped by
//! function and kind with the exact SQL (paste it into psql), writes every failing call to
//! `$TMPDIR/skycat-fuzz-failures-<seed>.txt`, and fails if there was any.
//! Reproduce a run with `SKYCAT_FUZZ_SEED=<seed>`: the calls are a function of the seed and
//! the case number only (how many run depends on timing). `SKYCAT_FUZZ_TRACE=<file>` writes
//! every call in order (to replay a session in psql); `SKYCAT_FUZZ_SELF_TEST=1` first proves
//! the crash / hang / slow-cancel detectors work by signalling a backend running `pg_sleep`
//! (SIGSEGV crashes the server once: private clusters only). Run it against a private cluster:
//!
//! ```sh
//! scripts/pg-cluster.sh start fuzz && . target/clusters/fuzz.env
//! SKYCAT_TEST_DSN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres" \
//! SKYCAT_TEST_SERVER_LOG="$(cat target/clusters/fuzz.dir)/server.log" \
//!   cargo test -p skycat-e2e --release --test fuzz -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::types::Type;
use postgres::{Client, NoTls, Row};
use skycat_e2e::ScratchDb;

// =============================================================================== settings

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not an unsigned integer")),
        Err(_) => default,
    }
}

struct Settings {
    seed: u64,
    budget: Duration,
    timeout: Duration,
    server_log: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Settings {
        let seed = match std::env::var("SKYCAT_FUZZ_SEED") {
            Ok(_) => env_u64("SKYCAT_FUZZ_SEED", 0),
            Err(_) => {
                let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(40)
            }
        };
        Settings {
            seed,
            budget: Duration::from_secs(env_u64("SKYCAT_FUZZ_SECONDS", 180)),
            timeout: Duration::from_millis(env_u64("SKYCAT_FUZZ_STATEMENT_TIMEOUT_MS", 1000)),
            server_log: std::env::var_os("SKYCAT_TEST_SERVER_LOG").map(PathBuf::from),
        }
    }
}

// =============================================================================== random numbers

/// SplitMix64: small, fast, and the same sequence on every platform for a seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    /// The generator of case `n` of a run: cases do not depend on each other's draws.
    fn for_case(seed: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn int_range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }

    /// A finite double of any magnitude and sign (random exponent), sometimes an integer.
    fn any_finite(&mut self) -> f64 {
        match self.below(4) {
            0 => self.range(-1000.0, 1000.0),
            1 => self.int_range(-100_000, 100_000) as f64,
            _ => {
                let x = f64::from_bits(self.next_u64());
                if x.is_finite() {
                    x
                } else {
                    self.range(-1e6, 1e6)
                }
            }
        }
    }
}

// =============================================================================== SQL values

/// One argument: its SQL text, its numeric value where it has one (for the checks), and
/// whether it carries a non-finite number (NaN / ±Infinity, also inside arrays or types).
#[derive(Clone, Debug)]
struct Arg {
    sql: String,
    num: Option<f64>,
    nonfinite: bool,
}

impl Arg {
    fn raw(sql: impl Into<String>) -> Arg {
        Arg { sql: sql.into(), num: None, nonfinite: false }
    }

    fn nonfinite(mut self, yes: bool) -> Arg {
        self.nonfinite |= yes;
        self
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A float8 as SQL: NULL, a quoted special or the shortest round-trip decimal.
fn float_text(x: Option<f64>) -> String {
    match x {
        None => "NULL".into(),
        Some(v) if v.is_nan() => "'NaN'".into(),
        Some(v) if v == f64::INFINITY => "'Infinity'".into(),
        Some(v) if v == f64::NEG_INFINITY => "'-Infinity'".into(),
        Some(v) => format!("'{v:?}'"),
    }
}

fn float_arg(x: Option<f64>) -> Arg {
    Arg { sql: format!("{}::float8", float_text(x)), num: x, nonfinite: x.is_some_and(|v| !v.is_finite()) }
}

/// The special float8 values of the brief, NULL excluded.
const FLOAT_SPECIALS: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    5e-324,
    2.2250738585072014e-308,
    -2.2250738585072014e-308,
    1e-18,
    1e-12,
    1e-8,
    1e-6,
    1e-300,
    -1e-300,
    1e308,
    -1e308,
    90.0,
    -90.0,
    90.0000001,
    -90.0000001,
    180.0,
    360.0,
    720.0,
    -360.0,
    1296000.0,
    648000.0,
    3600.0,
];

fn special_float(rng: &mut Rng) -> Option<f64> {
    match rng.below(10) {
        0 => None,
        1..=6 => Some(*rng.pick(FLOAT_SPECIALS)),
        _ => Some(rng.any_finite()),
    }
}

const INT4_SPECIALS: &[i64] = &[0, -1, 1, 2, 15, 16, 29, 30, 340, 32767, 32768, 648000, 2147483647, -2147483648];
const INT8_SPECIALS: &[i64] =
    &[0, -1, 1, 2, 15, 16, 29, 30, 340, 32767, 32768, 648000, 2147483647, -2147483648, 4294967296, i64::MAX, i64::MIN];

fn int_arg(x: Option<i64>, ty: &str) -> Arg {
    match x {
        None => Arg::raw(format!("NULL::{ty}")),
        Some(v) => Arg { sql: format!("'{v}'::{ty}"), num: Some(v as f64), nonfinite: false },
    }
}

fn special_int(rng: &mut Rng, ty: &str) -> Arg {
    let v = match rng.below(10) {
        0 => None,
        1..=6 => Some(*rng.pick(if ty == "int8" { INT8_SPECIALS } else { INT4_SPECIALS })),
        7 => Some(rng.int_range(-20, 40)),
        _ if ty == "int8" => Some(rng.next_u64() as i64),
        _ => Some(rng.next_u64() as i32 as i64),
    };
    int_arg(v, ty)
}

fn special_text(rng: &mut Rng) -> Arg {
    let pool: &[&str] = &[
        "''",
        "'all'",
        "'nearest'",
        "'greedy'",
        "'optimal'",
        "'ALL'",
        "' nearest'",
        "'optimal '",
        "'best'",
        "'NaN'",
        "'null'",
        "'x y z; DROP TABLE fz_plain'",
        "'{\"CTYPE1\": 1}'",
        "repeat('x', 100000)",
        "repeat('é☃', 2000)",
        r"E'odd \001\002\177 bytes \u00e9\u2603\U0001F680 end'",
        "E'tab\\there\\nnewline'",
        "'%s%n%x'",
        "'\\'",
    ];
    if rng.below(10) == 0 {
        Arg::raw("NULL::text")
    } else {
        Arg::raw(format!("{}::text", rng.pick(pool)))
    }
}

fn float_array_arg(values: &[Option<f64>]) -> Arg {
    let items: Vec<String> = values.iter().map(|v| float_text(*v)).collect();
    let nonfinite = values.iter().any(|v| v.is_some_and(|x| !x.is_finite()));
    Arg::raw(format!("ARRAY[{}]::float8[]", items.join(", "))).nonfinite(nonfinite)
}

fn special_float_array(rng: &mut Rng) -> Arg {
    match rng.below(12) {
        0 => Arg::raw("NULL::float8[]"),
        1 => Arg::raw("'{}'::float8[]"),
        2 => Arg::raw("'{NULL}'::float8[]"),
        3 => Arg::raw("'{NaN}'::float8[]").nonfinite(true),
        4 => Arg::raw("'{1,2,NULL}'::float8[]"),
        5 => Arg::raw("'{{1,2},{3,4}}'::float8[]"),
        6 => Arg::raw("array_fill(0.5::float8, ARRAY[100000])"),
        7 => Arg::raw("'[5:7]={10,20,30}'::float8[]"),
        _ => {
            let n = 3 + rng.below(3);
            let v: Vec<Option<f64>> = (0..n).map(|_| special_float(rng)).collect();
            float_array_arg(&v)
        }
    }
}

// ----------------------------------------------------------------- wcs and photo_calib

const WCS_TAN: &str = r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 2048.5, "CRPIX2": 2048.5, "CRVAL1": 150.1, "CRVAL2": 2.2, "CD1_1": -5.5e-5, "CD1_2": 1e-6, "CD2_1": 1e-6, "CD2_2": 5.5e-5}"#;
const WCS_SIP: &str = r#"{"NAXIS": 2, "DATE-OBS": "2026-11-24T03:00:00", "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 2036.5, "CRPIX2": 2000.5, "CRVAL1": 359.99, "CRVAL2": -30.0, "CD1_1": -5.5e-5, "CD1_2": 1e-7, "CD2_1": 1e-7, "CD2_2": 5.5e-5, "A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-7, "A_1_1": -2e-7, "B_0_2": -2e-7}"#;
const WCS_POLE: &str = r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 90, "CDELT1": -0.2, "CDELT2": 0.2, "CROTA2": 45}"#;
/// Accepted by the parser though absurd (degrees per pixel near the float8 limit, SIP terms
/// that overflow): what per-row calls do with them is part of the fuzzing.
const WCS_ODD: &[&str] = &[
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1e308, "CRPIX2": -1e308, "CRVAL1": 1e308, "CRVAL2": -90, "CD1_1": 1e-300, "CD2_2": 1e-300}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 0, "CRPIX2": 0, "CRVAL1": 0, "CRVAL2": 0, "CDELT1": -5.5e-5, "CDELT2": 1e308}"#,
    r#"{"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 10, "CRVAL2": 10, "CD1_1": 1e-4, "CD2_2": 1e-4, "A_ORDER": 9, "B_ORDER": 9, "A_9_0": 1e300, "B_0_9": -1e300, "AP_ORDER": 9, "BP_ORDER": 9, "AP_9_0": 1e300}"#,
    r#"{"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 10, "CRVAL2": 10, "CD1_1": 1e-4, "CD2_2": 1e-4, "A_ORDER": 1, "B_ORDER": 1, "A_1_0": -1, "B_0_1": -1}"#,
];
const WCS_BAD: &[&str] = &[
    "not json",
    "",
    "[]",
    r#"{"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV"}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD1_2": 1e-4, "CD2_1": 1e-4, "CD2_2": 1e-4}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": "NaN", "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": 1e-4}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 90.0000001, "CD1_1": 1e-4, "CD2_2": 1e-4}"#,
    r#"{"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRPIX1": 1, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": 1e-4, "A_ORDER": 10, "B_ORDER": 1e18}"#,
    r#"{"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 1e400, "CRPIX2": 1, "CRVAL1": 0, "CRVAL2": 0, "CD1_1": 1e-4, "CD2_2": 1e-4}"#,
];

fn wcs_arg(rng: &mut Rng, plausible: bool) -> Arg {
    let text = match (plausible, rng.below(10)) {
        (true, k) => [WCS_TAN, WCS_SIP, WCS_POLE][k % 3],
        (false, 0) => return Arg::raw("NULL::skycat.wcs"),
        (false, 1..=3) => *rng.pick(WCS_ODD),
        (false, 4..=6) => *rng.pick(WCS_BAD),
        (false, _) => *rng.pick(&[WCS_TAN, WCS_SIP, WCS_POLE]),
    };
    Arg::raw(format!("{}::skycat.wcs", quote(text)))
}

const PC_CONST: &str = r#"{"calibrationMean": 0.5, "calibrationErr": 0.01}"#;
const PC_FIELD: &str =
    r#"{"calibrationMean": 0.5, "bbox": [0, 0, 4071, 3999], "coefficients": [[0.5, 0.01], [0.02, 0.003]]}"#;
const PC_BAD: &[&str] = &[
    "x",
    "{}",
    r#"{"calibrationErr": 0.1}"#,
    r#"{"calibrationMean": -1}"#,
    r#"{"calibrationMean": 0}"#,
    r#"{"calibrationMean": "Infinity"}"#,
    r#"{"calibrationMean": 1, "calibrationErr": "NaN"}"#,
    r#"{"calibrationMean": 1, "calibrationErr": -1}"#,
    r#"{"calibrationMean": 1, "coefficients": [[1, 2], [3]], "bbox": [0, 0, 9, 9]}"#,
    r#"{"calibrationMean": 1, "coefficients": [[1]]}"#,
    r#"{"calibrationMean": 1, "coefficients": [[0.5, -2]], "bbox": [0, 0, 9, 9]}"#,
    r#"{"calibrationMean": 1, "coefficients": [[1e308, 1e308], [1e308, 1e308]], "bbox": [-2147483648, -2147483648, 2147483647, 2147483647]}"#,
];

fn photo_calib_arg(rng: &mut Rng, plausible: bool) -> Arg {
    if plausible {
        return Arg::raw(format!("{}::skycat.photo_calib", quote(rng.pick_str(&[PC_CONST, PC_FIELD]))));
    }
    match rng.below(8) {
        0 => Arg::raw("NULL::skycat.photo_calib"),
        1 => Arg::raw("skycat.photo_calib('1'::float8, 'NaN'::float8)").nonfinite(true),
        2 => Arg::raw("skycat.photo_calib('1e-300'::float8, '1e308'::float8)"),
        3 | 4 => Arg::raw(format!("{}::skycat.photo_calib", quote(rng.pick_str(PC_BAD)))),
        _ => Arg::raw(format!("{}::skycat.photo_calib", quote(rng.pick_str(&[PC_CONST, PC_FIELD])))),
    }
}

// =============================================================================== the catalogue

#[derive(Clone, Debug)]
struct Param {
    name: String,
    ty: String,
}

#[derive(Clone, Debug)]
struct Func {
    name: String,
    aggregate: bool,
    params: Vec<Param>,
    n_defaults: usize,
    /// `format_type` of the result (`record` for OUT parameters and TABLE functions).
    result: String,
    /// `name(argtypes)`, to tell overloads apart in the report.
    signature: String,
}

/// Reads every function of schema skycat, and says which ones are left out and why.
fn catalogue(c: &mut Client) -> (Vec<Func>, Vec<String>) {
    let rows = c
        .query(
            "SELECT p.proname::text, p.prokind::text, p.pronargdefaults::int,
                    coalesce(p.proargnames[1:p.pronargs], '{}')::text[] AS names,
                    coalesce((SELECT array_agg(format_type(t, NULL) ORDER BY k)
                                FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, k)), '{}') AS types,
                    format_type(p.prorettype, NULL) AS result,
                    p.oid::regprocedure::text AS signature
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'skycat'
              ORDER BY 1, 7",
            &[],
        )
        .expect("read the function catalogue");
    let mut funcs = Vec::new();
    let mut skipped = Vec::new();
    for r in rows {
        let name: String = r.get(0);
        let kind: String = r.get(1);
        let n_defaults: i32 = r.get(2);
        let names: Vec<String> = r.get(3);
        let types: Vec<String> = r.get(4);
        let result: String = r.get(5);
        let signature: String = r.get(6);
        let why = if kind == "p" {
            Some("a procedure")
        } else if kind != "f" && kind != "a" {
            Some("not a plain function or aggregate")
        } else if name.starts_with("ap_") || name.starts_with("drp_") {
            Some("needs an AP/DRP schema")
        } else if name.starts_with('_') {
            Some("internal helper")
        } else if types.iter().chain([&result]).any(|t| ["internal", "cstring", "fdw_handler"].contains(&t.as_str())) {
            Some("type I/O, aggregate support, planner support or FDW handler (internal/cstring)")
        } else {
            None
        };
        if let Some(why) = why {
            skipped.push(format!("{signature}: {why}"));
            continue;
        }
        let params = types
            .iter()
            .enumerate()
            .map(|(i, t)| Param { name: names.get(i).cloned().unwrap_or_default(), ty: t.clone() })
            .collect();
        funcs.push(Func { name, aggregate: kind == "a", params, n_defaults: n_defaults as usize, result, signature });
    }
    (funcs, skipped)
}

// =============================================================================== cases

/// What a case's rows are checked against, beyond the generic checks.
#[derive(Clone, Debug)]
enum Expect {
    /// Generic checks only (plus the per-function invariants chosen by name).
    Generic,
    /// `SELECT r::text, <round trip> FROM f(...) r`: the round-trip column must be true.
    TextRoundTrip,
    /// A single float8 that must be NULL or exactly 0.
    NullOrZero,
    /// An aggregate over these rows (argument values per row).
    Aggregate(Vec<Vec<Option<f64>>>),
    Crossmatch(Box<XmCase>),
    /// `crossmatch_input_rows`: the row count of the query.
    InputRows(usize),
}

#[derive(Clone, Debug)]
struct Case {
    /// The function's signature (or a name for a fixed case).
    function: String,
    sql: String,
    nonfinite_input: bool,
    expect: Expect,
    regression: bool,
}

/// The scratch objects the generators refer to.
struct Scratch {
    /// A directory the server's OS user may write (write_parquet).
    dir: PathBuf,
}

/// A plausible value for a parameter, by its name and type: the "mostly valid" calls use
/// these for every argument but one.
fn plausible(p: &Param, rng: &mut Rng, scratch: &Scratch) -> Arg {
    let n = p.name.as_str();
    let f = |x: f64| float_arg(Some(x));
    match (p.ty.as_str(), n) {
        ("double precision", "ra" | "ra1" | "ra2") => f(rng.range(0.0, 360.0)),
        ("double precision", "dec" | "dec1" | "dec2") => f(rng.range(-90.0, 90.0)),
        ("double precision", "radius_arcsec") => f(*rng.pick(&[0.5, 1.0, 30.0, 600.0, 3600.0, 6300.0])),
        ("double precision", "stripe_height_deg") => f(*rng.pick(&[0.5, 1.0, 7.0, 30.0])),
        ("double precision", "border_deg") => f(rng.range(0.0, 0.5)),
        ("double precision", "x" | "y") => f(rng.range(0.0, 4096.0)),
        ("double precision", "x_err" | "y_err") => f(rng.range(0.01, 1.0)),
        // Small enough that the covariance stays positive definite for any plausible x/y_err.
        ("double precision", "xy_cov") => f(rng.range(-1e-5, 1e-5)),
        ("double precision", n) if n.contains("calib_err") => f(rng.range(0.0, 0.05)),
        ("double precision", n) if n.contains("calib") => f(rng.range(0.1, 10.0)),
        ("double precision", n) if n.ends_with("_err") || n.ends_with("_err_njy") => f(rng.range(0.1, 50.0)),
        ("double precision", n) if n.contains("flux") => f(rng.range(-100.0, 5000.0)),
        ("double precision", "mjd") => f(rng.range(60000.0, 61000.0)),
        ("double precision", _) => f(rng.range(-10.0, 10.0)),
        ("integer", "num_stripes") => int_arg(Some(*rng.pick(&[340, 85, 18, 1000])), "int4"),
        ("integer", "num_sub_stripes") => int_arg(Some(*rng.pick(&[3, 12, 1, 5])), "int4"),
        ("integer", "resolution") => int_arg(Some(rng.int_range(0, 9)), "int4"),
        ("integer", "depth") => int_arg(Some(rng.int_range(0, 14)), "int4"),
        ("integer", "num_rings") => int_arg(Some(*rng.pick(&[120, 20, 3])), "int4"),
        ("integer", "tract") => int_arg(Some(rng.int_range(0, 300)), "int4"),
        ("integer", "slot") => int_arg(Some(rng.int_range(0, 3)), "int4"),
        ("integer", "n_slots") => int_arg(Some(rng.int_range(1, 4)), "int4"),
        ("integer", "row_group_rows") => int_arg(Some(*rng.pick(&[1, 100, 1_000_000])), "int4"),
        ("integer", _) => int_arg(Some(rng.int_range(0, 100)), "int4"),
        ("bigint", _) => int_arg(Some(rng.int_range(0, 1000)), "int8"),
        ("text", "mode") => {
            Arg::raw(format!("{}::text", quote(rng.pick_str(&["all", "nearest", "greedy", "optimal"]))))
        }
        ("text", "path") => {
            Arg::raw(format!("{}::text", quote(&format!("{}/p{}.parquet", scratch.dir.display(), rng.below(4)))))
        }
        ("text", "query" | "left_query" | "right_query") => {
            let rows = xm_rows(rng, true);
            Arg::raw(dollar(&xm_query(&rows, false)))
        }
        ("text", _) => Arg::raw("'abc'::text"),
        ("double precision[]", "poly_ra" | "poly_dec") => {
            let centre = if n == "poly_ra" { rng.range(0.0, 360.0) } else { rng.range(-60.0, 60.0) };
            let v: Vec<Option<f64>> = (0..4).map(|k| Some(centre + [-1.0, 1.0, 1.0, -1.0][k])).collect();
            float_array_arg(&v)
        }
        ("double precision[]", _) => float_array_arg(&[Some(1.0), Some(2.0), Some(3.0)]),
        ("bigint[]", _) => Arg::raw("'{1,2,3}'::bigint[]"),
        ("boolean[]", _) => Arg::raw(rng.pick_str(&["'{}'::boolean[]", "'{true,false,true}'::boolean[]"]).to_string()),
        ("skycat.wcs", _) => wcs_arg(rng, true),
        ("skycat.photo_calib", _) => photo_calib_arg(rng, true),
        ("regclass", _) => Arg::raw("'fz_part'::regclass"),
        ("name", _) => Arg::raw("'dec'::name"),
        ("text[]", _) => Arg::raw("'{files=x.parquet}'::text[]"),
        ("oid", _) => Arg::raw("'pg_foreign_table'::regclass::oid"),
        ("boolean", _) => Arg::raw("true"),
        (other, _) => Arg::raw(format!("NULL::{other}")),
    }
}

/// A value from the special set of the parameter's type.
fn special(p: &Param, rng: &mut Rng, scratch: &Scratch) -> Arg {
    match p.ty.as_str() {
        "double precision" => float_arg(special_float(rng)),
        "integer" => special_int(rng, "int4"),
        "bigint" => special_int(rng, "int8"),
        "smallint" => special_int(rng, "int2"),
        "text" if p.name == "path" => parquet_path(rng, scratch),
        "text" if p.name.ends_with("query") => xm_odd_query(rng),
        "text" => special_text(rng),
        "double precision[]" => special_float_array(rng),
        "bigint[]" => Arg::raw(match rng.below(6) {
            0 => "NULL::bigint[]",
            1 => "'{}'::bigint[]",
            2 => "'{NULL,2,3}'::bigint[]",
            3 => "'{7,7,7}'::bigint[]",
            4 => "ARRAY(SELECT generate_series(1, 3000000))::bigint[]",
            _ => "'{-9223372036854775808,0,9223372036854775807}'::bigint[]",
        }),
        "boolean[]" => Arg::raw(match rng.below(5) {
            0 => "NULL::boolean[]",
            1 => "'{}'::boolean[]",
            2 => "'{NULL,true,true}'::boolean[]",
            3 => "'{true}'::boolean[]",
            _ => "'{true,true,true}'::boolean[]",
        }),
        "skycat.wcs" => wcs_arg(rng, false),
        "skycat.photo_calib" => photo_calib_arg(rng, false),
        "regclass" => Arg::raw(match rng.below(6) {
            0 => "NULL::regclass",
            1 => "'fz_plain'::regclass",
            2 => "'fz_text_part'::regclass",
            3 => "'pg_class'::regclass",
            4 => "'fz_part_2'::regclass",
            _ => "'fz_part'::regclass",
        }),
        "name" => Arg::raw(match rng.below(7) {
            0 => "NULL::name",
            1 => "''::name",
            2 => "'ra'::name",
            3 => "'id'::name",
            4 => "'nope'::name",
            5 => "repeat('d', 100)::name",
            _ => "'dec'::name",
        }),
        "text[]" => Arg::raw(match rng.below(12) {
            0 => "NULL::text[]".to_string(),
            1 => "'{}'::text[]".to_string(),
            2 => "'{NULL}'::text[]".to_string(),
            3 => "'{root=relative/dir}'::text[]".to_string(),
            4 => "'{files=../etc/passwd}'::text[]".to_string(),
            5 => "'{files=/etc/passwd}'::text[]".to_string(),
            6 => "'{format=xyz}'::text[]".to_string(),
            7 => "'{bogus=1}'::text[]".to_string(),
            8 => "'{=}'::text[]".to_string(),
            9 => "'{root}'::text[]".to_string(),
            10 => "ARRAY['root=' || repeat('/a', 50000)]::text[]".to_string(),
            _ => format!("'{{root={}}}'::text[]", scratch.dir.display()),
        }),
        "oid" => Arg::raw(match rng.below(6) {
            0 => "NULL::oid",
            1 => "'0'::oid",
            2 => "'4294967295'::oid",
            3 => "'pg_foreign_server'::regclass::oid",
            4 => "'pg_user_mapping'::regclass::oid",
            _ => "'pg_foreign_data_wrapper'::regclass::oid",
        }),
        other => Arg::raw(format!("NULL::{other}")),
    }
}

fn dollar(s: &str) -> String {
    format!("$q${s}$q$")
}

/// Where write_parquet may write: inside the scratch directory, or places it must refuse.
fn parquet_path(rng: &mut Rng, scratch: &Scratch) -> Arg {
    let d = scratch.dir.display();
    let dir_name = scratch.dir.file_name().unwrap().to_string_lossy().into_owned();
    let text = match rng.below(11) {
        0 => return Arg::raw("NULL::text"),
        1 => "''".to_string(),
        2 => "'relative.parquet'".to_string(),
        3 => quote(&d.to_string()),
        4 => quote(&format!("{d}/sub/d{}/x.parquet", rng.below(3))),
        5 => quote(&format!("{d}/../{dir_name}/up.parquet")),
        6 => format!("'{d}/' || repeat('a', 300) || '.parquet'"),
        7 => quote(&format!("{d}/ro/x.parquet")),
        8 => quote(&format!("{d}/odd\u{1}\u{7f}é name.parquet")),
        9 => quote(&format!("{d}/existing_dir")),
        _ => quote(&format!("{d}/w{}.parquet", rng.below(4))),
    };
    Arg::raw(format!("{text}::text"))
}

/// Queries for write_parquet: odd column types and values, DDL, no rows, errors.
const PARQUET_QUERIES: &[&str] = &[
    "SELECT 'pg_statistic'::name",
    "SELECT 1::int AS a, 'x'::text AS b",
    "SELECT * FROM pg_statistic LIMIT 1",
    "SELECT NULL",
    "SELECT NULL::float8 AS f, NULL::text AS t, NULL::int8[] AS a",
    "SELECT ARRAY[1, NULL]::int[] AS a",
    "SELECT '{{1,2},{3,4}}'::float8[] AS a",
    "SELECT '[3:4]={1,2}'::int4[] AS a",
    "SELECT ARRAY[]::text[] AS a, '{NULL}'::text[] AS b",
    "SELECT 'NaN'::float8 AS f, 'Infinity'::float4 AS g, '-0'::float8 AS h",
    "SELECT 'infinity'::timestamp AS t, '-infinity'::date AS d, 'infinity'::timestamptz AS z",
    "SELECT '4713-01-01 BC'::date AS d, '294276-12-31 23:59:59'::timestamp AS t",
    "SELECT 1::numeric AS n",
    "SELECT ROW(1, 2) AS r",
    "SELECT 1 AS dup, 2 AS dup",
    "SELECT 1 AS \"\u{e9}\u{2603} odd/name\"",
    "SELECT '\\x00ff'::bytea AS b, ''::bytea AS e",
    "SELECT repeat('x', 100000) AS t",
    "SELECT 'a'::char(3) AS c, 'b'::varchar AS v",
    "SELECT 1 WHERE false",
    "SELECT g::bigint AS id, g * 0.5 AS f FROM generate_series(1, 5000) g",
    "SELECT g FROM generate_series(1, 100000000) g",
    "CREATE TEMP TABLE fz_w ()",
    "VACUUM",
    "",
    "garbage",
    "SELECT 1; SELECT 2",
    "SELECT 1/0",
    "SELECT '32768'::int2",
    "SELECT true AS b, 1::int2 AS s, 1.5::float4 AS r",
    "SELECT 9223372036854775807::int8 AS a, (-9223372036854775807 - 1)::int8 AS b",
    "SELECT oid, relname FROM pg_class LIMIT 3",
    "SELECT '{\"a\": 1}'::jsonb AS j, 'fz'::regclass AS r",
];

fn parquet_query(rng: &mut Rng) -> Arg {
    if rng.below(12) == 0 {
        return Arg::raw("NULL::text");
    }
    Arg::raw(dollar(rng.pick_str(PARQUET_QUERIES)))
}

// ----------------------------------------------------------------- crossmatch

#[derive(Clone, Debug)]
struct XmRow {
    id: Option<i64>,
    ra: Option<f64>,
    dec: Option<f64>,
    err: (Option<f64>, Option<f64>),
}

#[derive(Clone, Debug)]
struct XmCase {
    left: Vec<XmRow>,
    right: Vec<XmRow>,
    /// Whether the queries are the generated rows (else an odd query: no row checks).
    structured: bool,
    radius: Option<f64>,
    mode: Option<String>,
    marked: bool,
}

fn xm_value(rng: &mut Rng, valid: bool, lo: f64, hi: f64) -> Option<f64> {
    if valid {
        Some(rng.range(lo, hi))
    } else {
        special_float(rng)
    }
}

/// 0-5 rows near one spot (so they match), mostly valid, sometimes with NULL / NaN / huge.
fn xm_rows(rng: &mut Rng, valid: bool) -> Vec<XmRow> {
    let n = rng.below(6);
    let (ra0, dec0) = (rng.range(0.0, 360.0), rng.range(-89.0, 89.0));
    let near = rng.chance(0.7);
    (0..n)
        .map(|k| {
            let ok = valid || rng.chance(0.7);
            let id = if ok || rng.chance(0.5) { Some(k as i64 + rng.int_range(-2, 2) * 1000) } else { None };
            let (ra, dec) = if ok && near {
                (Some(ra0 + rng.range(-3e-4, 3e-4)), Some((dec0 + rng.range(-3e-4, 3e-4)).clamp(-90.0, 90.0)))
            } else {
                (xm_value(rng, ok, 0.0, 360.0), xm_value(rng, ok, -90.0, 90.0))
            };
            let err_ok = valid || rng.chance(0.6);
            let err = (xm_value(rng, err_ok, 0.01, 1.0), xm_value(rng, err_ok, 0.01, 1.0));
            XmRow { id, ra, dec, err }
        })
        .collect()
}

fn xm_query(rows: &[XmRow], with_err: bool) -> String {
    let cols = if with_err { "id, ra, dec, ra_err_arcsec, dec_err_arcsec" } else { "id, ra, dec" };
    let row = |r: &XmRow| {
        let id = r.id.map_or("NULL".to_string(), |i| i.to_string());
        let mut s = format!("({id}::bigint, {}::float8, {}::float8", float_text(r.ra), float_text(r.dec));
        if with_err {
            let _ = write!(s, ", {}::float8, {}::float8", float_text(r.err.0), float_text(r.err.1));
        }
        s + ")"
    };
    if rows.is_empty() {
        let empty = XmRow { id: Some(1), ra: Some(0.0), dec: Some(0.0), err: (Some(1.0), Some(1.0)) };
        return format!("SELECT * FROM (VALUES {}) v({cols}) WHERE false", row(&empty));
    }
    let values: Vec<String> = rows.iter().map(row).collect();
    format!("SELECT * FROM (VALUES {}) v({cols})", values.join(", "))
}

const XM_ODD_QUERIES: &[&str] = &[
    "SELECT 1",
    "SELECT 1::bigint AS id, 2::float8 AS ra",
    "SELECT 'a'::text AS id, 1::float8 AS ra, 2::float8 AS dec",
    "SELECT 1::int AS id, 1::float4 AS ra, 1::numeric AS dec",
    "SELECT 1::bigint AS id, 1::float8 AS ra, 2::float8 AS dec, 'x'::text AS ra_err_arcsec, 1::float8 AS dec_err_arcsec",
    "SELECT 1::bigint AS id, 1::float8 AS ra, 2::float8 AS dec, 1::float8 AS ra_err_arcsec",
    "SELECT g::bigint AS id, (g % 360)::float8 AS ra, 0::float8 AS dec FROM generate_series(1, 1000000) g",
    "SELECT g::bigint AS id, 10::float8 AS ra, 10::float8 AS dec FROM generate_series(1, 3000) g",
    "",
    "garbage",
    "CREATE TEMP TABLE fz_x ()",
    "SELECT 1 AS id; SELECT 2",
    "SELECT id, ra, dec FROM fz_plain",
];

fn xm_odd_query(rng: &mut Rng) -> Arg {
    if rng.below(8) == 0 {
        return Arg::raw("NULL::text");
    }
    Arg::raw(dollar(rng.pick_str(XM_ODD_QUERIES)))
}

fn xm_case(f: &Func, rng: &mut Rng, fully_random: bool) -> Case {
    let marked = f.name == "crossmatch_marked";
    let valid = !fully_random && rng.chance(0.5);
    let with_err = rng.chance(0.4);
    let left = xm_rows(rng, valid);
    let right = if rng.chance(0.8) && !left.is_empty() {
        // Matches close to the left rows.
        left.iter()
            .map(|l| XmRow {
                id: l.id.map(|i| i + 10_000),
                ra: l.ra.map(|r| r + rng.range(-2e-4, 2e-4)),
                dec: l.dec.map(|d| (d + rng.range(-2e-4, 2e-4)).clamp(-90.0, 90.0)),
                err: if valid || rng.chance(0.5) { l.err } else { (special_float(rng), special_float(rng)) },
            })
            .collect()
    } else {
        xm_rows(rng, valid)
    };
    let radius =
        if valid || rng.chance(0.5) { Some(*rng.pick(&[0.5, 1.0, 2.0, 10.0, 3600.0])) } else { special_float(rng) };
    let mode = if valid || rng.chance(0.7) {
        Some(rng.pick(&["all", "nearest", "greedy", "optimal"]).to_string())
    } else {
        None
    };
    let odd_query = !valid && rng.chance(0.15);
    let (lq, rq) = if odd_query {
        if rng.chance(0.5) {
            (xm_odd_query(rng).sql, dollar(&xm_query(&right, with_err)))
        } else {
            (dollar(&xm_query(&left, with_err)), xm_odd_query(rng).sql)
        }
    } else {
        (dollar(&xm_query(&left, with_err)), dollar(&xm_query(&right, with_err && rng.chance(0.9))))
    };
    let mode_sql = match &mode {
        Some(m) => format!("{}::text", quote(m)),
        None => special_text(rng).sql,
    };
    let omit_mode = !marked && mode.as_deref() == Some("all") && rng.chance(0.3);
    let args = if omit_mode {
        format!("{lq}, {rq}, {}::float8", float_text(radius))
    } else {
        format!("{lq}, {rq}, {}::float8, {mode_sql}", float_text(radius))
    };
    let rows_nonfinite = |rows: &[XmRow]| {
        rows.iter().any(|r| [r.ra, r.dec, r.err.0, r.err.1].iter().any(|v| v.is_some_and(|x| !x.is_finite())))
    };
    let nonfinite = radius.is_some_and(|r| !r.is_finite()) || rows_nonfinite(&left) || rows_nonfinite(&right);
    let mode_known = if omit_mode { Some("all".to_string()) } else { mode };
    Case {
        function: f.signature.clone(),
        sql: format!("SELECT * FROM skycat.{}({args})", f.name),
        nonfinite_input: nonfinite,
        expect: Expect::Crossmatch(Box::new(XmCase {
            left,
            right,
            structured: !odd_query,
            radius,
            mode: mode_known,
            marked,
        })),
        regression: false,
    }
}

fn input_rows_case(f: &Func, rng: &mut Rng, fully_random: bool) -> Case {
    if fully_random && rng.chance(0.4) {
        return Case {
            function: f.signature.clone(),
            sql: format!("SELECT * FROM skycat.{}({})", f.name, xm_odd_query(rng).sql),
            nonfinite_input: false,
            expect: Expect::Generic,
            regression: false,
        };
    }
    let rows = xm_rows(rng, !fully_random);
    let nonfinite = rows.iter().any(|r| [r.ra, r.dec].iter().any(|v| v.is_some_and(|x| !x.is_finite())));
    Case {
        function: f.signature.clone(),
        sql: format!("SELECT * FROM skycat.{}({})", f.name, dollar(&xm_query(&rows, rng.chance(0.3)))),
        nonfinite_input: nonfinite,
        expect: Expect::InputRows(rows.len()),
        regression: false,
    }
}

// ----------------------------------------------------------------- aggregates

fn aggregate_case(f: &Func, rng: &mut Rng, fully_random: bool, scratch: &Scratch) -> Case {
    let n_rows = rng.below(8);
    let mut rows: Vec<Vec<Arg>> = Vec::new();
    for _ in 0..n_rows.max(1) {
        let bad = if fully_random { usize::MAX } else { rng.below(f.params.len() * 3) };
        let row = f
            .params
            .iter()
            .enumerate()
            .map(|(k, p)| {
                if fully_random && rng.chance(0.5) || k == bad {
                    special(p, rng, scratch)
                } else {
                    plausible(p, rng, scratch)
                }
            })
            .collect();
        rows.push(row);
    }
    // A constant-flux curve now and then: the moments of a constant are 0 or undefined.
    if rng.chance(0.15) {
        let v = rows[0].clone();
        for r in rows.iter_mut() {
            r[0] = v[0].clone();
        }
    }
    let cols: Vec<String> = (1..=f.params.len()).map(|k| format!("c{k}")).collect();
    let values: Vec<String> =
        rows.iter().map(|r| format!("({})", r.iter().map(|a| a.sql.as_str()).collect::<Vec<_>>().join(", "))).collect();
    let filter = if n_rows == 0 { " WHERE false" } else { "" };
    let sql = format!(
        "SELECT (a).* FROM (SELECT skycat.{}({}) AS a FROM (VALUES {}) v({}){filter}) s",
        f.name,
        cols.join(", "),
        values.join(", "),
        cols.join(", ")
    );
    let used: Vec<Vec<Option<f64>>> =
        if n_rows == 0 { Vec::new() } else { rows.iter().map(|r| r.iter().map(|a| a.num).collect()).collect() };
    Case {
        function: f.signature.clone(),
        sql,
        nonfinite_input: rows.iter().flatten().any(|a| a.nonfinite),
        expect: Expect::Aggregate(used),
        regression: false,
    }
}

// ----------------------------------------------------------------- any function

/// A call of `f`: mostly one special argument among plausible ones, else all special.
fn function_case(f: &Func, rng: &mut Rng, scratch: &Scratch) -> Case {
    let fully_random = rng.chance(0.4);
    if f.aggregate {
        return aggregate_case(f, rng, fully_random, scratch);
    }
    if f.name == "crossmatch" || f.name == "crossmatch_marked" {
        return xm_case(f, rng, fully_random);
    }
    if f.name == "crossmatch_input_rows" {
        return input_rows_case(f, rng, fully_random);
    }
    let n = f.params.len();
    // Trailing defaulted arguments are sometimes left out.
    let n_args = if f.n_defaults > 0 && rng.chance(0.3) { n - rng.below(f.n_defaults + 1) } else { n };
    let bad = rng.below(n_args.max(1));
    let all_plausible = !fully_random && rng.chance(0.1);
    let args: Vec<Arg> = f.params[..n_args]
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let odd = if fully_random { rng.chance(0.7) } else { k == bad && !all_plausible };
            if f.name == "write_parquet" && p.name == "query" {
                if odd {
                    parquet_query(rng)
                } else {
                    Arg::raw(dollar("SELECT g::bigint AS id, g * 0.25 AS f FROM generate_series(1, 10) g"))
                }
            } else if odd {
                special(p, rng, scratch)
            } else {
                plausible(p, rng, scratch)
            }
        })
        .collect();
    let list = args.iter().map(|a| a.sql.as_str()).collect::<Vec<_>>().join(", ");
    let (sql, expect) = if f.result == "skycat.wcs" || f.result == "skycat.photo_calib" {
        (
            format!(
                "SELECT r::text AS text, (r::text::{0})::text = r::text AS round_trip FROM skycat.{1}({list}) r",
                f.result, f.name
            ),
            Expect::TextRoundTrip,
        )
    } else {
        (format!("SELECT * FROM skycat.{}({list})", f.name), Expect::Generic)
    };
    Case {
        function: f.signature.clone(),
        sql,
        nonfinite_input: args.iter().any(|a| a.nonfinite),
        expect,
        regression: false,
    }
}

/// The inputs an outside test found to crash, hang or answer wrongly: run every time.
fn regression_cases(scratch: &Scratch) -> Vec<Case> {
    let g = |function: &str, sql: String| Case {
        function: function.to_string(),
        sql,
        nonfinite_input: false,
        expect: Expect::Generic,
        regression: true,
    };
    let d = scratch.dir.display();
    let inf_errors = |id: i64, ra: f64| {
        format!(
            "$q$SELECT * FROM (VALUES ({id}::bigint, {ra}::float8, 10::float8, 'Infinity'::float8, 'Infinity'::float8), \
             ({}::bigint, {ra}::float8, 10.0001::float8, 1::float8, 'Infinity'::float8)) v(id, ra, dec, ra_err_arcsec, dec_err_arcsec)$q$",
            id + 1
        )
    };
    let mut cases = vec![
        g(
            "skycat.write_parquet(text,text,integer)",
            format!("SELECT skycat.write_parquet($$SELECT 'pg_statistic'::name$$, '{d}/n.parquet')"),
        ),
        g("skycat.stripe(double precision,double precision)", "SELECT skycat.stripe(0, 1e-18)".into()),
        g("skycat.stripe(double precision,double precision)", "SELECT skycat.stripe(0, 1e-8)".into()),
        g("skycat.stripe(double precision,double precision)", "SELECT skycat.stripe(90, 1e-9)".into()),
        g(
            "skycat.stripes_in_circle(double precision,double precision,double precision,double precision)",
            "SELECT skycat.stripes_in_circle(0,0,3600,1e-12)".into(),
        ),
        g(
            "skycat.stripes_in_circle(double precision,double precision,double precision,double precision)",
            "SELECT skycat.stripes_in_circle(0,0,3600,1e-6)".into(),
        ),
        g(
            "skycat.h3_cells_in_circle(double precision,double precision,double precision,integer)",
            "SELECT skycat.h3_cells_in_circle(0,0,1296000,6)".into(),
        ),
        g(
            "skycat.h3_cells_in_circle(double precision,double precision,double precision,integer)",
            "SELECT skycat.h3_cells_in_circle(0,0,1296000,15)".into(),
        ),
        g(
            "skycat.h3_cells_in_circle(double precision,double precision,double precision,integer)",
            "SELECT skycat.h3_cells_in_circle(0,0,1296000,5)".into(),
        ),
        g(
            "skycat.chunks_in_circle(double precision,double precision,double precision,integer,integer)",
            "SELECT skycat.chunks_in_circle(0,0,648000,6000,1)".into(),
        ),
        g(
            "skycat.chunk_id(double precision,double precision,integer,integer)",
            "SELECT skycat.chunk_id(0,0,648000,1)".into(),
        ),
        g(
            "skycat.sub_chunk_id(double precision,double precision,integer,integer)",
            "SELECT skycat.sub_chunk_id(123,45,1,648000)".into(),
        ),
        g("skycat.ab_mag_err(double precision,double precision)", "SELECT skycat.ab_mag_err(1,-1)".into()),
        g(
            "skycat.polygon_contains(double precision[],double precision[],double precision,double precision)",
            "SELECT skycat.polygon_contains(ARRAY[0,1,NULL]::float8[], ARRAY[0,0,1]::float8[], 0.5, 0.2)".into(),
        ),
        Case {
            function: "skycat.lc_stats(double precision,double precision,double precision)".into(),
            sql: "SELECT (skycat.lc_stats(f, 1, m)).skew FROM (VALUES (0.1,1),(0.1,2),(0.1,3)) v(f,m)".into(),
            nonfinite_input: false,
            expect: Expect::NullOrZero,
            regression: true,
        },
    ];
    for (function, marked) in [
        ("skycat.crossmatch(text,text,double precision,text)", false),
        ("skycat.crossmatch_marked(text,text,double precision,text)", true),
    ] {
        let name = if marked { "crossmatch_marked" } else { "crossmatch" };
        cases.push(Case {
            function: function.into(),
            sql: format!(
                "SELECT * FROM skycat.{name}({}, {}, 10, 'optimal')",
                inf_errors(1, 10.0),
                inf_errors(11, 10.0)
            ),
            // Only the error columns are infinite: positions and separations stay finite.
            nonfinite_input: false,
            expect: Expect::Crossmatch(Box::new(XmCase {
                left: vec![],
                right: vec![],
                structured: false,
                radius: Some(10.0),
                mode: Some("optimal".into()),
                marked,
            })),
            regression: true,
        });
    }
    cases
}

// =============================================================================== running a call

/// A result value, decoded by column type; other types are not looked at.
#[derive(Clone, Debug)]
enum Val {
    Null,
    F(f64),
    I(i64),
    B(bool),
    T(String),
    FA(Vec<Option<f64>>),
    IA(Vec<Option<i64>>),
    Other,
}

#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Val>>,
}

fn decode(rows: &[Row]) -> Table {
    let columns = rows.first().map(|r| r.columns().iter().map(|c| c.name().to_string()).collect()).unwrap_or_default();
    let rows = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let t = r.columns()[i].type_().clone();
                    let v = if t == Type::FLOAT8 {
                        r.try_get::<_, Option<f64>>(i).map(|v| v.map_or(Val::Null, Val::F))
                    } else if t == Type::FLOAT4 {
                        r.try_get::<_, Option<f32>>(i).map(|v| v.map_or(Val::Null, |x| Val::F(x as f64)))
                    } else if t == Type::INT8 {
                        r.try_get::<_, Option<i64>>(i).map(|v| v.map_or(Val::Null, Val::I))
                    } else if t == Type::INT4 {
                        r.try_get::<_, Option<i32>>(i).map(|v| v.map_or(Val::Null, |x| Val::I(x as i64)))
                    } else if t == Type::INT2 {
                        r.try_get::<_, Option<i16>>(i).map(|v| v.map_or(Val::Null, |x| Val::I(x as i64)))
                    } else if t == Type::BOOL {
                        r.try_get::<_, Option<bool>>(i).map(|v| v.map_or(Val::Null, Val::B))
                    } else if t == Type::TEXT || t == Type::NAME || t == Type::VARCHAR {
                        r.try_get::<_, Option<String>>(i).map(|v| v.map_or(Val::Null, Val::T))
                    } else if t == Type::FLOAT8_ARRAY {
                        r.try_get::<_, Option<Vec<Option<f64>>>>(i).map(|v| v.map_or(Val::Null, Val::FA))
                    } else if t == Type::INT8_ARRAY {
                        r.try_get::<_, Option<Vec<Option<i64>>>>(i).map(|v| v.map_or(Val::Null, Val::IA))
                    } else if t == Type::INT4_ARRAY {
                        r.try_get::<_, Option<Vec<Option<i32>>>>(i).map(|v| {
                            v.map_or(Val::Null, |a| Val::IA(a.into_iter().map(|x| x.map(i64::from)).collect()))
                        })
                    } else {
                        Ok(Val::Other)
                    };
                    v.unwrap_or(Val::Other)
                })
                .collect()
        })
        .collect();
    Table { columns, rows }
}

/// How a call ended.
#[derive(Debug)]
enum Outcome {
    Rows(Table),
    Error {
        state: String,
        message: String,
    },
    /// The session's connection broke (the backend died or was terminated).
    Lost(String),
}

type Job = (String, Sender<(Outcome, Duration)>);

/// A session on its own thread, so a call can be abandoned (and its backend killed) when
/// it does not return.
struct Session {
    jobs: Option<Sender<Job>>,
    pid: i32,
    thread: Option<JoinHandle<()>>,
}

impl Session {
    fn open(dsn: &str, timeout: Duration) -> Result<Session, String> {
        let mut c = Client::connect(dsn, NoTls).map_err(|e| format!("connect: {e}"))?;
        c.batch_execute(&format!(
            "SET statement_timeout = '{}ms'; SET client_min_messages = warning; SET lock_timeout = '5s'",
            timeout.as_millis()
        ))
        .map_err(|e| format!("set up the session: {e}"))?;
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).map_err(|e| e.to_string())?.get(0);
        let (tx, rx): (Sender<Job>, Receiver<Job>) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for (sql, reply) in rx {
                let start = Instant::now();
                let outcome = match c.query(sql.as_str(), &[]) {
                    Ok(rows) => Outcome::Rows(decode(&rows)),
                    Err(e) => match e.as_db_error() {
                        Some(db) if !c.is_closed() => {
                            Outcome::Error { state: db.code().code().to_string(), message: db.message().to_string() }
                        }
                        _ => Outcome::Lost(e.to_string()),
                    },
                };
                if reply.send((outcome, start.elapsed())).is_err() {
                    break;
                }
            }
        });
        Ok(Session { jobs: Some(tx), pid, thread: Some(thread) })
    }

    fn send(&self, sql: &str) -> Receiver<(Outcome, Duration)> {
        let (tx, rx) = mpsc::channel();
        let _ = self.jobs.as_ref().expect("an open session").send((sql.to_string(), tx));
        rx
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            // The thread ends when its query returns (a killed backend makes it return); one
            // still blocked is left behind rather than waited for.
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The server log's new lines since the last look.
struct LogTail {
    path: Option<PathBuf>,
    offset: u64,
}

impl LogTail {
    fn new(path: Option<PathBuf>) -> LogTail {
        let offset = path.as_ref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
        LogTail { path, offset }
    }

    fn read_new(&mut self) -> String {
        let Some(path) = &self.path else { return String::new() };
        let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
        let len = f.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0; // rotated
        }
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_ok() && f.read_to_end(&mut buf).is_ok() {
            self.offset += buf.len() as u64;
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn crash_lines(log: &str) -> Vec<String> {
    let crash = log.lines().any(|l| {
        l.contains("terminated by signal") || l.contains("was terminated") || l.contains("exited with exit code")
    });
    if !crash {
        return Vec::new();
    }
    log.lines()
        .filter(|l| {
            [
                "terminated by signal",
                "was terminated",
                "exited with exit code",
                "panicked",
                "Failed process",
                "PANIC",
                "abort",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .take(8)
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// The failure kinds, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Crash,
    Hang,
    SlowCancel,
    InternalError,
    BadSqlstate,
    WrongValue,
    /// The session computes differently after some calls than when it was fresh.
    SessionState,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Hang => "uninterruptible hang",
            Kind::SlowCancel => "slow cancellation",
            Kind::InternalError => "XX000 internal error",
            Kind::BadSqlstate => "undocumented SQLSTATE",
            Kind::WrongValue => "wrong value",
            Kind::SessionState => "backend state changed by earlier calls",
        }
    }
}

#[derive(Clone, Debug)]
struct Failure {
    function: String,
    kind: Kind,
    detail: String,
    sql: String,
    regression: bool,
    /// The position of the call in the run (the line of a SKYCAT_FUZZ_TRACE file).
    call: usize,
}

/// The running server: the call session, the watchdog, the log.
struct Harness {
    dsn: String,
    settings: Settings,
    session: Option<Session>,
    watchdog: Option<Client>,
    log: LogTail,
    /// What [`CANARY`] returns in a fresh session.
    canary: Option<Vec<String>>,
}

/// Deterministic computations whose results must not depend on what a session ran before
/// (caches, floating-point state, memory reuse): checked in a fresh session, then every
/// [`CANARY_EVERY`] calls.
const CANARY: &str = "SELECT
    (SELECT bool_and(skycat.photo_calib(x)::text::skycat.photo_calib::text = skycat.photo_calib(x)::text)
       FROM (SELECT 1 + g * 0.123456789012345 AS x FROM generate_series(1, 100) g) s)::text AS photo_calib_round_trip,
    (SELECT string_agg(skycat.photo_calib(1 + g * 0.0123456789012345, g * 1e-3)::text, ' ') FROM generate_series(1, 20) g) AS photo_calib_text,
    (SELECT sum(skycat.sep_arcsec(g * 0.37, g * 0.11 - 45, g * 0.37 + 0.001, g * 0.11 - 45.0007)) FROM generate_series(1, 100) g)::text AS sep,
    (SELECT string_agg(((1::float8 / g) * 3.3)::text, ',') FROM generate_series(1, 30) g) AS division,
    skycat.pixel_to_sky('{\"CTYPE1\": \"RA---TAN-SIP\", \"CTYPE2\": \"DEC--TAN-SIP\", \"CRPIX1\": 2036.5, \"CRPIX2\": 2000.5,
        \"CRVAL1\": 359.99, \"CRVAL2\": -30.0, \"CD1_1\": -5.5e-5, \"CD1_2\": 1e-7, \"CD2_1\": 1e-7, \"CD2_2\": 5.5e-5,
        \"A_ORDER\": 2, \"B_ORDER\": 2, \"A_2_0\": 1e-7, \"A_1_1\": -2e-7, \"B_0_2\": -2e-7}'::skycat.wcs, 100.25, 200.75)::text AS wcs,
    (SELECT (skycat.lc_stats(sin(g) * 100, 1 + g % 3, 60000 + g))::text FROM generate_series(1, 50) g) AS lc_stats,
    skycat.chunks_in_circle(150, 2.2, 1800)::text AS chunks,
    skycat.h3_cells_in_circle(150, 2.2, 600, 7)::text AS h3";
const CANARY_EVERY: usize = 50;

impl Harness {
    fn connect(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let attempt = (|| -> Result<(Session, Client), String> {
                let mut w = Client::connect(&self.dsn, NoTls).map_err(|e| e.to_string())?;
                w.simple_query("SELECT 1").map_err(|e| e.to_string())?;
                Ok((Session::open(&self.dsn, self.settings.timeout)?, w))
            })();
            match attempt {
                Ok((s, w)) => {
                    self.session = Some(s);
                    self.watchdog = Some(w);
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("the server does not accept connections again: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// The call session's backend pid, after (re)connecting if needed.
    fn session_pid(&mut self) -> i32 {
        if self.session.is_none() || !self.watchdog_alive() {
            self.session = None;
            self.connect();
        }
        self.session.as_ref().unwrap().pid
    }

    /// Runs [`CANARY`] on the call session: the first time it is the baseline; later a
    /// different answer is returned as an error (and the session is replaced).
    fn check_canary(&mut self) -> Result<(), String> {
        self.session_pid();
        let reply = self.session.as_ref().unwrap().send(CANARY);
        let got = match reply.recv_timeout(Duration::from_secs(30)) {
            Ok((Outcome::Rows(t), _)) => t
                .rows
                .first()
                .map(|r| {
                    r.iter().map(|v| if let Val::T(s) = v { s.clone() } else { format!("{v:?}") }).collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            Ok((other, _)) => vec![format!("{other:?}")],
            Err(_) => panic!("the canary query did not return within 30 s"),
        };
        match &self.canary {
            None => {
                let round_trip = got.first().map(String::as_str) == Some("true");
                self.canary = Some(got.clone());
                if round_trip {
                    Ok(())
                } else {
                    Err(format!(
                        "in a fresh session, photo_calib text forms do not read back as the same values: {got:?}"
                    ))
                }
            }
            Some(base) if *base == got => Ok(()),
            Some(base) => {
                let names = [
                    "photo_calib_round_trip",
                    "photo_calib_text",
                    "sep",
                    "division",
                    "wcs",
                    "lc_stats",
                    "chunks",
                    "h3",
                ];
                let diff: Vec<String> = base
                    .iter()
                    .zip(&got)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(i, (a, b))| {
                        format!("{}: {} -> {}", names.get(i).unwrap_or(&"?"), short(a, 120), short(b, 120))
                    })
                    .collect();
                self.session = None;
                Err(diff.join("; "))
            }
        }
    }

    fn watchdog_alive(&mut self) -> bool {
        self.watchdog.as_mut().is_some_and(|w| w.simple_query("SELECT 1").is_ok())
    }

    /// Runs one case; returns the outcome (None when it hung and was killed) and failures
    /// of the crash / hang / cancellation kind.
    fn run(&mut self, case: &Case) -> (Option<Outcome>, Vec<(Kind, String)>) {
        if self.session.is_none() || !self.watchdog_alive() {
            self.session = None;
            self.connect();
        }
        let mut problems = Vec::new();
        let timeout = self.settings.timeout;
        let session = self.session.as_ref().unwrap();
        let pid = session.pid;
        let reply = session.send(&case.sql);
        let outcome = match reply.recv_timeout(timeout + Duration::from_secs(5)) {
            Ok((outcome, took)) => {
                if took > timeout + Duration::from_secs(1) {
                    let how = match &outcome {
                        Outcome::Error { state, .. } if state == "57014" => "cancelled (57014)".to_string(),
                        Outcome::Error { state, .. } => format!("ended with {state}"),
                        Outcome::Rows(_) => "finished".to_string(),
                        Outcome::Lost(_) => "lost its connection".to_string(),
                    };
                    problems.push((
                        Kind::SlowCancel,
                        format!(
                            "{how} after {:.1} s with a {:.1} s statement_timeout",
                            took.as_secs_f64(),
                            timeout.as_secs_f64()
                        ),
                    ));
                }
                Some(outcome)
            }
            Err(RecvTimeoutError::Timeout) => {
                let killed = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
                problems.push((
                    Kind::Hang,
                    format!(
                        "still running {:.0} s after a {:.1} s statement_timeout; backend {pid} {}",
                        (timeout + Duration::from_secs(5)).as_secs_f64(),
                        timeout.as_secs_f64(),
                        if killed { "killed with kill -9" } else { "could NOT be killed (kill -9 failed)" }
                    ),
                ));
                if !killed {
                    if let Some(w) = self.watchdog.as_mut() {
                        let _ = w.simple_query(&format!("SELECT pg_terminate_backend({pid})"));
                    }
                }
                let _ = reply.recv_timeout(Duration::from_secs(30));
                self.session = None;
                self.watchdog = None;
                self.connect();
                // The kill's own log lines are not a crash of the next case.
                std::thread::sleep(Duration::from_millis(200));
                let _ = self.log.read_new();
                return (None, problems);
            }
            Err(RecvTimeoutError::Disconnected) => Some(Outcome::Lost("the session thread ended".into())),
        };
        let lost = matches!(outcome, Some(Outcome::Lost(_)));
        if lost {
            // The postmaster ends the other sessions only after it has reaped the dead one.
            std::thread::sleep(Duration::from_millis(500));
        }
        let watchdog_ok = self.watchdog_alive();
        if !watchdog_ok {
            // Give the postmaster a moment to write why.
            std::thread::sleep(Duration::from_millis(300));
        }
        let log_lines = crash_lines(&self.log.read_new());
        if lost || !watchdog_ok || !log_lines.is_empty() {
            let mut what = Vec::new();
            if let Some(Outcome::Lost(e)) = &outcome {
                what.push(format!("the session was lost ({e})"));
            }
            if !watchdog_ok {
                what.push("the watchdog session was terminated too (the server restarted)".into());
            }
            if !log_lines.is_empty() {
                what.push(format!("server log: {}", log_lines.join(" | ")));
            }
            problems.push((Kind::Crash, what.join("; ")));
            self.session = None;
            self.watchdog = None;
            self.connect();
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.log.read_new();
        }
        (outcome, problems)
    }
}

// =============================================================================== checking outcomes

const DOCUMENTED: &[&str] = &[
    "22023", "22P02", "22003", "22004", "22012", "2201E", "2201F", "54000", "53200", "57014", "42883", "42804",
    "42846", "22P03",
];

/// Whether `function` may end with `state` (beyond the documented list).
fn state_allowed(function: &str, state: &str) -> bool {
    if DOCUMENTED.contains(&state) {
        return true;
    }
    let name = function.split('(').next().unwrap_or(function).trim_start_matches("skycat.");
    match name {
        // They run the caller's query: whatever that query raises is the caller's error.
        "write_parquet" | "crossmatch" | "crossmatch_marked" | "crossmatch_input_rows" => {
            !(state.starts_with("XX") || state.starts_with("38") || state.starts_with("39"))
        }
        "create_stripe_partitions" => {
            ["42P01", "42809", "42703", "42804", "55000", "42622", "42P07", "42P16", "54011"].contains(&state)
        }
        // Scale-out: 55000 without Citus, and the table checks.
        "distribute_sky_table" | "build_margin" | "crossmatch_distributed" => {
            ["55000", "42P01", "42809", "42703", "42804", "42P07", "42622", "23503"].contains(&state)
        }
        "skycat_files_validator" => state.starts_with("HV") || ["42501", "42P01"].contains(&state),
        _ => false,
    }
}

fn short(s: &str, n: usize) -> String {
    let s: String = s.chars().take(n).collect();
    s.replace('\n', " ")
}

/// Vincenty's great-circle separation in arcseconds; ra is wrapped first (exactly, as
/// fmod is), so ra = 1e308 means 1e308 mod 360 as the extension documents.
fn sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, ra2) = (ra1.rem_euclid(360.0), ra2.rem_euclid(360.0));
    let (l1, p1, l2, p2) = (ra1.to_radians(), dec1.to_radians(), ra2.to_radians(), dec2.to_radians());
    let dl = l2 - l1;
    let (sp1, cp1) = p1.sin_cos();
    let (sp2, cp2) = p2.sin_cos();
    let (sdl, cdl) = dl.sin_cos();
    let num = ((cp2 * sdl).powi(2) + (cp1 * sp2 - sp1 * cp2 * cdl).powi(2)).sqrt();
    num.atan2(sp1 * sp2 + cp1 * cp2 * cdl).to_degrees() * 3600.0
}

fn col<'a>(t: &'a Table, row: &'a [Val], name: &str) -> Option<&'a Val> {
    t.columns.iter().position(|c| c == name).map(|i| &row[i])
}

fn fcol(t: &Table, row: &[Val], name: &str) -> Option<f64> {
    match col(t, row, name) {
        Some(Val::F(x)) => Some(*x),
        _ => None,
    }
}

fn icol(t: &Table, row: &[Val], name: &str) -> Option<i64> {
    match col(t, row, name) {
        Some(Val::I(x)) => Some(*x),
        _ => None,
    }
}

/// Functions whose NaN output for finite input is documented.
fn nan_documented(function: &str) -> bool {
    function.starts_with("skycat.sky_to_pixel(")
}

/// The generic checks: finite floats (unless an input was not), non-negative ids and
/// errors, and the per-function invariants of the documentation.
fn check_generic(case: &Case, t: &Table) -> Result<(), String> {
    let name = case.function.split('(').next().unwrap_or("").trim_start_matches("skycat.");
    let nonfinite_ok = case.nonfinite_input || nan_documented(&case.function);
    // Ids from the caller's rows, and rings (-1 is the south cap, documented).
    let signed_ints = ["crossmatch", "crossmatch_marked", "crossmatch_chunk", "skymap_tract_region"].contains(&name);
    for row in &t.rows {
        for (i, v) in row.iter().enumerate() {
            let cname = &t.columns[i];
            match v {
                Val::F(x) if !x.is_finite() && !nonfinite_ok => {
                    return Err(format!("column {cname} is {x:?} for finite inputs"));
                }
                Val::FA(a) if !nonfinite_ok && a.iter().flatten().any(|x| !x.is_finite()) => {
                    return Err(format!("column {cname} holds a non-finite value for finite inputs: {a:?}"));
                }
                Val::I(x) if *x < 0 && !signed_ints => return Err(format!("column {cname} is negative: {x}")),
                Val::IA(a) if !signed_ints => {
                    if let Some(x) = a.iter().flatten().find(|x| **x < 0) {
                        return Err(format!("column {cname} holds a negative id {x}"));
                    }
                    if a.iter().any(|x| x.is_none()) {
                        return Err(format!("column {cname} holds NULL elements"));
                    }
                    let v: Vec<i64> = a.iter().flatten().copied().collect();
                    if v.windows(2).any(|w| w[0] >= w[1]) {
                        let at = v.windows(2).position(|w| w[0] >= w[1]).unwrap();
                        return Err(format!(
                            "column {cname} is not strictly ascending ({} then {} at {at}, {} elements)",
                            v[at],
                            v[at + 1],
                            v.len()
                        ));
                    }
                }
                Val::F(x)
                    if (cname.ends_with("_err") || cname.ends_with("_err_arcsec") || name.ends_with("_err"))
                        && *x < 0.0 =>
                {
                    return Err(format!("column {cname} (an error) is negative: {x:?}"));
                }
                _ => {}
            }
        }
        let first = row.first();
        match (name, first) {
            ("sep_arcsec", Some(Val::F(x))) if !(0.0..=648000.0).contains(x) && x.is_finite() => {
                return Err(format!("separation {x:?} outside [0, 648000]"));
            }
            ("position_angle", Some(Val::F(x))) if x.is_finite() && !(0.0..360.0).contains(x) => {
                return Err(format!("position angle {x:?} outside [0, 360)"));
            }
            ("healpix_cell", Some(Val::I(x))) | ("sky_key", Some(Val::I(x))) if *x >= 12 << 58 => {
                return Err(format!("HEALPix index {x} beyond 12 * 4^29"));
            }
            ("h3_cell", Some(Val::I(x))) if (x >> 59) & 0xf != 1 => {
                return Err(format!("{x:#x} is not an H3 cell index (mode bits {})", (x >> 59) & 0xf));
            }
            _ => {}
        }
        if name == "pixel_to_sky" || name == "mean_position" {
            if let (Some(ra), Some(dec)) = (fcol(t, row, "ra"), fcol(t, row, "dec")) {
                let both_nan = ra.is_nan() && dec.is_nan();
                let both_finite = ra.is_finite() && dec.is_finite();
                if !(both_nan || both_finite || case.nonfinite_input) {
                    return Err(format!("({ra:?}, {dec:?}) for finite inputs"));
                }
                if ra.is_finite() && dec.is_finite() && !((0.0..360.0).contains(&ra) && (-90.0..=90.0).contains(&dec)) {
                    return Err(format!("sky position ({ra:?}, {dec:?}) out of range"));
                }
                if ra.is_nan() != dec.is_nan() {
                    return Err(format!("half-NaN sky position ({ra:?}, {dec:?})"));
                }
            }
        }
        if name == "stripe_bounds" {
            if let (Some(lo), Some(hi)) = (fcol(t, row, "dec_min"), fcol(t, row, "dec_max")) {
                if !(lo < hi && lo >= -90.0 && hi <= 90.00000000000002) {
                    return Err(format!("stripe bounds [{lo:?}, {hi:?})"));
                }
            }
        }
    }
    check_by_arguments(case, name, t)
}

/// Argument-dependent invariants: stripe and chunk numbers near their closed forms.
fn check_by_arguments(case: &Case, name: &str, t: &Table) -> Result<(), String> {
    let nums: Vec<Option<f64>> = literal_numbers(&case.sql);
    let value = t.rows.first().and_then(|r| r.first());
    match (name, value, nums.as_slice()) {
        ("stripe", Some(Val::I(s)), [Some(dec), Some(h)]) if dec.is_finite() && h.is_finite() && *h > 0.0 => {
            let expect = ((dec + 90.0) / h).floor();
            let top = (180.0 / h).ceil() - 1.0;
            let expect = expect.min(top);
            if (*s as f64 - expect).abs() > 1.0 {
                return Err(format!("stripe {s}, but floor((dec + 90) / height) = {expect:?}"));
            }
        }
        ("chunk_id", Some(Val::I(c)), [Some(_ra), Some(dec), rest @ ..]) if dec.is_finite() => {
            let ns = rest.first().copied().flatten().unwrap_or(340.0);
            if ns >= 1.0 {
                let stripe = ((dec + 90.0) * ns / 180.0).floor().min(ns - 1.0);
                let lo = (stripe - 1.0).max(0.0) * 2.0 * ns;
                let hi = (stripe + 2.0) * 2.0 * ns;
                if !((*c as f64) >= lo && (*c as f64) < hi) {
                    return Err(format!("chunk_id {c} is outside [{lo:?}, {hi:?}) for stripe ~{stripe:?} of {ns:?}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The numeric literals `'...'::float8` / `'...'::int4` of a simple call, in order, as the
/// arguments of a generated case (None for NULL and anything else).
fn literal_numbers(sql: &str) -> Vec<Option<f64>> {
    let Some(open) = sql.find('(') else { return Vec::new() };
    let Some(close) = sql.rfind(')') else { return Vec::new() };
    if close < open {
        return Vec::new();
    }
    sql[open + 1..close]
        .split(", ")
        .map(|a| {
            let a = a.trim();
            let body = a.split("::").next().unwrap_or("").trim_matches('\'');
            match body {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                b => b.parse::<f64>().ok(),
            }
        })
        .collect()
}

fn check_aggregate(case: &Case, rows: &[Vec<Option<f64>>], t: &Table) -> Result<(), String> {
    let name = case.function.split('(').next().unwrap_or("").trim_start_matches("skycat.");
    let [row] = t.rows.as_slice() else {
        return Err(format!("an aggregate returned {} rows", t.rows.len()));
    };
    let used: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| match (r.first().copied().flatten(), r.get(1).copied().flatten()) {
            (Some(f), Some(e)) if f.is_finite() && e.is_finite() && e > 0.0 => Some((f, e)),
            _ => None,
        })
        .collect();
    match name {
        "lc_stats" | "flux_mean" => {
            for (i, v) in row.iter().enumerate() {
                if let Val::F(x) = v {
                    if !x.is_finite() {
                        return Err(format!("field {} is {x:?} (documented: NULL, never NaN)", t.columns[i]));
                    }
                }
            }
            let n = icol(t, row, "n").unwrap_or(-1);
            if n != used.len() as i64 {
                return Err(format!("n = {n}, but {} rows have a finite flux and an error > 0", used.len()));
            }
            let (lo, hi) =
                used.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (f, _)| (a.min(*f), b.max(*f)));
            let tol = 1e-9 * lo.abs().max(hi.abs()).max(1e-300);
            if let Some(m) = fcol(t, row, "mean") {
                if used.is_empty() {
                    return Err(format!("mean {m:?} of no rows"));
                }
                if m < lo - tol || m > hi + tol {
                    return Err(format!("mean {m:?} outside [{lo:?}, {hi:?}] of the fluxes"));
                }
            }
            if name == "lc_stats" {
                if let (Some(mn), Some(mx)) = (fcol(t, row, "min"), fcol(t, row, "max")) {
                    if mn != lo || mx != hi {
                        return Err(format!("min/max {mn:?}/{mx:?}, but the fluxes span [{lo:?}, {hi:?}]"));
                    }
                }
                let qs: Vec<(String, f64)> = ["min", "p05", "p25", "p50", "p75", "p95", "max"]
                    .iter()
                    .filter_map(|c| fcol(t, row, c).map(|v| (c.to_string(), v)))
                    .collect();
                if qs.windows(2).any(|w| w[0].1 > w[1].1 + tol) {
                    return Err(format!("quantiles not ordered: {qs:?}"));
                }
                for c in ["sigma", "mad", "chi2", "err_mean", "mean_err"] {
                    if let Some(x) = fcol(t, row, c) {
                        if x < 0.0 {
                            return Err(format!("{c} = {x:?} < 0"));
                        }
                    }
                }
                let constant = !used.is_empty() && used.iter().all(|(f, _)| *f == used[0].0);
                if constant {
                    for c in ["sigma", "mad", "skew"] {
                        if let Some(x) = fcol(t, row, c) {
                            if x != 0.0 {
                                return Err(format!("{c} = {x:?} for a constant flux (must be 0 or NULL)"));
                            }
                        }
                    }
                }
            }
        }
        "mean_position" => {}
        _ => {}
    }
    check_generic(case, t)
}

fn check_crossmatch(case: &Case, xm: &XmCase, t: &Table) -> Result<(), String> {
    let mut seen_left: BTreeMap<i64, usize> = BTreeMap::new();
    let mut seen_right: BTreeMap<i64, usize> = BTreeMap::new();
    let left_ids: BTreeSet<i64> = xm.left.iter().filter_map(|r| r.id).collect();
    let right_ids: BTreeSet<i64> = xm.right.iter().filter_map(|r| r.id).collect();
    for row in &t.rows {
        let (Some(l), Some(r)) = (icol(t, row, "left_id"), icol(t, row, "right_id")) else {
            return Err(format!("a NULL id in {row:?}"));
        };
        let sep = fcol(t, row, "sep_arcsec").unwrap_or(f64::NAN);
        if !(sep.is_finite() && sep >= 0.0) {
            return Err(format!("pair ({l}, {r}) has sep_arcsec {sep:?}"));
        }
        if let Some(radius) = xm.radius.filter(|r| r.is_finite()) {
            if sep > radius * (1.0 + 1e-9) + 1e-7 {
                return Err(format!("pair ({l}, {r}) at {sep:?} arcsec is outside the radius {radius:?}"));
            }
        }
        if let Some(rank) = icol(t, row, "rank") {
            if rank < 1 {
                return Err(format!("pair ({l}, {r}) has rank {rank}"));
            }
        }
        if xm.structured && (!left_ids.contains(&l) || !right_ids.contains(&r)) {
            return Err(format!("pair ({l}, {r}) names an id that is not in the input"));
        }
        let chosen = !xm.marked || matches!(col(t, row, "chosen"), Some(Val::B(true)));
        if chosen {
            *seen_left.entry(l).or_default() += 1;
            *seen_right.entry(r).or_default() += 1;
        }
    }
    let one_to_one = matches!(xm.mode.as_deref(), Some("greedy" | "optimal"));
    let one_per_left = one_to_one || xm.mode.as_deref() == Some("nearest");
    let unique = |rows: &[XmRow]| {
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.id).collect();
        ids.len() == rows.len() && ids.iter().collect::<BTreeSet<_>>().len() == ids.len()
    };
    if one_per_left && unique(&xm.left) {
        if let Some((l, k)) = seen_left.iter().find(|(_, k)| **k > 1) {
            return Err(format!("mode {:?} chose left id {l} {k} times", xm.mode));
        }
    }
    if one_to_one && unique(&xm.right) {
        if let Some((r, k)) = seen_right.iter().find(|(_, k)| **k > 1) {
            return Err(format!("mode {:?} chose right id {r} {k} times", xm.mode));
        }
    }
    // With valid inputs, mode 'all' must return exactly the pairs within the radius.
    let valid = |rows: &[XmRow]| {
        rows.iter().all(|r| {
            r.ra.is_some_and(f64::is_finite) && r.dec.is_some_and(|d| (-90.0..=90.0).contains(&d)) && r.id.is_some()
        })
    };
    if xm.structured
        && xm.mode.as_deref() == Some("all")
        && !xm.marked
        && valid(&xm.left)
        && valid(&xm.right)
        && unique(&xm.left)
        && unique(&xm.right)
    {
        if let Some(radius) = xm.radius.filter(|r| r.is_finite() && *r > 0.0) {
            let got: BTreeMap<(i64, i64), f64> = t
                .rows
                .iter()
                .filter_map(|row| {
                    Some(((icol(t, row, "left_id")?, icol(t, row, "right_id")?), fcol(t, row, "sep_arcsec")?))
                })
                .collect();
            for l in &xm.left {
                for r in &xm.right {
                    let s = sep_arcsec(l.ra.unwrap(), l.dec.unwrap(), r.ra.unwrap(), r.dec.unwrap());
                    let key = (l.id.unwrap(), r.id.unwrap());
                    match got.get(&key) {
                        None if s < radius * (1.0 - 1e-9) - 1e-7 => {
                            return Err(format!("pair {key:?} at {s:?} arcsec (radius {radius:?}) is missing"));
                        }
                        Some(g) if (g - s).abs() > 1e-6 + 1e-9 * s => {
                            return Err(format!("pair {key:?}: sep_arcsec {g:?}, but it is {s:?}"));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    check_generic(case, t)
}

/// Every failure of one case's outcome.
fn check(case: &Case, outcome: &Outcome) -> Option<(Kind, String)> {
    match outcome {
        Outcome::Lost(_) => None, // reported as a crash by the harness
        Outcome::Error { state, message } => {
            if state.starts_with("XX") {
                Some((Kind::InternalError, format!("{state}: {}", short(message, 300))))
            } else if !state_allowed(&case.function, state) {
                Some((Kind::BadSqlstate, format!("{state}: {}", short(message, 300))))
            } else {
                None
            }
        }
        Outcome::Rows(t) => {
            let r = match &case.expect {
                Expect::Generic => check_generic(case, t),
                Expect::TextRoundTrip => {
                    t.rows.iter().find(|r| matches!(r.get(1), Some(Val::B(false)))).map_or(Ok(()), |r| {
                        let text = if let Val::T(s) = &r[0] { s.as_str() } else { "?" };
                        Err(format!("its text form does not read back as the same value: {text}"))
                    })
                }
                Expect::NullOrZero => match t.rows.first().and_then(|r| r.first()) {
                    Some(Val::Null) | None => Ok(()),
                    Some(Val::F(x)) if *x == 0.0 => Ok(()),
                    Some(v) => Err(format!("{v:?}, expected NULL or 0")),
                },
                Expect::Aggregate(rows) => check_aggregate(case, rows, t),
                Expect::Crossmatch(xm) => check_crossmatch(case, xm, t),
                Expect::InputRows(n) => match t.rows.first().and_then(|r| r.first()) {
                    Some(Val::I(k)) if *k == *n as i64 => Ok(()),
                    other => Err(format!("{other:?} rows, but the query returns {n}")),
                },
            };
            r.err().map(|e| (Kind::WrongValue, e))
        }
    }
}

// =============================================================================== the run

/// A scratch directory the server's OS user can write, with a read-only corner.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skycat-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("existing_dir")).unwrap();
    std::fs::create_dir_all(dir.join("ro")).unwrap();
    let as_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if as_root {
        let ok = std::process::Command::new("chown")
            .args(["postgres", &dir.display().to_string(), &dir.join("existing_dir").display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown the scratch directory to postgres");
    }
    dir
}

/// Sends signals to the call session's backend during a `pg_sleep` and checks the harness
/// reports what it should.
fn self_test(h: &mut Harness) {
    let signal = |pid: i32, sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
        assert!(ok, "self-test: kill {sig} {pid} failed (run as root or as the server's OS user)");
    };
    let case = |sql: &str| Case {
        function: "self-test".into(),
        sql: sql.into(),
        nonfinite_input: false,
        expect: Expect::Generic,
        regression: false,
    };
    type Scenario = (&'static str, &'static [(u64, &'static str)], Kind);
    let scenarios: [Scenario; 3] = [
        ("SELECT pg_sleep(3)", &[(300, "-STOP")], Kind::Hang),
        ("SELECT pg_sleep(3)", &[(300, "-STOP"), (3500, "-CONT")], Kind::SlowCancel),
        ("SELECT pg_sleep(3)", &[(300, "-SEGV")], Kind::Crash),
    ];
    for (sql, signals, want) in scenarios {
        let pid = h.session_pid();
        let plan: Vec<(u64, String)> = signals.iter().map(|(ms, s)| (*ms, s.to_string())).collect();
        let sender = std::thread::spawn(move || {
            let start = Instant::now();
            for (ms, sig) in plan {
                std::thread::sleep(Duration::from_millis(ms).saturating_sub(start.elapsed()));
                signal(pid, &sig);
            }
        });
        let (_, problems) = h.run(&case(sql));
        let _ = sender.join();
        eprintln!("self-test {want:?}: {problems:?}");
        assert!(
            problems.iter().any(|(k, _)| *k == want),
            "self-test: signals {signals:?} during {sql} should be reported as {want:?}, got {problems:?}"
        );
    }
}

fn normalise(detail: &str) -> String {
    let mut out = String::new();
    let mut last_digit = false;
    for c in detail.chars().take(160) {
        if c.is_ascii_digit() || (last_digit && (c == '.' || c == 'e' || c == '-')) {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
        } else {
            last_digit = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn fuzz_every_skycat_function() {
    let settings = Settings::from_env();
    let seed = settings.seed;
    eprintln!(
        "skycat SQL fuzz: seed {seed} (SKYCAT_FUZZ_SEED={seed} reproduces the calls), budget {} s, statement_timeout {} ms, server log {}",
        settings.budget.as_secs(),
        settings.timeout.as_millis(),
        settings.server_log.as_ref().map_or("not watched".into(), |p| p.display().to_string())
    );
    let started = Instant::now();
    let db = ScratchDb::new("fuzz");
    let dsn = db.dsn();
    let dir = scratch_dir();
    let scratch = Scratch { dir: dir.clone() };
    {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        c.batch_execute(
            "CREATE EXTENSION IF NOT EXISTS skycat;
             CREATE TABLE fz_part (id bigint, ra float8, \"dec\" float8) PARTITION BY RANGE (\"dec\");
             CREATE TABLE fz_part_2 (id bigint, ra float8, \"dec\" float8) PARTITION BY RANGE (\"dec\");
             CREATE TABLE fz_plain (id bigint, ra float8, \"dec\" float8);
             INSERT INTO fz_plain VALUES (1, 10, 10), (2, 'NaN', 0), (3, 0, 'Infinity'), (NULL, 1, 1);
             CREATE TABLE fz_text_part (t text) PARTITION BY RANGE (t);",
        )
        .expect("set up the scratch database");
    }
    let (funcs, skipped) = {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        catalogue(&mut c)
    };
    eprintln!("fuzzing {} functions; left out {}:", funcs.len(), skipped.len());
    for s in &skipped {
        eprintln!("  - {s}");
    }
    assert!(
        funcs.iter().any(|f| f.name == "sep_arcsec") && funcs.iter().any(|f| f.aggregate),
        "the catalogue lacks sep_arcsec or the aggregates: is skycat installed? {funcs:?}"
    );

    let log = LogTail::new(settings.server_log.clone());
    let mut h = Harness { dsn: dsn.clone(), settings, session: None, watchdog: None, log, canary: None };
    h.connect();
    let mut failures: Vec<Failure> = Vec::new();
    if let Err(e) = h.check_canary() {
        failures.push(Failure {
            function: "skycat.photo_calib (canary)".into(),
            kind: Kind::WrongValue,
            detail: e,
            sql: CANARY.into(),
            regression: true,
            call: 0,
        });
    }

    // SKYCAT_FUZZ_TRACE=<file>: every call in order, to replay a session in psql.
    let mut trace = std::env::var_os("SKYCAT_FUZZ_TRACE")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(&p).expect("create the SKYCAT_FUZZ_TRACE file")));
    let mut calls = 0usize;
    // The calls since the last good canary, for a SessionState failure.
    let mut window: Vec<(usize, String)> = Vec::new();
    let mut stats: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut bad_calls: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |h: &mut Harness, case: &Case, failures: &mut Vec<Failure>, bad: &mut BTreeMap<String, usize>| {
        calls += 1;
        if let Some(t) = trace.as_mut() {
            use std::io::Write as _;
            let _ = writeln!(t, "{};", case.sql);
        }
        window.push((calls, case.sql.clone()));
        let (outcome, problems) = h.run(case);
        if outcome.is_none() || problems.iter().any(|(k, _)| *k == Kind::Crash) {
            window.clear(); // a new session
        }
        let mut all = problems;
        if let Some(o) = &outcome {
            all.extend(check(case, o));
        }
        let label = match &outcome {
            None => "killed".to_string(),
            Some(Outcome::Rows(t)) => format!("{} rows", if t.rows.is_empty() { "no" } else { "some" }),
            Some(Outcome::Error { state, .. }) => state.clone(),
            Some(Outcome::Lost(_)) => "lost".to_string(),
        };
        *stats.entry(case.function.clone()).or_default().entry(label).or_default() += 1;
        for (kind, detail) in all {
            if matches!(kind, Kind::Crash | Kind::Hang | Kind::SlowCancel) {
                *bad.entry(case.function.clone()).or_default() += 1;
            }
            failures.push(Failure {
                function: case.function.clone(),
                kind,
                detail,
                sql: case.sql.clone(),
                regression: case.regression,
                call: calls,
            });
        }
        if calls.is_multiple_of(CANARY_EVERY) {
            if let Err(diff) = h.check_canary() {
                let (first, last) = (window.first().map_or(0, |w| w.0), window.last().map_or(0, |w| w.0));
                let replay: Vec<String> = window.iter().map(|(_, sql)| format!("{sql};")).collect();
                failures.push(Failure {
                    function: "(session)".into(),
                    kind: Kind::SessionState,
                    detail: format!(
                        "after calls {first}..{last} of one session, the canary query answers differently: {diff}"
                    ),
                    sql: format!("-- replay in one session, then run the canary:\n{}\n{CANARY}", replay.join("\n")),
                    regression: false,
                    call: calls,
                });
            }
            window.clear();
        }
    };

    // 0. On request, prove the detectors work: a backend stopped with SIGSTOP must be found
    // hanging (and killed), one stopped for 3 s must be a slow cancellation, one killed with
    // SIGSEGV must be a crash. (It crashes the server twice: keep it to private clusters.)
    if std::env::var("SKYCAT_FUZZ_SELF_TEST").is_ok_and(|v| v == "1") {
        self_test(&mut h);
    }
    // 1. The regression calls, every time.
    for case in regression_cases(&scratch) {
        record(&mut h, &case, &mut failures, &mut bad_calls);
    }
    // 2. Random calls, round-robin over the functions, until the budget is spent.
    let budget = h.settings.budget;
    let mut n: u64 = 0;
    let mut quarantined: BTreeSet<String> = BTreeSet::new();
    while started.elapsed() < budget {
        let f = &funcs[(n % funcs.len() as u64) as usize];
        let mut rng = Rng::for_case(seed, n);
        n += 1;
        let case = function_case(f, &mut rng, &scratch);
        // A function that keeps crashing or hanging would eat the budget (each costs a
        // server restart): after 3 its calls are still generated (so the sequence stays the
        // same for the seed) but not run.
        if bad_calls.get(&f.signature).copied().unwrap_or(0) >= 3 {
            quarantined.insert(f.signature.clone());
            continue;
        }
        record(&mut h, &case, &mut failures, &mut bad_calls);
    }
    drop(h);
    let elapsed = started.elapsed();

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n===== skycat SQL fuzz: seed {seed}, {n} random cases + regressions in {:.0} s =====",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "outcomes per function:");
    for (f, s) in &stats {
        let parts: Vec<String> = s.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "  {f}: {}", parts.join(", "));
    }
    if !quarantined.is_empty() {
        let _ = writeln!(out, "no longer called after 3 crashes/hangs: {quarantined:?}");
    }
    let mut groups: BTreeMap<(String, Kind, String), Vec<&Failure>> = BTreeMap::new();
    for f in &failures {
        groups.entry((f.function.clone(), f.kind, normalise(&f.detail))).or_default().push(f);
    }
    let _ = writeln!(out, "\n{} failures in {} distinct groups:", failures.len(), groups.len());
    for ((function, kind, _), list) in &groups {
        let mut list = list.clone();
        list.sort_by_key(|f| (!f.regression, f.sql.len()));
        let _ = writeln!(
            out,
            "\n--- {function}: {} ({} calls){}",
            kind.label(),
            list.len(),
            if list[0].regression { " [regression list]" } else { "" }
        );
        let _ = writeln!(out, "    {}", list[0].detail);
        for f in list.iter().take(3) {
            let _ = writeln!(out, "    {};", f.sql);
        }
    }
    eprintln!("{out}");
    // Every failing SQL, for pasting, also in a file.
    let all_path = std::env::temp_dir().join(format!("skycat-fuzz-failures-{seed}.txt"));
    let mut all = String::new();
    for f in &failures {
        let _ = writeln!(
            all,
            "-- call {} | {} | {} | {}\n{};\n",
            f.call,
            f.function,
            f.kind.label(),
            f.detail.replace('\n', " "),
            f.sql
        );
    }
    let _ = std::fs::write(&all_path, all);
    let _ = std::fs::remove_dir_all(&dir);
    drop(db);
    assert!(
        n >= funcs.len() as u64 || budget < Duration::from_secs(10),
        "only {n} random cases ran: the harness is too slow"
    );
    assert!(
        failures.is_empty(),
        "{} failures in {} groups (seed {seed}); every failing call is in {}",
        failures.len(),
        groups.len(),
        all_path.display()
    );
}
