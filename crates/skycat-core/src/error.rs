//! Errors raised by skycat-core.
//!
//! Every error names the SQL-visible argument and the allowed range, so the pgrx glue can
//! turn it into a PostgreSQL error (SQLSTATE 22023) without inventing its own wording.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SkyError {
    /// An argument is outside its domain (NaN, infinite, out of range, non-positive ...).
    #[error("argument \"{argument}\" must be {allowed}, got {got}")]
    InvalidArgument { argument: &'static str, allowed: String, got: String },
    /// One row of a query's input is invalid (cross-match inputs).
    #[error("{side} input row with id {id}: {detail}")]
    InvalidRow { side: &'static str, id: i64, detail: String },
    /// A cross-match would hold more candidate pairs in memory than allowed.
    #[error("the cross-match found more than {limit} pairs within the radius (the limit on pairs held in memory); use a smaller radius or split the input")]
    TooManyPairs { limit: usize },
    /// The caller asked the work to stop (query cancel, statement_timeout).
    #[error("cancelled")]
    Cancelled,
    /// The request is well-formed but would produce an unreasonably large answer.
    #[error("the result would have about {estimated} {what}, more than the limit of {limit}; {hint}")]
    TooLarge { what: &'static str, estimated: u64, limit: u64, hint: &'static str },
    /// Memory for the request could not be reserved (the host reports it as out of memory).
    #[error("could not reserve memory for {what} ({bytes} bytes)")]
    OutOfMemory { what: &'static str, bytes: u64 },
}

impl SkyError {
    pub fn invalid(argument: &'static str, allowed: impl Into<String>, got: impl ToString) -> Self {
        SkyError::InvalidArgument { argument, allowed: allowed.into(), got: got.to_string() }
    }
}

pub type SkyResult<T> = Result<T, SkyError>;
