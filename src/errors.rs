//! Turning `skycat_core` errors into PostgreSQL errors with the right SQLSTATE.

use pgrx::{ereport, PgLogLevel, PgSqlErrorCode};
use skycat_core::SkyError;

/// Unwraps a core result or raises an ERROR naming the SQL function.
pub trait OrSqlError<T> {
    fn or_sql_error(self, function: &str) -> T;
}

impl<T> OrSqlError<T> for Result<T, SkyError> {
    fn or_sql_error(self, function: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(function, &e),
        }
    }
}

fn raise(function: &str, e: &SkyError) -> ! {
    let code = match e {
        SkyError::InvalidArgument { .. } | SkyError::InvalidRow { .. } => {
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
        }
        SkyError::TooLarge { .. } | SkyError::TooManyPairs { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        SkyError::Cancelled => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
    };
    ereport!(PgLogLevel::ERROR, code, format!("skycat.{function}: {e}"));
    unreachable!("ereport(ERROR) does not return")
}

/// Raises 22P02 (invalid_text_representation) for bad text input of a skycat type, naming
/// the keyword at fault.
pub fn invalid_text(type_name: &str, detail: &str) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type skycat.{type_name}: {detail}")
    );
    unreachable!("ereport(ERROR) does not return")
}
