//! `IMPORT FOREIGN SCHEMA ... FROM SERVER s INTO local OPTIONS (files '<glob>', table '<name>')`:
//! a foreign table declared from the first matching file's schema, plus one column per
//! hive-style partition key of its path (bigint when the value is an integer, else text).

use super::options::may_read_server_files;
use super::FilesFdwError;
use pgrx::PgSqlErrorCode;
use skycat_core::files::paths;
use skycat_core::files::reader::{CatalogFile, FileFormat};
use skycat_core::files::types::{pg_kind_for, snake_case};
use std::ffi::{CStr, CString};
use supabase_wrappers::prelude::{ForeignServer, ImportForeignSchemaStmt, ImportSchemaType};

fn quote_ident(s: &str) -> String {
    let c = CString::new(s).unwrap_or_default();
    unsafe { CStr::from_ptr(pgrx::pg_sys::quote_identifier(c.as_ptr())).to_string_lossy().into_owned() }
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn option_error(message: String) -> FilesFdwError {
    FilesFdwError::new(PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME, message)
}

pub(super) fn import_foreign_schema(
    server: &ForeignServer,
    stmt: ImportForeignSchemaStmt,
) -> Result<Vec<String>, FilesFdwError> {
    if !may_read_server_files() {
        return Err(FilesFdwError::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "skycat_files: only superusers or members of pg_read_server_files may import file schemas",
        ));
    }
    for k in stmt.options.keys() {
        if !["files", "table", "format", "snake_case"].contains(&k.as_str()) {
            return Err(option_error(format!(
                "skycat_files: invalid IMPORT FOREIGN SCHEMA option \"{k}\" (valid: files, table, format, snake_case)"
            )));
        }
    }
    let files = stmt.options.get("files").ok_or_else(|| {
        FilesFdwError::new(
            PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
            "skycat_files: IMPORT FOREIGN SCHEMA needs OPTIONS (files '<glob relative to root>')",
        )
    })?;
    let root = server.options.get("root").cloned().unwrap_or_default();
    let matched = paths::expand(&root, files)?;
    let first = matched.first().ok_or_else(|| {
        FilesFdwError::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            format!("skycat_files: no file under \"{root}\" matches \"{files}\""),
        )
    })?;
    let format = stmt.options.get("format").map(String::as_str);
    let file = CatalogFile::open(&first.absolute, FileFormat::resolve(&first.relative, format)?)?;
    let snake = stmt.options.get("snake_case").is_some_and(|v| matches!(v.as_str(), "true" | "on" | "yes" | "1"));
    let table = match stmt.options.get("table") {
        Some(t) => t.clone(),
        None => {
            let stem = first.relative.rsplit('/').next().unwrap_or("files");
            snake_case(stem.split('.').next().unwrap_or("files"))
        }
    };
    let listed = stmt.table_list.contains(&table);
    let wanted = match stmt.list_type {
        ImportSchemaType::FdwImportSchemaAll => true,
        ImportSchemaType::FdwImportSchemaLimitTo => listed,
        ImportSchemaType::FdwImportSchemaExcept => !listed,
    };
    if !wanted {
        return Ok(Vec::new());
    }

    let mut columns = Vec::new();
    for (key, value) in &first.partitions {
        let ty = if value.parse::<i64>().is_ok() { "bigint" } else { "text" };
        columns.push(format!("{} {ty}", quote_ident(key)));
    }
    let mut skipped = Vec::new();
    for field in file.schema().fields() {
        if first.partitions.iter().any(|(k, _)| k == field.name()) {
            continue;
        }
        match pg_kind_for(field.data_type()) {
            Some(kind) => {
                let name = if snake { snake_case(field.name()) } else { field.name().clone() };
                columns.push(format!("{} {}", quote_ident(&name), kind.sql_name()));
            }
            None => skipped.push(format!("{} ({})", field.name(), field.data_type())),
        }
    }
    if !skipped.is_empty() {
        pgrx::notice!(
            "skycat_files: IMPORT FOREIGN SCHEMA skipped columns of types it cannot read: {}",
            skipped.join(", ")
        );
    }
    let mut options = vec![format!("files {}", quote_literal(files))];
    if let Some(f) = format {
        options.push(format!("format {}", quote_literal(f)));
    }
    Ok(vec![format!(
        "CREATE FOREIGN TABLE {}.{} (\n  {}\n) SERVER {} OPTIONS ({})",
        quote_ident(&stmt.local_schema),
        quote_ident(&table),
        columns.join(",\n  "),
        quote_ident(&server.server_name),
        options.join(", ")
    )])
}
