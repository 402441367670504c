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

scalar_fn! {
    /// The exact within-radius test, never rewritten (dwithin's rewrite ends in a call to it).
    sql_name = "dwithin_exact";
    requires = ["sky_key", "sky_key_range_lo", "sky_key_range_hi"];
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
