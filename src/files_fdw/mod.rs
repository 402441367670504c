//! The `skycat_files` foreign-data wrapper: Parquet / Arrow IPC files under a server's root
//! as foreign tables (SQL-API section 5).
//!
//! supabase-wrappers provides the handler/validator functions and `IMPORT FOREIGN SCHEMA`
//! plumbing. The scan callbacks are our own (installed through `fdw_routine_hook`), for two
//! reasons: wrappers 0.1.28 keeps a pointer to its scan state in the plan and frees it at the
//! end of the first execution, so a cached plan (PL/pgSQL, prepared statements) reads freed
//! memory (supabase/wrappers#237, fixed by #645 only in 0.2.x, which needs Rust 1.97); and its
//! row-at-a-time `Row`/`Cell` path allocates per value, while we fill the tuple slot straight
//! from Arrow arrays. Algorithms (globbing, pruning, type mapping) live in
//! `skycat_core::files`.

mod datum;
mod exec;
mod import;
mod options;
mod parallel;
mod plan;
mod units;
pub(crate) mod write_parquet;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use skycat_core::files::FilesError;
use std::collections::HashMap;
use supabase_wrappers::prelude::*;

pub(crate) use datum::{array_elements, element_oid, kind_of};
pub(crate) use options::{may_write_server_files, TableOptions};

/// The wrapper; `wrappers_fdw` generates `skycat.skycat_files_handler` and
/// `skycat.skycat_files_validator` from it.
#[wrappers_fdw(
    version = "0.1.0",
    author = "skycat",
    website = "https://github.com/skycat/skycat",
    error_type = "FilesFdwError"
)]
pub(crate) struct SkycatFiles {
    server: ForeignServer,
}

/// An error raised by the wrapper's option checks or `IMPORT FOREIGN SCHEMA`.
pub(crate) struct FilesFdwError {
    code: PgSqlErrorCode,
    message: String,
}

impl FilesFdwError {
    pub(crate) fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Self {
        FilesFdwError { code, message: message.into() }
    }
}

impl From<FilesFdwError> for ErrorReport {
    fn from(e: FilesFdwError) -> Self {
        ErrorReport::new(e.code, e.message, "skycat_files")
    }
}

impl From<FilesError> for FilesFdwError {
    fn from(e: FilesError) -> Self {
        FilesFdwError { code: files_error_code(&e), message: e.to_string() }
    }
}

/// The SQLSTATE of a file error: bad options 22023, escaping the root 42501, a missing file
/// 58P01, unreadable or corrupt files XX001 (data_corrupted), schema mismatches 42804.
pub(crate) fn files_error_code(e: &FilesError) -> PgSqlErrorCode {
    match e {
        FilesError::InvalidPattern(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        FilesError::OutsideRoot { .. } => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        FilesError::Io { not_found: true, .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
        FilesError::Io { .. } => PgSqlErrorCode::ERRCODE_IO_ERROR,
        FilesError::Corrupt { .. } => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        FilesError::Schema { .. } => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
    }
}

/// Raises a file error as a PostgreSQL ERROR.
pub(crate) fn raise_files_error(e: FilesError) -> ! {
    ereport!(PgLogLevel::ERROR, files_error_code(&e), format!("skycat_files: {e}"));
    unreachable!("ereport(ERROR) does not return")
}

impl ForeignDataWrapper<FilesFdwError> for SkycatFiles {
    fn new(server: ForeignServer) -> Result<Self, FilesFdwError> {
        Ok(SkycatFiles { server })
    }

    // The scan callbacks below are replaced in `fdw_routine_hook`; these never run.
    fn begin_scan(
        &mut self,
        _quals: &[Qual],
        _columns: &[Column],
        _sorts: &[Sort],
        _limit: &Option<Limit>,
        _options: &HashMap<String, String>,
    ) -> Result<(), FilesFdwError> {
        Err(FilesFdwError::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "skycat_files: unexpected wrappers scan"))
    }

    fn iter_scan(&mut self, _row: &mut Row) -> Result<Option<()>, FilesFdwError> {
        Ok(None)
    }

    fn end_scan(&mut self) -> Result<(), FilesFdwError> {
        Ok(())
    }

    fn fdw_routine_hook(routine: &mut supabase_wrappers::FdwRoutine<pgrx::AllocatedByRust>) {
        plan::install(routine);
        exec::install(routine);
        // Read-only and no aggregate push-down: PostgreSQL reports "cannot insert into
        // foreign table" itself when the modify callbacks are absent.
        routine.GetForeignUpperPaths = None;
        routine.AddForeignUpdateTargets = None;
        routine.PlanForeignModify = None;
        routine.BeginForeignModify = None;
        routine.ExecForeignInsert = None;
        routine.ExecForeignUpdate = None;
        routine.ExecForeignDelete = None;
        routine.EndForeignModify = None;
    }

    fn validator(options: Vec<Option<String>>, catalog: Option<pg_sys::Oid>) -> Result<(), FilesFdwError> {
        options::validate(options, catalog)
    }

    fn import_foreign_schema(&mut self, stmt: ImportForeignSchemaStmt) -> Result<Vec<String>, FilesFdwError> {
        import::import_foreign_schema(&self.server, stmt)
    }
}

pgrx::extension_sql!(
    r#"
CREATE FOREIGN DATA WRAPPER skycat_files
  HANDLER skycat_files_handler
  VALIDATOR skycat_files_validator;
COMMENT ON FOREIGN DATA WRAPPER skycat_files IS
  'Parquet / Arrow IPC files under a server root as foreign tables (skycat)';
-- PostgreSQL never passes NULL options; a direct call with NULL returns NULL (as
-- postgres_fdw_validator does) instead of reaching the generated Rust signature.
ALTER FUNCTION skycat_files_validator(text[], oid) STRICT;
"#,
    name = "skycat_files_fdw",
    finalize
);

/// Reads a PostgreSQL `DefElem` options list into a map.
pub(crate) unsafe fn options_map(list: *mut pg_sys::List) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if list.is_null() {
        return map;
    }
    for i in 0..(*list).length as usize {
        let def = (*(*list).elements.add(i)).ptr_value as *mut pg_sys::DefElem;
        let name = std::ffi::CStr::from_ptr((*def).defname).to_string_lossy().into_owned();
        let value = std::ffi::CStr::from_ptr(pg_sys::defGetString(def)).to_string_lossy().into_owned();
        map.insert(name, value);
    }
    map
}
