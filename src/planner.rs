//! The planner support function of `dwithin` / `dwithin_exact`.
//!
//! * `SupportRequestSimplify` on `dwithin`: when one argument pair (ra, dec) is two columns of a
//!   table that has an index on `skycat.sky_key(ra, dec)`, replace the call by the index
//!   condition described in src/dwithin.rs (a BitmapOr of key ranges on that side, computed
//!   from the other side) AND `dwithin_exact(...)`. This is how "whichever argument pair is the
//!   indexed one" works: the side is chosen here, by looking at the indexes. The exact call is
//!   a different function so the rewrite never applies to its own output.
//!   With a GiST index on `skycat.sky_point(ra, dec)` instead (or as well, for cones), the call
//!   becomes `sky_point(ra, dec) <@ sky_cone(other ra, other dec, r)`, which that index answers.
//!   When that table is partitioned, the rewrite also bounds its declination to the circle's
//!   band (`dec >= dec_band_lo(...) AND dec <= dec_band_hi(...)`), so that run-time partition
//!   pruning keeps only the declination stripes a probe's circle meets.
//! * `SupportRequestSelectivity` on both: the fraction of the sky inside the circle, so joins
//!   and cone searches get row estimates of the right order (see `selectivity`).
//! * `bound_restrict_sel` / `bound_join_sel`: the estimators of the `keybound` and `decbound`
//!   operators of that condition (src/dwithin.rs says why they exist): a range of the cover
//!   of a typical circle of the radius, and 1 for the declination band.
//!
//! Everything here is about PostgreSQL nodes and catalogs; the geometry is in skycat-core.

use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::pg_sys::{Datum, Node, NodeTag, Oid};
use skycat_core::skykey;
use skycat_core::sphere::{self, wrap_ra};

/// The radius estimates assume when it is not a constant at planning time (a parameter of a
/// generic plan, a column): a generous matching radius, so a probe still looks like a probe.
pub(crate) const ASSUMED_RADIUS_ARCSEC: f64 = 60.0;
/// pg_catalog's btree operator family `float_ops` (float4 and float8), a fixed catalog OID.
const FLOAT_BTREE_FAM_OID: Oid = Oid::from_u32(1970);

crate::fastcall::v1_function! {
    /// The planner support function of `dwithin` and `dwithin_exact` (see the module comment).
    fn dwithin_support(fcinfo) {
        let req = (*fcinfo).args.as_slice(1)[0].value.cast_mut_ptr::<Node>();
        if req.is_null() {
            return Datum::from(0usize);
        }
        match (*req).type_ {
            NodeTag::T_SupportRequestSimplify => {
                let out = simplify(req.cast::<pg_sys::SupportRequestSimplify>());
                Datum::from(out as usize)
            }
            NodeTag::T_SupportRequestSelectivity => {
                let r = req.cast::<pg_sys::SupportRequestSelectivity>();
                match selectivity(&*r) {
                    Some(s) => {
                        (*r).selectivity = s;
                        Datum::from(req as usize)
                    }
                    None => Datum::from(0usize),
                }
            }
            _ => Datum::from(0usize),
        }
    }
}

crate::fastcall::v1_function! {
    /// Restriction estimator of the `keybound` / `decbound` operators (a parameterised probe).
    fn bound_restrict_sel(fcinfo) {
        let a = (*fcinfo).args.as_slice(3);
        let op = Oid::from(a[1].value.value() as u32);
        Datum::from(bound_selectivity(op, a[2].value.cast_mut_ptr()).to_bits() as usize)
    }
    sql("CREATE FUNCTION bound_restrict_sel(internal, oid, internal, integer) RETURNS float8
         STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'bound_restrict_sel';
         COMMENT ON FUNCTION bound_restrict_sel(internal, oid, internal, integer) IS
           'Internal: selectivity of dwithin''s key-range and declination-band conditions.';",
        name = "bound_restrict_sel");
}

crate::fastcall::v1_function! {
    /// Join estimator of the `keybound` / `decbound` operators: the same fraction per pair.
    fn bound_join_sel(fcinfo) {
        let a = (*fcinfo).args.as_slice(3);
        let op = Oid::from(a[1].value.value() as u32);
        Datum::from(bound_selectivity(op, a[2].value.cast_mut_ptr()).to_bits() as usize)
    }
    sql("CREATE FUNCTION bound_join_sel(internal, oid, internal, smallint, internal) RETURNS float8
         STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'bound_join_sel';
         COMMENT ON FUNCTION bound_join_sel(internal, oid, internal, smallint, internal) IS
           'Internal: join selectivity of dwithin''s key-range and declination-band conditions.';",
        name = "bound_join_sel");
}

crate::fastcall::v1_function! {
    /// Restriction estimator of `sky_point <@ sky_cone`: the cone's share of the sky.
    fn cone_restrict_sel(fcinfo) {
        let a = (*fcinfo).args.as_slice(3);
        Datum::from(cone_selectivity(a[2].value.cast_mut_ptr()).to_bits() as usize)
    }
    sql("CREATE FUNCTION cone_restrict_sel(internal, oid, internal, integer) RETURNS float8
         STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'cone_restrict_sel';
         COMMENT ON FUNCTION cone_restrict_sel(internal, oid, internal, integer) IS
           'Internal: selectivity of sky_point <@ sky_cone.';",
        name = "cone_restrict_sel");
}

crate::fastcall::v1_function! {
    /// Join estimator of `sky_point <@ sky_cone`: the same share per pair.
    fn cone_join_sel(fcinfo) {
        let a = (*fcinfo).args.as_slice(3);
        Datum::from(cone_selectivity(a[2].value.cast_mut_ptr()).to_bits() as usize)
    }
    sql("CREATE FUNCTION cone_join_sel(internal, oid, internal, smallint, internal) RETURNS float8
         STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'cone_join_sel';
         COMMENT ON FUNCTION cone_join_sel(internal, oid, internal, smallint, internal) IS
           'Internal: join selectivity of sky_point <@ sky_cone.';",
        name = "cone_join_sel");
}

/// The sky fraction of the cone on the right of `<@`: its radius from a constant cone or
/// from `sky_cone(ra, dec, <constant>)`, else [`ASSUMED_RADIUS_ARCSEC`].
unsafe fn cone_selectivity(args: *mut pg_sys::List) -> f64 {
    unsafe {
        let mut radius = None;
        if let Some(&c) = list_ptrs(args).get(1) {
            if !c.is_null() && (*c).type_ == NodeTag::T_FuncExpr {
                radius = list_ptrs((*c.cast::<pg_sys::FuncExpr>()).args).get(2).and_then(|&r| const_f64(r));
            } else if !c.is_null() && (*c).type_ == NodeTag::T_Const && !(*c.cast::<pg_sys::Const>()).constisnull {
                let fields = <crate::sqltypes::Float8Fields<3> as crate::fastcall::FromArg>::from_arg(
                    (*c.cast::<pg_sys::Const>()).constvalue,
                );
                radius = fields.0.map(|f| f[2]);
            }
        }
        let r = radius.filter(|r| r.is_finite() && *r >= 0.0).unwrap_or(ASSUMED_RADIUS_ARCSEC);
        sphere::cap_sky_fraction(r).clamp(1e-15, 1.0)
    }
}

/// Selectivity of `key <= sky_key_bound_hi(ra, dec, r, slot, n)`: one range's share of the
/// cover of a typical circle of radius r. Its partner `key >= sky_key_bound_lo(...)` says 1
/// (the pair is one range), and so do the declination-band operators (the band holds the
/// circle, whose fraction the other conditions already count).
unsafe fn bound_selectivity(op: Oid, args: *mut pg_sys::List) -> f64 {
    unsafe {
        let strategy = pg_sys::get_op_opfamily_strategy(op, pg_sys::INTEGER_BTREE_FAM_OID);
        if strategy != pg_sys::BTLessEqualStrategyNumber as i32 {
            return 1.0;
        }
        let (mut radius, mut n_slots) = (None, None);
        if let Some(&bound) = list_ptrs(args).get(1) {
            if !bound.is_null() && (*bound).type_ == NodeTag::T_FuncExpr {
                let f = list_ptrs((*bound.cast::<pg_sys::FuncExpr>()).args);
                if f.len() == 5 {
                    radius = const_f64(f[2]);
                    n_slots = const_i32(f[4]);
                }
            }
        }
        range_fraction(radius, n_slots.map_or(skykey::MAX_RANGES, |n| n.clamp(1, 1024) as usize))
    }
}

/// One range's share of the sky in the `n_slots`-range cover of a typical circle.
fn range_fraction(radius_arcsec: Option<f64>, n_slots: usize) -> f64 {
    let r = radius_arcsec.filter(|r| r.is_finite() && *r >= 0.0).unwrap_or(ASSUMED_RADIUS_ARCSEC);
    (skykey::typical_cover_sky_fraction(r, n_slots) / n_slots as f64).clamp(1e-15, 1.0)
}

/// Elements of a PostgreSQL List of pointers.
pub(crate) unsafe fn list_ptrs(list: *mut pg_sys::List) -> Vec<*mut Node> {
    if list.is_null() {
        return vec![];
    }
    unsafe {
        let n = (*list).length as usize;
        (0..n).map(|i| (*(*list).elements.add(i)).ptr_value.cast::<Node>()).collect()
    }
}

unsafe fn list_of(items: &[*mut Node]) -> *mut pg_sys::List {
    let mut l: *mut pg_sys::List = std::ptr::null_mut();
    for &it in items {
        l = unsafe { pg_sys::lappend(l, it.cast()) };
    }
    l
}

unsafe fn copy(n: *mut Node) -> *mut Node {
    unsafe { pg_sys::copyObjectImpl(n.cast()).cast() }
}

/// OID of `skycat.<name>(argtypes)`, or InvalidOid.
unsafe fn skycat_func(name: &str, argtypes: &[Oid]) -> Oid {
    unsafe { pg_sys::LookupFuncName(skycat_name(name), argtypes.len() as i32, argtypes.as_ptr(), true) }
}

/// The qualified name `skycat.<name>` as the List of Strings PostgreSQL's lookups take.
unsafe fn skycat_name(name: &str) -> *mut pg_sys::List {
    let schema = CString::new("skycat").unwrap();
    let name = CString::new(name).unwrap();
    unsafe {
        list_of(&[
            pg_sys::makeString(pg_sys::pstrdup(schema.as_ptr())).cast(),
            pg_sys::makeString(pg_sys::pstrdup(name.as_ptr())).cast(),
        ])
    }
}

/// A Var of the current query level.
unsafe fn as_var(n: *mut Node) -> Option<&'static pg_sys::Var> {
    unsafe {
        if n.is_null() || (*n).type_ != NodeTag::T_Var {
            return None;
        }
        let v = &*n.cast::<pg_sys::Var>();
        (v.varlevelsup == 0).then_some(v)
    }
}

/// A table whose (ra, dec) columns an index covers: a B-tree on sky_key(ra, dec), a GiST on
/// sky_point(ra, dec), or both.
#[derive(Clone, Copy)]
struct IndexedPair {
    rows: f64,
    partitioned: bool,
    sky_key: bool,
    sky_point: bool,
}

/// If (ra, dec) are two columns of one base table with an index on sky_key(ra, dec) or a GiST
/// index on sky_point(ra, dec): which, the table's estimated row count and whether it is
/// partitioned.
unsafe fn indexed_pair(
    root: *mut pg_sys::PlannerInfo,
    ra: *mut Node,
    dec: *mut Node,
    sky_key: Oid,
    sky_point: Oid,
) -> Option<IndexedPair> {
    unsafe {
        let (ra, dec) = (as_var(ra)?, as_var(dec)?);
        if ra.varno != dec.varno || ra.varno < 1 {
            return None;
        }
        let rtable = list_ptrs((*(*root).parse).rtable);
        let rte = &*(*rtable.get(ra.varno as usize - 1)?).cast::<pg_sys::RangeTblEntry>();
        if rte.rtekind != pg_sys::RTEKind::RTE_RELATION {
            return None;
        }
        let rel = pg_sys::relation_open(rte.relid, pg_sys::AccessShareLock as i32);
        let reltuples = (*(*rel).rd_rel).reltuples as f64;
        let partitioned = (*(*rel).rd_rel).relkind as u8 == pg_sys::RELKIND_PARTITIONED_TABLE;
        let mut found = IndexedPair { rows: reltuples.max(0.0), partitioned, sky_key: false, sky_point: false };
        for idx in list_ptrs(pg_sys::RelationGetIndexList(rel)) {
            let index_oid = Oid::from(idx as usize as u32);
            let irel = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as i32);
            let form = &*(*irel).rd_index;
            let am = (*(*irel).rd_rel).relam;
            if form.indnatts == 1 && form.indisvalid && *form.indkey.values.as_ptr() == 0 {
                if let Some(&expr) = list_ptrs(pg_sys::RelationGetIndexExpressions(irel)).first() {
                    if (*expr).type_ == NodeTag::T_FuncExpr {
                        let f = &*expr.cast::<pg_sys::FuncExpr>();
                        let args = list_ptrs(f.args);
                        let same_columns = args.len() == 2
                            && matches!((as_var(args[0]), as_var(args[1])),
                                        (Some(a), Some(b)) if a.varattno == ra.varattno && b.varattno == dec.varattno);
                        if same_columns && f.funcid == sky_key && am == pg_sys::BTREE_AM_OID {
                            found.sky_key = true;
                        }
                        if same_columns && f.funcid == sky_point && am == pg_sys::GIST_AM_OID {
                            found.sky_point = true;
                        }
                    }
                }
            }
            pg_sys::index_close(irel, pg_sys::AccessShareLock as i32);
        }
        pg_sys::relation_close(rel, pg_sys::AccessShareLock as i32);
        (found.sky_key || found.sky_point).then_some(found)
    }
}

unsafe fn int4_const(v: i32) -> *mut Node {
    unsafe {
        pg_sys::makeConst(pg_sys::INT4OID, -1, Oid::INVALID, 4, Datum::from(v as isize as usize), false, true).cast()
    }
}

unsafe fn func(oid: Oid, rettype: Oid, args: &[*mut Node]) -> *mut Node {
    unsafe {
        pg_sys::makeFuncExpr(
            oid,
            rettype,
            list_of(args),
            Oid::INVALID,
            Oid::INVALID,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        )
        .cast()
    }
}

/// `left <op> right` with the btree operator of `strategy` in `family` for these types
/// (None if there is none).
unsafe fn btree_op(
    family: Oid,
    types: (Oid, Oid),
    strategy: u32,
    left: *mut Node,
    right: *mut Node,
) -> Option<*mut Node> {
    unsafe {
        let op = pg_sys::get_opfamily_member(family, types.0, types.1, strategy as i16);
        (op != Oid::INVALID).then(|| {
            pg_sys::make_opclause(op, pg_sys::BOOLOID, false, left.cast(), right.cast(), Oid::INVALID, Oid::INVALID)
                .cast()
        })
    }
}

unsafe fn bool_expr(op: pg_sys::BoolExprType::Type, args: &[*mut Node]) -> *mut Node {
    unsafe { pg_sys::makeBoolExpr(op, list_of(args), -1).cast() }
}

unsafe fn simplify(req: *mut pg_sys::SupportRequestSimplify) -> *mut Node {
    unsafe {
        let req = &*req;
        if req.root.is_null() || (*req.root).parse.is_null() {
            return std::ptr::null_mut();
        }
        let fcall = &*req.fcall;
        let f8 = pg_sys::FLOAT8OID;
        let dwithin = skycat_func("dwithin", &[f8, f8, f8, f8, f8]);
        if fcall.funcid != dwithin {
            return std::ptr::null_mut(); // dwithin_exact is never rewritten
        }
        let args = list_ptrs(fcall.args);
        if args.len() != 5 {
            return std::ptr::null_mut();
        }
        let sky_key = skycat_func("sky_key", &[f8, f8]);
        let i4 = pg_sys::INT4OID;
        let lo_fn = skycat_func("sky_key_bound_lo", &[f8, f8, f8, i4, i4]);
        let hi_fn = skycat_func("sky_key_bound_hi", &[f8, f8, f8, i4, i4]);
        let band_lo_fn = skycat_func("dec_band_lo", &[f8, f8]);
        let band_hi_fn = skycat_func("dec_band_hi", &[f8, f8]);
        let exact = skycat_func("dwithin_exact", &[f8, f8, f8, f8, f8]);
        let sky_point = skycat_func("sky_point", &[f8, f8]);
        let sky_cone = skycat_func("sky_cone", &[f8, f8, f8]);
        if [sky_key, lo_fn, hi_fn, band_lo_fn, band_hi_fn, exact, sky_point, sky_cone].contains(&Oid::INVALID) {
            return std::ptr::null_mut();
        }
        let keybound = pg_sys::get_func_rettype(lo_fn);
        let decbound = pg_sys::get_func_rettype(band_lo_fn);
        // Which pair is indexed? With both, probe the bigger table.
        let first = indexed_pair(req.root, args[0], args[1], sky_key, sky_point);
        let second = indexed_pair(req.root, args[2], args[3], sky_key, sky_point);
        let (inner, outer, table) = match (first, second) {
            (Some(a), Some(b)) if b.rows > a.rows => ((2, 3), (0, 1), b),
            (Some(a), _) => ((0, 1), (2, 3), a),
            (None, Some(b)) => ((2, 3), (0, 1), b),
            (None, None) => return std::ptr::null_mut(),
        };
        let cone = is_cone(args[outer.0], args[outer.1]);
        let mut conditions = Vec::new();
        if table.sky_point && (!table.sky_key || cone) {
            // The GiST index on sky_point: `sky_point(inner) <@ sky_cone(outer, r)`, exact by
            // itself (its operator is the same separation test). Preferred for cones when both
            // indexes exist: it reads only the rows inside the cone from the table.
            match cone_condition(&args, inner, outer, sky_point, sky_cone) {
                Some(c) => conditions.push(c),
                None => return std::ptr::null_mut(),
            }
        } else {
            match key_range_condition(&args, inner, outer, sky_key, (lo_fn, hi_fn, keybound), cone) {
                Some(c) => conditions
                    .extend([c, func(exact, pg_sys::BOOLOID, &args.iter().map(|&a| copy(a)).collect::<Vec<_>>())]),
                None => return std::ptr::null_mut(),
            }
        }
        if table.partitioned {
            // The circle's declination band on the indexed side, for run-time partition pruning
            // of declination stripes (a filter, harmless, when the table is partitioned otherwise).
            let band = |f: Oid| func(f, decbound, &[copy(args[outer.1]), copy(args[4])]);
            // dec >= band_lo(...) and dec <= band_hi(...), in float8's B-tree family.
            let bound = |strategy, f: Oid| {
                btree_op(FLOAT_BTREE_FAM_OID, (f8, decbound), strategy, copy(args[inner.1]), band(f))
            };
            conditions.extend(
                bound(pg_sys::BTGreaterEqualStrategyNumber, band_lo_fn)
                    .into_iter()
                    .chain(bound(pg_sys::BTLessEqualStrategyNumber, band_hi_fn)),
            );
            crate::plan_hooks::note_dec_band(band_lo_fn);
        }
        if table.partitioned || !cone || const_f64(args[outer.0]).is_none() || const_f64(args[outer.1]).is_none() {
            crate::plan_hooks::note_probe_statement();
        }
        bool_expr(pg_sys::BoolExprType::AND_EXPR, &conditions)
    }
}

/// `sky_point(inner ra, dec) <@ sky_cone(outer ra, dec, r)`, or None without the operator.
unsafe fn cone_condition(
    args: &[*mut Node],
    inner: (usize, usize),
    outer: (usize, usize),
    sky_point: Oid,
    sky_cone: Oid,
) -> Option<*mut Node> {
    unsafe {
        let (point_type, cone_type) = (pg_sys::get_func_rettype(sky_point), pg_sys::get_func_rettype(sky_cone));
        let op = pg_sys::OpernameGetOprid(skycat_name("<@"), point_type, cone_type);
        if op == Oid::INVALID {
            return None;
        }
        let point = func(sky_point, point_type, &[copy(args[inner.0]), copy(args[inner.1])]);
        let cone = func(sky_cone, cone_type, &[copy(args[outer.0]), copy(args[outer.1]), copy(args[4])]);
        Some(
            pg_sys::make_opclause(op, pg_sys::BOOLOID, false, point.cast(), cone.cast(), Oid::INVALID, Oid::INVALID)
                .cast(),
        )
    }
}

/// The OR of key ranges of the cover of the circle around the outer pair, on the inner pair's
/// sky_key (see the module comment), or None without the operators.
unsafe fn key_range_condition(
    args: &[*mut Node],
    inner: (usize, usize),
    outer: (usize, usize),
    sky_key: Oid,
    (lo_fn, hi_fn, keybound): (Oid, Oid, Oid),
    cone: bool,
) -> Option<*mut Node> {
    unsafe {
        let (i8, fam) = (pg_sys::INT8OID, pg_sys::INTEGER_BTREE_FAM_OID);
        let key = func(sky_key, pg_sys::INT8OID, &[copy(args[inner.0]), copy(args[inner.1])]);
        // Wide cones get more, finer ranges; matching radii and radii only known at run time get
        // MAX_RANGES (the bound functions are told which).
        let n_slots = skykey::slots_for(const_f64(args[4]), cone);
        let arm = |bound_type: Oid, lo: *mut Node, hi: *mut Node| {
            let ge = btree_op(fam, (i8, bound_type), pg_sys::BTGreaterEqualStrategyNumber, copy(key), lo)?;
            let le = btree_op(fam, (i8, bound_type), pg_sys::BTLessEqualStrategyNumber, copy(key), hi)?;
            Some(bool_expr(pg_sys::BoolExprType::AND_EXPR, &[ge, le]))
        };
        let mut arms = Vec::with_capacity(n_slots);
        if let Some(ranges) = constant_cone(args, outer, n_slots) {
            // A constant cone: the ranges themselves, as constants. The planner then estimates
            // them from the index statistics (no default guesses, so no needless JIT on a big
            // table) and EXPLAIN shows the key ranges.
            for (lo, hi) in ranges {
                match arm(i8, int8_const(lo), int8_const(hi)) {
                    Some(a) => arms.push(a),
                    None => return None,
                }
            }
        } else {
            for slot in 0..n_slots as i32 {
                let bound_args = |_: ()| {
                    [
                        copy(args[outer.0]),
                        copy(args[outer.1]),
                        copy(args[4]),
                        int4_const(slot),
                        int4_const(n_slots as i32),
                    ]
                };
                match arm(keybound, func(lo_fn, keybound, &bound_args(())), func(hi_fn, keybound, &bound_args(()))) {
                    Some(a) => arms.push(a),
                    None => return None, // the operators are missing: no rewrite
                }
            }
        }
        Some(bool_expr(pg_sys::BoolExprType::OR_EXPR, &arms))
    }
}

unsafe fn int8_const(v: i64) -> *mut Node {
    unsafe { pg_sys::makeConst(pg_sys::INT8OID, -1, Oid::INVALID, 8, Datum::from(v as usize), false, true).cast() }
}

/// The key ranges of the cone (args[outer.0], args[outer.1], args[4]) when all three are valid
/// constants (invalid ones are left to the run-time functions, which raise the error).
unsafe fn constant_cone(args: &[*mut Node], outer: (usize, usize), n_slots: usize) -> Option<Vec<(i64, i64)>> {
    unsafe {
        let (ra, dec, r) = (const_f64(args[outer.0])?, const_f64(args[outer.1])?, const_f64(args[4])?);
        if !ra.is_finite() || !(-90.0..=90.0).contains(&dec) || !r.is_finite() || r < 0.0 {
            return None;
        }
        Some(skykey::key_ranges(wrap_ra(ra), dec, r, n_slots))
    }
}

/// Whether a centre (ra, dec) stays fixed during a scan of the other side: no column of this
/// query level in it (a constant, a parameter, or a column of an outer query, as in a LATERAL
/// subquery run once per outer row).
unsafe fn is_cone(ra: *mut Node, dec: *mut Node) -> bool {
    unsafe { !pg_sys::contain_vars_of_level(ra, 0) && !pg_sys::contain_vars_of_level(dec, 0) }
}

/// The value of a non-NULL constant of type `ty`, if the node is one.
unsafe fn const_datum(n: *mut Node, ty: Oid) -> Option<Datum> {
    unsafe {
        if n.is_null() || (*n).type_ != NodeTag::T_Const {
            return None;
        }
        let c = &*n.cast::<pg_sys::Const>();
        (!c.constisnull && c.consttype == ty).then_some(c.constvalue)
    }
}

/// An int4 constant argument, if it is one.
unsafe fn const_i32(n: *mut Node) -> Option<i32> {
    unsafe { const_datum(n, pg_sys::INT4OID).map(|d| d.value() as i32) }
}

/// A float8 constant argument, if it is one.
pub(crate) unsafe fn const_f64(n: *mut Node) -> Option<f64> {
    unsafe { const_datum(n, pg_sys::FLOAT8OID).map(|d| f64::from_bits(d.value() as u64)) }
}

/// Fraction of pairs (join) or rows (cone) within the radius, for a sky of uniform density.
/// For `dwithin_exact` reached through the rewrite, divide out what PostgreSQL already
/// counted for the key-range condition: the cover's sky fraction when the cone is constant,
/// the OR of [`range_fraction`] over the ranges (what `bound_selectivity` said) otherwise.
unsafe fn selectivity(req: &pg_sys::SupportRequestSelectivity) -> Option<f64> {
    unsafe {
        let args = list_ptrs(req.args);
        if args.len() != 5 {
            return None;
        }
        let r = const_f64(args[4]).filter(|r| r.is_finite() && *r >= 0.0).unwrap_or(ASSUMED_RADIUS_ARCSEC);
        let circle = sphere::cap_sky_fraction(r).max(1e-15);
        let f8 = pg_sys::FLOAT8OID;
        if req.funcid != skycat_func("dwithin_exact", &[f8, f8, f8, f8, f8]) {
            return Some(circle);
        }
        let constant = |a: usize, b: usize| Some((const_f64(args[a])?, const_f64(args[b])?));
        let cone = is_cone(args[2], args[3]) || is_cone(args[0], args[1]);
        let already = match constant(2, 3).or_else(|| constant(0, 1)) {
            Some((ra, dec)) if dec.abs() <= 90.0 && ra.is_finite() => {
                skykey::ranges_sky_fraction(&skykey::key_ranges(wrap_ra(ra), dec, r, skykey::slots_for(Some(r), true)))
            }
            _ => {
                let n = skykey::slots_for(const_f64(args[4]), cone);
                1.0 - (1.0 - range_fraction(Some(r), n)).powi(n as i32)
            }
        };
        Some((circle / already.max(circle)).clamp(1e-15, 1.0))
    }
}
