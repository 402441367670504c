//! `sky_key`, `dwithin` and the helpers its index condition calls (SQL-API.md section 1).
//!
//! `dwithin(ra1, dec1, ra2, dec2, r)` is an exact test. Its planner support function
//! (src/planner.rs) rewrites it, when one argument pair is a table's columns covered by an
//! index on `skycat.sky_key(ra, dec)`, into
//!   (sky_key(ra_i, dec_i) BETWEEN sky_key_range_lo(ra_o, dec_o, r, 0, n) AND ..._hi(..., 0, n)
//!    OR ... one arm per range slot, n of them (4, or 16 for cones wider than 10") ...)
//!   AND dwithin_exact(ra1, dec1, ra2, dec2, r)
//! which PostgreSQL runs as a BitmapOr of index scans, parameterised by the other side in joins.

use skycat_core::skykey;
use skycat_core::{sphere, validate};

use crate::errors::OrSqlError;
use crate::fastcall::scalar_fn;
use crate::geometry::position;

fn radius_or_zero(function: &str, radius_arcsec: f64) -> f64 {
    validate::non_negative("radius_arcsec", "arcseconds", radius_arcsec).or_sql_error(function)
}

/// The exact predicate shared by `dwithin` and `dwithin_exact`.
fn within(function: &str, ra1: f64, dec1: f64, ra2: f64, dec2: f64, radius_arcsec: f64) -> bool {
    let (ra1, dec1) = position(function, "ra1", ra1, "dec1", dec1);
    let (ra2, dec2) = position(function, "ra2", ra2, "dec2", dec2);
    let r = radius_or_zero(function, radius_arcsec);
    sphere::sep_arcsec(ra1, dec1, ra2, dec2) <= r
}

scalar_fn! {
    /// The index key: HEALPix NESTED at depth 29.
    sql_name = "sky_key";
    sql = "CREATE FUNCTION sky_key(ra float8, \"dec\" float8) RETURNS bigint
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_key';
           COMMENT ON FUNCTION sky_key(float8, float8) IS
             'Sky index key (HEALPix NESTED depth 29). CREATE INDEX ON t (skycat.sky_key(ra, dec)) makes skycat.dwithin on t an index scan.';";
    fn sky_key(ra: f64, dec: f64) -> i64 {
        let (ra, dec) = position("sky_key", "ra", ra, "dec", dec);
        skykey::sky_key(ra, dec)
    }
}

/// Bound `upper` (false: lower) of range `slot` of the cover of a cone; empty slots are the
/// empty range [1, 0].
fn range_bound(function: &str, ra: f64, dec: f64, radius_arcsec: f64, slot: i32, n_slots: i32, upper: bool) -> i64 {
    let (ra, dec) = position(function, "ra", ra, "dec", dec);
    let r = radius_or_zero(function, radius_arcsec);
    let n = validate::int_in_range("n_slots", 1, 1024, n_slots as i64).or_sql_error(function) as usize;
    skykey::range_bound(ra, dec, r, slot, n, upper)
}

scalar_fn! {
    /// Lower bound of key range `slot` of a cone's cover (used by dwithin's index condition).
    sql_name = "sky_key_range_lo";
    sql = "CREATE FUNCTION sky_key_range_lo(ra float8, \"dec\" float8, radius_arcsec float8, slot int, n_slots int) RETURNS bigint
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_key_range_lo';
           COMMENT ON FUNCTION sky_key_range_lo(float8, float8, float8, int, int) IS
             'Internal: lower sky_key bound of range slot (0-based) of the n_slots-range cover of the cone; empty slots are [1, 0].';";
    fn sky_key_range_lo(ra: f64, dec: f64, radius_arcsec: f64, slot: i32, n_slots: i32) -> i64 {
        range_bound("sky_key_range_lo", ra, dec, radius_arcsec, slot, n_slots, false)
    }
}

scalar_fn! {
    /// Upper bound of key range `slot` of a cone's cover.
    sql_name = "sky_key_range_hi";
    sql = "CREATE FUNCTION sky_key_range_hi(ra float8, \"dec\" float8, radius_arcsec float8, slot int, n_slots int) RETURNS bigint
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_key_range_hi';
           COMMENT ON FUNCTION sky_key_range_hi(float8, float8, float8, int, int) IS
             'Internal: upper sky_key bound of range slot (0-based) of the n_slots-range cover of the cone; empty slots are [1, 0].';";
    fn sky_key_range_hi(ra: f64, dec: f64, radius_arcsec: f64, slot: i32, n_slots: i32) -> i64 {
        range_bound("sky_key_range_hi", ra, dec, radius_arcsec, slot, n_slots, true)
    }
}

// The bounds of dwithin's index condition, as types of their own. A `sky_key >= bound` whose
// bound comes from the other table of a join is, to PostgreSQL, an inequality between two
// tables, estimated at 1/3 of the table per inequality (1/9 per range): the planner then
// expected every probe to return a ninth of the table and preferred testing every pair. With
// the bound typed `keybound` the comparison is an operator of skycat's with skycat's estimator
// (the sky fraction of a range of the cover, src/planner.rs), and since the operators are
// members of the btree family of bigint (cross-type, with btint8cmp as their order function)
// an ordinary index on `sky_key(ra, dec)` still accepts them as index conditions. `decbound`
// does the same for the declination band of the circle on a declination-partitioned table
// (float8's btree family), so that run-time partition pruning keeps only the stripes the circle
// meets; its estimator says 1 (the band is implied by the circle, already counted).
// The types are int8 and float8 in all but name: input and output are PostgreSQL's own
// functions. The comparisons are skycat's C functions rather than LANGUAGE internal ones
// naming btint8cmp & co.: a B-tree scan with a cross-type key looks its order function up at
// every (re)scan, and an internal function is found by a linear search of PostgreSQL's ~3,000
// built-in names (measured: twice the time per probe of a 1M x 1M join).
pgrx::extension_sql!(
    r#"
CREATE TYPE keybound;
CREATE FUNCTION keybound_in(cstring) RETURNS keybound IMMUTABLE STRICT PARALLEL SAFE LANGUAGE internal AS 'int8in';
CREATE FUNCTION keybound_out(keybound) RETURNS cstring IMMUTABLE STRICT PARALLEL SAFE LANGUAGE internal AS 'int8out';
CREATE TYPE keybound (INPUT = keybound_in, OUTPUT = keybound_out, LIKE = pg_catalog.int8);
COMMENT ON TYPE keybound IS 'Internal: a sky_key bound of dwithin''s index condition (an int8 with skycat''s estimates).';
CREATE FUNCTION keybound_ge(bigint, keybound) RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'keybound_ge';
CREATE FUNCTION keybound_le(bigint, keybound) RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'keybound_le';
CREATE FUNCTION keybound_cmp(bigint, keybound) RETURNS integer IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'keybound_cmp';
CREATE OPERATOR >= (LEFTARG = bigint, RIGHTARG = keybound, FUNCTION = keybound_ge,
                    RESTRICT = bound_restrict_sel, JOIN = bound_join_sel);
CREATE OPERATOR <= (LEFTARG = bigint, RIGHTARG = keybound, FUNCTION = keybound_le,
                    RESTRICT = bound_restrict_sel, JOIN = bound_join_sel);
ALTER OPERATOR FAMILY pg_catalog.integer_ops USING btree ADD
  OPERATOR 2 skycat.<= (bigint, keybound),
  OPERATOR 4 skycat.>= (bigint, keybound),
  FUNCTION 1 (bigint, keybound) keybound_cmp(bigint, keybound);
-- The bounds as keybounds: sky_key_range_lo/hi's C functions, declared with this result type.
CREATE FUNCTION sky_key_bound_lo(ra float8, "dec" float8, radius_arcsec float8, slot int, n_slots int) RETURNS keybound
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_key_range_lo';
COMMENT ON FUNCTION sky_key_bound_lo(float8, float8, float8, int, int) IS
  'Internal: sky_key_range_lo as a keybound (dwithin''s index condition in joins and cone searches).';
CREATE FUNCTION sky_key_bound_hi(ra float8, "dec" float8, radius_arcsec float8, slot int, n_slots int) RETURNS keybound
  IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sky_key_range_hi';
COMMENT ON FUNCTION sky_key_bound_hi(float8, float8, float8, int, int) IS
  'Internal: sky_key_range_hi as a keybound (dwithin''s index condition in joins and cone searches).';

CREATE TYPE decbound;
CREATE FUNCTION decbound_in(cstring) RETURNS decbound IMMUTABLE STRICT PARALLEL SAFE LANGUAGE internal AS 'float8in';
CREATE FUNCTION decbound_out(decbound) RETURNS cstring IMMUTABLE STRICT PARALLEL SAFE LANGUAGE internal AS 'float8out';
CREATE TYPE decbound (INPUT = decbound_in, OUTPUT = decbound_out, LIKE = pg_catalog.float8);
COMMENT ON TYPE decbound IS 'Internal: a declination bound of dwithin''s partition-pruning condition (a float8 estimated as implied).';
CREATE FUNCTION decbound_ge(float8, decbound) RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'decbound_ge';
CREATE FUNCTION decbound_le(float8, decbound) RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'decbound_le';
CREATE FUNCTION decbound_cmp(float8, decbound) RETURNS integer IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'decbound_cmp';
CREATE OPERATOR >= (LEFTARG = float8, RIGHTARG = decbound, FUNCTION = decbound_ge,
                    RESTRICT = bound_restrict_sel, JOIN = bound_join_sel);
CREATE OPERATOR <= (LEFTARG = float8, RIGHTARG = decbound, FUNCTION = decbound_le,
                    RESTRICT = bound_restrict_sel, JOIN = bound_join_sel);
ALTER OPERATOR FAMILY pg_catalog.float_ops USING btree ADD
  OPERATOR 2 skycat.<= (float8, decbound),
  OPERATOR 4 skycat.>= (float8, decbound),
  FUNCTION 1 (float8, decbound) decbound_cmp(float8, decbound);
"#,
    name = "bound_types",
    requires = ["bound_restrict_sel", "bound_join_sel", "sky_key_range_lo", "sky_key_range_hi"]
);

/// float8's B-tree order: NaN after every number and equal to itself (as btfloat8cmp).
fn float8_order(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
    }
}

macro_rules! bound_comparisons {
    ($($name:ident($t:ty) $body:expr;)*) => {$(
        crate::fastcall::v1_function! {
            /// A comparison of the `keybound` / `decbound` operators (see above).
            fn $name(fcinfo) {
                let a = (*fcinfo).args.as_slice(2);
                let (x, y) = (<$t as crate::fastcall::FromArg>::from_arg(a[0].value), <$t as crate::fastcall::FromArg>::from_arg(a[1].value));
                #[allow(clippy::redundant_closure_call)]
                crate::fastcall::IntoRet::into_ret(($body)(x, y), fcinfo)
            }
        }
    )*};
}

bound_comparisons! {
    keybound_cmp(i64) |x: i64, y: i64| x.cmp(&y) as i32;
    keybound_ge(i64) |x: i64, y: i64| x >= y;
    keybound_le(i64) |x: i64, y: i64| x <= y;
    decbound_cmp(f64) |x: f64, y: f64| float8_order(x, y) as i32;
    decbound_ge(f64) |x: f64, y: f64| float8_order(x, y).is_ge();
    decbound_le(f64) |x: f64, y: f64| float8_order(x, y).is_le();
}

/// Lowest (or, when `upper`, highest) declination of the circle, a hair wider so that rounding
/// never leaves a point on its rim outside, within [-90, 90]; with the same errors dwithin
/// raises for the centre and the radius.
fn dec_band(dec: f64, radius_arcsec: f64, upper: bool) -> f64 {
    let (_, dec) = position("dwithin", "ra", 0.0, "dec", dec);
    let r = radius_or_zero("dwithin", radius_arcsec) * sphere::DEG_PER_ARCSEC + 1e-9;
    let edge = if upper { dec + r } else { dec - r };
    edge.clamp(-90.0, 90.0)
}

scalar_fn! {
    /// Lowest declination of a circle (dwithin's partition-pruning condition).
    sql_name = "dec_band_lo";
    requires = ["bound_types"];
    sql = "CREATE FUNCTION dec_band_lo(\"dec\" float8, radius_arcsec float8) RETURNS decbound
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'dec_band_lo';
           COMMENT ON FUNCTION dec_band_lo(float8, float8) IS
             'Internal: the lowest declination of a circle, as a decbound (dwithin''s partition pruning).';";
    fn dec_band_lo(dec: f64, radius_arcsec: f64) -> f64 {
        dec_band(dec, radius_arcsec, false)
    }
}

scalar_fn! {
    /// Highest declination of a circle (dwithin's partition-pruning condition).
    sql_name = "dec_band_hi";
    requires = ["bound_types"];
    sql = "CREATE FUNCTION dec_band_hi(\"dec\" float8, radius_arcsec float8) RETURNS decbound
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'dec_band_hi';
           COMMENT ON FUNCTION dec_band_hi(float8, float8) IS
             'Internal: the highest declination of a circle, as a decbound (dwithin''s partition pruning).';";
    fn dec_band_hi(dec: f64, radius_arcsec: f64) -> f64 {
        dec_band(dec, radius_arcsec, true)
    }
}

scalar_fn! {
    /// The exact within-radius test, never rewritten (dwithin's rewrite ends in a call to it).
    sql_name = "dwithin_exact";
    requires = ["sky_key", "bound_types", "dec_band_lo", "dec_band_hi"];
    sql = "CREATE FUNCTION dwithin_support(internal) RETURNS internal
           LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'dwithin_support';
           CREATE FUNCTION dwithin_exact(ra1 float8, dec1 float8, ra2 float8, dec2 float8, radius_arcsec float8)
           RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE SUPPORT dwithin_support
           LANGUAGE c AS 'MODULE_PATHNAME', 'dwithin_exact';
           COMMENT ON FUNCTION dwithin_exact(float8, float8, float8, float8, float8) IS
             'True iff sep_arcsec(ra1, dec1, ra2, dec2) <= radius_arcsec, without index assistance.';";
    fn dwithin_exact(ra1: f64, dec1: f64, ra2: f64, dec2: f64, radius_arcsec: f64) -> bool {
        within("dwithin_exact", ra1, dec1, ra2, dec2, radius_arcsec)
    }
}

scalar_fn! {
    /// True iff the separation is at most the radius; index-assisted through its support function.
    sql_name = "dwithin";
    requires = ["dwithin_exact"];
    sql = "CREATE FUNCTION dwithin(ra1 float8, dec1 float8, ra2 float8, dec2 float8, radius_arcsec float8)
           RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE SUPPORT dwithin_support
           LANGUAGE c AS 'MODULE_PATHNAME', 'dwithin';
           COMMENT ON FUNCTION dwithin(float8, float8, float8, float8, float8) IS
             'True iff sep_arcsec(ra1, dec1, ra2, dec2) <= radius_arcsec; uses an index on skycat.sky_key(ra, dec) of either side.';";
    fn dwithin(ra1: f64, dec1: f64, ra2: f64, dec2: f64, radius_arcsec: f64) -> bool {
        within("dwithin", ra1, dec1, ra2, dec2, radius_arcsec)
    }
}
