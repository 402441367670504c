//! `sky_point` as an indexable position: the constructor, `sky_cone`, the separation operator
//! `<->` (arcsec), the within-cone operator `<@`, and the GiST operator class that answers
//! both, with `ORDER BY pos <-> point LIMIT k` (k nearest neighbours, no radius) from the index.
//!
//! `sky_point` stays the composite `(ra, dec)` that `pixel_to_sky`, `mean_position` and
//! `propagate` return, so `(p).ra` reads it whatever the search_path. The usual index is an
//! expression index, `CREATE INDEX ON t USING gist (skycat.sky_point(ra, dec))`, which stores
//! nothing in the table. Index keys are 24-byte boxes of unit vectors (skycat_core::skybox);
//! their tests are conservative and every match is rechecked with the exact separation.

use pgrx::pg_sys::{self, Datum};
use skycat_core::skybox::{self, SkyBox};
use skycat_core::sphere::{self, UnitVector};
use skycat_core::validate;

use crate::errors::OrSqlError;
use crate::fastcall::{scalar_fn, v1_function, FromArg};
use crate::geometry::position;
use crate::sqltypes::{CStringArg, CStringRet, Float8Fields, Float8Row};

/// Validated (ra, dec) of a `sky_point` argument.
fn point(function: &str, p: Float8Fields<2>) -> (f64, f64) {
    let Some([ra, dec]) = p.0 else {
        raise_null(function, "sky_point");
    };
    position(function, "ra", ra, "dec", dec)
}

/// Validated (ra, dec, radius_arcsec) of a `sky_cone` argument.
fn cone(function: &str, c: Float8Fields<3>) -> (f64, f64, f64) {
    let Some([ra, dec, r]) = c.0 else {
        raise_null(function, "sky_cone");
    };
    let (ra, dec) = position(function, "ra", ra, "dec", dec);
    let r = validate::non_negative("radius_arcsec", "arcseconds", r).or_sql_error(function);
    (ra, dec, r)
}

fn raise_null(function: &str, type_name: &str) -> ! {
    pgrx::ereport!(
        pgrx::PgLogLevel::ERROR,
        pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("skycat.{function}: a {type_name} with a NULL field"),
        format!(
            "Build it with skycat.{type_name}(...); a NULL position is a NULL {type_name}, not one with NULL fields."
        )
    );
    unreachable!("ereport(ERROR) does not return")
}

scalar_fn! {
    /// The position (ra wrapped to [0, 360)), checked like every skycat position argument.
    sql_name = "sky_point_make";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION sky_point(ra float8, \"dec\" float8) RETURNS sky_point
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_make';
           COMMENT ON FUNCTION sky_point(float8, float8) IS
             'The sky_point (ra, dec), ICRS degrees (ra wrapped to [0, 360)). Index it with CREATE INDEX ON t USING gist (skycat.sky_point(ra, dec)) for <@ cones and <-> nearest neighbours.';";
    fn sky_point_make(ra: f64, dec: f64) -> Float8Row<2> {
        let (ra, dec) = position("sky_point", "ra", ra, "dec", dec);
        Float8Row([ra, dec])
    }
}

scalar_fn! {
    /// A cone: centre and radius.
    sql_name = "sky_cone_make";
    requires = ["calibration_shell_types"];
    sql = "CREATE TYPE sky_cone AS (ra float8, \"dec\" float8, radius_arcsec float8);
           COMMENT ON TYPE sky_cone IS 'A cone on the sky: centre (ra, dec) in ICRS degrees and radius in arcseconds.';
           CREATE FUNCTION sky_cone(ra float8, \"dec\" float8, radius_arcsec float8) RETURNS sky_cone
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_cone_make';
           COMMENT ON FUNCTION sky_cone(float8, float8, float8) IS
             'The cone of radius_arcsec around (ra, dec), ICRS degrees: p <@ skycat.sky_cone(...) is true for the sky_points p inside it.';";
    fn sky_cone_make(ra: f64, dec: f64, radius_arcsec: f64) -> Float8Row<3> {
        let (ra, dec, r) = cone("sky_cone", Float8Fields(Some([ra, dec, radius_arcsec])));
        Float8Row([ra, dec, r])
    }
}

scalar_fn! {
    /// `<->`: the separation in arcseconds.
    sql_name = "sky_point_distance";
    requires = ["calibration_shell_types"];
    sql = "CREATE FUNCTION sky_point_distance(a sky_point, b sky_point) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_distance';
           COMMENT ON FUNCTION sky_point_distance(sky_point, sky_point) IS
             'Separation of two sky_points in arcseconds (the <-> operator; sep_arcsec).';
           CREATE OPERATOR <-> (LEFTARG = sky_point, RIGHTARG = sky_point, FUNCTION = sky_point_distance,
                                COMMUTATOR = OPERATOR(skycat.<->));
           COMMENT ON OPERATOR <-> (sky_point, sky_point) IS
             'Separation in arcseconds; ORDER BY pos <-> point LIMIT k is answered by a GiST index on pos.';";
    fn sky_point_distance(a: Float8Fields<2>, b: Float8Fields<2>) -> f64 {
        let (ra1, dec1) = point("sky_point_distance", a);
        let (ra2, dec2) = point("sky_point_distance", b);
        sphere::sep_arcsec(ra1, dec1, ra2, dec2)
    }
}

scalar_fn! {
    /// `<@`: the point is inside the cone (separation <= radius, as dwithin).
    sql_name = "sky_point_in_cone";
    requires = ["calibration_shell_types", "sky_cone_make", "cone_restrict_sel", "cone_join_sel"];
    sql = "CREATE FUNCTION sky_point_in_cone(p sky_point, c sky_cone) RETURNS boolean
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_in_cone';
           COMMENT ON FUNCTION sky_point_in_cone(sky_point, sky_cone) IS
             'True iff the point is within the cone (separation <= radius, as dwithin); the <@ operator.';
           CREATE OPERATOR <@ (LEFTARG = sky_point, RIGHTARG = sky_cone, FUNCTION = sky_point_in_cone,
                               RESTRICT = cone_restrict_sel, JOIN = cone_join_sel);
           COMMENT ON OPERATOR <@ (sky_point, sky_cone) IS
             'Point within cone; answered by a GiST index on the sky_point.';";
    fn sky_point_in_cone(p: Float8Fields<2>, c: Float8Fields<3>) -> bool {
        let (ra, dec) = point("sky_point_in_cone", p);
        let (cra, cdec, r) = cone("sky_point_in_cone", c);
        sphere::sep_arcsec(ra, dec, cra, cdec) <= r
    }
}

// ------------------------------------------------------------------ the GiST operator class

/// The key behind a GISTENTRY.
unsafe fn key_of(entry: *const pg_sys::GISTENTRY) -> SkyBox {
    unsafe { (*entry).key.cast_mut_ptr::<SkyBox>().read_unaligned() }
}

fn palloc_box(b: SkyBox) -> Datum {
    // SAFETY: palloc returns enough bytes for a SkyBox or raises an ERROR.
    unsafe {
        let p = pg_sys::palloc(size_of::<SkyBox>()) as *mut SkyBox;
        p.write_unaligned(b);
        Datum::from(p)
    }
}

/// The index's function argument `i` (a pointer), and the entries of a GistEntryVector.
unsafe fn ptr_arg<T>(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> *mut T {
    unsafe { (*fcinfo).args.as_slice(i + 1)[i].value.cast_mut_ptr::<T>() }
}

unsafe fn entries(v: *const pg_sys::GistEntryVector) -> &'static [pg_sys::GISTENTRY] {
    unsafe { (*v).vector.as_slice((*v).n as usize) }
}

scalar_fn! {
    /// Text form of an index key (for inspection tools only).
    sql_name = "sky_box_out";
    requires = ["calibration_shell_types"];
    sql = "CREATE TYPE sky_box;
           CREATE FUNCTION sky_box_in(cstring) RETURNS sky_box IMMUTABLE STRICT PARALLEL SAFE
             LANGUAGE c AS 'MODULE_PATHNAME', 'sky_box_in';
           CREATE FUNCTION sky_box_out(sky_box) RETURNS cstring IMMUTABLE STRICT PARALLEL SAFE
             LANGUAGE c AS 'MODULE_PATHNAME', 'sky_box_out';
           CREATE TYPE sky_box (INPUT = sky_box_in, OUTPUT = sky_box_out, INTERNALLENGTH = 24,
                                ALIGNMENT = int4, STORAGE = plain);
           COMMENT ON TYPE sky_box IS 'Internal: the key of the GiST index on sky_point (a box of unit vectors).';";
    fn sky_box_out(b: BoxArg) -> CStringRet {
        let b = b.0;
        CStringRet(format!("({},{},{}),({},{},{})", b.lo[0], b.lo[1], b.lo[2], b.hi[0], b.hi[1], b.hi[2]))
    }
}

scalar_fn! {
    /// Index keys are not typed in.
    sql_name = "sky_box_in";
    requires = ["sky_box_out"];
    sql = "";
    fn sky_box_in(_text: CStringArg) -> CStringRet {
        pgrx::ereport!(
            pgrx::PgLogLevel::ERROR,
            pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "skycat.sky_box is the internal key of the sky_point index and has no input form"
        );
        unreachable!()
    }
}

/// A `sky_box` argument.
pub struct BoxArg(SkyBox);

impl FromArg for BoxArg {
    fn from_arg(d: Datum) -> Self {
        // SAFETY: the SQL declaration types this argument sky_box (24 bytes, by reference).
        BoxArg(unsafe { d.cast_mut_ptr::<SkyBox>().read_unaligned() })
    }
}

thread_local! {
    /// The last query of consistent / distance, validated, as (its fields' bits, unit vector,
    /// largest squared chord of a cone): a scan asks about the same query for every entry of every page it reads.
    static LAST_QUERY: std::cell::Cell<([u64; 3], UnitVector, f64)> =
        const { std::cell::Cell::new(([u64::MAX; 3], UnitVector { x: 0.0, y: 0.0, z: 0.0 }, 0.0)) };
}

/// The unit vector and squared chord of a query whose fields have these bits, from the cache or
/// computed (and validated) now.
fn cached_query(key: [u64; 3], compute: impl FnOnce() -> (UnitVector, f64)) -> (UnitVector, f64) {
    let (last, q, r) = LAST_QUERY.get();
    if last == key {
        return (q, r);
    }
    let (q, r) = compute();
    LAST_QUERY.set((key, q, r));
    (q, r)
}

/// A `<@` query: the cone's unit vector and the largest squared chord inside it.
fn cone_query(d: Datum) -> (UnitVector, f64) {
    let fields = Float8Fields::<3>::from_arg(d);
    match fields.0 {
        Some(f) => cached_query(f.map(f64::to_bits), || {
            let (ra, dec, r) = cone("sky_point <@", fields);
            (UnitVector::from_radec(ra, dec), skybox::max_chord2(r))
        }),
        None => raise_null("sky_point <@", "sky_cone"),
    }
}

/// A `<->` query: the point's unit vector. (Its key's third word is a NaN's bits, so it is
/// never taken for a cone's.)
fn point_query(d: Datum) -> UnitVector {
    let fields = Float8Fields::<2>::from_arg(d);
    match fields.0 {
        Some([ra, dec]) => cached_query([ra.to_bits(), dec.to_bits(), u64::MAX], || {
            let (ra, dec) = point("sky_point <->", fields);
            (UnitVector::from_radec(ra, dec), 0.0)
        }),
        None => raise_null("sky_point <->", "sky_point"),
    }
    .0
}

v1_function! {
    /// consistent(entry, query sky_cone, strategy, subtype, recheck): may the subtree hold a
    /// point inside the cone? Always rechecked.
    fn sky_point_gist_consistent(fcinfo) {
        let entry = ptr_arg::<pg_sys::GISTENTRY>(fcinfo, 0);
        let query = (*fcinfo).args.as_slice(2)[1].value;
        *ptr_arg::<bool>(fcinfo, 4) = true;
        let (q, max_chord2) = cone_query(query);
        Datum::from(key_of(entry).min_chord2(&q) <= max_chord2)
    }
}

v1_function! {
    /// union(entries, size): the box of all.
    fn sky_point_gist_union(fcinfo) {
        let v = ptr_arg::<pg_sys::GistEntryVector>(fcinfo, 0);
        let b = entries(v).iter().fold(SkyBox::EMPTY, |b, e| b.union(&key_of(e)));
        *ptr_arg::<i32>(fcinfo, 1) = size_of::<SkyBox>() as i32;
        palloc_box(b)
    }
}

v1_function! {
    /// compress(entry): a leaf's sky_point becomes its box (an invalid position is an error,
    /// as everywhere; NULLs never reach here).
    fn sky_point_gist_compress(fcinfo) {
        let entry = ptr_arg::<pg_sys::GISTENTRY>(fcinfo, 0);
        if !(*entry).leafkey {
            return Datum::from(entry);
        }
        let (ra, dec) = point("sky_point index", Float8Fields::<2>::from_arg((*entry).key));
        let out = pg_sys::palloc(size_of::<pg_sys::GISTENTRY>()) as *mut pg_sys::GISTENTRY;
        out.write(pg_sys::GISTENTRY {
            key: palloc_box(SkyBox::of_point(ra, dec)),
            rel: (*entry).rel,
            page: (*entry).page,
            offset: (*entry).offset,
            leafkey: false,
        });
        Datum::from(out)
    }
}

v1_function! {
    /// penalty(orig, new, penalty): growth of the box's edges.
    fn sky_point_gist_penalty(fcinfo) {
        let orig = key_of(ptr_arg(fcinfo, 0));
        let new = key_of(ptr_arg(fcinfo, 1));
        let out = ptr_arg::<f32>(fcinfo, 2);
        *out = (orig.union(&new).margin() - orig.margin()) as f32;
        Datum::from(out)
    }
}

v1_function! {
    /// picksplit(entries, splitvec): skycat_core::skybox::split.
    fn sky_point_gist_picksplit(fcinfo) {
        let v = ptr_arg::<pg_sys::GistEntryVector>(fcinfo, 0);
        let split = ptr_arg::<pg_sys::GIST_SPLITVEC>(fcinfo, 1);
        // Entries are at offsets 1 ..= n - 1.
        let all = entries(v);
        let boxes: Vec<SkyBox> = all[1..].iter().map(|e| key_of(e)).collect();
        let mut left_side = vec![false; boxes.len()];
        for i in skybox::split(&boxes) {
            left_side[i] = true;
        }
        let left = pg_sys::palloc(all.len() * size_of::<pg_sys::OffsetNumber>()) as *mut pg_sys::OffsetNumber;
        let right = pg_sys::palloc(all.len() * size_of::<pg_sys::OffsetNumber>()) as *mut pg_sys::OffsetNumber;
        let (mut nl, mut nr) = (0usize, 0usize);
        let (mut lbox, mut rbox) = (SkyBox::EMPTY, SkyBox::EMPTY);
        for (i, b) in boxes.iter().enumerate() {
            let offset = (i + 1) as pg_sys::OffsetNumber;
            if left_side[i] {
                *left.add(nl) = offset;
                nl += 1;
                lbox = lbox.union(b);
            } else {
                *right.add(nr) = offset;
                nr += 1;
                rbox = rbox.union(b);
            }
        }
        (*split).spl_left = left;
        (*split).spl_nleft = nl as i32;
        (*split).spl_ldatum = palloc_box(lbox);
        (*split).spl_right = right;
        (*split).spl_nright = nr as i32;
        (*split).spl_rdatum = palloc_box(rbox);
        Datum::from(split)
    }
}

v1_function! {
    /// same(a, b, result).
    fn sky_point_gist_same(fcinfo) {
        let a = ptr_arg::<SkyBox>(fcinfo, 0).read_unaligned();
        let b = ptr_arg::<SkyBox>(fcinfo, 1).read_unaligned();
        let out = ptr_arg::<bool>(fcinfo, 2);
        *out = a == b;
        Datum::from(out)
    }
}

v1_function! {
    /// distance(entry, query sky_point, strategy, subtype, recheck): a lower bound of the
    /// separation (arcsec) to any point below; leaves are rechecked with the exact one.
    fn sky_point_gist_distance(fcinfo) {
        let entry = ptr_arg::<pg_sys::GISTENTRY>(fcinfo, 0);
        let query = (*fcinfo).args.as_slice(2)[1].value;
        *ptr_arg::<bool>(fcinfo, 4) = true;
        let q = point_query(query);
        Datum::from(key_of(entry).min_sep_arcsec(&q).to_bits() as usize)
    }
}

unsafe extern "C-unwind" fn cmp_full(a: Datum, b: Datum, _: pg_sys::SortSupport) -> i32 {
    // SAFETY: the sort compares keys made by compress (SkyBox pointers).
    let (a, b) = unsafe { (a.cast_mut_ptr::<SkyBox>().read_unaligned(), b.cast_mut_ptr::<SkyBox>().read_unaligned()) };
    a.sort_key().cmp(&b.sort_key()) as i32
}

unsafe extern "C-unwind" fn abbreviate(original: Datum, _: pg_sys::SortSupport) -> Datum {
    // SAFETY: as cmp_full.
    Datum::from(unsafe { original.cast_mut_ptr::<SkyBox>().read_unaligned() }.sort_key() as usize)
}

unsafe extern "C-unwind" fn cmp_abbreviated(a: Datum, b: Datum, _: pg_sys::SortSupport) -> i32 {
    (a.value() as i64).cmp(&(b.value() as i64)) as i32
}

unsafe extern "C-unwind" fn never_abort(_: i32, _: pg_sys::SortSupport) -> bool {
    false
}

v1_function! {
    /// sortsupport(ssup): index builds sort the leaves by the sky key of their positions
    /// and pack them into pages (much faster than inserting them one by one and splitting).
    fn sky_point_gist_sortsupport(fcinfo) {
        let ssup = ptr_arg::<pg_sys::SortSupportData>(fcinfo, 0);
        if (*ssup).abbreviate {
            (*ssup).comparator = Some(cmp_abbreviated);
            (*ssup).abbrev_converter = Some(abbreviate);
            (*ssup).abbrev_abort = Some(never_abort);
            (*ssup).abbrev_full_comparator = Some(cmp_full);
        } else {
            (*ssup).comparator = Some(cmp_full);
        }
        Datum::from(0usize)
    }
    sql(
        "CREATE FUNCTION sky_point_gist_consistent(internal, sky_point, smallint, oid, internal) RETURNS boolean
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_consistent';
         CREATE FUNCTION sky_point_gist_union(internal, internal) RETURNS sky_box
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_union';
         CREATE FUNCTION sky_point_gist_compress(internal) RETURNS internal
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_compress';
         CREATE FUNCTION sky_point_gist_penalty(internal, internal, internal) RETURNS internal
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_penalty';
         CREATE FUNCTION sky_point_gist_picksplit(internal, internal) RETURNS internal
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_picksplit';
         CREATE FUNCTION sky_point_gist_same(sky_box, sky_box, internal) RETURNS internal
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_same';
         CREATE FUNCTION sky_point_gist_distance(internal, sky_point, smallint, oid, internal) RETURNS float8
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_distance';
         CREATE FUNCTION sky_point_gist_sortsupport(internal) RETURNS void
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_point_gist_sortsupport';
         CREATE OPERATOR CLASS sky_point_ops DEFAULT FOR TYPE sky_point USING gist AS
           OPERATOR 1 <@ (sky_point, sky_cone),
           OPERATOR 15 <-> (sky_point, sky_point) FOR ORDER BY pg_catalog.float_ops,
           FUNCTION 1 sky_point_gist_consistent(internal, sky_point, smallint, oid, internal),
           FUNCTION 2 sky_point_gist_union(internal, internal),
           FUNCTION 3 sky_point_gist_compress(internal),
           FUNCTION 5 sky_point_gist_penalty(internal, internal, internal),
           FUNCTION 6 sky_point_gist_picksplit(internal, internal),
           FUNCTION 7 sky_point_gist_same(sky_box, sky_box, internal),
           FUNCTION 8 sky_point_gist_distance(internal, sky_point, smallint, oid, internal),
           FUNCTION 11 sky_point_gist_sortsupport(internal),
           STORAGE sky_box;
         COMMENT ON OPERATOR CLASS sky_point_ops USING gist IS
           'GiST index on sky_point: p <@ sky_cone(...) cone searches and ORDER BY p <-> point nearest neighbours.';",
        name = "sky_point_gist",
        requires = ["sky_point_distance", "sky_point_in_cone", "sky_box_in"]
    );
}
