//! Executing a `skycat_files` scan: files opened one at a time, row groups pruned with the
//! now-known parameter values, Arrow batches decoded into the scan slot, and EXPLAIN output
//! of files and row groups read versus skipped.

use super::datum::TypedColumn;
use super::plan::{
    declared_columns, expand_files, file_column_index, kept_row_groups, open_catalog, partition_datum,
    partitions_match, read_scan_plan, DeclaredColumn, PruneCounts, ScanPlan,
};
use super::units::SharedUnits;
use super::{raise_files_error, TableOptions};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use skycat_core::files::paths::MatchedFile;
use skycat_core::files::prune::Condition;
use skycat_core::files::reader::{BatchReader, CatalogFile};
use skycat_core::files::types::{can_hold, PgKind};
use skycat_core::files::FilesError;
use std::ffi::CString;
use std::ptr;

/// Rows per decoded batch: large enough to amortise decoding, small enough for the cache.
const BATCH_ROWS: usize = 8192;

pub(super) fn install(routine: &mut supabase_wrappers::FdwRoutine<pgrx::AllocatedByRust>) {
    super::parallel::install(routine);
    routine.BeginForeignScan = Some(begin_foreign_scan);
    routine.IterateForeignScan = Some(iterate_foreign_scan);
    routine.ReScanForeignScan = Some(rescan_foreign_scan);
    routine.EndForeignScan = Some(end_foreign_scan);
    routine.ExplainForeignScan = Some(explain_foreign_scan);
}

/// Where a needed attribute's values come from in the current file.
enum Source {
    /// Column `index` of the projected batch, converted to `kind`.
    File { index: usize, kind: PgKind },
    /// The same value for every row of the file (partition value, file name, or NULL).
    Constant(Datum, bool),
}

pub(super) struct OpenFile {
    relative: String,
    reader: BatchReader,
    sources: Vec<(usize, Source)>, // (attribute index, source)
    kinds: Vec<PgKind>,            // target kind by batch column index
    names: Vec<String>,            // declared column name by batch column index
    batch: Vec<TypedColumn>,       // by batch column index
    rows: usize,
    row: usize,
    /// The current batch reads without calling PostgreSQL or failing (see `fast_row`).
    fast: bool,
    /// Where rows come from, for error messages: the row groups read, in order, with their
    /// row counts (Parquet; empty for Arrow IPC), and the rows of earlier batches.
    row_groups: Vec<(usize, u64)>,
    rows_before_batch: u64,
}

impl OpenFile {
    /// "row group G, row R" (R counted within the row group) of row `i` of the current batch.
    fn location(&self, i: usize) -> String {
        let mut r = self.rows_before_batch + i as u64;
        for &(g, n) in &self.row_groups {
            if r < n {
                return format!("row group {g}, row {r}");
            }
            r -= n;
        }
        format!("row {}", self.rows_before_batch + i as u64)
    }

    /// Raises 22000 (data_exception) for a value PostgreSQL cannot store, naming the file,
    /// row group and column.
    fn value_error(&self, column: usize, i: usize, message: &str) -> ! {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!(
                "skycat_files: file \"{}\" {}, column \"{}\": {message}",
                self.relative,
                self.location(i),
                self.names[column]
            )
        );
        unreachable!()
    }
}

pub(super) struct ScanState {
    plan: ScanPlan,
    pub(super) opts: TableOptions,
    table: String,
    columns: Vec<Option<DeclaredColumn>>,
    value_exprs: *mut pg_sys::List, // ExprState per fdw_exprs entry
    pub(super) conditions: Option<Vec<(i16, Condition)>>,
    pub(super) files: Option<Vec<MatchedFile>>,
    next_file: usize,
    current: Option<OpenFile>,
    file_ctx: pg_sys::MemoryContext,
    batch_ctx: pg_sys::MemoryContext,
    pub(super) actual: PruneCounts,
    files_read: u64,
    pub(super) executed: bool,
    /// Set in a parallel scan: the row groups to read are claimed one at a time from
    /// shared memory instead of walking `files` in order.
    pub(super) parallel: Option<SharedUnits>,
    /// The file a parallel scan's process read last, with its footer (see claim_next_row_group).
    last_catalog: Option<(usize, CatalogFile)>,
}

/// Owner of the state, freed by a reset callback of the query's memory context so an
/// error mid-scan (no EndForeignScan) still closes files and frees Rust memory.
struct Holder {
    state: Option<Box<ScanState>>,
}

unsafe extern "C-unwind" fn free_holder(arg: *mut std::ffi::c_void) {
    drop(Box::from_raw(arg as *mut Holder));
}

pub(super) unsafe fn state_of<'a>(node: *mut pg_sys::ForeignScanState) -> Option<&'a mut ScanState> {
    let h = (*node).fdw_state as *mut Holder;
    if h.is_null() {
        return None;
    }
    (*h).state.as_deref_mut()
}

unsafe fn new_context(parent: pg_sys::MemoryContext, name: &'static std::ffi::CStr) -> pg_sys::MemoryContext {
    pg_sys::AllocSetContextCreateInternal(
        parent,
        name.as_ptr(),
        pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
        pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
        pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
    )
}

fn relation_name(rel: pg_sys::Relation) -> String {
    unsafe { std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned() }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: i32) {
    let plan_node = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let rel = (*node).ss.ss_currentRelation;
    let relid = (*rel).rd_id;
    let explain_only = eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0;
    let cxt = pg_sys::CurrentMemoryContext;
    let state = ScanState {
        plan: read_scan_plan(plan_node),
        opts: TableOptions::of_table(relid),
        table: relation_name(rel),
        columns: declared_columns((*rel).rd_att),
        value_exprs: if explain_only {
            ptr::null_mut()
        } else {
            pg_sys::ExecInitExprList((*plan_node).fdw_exprs, node as *mut pg_sys::PlanState)
        },
        conditions: None,
        files: None,
        next_file: 0,
        current: None,
        file_ctx: new_context(cxt, c"skycat_files file"),
        batch_ctx: new_context(cxt, c"skycat_files batch"),
        actual: PruneCounts::default(),
        files_read: 0,
        executed: false,
        parallel: None,
        last_catalog: None,
    };
    let holder = Box::into_raw(Box::new(Holder { state: Some(Box::new(state)) }));
    let cb =
        pg_sys::palloc0(std::mem::size_of::<pg_sys::MemoryContextCallback>()) as *mut pg_sys::MemoryContextCallback;
    (*cb).func = Some(free_holder);
    (*cb).arg = holder as *mut std::ffi::c_void;
    pg_sys::MemoryContextRegisterResetCallback(cxt, cb);
    (*node).fdw_state = holder as *mut std::ffi::c_void;
}

/// Evaluates the pushed-down values (constants and parameters) for this execution.
/// `query_constant_only` keeps only values fixed for the whole query (constants and
/// parameters supplied with it): a parallel scan prunes once for all its rescans, and an
/// executor parameter (PARAM_EXEC) may change between them.
pub(super) unsafe fn evaluate_conditions(
    node: *mut pg_sys::ForeignScanState,
    s: &ScanState,
    query_constant_only: bool,
) -> Vec<(i16, Condition)> {
    let econtext = (*node).ss.ps.ps_ExprContext;
    let mut out = Vec::new();
    for c in &s.plan.conditions {
        let value = match c.expr {
            None => None,
            Some(i) => {
                let es = (*(*s.value_exprs).elements.add(i)).ptr_value as *mut pg_sys::ExprState;
                if query_constant_only && !is_query_constant((*es).expr as *mut pg_sys::Node) {
                    continue;
                }
                let mut isnull = false;
                let d = pg_sys::ExecEvalExprSwitchContext(es, econtext, &mut isnull);
                let typ = pg_sys::exprType((*es).expr as *mut pg_sys::Node);
                Some((d, isnull, typ))
            }
        };
        if let Some(cond) = c.evaluate(value) {
            out.push((c.attno, cond));
        }
    }
    out
}

/// A constant or a parameter supplied with the query (not one set by the executor).
unsafe fn is_query_constant(n: *mut pg_sys::Node) -> bool {
    match (*n).type_ {
        pg_sys::NodeTag::T_Const => true,
        pg_sys::NodeTag::T_Param => (*(n as *mut pg_sys::Param)).paramkind == pg_sys::ParamKind::PARAM_EXTERN,
        _ => false,
    }
}

fn schema_error(file: &MatchedFile, message: String) -> ! {
    raise_files_error(FilesError::Schema { path: file.absolute.display().to_string(), message })
}

/// Opens `files[index]` if its partition values and row-group statistics leave row groups
/// that may hold matching rows, counting what is skipped; `None` if nothing is left to read.
pub(super) unsafe fn prune_file(s: &mut ScanState, index: usize) -> Option<(CatalogFile, Vec<usize>)> {
    let file = &s.files.as_ref().expect("files expanded")[index];
    let conditions = s.conditions.as_ref().expect("conditions evaluated");
    s.actual.files += 1;
    if !partitions_match(file, &s.columns, conditions) {
        s.actual.files_skipped += 1;
        return None;
    }
    let cat = open_catalog(&s.opts, file);
    let row_groups = kept_row_groups(&cat, &s.columns, conditions);
    let total = cat.num_row_groups() as u64;
    s.actual.row_groups += total;
    s.actual.row_groups_skipped += total - row_groups.len() as u64;
    (!row_groups.is_empty()).then_some((cat, row_groups))
}

/// Opens the next file that may hold matching rows (serial scans); `None` when no file is left.
unsafe fn open_next_file(s: &mut ScanState) -> Option<OpenFile> {
    while s.next_file < s.files.as_ref().expect("files expanded").len() {
        let index = s.next_file;
        s.next_file += 1;
        if let Some((cat, row_groups)) = prune_file(s, index) {
            return Some(open_file(s, index, &cat, row_groups));
        }
    }
    None
}

/// Claims the next row group of a parallel scan from shared memory and opens it; `None`
/// when every row group has been claimed.
///
/// Consecutive claims of one process mostly fall in the same file (units are handed out in
/// file order), so the last opened file is kept: its footer is read once per process, not
/// once per row group.
unsafe fn claim_next_row_group(s: &mut ScanState) -> Option<OpenFile> {
    let (index, row_group) = s.parallel.as_ref().expect("parallel scan").claim()?;
    let file = &s.files.as_ref().expect("files expanded")[index];
    let cat = match s.last_catalog.take() {
        Some((i, cat)) if i == index => cat,
        _ => open_catalog(&s.opts, file),
    };
    if row_group >= cat.num_row_groups() {
        raise_files_error(FilesError::Corrupt {
            path: file.absolute.display().to_string(),
            message: format!("has {} row groups, {} when the scan started", cat.num_row_groups(), row_group + 1),
        })
    }
    let opened = open_file(s, index, &cat, vec![row_group]);
    s.last_catalog = Some((index, cat));
    Some(opened)
}

/// Starts reading `row_groups` of `files[index]`: maps each needed attribute to a file
/// column (checking that its declared type can hold the file's), a partition value or the
/// file name.
unsafe fn open_file(s: &mut ScanState, index: usize, cat: &CatalogFile, row_groups: Vec<usize>) -> OpenFile {
    let file = &s.files.as_ref().expect("files expanded")[index];
    pg_sys::MemoryContextReset(s.file_ctx);
    let old = pg_sys::MemoryContextSwitchTo(s.file_ctx);
    let mut projection = Vec::new();
    let mut kinds = Vec::new();
    let mut names = Vec::new();
    let mut sources = Vec::new();
    for &att in &s.plan.needed {
        let a = att as usize - 1;
        let Some(col) = &s.columns[a] else { continue };
        let source = if s.opts.filename_column.as_deref() == Some(col.name.as_str()) {
            Source::Constant(partition_datum(col, &file.relative), false)
        } else if let Some(v) = file.partition_value(&col.name) {
            Source::Constant(partition_datum(col, v), false)
        } else {
            let Some(idx) = file_column_index(cat, col) else {
                schema_error(file, format!("has no column matching \"{}\" of foreign table \"{}\"", col.name, s.table))
            };
            let field = cat.schema().field(idx);
            let holds = col.kind.as_ref().is_some_and(|k| can_hold(k, field.data_type()));
            if !holds {
                let mut typname = pg_sys::format_type_be(col.typoid);
                if typname.is_null() {
                    typname = c"?".as_ptr() as *mut _;
                }
                schema_error(
                    file,
                    format!(
                        "column \"{}\" of foreign table \"{}\" has type {}, which cannot hold the file's column \"{}\" of type {}",
                        col.name,
                        s.table,
                        std::ffi::CStr::from_ptr(typname).to_string_lossy(),
                        field.name(),
                        field.data_type()
                    ),
                )
            }
            let index = match projection.iter().position(|p| *p == idx) {
                Some(i) => i,
                None => {
                    projection.push(idx);
                    kinds.push(col.kind.clone().expect("checked above"));
                    names.push(col.name.clone());
                    projection.len() - 1
                }
            };
            Source::File { index, kind: col.kind.clone().expect("checked above") }
        };
        sources.push((a, source));
    }
    pg_sys::MemoryContextSwitchTo(old);
    let relative = file.relative.clone();
    let group_rows = cat.row_group_rows().unwrap_or_default();
    let read_groups = row_groups.iter().filter_map(|&g| group_rows.get(g).map(|&n| (g, n))).collect();
    let reader = cat.read(&projection, row_groups, BATCH_ROWS).unwrap_or_else(|e| raise_files_error(e));
    s.files_read += 1;
    OpenFile {
        relative,
        reader,
        sources,
        kinds,
        names,
        batch: Vec::new(),
        rows: 0,
        row: 0,
        fast: false,
        row_groups: read_groups,
        rows_before_batch: 0,
    }
}

/// The per-row entry point. Rows of a batch that needs no PostgreSQL call (numbers, dates,
/// timestamps, text and bytea already laid out per batch) are returned without `pg_guard`'s
/// setjmp and without the FFI guard of `ExecStoreVirtualTuple`: at 20M rows that setjmp
/// pair is a third of the scan's own time. Everything else (next batch, next file, errors,
/// arrays) goes through the guarded slow path.
unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    // No panic may unwind into PostgreSQL from here: a panic falls back to the guarded path,
    // which re-reads the row and reports it as an ERROR.
    if let Ok(Some(slot)) = std::panic::catch_unwind(|| fast_row(node)) {
        return slot;
    }
    iterate_slow(node)
}

unsafe fn fast_row(node: *mut pg_sys::ForeignScanState) -> Option<*mut pg_sys::TupleTableSlot> {
    let s = state_of(node)?;
    let f = s.current.as_mut()?;
    if !f.fast || f.row >= f.rows {
        return None;
    }
    let slot = (*node).ss.ss_ScanTupleSlot;
    if let Some(clear) = (*(*slot).tts_ops).clear {
        clear(slot);
    }
    fill_row(slot, f).ok()?;
    f.row += 1;
    Some(slot)
}

#[pg_guard]
unsafe extern "C-unwind" fn iterate_slow(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    let slot = (*node).ss.ss_ScanTupleSlot;
    if let Some(clear) = (*(*slot).tts_ops).clear {
        clear(slot);
    }
    let s = state_of(node).expect("scan state exists until EndForeignScan");
    if !s.executed {
        s.executed = true;
        s.conditions = Some(evaluate_conditions(node, s, false));
        s.files = Some(expand_files(&s.opts));
    }
    loop {
        if let Some(f) = s.current.as_mut() {
            if f.row < f.rows {
                let old = pg_sys::MemoryContextSwitchTo(s.batch_ctx);
                let filled = fill_row(slot, f);
                pg_sys::MemoryContextSwitchTo(old);
                if let Err((column, message)) = filled {
                    f.value_error(column, f.row, &message);
                }
                f.row += 1;
                return slot;
            }
            pg_sys::MemoryContextReset(s.batch_ctx);
            let batch = f.reader.next_batch().unwrap_or_else(|e| raise_files_error(e));
            match batch {
                Some(b) => {
                    f.rows_before_batch += f.rows as u64;
                    f.rows = b.num_rows();
                    f.row = 0;
                    let old = pg_sys::MemoryContextSwitchTo(s.batch_ctx);
                    let mut columns = Vec::with_capacity(f.kinds.len());
                    for (k, (c, kind)) in b.columns().iter().zip(&f.kinds).enumerate() {
                        match TypedColumn::for_kind(c, kind) {
                            Ok(col) => columns.push(col),
                            Err((row, message)) => f.value_error(k, row, &message),
                        }
                    }
                    f.batch = columns;
                    pg_sys::MemoryContextSwitchTo(old);
                    f.fast = !f.batch.iter().any(TypedColumn::needs_guard);
                    continue;
                }
                None => s.current = None,
            }
        }
        let next = if s.parallel.is_some() { claim_next_row_group(s) } else { open_next_file(s) };
        match next {
            Some(f) => s.current = Some(f),
            None => return slot,
        }
    }
}

/// Fills the slot with row `f.row` of the current batch and stores it as a virtual tuple.
/// Calls into PostgreSQL only for arrays (so the unguarded fast path uses it for batches
/// without them); `Err` carries the batch column and a value the declared type cannot hold.
#[inline]
unsafe fn fill_row(slot: *mut pg_sys::TupleTableSlot, f: &OpenFile) -> Result<(), (usize, String)> {
    let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
    let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
    let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
    nulls.fill(true);
    let i = f.row;
    for (a, source) in &f.sources {
        match source {
            Source::Constant(d, isnull) => {
                values[*a] = *d;
                nulls[*a] = *isnull;
            }
            Source::File { index, kind } => {
                let col = &f.batch[*index];
                if col.has_nulls() && col.is_null(i) {
                    continue;
                }
                values[*a] = col.datum(i, kind).map_err(|m| (*index, m))?;
                nulls[*a] = false;
            }
        }
    }
    // ExecStoreVirtualTuple, inline (no FFI guard per row).
    (*slot).tts_flags &= !(pg_sys::TTS_FLAG_EMPTY as u16);
    (*slot).tts_nvalid = natts as i16;
    Ok(())
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    if let Some(s) = state_of(node) {
        s.current = None;
        s.next_file = 0;
        s.files_read = 0;
        // A parallel scan keeps its pruned row groups; ReInitializeDSMForeignScan rewinds
        // the shared claim counter.
        if s.parallel.is_none() {
            s.executed = false;
            s.actual = PruneCounts::default();
        }
        pg_sys::MemoryContextReset(s.batch_ctx);
        pg_sys::MemoryContextReset(s.file_ctx);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // Close the files now; the holder itself goes with the query's memory context (and
    // EXPLAIN ANALYZE has already read the counters by the time the executor ends).
    if let Some(s) = state_of(node) {
        s.current = None;
    }
}

unsafe fn explain_text(label: &str, value: String, es: *mut pg_sys::ExplainState) {
    let l = CString::new(label).unwrap_or_default();
    let v = CString::new(value).unwrap_or_default();
    pg_sys::ExplainPropertyText(l.as_ptr(), v.as_ptr(), es);
}

#[pg_guard]
unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    let Some(s) = state_of(node) else { return };
    explain_text("Files", format!("{} under {}", s.opts.files, s.opts.root), es);
    let counts = |c: &PruneCounts| {
        (
            format!("{} of {} (skipped {} by partition values)", c.files - c.files_skipped, c.files, c.files_skipped),
            format!(
                "{} of {} (skipped {} by statistics)",
                c.row_groups - c.row_groups_skipped,
                c.row_groups,
                c.row_groups_skipped
            ),
        )
    };
    if (*es).analyze && s.executed {
        let (files, groups) = counts(&s.actual);
        explain_text("Files Read", files, es);
        explain_text("Row Groups Read", groups, es);
    } else {
        let (files, groups) = counts(&s.plan.planned);
        explain_text("Files Planned", files, es);
        explain_text("Row Groups Planned", groups, es);
    }
    if (*es).verbose && !s.plan.conditions.is_empty() {
        let conds: Vec<String> = s.plan.conditions.iter().map(|c| format!("({})", c.text)).collect();
        explain_text("Pruning Conditions", conds.join(", "), es);
    }
}
