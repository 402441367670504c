//! The units of a parallel `skycat_files` scan as every process sees them: the header in
//! dynamic shared memory (an atomic counter and the length of the leader's unit list that
//! follows it) and a process's claim on the next unit. Shared by the scan (exec.rs, which
//! claims) and the parallel callbacks (parallel.rs, which set it up), so neither imports the
//! other's internals.

use std::sync::atomic::{AtomicU64, Ordering};

#[repr(C)]
pub(super) struct SharedHeader {
    /// The next unit to hand out.
    pub(super) next: AtomicU64,
    pub(super) blob_len: u64,
}

/// A process's view of the shared units.
pub(super) struct SharedUnits {
    pub(super) header: *mut SharedHeader,
    /// The counter to use if no shared chunk was set up (a leader whose Gather ran without
    /// a parallel context): then this process reads every unit itself.
    pub(super) local: AtomicU64,
    pub(super) units: Vec<(usize, usize)>,
    /// The blob the leader built in `EstimateDSMForeignScan`, copied out in `InitializeDSM`.
    pub(super) pending: Option<Vec<u8>>,
}

impl SharedUnits {
    /// The next `(file index, row group)` nobody has claimed yet.
    pub(super) fn claim(&self) -> Option<(usize, usize)> {
        // SAFETY: the header lives in the parallel context's DSM segment, which outlives
        // the scan in every process attached to it.
        let counter = if self.header.is_null() { &self.local } else { unsafe { &(*self.header).next } };
        let k = counter.fetch_add(1, Ordering::Relaxed) as usize;
        self.units.get(k).copied()
    }
}
