//! Simulated raw per-tract source tables and their per-(visit, detector) calibrations: what a
//! pipeline writes before calibration (instrumental fluxes, pixel centroids) and what it
//! fitted (a photometric calibration and a TAN-SIP WCS per detector).
//!
//! Detectors sit on a square grid of LSST-sized CCDs (4072 x 4000 pixels of 0.2 arcsec)
//! around the tract centre; each visit dithers the pointing by a few arcminutes and rotates
//! it slightly. SIP distortion is order 4, a few pixels at the detector edge.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use skycat_core::wcs::{Poly, Wcs};

use crate::sky::rng;

pub const DETECTOR_NX: f64 = 4072.0;
pub const DETECTOR_NY: f64 = 4000.0;
/// Pixel scale (degrees): 0.2 arcsec.
pub const PIXEL_DEG: f64 = 0.2 / 3600.0;

/// The calibration of one (visit, detector).
#[derive(Debug, Clone)]
pub struct DetectorCalib {
    pub visit: i64,
    pub detector: i32,
    /// nJy per count, and its error.
    pub calib_mean: f64,
    pub calib_err: f64,
    pub wcs: Wcs,
}

fn sip(order: usize, edge_px: f64, r: &mut impl Rng) -> Poly {
    let n = order + 1;
    let normal = Normal::new(0.0, 1.0).expect("valid");
    let mut c = vec![0.0; n * n];
    for p in 0..n {
        for q in 0..n - p {
            if p + q >= 2 {
                c[p * n + q] = normal.sample(r) * edge_px / 2000f64.powi((p + q) as i32);
            }
        }
    }
    Poly { order, c }
}

/// Calibrations of `visits` x `detectors`, visits numbered from `visit0`. Deterministic.
pub fn calibs(visits: usize, detectors: usize, visit0: i64, ra0: f64, dec0: f64, seed: u64) -> Vec<DetectorCalib> {
    let mut r = rng(seed);
    let side = (detectors as f64).sqrt().ceil() as usize;
    let mut out = Vec::with_capacity(visits * detectors);
    for v in 0..visits {
        let dither = (r.random_range(-0.05..0.05), r.random_range(-0.05..0.05));
        let rot: f64 = r.random_range(-2.0f64..2.0).to_radians();
        let zp = r.random_range(0.8..1.2); // visit transparency
        for d in 0..detectors {
            // detector centre offset from the boresight, degrees on the tangent plane
            let gx = (d % side) as f64 - (side as f64 - 1.0) / 2.0;
            let gy = (d / side) as f64 - (side as f64 - 1.0) / 2.0;
            let (dx, dy) = (gx * DETECTOR_NX * PIXEL_DEG + dither.0, gy * DETECTOR_NY * PIXEL_DEG + dither.1);
            let (ra, dec) = skycat_core::sphere::offset_deg(ra0, dec0, dx.hypot(dy), dx.atan2(dy).to_degrees());
            let (s, c) = rot.sin_cos();
            let cd = [[-PIXEL_DEG * c, PIXEL_DEG * s], [PIXEL_DEG * s, PIXEL_DEG * c]];
            let crpix = [DETECTOR_NX / 2.0 + 0.5, DETECTOR_NY / 2.0 + 0.5];
            let wcs = Wcs::new(crpix, [ra, dec], cd, 180.0, Some((sip(4, 2.0, &mut r), sip(4, 2.0, &mut r))), None)
                .expect("a valid simulated WCS");
            let calib_mean = 0.45 * zp * r.random_range(0.97..1.03);
            out.push(DetectorCalib {
                visit: visit0 + v as i64,
                detector: d as i32,
                calib_mean,
                calib_err: calib_mean * r.random_range(0.002..0.01),
                wcs,
            });
        }
    }
    out
}

/// One raw source: what the measurement pipeline writes, before calibration.
#[derive(Debug, Clone, Copy)]
pub struct RawSource {
    pub source_id: i64,
    pub visit: i64,
    pub detector: i32,
    pub x: f64,
    pub y: f64,
    pub x_err: f64,
    pub y_err: f64,
    pub psf_inst_flux: f64,
    pub psf_inst_flux_err: f64,
    pub ap_inst_flux: f64,
    pub ap_inst_flux_err: f64,
}

/// `per_detector` raw sources for each calibration, streamed to `emit` (no row limit).
/// About 1 in 500 measurements failed: their fluxes are NaN, as LSST writes them.
pub fn raw_sources(calibs: &[DetectorCalib], per_detector: usize, seed: u64, mut emit: impl FnMut(&RawSource)) {
    let mut r = rng(seed);
    let counts = LogNormal::new(8.0, 1.5).expect("valid");
    let mut id = 1i64;
    for c in calibs {
        for _ in 0..per_detector {
            let flux: f64 = counts.sample(&mut r);
            let sky_noise = 60.0f64;
            let err = (flux + sky_noise * sky_noise).sqrt();
            let snr = flux / err;
            let pos_err = (0.7 / 0.2) / snr.max(1.0); // seeing 0.7" in pixels over S/N
            let failed = r.random_range(0..500) == 0;
            let noisy = |r: &mut rand_chacha::ChaCha8Rng, f: f64, e: f64| f + e * r.random_range(-1.0..1.0);
            let psf = noisy(&mut r, flux, err);
            let ap = noisy(&mut r, flux * 0.95, err * 1.2);
            emit(&RawSource {
                source_id: id,
                visit: c.visit,
                detector: c.detector,
                x: r.random_range(-0.5..DETECTOR_NX - 0.5),
                y: r.random_range(-0.5..DETECTOR_NY - 0.5),
                x_err: pos_err,
                y_err: pos_err * r.random_range(0.9..1.1),
                psf_inst_flux: if failed { f64::NAN } else { psf },
                psf_inst_flux_err: if failed { f64::NAN } else { err },
                ap_inst_flux: ap,
                ap_inst_flux_err: err * 1.2,
            });
            id += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors_tile_the_tract_and_are_deterministic() {
        let a = calibs(2, 9, 100, 150.0, 2.0, 7);
        let b = calibs(2, 9, 100, 150.0, 2.0, 7);
        assert_eq!(a.len(), 18);
        assert_eq!(a[5].wcs, b[5].wcs);
        // Neighbouring detectors of one visit are about one detector width (13.6') apart.
        let (ra0, dec0) = a[0].wcs.pixel_to_sky(2035.5, 1999.5);
        let (ra1, dec1) = a[1].wcs.pixel_to_sky(2035.5, 1999.5);
        let sep = skycat_core::sphere::sep_arcsec(ra0, dec0, ra1, dec1);
        assert!((sep - 814.4).abs() < 5.0, "{sep}");
        let mut n = 0;
        raw_sources(&a[..2], 100, 1, |s| {
            assert!(s.x >= -0.5 && s.x < DETECTOR_NX - 0.5);
            n += 1;
        });
        assert_eq!(n, 200);
    }
}
