//! Cooperative cancellation of long loops.
//!
//! Core code knows nothing about PostgreSQL, but a loop that can run for seconds must stop
//! when the query is cancelled (pg_cancel_backend, statement_timeout, pg_terminate_backend).
//! The host installs a *poll* once ([`install`]): a cheap, thread-safe function that says
//! whether a stop was requested (the extension reads PostgreSQL's pending-interrupt flags,
//! which is safe from any thread). Long loops call [`Ticker::tick`] every iteration; it polls
//! every [`POLL_EVERY`] iterations and returns [`SkyError::Cancelled`], which the caller
//! propagates with `?` so nothing half-built escapes. Without a poll installed (tests, the
//! simulator) the checks cost one atomic load and never fire.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{SkyError, SkyResult};

/// The installed poll, as a function pointer stored in an integer (0: none).
static POLL: AtomicUsize = AtomicUsize::new(0);

/// Iterations between two polls: a poll is a few loads, an iteration of the loops that use
/// this costs 0.1-10 microseconds, so a cancel lands within a few milliseconds.
pub const POLL_EVERY: u32 = 256;

/// Installs the host's poll (idempotent: the last one wins).
pub fn install(poll: fn() -> bool) {
    POLL.store(poll as usize, Ordering::Relaxed);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    match POLL.load(Ordering::Relaxed) {
        0 => false,
        p => {
            // SAFETY: the only non-zero values stored are `fn() -> bool` pointers (install).
            let poll: fn() -> bool = unsafe { std::mem::transmute::<usize, fn() -> bool>(p) };
            poll()
        }
    }
}

/// `Err(Cancelled)` when a stop was requested.
pub fn check() -> SkyResult<()> {
    if requested() {
        Err(SkyError::Cancelled)
    } else {
        Ok(())
    }
}

/// Counts a loop's iterations and polls every [`POLL_EVERY`].
#[derive(Debug, Default)]
pub struct Ticker {
    n: u32,
}

impl Ticker {
    pub fn new() -> Self {
        Ticker { n: 0 }
    }

    /// Call once per iteration.
    #[inline]
    pub fn tick(&mut self) -> SkyResult<()> {
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(POLL_EVERY) {
            check()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    static STOP: AtomicBool = AtomicBool::new(false);
    /// Tests that raise the stop flag run one at a time (the flag is process-wide).
    pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

    fn poll() -> bool {
        STOP.load(Ordering::Relaxed)
    }

    /// Runs `f` with a stop already requested, then clears it.
    pub(crate) fn with_stop_requested<T>(f: impl FnOnce() -> T) -> T {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install(poll);
        STOP.store(true, Ordering::Relaxed);
        let out = f();
        STOP.store(false, Ordering::Relaxed);
        out
    }

    #[test]
    fn ticker_fires_within_poll_every_iterations() {
        let fired_at = with_stop_requested(|| {
            let mut t = Ticker::new();
            (1..=10 * POLL_EVERY).find(|_| t.tick().is_err())
        });
        assert_eq!(fired_at, Some(POLL_EVERY));
        // Once cleared, nothing fires.
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut t = Ticker::new();
        assert!((0..10 * POLL_EVERY).all(|_| t.tick().is_ok()));
    }
}
