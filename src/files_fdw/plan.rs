//! Planning a scan of a `skycat_files` table: which columns are needed, which WHERE clauses
//! can prune files and row groups, row estimates from file metadata, and a plan whose
//! private data is plain node lists (so `copyObject` and cached plans are safe).

use super::datum::{array_elements, kind_of, scalar_from_datum};
use super::{raise_files_error, TableOptions};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use skycat_core::files::paths::{self, MatchedFile};
use skycat_core::files::prune::{row_matches, CompareOp, Condition};
use skycat_core::files::reader::{CatalogFile, FileFormat};
use skycat_core::files::types::{match_column, PgKind};
use std::ffi::CStr;
use std::ptr;

pub(super) fn install(routine: &mut supabase_wrappers::FdwRoutine<pgrx::AllocatedByRust>) {
    routine.GetForeignRelSize = Some(get_foreign_rel_size);
    routine.GetForeignPaths = Some(get_foreign_paths);
    routine.GetForeignPlan = Some(get_foreign_plan);
}

/// One declared column of the foreign table.
#[derive(Debug, Clone)]
pub(super) struct DeclaredColumn {
    pub name: String,
    pub typoid: Oid,
    pub typmod: i32,
    pub kind: Option<PgKind>,
}

/// The declared columns by attribute number − 1 (`None` for dropped columns).
pub(super) unsafe fn declared_columns(desc: pg_sys::TupleDesc) -> Vec<Option<DeclaredColumn>> {
    let n = (*desc).natts as usize;
    let attrs = (*desc).attrs.as_slice(n);
    attrs
        .iter()
        .map(|a| {
            (!a.attisdropped).then(|| DeclaredColumn {
                name: CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy().into_owned(),
                typoid: a.atttypid,
                typmod: a.atttypmod,
                kind: kind_of(a.atttypid),
            })
        })
        .collect()
}

/// How a pushed-down condition compares, before its value is known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) enum CondKind {
    Compare(CompareOp),
    In,
    IsNull,
    IsNotNull,
}

/// A WHERE clause that can prune: attribute, kind, and for comparisons the index of its
/// value expression (Const or Param) in the plan's `fdw_exprs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PushedCondition {
    pub attno: i16,
    pub kind: CondKind,
    pub expr: Option<usize>,
    /// For display in EXPLAIN VERBOSE.
    pub text: String,
}

impl PushedCondition {
    /// The core condition once the value is known (`None`: cannot prune).
    pub(super) unsafe fn evaluate(&self, value: Option<(Datum, bool, Oid)>) -> Option<Condition> {
        match self.kind {
            CondKind::IsNull => Some(Condition::IsNull),
            CondKind::IsNotNull => Some(Condition::IsNotNull),
            CondKind::Compare(op) => {
                let (d, isnull, typ) = value?;
                if isnull {
                    return None;
                }
                Some(Condition::Compare(op, scalar_from_datum(d, typ)?))
            }
            CondKind::In => {
                let (d, isnull, typ) = value?;
                if isnull {
                    return None;
                }
                let elem = pg_sys::get_element_type(typ);
                let mut values = Vec::new();
                for d in array_elements(d, elem).into_iter().flatten() {
                    values.push(scalar_from_datum(d, elem)?);
                }
                Some(Condition::In(values))
            }
        }
    }
}

/// Planner-side facts handed from GetForeignRelSize to GetForeignPaths/GetForeignPlan.
struct RelPlan {
    needed: Vec<i16>,
    conditions: Vec<PushedCondition>,
    value_exprs: Vec<*mut pg_sys::Node>,
    counts: PruneCounts,
    rows_kept: f64,
    files_kept: usize,
}

/// What pruning left of a table: files and row groups matched and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PruneCounts {
    pub files: u64,
    pub files_skipped: u64,
    pub row_groups: u64,
    pub row_groups_skipped: u64,
}

unsafe fn list_nodes(list: *mut pg_sys::List) -> Vec<*mut pg_sys::Node> {
    if list.is_null() {
        return Vec::new();
    }
    (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).ptr_value as *mut pg_sys::Node).collect()
}

unsafe fn node_tag(n: *mut pg_sys::Node) -> pg_sys::NodeTag {
    (*n).type_
}

/// The attribute number when `n` is a plain column of relation `relid` (through a binary-
/// compatible relabel).
unsafe fn column_of(mut n: *mut pg_sys::Node, relid: u32) -> Option<i16> {
    while node_tag(n) == pg_sys::NodeTag::T_RelabelType {
        n = (*(n as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
    }
    if node_tag(n) != pg_sys::NodeTag::T_Var {
        return None;
    }
    let v = n as *mut pg_sys::Var;
    ((*v).varno as u32 == relid && (*v).varlevelsup == 0 && (*v).varattno > 0).then_some((*v).varattno)
}

unsafe fn is_value(n: *mut pg_sys::Node) -> bool {
    match node_tag(n) {
        pg_sys::NodeTag::T_Const => true,
        pg_sys::NodeTag::T_Param => {
            let p = n as *mut pg_sys::Param;
            matches!((*p).paramkind, pg_sys::ParamKind::PARAM_EXTERN | pg_sys::ParamKind::PARAM_EXEC)
        }
        _ => false,
    }
}

/// `=`, `<`, ... when `opno` is a built-in comparison (standard semantics).
unsafe fn builtin_comparison(opno: Oid) -> Option<CompareOp> {
    if opno.to_u32() >= pg_sys::FirstNormalObjectId {
        return None;
    }
    let name = pg_sys::get_opname(opno);
    if name.is_null() {
        return None;
    }
    CompareOp::from_sql(CStr::from_ptr(name).to_str().ok()?)
}

fn prunable_type(t: Oid) -> bool {
    matches!(kind_of(t), Some(k) if !matches!(k, PgKind::Array(_) | PgKind::Bytea))
}

extern "C-unwind" {
    /// PostgreSQL's own test (pg_locale.c) that a collation sorts strings by their bytes.
    fn lc_collate_is_c(collation: Oid) -> bool;
}

/// Whether comparing strings by their bytes, as file statistics are compared, agrees with the
/// query's collation for `op`: equality needs a deterministic collation (equal only when
/// byte-identical), ordering needs one that sorts by bytes (C / POSIX). Non-string columns
/// always agree.
unsafe fn collation_allows(col: &DeclaredColumn, op: CompareOp, collation: Oid) -> bool {
    if !matches!(col.kind, Some(PgKind::Text | PgKind::Name)) {
        return true;
    }
    if collation == pg_sys::InvalidOid {
        return false;
    }
    match op {
        CompareOp::Eq => pg_sys::get_collation_isdeterministic(collation),
        _ => pg_sys::ffi::pg_guard_ffi_boundary(|| lc_collate_is_c(collation)),
    }
}

/// Finds the restriction clauses that can prune; their value expressions are appended to
/// `exprs`.
unsafe fn pushable_conditions(
    baserel: *mut pg_sys::RelOptInfo,
    columns: &[Option<DeclaredColumn>],
    exprs: &mut Vec<*mut pg_sys::Node>,
) -> Vec<PushedCondition> {
    let relid = (*baserel).relid;
    let name_of = |att: i16| columns[att as usize - 1].as_ref().map(|c| c.name.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for ri in list_nodes((*baserel).baserestrictinfo) {
        let clause = (*(ri as *mut pg_sys::RestrictInfo)).clause as *mut pg_sys::Node;
        match node_tag(clause) {
            pg_sys::NodeTag::T_OpExpr => {
                let op = clause as *mut pg_sys::OpExpr;
                let args = list_nodes((*op).args);
                let Some(cmp) = builtin_comparison((*op).opno) else { continue };
                if args.len() != 2 {
                    continue;
                }
                let (att, value, cmp) = match (column_of(args[0], relid), column_of(args[1], relid)) {
                    (Some(a), None) if is_value(args[1]) => (a, args[1], cmp),
                    (None, Some(a)) if is_value(args[0]) => (a, args[0], cmp.commuted()),
                    _ => continue,
                };
                let Some(col) = &columns[att as usize - 1] else { continue };
                if !prunable_type(col.typoid)
                    || !prunable_type(pg_sys::exprType(value))
                    || !collation_allows(col, cmp, (*op).inputcollid)
                {
                    continue;
                }
                exprs.push(value);
                out.push(PushedCondition {
                    attno: att,
                    kind: CondKind::Compare(cmp),
                    expr: Some(exprs.len() - 1),
                    text: format!("{} {} {}", name_of(att), cmp.sql(), value_text(value)),
                });
            }
            pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                let op = clause as *mut pg_sys::ScalarArrayOpExpr;
                let args = list_nodes((*op).args);
                if !(*op).useOr || builtin_comparison((*op).opno) != Some(CompareOp::Eq) || args.len() != 2 {
                    continue;
                }
                let (Some(att), true) = (column_of(args[0], relid), is_value(args[1])) else { continue };
                let Some(col) = &columns[att as usize - 1] else { continue };
                let elem = pg_sys::get_element_type(pg_sys::exprType(args[1]));
                if !prunable_type(col.typoid)
                    || !prunable_type(elem)
                    || !collation_allows(col, CompareOp::Eq, (*op).inputcollid)
                {
                    continue;
                }
                exprs.push(args[1]);
                out.push(PushedCondition {
                    attno: att,
                    kind: CondKind::In,
                    expr: Some(exprs.len() - 1),
                    text: format!("{} = ANY ({})", name_of(att), value_text(args[1])),
                });
            }
            pg_sys::NodeTag::T_NullTest => {
                let nt = clause as *mut pg_sys::NullTest;
                if (*nt).argisrow {
                    continue;
                }
                let Some(att) = column_of((*nt).arg as *mut pg_sys::Node, relid) else { continue };
                let is_null = (*nt).nulltesttype == pg_sys::NullTestType::IS_NULL;
                out.push(PushedCondition {
                    attno: att,
                    kind: if is_null { CondKind::IsNull } else { CondKind::IsNotNull },
                    expr: None,
                    text: format!("{} IS {}NULL", name_of(att), if is_null { "" } else { "NOT " }),
                });
            }
            _ => {}
        }
    }
    out
}

unsafe fn value_text(n: *mut pg_sys::Node) -> String {
    match node_tag(n) {
        pg_sys::NodeTag::T_Param => format!("${}", (*(n as *mut pg_sys::Param)).paramid),
        _ => {
            let c = n as *mut pg_sys::Const;
            if (*c).constisnull {
                return "NULL".into();
            }
            let (mut out_fn, mut varlena) = (pg_sys::InvalidOid, false);
            pg_sys::getTypeOutputInfo((*c).consttype, &mut out_fn, &mut varlena);
            let s = pg_sys::OidOutputFunctionCall(out_fn, (*c).constvalue);
            format!("'{}'", CStr::from_ptr(s).to_string_lossy())
        }
    }
}

/// Attribute numbers referenced by the target list and the restrictions (all columns for
/// a whole-row reference).
unsafe fn needed_attributes(baserel: *mut pg_sys::RelOptInfo, natts: usize) -> Vec<i16> {
    let relid = (*baserel).relid;
    let mut attrs: *mut pg_sys::Bitmapset = ptr::null_mut();
    pg_sys::pull_varattnos((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut attrs);
    for ri in list_nodes((*baserel).baserestrictinfo) {
        let clause = (*(ri as *mut pg_sys::RestrictInfo)).clause as *mut pg_sys::Node;
        pg_sys::pull_varattnos(clause, relid, &mut attrs);
    }
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let mut out = Vec::new();
    let mut m = -1;
    loop {
        m = pg_sys::bms_next_member(attrs, m);
        if m < 0 {
            break;
        }
        let att = m + offset;
        if att == 0 {
            return (1..=natts as i16).collect();
        }
        if att > 0 {
            out.push(att as i16);
        }
    }
    out
}

/// A partition (hive) value converted to the declared column's type, as a Datum.
pub(super) unsafe fn partition_datum(col: &DeclaredColumn, value: &str) -> Datum {
    let (mut input_fn, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
    pg_sys::getTypeInputInfo(col.typoid, &mut input_fn, &mut ioparam);
    let c = std::ffi::CString::new(value).unwrap_or_default();
    pg_sys::OidInputFunctionCall(input_fn, c.as_ptr() as *mut _, ioparam, col.typmod)
}

/// Whether `file` can hold matching rows judging by its partition values alone.
pub(super) unsafe fn partitions_match(
    file: &MatchedFile,
    columns: &[Option<DeclaredColumn>],
    conditions: &[(i16, Condition)],
) -> bool {
    conditions.iter().all(|(att, cond)| {
        let Some(col) = &columns[*att as usize - 1] else { return true };
        match file.partition_value(&col.name) {
            None => true,
            Some(v) => {
                let value = scalar_from_datum(partition_datum(col, v), col.typoid);
                match value {
                    Some(s) => row_matches(cond, Some(&s)),
                    None => true,
                }
            }
        }
    })
}

/// The file column index for each declared column that is read from the file.
pub(super) fn file_column_index(file: &CatalogFile, col: &DeclaredColumn) -> Option<usize> {
    let names: Vec<&str> = file.schema().fields().iter().map(|f| f.name().as_str()).collect();
    match_column(&col.name, &names)
}

/// Row groups of `file` that statistics cannot rule out, for conditions on declared
/// attributes (those not read from this file, e.g. partition keys, are left out).
pub(super) fn kept_row_groups(
    file: &CatalogFile,
    columns: &[Option<DeclaredColumn>],
    conditions: &[(i16, Condition)],
) -> Vec<usize> {
    let on_file_columns: Vec<(usize, Condition)> = conditions
        .iter()
        .filter_map(|(att, cond)| {
            let col = columns[*att as usize - 1].as_ref()?;
            Some((file_column_index(file, col)?, cond.clone()))
        })
        .collect();
    file.kept_row_groups(&on_file_columns)
}

/// Expands the table's glob (raising an ERROR on bad options or escaping paths).
pub(super) fn expand_files(opts: &TableOptions) -> Vec<MatchedFile> {
    paths::expand(&opts.root, &opts.files).unwrap_or_else(|e| raise_files_error(e))
}

/// Opens one matched file of the table in its format (raising an ERROR naming the file).
pub(super) fn open_catalog(opts: &TableOptions, file: &MatchedFile) -> CatalogFile {
    FileFormat::resolve(&file.relative, opts.format.as_deref())
        .and_then(|format| CatalogFile::open(&file.absolute, format))
        .unwrap_or_else(|e| raise_files_error(e))
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_rel_size(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreigntableid: Oid,
) {
    let opts = TableOptions::of_table(foreigntableid);
    let rel = pg_sys::RelationIdGetRelation(foreigntableid);
    let columns = declared_columns((*rel).rd_att);
    pg_sys::RelationClose(rel);

    let needed = needed_attributes(baserel, columns.len());
    let mut value_exprs = Vec::new();
    let conditions = pushable_conditions(baserel, &columns, &mut value_exprs);
    // Plan-time pruning with the constants known now (parameters prune at execution).
    let known: Vec<(i16, Condition)> = conditions
        .iter()
        .filter_map(|c| {
            let value = c.expr.and_then(|i| {
                let n = value_exprs[i];
                (node_tag(n) == pg_sys::NodeTag::T_Const).then(|| {
                    let k = n as *mut pg_sys::Const;
                    ((*k).constvalue, (*k).constisnull, (*k).consttype)
                })
            });
            c.evaluate(value).map(|cond| (c.attno, cond))
        })
        .collect();

    let files = expand_files(&opts);
    let mut counts = PruneCounts::default();
    let (mut rows_total, mut rows_kept, mut files_kept) = (0f64, 0f64, 0usize);
    for f in &files {
        counts.files += 1;
        if !partitions_match(f, &columns, &known) {
            counts.files_skipped += 1;
            continue;
        }
        let cat = open_catalog(&opts, f);
        let total = cat.num_row_groups() as u64;
        let kept = kept_row_groups(&cat, &columns, &known);
        counts.row_groups += total;
        counts.row_groups_skipped += total - kept.len() as u64;
        files_kept += 1;
        match cat.row_group_rows() {
            Some(rows) => {
                rows_total += rows.iter().sum::<u64>() as f64;
                rows_kept += kept.iter().map(|i| rows[*i]).sum::<u64>() as f64;
            }
            None => {
                let r = cat.rows_estimate() as f64;
                rows_total += r;
                rows_kept += r;
            }
        }
    }
    let selectivity = pg_sys::clauselist_selectivity(
        _root,
        (*baserel).baserestrictinfo,
        (*baserel).relid as i32,
        pg_sys::JoinType::JOIN_INNER,
        ptr::null_mut(),
    );
    (*baserel).tuples = rows_total;
    (*baserel).rows = (rows_kept * selectivity).round().max(1.0);
    let plan = RelPlan { needed, conditions, value_exprs, counts, rows_kept, files_kept };
    // Lives (and is dropped) with the planner's memory context.
    (*baserel).fdw_private =
        pgrx::PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(plan) as *mut std::ffi::c_void;
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_paths(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreigntableid: Oid,
) {
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    // Opening a file costs about a page read; decoding a value is cheaper than deforming a
    // heap tuple, so a full scan costs less per row than a heap scan of the same data.
    let startup = 10.0 * plan.files_kept as f64;
    let per_row =
        pg_sys::cpu_tuple_cost * 0.5 + 0.0005 * plan.needed.len() as f64 + (*baserel).baserestrictcost.per_tuple;
    let total = startup + plan.rows_kept * per_row;
    let path = pg_sys::create_foreignscan_path(
        root,
        baserel,
        ptr::null_mut(),
        (*baserel).rows,
        startup,
        total,
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    pg_sys::add_path(baserel, path as *mut pg_sys::Path);
    add_partial_path(root, baserel, plan, startup, total);
}

/// A parallel-aware path (see `parallel.rs`) when the data is large enough for workers to
/// pay off: PostgreSQL's own rule for heap scans (`min_parallel_table_scan_size`, one more
/// worker per tripling), applied to the bytes of the needed columns.
unsafe fn add_partial_path(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    plan: &RelPlan,
    startup: f64,
    total: f64,
) {
    if !(*baserel).consider_parallel || !(*baserel).lateral_relids.is_null() {
        return;
    }
    let pages = plan.rows_kept * 8.0 * plan.needed.len().max(1) as f64 / pg_sys::BLCKSZ as f64;
    let workers = pg_sys::compute_parallel_worker(baserel, pages, -1.0, pg_sys::max_parallel_workers_per_gather);
    if workers <= 0 {
        return;
    }
    // costsize.c's get_parallel_divisor: the leader also scans, less so with more workers.
    let mut divisor = workers as f64;
    if pg_sys::parallel_leader_participation {
        let leader = 1.0 - 0.3 * workers as f64;
        if leader > 0.0 {
            divisor += leader;
        }
    }
    let path = pg_sys::create_foreignscan_path(
        root,
        baserel,
        ptr::null_mut(),
        ((*baserel).rows / divisor).round().max(1.0),
        startup,
        startup + (total - startup) / divisor,
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    (*path).path.parallel_aware = true;
    (*path).path.parallel_safe = true;
    (*path).path.parallel_workers = workers;
    pg_sys::add_partial_path(baserel, path as *mut pg_sys::Path);
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_plan(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreigntableid: Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    // Every clause stays for PostgreSQL to check per row: pruning is only a coarse filter.
    let scan_clauses = pg_sys::extract_actual_clauses(scan_clauses, false);
    let plan = &*((*baserel).fdw_private as *const RelPlan);
    let mut fdw_exprs: *mut pg_sys::List = ptr::null_mut();
    for e in &plan.value_exprs {
        fdw_exprs = pg_sys::lappend(fdw_exprs, pg_sys::copyObjectImpl(*e as *const std::ffi::c_void));
    }
    let private = serde_json::to_string(&ScanPlan {
        needed: plan.needed.clone(),
        conditions: plan.conditions.clone(),
        planned: plan.counts,
    })
    .expect("a plan serialises");
    let text = std::ffi::CString::new(private).expect("JSON has no NUL");
    let fdw_private = pg_sys::lappend(ptr::null_mut(), pg_sys::makeString(pg_sys::pstrdup(text.as_ptr())) as *mut _);
    pg_sys::make_foreignscan(
        tlist,
        scan_clauses,
        (*baserel).relid,
        fdw_exprs,
        fdw_private,
        ptr::null_mut(),
        ptr::null_mut(),
        outer_plan,
    )
}

/// The plan's private data: written by GetForeignPlan as JSON (PostgreSQL copies plans, so
/// it travels as a string node), read back at execution and in EXPLAIN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ScanPlan {
    pub needed: Vec<i16>,
    pub conditions: Vec<PushedCondition>,
    pub planned: PruneCounts,
}

pub(super) unsafe fn read_scan_plan(plan: *mut pg_sys::ForeignScan) -> ScanPlan {
    let list = (*plan).fdw_private;
    let s = (*(*(*list).elements).ptr_value.cast::<pg_sys::String>()).sval;
    serde_json::from_str(&CStr::from_ptr(s).to_string_lossy()).expect("the plan JSON GetForeignPlan wrote")
}
