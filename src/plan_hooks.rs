//! Planner hooks for statements that `dwithin`'s rewrite (src/planner.rs) turned into index
//! probes, one per row of the other side.
//!
//! * Cost (a declination-partitioned indexed side, where the rewrite adds the circle's
//!   declination band for run-time partition pruning): PostgreSQL prices a parameterised
//!   Append as the sum of all its partitions, although run-time pruning keeps only the one or
//!   two stripes a probe's circle meets: with 180 stripes every probe looked 180 times dearer
//!   than it is. `set_rel_pathlist` scales those Append
//!   paths to the stripes a circle of the radius meets (evenly spread stripes assumed).
//! * JIT: a statement whose plan probes an index once per row of the other side (a `dwithin`
//!   join or LATERAL cone, or any probe of a partitioned table) runs without JIT. Its time is
//!   index descents and calls into skycat's C functions, which JIT cannot make faster, while
//!   compiling costs 0.1-0.3 s for a plain join and, on a partitioned table, tens of seconds
//!   (every partition's expressions are compiled at executor start whether pruned or not:
//!   ~1,100 functions for 180 stripes, 8.6 s, not cancellable). `planner` clears the plan's
//!   JIT flags; a statement planned before skycat's library was loaded (the first one of a
//!   session, which loads it) is caught by `ExecutorStart` instead.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::pg_sys::{Node, NodeTag, Oid};
use skycat_core::sphere::DEG_PER_ARCSEC;

use crate::planner::{const_f64, list_ptrs as ptrs, ASSUMED_RADIUS_ARCSEC};

thread_local! {
    /// `skycat.dec_band_lo`'s OID once the rewrite has used it (InvalidOid before).
    static DEC_BAND_LO: Cell<Oid> = const { Cell::new(Oid::INVALID) };
    /// Nesting depth of our planner hook (0: planning without it).
    static PLANNER_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The statement being planned holds a probe (see the module comment).
    static PROBE_STATEMENT: Cell<bool> = const { Cell::new(false) };
    /// A probe was planned without our planner hook: the next executor start is its statement.
    static PENDING_JIT_OFF: Cell<bool> = const { Cell::new(false) };
}

static mut PREV_PLANNER: pg_sys::planner_hook_type = None;
static mut PREV_SET_REL_PATHLIST: pg_sys::set_rel_pathlist_hook_type = None;
static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;

/// Installs the hooks (from `_PG_init`, once per backend).
pub fn install() {
    // SAFETY: _PG_init runs once, single-threaded, before any of the hooks can be called.
    unsafe {
        PREV_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(planner);
        PREV_SET_REL_PATHLIST = pg_sys::set_rel_pathlist_hook;
        pg_sys::set_rel_pathlist_hook = Some(set_rel_pathlist);
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
    }
}

/// Called by the rewrite when it bounds a partitioned table's declination.
pub fn note_dec_band(dec_band_lo: Oid) {
    DEC_BAND_LO.set(dec_band_lo);
}

/// Called by the rewrite for a probe per row of the other side (or of a partitioned table).
pub fn note_probe_statement() {
    if PLANNER_DEPTH.get() > 0 {
        PROBE_STATEMENT.set(true);
    } else {
        PENDING_JIT_OFF.set(true);
    }
}

/// Restores the per-statement state when planning ends, normally or by an error.
struct PlanningScope {
    outer_probe: bool,
}

impl Drop for PlanningScope {
    fn drop(&mut self) {
        PLANNER_DEPTH.set(PLANNER_DEPTH.get() - 1);
        PROBE_STATEMENT.set(self.outer_probe);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: std::ffi::c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    let _scope = PlanningScope { outer_probe: PROBE_STATEMENT.replace(false) };
    PLANNER_DEPTH.set(PLANNER_DEPTH.get() + 1);
    // SAFETY: the arguments are PostgreSQL's, passed on unchanged.
    unsafe {
        let stmt = match PREV_PLANNER {
            Some(prev) => prev(parse, query_string, cursor_options, bound_params),
            None => pg_sys::standard_planner(parse, query_string, cursor_options, bound_params),
        };
        if PROBE_STATEMENT.get() && !stmt.is_null() {
            (*stmt).jitFlags = pg_sys::PGJIT_NONE as i32;
        }
        stmt
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn executor_start(query_desc: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    // SAFETY: the arguments are PostgreSQL's, passed on unchanged.
    unsafe {
        if PENDING_JIT_OFF.replace(false) && !(*query_desc).plannedstmt.is_null() {
            (*(*query_desc).plannedstmt).jitFlags = pg_sys::PGJIT_NONE as i32;
        }
        match PREV_EXECUTOR_START {
            Some(prev) => prev(query_desc, eflags),
            None => pg_sys::standard_ExecutorStart(query_desc, eflags),
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn set_rel_pathlist(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    rti: pg_sys::Index,
    rte: *mut pg_sys::RangeTblEntry,
) {
    // SAFETY: the arguments are PostgreSQL's; the lists read are the planner's own.
    unsafe {
        if let Some(prev) = PREV_SET_REL_PATHLIST {
            prev(root, rel, rti, rte);
        }
        let band_fn = DEC_BAND_LO.get();
        if band_fn == Oid::INVALID || rte.is_null() || (*rte).relkind as u8 != pg_sys::RELKIND_PARTITIONED_TABLE {
            return;
        }
        for path in ptrs((*rel).pathlist) {
            if (*path).type_ != NodeTag::T_AppendPath {
                continue;
            }
            let append = path.cast::<pg_sys::AppendPath>();
            let param_info = (*append).path.param_info;
            if param_info.is_null() {
                continue;
            }
            let Some(radius) = band_radius((*param_info).ppi_clauses, band_fn) else {
                continue;
            };
            let n = ptrs((*append).subpaths).len() as f64;
            if n < 2.0 {
                continue;
            }
            // Stripes a circle meets, out of n spread over 180 degrees of declination.
            let met = (1.0 + 2.0 * radius * DEG_PER_ARCSEC * n / 180.0).min(n);
            let share = met / n;
            let p = &mut (*append).path;
            p.total_cost = p.startup_cost + (p.total_cost - p.startup_cost) * share;
            p.rows = (p.rows * share).max(1.0);
        }
    }
}

/// The radius of the declination band among a path's parameterised clauses, if there is one
/// (`dec >= skycat.dec_band_lo(outer_dec, radius)` with a constant radius).
unsafe fn band_radius(clauses: *mut pg_sys::List, band_fn: Oid) -> Option<f64> {
    unsafe {
        for ri in ptrs(clauses) {
            if (*ri).type_ != NodeTag::T_RestrictInfo {
                continue;
            }
            let clause = (*ri.cast::<pg_sys::RestrictInfo>()).clause.cast::<Node>();
            if clause.is_null() || (*clause).type_ != NodeTag::T_OpExpr {
                continue;
            }
            let args = ptrs((*clause.cast::<pg_sys::OpExpr>()).args);
            let Some(&bound) = args.get(1) else { continue };
            if bound.is_null() || (*bound).type_ != NodeTag::T_FuncExpr {
                continue;
            }
            let f = &*bound.cast::<pg_sys::FuncExpr>();
            if f.funcid != band_fn {
                continue;
            }
            // A radius not known at planning time: assume a generous match radius.
            let r = ptrs(f.args).get(1).and_then(|&r| const_f64(r)).unwrap_or(ASSUMED_RADIUS_ARCSEC);
            return (r.is_finite() && r >= 0.0).then_some(r);
        }
        None
    }
}
