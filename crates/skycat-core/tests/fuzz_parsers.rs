//! Parser fuzzing: the inputs a user (or a pipeline's file) hands to skycat's parsers, mutated.
//!
//! - `wcs` text: [`Wcs::from_json`] on valid TAN / TAN-SIP headers with keywords added,
//!   removed and set to odd values (NaN and infinities as strings, 1e308, 1e400, subnormals,
//!   zero determinants, SIP orders up to 15, non-numbers), and the binary form
//!   ([`Wcs::decode`]) of valid values with bytes flipped or cut off.
//! - `photo_calib` text: [`PhotoCalib::from_json`] and [`PhotoCalib::constant`] the same way,
//!   including `calibrationErr` NaN / null / negative and odd Chebyshev shapes.
//! - Parquet and Arrow IPC files: a small valid file written here, then bytes flipped,
//!   overwritten, inserted and cut off, and read through [`CatalogFile`] exactly as the
//!   `skycat_files` wrapper does (open, statistics, pruning, every batch of every column).
//!
//! Every case runs on its own thread with a one-second deadline. It fails on a panic that
//! escapes (a backend ERROR at best), on an overrun (an endless loop), and on an `Ok` whose
//! value is not finite and self-consistent: a parsed `wcs` / `photo_calib` must come back
//! bit for bit through `to_json` -> `from_json` and `encode` -> `decode` (that is a dump and
//! restore, and every stored row), and a batch read from a file must be a valid Arrow array.
//!
//! The inputs fuzzing has found are also checked every run (`known_bad_inputs_stay_fixed`).
//!
//! Reproducing a failure: the report gives the seed of the run and proptest's minimal failing
//! input (a JSON text to paste, or the list of byte mutations applied to the fixed base file;
//! the mutated file is also saved under `$TMPDIR/skycat-fuzz-parsers/`, and
//! `SKYCAT_FUZZ_REPLAY=<that file>` re-reads it). Re-run with
//! `SKYCAT_FUZZ_SEED=<seed> cargo test -p skycat-core --release --test fuzz_parsers`. If the
//! process aborts (an allocation failure cannot be caught), the file being read is
//! `$TMPDIR/skycat-fuzz-parsers/*-in-flight.*` (the path is printed to stderr at the start).
//! `SKYCAT_FUZZ_CASES=<n>` sets the cases of every property and `SKYCAT_FUZZ_CASES_SCALE=<x>`
//! multiplies the defaults (which run in a few seconds).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use skycat_core::files::arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use skycat_core::files::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema, SchemaRef, TimeUnit};
use skycat_core::files::arrow::ipc::writer::FileWriter as IpcFileWriter;
use skycat_core::files::prune::{CompareOp, Condition, Scalar};
use skycat_core::files::reader::{CatalogFile, FileFormat};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::FilesError;
use skycat_core::photometry::{PhotoCalib, MAX_CHEBYSHEV_ORDER};
use skycat_core::wcs::{Poly, Wcs, MAX_SIP_ORDER};

// ------------------------------------------------------------------------------ harness

/// The longest one case may take.
const DEADLINE: Duration = Duration::from_secs(1);
const CASE_THREAD: &str = "fuzz-case";

/// The seed of this run: `SKYCAT_FUZZ_SEED`, or else a fresh one (printed with every failure).
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("SKYCAT_FUZZ_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SKYCAT_FUZZ_SEED={s:?} is not an unsigned integer")),
        Err(_) => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    })
}

fn runner(cases: u32) -> TestRunner {
    let scale: f64 = std::env::var("SKYCAT_FUZZ_CASES_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let cases = match std::env::var("SKYCAT_FUZZ_CASES").ok().and_then(|s| s.parse::<u32>().ok()) {
        Some(n) => n,
        None => ((cases as f64) * scale).max(1.0) as u32,
    };
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed()),
        // Failures are reported with the seed and the minimal input; nothing is written into
        // the source tree.
        failure_persistence: None,
        max_shrink_iters: 400,
        max_shrink_time: 30_000,
        ..Config::default()
    })
}

thread_local! {
    /// The message and location of the last panic on this (case) thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics on case threads are recorded (to be reported with the case) instead of printed:
/// the file readers catch the decoders' panics themselves, and those are not failures.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(CASE_THREAD) {
                let msg = info
                    .payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic payload)");
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f` on its own thread within [`DEADLINE`]; a panic escaping `f` or an overrun
/// becomes an error naming what happened.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    install_quiet_panic_hook();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(CASE_THREAD.into())
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f))
                .map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "unknown panic".into()));
            let _ = tx.send(r);
        })
        .expect("spawn a case thread");
    match rx.recv_timeout(DEADLINE) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(RecvTimeoutError::Timeout) => match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(_) => Err(format!("took more than {DEADLINE:?} (but returned within 10 s more)")),
            Err(_) => Err(format!("did not return within {DEADLINE:?} + 10 s (an endless loop?)")),
        },
        Err(RecvTimeoutError::Disconnected) => Err("the case thread died".into()),
    }
}

/// What one case did, counted so a run proves it exercised both the accept and reject paths.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    rejected: AtomicUsize,
}

impl Tally {
    fn count(&self, accepted: bool) {
        if accepted { &self.ok } else { &self.rejected }.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> (usize, usize) {
        (self.ok.load(Ordering::Relaxed), self.rejected.load(Ordering::Relaxed))
    }
}

/// Runs `check` on `strategy`'s cases; panics with the seed and proptest's minimal failing
/// input on the first property violation, and checks both outcomes occurred often enough.
fn fuzz<S>(name: &str, cases: u32, strategy: S, min_ok_share: f64, check: impl Fn(S::Value) -> Result<bool, String>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let tally = Tally::default();
    let mut runner = runner(cases);
    let result = runner.run(&strategy, |input| {
        let accepted = check(input).map_err(TestCaseError::fail)?;
        tally.count(accepted);
        Ok(())
    });
    if let Err(e) = result {
        let what = match e {
            TestError::Fail(reason, input) => format!("{reason}\nminimal failing input: {input:#?}"),
            TestError::Abort(reason) => format!("aborted: {reason}"),
        };
        panic!("{name}: {what}\n(seed {}: reproduce with SKYCAT_FUZZ_SEED={})", seed(), seed());
    }
    let (ok, rejected) = tally.get();
    eprintln!("{name}: {ok} accepted, {rejected} rejected (seed {})", seed());
    let total = (ok + rejected).max(1) as f64;
    assert!(
        ok as f64 >= min_ok_share * total && rejected > 0,
        "{name}: the generator is degenerate ({ok} accepted, {rejected} rejected; want >= {:.0}% accepted and some \
         rejected): fix the strategy (seed {})",
        min_ok_share * 100.0,
        seed()
    );
}

// ------------------------------------------------------------------------------ JSON values

/// A finite f64 of any magnitude, as Rust prints it (a valid JSON number, round-trip exact).
fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO, -1e4..1e4f64, -1.0..1.0f64,]
}

/// Raw JSON text of an odd value where a number is expected.
const ODD_VALUES: &[&str] = &[
    "\"NaN\"",
    "\"nan\"",
    "\"-NaN\"",
    "\"inf\"",
    "\"Infinity\"",
    "\"-Infinity\"",
    "\"1e309\"",
    "\"-1e309\"",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e400",
    "-1e400",
    "0",
    "-0",
    "-0.0",
    "5e-324",
    "-5e-324",
    "2.2250738585072014e-308",
    "1e-320",
    "null",
    "true",
    "\"\"",
    "\" \"",
    "\" 12.5 \"",
    "\"0x10\"",
    "\"1_000\"",
    "[]",
    "[1]",
    "{}",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.30000000000000004",
    "\"\\u0000\"",
];

/// Raw JSON text for a numeric keyword: mostly a plausible number (as a number or as a
/// string, as FITS-to-JSON converters write them), sometimes an odd value.
fn json_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => finite_f64().prop_map(|x| format!("{x:?}")),
        1 => finite_f64().prop_map(|x| format!("\"{x:?}\"")),
        3 => prop::sample::select(ODD_VALUES).prop_map(str::to_string),
    ]
}

fn json_object(pairs: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{}:{v}", serde_json::Value::from(k.as_str()));
    }
    s.push('}');
    s
}

/// What is done to a keyword map before it is serialised.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets keyword `key` (index into the keyword pool) to a raw JSON value.
    Set(usize, String),
    /// Removes keyword `key`.
    Remove(usize),
    /// Sets `<poly>_ORDER` to `order` and fills every coefficient up to that order.
    SipOrder(usize, String, f64),
}

fn apply(base: &[(&str, String)], pool: &[String], edits: &[Edit]) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let set = |m: &mut Vec<(String, String)>, k: String, v: String| match m.iter_mut().find(|(kk, _)| *kk == k) {
        Some(slot) => slot.1 = v,
        None => m.push((k, v)),
    };
    for e in edits {
        match e {
            Edit::Set(k, v) => set(&mut m, pool[k % pool.len()].clone(), v.clone()),
            Edit::Remove(k) => {
                let k = &pool[k % pool.len()];
                m.retain(|(kk, _)| kk != k);
            }
            Edit::SipOrder(p, order, scale) => {
                let name = ["A", "B", "AP", "BP"][p % 4];
                set(&mut m, format!("{name}_ORDER"), order.clone());
                let n: usize = order
                    .trim_matches('"')
                    .parse::<f64>()
                    .ok()
                    .filter(|o| (0.0..=15.0).contains(o))
                    .map_or(0, |o| o as usize);
                for i in 0..=n {
                    for j in 0..=(n - i) {
                        let c = scale / 10f64.powi(4 * (i + j) as i32) * if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
                        set(&mut m, format!("{name}_{i}_{j}"), format!("{c:?}"));
                    }
                }
            }
        }
    }
    m
}

/// A serialised text, sometimes cut short or with a stray character (the JSON layer).
fn damaged(text: String, damage: Option<(usize, char)>) -> String {
    match damage {
        None => text,
        Some((at, c)) => {
            let at = at % (text.len() + 1);
            let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            if c == '\0' {
                text[..at].to_string()
            } else {
                format!("{}{c}{}", &text[..at], &text[at..])
            }
        }
    }
}

fn damage() -> impl Strategy<Value = Option<(usize, char)>> {
    prop_oneof![
        12 => Just(None),
        1 => (any::<usize>(), prop::sample::select(vec!['\0', '"', ',', '}', '{', '[', 'x', '\u{fffd}', '9', '-']))
            .prop_map(Some),
    ]
}

// ------------------------------------------------------------------------------ wcs

fn wcs_keyword_pool() -> Vec<String> {
    let mut pool: Vec<String> = [
        "CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1",
        "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CROTA2", "LONPOLE", "CUNIT1", "CUNIT2", "A_ORDER", "B_ORDER",
        "AP_ORDER", "BP_ORDER", "NAXIS", "DATE-OBS", "RADESYS", "EQUINOX",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for name in ["A", "B", "AP", "BP"] {
        for p in 0..4 {
            for q in 0..4 - p {
                pool.push(format!("{name}_{p}_{q}"));
            }
        }
    }
    pool
}

/// Valid headers the edits start from: TAN with CD, TAN with CDELT + PC, TAN with CROTA2, and
/// TAN-SIP of order 3 with an inverse.
fn wcs_bases() -> Vec<Vec<(&'static str, String)>> {
    let s = |v: &str| v.to_string();
    let tan = vec![
        ("CTYPE1", s("\"RA---TAN\"")),
        ("CTYPE2", s("\"DEC--TAN\"")),
        ("CRPIX1", s("2048.5")),
        ("CRPIX2", s("2048.5")),
        ("CRVAL1", s("150.1")),
        ("CRVAL2", s("2.2")),
        ("CD1_1", s("-5.5e-5")),
        ("CD1_2", s("1.0e-6")),
        ("CD2_1", s("1.0e-6")),
        ("CD2_2", s("5.5e-5")),
    ];
    let mut cdelt: Vec<(&str, String)> = tan[..6].to_vec();
    cdelt.extend([
        ("CDELT1", s("-5.5e-5")),
        ("CDELT2", s("5.5e-5")),
        ("PC1_1", s("0.866")),
        ("PC1_2", s("-0.5")),
        ("PC2_1", s("0.5")),
        ("PC2_2", s("0.866")),
        ("CUNIT1", s("\"deg\"")),
        ("CUNIT2", s("\"deg\"")),
    ]);
    let mut crota: Vec<(&str, String)> = tan[..6].to_vec();
    crota.extend([
        ("CDELT1", s("\"-5.5e-5\"")),
        ("CDELT2", s("\"5.5e-5\"")),
        ("CROTA2", s("30")),
        ("LONPOLE", s("180")),
    ]);
    let mut sip = tan.clone();
    sip[0].1 = s("\"RA---TAN-SIP\"");
    sip[1].1 = s("\"DEC--TAN-SIP\"");
    sip.extend([
        ("A_ORDER", s("3")),
        ("A_2_0", s("1.2e-6")),
        ("A_0_2", s("-3e-7")),
        ("A_1_1", s("4e-7")),
        ("A_3_0", s("2e-11")),
        ("B_ORDER", s("3")),
        ("B_2_0", s("-2e-7")),
        ("B_0_2", s("1.5e-6")),
        ("B_0_3", s("-1e-11")),
        ("AP_ORDER", s("3")),
        ("AP_2_0", s("-1.2e-6")),
        ("AP_0_2", s("3e-7")),
        ("BP_ORDER", s("3")),
        ("BP_0_2", s("-1.5e-6")),
    ]);
    vec![tan, cdelt, crota, sip]
}

fn wcs_edit() -> impl Strategy<Value = Edit> {
    let odd_ctype = prop::sample::select(vec![
        "\"RA---TAN\"",
        "\"DEC--TAN\"",
        "\"RA---TAN-SIP\"",
        "\"DEC--TAN-SIP\"",
        "\"RA---SIN\"",
        "\" RA---TAN \"",
        "\"deg\"",
        "\"arcsec\"",
        "\"\"",
        "1",
    ])
    .prop_map(str::to_string);
    let order = prop_oneof![
        (0u32..=15).prop_map(|o| o.to_string()),
        (0u32..=15).prop_map(|o| format!("\"{o}\"")),
        prop::sample::select(vec!["-1", "2.5", "1e18", "\"NaN\"", "1e308", "9.000000000000002", "-0"])
            .prop_map(str::to_string),
    ];
    let scale = prop_oneof![Just(1e-6), Just(0.0), Just(1.0), Just(1e300), finite_f64()];
    prop_oneof![
        5 => (any::<usize>(), json_number_text()).prop_map(|(k, v)| Edit::Set(k, v)),
        1 => (any::<usize>(), odd_ctype).prop_map(|(k, v)| Edit::Set(k, v)),
        2 => any::<usize>().prop_map(Edit::Remove),
        2 => (any::<usize>(), order, scale).prop_map(|(p, o, s)| Edit::SipOrder(p, o, s)),
    ]
}

fn wcs_text() -> impl Strategy<Value = String> {
    (0usize..4, prop::collection::vec(wcs_edit(), 0..5), damage()).prop_map(|(b, edits, dmg)| {
        let base = &wcs_bases()[b];
        damaged(json_object(&apply(base, &wcs_keyword_pool(), &edits)), dmg)
    })
}

/// Whether two binary forms hold the same numbers: equal as f64 (so -0 = 0, which no
/// computation can tell apart here) or both NaN.
fn same_numbers(a: &[u8], b: &[u8]) -> bool {
    let f = |x: &[u8]| x.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0xff; 8]))).collect::<Vec<_>>();
    a.len() == b.len() && f(a).iter().zip(f(b)).all(|(x, y)| *x == y || (x.is_nan() && y.is_nan()))
}

fn poly_ok(name: &str, p: &Poly) -> Result<(), String> {
    if p.order > MAX_SIP_ORDER || p.c.len() != (p.order + 1) * (p.order + 1) || p.c.iter().any(|c| !c.is_finite()) {
        return Err(format!("{name}: order {} with {} coefficients {:?}", p.order, p.c.len(), p.c));
    }
    Ok(())
}

/// The invariants of an accepted `wcs`: finite parameters, an invertible CD matrix, SIP blocks
/// of an accepted order, exact round trips, and sky positions in range (or NaN, NaN).
fn check_wcs_value(w: &Wcs) -> Result<(), String> {
    let nums =
        [w.crpix[0], w.crpix[1], w.crval[0], w.crval[1], w.cd[0][0], w.cd[0][1], w.cd[1][0], w.cd[1][1], w.lonpole];
    if nums.iter().any(|x| !x.is_finite()) || !(-90.0..=90.0).contains(&w.crval[1]) {
        return Err(format!("accepted non-finite or out-of-range parameters: {w:?}"));
    }
    let det = w.cd[0][0] * w.cd[1][1] - w.cd[0][1] * w.cd[1][0];
    if !det.is_finite() || det == 0.0 {
        return Err(format!("accepted a singular CD matrix (det {det:e}): {w:?}"));
    }
    for (name, p) in [("A", w.sip.as_ref().map(|s| &s.0)), ("B", w.sip.as_ref().map(|s| &s.1))]
        .into_iter()
        .chain([("AP", w.sip_inv.as_ref().map(|s| &s.0)), ("BP", w.sip_inv.as_ref().map(|s| &s.1))])
    {
        if let Some(p) = p {
            poly_ok(name, p).map_err(|e| format!("accepted a bad SIP block {e}"))?;
        }
    }
    let json = w.to_json();
    let again = Wcs::from_json(&json).map_err(|e| format!("to_json output is refused by from_json ({e}): {json}"))?;
    if again != *w || !same_numbers(&again.encode(), &w.encode()) {
        return Err(format!(
            "to_json -> from_json changed the value\n  before {w:?}\n  after  {again:?}\n  to_json {json}"
        ));
    }
    if again.to_json() != json {
        return Err(format!("to_json is not stable: {json} then {}", again.to_json()));
    }
    match Wcs::decode(&w.encode()) {
        Some(d) if d == *w && same_numbers(&d.encode(), &w.encode()) => {}
        other => return Err(format!("encode -> decode changed the value\n  before {w:?}\n  after  {other:?}")),
    }
    let pixels = [
        (w.crpix[0] - 1.0, w.crpix[1] - 1.0),
        (0.0, 0.0),
        (4095.0, 4095.0),
        (-500.0, 4500.0),
        (w.crpix[0] - 1.0 + 1e4, w.crpix[1] - 1.0 - 1e4),
    ];
    for (x, y) in pixels {
        let (ra, dec) = w.pixel_to_sky(x, y);
        let both_nan = ra.is_nan() && dec.is_nan();
        let in_range = (0.0..360.0).contains(&ra) && (-90.0..=90.0).contains(&dec);
        if !(both_nan || in_range) {
            return Err(format!("pixel_to_sky({x}, {y}) = ({ra}, {dec}): neither (NaN, NaN) nor in range; {w:?}"));
        }
        let (px, py) = w.sky_to_pixel(ra, dec);
        if px.is_infinite() || py.is_infinite() {
            return Err(format!("sky_to_pixel({ra}, {dec}) = ({px}, {py}) is infinite; {w:?}"));
        }
        let _ = w.pixel_to_sky_cov(x, y, 0.1, 0.2, 0.0);
    }
    Ok(())
}

#[test]
fn wcs_text_mutations_never_panic_and_round_trip() {
    fuzz("wcs from_json", 10000, wcs_text(), 0.2, |text| {
        let t = text.clone();
        match bounded(move || Wcs::from_json(&t).map(|w| (check_wcs_value(&w), w)))? {
            Err(e) if e.keyword.is_empty() || e.to_string().trim().is_empty() => {
                Err(format!("an error without a keyword or message: {e:?}"))
            }
            Err(_) => Ok(false),
            Ok((Ok(()), _)) => Ok(true),
            Ok((Err(problem), _)) => Err(format!("from_json accepted {text}\n  but: {problem}")),
        }
    });
}

#[derive(Debug, Clone)]
enum ByteEdit {
    /// Flips bit `bit` of byte `at` (positions are taken modulo the length).
    Flip { at: usize, bit: u8 },
    /// Overwrites the 8 bytes of f64 slot `at` with `value`.
    SetF64 { at: usize, value: f64 },
    /// Cuts the bytes to `at` (modulo length + 1).
    Truncate { at: usize },
    /// Appends bytes.
    Append(Vec<u8>),
}

fn f64_slot_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(2.5),
        Just(10.0),
        Just(1e18),
        Just(1e300),
        Just(4294967296.0),
        (0u32..40).prop_map(f64::from),
        finite_f64(),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::Flip { at, bit }),
        4 => (any::<usize>(), f64_slot_value()).prop_map(|(at, value)| ByteEdit::SetF64 { at, value }),
        1 => any::<usize>().prop_map(|at| ByteEdit::Truncate { at }),
        1 => prop::collection::vec(any::<u8>(), 1..24).prop_map(ByteEdit::Append),
    ]
}

fn edit_bytes(mut b: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        match e {
            ByteEdit::Flip { at, bit } if !b.is_empty() => {
                let n = b.len();
                b[at % n] ^= 1 << bit;
            }
            ByteEdit::SetF64 { at, value } if b.len() >= 8 => {
                let slot = at % (b.len() / 8);
                b[slot * 8..slot * 8 + 8].copy_from_slice(&value.to_le_bytes());
            }
            ByteEdit::Truncate { at } => b.truncate(at % (b.len() + 1)),
            ByteEdit::Append(extra) => b.extend_from_slice(extra),
            _ => {}
        }
    }
    b
}

/// Every per-row operation of a (possibly invalid) decoded `wcs`: none may panic or hang.
fn exercise_wcs(w: &Wcs) {
    let _ = (w.to_json(), w.encode());
    for (x, y) in [(0.0, 0.0), (4095.0, 4095.0), (w.crpix[0] - 1.0, w.crpix[1] - 1.0), (f64::NAN, 1.0)] {
        let (ra, dec) = w.pixel_to_sky(x, y);
        let _ = w.sky_to_pixel(ra, dec);
        let _ = w.sky_to_pixel(w.crval[0], w.crval[1]);
        let _ = w.pixel_to_sky_cov(x, y, 0.1, 0.2, 0.01);
    }
}

/// The binary form as stored in a row, with bytes flipped, overwritten or cut off: decoding
/// must not panic or hang, and neither may any per-row operation on what it returns. (The
/// types have no binary input function, so such bytes cannot come from a client; a decoded
/// value that is not valid is therefore only counted, not a failure.)
#[test]
fn wcs_binary_form_mutations_never_panic() {
    let bases: Vec<Vec<u8>> = wcs_bases()
        .iter()
        .map(|b| {
            let pairs: Vec<(String, String)> = b.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            Wcs::from_json(&json_object(&pairs)).expect("base headers are valid").encode()
        })
        .collect();
    let invalid = Arc::new(AtomicUsize::new(0));
    let strategy = (0..bases.len(), prop::collection::vec(byte_edit(), 0..4));
    fuzz("wcs decode", 5000, strategy, 0.05, |(b, edits)| {
        let bytes = edit_bytes(bases[b].clone(), &edits);
        let invalid = invalid.clone();
        bounded(move || match Wcs::decode(&bytes) {
            None => false,
            Some(w) => {
                if check_wcs_value(&w).is_err() {
                    invalid.fetch_add(1, Ordering::Relaxed);
                }
                exercise_wcs(&w);
                true
            }
        })
        .map_err(|e| format!("decoding or using a decoded value {e}"))
    });
    eprintln!(
        "wcs decode: {} decoded values were not valid wcs values (not a failure)",
        invalid.load(Ordering::Relaxed)
    );
}

// ------------------------------------------------------------------------------ photo_calib

fn coefficients_text() -> impl Strategy<Value = String> {
    let row = |n: usize| prop::collection::vec(json_number_text(), n..=n);
    prop_oneof![
        // Rectangular, mostly plausible: a positive constant term and small others.
        4 => (1usize..5, 1usize..5, prop::collection::vec(-0.1..0.1f64, 25), 0.5..2.0f64).prop_map(|(nx, ny, c, c0)| {
            let rows: Vec<String> = (0..ny)
                .map(|j| {
                    let r: Vec<String> = (0..nx)
                        .map(|i| if i == 0 && j == 0 { format!("{c0:?}") } else { format!("{:?}", c[j * 5 + i]) })
                        .collect();
                    format!("[{}]", r.join(","))
                })
                .collect();
            format!("[{}]", rows.join(","))
        }),
        // Any numbers, odd ones included.
        2 => (1usize..4).prop_flat_map(move |nx| prop::collection::vec(row(nx), 1..4)).prop_map(|rows| {
            let rows: Vec<String> = rows.iter().map(|r| format!("[{}]", r.join(","))).collect();
            format!("[{}]", rows.join(","))
        }),
        // Odd shapes: ragged, empty, too large, not arrays.
        1 => prop::sample::select(vec![
            "[]".to_string(),
            "[[]]".to_string(),
            "[[1],[1,2]]".to_string(),
            "[1,2]".to_string(),
            "[[1,2],3]".to_string(),
            "{}".to_string(),
            "\"[[1]]\"".to_string(),
            "null".to_string(),
            format!("[[{}]]", vec!["1"; MAX_CHEBYSHEV_ORDER + 2].join(",")),
            format!("[{}]", vec!["[1]"; MAX_CHEBYSHEV_ORDER + 2].join(",")),
            format!("[[{}]]", vec!["0.01"; MAX_CHEBYSHEV_ORDER + 1].join(",")),
            format!("[{}]", ["[1e308]"; 3].join(",")),
            "[[1,-1],[-1,1]]".to_string(),
            "[[0.5,-2]]".to_string(),
        ]),
    ]
}

fn bbox_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("[0,0,4095,4175]".to_string()),
        2 => prop::collection::vec(any::<i32>(), 4).prop_map(|v| format!("{v:?}")),
        2 => prop::sample::select(vec![
            "[0,0,0,0]",
            "[10,10,0,0]",
            "[-2147483648,-2147483648,2147483647,2147483647]",
            "[0,0,4095]",
            "[0,0,4095,4175,1]",
            "[0,0,\"x\",4095,4175]",
            "[0.5,0,4095,4175]",
            "[0,0,4095,2147483648]",
            "[0,0,1e3,4175]",
            "null",
            "{}",
            "\"0,0,1,1\"",
        ])
        .prop_map(str::to_string),
    ]
}

fn photo_calib_text() -> impl Strategy<Value = String> {
    let value = |s: BoxedStrategy<String>| prop_oneof![1 => Just(None), 4 => s.prop_map(Some)];
    let mean = prop_oneof![3 => (1e-3..1e3f64).prop_map(|m| format!("{m:?}")), 2 => json_number_text()].boxed();
    let err = prop_oneof![2 => (0.0..1.0f64).prop_map(|e| format!("{e:?}")), 3 => json_number_text()].boxed();
    let field = prop_oneof![1 => Just(None), 1 => (coefficients_text(), prop::option::of(bbox_text())).prop_map(Some)];
    (value(mean), value(err), field, prop::collection::vec(("[a-zA-Z]{1,12}", json_number_text()), 0..2), damage())
        .prop_map(|(mean, err, field, extra, dmg)| {
            let mut pairs = Vec::new();
            if let Some(m) = mean {
                pairs.push(("calibrationMean".to_string(), m));
            }
            if let Some(e) = err {
                pairs.push(("calibrationErr".to_string(), e));
            }
            if let Some((c, b)) = field {
                pairs.push(("coefficients".to_string(), c));
                if let Some(b) = b {
                    pairs.push(("bbox".to_string(), b));
                }
            }
            pairs.extend(extra);
            damaged(json_object(&pairs), dmg)
        })
}

/// The invariants of an accepted `photo_calib`: a finite mean > 0, an error that is finite
/// and >= 0, a finite field of an accepted shape that is positive over its box, and exact
/// round trips through the text and binary forms.
fn check_photo_calib_value(p: &PhotoCalib) -> Result<(), String> {
    if !(p.mean.is_finite() && p.mean > 0.0) {
        return Err(format!("accepted calibrationMean {}", p.mean));
    }
    if !(p.err.is_finite() && p.err >= 0.0) {
        // NaN has no JSON text: only an exact round trip below could excuse it.
        let json = p.to_json();
        let back = PhotoCalib::from_json(&json);
        if !back.as_ref().is_ok_and(|b| same_numbers(&b.encode(), &p.encode())) {
            return Err(format!(
                "accepted calibrationErr {} which does not survive to_json -> from_json: {json} reads back as {back:?}",
                p.err
            ));
        }
    }
    if let Some(f) = &p.field {
        if f.nx == 0
            || f.ny == 0
            || f.nx > MAX_CHEBYSHEV_ORDER + 1
            || f.ny > MAX_CHEBYSHEV_ORDER + 1
            || f.coefficients.len() != f.nx * f.ny
            || f.coefficients.iter().any(|c| !c.is_finite())
            || f.bbox[0] > f.bbox[2]
            || f.bbox[1] > f.bbox[3]
        {
            return Err(format!("accepted a malformed field {f:?}"));
        }
        let [x0, y0, x1, y1] = f.bbox.map(f64::from);
        let (xm, ym) = (0.5 * (x0 + x1), 0.5 * (y0 + y1));
        for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1), (xm, ym), (x0, ym), (xm, y1)] {
            let c = p.at(x, y);
            if !(c.is_finite() && c > 0.0) {
                return Err(format!(
                    "accepted a field whose calibration at pixel ({x}, {y}) inside its box is {c} (not finite and > 0)"
                ));
            }
        }
    }
    let json = p.to_json();
    let again =
        PhotoCalib::from_json(&json).map_err(|e| format!("to_json output is refused by from_json ({e}): {json}"))?;
    if !same_numbers(&again.encode(), &p.encode()) {
        return Err(format!(
            "to_json -> from_json changed the value\n  before {p:?}\n  after  {again:?}\n  to_json {json}"
        ));
    }
    match PhotoCalib::decode(&p.encode()) {
        Some(d) if same_numbers(&d.encode(), &p.encode()) => {}
        other => return Err(format!("encode -> decode changed the value\n  before {p:?}\n  after  {other:?}")),
    }
    let _ = p.at(-1e9, 1e9);
    Ok(())
}

#[test]
fn photo_calib_text_mutations_never_panic_and_round_trip() {
    fuzz("photo_calib from_json", 10000, photo_calib_text(), 0.15, |text| {
        let t = text.clone();
        match bounded(move || PhotoCalib::from_json(&t).map(|p| (check_photo_calib_value(&p), p)))? {
            Err(e) if e.trim().is_empty() => Err("an empty error message".into()),
            Err(_) => Ok(false),
            Ok((Ok(()), _)) => Ok(true),
            Ok((Err(problem), _)) => Err(format!("from_json accepted {text}\n  but: {problem}")),
        }
    });
}

/// `skycat.photo_calib(calib_mean, calib_err)`: the constructor SQL calls.
#[test]
fn photo_calib_constant_accepts_only_what_round_trips() {
    let special = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(5e-324),
        Just(1e308),
        Just(-1.0),
        finite_f64(),
        (1e-3..1e3f64),
    ];
    let strategy = (special.clone(), special);
    fuzz("photo_calib constant", 5000, strategy, 0.1, |(mean, err)| {
        match bounded(move || PhotoCalib::constant(mean, err).map(|p| (check_photo_calib_value(&p), p)))? {
            Err(_) => Ok(false),
            Ok((Ok(()), _)) => Ok(true),
            Ok((Err(problem), _)) => {
                Err(format!("PhotoCalib::constant({mean:?}, {err:?}) was accepted but: {problem}"))
            }
        }
    });
}

/// As [`wcs_binary_form_mutations_never_panic`], for `photo_calib`.
#[test]
fn photo_calib_binary_form_mutations_never_panic() {
    let bases: Vec<Vec<u8>> = [
        r#"{"calibrationMean": 0.5, "calibrationErr": 0.01}"#,
        r#"{"calibrationMean": 1.5, "calibrationErr": 0, "bbox": [0, 0, 4095, 4175],
            "coefficients": [[1.5, 0.01, -0.002], [0.003, 0.001, 0.0]]}"#,
    ]
    .iter()
    .map(|t| PhotoCalib::from_json(t).expect("base calibrations are valid").encode())
    .collect();
    let invalid = Arc::new(AtomicUsize::new(0));
    let strategy = (0..bases.len(), prop::collection::vec(byte_edit(), 0..4));
    fuzz("photo_calib decode", 5000, strategy, 0.05, |(b, edits)| {
        let bytes = edit_bytes(bases[b].clone(), &edits);
        let invalid = invalid.clone();
        bounded(move || match PhotoCalib::decode(&bytes) {
            None => false,
            Some(p) => {
                if check_photo_calib_value(&p).is_err() {
                    invalid.fetch_add(1, Ordering::Relaxed);
                }
                let _ = (p.to_json(), p.encode(), p.at(0.0, 0.0), p.at(-1e9, f64::NAN));
                true
            }
        })
        .map_err(|e| format!("decoding or using a decoded value {e}"))
    });
    eprintln!(
        "photo_calib decode: {} decoded values were not valid photo_calib values (not a failure)",
        invalid.load(Ordering::Relaxed)
    );
}

// ------------------------------------------------------------------------------ files

fn base_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("psf_flux", DataType::Float64, true),
        Field::new("band", DataType::Utf8, true),
        Field::new("filter", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        Field::new("flags", DataType::Boolean, true),
        Field::new("mjd", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("fluxes", DataType::new_list(DataType::Float64, true), true),
    ]))
}

fn filter_values() -> ArrayRef {
    static VALUES: std::sync::OnceLock<ArrayRef> = std::sync::OnceLock::new();
    VALUES.get_or_init(|| Arc::new(StringArray::from(vec!["HSC-G", "HSC-R", "HSC-I"]))).clone()
}

fn base_batch(schema: &SchemaRef, start: i64, n: i64) -> RecordBatch {
    let ids = start..start + n;
    let flux = Float64Array::from_iter(ids.clone().map(|i| match i % 11 {
        0 => None,
        5 => Some(f64::NAN),
        _ => Some(i as f64 * 1.25 - 30.0),
    }));
    let band = StringArray::from_iter(
        ids.clone().map(|i| (i % 13 != 0).then(|| ["u", "g", "r", "i", "z", "y"][i as usize % 6])),
    );
    // One dictionary shared by every batch (an Arrow IPC file allows no replacement).
    let filter = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from_iter_values(ids.clone().map(|i| (i % 3) as i32)),
        filter_values(),
    )
    .expect("a valid dictionary");
    let flags = BooleanArray::from_iter(ids.clone().map(|i| (i % 7 != 0).then_some(i % 2 == 0)));
    let mjd =
        TimestampMicrosecondArray::from_iter(ids.clone().map(|i| (i % 9 != 0).then_some(1_700_000_000_000_000 + i)));
    let fluxes = ListArray::from_iter_primitive::<Float64Type, _, _>(
        ids.clone().map(|i| (i % 5 != 0).then(|| (0..(i % 4)).map(|k| Some(k as f64 + 0.5)).collect::<Vec<_>>())),
    );
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids)),
        Arc::new(flux),
        Arc::new(band),
        Arc::new(filter),
        Arc::new(flags),
        Arc::new(mjd),
        Arc::new(fluxes),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("a valid base batch")
}

fn base_parquet(dir: &Path) -> Vec<u8> {
    let schema = base_schema();
    let path = dir.join("base.parquet");
    let mut w = ParquetFileWriter::create(&path, schema.clone(), 40).expect("create the base file");
    w.write(&base_batch(&schema, 0, 70)).unwrap();
    w.write(&base_batch(&schema, 70, 50)).unwrap();
    assert_eq!(w.finish().unwrap(), 120);
    std::fs::read(&path).unwrap()
}

fn base_ipc(dir: &Path) -> Vec<u8> {
    let schema = base_schema();
    let path = dir.join("base.arrow");
    let mut w = IpcFileWriter::try_new(std::fs::File::create(&path).unwrap(), &schema).unwrap();
    w.write(&base_batch(&schema, 0, 70)).unwrap();
    w.write(&base_batch(&schema, 70, 50)).unwrap();
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// One change to a file's bytes. Positions are taken modulo the length, and `from_end`
/// variants count from the end (where both formats keep their footer).
#[derive(Debug, Clone)]
enum FileEdit {
    Flip {
        at: usize,
        bit: u8,
    },
    FlipNearEnd {
        from_end: u16,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Writes a little-endian i32 (lengths, offsets, counts) at `at`.
    SetI32 {
        at: usize,
        value: i32,
    },
    SetI32NearEnd {
        from_end: u16,
        value: i32,
    },
    /// Writes a little-endian i64 (the Arrow IPC footer's block offsets and body lengths).
    SetI64NearEnd {
        from_end: u16,
        value: i64,
    },
    Fill {
        at: usize,
        len: u16,
        byte: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
}

fn file_edit() -> impl Strategy<Value = FileEdit> {
    let i32_value = prop_oneof![
        Just(0),
        Just(-1),
        Just(1),
        Just(i32::MAX),
        Just(i32::MIN),
        Just(0x7fff_fff0),
        Just(1 << 20),
        Just(1 << 28),
        any::<i32>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| FileEdit::Flip { at, bit }),
        3 => (0u16..600, 0u8..8).prop_map(|(from_end, bit)| FileEdit::FlipNearEnd { from_end, bit }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| FileEdit::Set { at, byte }),
        2 => (any::<usize>(), i32_value.clone()).prop_map(|(at, value)| FileEdit::SetI32 { at, value }),
        2 => (0u16..600, i32_value).prop_map(|(from_end, value)| FileEdit::SetI32NearEnd { from_end, value }),
        1 => (0u16..600, prop::sample::select(vec![-1i64, i64::MAX, i64::MIN, 1 << 33, 1 << 40, 1 << 62]))
            .prop_map(|(from_end, value)| FileEdit::SetI64NearEnd { from_end, value }),
        1 => (any::<usize>(), 1u16..64, prop::sample::select(vec![0u8, 0xff, 0x7f, 0x80]))
            .prop_map(|(at, len, byte)| FileEdit::Fill { at, len, byte }),
        1 => any::<usize>().prop_map(|at| FileEdit::Truncate { at }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| FileEdit::Insert { at, bytes }),
    ]
}

fn edit_file(mut b: Vec<u8>, edits: &[FileEdit]) -> Vec<u8> {
    let put = |b: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        for (k, x) in bytes.iter().enumerate() {
            if let Some(slot) = b.get_mut(at + k) {
                *slot = *x;
            }
        }
    };
    for e in edits {
        let n = b.len();
        if n == 0 {
            break;
        }
        let near_end = |from_end: u16| n - 1 - (from_end as usize % n);
        match e {
            FileEdit::Flip { at, bit } => b[at % n] ^= 1 << bit,
            FileEdit::FlipNearEnd { from_end, bit } => b[near_end(*from_end)] ^= 1 << bit,
            FileEdit::Set { at, byte } => b[at % n] = *byte,
            FileEdit::SetI32 { at, value } => put(&mut b, at % n, &value.to_le_bytes()),
            FileEdit::SetI32NearEnd { from_end, value } => put(&mut b, near_end(*from_end), &value.to_le_bytes()),
            FileEdit::SetI64NearEnd { from_end, value } => put(&mut b, near_end(*from_end), &value.to_le_bytes()),
            FileEdit::Fill { at, len, byte } => put(&mut b, at % n, &vec![*byte; *len as usize]),
            FileEdit::Truncate { at } => b.truncate(at % n),
            FileEdit::Insert { at, bytes } => {
                let at = at % (n + 1);
                b.splice(at..at, bytes.iter().copied());
            }
        }
    }
    b
}

/// The pushed-down conditions the wrapper would build for a column of this type.
fn conditions_for(column: usize, t: &DataType) -> Vec<(usize, Condition)> {
    let plain = match t {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    let mut c = vec![(column, Condition::IsNotNull)];
    match plain {
        DataType::Int64 | DataType::Int32 => {
            c.push((column, Condition::Compare(CompareOp::Ge, Scalar::Int(10))));
            c.push((column, Condition::In(vec![Scalar::Int(3), Scalar::Int(100)])));
        }
        DataType::Float64 => c.push((column, Condition::Compare(CompareOp::Lt, Scalar::Float(0.5)))),
        DataType::Utf8 => c.push((column, Condition::In(vec![Scalar::Str("g".into()), Scalar::Str("HSC-R".into())]))),
        DataType::Boolean => c.push((column, Condition::Compare(CompareOp::Eq, Scalar::Bool(true)))),
        DataType::Timestamp(_, _) => {
            c.push((column, Condition::Compare(CompareOp::Le, Scalar::Timestamp(1_700_000_000_000_050))))
        }
        _ => c.push((column, Condition::IsNull)),
    }
    c
}

/// A defect of the reader itself (not of the file): what the extension could not survive.
struct ReaderDefect(String);

/// Reads a file the way `skycat_files` does: open (footer, schema), row-group counts and
/// estimates, statistics of every column, pruning, then every batch of every column in a
/// non-ascending projection. Returns the rows read, or the reader's error; a batch that is
/// not a valid Arrow array is a [`ReaderDefect`] (the wrapper reads values unchecked).
fn read_like_the_wrapper(path: &Path, format: FileFormat) -> Result<Result<usize, FilesError>, ReaderDefect> {
    let f = match CatalogFile::open(path, format) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let n_columns = f.schema().fields().len();
    let n_groups = f.num_row_groups();
    if let Some(rows) = f.row_group_rows() {
        if rows.len() != n_groups {
            return Err(ReaderDefect(format!("row_group_rows has {} entries for {n_groups} row groups", rows.len())));
        }
    }
    let _ = f.rows_estimate();
    let mut conditions = Vec::new();
    for c in 0..n_columns {
        let stats = f.column_stats(c);
        if stats.len() != n_groups {
            return Err(ReaderDefect(format!(
                "column_stats({c}) has {} entries for {n_groups} row groups",
                stats.len()
            )));
        }
        conditions.extend(conditions_for(c, f.schema().field(c).data_type()));
    }
    let kept = f.kept_row_groups(&conditions);
    if kept.iter().any(|&g| g >= n_groups) {
        return Err(ReaderDefect(format!("kept_row_groups returned {kept:?} for {n_groups} row groups")));
    }
    let projection: Vec<usize> = (0..n_columns).rev().collect();
    let mut reader = match f.read(&projection, (0..n_groups).collect(), 64) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let mut rows = 0;
    loop {
        match reader.next_batch() {
            Ok(None) => return Ok(Ok(rows)),
            Err(e) => return Ok(Err(e)),
            Ok(Some(batch)) => {
                if batch.num_columns() != projection.len() {
                    return Err(ReaderDefect(format!(
                        "a batch has {} columns for a projection of {}",
                        batch.num_columns(),
                        projection.len()
                    )));
                }
                for (k, column) in batch.columns().iter().enumerate() {
                    if let Err(e) = column.to_data().validate_full() {
                        return Err(ReaderDefect(format!(
                            "batch column {k} ({}) is not a valid Arrow array: {e}",
                            column.data_type()
                        )));
                    }
                }
                rows += batch.num_rows();
            }
        }
    }
}

fn failure_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("skycat-fuzz-parsers");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn failure_file(name: &str, suffix: &str, bytes: &[u8]) -> PathBuf {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = failure_dir().join(format!("{}-{hash:016x}.{suffix}", name.replace(' ', "-")));
    let _ = std::fs::write(&path, bytes);
    path
}

fn fuzz_file_format(name: &str, format: FileFormat, suffix: &str, base: Vec<u8>, cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(base);
    // The unmodified file reads completely: the harness itself works.
    let clean = dir.path().join(format!("clean.{suffix}"));
    std::fs::write(&clean, base.as_slice()).unwrap();
    match read_like_the_wrapper(&clean, format) {
        Ok(Ok(120)) => {}
        Ok(other) => panic!("{name}: the unmodified base file reads as {other:?}"),
        Err(ReaderDefect(d)) => panic!("{name}: the unmodified base file: {d}"),
    }
    let counter = AtomicUsize::new(0);
    let in_flight = failure_dir().join(format!("{}-in-flight.{suffix}", name.replace(' ', "-")));
    // Straight to the process's stderr, past the test harness's capture: an allocation
    // failure aborts the process before any captured output is shown.
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "{name}: if this test process aborts, the file it was reading is {} (re-read it with SKYCAT_FUZZ_REPLAY=<path>)",
            in_flight.display()
        );
    }
    let strategy = prop::collection::vec(file_edit(), 1..5);
    fuzz(name, cases, strategy, 0.02, |edits| {
        let bytes = edit_file(base.as_slice().to_vec(), &edits);
        // A fresh name per case: a case that overran may still be reading its file.
        let path = dir.path().join(format!("case{}.{suffix}", counter.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &bytes).unwrap();
        // If the reader aborts the process (an allocation failure cannot be caught), this
        // file is what it was reading.
        let _ = std::fs::write(&in_flight, &bytes);
        let p = path.clone();
        let outcome = bounded(move || read_like_the_wrapper(&p, format));
        let _ = std::fs::remove_file(&path);
        let failure = match outcome {
            Ok(Ok(Ok(_rows))) => return Ok(true),
            Ok(Ok(Err(e))) => {
                let message = e.to_string();
                if message.contains(&path.display().to_string()) || matches!(e, FilesError::Schema { .. }) {
                    return Ok(false);
                }
                format!("an error that does not name the file: {message}")
            }
            Ok(Err(ReaderDefect(d))) => d,
            Err(e) => e,
        };
        let saved = failure_file(name, suffix, &bytes);
        Err(format!(
            "{failure}\n  (the mutated file is saved as {}; SKYCAT_FUZZ_REPLAY=<that path> re-reads it)",
            saved.display()
        ))
    });
    let _ = std::fs::remove_file(&in_flight);
}

#[test]
fn parquet_file_mutations_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_parquet(dir.path());
    fuzz_file_format("parquet read", FileFormat::Parquet, "parquet", base, 3000);
}

#[test]
fn arrow_ipc_file_mutations_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_ipc(dir.path());
    fuzz_file_format("arrow ipc read", FileFormat::ArrowIpc, "arrow", base, 3000);
}

/// Re-reads one saved file (`SKYCAT_FUZZ_REPLAY=<path>`, the format from its name) and
/// reports what the wrapper's reading does with it and how long it takes; without the
/// variable it does nothing.
#[test]
fn replay_a_saved_file() {
    let Ok(path) = std::env::var("SKYCAT_FUZZ_REPLAY") else { return };
    let format = FileFormat::resolve(&path, None).expect("a .parquet or .arrow file name");
    let start = std::time::Instant::now();
    let p = PathBuf::from(&path);
    let outcome = bounded(move || read_like_the_wrapper(&p, format).map_err(|ReaderDefect(d)| d));
    let took = start.elapsed();
    eprintln!("{path}: {outcome:?} in {took:?}");
    assert!(matches!(outcome, Ok(Ok(_))), "{path}: {outcome:?} after {took:?}");
}

/// Inputs the fuzzing found, checked every run with the same properties as the random cases.
#[test]
fn known_bad_inputs_stay_fixed() {
    let mut problems = Vec::new();
    let wcs_texts = [
        // Degrees per pixel near the float8 limit: half-NaN sky positions.
        r#"{"CTYPE1":"RA---TAN","CTYPE2":"DEC--TAN","CRPIX1":2048.5,"CRPIX2":2048.5,"CRVAL1":150.1,"CRVAL2":2.2,"CDELT1":-5.5e-5,"CDELT2":1e308,"PC1_1":0.866,"PC1_2":-0.5,"PC2_1":0.5,"PC2_2":0.866,"CUNIT1":"deg","CUNIT2":"deg"}"#,
        // CROTA2 gives CD elements whose shortest text did not parse back exactly.
        r#"{"CTYPE1":"RA---TAN","CTYPE2":"DEC--TAN","CRPIX1":2048.5,"CRPIX2":2048.5,"CRVAL1":150.1,"CRVAL2":2.2,"CDELT1":"-5.5e-5","CDELT2":"5.5e-5","CROTA2":30,"LONPOLE":180}"#,
        r#"{"CTYPE1":"RA---TAN","CTYPE2":"DEC--TAN","CRPIX1":1,"CRPIX2":1,"CRVAL1":0,"CRVAL2":0,"CD1_1":-0.000027499999999999998,"CD2_2":0.000055}"#,
    ];
    for text in wcs_texts {
        let t = text.to_string();
        match bounded(move || Wcs::from_json(&t).map(|w| check_wcs_value(&w))) {
            Ok(Ok(Err(p))) => problems.push(format!("wcs {text}: {p}")),
            Err(e) => problems.push(format!("wcs {text}: {e}")),
            _ => {}
        }
    }
    let photo_calib_texts = [
        r#"{"calibrationMean": 1, "calibrationErr": "NaN"}"#,
        r#"{"calibrationMean":0.001,"calibrationErr":3.0626444948635845e150}"#,
        r#"{"calibrationMean": 1, "coefficients": [[0.5, -2]], "bbox": [0, 0, 9, 9]}"#,
        r#"{"calibrationMean": 1, "coefficients": [[1, -1], [-1, 1]], "bbox": [0, 0, 4095, 4095]}"#,
    ];
    for text in photo_calib_texts {
        let t = text.to_string();
        match bounded(move || PhotoCalib::from_json(&t).map(|p| check_photo_calib_value(&p))) {
            Ok(Ok(Err(p))) => problems.push(format!("photo_calib {text}: {p}")),
            Err(e) => problems.push(format!("photo_calib {text}: {e}")),
            _ => {}
        }
    }
    for (mean, err) in [(1.0, f64::NAN), (102.11337670783679, -0.0), (933.2294266031013, 0.0)] {
        match bounded(move || PhotoCalib::constant(mean, err).map(|p| check_photo_calib_value(&p))) {
            Ok(Ok(Err(p))) => problems.push(format!("PhotoCalib::constant({mean:?}, {err:?}): {p}")),
            Err(e) => problems.push(format!("PhotoCalib::constant({mean:?}, {err:?}): {e}")),
            _ => {}
        }
    }
    // An Arrow IPC footer whose block claims ~1 GiB: arrow allocated it before reading (0.7 s,
    // 1 GB resident; a larger claim aborts the process, i.e. crashes the backend).
    let dir = tempfile::tempdir().unwrap();
    let hostile = edit_file(
        base_ipc(dir.path()),
        &[
            FileEdit::Flip { at: 14991126276564083122, bit: 6 },
            FileEdit::FlipNearEnd { from_end: 22, bit: 6 },
            FileEdit::Flip { at: 3991151082849097188, bit: 7 },
            FileEdit::Set { at: 1570607301373343780, byte: 104 },
        ],
    );
    let path = dir.path().join("hostile.arrow");
    std::fs::write(&path, &hostile).unwrap();
    let p = path.clone();
    match bounded(move || read_like_the_wrapper(&p, FileFormat::ArrowIpc).map_err(|ReaderDefect(d)| d)) {
        Ok(Ok(_)) => {}
        Ok(Err(d)) => problems.push(format!("hostile Arrow IPC footer: {d}")),
        Err(e) => problems.push(format!("hostile Arrow IPC footer: {e}")),
    }
    // A Parquet dictionary page whose header claims 2,105,925,552 values in 320 bytes (found by
    // this fuzzing): parquet would allocate and zero ~17 GB for it; it must be refused at once.
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hostile/dictionary_page_2e9_values.parquet");
    let start = std::time::Instant::now();
    match bounded(move || read_like_the_wrapper(&p, FileFormat::Parquet).map_err(|ReaderDefect(d)| d)) {
        Ok(Ok(Err(FilesError::Corrupt { message, .. }))) if message.contains("dictionary page") => {}
        other => problems.push(format!("hostile Parquet dictionary page: {other:?} after {:?}", start.elapsed())),
    }
    assert!(problems.is_empty(), "known bad inputs:\n{}", problems.join("\n"));
}
