//! SQL functions of partitioning and sky cells (SQL-API.md section 2).

use pgrx::prelude::*;
use skycat_core::chunker::Chunker;
use skycat_core::stripes::StripeScheme;
use skycat_core::{h3cells, healpix, validate};

use crate::errors::OrSqlError;
use crate::fastcall::scalar_fn;
use crate::geometry::position;

fn radius(function: &str, radius_arcsec: f64) -> f64 {
    validate::positive("radius_arcsec", "arcseconds", radius_arcsec).or_sql_error(function)
}

fn to_i32(v: Vec<usize>) -> Vec<i32> {
    v.into_iter().map(|i| i as i32).collect()
}

scalar_fn! {
    /// Declination stripe of `dec`: floor((dec + 90) / h), dec = +90 in the top stripe; always the
    /// stripe whose partition (from `create_stripe_partitions`) holds the row.
    sql_name = "stripe";
    sql = "CREATE FUNCTION stripe(\"dec\" float8, stripe_height_deg float8) RETURNS int
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'stripe';
           COMMENT ON FUNCTION stripe(float8, float8) IS
             'Declination stripe index floor((dec + 90) / stripe_height_deg); +90 is in the top stripe.';";
    fn stripe(dec: f64, stripe_height_deg: f64) -> i32 {
        let dec = validate::dec("dec", dec).or_sql_error("stripe");
        let s = StripeScheme::new(stripe_height_deg).or_sql_error("stripe");
        s.stripe_of(dec) as i32
    }
}

/// Every stripe the circle touches, ascending.
#[pg_extern(immutable, parallel_safe)]
fn stripes_in_circle(ra: f64, dec: f64, radius_arcsec: f64, stripe_height_deg: f64) -> Vec<i32> {
    let (_, dec) = position("stripes_in_circle", "ra", ra, "dec", dec);
    let r = radius("stripes_in_circle", radius_arcsec);
    let s = StripeScheme::new(stripe_height_deg).or_sql_error("stripes_in_circle");
    to_i32(s.stripes_in_circle(dec, r).or_sql_error("stripes_in_circle"))
}

/// Stripe index and the [dec_min, dec_max) bounds of every stripe of height h; the bounds
/// that `create_stripe_partitions` gives the partitions (the top one ends just above +90).
#[pg_extern(immutable, parallel_safe)]
fn stripe_bounds(
    stripe_height_deg: f64,
) -> TableIterator<'static, (name!(stripe, i32), name!(dec_min, f64), name!(dec_max, f64))> {
    let s = StripeScheme::for_partitions(stripe_height_deg).or_sql_error("stripe_bounds");
    let rows: Vec<_> = s.partitions().map(|(i, lo, hi)| (i as i32, lo, hi)).collect();
    TableIterator::new(rows)
}

fn chunker(function: &str, num_stripes: i32, num_sub_stripes: i32) -> std::rc::Rc<Chunker> {
    Chunker::cached(num_stripes, num_sub_stripes).or_sql_error(function)
}

scalar_fn! {
    /// Qserv chunk id (lsst partition `Chunker::locate`).
    sql_name = "chunk_id";
    sql = "CREATE FUNCTION chunk_id(ra float8, \"dec\" float8, num_stripes int DEFAULT 340, num_sub_stripes int DEFAULT 3)
           RETURNS int IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'chunk_id';
           COMMENT ON FUNCTION chunk_id(float8, float8, int, int) IS
             'Qserv chunk id of (ra, dec), identical to LSST partition/sphgeom Chunker.';";
    fn chunk_id(ra: f64, dec: f64, num_stripes: i32, num_sub_stripes: i32) -> i32 {
        let (ra, dec) = position("chunk_id", "ra", ra, "dec", dec);
        chunker("chunk_id", num_stripes, num_sub_stripes).locate(ra, dec).chunk_id
    }
}

scalar_fn! {
    /// Qserv sub-chunk id within its chunk.
    sql_name = "sub_chunk_id";
    sql = "CREATE FUNCTION sub_chunk_id(ra float8, \"dec\" float8, num_stripes int DEFAULT 340, num_sub_stripes int DEFAULT 3)
           RETURNS int IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sub_chunk_id';
           COMMENT ON FUNCTION sub_chunk_id(float8, float8, int, int) IS
             'Qserv sub-chunk id of (ra, dec) within its chunk, identical to LSST partition/sphgeom Chunker.';";
    fn sub_chunk_id(ra: f64, dec: f64, num_stripes: i32, num_sub_stripes: i32) -> i32 {
        let (ra, dec) = position("sub_chunk_id", "ra", ra, "dec", dec);
        chunker("sub_chunk_id", num_stripes, num_sub_stripes).locate(ra, dec).sub_chunk_id
    }
}

/// Every Qserv chunk the circle touches, ascending.
#[pg_extern(immutable, parallel_safe)]
fn chunks_in_circle(
    ra: f64,
    dec: f64,
    radius_arcsec: f64,
    num_stripes: default!(i32, 340),
    num_sub_stripes: default!(i32, 3),
) -> Vec<i32> {
    let (ra, dec) = position("chunks_in_circle", "ra", ra, "dec", dec);
    let r = radius("chunks_in_circle", radius_arcsec);
    chunker("chunks_in_circle", num_stripes, num_sub_stripes)
        .chunks_in_circle(ra, dec, r)
        .or_sql_error("chunks_in_circle")
}

scalar_fn! {
    /// Whether the circle reaches a chunk other than its centre's (`chunks_in_circle` has more
    /// than one element), without returning an array to SQL: the edge test of a distributed
    /// cross-match.
    sql_name = "chunk_edge";
    sql = "CREATE FUNCTION chunk_edge(ra float8, \"dec\" float8, radius_arcsec float8, num_stripes int DEFAULT 340, num_sub_stripes int DEFAULT 3)
           RETURNS boolean IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'chunk_edge';
           COMMENT ON FUNCTION chunk_edge(float8, float8, float8, int, int) IS
             'True when the circle of radius_arcsec around (ra, dec) reaches another Qserv chunk than its centre''s.';";
    fn chunk_edge(ra: f64, dec: f64, radius_arcsec: f64, num_stripes: i32, num_sub_stripes: i32) -> bool {
        let (ra, dec) = position("chunk_edge", "ra", ra, "dec", dec);
        let r = radius("chunk_edge", radius_arcsec);
        chunker("chunk_edge", num_stripes, num_sub_stripes)
            .circle_leaves_chunk(ra, dec, r)
            .or_sql_error("chunk_edge")
    }
}

scalar_fn! {
    /// H3 cell (lat = dec, lng = ra wrapped to [-180, 180)) at `resolution` 0..15.
    sql_name = "h3_cell";
    sql = "CREATE FUNCTION h3_cell(ra float8, \"dec\" float8, resolution int) RETURNS bigint
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'h3_cell';
           COMMENT ON FUNCTION h3_cell(float8, float8, int) IS
             'H3 cell of (ra, dec) at resolution 0..15 (lat = dec, lng = ra wrapped to [-180, 180)).';";
    fn h3_cell(ra: f64, dec: f64, resolution: i32) -> i64 {
        let (ra, dec) = position("h3_cell", "ra", ra, "dec", dec);
        h3cells::cell(ra, dec, resolution).or_sql_error("h3_cell")
    }
}

/// H3 cells covering the circle: every point within it lies in one of them. Ascending.
#[pg_extern(immutable, parallel_safe)]
fn h3_cells_in_circle(ra: f64, dec: f64, radius_arcsec: f64, resolution: i32) -> Vec<i64> {
    let (ra, dec) = position("h3_cells_in_circle", "ra", ra, "dec", dec);
    let r = radius("h3_cells_in_circle", radius_arcsec);
    h3cells::cells_in_circle(ra, dec, r, resolution).or_sql_error("h3_cells_in_circle")
}

scalar_fn! {
    /// HEALPix NESTED cell index at `depth` 0..29 (nside = 2^depth).
    sql_name = "healpix_cell";
    sql = "CREATE FUNCTION healpix_cell(ra float8, \"dec\" float8, depth int) RETURNS bigint
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'healpix_cell';
           COMMENT ON FUNCTION healpix_cell(float8, float8, int) IS
             'HEALPix NESTED index of (ra, dec) at depth 0..29 (nside = 2^depth).';";
    fn healpix_cell(ra: f64, dec: f64, depth: i32) -> i64 {
        let (ra, dec) = position("healpix_cell", "ra", ra, "dec", dec);
        healpix::cell(ra, dec, depth).or_sql_error("healpix_cell")
    }
}

/// HEALPix NESTED cells covering the circle (may include a few rim cells that do not
/// overlap it; never misses one). Ascending.
#[pg_extern(immutable, parallel_safe)]
fn healpix_cells_in_circle(ra: f64, dec: f64, radius_arcsec: f64, depth: i32) -> Vec<i64> {
    let (ra, dec) = position("healpix_cells_in_circle", "ra", ra, "dec", dec);
    let r = radius("healpix_cells_in_circle", radius_arcsec);
    healpix::cells_in_circle(ra, dec, r, depth).or_sql_error("healpix_cells_in_circle")
}
