//! Long computations in skycat-core that PostgreSQL can cancel.
//!
//! The work runs on a helper thread (which uses rayon and never touches PostgreSQL); the
//! backend thread waits for it and, while waiting, watches for a pending query cancel or
//! termination (pg_cancel_backend, statement_timeout, pg_terminate_backend). When one
//! arrives it raises the core's stop flag, joins the helper (so nothing borrowed is still in
//! use) and lets PostgreSQL raise its error. Cancellation therefore takes effect within the
//! core's own check interval (a few milliseconds), not at the end of the work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pgrx::prelude::*;

use crate::errors::interrupt_pending;

/// Runs `work(stop_flag)` on a helper thread and returns its result; if the query is
/// cancelled meanwhile, raises PostgreSQL's cancel error instead.
pub fn run_cancellable<T: Send>(work: impl FnOnce(&AtomicBool) -> T + Send) -> T {
    let stop = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let stop_ref = &stop;
        let handle = s.spawn(move || {
            let r = work(stop_ref);
            let _ = done_tx.send(());
            r
        });
        loop {
            match done_rx.recv_timeout(Duration::from_millis(20)) {
                Err(mpsc::RecvTimeoutError::Timeout) if interrupt_pending() => stop.store(true, Ordering::Relaxed),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => break, // finished, or the helper panicked (join re-raises it)
            }
        }
        handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    if stop.load(Ordering::Relaxed) {
        pgrx::check_for_interrupts!();
        // Interrupts were held off: stop anyway, with the same SQLSTATE.
        ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_QUERY_CANCELED, "canceling statement due to user request");
    }
    out
}
