//! Simulated skies: positions with ids, and re-observations of them.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use skycat_core::sphere::DEG_PER_ARCSEC;

/// One simulated source: id, position (deg) and 1-sigma errors (arcsec, ra error times cos dec).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSource {
    pub id: i64,
    pub ra: f64,
    pub dec: f64,
    pub ra_err_arcsec: f64,
    pub dec_err_arcsec: f64,
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A point uniform on the sphere.
pub fn uniform_point(r: &mut impl Rng) -> (f64, f64) {
    let ra = r.random_range(0.0..360.0);
    let dec = r.random_range(-1.0f64..1.0).asin().to_degrees();
    (ra, dec)
}

pub use skycat_core::sphere::offset_deg as offset;

fn source(id: i64, (ra, dec): (f64, f64), r: &mut impl Rng) -> SimSource {
    // Errors of a survey's faint-to-bright sources: 0.02 .. 0.3 arcsec.
    let e = 0.02 + 0.28 * r.random::<f64>().powi(3);
    SimSource { id, ra, dec, ra_err_arcsec: e, dec_err_arcsec: e * r.random_range(0.8..1.25) }
}

/// `n` sources uniform on the sphere, ids `id0 ..`.
pub fn uniform(n: usize, seed: u64, id0: i64) -> Vec<SimSource> {
    let mut r = rng(seed);
    (0..n)
        .map(|i| {
            let p = uniform_point(&mut r);
            source(id0 + i as i64, p, &mut r)
        })
        .collect()
}

/// A point uniform on the cap around (ra0, dec0) whose radius has cosine `cos_radius`:
/// cos(distance) uniform in [cos_radius, 1], position angle uniform.
pub fn point_in_cap(ra0: f64, dec0: f64, cos_radius: f64, r: &mut impl Rng) -> (f64, f64) {
    let d = r.random_range(cos_radius..=1.0f64).acos().to_degrees();
    offset(ra0, dec0, d, r.random_range(0.0..360.0))
}

/// (ra, dec) displaced by Gaussian noise of `sigma_ra_arcsec` (along RA, i.e. times cos dec)
/// and `sigma_dec_arcsec`: an observed position given the true one.
pub fn displace(
    ra: f64,
    dec: f64,
    sigma_ra_arcsec: f64,
    sigma_dec_arcsec: f64,
    unit: &Normal<f64>,
    r: &mut impl Rng,
) -> (f64, f64) {
    let dx: f64 = unit.sample(r) * sigma_ra_arcsec;
    let dy: f64 = unit.sample(r) * sigma_dec_arcsec;
    offset(ra, dec, dx.hypot(dy) * DEG_PER_ARCSEC, dx.atan2(dy).to_degrees())
}

/// `n` sources uniform within `radius_deg` of (ra0, dec0): a field of view.
pub fn in_field(n: usize, seed: u64, id0: i64, ra0: f64, dec0: f64, radius_deg: f64) -> Vec<SimSource> {
    let mut r = rng(seed);
    let cos_r = radius_deg.to_radians().cos();
    (0..n)
        .map(|i| {
            // Uniform on the cap: cos(distance) uniform in [cos r, 1], position angle uniform.
            let p = point_in_cap(ra0, dec0, cos_r, &mut r);
            source(id0 + i as i64, p, &mut r)
        })
        .collect()
}

/// `n` sources of which `cluster_fraction` sit in `n_clusters` clusters (Gaussian profiles of
/// 1-30 arcmin, centres uniform on the sphere, sizes from a power law) and the rest uniform:
/// a sky with the density contrasts that make cross-match indexes work hard.
pub fn clustered(n: usize, seed: u64, id0: i64, n_clusters: usize, cluster_fraction: f64) -> Vec<SimSource> {
    let mut r = rng(seed);
    let centres: Vec<(f64, f64, f64, f64)> = (0..n_clusters.max(1))
        .map(|_| {
            let (ra, dec) = uniform_point(&mut r);
            let size_arcmin = 1.0 + 29.0 * r.random::<f64>().powi(2);
            let weight = r.random::<f64>().powf(3.0) + 0.01;
            (ra, dec, size_arcmin / 60.0, weight)
        })
        .collect();
    let total: f64 = centres.iter().map(|c| c.3).sum();
    let cum: Vec<f64> = centres
        .iter()
        .scan(0.0, |a, c| {
            *a += c.3 / total;
            Some(*a)
        })
        .collect();
    let unit = Normal::new(0.0, 1.0).expect("valid normal");
    (0..n)
        .map(|i| {
            let p = if r.random::<f64>() < cluster_fraction {
                let u = r.random::<f64>();
                let k = cum.partition_point(|&c| c < u).min(centres.len() - 1);
                let (ra, dec, sigma, _) = centres[k];
                let (gx, gy): (f64, f64) = (unit.sample(&mut r), unit.sample(&mut r));
                let d = gx.hypot(gy) * sigma;
                offset(ra, dec, d, r.random_range(0.0..360.0))
            } else {
                uniform_point(&mut r)
            };
            source(id0 + i as i64, p, &mut r)
        })
        .collect()
}

/// The same sky observed again: each source of `sky` is re-detected with probability
/// `detect_fraction`, displaced by Gaussian noise of its errors (combined with `extra_sigma_arcsec`),
/// with new ids from `id0`; plus `n_new` new uniform sources.
pub fn reobserve(
    sky: &[SimSource],
    seed: u64,
    id0: i64,
    detect_fraction: f64,
    extra_sigma_arcsec: f64,
    n_new: usize,
) -> Vec<SimSource> {
    let mut r = rng(seed);
    let unit = Normal::new(0.0, 1.0).expect("valid normal");
    let mut out = Vec::with_capacity(sky.len() + n_new);
    for s in sky {
        if r.random::<f64>() >= detect_fraction {
            continue;
        }
        let sx = s.ra_err_arcsec.hypot(extra_sigma_arcsec);
        let sy = s.dec_err_arcsec.hypot(extra_sigma_arcsec);
        let p = displace(s.ra, s.dec, sx, sy, &unit, &mut r);
        let id = id0 + out.len() as i64;
        out.push(SimSource { id, ra: p.0, dec: p.1, ra_err_arcsec: s.ra_err_arcsec, dec_err_arcsec: s.dec_err_arcsec });
    }
    for _ in 0..n_new {
        let p = uniform_point(&mut r);
        let id = id0 + out.len() as i64;
        out.push(source(id, p, &mut r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skycat_core::sphere::sep_arcsec;

    #[test]
    fn deterministic_and_valid() {
        let a = uniform(1000, 7, 0);
        assert_eq!(a, uniform(1000, 7, 0));
        assert_ne!(a, uniform(1000, 8, 0));
        assert!(a.iter().all(|s| (0.0..360.0).contains(&s.ra) && (-90.0..=90.0).contains(&s.dec)));
        let c = clustered(1000, 7, 0, 20, 0.5);
        assert!(c.iter().all(|s| (0.0..360.0).contains(&s.ra) && (-90.0..=90.0).contains(&s.dec)));
    }

    #[test]
    fn uniform_is_uniform_on_the_sphere() {
        // Fraction of points within 30 deg of the equator = sin(30) = 0.5 on a uniform sphere.
        let a = uniform(200_000, 1, 0);
        let f = a.iter().filter(|s| s.dec.abs() < 30.0).count() as f64 / a.len() as f64;
        assert!((f - 0.5).abs() < 0.005, "{f}");
    }

    #[test]
    fn reobservation_noise_has_the_stated_size() {
        let sky = uniform(20_000, 3, 0);
        let again = reobserve(&sky, 4, 1_000_000, 1.0, 0.5, 0);
        assert_eq!(again.len(), sky.len());
        // Mean squared offset = sx^2 + sy^2 (Rayleigh), within a few percent.
        let (mut got, mut want) = (0.0, 0.0);
        for (s, t) in sky.iter().zip(&again) {
            got += sep_arcsec(s.ra, s.dec, t.ra, t.dec).powi(2);
            want += s.ra_err_arcsec.hypot(0.5).powi(2) + s.dec_err_arcsec.hypot(0.5).powi(2);
        }
        assert!((got / want - 1.0).abs() < 0.05, "{}", got / want);
    }

    #[test]
    fn field_points_are_inside_and_uniform() {
        let f = in_field(50_000, 5, 0, 359.5, -30.0, 1.75);
        assert!(f.iter().all(|s| sep_arcsec(359.5, -30.0, s.ra, s.dec) <= 1.75 * 3600.0 + 1e-6));
        // Uniform on the cap: a quarter of the area (half the radius, to first order) holds ~25%.
        let inner = f.iter().filter(|s| sep_arcsec(359.5, -30.0, s.ra, s.dec) <= 0.875 * 3600.0).count();
        let frac = inner as f64 / f.len() as f64;
        assert!((frac - 0.25).abs() < 0.01, "{frac}");
    }

    #[test]
    fn offset_moves_by_the_distance() {
        for (ra, dec) in [(10.0, 20.0), (359.9, -89.5), (0.0, 0.0)] {
            let p = offset(ra, dec, 0.01, 123.0);
            assert!((sep_arcsec(ra, dec, p.0, p.1) - 36.0).abs() < 1e-6);
        }
    }
}
