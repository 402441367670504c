//! H3 cells on the sky (h3o): latitude = dec, longitude = ra wrapped to [-180, 180).
//!
//! H3 is defined on a sphere, so it maps to the celestial sphere without distortion; its
//! cell edges are great-circle arcs (gnomonic projection on each icosahedron face), which is
//! what makes the exact cap/cell intersection test below valid.

use std::collections::{HashSet, VecDeque};

use h3o::{CellIndex, LatLng, Resolution};

use crate::error::{SkyError, SkyResult};
use crate::interrupt::Ticker;
use crate::sphere::{UnitVector, DEG_PER_ARCSEC};
use crate::validate::{self, MAX_RESULT_ELEMENTS};

const TOO_LARGE_HINT: &str = "use a coarser resolution or a smaller radius";

/// Slack (radians, ~2 micro-arcsec) for the intersection test, so rounding never drops a cell.
const COVER_SLACK_RAD: f64 = 1e-11;

fn resolution(res: i32) -> SkyResult<Resolution> {
    validate::int_in_range("resolution", 0, 15, res as i64)?;
    Ok(Resolution::try_from(res as u8).expect("validated range"))
}

fn latlng(ra: f64, dec: f64) -> LatLng {
    let lng = if ra >= 180.0 { ra - 360.0 } else { ra };
    LatLng::new(dec, lng).expect("validated coordinates are finite")
}

fn to_vec(p: LatLng) -> UnitVector {
    UnitVector::from_radec(p.lng(), p.lat())
}

/// H3 cell of a position (ra in [0, 360), dec in [-90, 90]) at `res` (0..=15), as a bigint.
pub fn cell(ra: f64, dec: f64, res: i32) -> SkyResult<i64> {
    Ok(u64::from(latlng(ra, dec).to_cell(resolution(res)?)) as i64)
}

/// Angular distance (radians) from `p` to the great-circle arc from `a` to `b`.
fn dist_to_arc(p: UnitVector, a: UnitVector, b: UnitVector) -> f64 {
    let n = a.cross(b);
    let nn = n.norm();
    let to_ends = p.angle_rad(a).min(p.angle_rad(b));
    if nn < 1e-15 {
        return to_ends;
    }
    let n = UnitVector { x: n.x / nn, y: n.y / nn, z: n.z / nn };
    let pn = p.dot(n);
    // Foot of the perpendicular from p on the great circle, inside the arc?
    let q = UnitVector { x: p.x - pn * n.x, y: p.y - pn * n.y, z: p.z - pn * n.z };
    if a.cross(q).dot(n) >= 0.0 && q.cross(b).dot(n) >= 0.0 {
        pn.abs().asin()
    } else {
        to_ends
    }
}

/// True when the cell comes within `r_rad` of `p` (or `p` lies inside it).
fn cell_touches_cap(cell: CellIndex, center_cell: CellIndex, p: UnitVector, r_rad: f64) -> bool {
    if cell == center_cell {
        return true;
    }
    let boundary = cell.boundary();
    let verts: Vec<UnitVector> = boundary.iter().map(|v| to_vec(*v)).collect();
    (0..verts.len()).any(|i| dist_to_arc(p, verts[i], verts[(i + 1) % verts.len()]) <= r_rad)
}

/// Estimated number of cells of `res` covering a cap of `r_rad` (clamped to the whole
/// sphere, pi): area ratio plus a rim.
fn estimate(res: Resolution, r_rad: f64) -> u64 {
    let r_rad = r_rad.min(std::f64::consts::PI);
    let n = res.cell_count() as f64;
    let cell_area = 4.0 * std::f64::consts::PI / n;
    let cap_area = 2.0 * std::f64::consts::PI * (1.0 - r_rad.cos());
    let cell_size = cell_area.sqrt();
    let rim = 2.0 * std::f64::consts::PI * r_rad.sin() / cell_size;
    (cap_area / cell_area + 2.0 * rim + 1.0).min(n) as u64
}

/// Every H3 cell of resolution `res` that the circle of `radius_arcsec` touches: every point
/// within the circle lies in one of them. Sorted ascending.
pub fn cells_in_circle(ra: f64, dec: f64, radius_arcsec: f64, res: i32) -> SkyResult<Vec<i64>> {
    let resolution = resolution(res)?;
    let r_rad = (radius_arcsec * DEG_PER_ARCSEC).to_radians() + COVER_SLACK_RAD;
    validate::result_size("cells", estimate(resolution, r_rad), TOO_LARGE_HINT)?;
    let p = UnitVector::from_radec(ra, dec);
    let center_cell = latlng(ra, dec).to_cell(resolution);
    // Flood fill from the centre: the cells touching a (connected) cap form a connected set,
    // and cells meeting at a vertex are also edge neighbours in H3, so this finds them all.
    let mut seen: HashSet<CellIndex> = HashSet::from([center_cell]);
    let mut queue = VecDeque::from([center_cell]);
    let mut out = Vec::new();
    let mut ticker = Ticker::new();
    while let Some(c) = queue.pop_front() {
        ticker.tick()?;
        if !cell_touches_cap(c, center_cell, p, r_rad) {
            continue;
        }
        // The estimate is an area ratio; the flood fill itself also stops at the limit.
        if out.len() as u64 >= MAX_RESULT_ELEMENTS {
            return Err(SkyError::TooLarge {
                what: "cells",
                estimated: out.len() as u64 + queue.len() as u64,
                limit: MAX_RESULT_ELEMENTS,
                hint: TOO_LARGE_HINT,
            });
        }
        out.push(u64::from(c) as i64);
        for nb in c.grid_disk_safe(1) {
            if seen.insert(nb) {
                queue.push_back(nb);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::{sep_deg, wrap_ra};
    use proptest::prelude::*;

    #[test]
    fn cell_wraps_ra() {
        // ra 350 is lng -10.
        assert_eq!(
            cell(350.0, 10.0, 7).unwrap(),
            u64::from(LatLng::new(10.0, -10.0).unwrap().to_cell(Resolution::Seven)) as i64
        );
        assert_eq!(cell(180.0, 0.0, 3).unwrap(), cell(0.0 + 180.0, 0.0, 3).unwrap());
        assert!(cell(10.0, 10.0, 16).is_err());
        assert!(cell(10.0, 10.0, -1).is_err());
    }

    #[test]
    fn too_large_is_refused() {
        let e = cells_in_circle(10.0, 10.0, 36000.0, 15).unwrap_err();
        assert!(matches!(e, SkyError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn whole_sky_radii_are_bounded() {
        // A radius of 360 degrees is the whole sky (it used to slip past the estimate).
        for res in [5, 6, 15] {
            let e = cells_in_circle(0.0, 0.0, 1_296_000.0, res).unwrap_err();
            assert!(matches!(e, SkyError::TooLarge { .. }), "res {res}: {e}");
        }
        // Resolution 4 has 288,122 cells in all: a whole-sky cover returns every one.
        let all = cells_in_circle(0.0, 0.0, 1_296_000.0, 4).unwrap();
        assert_eq!(all.len() as u64, Resolution::Four.cell_count());
    }

    #[test]
    fn cancel_stops_the_flood_fill() {
        let r = crate::interrupt::tests::with_stop_requested(|| cells_in_circle(0.0, 0.0, 36_000.0, 6));
        assert_eq!(r.unwrap_err(), SkyError::Cancelled);
    }

    #[test]
    fn tiny_circle_is_one_cell() {
        let c = cells_in_circle(45.0, 45.0, 0.001, 5).unwrap();
        assert_eq!(c, vec![cell(45.0, 45.0, 5).unwrap()]);
    }

    #[test]
    fn circles_at_the_poles() {
        for dec in [90.0, -90.0, 89.99, -89.99] {
            let c = cells_in_circle(0.0, dec, 3600.0, 4).unwrap();
            for ra in (0..360).step_by(15) {
                let d = if dec > 0.0 { dec.min(90.0) - 0.9 } else { dec.max(-90.0) + 0.9 };
                assert!(c.contains(&cell(ra as f64, d, 4).unwrap()));
            }
        }
    }

    proptest! {
        #[test]
        fn cover_contains_every_inside_point(ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                             r_arcsec in 0.001f64..7200.0, res in 0i32..9,
                                             pa in 0.0f64..360.0, f in 0.0f64..=1.0) {
            let cover = match cells_in_circle(ra, dec, r_arcsec, res) {
                Ok(c) => c,
                Err(SkyError::TooLarge { .. }) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            let r = r_arcsec / 3600.0 * f;
            let (ra2, d2) = crate::sphere::offset_deg(ra, dec, r, pa);
            prop_assert!(sep_deg(ra, dec, ra2, d2) <= r + 1e-9);
            let c = cell(ra2, d2, res).unwrap();
            prop_assert!(cover.contains(&c), "cell {c:x} of ({ra2}, {d2}) missing");
        }

        #[test]
        fn cover_cells_all_come_near(ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                     r_arcsec in 0.001f64..7200.0, res in 0i32..7) {
            // Every returned cell has a boundary point or its centre within r + cell size.
            let cover = cells_in_circle(ra, dec, r_arcsec, res).unwrap();
            for c in cover {
                let ci = CellIndex::try_from(c as u64).unwrap();
                let center = LatLng::from(ci);
                let cra = wrap_ra(center.lng());
                let radius_deg = ci.boundary().iter()
                    .map(|v| sep_deg(cra, center.lat(), wrap_ra(v.lng()), v.lat()))
                    .fold(0.0, f64::max);
                prop_assert!(sep_deg(ra, dec, cra, center.lat()) <= r_arcsec / 3600.0 + radius_deg + 1e-9);
            }
        }
    }
}
