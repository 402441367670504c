//! HEALPix NESTED cells and cone covers, via the CDS `cdshealpix` crate.

use crate::error::SkyResult;
use crate::sphere::DEG_PER_ARCSEC;
use crate::validate;

pub const MAX_DEPTH: i32 = 29;

fn depth(d: i32) -> SkyResult<u8> {
    validate::int_in_range("depth", 0, MAX_DEPTH as i64, d as i64)?;
    Ok(d as u8)
}

/// NESTED index of the cell holding (ra, dec) at `depth` (nside = 2^depth).
pub fn cell(ra: f64, dec: f64, depth_: i32) -> SkyResult<i64> {
    let d = depth(depth_)?;
    Ok(cdshealpix::nested::hash(d, ra.to_radians(), dec.to_radians()) as i64)
}

/// NESTED cells at `depth` overlapping the circle; may include a few cells near the rim that
/// do not overlap it (cdshealpix's approximate cover never misses a cell). Sorted ascending.
pub fn cells_in_circle(ra: f64, dec: f64, radius_arcsec: f64, depth_: i32) -> SkyResult<Vec<i64>> {
    let d = depth(depth_)?;
    let r = (radius_arcsec * DEG_PER_ARCSEC).to_radians();
    let n_cells = 12.0 * 4f64.powi(d as i32);
    let cell_area = 4.0 * std::f64::consts::PI / n_cells;
    let cap_area = 2.0 * std::f64::consts::PI * (1.0 - r.min(std::f64::consts::PI).cos());
    let rim = 2.0 * std::f64::consts::PI * r.min(std::f64::consts::FRAC_PI_2).sin() / cell_area.sqrt();
    let est = (cap_area / cell_area + 2.0 * rim + 1.0).min(n_cells) as u64;
    validate::result_size("cells", est, "use a smaller depth or a smaller radius")?;
    if r >= std::f64::consts::PI {
        return Ok((0..n_cells as i64).collect());
    }
    let bmoc = cdshealpix::nested::cone_coverage_approx(d, ra.to_radians(), dec.to_radians(), r);
    let mut out: Vec<i64> = bmoc.flat_iter().map(|h| h as i64).collect();
    // The estimate is an area ratio: never return more than the documented limit either way.
    validate::result_size("cells", out.len() as u64, "use a smaller depth or a smaller radius")?;
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::sep_deg;
    use crate::SkyError;
    use proptest::prelude::*;

    #[test]
    fn depth_zero_base_cells() {
        // The 12 base cells: north pole is in cells 0..3, south pole in 8..11.
        assert!((0..4).contains(&cell(10.0, 89.9, 0).unwrap()));
        assert!((8..12).contains(&cell(10.0, -89.9, 0).unwrap()));
        assert!(cell(0.0, 0.0, 30).is_err());
    }

    proptest! {
        #[test]
        fn cover_contains_every_inside_point(ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                             r_arcsec in 0.001f64..7200.0, depth in 0i32..14,
                                             pa in 0.0f64..360.0, f in 0.0f64..=1.0) {
            let cover = match cells_in_circle(ra, dec, r_arcsec, depth) {
                Ok(c) => c,
                Err(SkyError::TooLarge { .. }) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            let r = r_arcsec / 3600.0 * f;
            let (ra2, d2) = crate::sphere::offset_deg(ra, dec, r, pa);
            prop_assert!(sep_deg(ra, dec, ra2, d2) <= r + 1e-9);
            prop_assert!(cover.contains(&cell(ra2, d2, depth).unwrap()));
        }
    }
}
