//! `skycat.write_parquet(query, path, row_group_rows)`: streams a query's result into a
//! Parquet file (zstd, statistics) through an SPI cursor, a batch at a time.
//!
//! Column types map as in `skycat_core::files::types` (the same table the file wrapper reads
//! with), so `write_parquet` followed by a foreign table over the file returns the same rows.
//! Types without an Arrow counterpart (numeric, json, uuid, ...) are written as text.

use super::{files_error_code, may_write_server_files};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use skycat_core::files::arrow::array::*;
use skycat_core::files::arrow::datatypes::{DataType, Field, Schema};
use skycat_core::files::paths::check_output_path;
use skycat_core::files::types::{arrow_date_from_pg, arrow_timestamp_from_pg, arrow_type_for, PgKind};
use skycat_core::files::writer::ParquetFileWriter;
use skycat_core::files::FilesError;
use std::ffi::{CStr, CString};
use std::sync::Arc;

/// Rows fetched from the cursor per Arrow batch.
const FETCH_ROWS: i64 = 16_384;

fn fail(e: FilesError) -> ! {
    ereport!(PgLogLevel::ERROR, files_error_code(&e), format!("skycat.write_parquet: {e}"));
    unreachable!()
}

/// One output column: how to turn its Datums into an Arrow array.
struct OutColumn {
    kind: Option<PgKind>, // None: written as text through the type's output function
    output_fn: Oid,
    builder: Box<dyn ArrayBuilder>,
}

unsafe fn text_of(d: Datum) -> &'static str {
    let t = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
    pgrx::text_to_rust_str_unchecked(t)
}

unsafe fn bytes_of<'a>(d: Datum) -> &'a [u8] {
    let t = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
    pgrx::varlena_to_byte_slice(t)
}

macro_rules! push {
    ($b:expr, $ty:ty, $v:expr) => {
        $b.as_any_mut().downcast_mut::<$ty>().expect("builder type follows the column kind").append_value($v)
    };
}

macro_rules! push_null {
    ($b:expr, $ty:ty) => {
        $b.as_any_mut().downcast_mut::<$ty>().expect("builder type follows the column kind").append_null()
    };
}

/// Raises the error for a ±infinity date or timestamp, which Parquet has no value for.
fn infinite(what: &str) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
        format!("skycat.write_parquet: an infinite {what} cannot be written to Parquet"),
        "Filter the rows out, or write NULL instead (e.g. NULLIF(col, 'infinity'))."
    );
    unreachable!()
}

/// Appends a non-NULL scalar Datum of `kind` to a builder made by `make_builder`.
unsafe fn append_scalar(b: &mut dyn ArrayBuilder, kind: &PgKind, d: Datum) {
    match kind {
        PgKind::Bool => push!(b, BooleanBuilder, d.value() != 0),
        PgKind::Int2 => push!(b, Int16Builder, d.value() as i16),
        PgKind::Int4 => push!(b, Int32Builder, d.value() as i32),
        PgKind::Int8 => push!(b, Int64Builder, d.value() as i64),
        PgKind::Float4 => push!(b, Float32Builder, f32::from_bits(d.value() as u32)),
        PgKind::Float8 => push!(b, Float64Builder, f64::from_bits(d.value() as u64)),
        PgKind::Text => push!(b, StringBuilder, text_of(d)),
        // A name is a fixed-size, NUL-padded NameData passed by reference, not a varlena.
        PgKind::Name => push!(b, StringBuilder, CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>()).to_string_lossy()),
        PgKind::Bytea => push!(b, BinaryBuilder, bytes_of(d)),
        PgKind::Date => {
            push!(b, Date32Builder, arrow_date_from_pg(d.value() as i32).unwrap_or_else(|| infinite("date")))
        }
        PgKind::Timestamp | PgKind::TimestampTz => push!(
            b,
            TimestampMicrosecondBuilder,
            arrow_timestamp_from_pg(d.value() as i64).unwrap_or_else(|| infinite("timestamp"))
        ),
        PgKind::Array(_) => unreachable!("arrays are appended by append_array"),
    }
}

unsafe fn append_null_scalar(b: &mut dyn ArrayBuilder, kind: &PgKind) {
    match kind {
        PgKind::Bool => push_null!(b, BooleanBuilder),
        PgKind::Int2 => push_null!(b, Int16Builder),
        PgKind::Int4 => push_null!(b, Int32Builder),
        PgKind::Int8 => push_null!(b, Int64Builder),
        PgKind::Float4 => push_null!(b, Float32Builder),
        PgKind::Float8 => push_null!(b, Float64Builder),
        PgKind::Text | PgKind::Name => push_null!(b, StringBuilder),
        PgKind::Bytea => push_null!(b, BinaryBuilder),
        PgKind::Date => push_null!(b, Date32Builder),
        PgKind::Timestamp | PgKind::TimestampTz => push_null!(b, TimestampMicrosecondBuilder),
        PgKind::Array(_) => {
            let l = b.as_any_mut().downcast_mut::<ListBuilder<Box<dyn ArrayBuilder>>>().expect("list builder");
            l.append_null()
        }
    }
}

unsafe fn append_array(b: &mut dyn ArrayBuilder, elem: &PgKind, d: Datum) {
    let l = b.as_any_mut().downcast_mut::<ListBuilder<Box<dyn ArrayBuilder>>>().expect("list builder");
    let values = l.values().as_mut();
    for e in super::array_elements(d, super::element_oid(elem)) {
        match e {
            Some(v) => append_scalar(values, elem, v),
            None => append_null_scalar(values, elem),
        }
    }
    l.append(true);
}

fn field_type(kind: &Option<PgKind>) -> DataType {
    match kind {
        Some(k) => arrow_type_for(k),
        None => DataType::Utf8,
    }
}

fn builder_for(kind: &Option<PgKind>) -> Box<dyn ArrayBuilder> {
    match kind {
        Some(PgKind::TimestampTz) => Box::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        Some(PgKind::Array(e)) => {
            let inner = builder_for(&Some((**e).clone()));
            let field = Field::new("item", arrow_type_for(e), true);
            Box::new(ListBuilder::new(inner).with_field(Arc::new(field)))
        }
        other => make_builder(&field_type(other), FETCH_ROWS as usize),
    }
}

/// A statement SPI refuses to run here (COPY, transaction control ...) is the caller's query.
unsafe fn spi_error(what: &str, code: i32) -> ! {
    let msg = CStr::from_ptr(pg_sys::SPI_result_code_string(code)).to_string_lossy();
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!(
            "skycat.write_parquet: {what} failed: {msg}; the query must be a SELECT, VALUES, TABLE or ... RETURNING"
        )
    );
    unreachable!()
}

/// Writes the result of `query` to the Parquet file `path` (absolute server path; parent
/// directories are created) with `row_group_rows` rows per row group; returns rows written.
#[pg_extern(volatile, parallel_unsafe)]
fn write_parquet(query: &str, path: &str, row_group_rows: default!(i32, 1000000)) -> i64 {
    if !may_write_server_files() {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "skycat.write_parquet: only superusers or members of pg_write_server_files may write server files"
        );
    }
    if row_group_rows < 1 {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("skycat.write_parquet: row_group_rows must be at least 1, got {row_group_rows}")
        );
    }
    check_output_path(path).unwrap_or_else(|e| fail(e));
    unsafe { write_query(query, path, row_group_rows as usize) }
}

unsafe fn write_query(query: &str, path: &str, row_group_rows: usize) -> i64 {
    let rc = pg_sys::SPI_connect();
    if rc < 0 {
        spi_error("SPI_connect", rc);
    }
    let q = CString::new(query).unwrap_or_else(|_| error!("skycat.write_parquet: query contains a NUL byte"));
    let plan = pg_sys::SPI_prepare(q.as_ptr(), 0, std::ptr::null_mut());
    if plan.is_null() {
        spi_error("preparing the query", pg_sys::SPI_result);
    }
    if !pg_sys::SPI_is_cursor_plan(plan) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "skycat.write_parquet: the query must return rows (SELECT, VALUES, TABLE or ... RETURNING)"
        );
    }
    let portal = pg_sys::SPI_cursor_open(std::ptr::null(), plan, std::ptr::null_mut(), std::ptr::null(), true);
    let desc = (*portal).tupDesc;
    let natts = (*desc).natts as usize;
    let attrs = (*desc).attrs.as_slice(natts);
    let mut columns: Vec<OutColumn> = Vec::with_capacity(natts);
    let mut fields = Vec::with_capacity(natts);
    for a in attrs {
        let kind = super::kind_of(a.atttypid);
        let (mut output_fn, mut varlena) = (pg_sys::InvalidOid, false);
        pg_sys::getTypeOutputInfo(a.atttypid, &mut output_fn, &mut varlena);
        let name = CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned();
        fields.push(Field::new(name, field_type(&kind), true));
        columns.push(OutColumn { builder: builder_for(&kind), kind, output_fn });
    }
    let schema = Arc::new(Schema::new(fields));
    let mut writer = ParquetFileWriter::create(std::path::Path::new(path), schema.clone(), row_group_rows)
        .unwrap_or_else(|e| fail(e));
    loop {
        pgrx::check_for_interrupts!();
        pg_sys::SPI_cursor_fetch(portal, true, FETCH_ROWS);
        let n = pg_sys::SPI_processed as usize;
        if n == 0 {
            break;
        }
        let table = pg_sys::SPI_tuptable;
        let tupdesc = (*table).tupdesc;
        for r in 0..n {
            let tuple = *(*table).vals.add(r);
            for (c, col) in columns.iter_mut().enumerate() {
                let mut isnull = false;
                let d = pg_sys::SPI_getbinval(tuple, tupdesc, c as i32 + 1, &mut isnull);
                let b = col.builder.as_mut();
                match (&col.kind, isnull) {
                    (Some(k), true) => append_null_scalar(b, k),
                    (None, true) => push_null!(b, StringBuilder),
                    (Some(PgKind::Array(e)), false) => append_array(b, e, d),
                    (Some(k), false) => append_scalar(b, k, d),
                    (None, false) => {
                        let s = pg_sys::OidOutputFunctionCall(col.output_fn, d);
                        push!(b, StringBuilder, CStr::from_ptr(s).to_string_lossy().as_ref());
                        pg_sys::pfree(s as *mut std::ffi::c_void);
                    }
                }
            }
        }
        pg_sys::SPI_freetuptable(table);
        let arrays: Vec<ArrayRef> = columns.iter_mut().map(|c| c.builder.finish()).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .unwrap_or_else(|e| error!("skycat.write_parquet: building a batch: {e}"));
        writer.write(&batch).unwrap_or_else(|e| fail(e));
    }
    pg_sys::SPI_cursor_close(portal);
    pg_sys::SPI_finish();
    writer.finish().unwrap_or_else(|e| fail(e)) as i64
}
