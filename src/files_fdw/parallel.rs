//! Parallel `skycat_files` scans: the leader prunes once and publishes the row groups left
//! to read in dynamic shared memory; the leader and every worker then claim them one at a
//! time from an atomic counter, so a table of a few large files still spreads over all
//! processes and no row group is read twice.
//!
//! Shared memory layout (one chunk per scan node): a [`SharedHeader`] followed by a JSON
//! blob of the file list (relative and absolute paths, as the leader expanded the glob) and
//! the `(file, row group)` units. Workers never expand the glob themselves, so every process
//! reads the same files even if the directory changes during the query.

use super::exec::{evaluate_conditions, prune_file, state_of};
use super::plan::expand_files;
use super::units::{SharedHeader, SharedUnits};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use skycat_core::files::paths::{hive_partitions, MatchedFile};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) fn install(routine: &mut supabase_wrappers::FdwRoutine<pgrx::AllocatedByRust>) {
    routine.IsForeignScanParallelSafe = Some(is_parallel_safe);
    routine.EstimateDSMForeignScan = Some(estimate_dsm);
    routine.InitializeDSMForeignScan = Some(initialize_dsm);
    routine.ReInitializeDSMForeignScan = Some(reinitialize_dsm);
    routine.InitializeWorkerForeignScan = Some(initialize_worker);
}

/// File scans are parallel safe: every process opens the files read-only by itself.
#[pg_guard]
unsafe extern "C-unwind" fn is_parallel_safe(
    _root: *mut pg_sys::PlannerInfo,
    _rel: *mut pg_sys::RelOptInfo,
    _rte: *mut pg_sys::RangeTblEntry,
) -> bool {
    true
}

/// What the leader hands every worker in the shared chunk: the expanded files (relative and
/// absolute paths) and the (file, row group) units left after pruning.
#[derive(Serialize, Deserialize)]
struct SharedBlob {
    files: Vec<(String, String)>,
    units: Vec<(usize, usize)>,
}

/// Leader: evaluates the pruning conditions, expands the glob, prunes every file once and
/// sizes the shared chunk for the resulting unit list.
#[pg_guard]
unsafe extern "C-unwind" fn estimate_dsm(
    node: *mut pg_sys::ForeignScanState,
    _pcxt: *mut pg_sys::ParallelContext,
) -> pg_sys::Size {
    let s = state_of(node).expect("scan state exists");
    s.conditions = Some(evaluate_conditions(node, s, true));
    s.files = Some(expand_files(&s.opts));
    s.executed = true;
    let mut units = Vec::new();
    for index in 0..s.files.as_ref().map_or(0, Vec::len) {
        if let Some((_, row_groups)) = prune_file(s, index) {
            units.extend(row_groups.into_iter().map(|rg| (index, rg)));
        }
    }
    let files = s.files.as_ref().expect("expanded above");
    let blob = serde_json::to_vec(&SharedBlob {
        files: files.iter().map(|f| (f.relative.clone(), f.absolute.to_string_lossy().into_owned())).collect(),
        units: units.clone(),
    })
    .expect("the unit list serialises");
    let size = std::mem::size_of::<SharedHeader>() + blob.len();
    s.parallel =
        Some(SharedUnits { header: std::ptr::null_mut(), local: AtomicU64::new(0), units, pending: Some(blob) });
    size
}

/// Leader: writes the header and the unit list into the chunk PostgreSQL allocated.
#[pg_guard]
unsafe extern "C-unwind" fn initialize_dsm(
    node: *mut pg_sys::ForeignScanState,
    _pcxt: *mut pg_sys::ParallelContext,
    coordinate: *mut std::ffi::c_void,
) {
    let s = state_of(node).expect("scan state exists");
    let p = s.parallel.as_mut().expect("EstimateDSMForeignScan ran first");
    let blob = p.pending.take().expect("estimated once");
    let header = coordinate as *mut SharedHeader;
    header.write(SharedHeader { next: AtomicU64::new(0), blob_len: blob.len() as u64 });
    std::ptr::copy_nonoverlapping(blob.as_ptr(), header.add(1) as *mut u8, blob.len());
    p.header = header;
}

/// Leader, before a rescan: every unit is to be read again.
#[pg_guard]
unsafe extern "C-unwind" fn reinitialize_dsm(
    node: *mut pg_sys::ForeignScanState,
    _pcxt: *mut pg_sys::ParallelContext,
    coordinate: *mut std::ffi::c_void,
) {
    (*(coordinate as *mut SharedHeader)).next.store(0, Ordering::Relaxed);
    if let Some(p) = state_of(node).and_then(|s| s.parallel.as_mut()) {
        p.local.store(0, Ordering::Relaxed);
    }
}

/// Worker: reads the leader's file list and units; pruning is already done.
#[pg_guard]
unsafe extern "C-unwind" fn initialize_worker(
    node: *mut pg_sys::ForeignScanState,
    _toc: *mut pg_sys::shm_toc,
    coordinate: *mut std::ffi::c_void,
) {
    let s = state_of(node).expect("scan state exists");
    let header = coordinate as *mut SharedHeader;
    let bytes = std::slice::from_raw_parts(header.add(1) as *const u8, (*header).blob_len as usize);
    let blob: SharedBlob = serde_json::from_slice(bytes).expect("the unit list the leader wrote");
    let files = blob
        .files
        .into_iter()
        .map(|(relative, absolute)| MatchedFile {
            partitions: hive_partitions(&relative),
            absolute: PathBuf::from(absolute),
            relative,
        })
        .collect();
    let units = blob.units;
    s.files = Some(files);
    s.conditions = Some(Vec::new());
    s.executed = true;
    s.parallel = Some(SharedUnits { header, local: AtomicU64::new(0), units, pending: None });
}
