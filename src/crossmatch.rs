//! `crossmatch(left_query, right_query, radius_arcsec, mode)`: read both inputs through SPI
//! cursors, match in memory in parallel (skycat_core::crossmatch), return the rows.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{PgBuiltInOids, PgOid};
use skycat_core::crossmatch::{self as xm, Mode, Source};
use skycat_core::validate;

use crate::errors::OrSqlError;

/// Rows fetched from a cursor at a time.
const FETCH: i64 = 10_000;

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
    let who = id
        .map(|i| format!("row with id {i}"))
        .unwrap_or_else(|| "a row".into());
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("skycat.crossmatch: {side} input {who}: {column} is NULL")
    );
    unreachable!()
}

/// Reads `query` through a cursor, checking its columns, in batches of FETCH rows.
fn read_input(client: &mut SpiClient<'_>, side: &'static str, query: &str) -> Input {
    let mut cursor = client.open_cursor(query, &[]);
    let mut rows = Vec::new();
    let mut checked = false;
    let mut has_errors = false;
    let mut id_is_int4 = false;
    loop {
        let batch = cursor
            .fetch(FETCH)
            .unwrap_or_else(|e| error!("skycat.crossmatch: {side}_query failed: {e}"));
        if !checked {
            let ncols = batch.columns().unwrap_or(0);
            if ncols != 3 && ncols != 5 {
                column_error(side, format!("it returns {ncols} columns"));
            }
            for c in 1..=ncols {
                let oid = batch.column_type_oid(c).unwrap_or(PgOid::Invalid);
                let ok = match (c, oid) {
                    (1, PgOid::BuiltIn(PgBuiltInOids::INT8OID)) => true,
                    (1, PgOid::BuiltIn(PgBuiltInOids::INT4OID)) => {
                        id_is_int4 = true;
                        true
                    }
                    (_, PgOid::BuiltIn(PgBuiltInOids::FLOAT8OID)) => c > 1,
                    _ => false,
                };
                if !ok {
                    let name = batch.column_name(c).unwrap_or_default();
                    let ty = batch
                        .column_type_oid(c)
                        .map(|o| o.value())
                        .unwrap_or(pg_sys::InvalidOid);
                    let tyname = unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(ty)) }
                        .to_string_lossy()
                        .into_owned();
                    column_error(
                        side,
                        format!(
                            "column {c} (\"{name}\") is {tyname}; cast it (e.g. {name}::{})",
                            if c == 1 { "bigint" } else { "float8" }
                        ),
                    );
                }
            }
            has_errors = ncols == 5;
            checked = true;
        }
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let id = if id_is_int4 {
                row.get::<i32>(1).ok().flatten().map(i64::from)
            } else {
                row.get::<i64>(1).ok().flatten()
            };
            let Some(id) = id else {
                null_error(side, None, "id")
            };
            let ra = row
                .get::<f64>(2)
                .ok()
                .flatten()
                .unwrap_or_else(|| null_error(side, Some(id), "ra"));
            let dec = row
                .get::<f64>(3)
                .ok()
                .flatten()
                .unwrap_or_else(|| null_error(side, Some(id), "dec"));
            let (ra_err, dec_err) = if has_errors {
                (
                    row.get::<f64>(4).ok().flatten().unwrap_or(f64::NAN),
                    row.get::<f64>(5).ok().flatten().unwrap_or(f64::NAN),
                )
            } else {
                (f64::NAN, f64::NAN)
            };
            rows.push(Source {
                id,
                ra,
                dec,
                ra_err,
                dec_err,
            });
        }
        pgrx::check_for_interrupts!();
    }
    xm::validate_sources(side, &mut rows).or_sql_error("crossmatch");
    Input { rows, has_errors }
}

/// Bulk in-memory parallel cross-match of two queries returning (id, ra, dec[, ra_err_arcsec,
/// dec_err_arcsec]); see docs/crossmatch.md.
#[pg_extern(volatile, parallel_restricted)]
fn crossmatch(
    left_query: &str,
    right_query: &str,
    radius_arcsec: f64,
    mode: default!(&str, "'all'"),
) -> TableIterator<
    'static,
    (
        name!(left_id, i64),
        name!(right_id, i64),
        name!(sep_arcsec, f64),
        name!(rank, i32),
    ),
> {
    let radius =
        validate::positive("radius_arcsec", "arcseconds", radius_arcsec).or_sql_error("crossmatch");
    let mode = Mode::parse(mode).or_sql_error("crossmatch");
    let t0 = std::time::Instant::now();
    let (left, right) = Spi::connect_mut(|client| {
        (
            read_input(client, "left", left_query),
            read_input(client, "right", right_query),
        )
    });
    let t_read = t0.elapsed();
    let use_errors = left.has_errors && right.has_errors;
    let rows = xm::crossmatch(
        &left.rows,
        &right.rows,
        radius,
        mode,
        use_errors,
        &mut |_| {
            pgrx::check_for_interrupts!();
        },
    )
    .or_sql_error("crossmatch");
    debug1!(
        "skycat.crossmatch: read {} left and {} right rows in {:.1} ms, matched ({mode:?}) in {:.1} ms: {} rows",
        left.rows.len(),
        right.rows.len(),
        t_read.as_secs_f64() * 1e3,
        (t0.elapsed() - t_read).as_secs_f64() * 1e3,
        rows.len()
    );
    TableIterator::new(
        rows.into_iter()
            .map(|m| (m.left_id, m.right_id, m.sep_arcsec, m.rank)),
    )
}

/// Reads a crossmatch input exactly as `crossmatch` does and returns its row count: checks an
/// input query, and is the "just read the inputs" baseline of the benchmarks.
#[pg_extern(volatile, parallel_restricted)]
fn crossmatch_input_rows(query: &str) -> i64 {
    Spi::connect_mut(|client| read_input(client, "input", query).rows.len() as i64)
}
