//! Simulated ForcedSource tables: per-(object, band) light curves as DRP's forced photometry
//! writes them. Most objects are constant; one in ten varies (a sinusoid of random period and
//! amplitude); about 1 row in 500 is a failed measurement (NaN flux and error).

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use crate::sky::rng;

/// One forced measurement.
#[derive(Debug, Clone, Copy)]
pub struct ForcedSource {
    pub object_id: i64,
    pub band: i16,
    pub mjd: f64,
    pub psf_flux: f64,
    pub psf_flux_err: f64,
}

/// `objects` objects x `bands` bands x about `epochs` epochs each (Poisson), ids from 1,
/// streamed to `emit` in (object, band) order. Deterministic from `seed`.
pub fn forced_sources(objects: usize, bands: usize, epochs: f64, seed: u64, mut emit: impl FnMut(&ForcedSource)) {
    let mut r = rng(seed);
    let base = LogNormal::new(7.0, 1.5).expect("valid");
    let count = Poisson::new(epochs.max(1e-3)).expect("valid");
    let unit = Normal::new(0.0, 1.0).expect("valid");
    for o in 0..objects {
        let flux0: f64 = base.sample(&mut r);
        let variable = r.random_range(0..10) == 0;
        let (amp, period): (f64, f64) = (flux0 * r.random_range(0.05..0.8), r.random_range(0.2..300.0));
        for b in 0..bands {
            let n = count.sample(&mut r) as usize;
            let colour = r.random_range(0.7..1.3);
            for _ in 0..n {
                let mjd: f64 = r.random_range(60600.0..61700.0);
                let truth = flux0 * colour + if variable { amp * (mjd / period).sin() } else { 0.0 };
                let err = (truth.abs() + 400.0f64).sqrt() * r.random_range(0.9..1.2);
                let failed = r.random_range(0..500) == 0;
                emit(&ForcedSource {
                    object_id: o as i64 + 1,
                    band: b as i16,
                    mjd,
                    psf_flux: if failed { f64::NAN } else { truth + err * unit.sample(&mut r) },
                    psf_flux_err: if failed { f64::NAN } else { err },
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_order() {
        let mut rows = Vec::new();
        forced_sources(100, 6, 17.0, 3, |s| rows.push(*s));
        let per_curve = rows.len() as f64 / 600.0;
        assert!((per_curve - 17.0).abs() < 1.0, "{per_curve}");
        assert!(rows.windows(2).all(|w| (w[0].object_id, w[0].band) <= (w[1].object_id, w[1].band)));
    }
}
