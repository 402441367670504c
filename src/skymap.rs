//! SQL functions of the rings skymap and tract polygons (docs/drp.md): which tract holds a
//! position, a tract's inner region, and the half-open polygon test DRP de-duplicates with.

use pgrx::prelude::*;
use skycat_core::skymap::{self, RingsSkymap};
use skycat_core::{validate, SkyError};

use crate::errors::OrSqlError;
use crate::fastcall::scalar_fn;
use crate::geometry::position;

fn skymap(function: &str, num_rings: i32) -> std::rc::Rc<RingsSkymap> {
    RingsSkymap::cached(num_rings).or_sql_error(function)
}

scalar_fn! {
    /// The tract whose inner region holds (ra, dec) in LSST's rings skymap (`findTract`).
    sql_name = "skymap_tract";
    sql = "CREATE FUNCTION skymap_tract(ra float8, \"dec\" float8, num_rings int DEFAULT 120) RETURNS int
           IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'skymap_tract';
           COMMENT ON FUNCTION skymap_tract(float8, float8, int) IS
             'Tract of (ra, dec) in a rings skymap of num_rings rings (LSST RingsSkyMap layout, raStart 0): the tract whose inner region holds the point.';";
    fn skymap_tract(ra: f64, dec: f64, num_rings: i32) -> i32 {
        let (ra, dec) = position("skymap_tract", "ra", ra, "dec", dec);
        skymap("skymap_tract", num_rings).tract_of(ra, dec)
    }
}

/// A tract's geometry: its ring, centre, inner-region bounds (ra unwrapped around the
/// centre, so `ra_min` is negative for the first tract of a ring) and the inner region as a
/// polygon (`poly_ra`, `poly_dec`) for `polygon_contains`.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn skymap_tract_region(
    tract: i32,
    num_rings: default!(i32, 120),
) -> TableIterator<
    'static,
    (
        name!(ring, i32),
        name!(ra_center, f64),
        name!(dec_center, f64),
        name!(ra_min, f64),
        name!(ra_max, f64),
        name!(dec_min, f64),
        name!(dec_max, f64),
        name!(poly_ra, Vec<f64>),
        name!(poly_dec, Vec<f64>),
    ),
> {
    let m = skymap("skymap_tract_region", num_rings);
    let t = m
        .tract(tract)
        .ok_or_else(|| {
            SkyError::invalid(
                "tract",
                format!("a tract of the {num_rings}-ring skymap (0..{})", m.num_tracts() - 1),
                tract,
            )
        })
        .or_sql_error("skymap_tract_region");
    let poly = t.inner_polygon();
    TableIterator::once((
        t.ring,
        t.ra_center,
        t.dec_center,
        t.ra_min,
        t.ra_max,
        t.dec_min,
        t.dec_max,
        poly.iter().map(|p| p.0).collect(),
        poly.iter().map(|p| p.1).collect(),
    ))
}

/// Every tract whose outer region (inner region grown by `border_deg`) holds (ra, dec).
#[pg_extern(immutable, parallel_safe)]
fn skymap_tracts_outer(ra: f64, dec: f64, border_deg: f64, num_rings: default!(i32, 120)) -> Vec<i32> {
    let f = "skymap_tracts_outer";
    let (ra, dec) = position(f, "ra", ra, "dec", dec);
    let border = validate::in_range("border_deg", "degrees", 0.0, 10.0, border_deg).or_sql_error(f);
    skymap(f, num_rings).tracts_containing_outer(ra, dec, border)
}

/// Whether (ra, dec) lies in the polygon with vertices (poly_ra[i], poly_dec[i]) in degrees,
/// ra unwrapped around the middle of the vertices' ra range; half-open (a point on an edge
/// belongs to the polygon on its +ra / +dec side, dec = +90 to a polygon reaching it), so
/// tiles sharing edges give every point exactly one owner.
#[pg_extern(immutable, strict, parallel_safe)]
fn polygon_contains(poly_ra: Vec<Option<f64>>, poly_dec: Vec<Option<f64>>, ra: f64, dec: f64) -> bool {
    let f = "polygon_contains";
    let vertices = |name: &'static str, v: Vec<Option<f64>>| -> Vec<f64> {
        v.into_iter()
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| SkyError::invalid(name, "an array without NULL elements", "a NULL vertex"))
            .or_sql_error(f)
    };
    let (poly_ra, poly_dec) = (vertices("poly_ra", poly_ra), vertices("poly_dec", poly_dec));
    skymap::polygon_contains(&poly_ra, &poly_dec, ra, dec).or_sql_error(f)
}
