//! Options of the `skycat_files` server and foreign tables, and who may set them.
//!
//! Server: `root` (absolute directory). Table: `files` (glob relative to root), `format`
//! (`parquet` | `arrow`, when the suffix does not say), `filename_column` (a declared text
//! column that receives each row's file path relative to root). Naming files needs superuser
//! or membership of `pg_read_server_files`, like `COPY FROM 'file'` and file_fdw.

use super::{options_map, FilesFdwError};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use skycat_core::files::paths;
use skycat_core::files::reader::FileFormat;
use std::collections::HashMap;

const SERVER_OPTIONS: &[&str] = &["root"];
const TABLE_OPTIONS: &[&str] = &["files", "format", "filename_column"];

/// A foreign table's options merged with its server's `root`.
#[derive(Debug, Clone)]
pub(crate) struct TableOptions {
    pub root: String,
    pub files: String,
    pub format: Option<String>,
    pub filename_column: Option<String>,
}

impl TableOptions {
    /// Reads the options of foreign table `relid` and its server.
    pub(crate) unsafe fn of_table(relid: pg_sys::Oid) -> TableOptions {
        let table = pg_sys::GetForeignTable(relid);
        let server = pg_sys::GetForeignServer((*table).serverid);
        let topts = options_map((*table).options);
        let sopts = options_map((*server).options);
        TableOptions {
            root: sopts.get("root").cloned().unwrap_or_default(),
            files: topts.get("files").cloned().unwrap_or_default(),
            format: topts.get("format").cloned(),
            filename_column: topts.get("filename_column").cloned(),
        }
    }
}

/// Whether the current user may read server files (superuser or `pg_read_server_files`).
pub(crate) fn may_read_server_files() -> bool {
    unsafe {
        pg_sys::superuser()
            || pg_sys::has_privs_of_role(pg_sys::GetUserId(), pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES))
    }
}

/// Whether the current user may write server files (superuser or `pg_write_server_files`).
pub(crate) fn may_write_server_files() -> bool {
    unsafe {
        pg_sys::superuser()
            || pg_sys::has_privs_of_role(pg_sys::GetUserId(), pg_sys::Oid::from(pg_sys::ROLE_PG_WRITE_SERVER_FILES))
    }
}

fn parse(options: Vec<Option<String>>) -> Result<HashMap<String, String>, FilesFdwError> {
    let mut map = HashMap::new();
    for o in options.into_iter().flatten() {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

fn check_names(map: &HashMap<String, String>, allowed: &[&str], what: &str) -> Result<(), FilesFdwError> {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            let hint = if allowed.is_empty() {
                format!("{what} takes no options")
            } else {
                format!("valid {what} options: {}", allowed.join(", "))
            };
            return Err(FilesFdwError::new(
                PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME,
                format!("skycat_files: invalid option \"{k}\" ({hint})"),
            ));
        }
    }
    Ok(())
}

fn require_file_access(what: &str) -> Result<(), FilesFdwError> {
    if may_read_server_files() {
        Ok(())
    } else {
        Err(FilesFdwError::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("skycat_files: only superusers or members of pg_read_server_files may set {what}"),
        ))
    }
}

/// The value of a required option, or an error naming it and what it should be.
fn required<'m>(
    map: &'m HashMap<String, String>,
    kind: &str,
    name: &str,
    what: &str,
) -> Result<&'m String, FilesFdwError> {
    map.get(name).ok_or_else(|| {
        FilesFdwError::new(
            PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
            format!("skycat_files: {kind} \"{name}\" is required ({what})"),
        )
    })
}

pub(crate) fn validate(options: Vec<Option<String>>, catalog: Option<pg_sys::Oid>) -> Result<(), FilesFdwError> {
    let map = parse(options)?;
    let Some(catalog) = catalog else { return Ok(()) };
    if catalog == pg_sys::ForeignServerRelationId {
        check_names(&map, SERVER_OPTIONS, "server")?;
        let root = required(&map, "server option", "root", "an absolute directory")?;
        require_file_access("the server option \"root\"")?;
        paths::check_root(root)?;
    } else if catalog == pg_sys::ForeignTableRelationId {
        check_names(&map, TABLE_OPTIONS, "foreign table")?;
        let files = required(&map, "foreign table option", "files", "a glob relative to the server's root")?;
        require_file_access("the foreign table option \"files\"")?;
        paths::check_pattern(files)?;
        if let Some(f) = map.get("format") {
            FileFormat::resolve("", Some(f))?;
        }
    } else if catalog == pg_sys::ForeignDataWrapperRelationId {
        check_names(&map, &[], "the skycat_files wrapper")?;
    } else if catalog == pg_sys::UserMappingRelationId {
        check_names(&map, &[], "a user mapping")?;
    } else if catalog == pg_sys::AttributeRelationId {
        check_names(&map, &[], "a column")?;
    }
    Ok(())
}
