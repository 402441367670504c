//! `crossmatch(left_query, right_query, radius_arcsec, mode)`: read both inputs through SPI
//! cursors, match in memory in parallel (skycat_core::crossmatch), return the rows.

use pgrx::prelude::*;
use skycat_core::crossmatch::{self as xm, Mode, Source};
use skycat_core::validate;

use crate::cancel::run_cancellable;
use crate::errors::OrSqlError;

/// A crossmatch input read into memory, and whether it carried error columns.
struct Input {
    rows: Vec<Source>,
    has_errors: bool,
}

fn column_error(side: &str, detail: String) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!("skycat.crossmatch: {side}_query must return (id bigint, ra float8, dec float8 [, ra_err_arcsec float8, dec_err_arcsec float8]); {detail}")
    );
    unreachable!()
}

fn null_error(side: &str, id: Option<i64>, column: &str) -> ! {
    let who = id.map(|i| format!("row with id {i}")).unwrap_or_else(|| "a row".into());
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("skycat.crossmatch: {side} input {who}: {column} is NULL")
    );
    unreachable!()
}

/// Name of a column's type, for messages.
fn type_name(oid: pg_sys::Oid) -> String {
    unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(oid)) }.to_string_lossy().into_owned()
}

/// Checks the columns of an input and says whether its id is int4 and whether it has errors.
unsafe fn check_columns(side: &str, desc: pg_sys::TupleDesc) -> (bool, bool) {
    let natts = unsafe { (*desc).natts } as usize;
    if natts != 3 && natts != 5 {
        column_error(side, format!("it returns {natts} columns"));
    }
    let attrs = unsafe { (*desc).attrs.as_slice(natts) };
    let mut id_is_int4 = false;
    for (k, att) in attrs.iter().enumerate() {
        let ok = match k {
            0 => {
                id_is_int4 = att.atttypid == pg_sys::INT4OID;
                id_is_int4 || att.atttypid == pg_sys::INT8OID
            }
            _ => att.atttypid == pg_sys::FLOAT8OID,
        };
        if !ok {
            let name = unsafe { std::ffi::CStr::from_ptr(att.attname.data.as_ptr()) }.to_string_lossy().into_owned();
            let want = if k == 0 { "bigint" } else { "float8" };
            column_error(
                side,
                format!("column {} (\"{name}\") is {}; cast it (e.g. {name}::{want})", k + 1, type_name(att.atttypid)),
            );
        }
    }
    (id_is_int4, natts == 5)
}

/// Receives an input's rows straight from the executor (an SPI DestReceiver), without
/// copying them into an SPI tuple table. PostgreSQL calls the callbacks with `&dest`, which
/// is why `dest` is the first field of this `repr(C)` struct.
#[repr(C)]
struct RowReader {
    dest: pg_sys::DestReceiver,
    side: &'static str,
    natts: i32,
    id_is_int4: bool,
    has_errors: bool,
    max_rows: usize,
    rows: Vec<Source>,
}

/// Room for one more row in `r.rows`, within `skycat.crossmatch_max_rows` (54000 past it) and
/// without aborting the backend when the allocation fails (53200 instead).
fn reserve_row(r: &mut RowReader) {
    if r.rows.len() < r.rows.capacity() {
        return;
    }
    if r.rows.len() >= r.max_rows {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "skycat.crossmatch: the {} input has more than {} rows (the limit on rows held in memory, skycat.crossmatch_max_rows); split the input",
                r.side, r.max_rows
            )
        );
    }
    let grow = r.rows.len().max(1024).min(r.max_rows - r.rows.len());
    if r.rows.try_reserve_exact(grow).is_err() {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
            format!("skycat.crossmatch: out of memory reading the {} input ({} rows read)", r.side, r.rows.len())
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn reader_startup(
    this: *mut pg_sys::DestReceiver,
    _op: std::ffi::c_int,
    desc: pg_sys::TupleDesc,
) {
    let r = unsafe { &mut *this.cast::<RowReader>() };
    let (int4, errs) = unsafe { check_columns(r.side, desc) };
    r.id_is_int4 = int4;
    r.has_errors = errs;
    r.natts = unsafe { (*desc).natts };
}

#[pg_guard]
unsafe extern "C-unwind" fn reader_receive(slot: *mut pg_sys::TupleTableSlot, this: *mut pg_sys::DestReceiver) -> bool {
    let r = unsafe { &mut *this.cast::<RowReader>() };
    let n = r.natts as usize;
    let (values, nulls) = unsafe {
        if ((*slot).tts_nvalid as i32) < r.natts {
            pg_sys::slot_getsomeattrs_int(slot, r.natts);
        }
        (std::slice::from_raw_parts((*slot).tts_values, n), std::slice::from_raw_parts((*slot).tts_isnull, n))
    };
    if nulls[0] {
        null_error(r.side, None, "id");
    }
    let id = if r.id_is_int4 { values[0].value() as i32 as i64 } else { values[0].value() as i64 };
    let f = |k: usize| {
        if nulls[k] {
            f64::NAN
        } else {
            f64::from_bits(values[k].value() as u64)
        }
    };
    if nulls[1] || nulls[2] {
        null_error(r.side, Some(id), if nulls[1] { "ra" } else { "dec" });
    }
    let (ra_err, dec_err) = if r.has_errors { (f(3), f(4)) } else { (f64::NAN, f64::NAN) };
    reserve_row(r);
    r.rows.push(Source { id, ra: f(1), dec: f(2), ra_err, dec_err });
    true
}

unsafe extern "C-unwind" fn reader_done(_this: *mut pg_sys::DestReceiver) {}

/// Runs `query` (inside an SPI connection) and collects its rows.
///
/// Rows arrive through [`RowReader`] rather than a cursor with pgrx's typed accessors: this
/// runs once per input row, and the cursor's tuple copies and per-column type checks cost
/// several times the read itself (the `crossmatch_input_rows` baseline in
/// docs/benchmarks/crossmatch.md measures this path).
fn read_input(side: &'static str, query: &str) -> Input {
    let cquery =
        std::ffi::CString::new(query).unwrap_or_else(|_| error!("skycat.crossmatch: {side}_query contains a NUL byte"));
    let mut reader = Box::new(RowReader {
        dest: pg_sys::DestReceiver {
            receiveSlot: Some(reader_receive),
            rStartup: Some(reader_startup),
            rShutdown: Some(reader_done),
            rDestroy: Some(reader_done),
            mydest: pg_sys::CommandDest::DestNone,
        },
        side,
        natts: 0,
        id_is_int4: false,
        has_errors: false,
        max_rows: crate::gucs::CROSSMATCH_MAX_ROWS.get() as usize,
        rows: Vec::new(),
    });
    let options = pg_sys::SPIExecuteOptions {
        read_only: true,
        must_return_tuples: true,
        dest: &mut reader.dest,
        ..Default::default()
    };
    let rc = unsafe { pg_sys::SPI_execute_extended(cquery.as_ptr(), &options) };
    if rc < 0 {
        // A statement SPI cannot run here (COPY, transaction control ...): the caller's query.
        let what = unsafe { std::ffi::CStr::from_ptr(pg_sys::SPI_result_code_string(rc)) }.to_string_lossy();
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("skycat.crossmatch: {side}_query cannot be run as a cross-match input ({what}); give a SELECT")
        );
    }
    let mut rows = std::mem::take(&mut reader.rows);
    xm::validate_sources(side, &mut rows).or_sql_error("crossmatch");
    Input { rows, has_errors: reader.has_errors }
}

fn text_arg(d: pg_sys::Datum) -> String {
    unsafe { std::ffi::CStr::from_ptr(pg_sys::text_to_cstring(d.cast_mut_ptr())) }.to_string_lossy().into_owned()
}

crate::fastcall::v1_function! {
    /// Bulk in-memory parallel cross-match of two queries returning (id, ra, dec[, ra_err_arcsec,
    /// dec_err_arcsec]); see docs/crossmatch.md.
    ///
    /// A bare V1 function in materialize mode (rows go straight into the executor's tuplestore):
    /// pgrx's value-per-call table iterator costs ~350 ns per returned row, a third of the whole
    /// cross-match for a million matches.
    fn crossmatch(fcinfo) {
        let rows = match_args(fcinfo, "crossmatch", |left, index, mode, use_errors, ctl| {
            xm::crossmatch_indexed(left, index, mode, use_errors, ctl)
                .map(|rows| rows.into_iter().map(|m| (m, None)).collect())
        });
        return_rows(fcinfo, rows)
    }
}

crate::fastcall::v1_function! {
    /// `crossmatch_marked(left_query, right_query, radius_arcsec, mode)`: every candidate pair, as
    /// `crossmatch(..., 'all')`, plus `chosen`: whether `mode` selects the pair. One pass for what
    /// the Association Pipeline persists (all candidates, the assignment marked).
    fn crossmatch_marked(fcinfo) {
        let rows = match_args(fcinfo, "crossmatch_marked", |left, index, mode, use_errors, ctl| {
            xm::crossmatch_all_marked(left, index, mode, use_errors, ctl)
                .map(|rows| rows.into_iter().map(|(m, chosen)| (m, Some(chosen))).collect())
        });
        return_rows(fcinfo, rows)
    }
}

type Marked = Vec<(xm::MatchRow, Option<bool>)>;

/// Reads the arguments and both inputs of a cross-match function and runs `matcher`.
unsafe fn match_args(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
    matcher: impl FnOnce(&[Source], &xm::zones::ZoneIndex, Mode, bool, &xm::Control) -> skycat_core::error::SkyResult<Marked>
        + Send,
) -> Marked {
    let args = unsafe { (*fcinfo).args.as_slice(4) };
    let (left_query, right_query) = (text_arg(args[0].value), text_arg(args[1].value));
    let radius_arcsec = f64::from_bits(args[2].value.value() as u64);
    let mode = text_arg(args[3].value);
    let radius = validate::positive("radius_arcsec", "arcseconds", radius_arcsec).or_sql_error(name);
    let mode = Mode::parse(&mode).or_sql_error(name);
    let t0 = std::time::Instant::now();
    let max_pairs = crate::gucs::CROSSMATCH_MAX_PAIRS.get() as usize;
    let right = Spi::connect(|_| read_input("right", &right_query));
    // Index the right side on a helper thread while the left input is read through SPI on
    // this one (the helper never touches PostgreSQL). If reading fails, the scope joins the
    // helper before the error propagates.
    let (left, index, t_read) = std::thread::scope(|s| {
        let builder = s.spawn(|| xm::zones::ZoneIndex::new(&right.rows, radius));
        let left = Spi::connect(|_| read_input("left", &left_query));
        let t_read = t0.elapsed();
        (left, builder.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), t_read)
    });
    let use_errors = left.has_errors && right.has_errors;
    let rows =
        run_cancellable(|stop| matcher(&left.rows, &index, mode, use_errors, &xm::Control { max_pairs, cancel: stop }))
            .or_sql_error(name);
    debug1!(
        "skycat.{name}: read {} left and {} right rows in {:.1} ms (indexing the right meanwhile), matched ({mode:?}) in {:.1} ms: {} rows",
        left.rows.len(),
        right.rows.len(),
        t_read.as_secs_f64() * 1e3,
        (t0.elapsed() - t_read).as_secs_f64() * 1e3,
        rows.len()
    );
    rows
}

/// Puts the rows into the executor's tuplestore (materialize mode); the result's tuple
/// descriptor has 4 columns, or 5 with the chosen flag (a fifth value is ignored otherwise).
unsafe fn return_rows(fcinfo: pg_sys::FunctionCallInfo, rows: Marked) -> pg_sys::Datum {
    unsafe {
        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo.cast::<pg_sys::ReturnSetInfo>();
        let (store, desc) = ((*rsinfo).setResult, (*rsinfo).setDesc);
        let nulls = [false; 5];
        for (k, (m, chosen)) in rows.into_iter().enumerate() {
            // Millions of rows go into the tuplestore (spilling to disk past work_mem): stay
            // cancellable while they do.
            if k % 65_536 == 65_535 {
                pgrx::check_for_interrupts!();
            }
            let mut values = [
                pg_sys::Datum::from(m.left_id as usize),
                pg_sys::Datum::from(m.right_id as usize),
                pg_sys::Datum::from(m.sep_arcsec.to_bits() as usize),
                pg_sys::Datum::from(m.rank as isize as usize),
                pg_sys::Datum::from(chosen.unwrap_or(false)),
            ];
            pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_ptr().cast_mut());
        }
    }
    pg_sys::Datum::from(0usize)
}

extension_sql!(
    "CREATE FUNCTION crossmatch(left_query text, right_query text, radius_arcsec float8, mode text DEFAULT 'all')
     RETURNS TABLE(left_id bigint, right_id bigint, sep_arcsec float8, rank int)
     VOLATILE STRICT PARALLEL RESTRICTED ROWS 10000
     LANGUAGE c AS 'MODULE_PATHNAME', 'crossmatch';
     COMMENT ON FUNCTION crossmatch(text, text, float8, text) IS
       'Bulk in-memory parallel cross-match of two queries returning (id, ra, dec[, ra_err_arcsec, dec_err_arcsec]) within radius_arcsec; mode all | nearest | greedy | optimal.';
     CREATE FUNCTION crossmatch_marked(left_query text, right_query text, radius_arcsec float8, mode text)
     RETURNS TABLE(left_id bigint, right_id bigint, sep_arcsec float8, rank int, chosen boolean)
     VOLATILE STRICT PARALLEL RESTRICTED ROWS 10000
     LANGUAGE c AS 'MODULE_PATHNAME', 'crossmatch_marked';
     COMMENT ON FUNCTION crossmatch_marked(text, text, float8, text) IS
       'Every candidate pair of crossmatch(..., ''all'') with chosen = whether mode (nearest | greedy | optimal) selects it.';",
    name = "crossmatch"
);

/// Reads a crossmatch input exactly as `crossmatch` does and returns its row count: checks an
/// input query, and is the "just read the inputs" baseline of the benchmarks.
#[pg_extern(volatile, parallel_restricted)]
fn crossmatch_input_rows(query: &str) -> i64 {
    Spi::connect(|_| read_input("input", query).rows.len() as i64)
}
