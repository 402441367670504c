//! Light-curve aggregates (SQL-API.md section 4): `lc_stats`, `flux_mean`, `mean_position`.
//!
//! Hand-written V1 support functions and `CREATE AGGREGATE` statements rather than pgrx's
//! `#[pg_aggregate]`, so that the `internal` state, its serialisation for parallel workers and
//! its memory are under our control:
//!
//! * every state lives in the aggregate's memory context (PostgreSQL frees it with the
//!   group, accounts it to `work_mem`/`hash_mem`, and a cancel or error leaks nothing);
//! * `lc_stats` keeps the used rows (24 bytes each) in one growing palloc'd chunk, up to
//!   `skycat.lc_stats_max_rows` per group (default 10M, 240 MB), beyond which it stops with
//!   SQLSTATE 54000 instead of exhausting memory;
//! * serialisation is the raw array (or the fixed-size state) as `bytea`, and combining two
//!   partial states is appending one to the other, so `PARALLEL SAFE` partial aggregation
//!   gives exactly the serial result.

use std::mem::size_of;

use pgrx::pg_sys::{self, Datum};
use pgrx::{ereport, PgLogLevel, PgSqlErrorCode};
use skycat_core::lightcurve::{self, FluxMeanState, FluxSummary, LcRow, MeanPositionState};

use crate::errors::OrSqlError;
use crate::fastcall::{v1_function, IntoRet};
use crate::gucs::LC_STATS_MAX_ROWS;
use crate::sqltypes::{float8_datum, Row};

/// Argument `i`, None when NULL.
unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<Datum> {
    unsafe {
        let a = &(*fcinfo).args.as_slice((*fcinfo).nargs as usize)[i];
        (!a.isnull).then_some(a.value)
    }
}

unsafe fn float_arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<f64> {
    unsafe { arg(fcinfo, i).map(|d| f64::from_bits(d.value() as u64)) }
}

unsafe fn return_null(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    unsafe { (*fcinfo).isnull = true };
    Datum::from(0usize)
}

/// The aggregate's memory context; an error when called outside an aggregate.
unsafe fn agg_context(fcinfo: pg_sys::FunctionCallInfo, function: &str) -> pg_sys::MemoryContext {
    let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("skycat.{function} called outside an aggregate")
        );
    }
    ctx
}

/// A `bytea` holding `bytes`.
unsafe fn bytea(bytes: &[u8]) -> Datum {
    unsafe {
        let total = pg_sys::VARHDRSZ + bytes.len();
        let v = pg_sys::palloc(total) as *mut pg_sys::varlena;
        pgrx::varlena::set_varsize_4b(v, total as i32);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (v as *mut u8).add(pg_sys::VARHDRSZ), bytes.len());
        Datum::from(v)
    }
}

/// The bytes of a `bytea` argument (detoasted).
unsafe fn bytea_bytes<'a>(d: Datum) -> &'a [u8] {
    unsafe {
        let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, pgrx::varlena::varsize_any_exhdr(v))
    }
}

// ------------------------------------------------------------------ lc_stats

/// The `lc_stats` transition state: a header followed by the used rows, in one palloc'd chunk
/// of the aggregate context (one chunk, so appending a row to a group touches one place in
/// memory; growing it may move it, and the transition function returns the new address).
#[repr(C)]
struct LcState {
    len: usize,
    cap: usize,
}

const LC_HEADER: usize = size_of::<LcState>();

unsafe fn lc_new(ctx: pg_sys::MemoryContext, cap: usize) -> *mut LcState {
    unsafe {
        let st = pg_sys::MemoryContextAllocHuge(ctx, LC_HEADER + cap * size_of::<LcRow>()) as *mut LcState;
        st.write(LcState { len: 0, cap });
        st
    }
}

/// The rows that fit in the power-of-two chunk PostgreSQL's allocator rounds `bytes` up to:
/// growing to exactly that wastes nothing (20 rows in 512 bytes, 42 in 1 kB, ...).
fn rows_fitting(bytes: usize) -> usize {
    (bytes.next_power_of_two() - LC_HEADER) / size_of::<LcRow>()
}

/// Room for the first rows of a group: 20 rows in a 512-byte chunk (LSST light curves have
/// ~17 epochs per band and year; longer ones grow by doubling).
const LC_FIRST_CAP: usize = (512 - LC_HEADER) / size_of::<LcRow>();

unsafe fn lc_rows_ptr(st: *mut LcState) -> *mut LcRow {
    unsafe { (st as *mut u8).add(LC_HEADER) as *mut LcRow }
}

/// The state with room for `extra` more rows: `st` itself, or its moved copy (repalloc keeps
/// the chunk in its memory context).
unsafe fn lc_reserve(st: *mut LcState, extra: usize) -> *mut LcState {
    let (len, cap) = unsafe { ((*st).len, (*st).cap) };
    let need = len + extra;
    let limit = LC_STATS_MAX_ROWS.get().max(2) as usize;
    if need > limit {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("skycat.lc_stats: more than {limit} rows in one group ({} kB of state)", limit * 24 / 1024),
            "lc_stats keeps every row of a group (24 bytes each) for its order statistics; group by object and band, or raise skycat.lc_stats_max_rows (at most 40000000)"
        );
    }
    if need <= cap {
        return st;
    }
    let cap = rows_fitting((LC_HEADER + need * size_of::<LcRow>()).max(2 * (LC_HEADER + cap * size_of::<LcRow>())))
        .min(limit)
        .max(need);
    unsafe {
        let st = pg_sys::repalloc_huge(st.cast(), LC_HEADER + cap * size_of::<LcRow>()) as *mut LcState;
        (*st).cap = cap;
        st
    }
}

unsafe fn lc_rows<'a>(st: *mut LcState) -> &'a mut [LcRow] {
    unsafe { std::slice::from_raw_parts_mut(lc_rows_ptr(st), (*st).len) }
}

v1_function! {
    /// lc_stats_sfunc(state internal, flux float8, flux_err float8, mjd float8) → internal
    fn lc_stats_sfunc(fcinfo) fast {
        // The state exists and has room (or the row is not used): no allocation needed.
        let st = arg(fcinfo, 0)?.cast_mut_ptr::<LcState>();
        if st.is_null() {
            return None;
        }
        if let (Some(f), Some(e)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            if lightcurve::is_used(f, e) {
                if (*st).len == (*st).cap {
                    return None;
                }
                let t = float_arg(fcinfo, 3).unwrap_or(f64::NAN);
                lc_rows_ptr(st).add((*st).len).write([f, e, t]);
                (*st).len += 1;
            }
        }
        Some(Datum::from(st))
    } guarded {
        let mut st = arg(fcinfo, 0).map(|d| d.cast_mut_ptr::<LcState>()).unwrap_or(std::ptr::null_mut());
        if st.is_null() {
            // the first row of a group: the state goes in the aggregate's memory context
            st = lc_new(agg_context(fcinfo, "lc_stats"), LC_FIRST_CAP);
        }
        if let (Some(f), Some(e)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            if lightcurve::is_used(f, e) {
                let t = float_arg(fcinfo, 3).unwrap_or(f64::NAN);
                if (*st).len == (*st).cap {
                    st = lc_reserve(st, 1);
                }
                lc_rows_ptr(st).add((*st).len).write([f, e, t]);
                (*st).len += 1;
            }
        }
        Datum::from(st)
    }
}

v1_function! {
    /// lc_stats_combine(internal, internal) → internal: appends the second state's rows.
    fn lc_stats_combine(fcinfo) {
        let ctx = agg_context(fcinfo, "lc_stats");
        let s1 = arg(fcinfo, 0).map(|d| d.cast_mut_ptr::<LcState>()).unwrap_or(std::ptr::null_mut());
        let s2 = arg(fcinfo, 1).map(|d| d.cast_mut_ptr::<LcState>()).unwrap_or(std::ptr::null_mut());
        if s2.is_null() {
            return if s1.is_null() { return_null(fcinfo) } else { Datum::from(s1) };
        }
        // The result must live in the aggregate context, whatever context s2 came from.
        let s1 = if s1.is_null() { lc_new(ctx, (*s2).len.max(LC_FIRST_CAP)) } else { s1 };
        let add = lc_rows(s2);
        let s1 = lc_reserve(s1, add.len());
        std::ptr::copy_nonoverlapping(add.as_ptr(), lc_rows_ptr(s1).add((*s1).len), add.len());
        (*s1).len += add.len();
        Datum::from(s1)
    }
}

v1_function! {
    /// lc_stats_serial(internal) → bytea: the rows, 24 bytes each.
    fn lc_stats_serial(fcinfo) {
        let st = arg(fcinfo, 0).expect("strict").cast_mut_ptr::<LcState>();
        let rows = lc_rows(st);
        bytea(std::slice::from_raw_parts(rows.as_ptr() as *const u8, std::mem::size_of_val(rows)))
    }
}

v1_function! {
    /// lc_stats_deserial(bytea, internal) → internal, in the current memory context.
    fn lc_stats_deserial(fcinfo) {
        let bytes = bytea_bytes(arg(fcinfo, 0).expect("strict"));
        let n = bytes.len() / size_of::<LcRow>();
        let st = lc_new(pg_sys::CurrentMemoryContext, n.max(1));
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), lc_rows_ptr(st) as *mut u8, n * size_of::<LcRow>());
        (*st).len = n;
        Datum::from(st)
    }
}

v1_function! {
    /// lc_stats_final(internal) → lc_stats (reorders the state's rows: FINALFUNC_MODIFY = READ_WRITE).
    fn lc_stats_final(fcinfo) {
        let st = arg(fcinfo, 0).map(|d| d.cast_mut_ptr::<LcState>()).unwrap_or(std::ptr::null_mut());
        let s = if st.is_null() { lightcurve::lc_stats(&mut []) } else { lightcurve::lc_stats(lc_rows(st)) };
        let mut cols = [None; 19];
        cols[0] = Some(Datum::from(s.n as usize));
        for (k, v) in s.float_fields().into_iter().enumerate() {
            cols[k + 1] = float8_datum(v);
        }
        Row(cols).into_ret(fcinfo)
    }
}

pgrx::extension_sql!(
    "CREATE TYPE lc_stats AS (
        n bigint, mean float8, mean_err float8, sigma float8, chi2 float8, min float8, max float8,
        mad float8, skew float8, p05 float8, p25 float8, p50 float8, p75 float8, p95 float8,
        stetson_j float8, linear_slope float8, linear_intercept float8, max_slope float8, err_mean float8);
     COMMENT ON TYPE lc_stats IS 'Light-curve statistics of LSST''s DiaObject (see docs/aggregates.md).';
     CREATE FUNCTION lc_stats_sfunc(internal, float8, float8, float8) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_stats_sfunc';
     CREATE FUNCTION lc_stats_combine(internal, internal) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_stats_combine';
     CREATE FUNCTION lc_stats_serial(internal) RETURNS bytea
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_stats_serial';
     CREATE FUNCTION lc_stats_deserial(bytea, internal) RETURNS internal
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_stats_deserial';
     CREATE FUNCTION lc_stats_final(internal) RETURNS lc_stats
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_stats_final';
     CREATE AGGREGATE lc_stats(flux float8, flux_err float8, mjd float8) (
       SFUNC = lc_stats_sfunc, STYPE = internal, SSPACE = 600,
       COMBINEFUNC = lc_stats_combine, SERIALFUNC = lc_stats_serial, DESERIALFUNC = lc_stats_deserial,
       FINALFUNC = lc_stats_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
     COMMENT ON AGGREGATE lc_stats(float8, float8, float8) IS
       'LSST DiaObject light-curve statistics of the rows with finite flux and flux_err > 0; one pass, parallel.';",
    name = "lc_stats_aggregate"
);

// ------------------------------------------------------------------ fixed-size states

/// The fixed-size state in argument 0, created zeroed in the aggregate context when NULL.
unsafe fn fixed_state<T: Copy + Default>(fcinfo: pg_sys::FunctionCallInfo, function: &str) -> *mut T {
    unsafe {
        let ctx = agg_context(fcinfo, function);
        match arg(fcinfo, 0) {
            Some(d) => d.cast_mut_ptr::<T>(),
            None => {
                let p = pg_sys::MemoryContextAlloc(ctx, size_of::<T>()) as *mut T;
                p.write(T::default());
                p
            }
        }
    }
}

/// Serialises a fixed-size state as its bytes (leader and workers run the same library).
unsafe fn fixed_serial<T: Copy>(d: Datum) -> Datum {
    unsafe { bytea(std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), size_of::<T>())) }
}

unsafe fn fixed_deserial<T: Copy>(d: Datum) -> Datum {
    unsafe {
        let bytes = bytea_bytes(d);
        assert_eq!(bytes.len(), size_of::<T>(), "skycat: corrupt aggregate state");
        let p = pg_sys::palloc(size_of::<T>()) as *mut T;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, size_of::<T>());
        Datum::from(p)
    }
}

/// combine(internal, internal) for fixed-size states: adds the second into the first (or a
/// copy of the second in the aggregate context when the first is NULL).
/// The combine, serialise and deserialise functions of an aggregate with a fixed-size state
/// that has a `combine(&mut self, &Self)` method.
macro_rules! fixed_state_support {
    ($state:ty, $function:literal, $combine:ident, $serial:ident, $deserial:ident) => {
        v1_function! {
            fn $combine(fcinfo) {
                fixed_combine::<$state>(fcinfo, $function, |a, b| a.combine(b))
            }
        }

        v1_function! {
            fn $serial(fcinfo) {
                fixed_serial::<$state>(arg(fcinfo, 0).expect("strict"))
            }
        }

        v1_function! {
            fn $deserial(fcinfo) {
                fixed_deserial::<$state>(arg(fcinfo, 0).expect("strict"))
            }
        }
    };
}

unsafe fn fixed_combine<T: Copy + Default>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    combine: impl Fn(&mut T, &T),
) -> Datum {
    unsafe {
        let Some(d2) = arg(fcinfo, 1) else {
            return arg(fcinfo, 0).unwrap_or_else(|| return_null(fcinfo));
        };
        let s1 = fixed_state::<T>(fcinfo, function);
        combine(&mut *s1, &*d2.cast_mut_ptr::<T>());
        Datum::from(s1)
    }
}

v1_function! {
    fn flux_mean_sfunc(fcinfo) fast {
        let st = arg(fcinfo, 0)?.cast_mut_ptr::<FluxMeanState>();
        if let (Some(f), Some(e)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            (*st).add(f, e);
        }
        Some(Datum::from(st))
    } guarded {
        let st = fixed_state::<FluxMeanState>(fcinfo, "flux_mean");
        if let (Some(f), Some(e)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            (*st).add(f, e);
        }
        Datum::from(st)
    }
}

fixed_state_support!(FluxMeanState, "flux_mean", flux_mean_combine, flux_mean_serial, flux_mean_deserial);

v1_function! {
    fn flux_mean_final(fcinfo) {
        let st = arg(fcinfo, 0).map(|d| *d.cast_mut_ptr::<FluxMeanState>()).unwrap_or_default();
        let (mean, err, n) = st.finish();
        Row([float8_datum(mean), float8_datum(err), Some(Datum::from(n as usize))]).into_ret(fcinfo)
    }
}

v1_function! {
    /// `flux_summary_add(mean, mean_err, sigma, ndata, min, max, sum, flux, flux_err)`: a band's
    /// summary (the AP object's columns) with one more detection folded in, without the history.
    fn flux_summary_add(fcinfo) {
        let prev = FluxSummary {
            mean: float_arg(fcinfo, 0),
            mean_err: float_arg(fcinfo, 1),
            sigma: float_arg(fcinfo, 2),
            ndata: arg(fcinfo, 3).map_or(0, |d| d.value() as i32 as i64),
            min: float_arg(fcinfo, 4),
            max: float_arg(fcinfo, 5),
            sum: float_arg(fcinfo, 6),
        };
        let (f, e) = (float_arg(fcinfo, 7).unwrap_or(f64::NAN), float_arg(fcinfo, 8).unwrap_or(f64::NAN));
        let s = prev.checked_add(f, e).or_sql_error("flux_summary_add");
        let ndata = Some(Datum::from(i32::try_from(s.ndata).unwrap_or(i32::MAX)));
        Row([
            float8_datum(s.mean),
            float8_datum(s.mean_err),
            float8_datum(s.sigma),
            ndata,
            float8_datum(s.min),
            float8_datum(s.max),
            float8_datum(s.sum),
        ])
        .into_ret(fcinfo)
    }
}

pgrx::extension_sql!(
    "CREATE TYPE flux_summary AS (mean float8, mean_err float8, sigma float8, ndata int, min float8, max float8, sum float8);
     COMMENT ON TYPE flux_summary IS 'A band''s flux summary: weighted mean and its error, sample sigma, rows used, min, max, and the plain sum of the used fluxes.';
     CREATE FUNCTION flux_summary_add(mean float8, mean_err float8, sigma float8, ndata int, min float8, max float8,
                                      sum float8, flux float8, flux_err float8) RETURNS flux_summary
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_summary_add';
     COMMENT ON FUNCTION flux_summary_add(float8, float8, float8, int, float8, float8, float8, float8, float8) IS
       'A flux summary with one more row (flux, flux_err) folded in, equal to the summary of all its rows: how the Association Pipeline updates an object without reading its history.';",
    name = "flux_summary_add"
);

pgrx::extension_sql!(
    "CREATE TYPE flux_mean AS (mean float8, mean_err float8, n bigint);
     COMMENT ON TYPE flux_mean IS 'Inverse-variance weighted mean flux, its error, and the rows used.';
     CREATE FUNCTION flux_mean_sfunc(internal, float8, float8) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_mean_sfunc';
     CREATE FUNCTION flux_mean_combine(internal, internal) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_mean_combine';
     CREATE FUNCTION flux_mean_serial(internal) RETURNS bytea
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_mean_serial';
     CREATE FUNCTION flux_mean_deserial(bytea, internal) RETURNS internal
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_mean_deserial';
     CREATE FUNCTION flux_mean_final(internal) RETURNS flux_mean
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'flux_mean_final';
     CREATE AGGREGATE flux_mean(flux float8, flux_err float8) (
       SFUNC = flux_mean_sfunc, STYPE = internal, SSPACE = 24,
       COMBINEFUNC = flux_mean_combine, SERIALFUNC = flux_mean_serial, DESERIALFUNC = flux_mean_deserial,
       FINALFUNC = flux_mean_final, PARALLEL = SAFE);
     COMMENT ON AGGREGATE flux_mean(float8, float8) IS
       'Inverse-variance weighted mean of the rows with finite flux and flux_err > 0: (mean, mean_err, n).';",
    name = "flux_mean_aggregate"
);

v1_function! {
    fn mean_position_sfunc(fcinfo) fast {
        let st = arg(fcinfo, 0)?.cast_mut_ptr::<MeanPositionState>();
        if let (Some(ra), Some(dec)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            (*st).add(ra, dec);
        }
        Some(Datum::from(st))
    } guarded {
        let st = fixed_state::<MeanPositionState>(fcinfo, "mean_position");
        if let (Some(ra), Some(dec)) = (float_arg(fcinfo, 1), float_arg(fcinfo, 2)) {
            (*st).add(ra, dec);
        }
        Datum::from(st)
    }
}

fixed_state_support!(
    MeanPositionState,
    "mean_position",
    mean_position_combine,
    mean_position_serial,
    mean_position_deserial
);

v1_function! {
    fn mean_position_final(fcinfo) {
        let st = arg(fcinfo, 0).map(|d| *d.cast_mut_ptr::<MeanPositionState>()).unwrap_or_default();
        match st.finish() {
            Some((ra, dec)) => crate::sqltypes::Float8Row([ra, dec]).into_ret(fcinfo),
            None => return_null(fcinfo),
        }
    }
}

pgrx::extension_sql!(
    "CREATE FUNCTION mean_position_sfunc(internal, float8, float8) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'mean_position_sfunc';
     CREATE FUNCTION mean_position_combine(internal, internal) RETURNS internal
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'mean_position_combine';
     CREATE FUNCTION mean_position_serial(internal) RETURNS bytea
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'mean_position_serial';
     CREATE FUNCTION mean_position_deserial(bytea, internal) RETURNS internal
       IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'mean_position_deserial';
     CREATE FUNCTION mean_position_final(internal) RETURNS sky_point
       IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'mean_position_final';
     CREATE AGGREGATE mean_position(ra float8, \"dec\" float8) (
       SFUNC = mean_position_sfunc, STYPE = internal, SSPACE = 32,
       COMBINEFUNC = mean_position_combine, SERIALFUNC = mean_position_serial,
       DESERIALFUNC = mean_position_deserial, FINALFUNC = mean_position_final, PARALLEL = SAFE);
     COMMENT ON AGGREGATE mean_position(float8, float8) IS
       'Mean sky position: the direction of the summed unit vectors (safe across RA 0/360 and at the poles); NULL when they cancel.';",
    name = "mean_position_aggregate",
    requires = ["calibration_shell_types"]
);

crate::fastcall::scalar_fn! {
    /// Whether a light-curve row is used by `lc_stats` and `flux_mean`: the one definition
    /// SQL code filters with (the AP's per-band statistics).
    sql_name = "lc_row_used";
    sql = "CREATE FUNCTION lc_row_used(flux float8, flux_err float8) RETURNS boolean
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'lc_row_used';
           COMMENT ON FUNCTION lc_row_used(float8, float8) IS
             'Whether lc_stats and flux_mean use a row: flux and flux_err finite, flux_err > 0.';";
    fn lc_row_used(flux: f64, flux_err: f64) -> bool {
        lightcurve::is_used(flux, flux_err)
    }
}
