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

pub fn raise(function: &str, e: &SkyError) -> ! {
    let code = match e {
        SkyError::InvalidArgument { .. } | SkyError::InvalidRow { .. } => {
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
        }
        SkyError::TooLarge { .. } | SkyError::TooManyPairs { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        SkyError::OutOfMemory { .. } => PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        SkyError::Cancelled => {
            // Let PostgreSQL raise its own error for what is pending (cancel, statement
            // timeout, or terminate, which ends the session); if interrupts are held off,
            // stop anyway with the cancel SQLSTATE.
            pgrx::check_for_interrupts!();
            PgSqlErrorCode::ERRCODE_QUERY_CANCELED
        }
    };
    ereport!(PgLogLevel::ERROR, code, format!("skycat.{function}: {e}"));
    unreachable!("ereport(ERROR) does not return")
}

/// `value`, or 22003 (numeric_value_out_of_range) when every argument is finite but the value
/// is not: the arithmetic overflowed (or gave NaN), as PostgreSQL's own float8 operators
/// report it. Non-finite arguments pass their NaN / infinity through (skycat's NaN policy).
pub fn finite_or_out_of_range(function: &str, value: f64, args: &[f64]) -> f64 {
    if value.is_finite() || args.iter().any(|a| !a.is_finite()) {
        return value;
    }
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        format!("skycat.{function}: value out of range: the result for these arguments is not a finite number")
    );
    unreachable!("ereport(ERROR) does not return")
}

/// Whether PostgreSQL has a query cancel or a session termination pending: what skycat-core's
/// long loops poll (see `skycat_core::interrupt`). Reading the flags is safe from any thread.
pub fn interrupt_pending() -> bool {
    unsafe {
        std::ptr::addr_of!(pgrx::pg_sys::QueryCancelPending).read_volatile() != 0
            || std::ptr::addr_of!(pgrx::pg_sys::ProcDiePending).read_volatile() != 0
    }
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
