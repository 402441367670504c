//! Light-curve statistics: LSST's DiaObject summary fields (meas_base diaCalculationPlugins)
//! as defined in SQL-API.md section 4, for one (object, band) light curve.
//!
//! The aggregate state is the list of used rows `[flux, flux_err, mjd]` (24 bytes per row):
//! order statistics (percentiles, MAD), Stetson's iterative mean and the time-sorted slopes
//! need the values, and partial states combine by concatenation. Everything else is computed
//! once, in [`lc_stats`], at the end.
//!
//! A field whose value is undefined is `None` (SQL NULL), never NaN.

use crate::error::{SkyError, SkyResult};
use crate::sphere::UnitVector;
use crate::validate::show;

/// One used row: flux, its error (> 0), and the time (may be NaN: then the row is used for
/// everything but the time-based fields).
pub type LcRow = [f64; 3];

/// Whether a row is used: flux and error finite, error > 0.
#[inline]
pub fn is_used(flux: f64, flux_err: f64) -> bool {
    flux.is_finite() && flux_err.is_finite() && flux_err > 0.0
}

/// The fields of the `lc_stats` composite, in its order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LcStats {
    pub n: i64,
    pub mean: Option<f64>,
    pub mean_err: Option<f64>,
    pub sigma: Option<f64>,
    pub chi2: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mad: Option<f64>,
    pub skew: Option<f64>,
    pub p05: Option<f64>,
    pub p25: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
    pub stetson_j: Option<f64>,
    pub linear_slope: Option<f64>,
    pub linear_intercept: Option<f64>,
    pub max_slope: Option<f64>,
    pub err_mean: Option<f64>,
}

/// Names of the fields after `n`, in the composite's order (as [`LcStats::float_fields`]).
pub const FLOAT_FIELD_NAMES: [&str; 18] = [
    "mean",
    "mean_err",
    "sigma",
    "chi2",
    "min",
    "max",
    "mad",
    "skew",
    "p05",
    "p25",
    "p50",
    "p75",
    "p95",
    "stetson_j",
    "linear_slope",
    "linear_intercept",
    "max_slope",
    "err_mean",
];

impl LcStats {
    /// The fields after `n`, in the composite's order.
    pub fn float_fields(&self) -> [Option<f64>; 18] {
        [
            self.mean,
            self.mean_err,
            self.sigma,
            self.chi2,
            self.min,
            self.max,
            self.mad,
            self.skew,
            self.p05,
            self.p25,
            self.p50,
            self.p75,
            self.p95,
            self.stetson_j,
            self.linear_slope,
            self.linear_intercept,
            self.max_slope,
            self.err_mean,
        ]
    }
}

/// `Some(v)` for a finite value, else `None`: undefined results are NULL, never NaN.
#[inline]
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

thread_local! {
    // Reused per-thread buffers: a query computes millions of groups.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    static STETSON_SCRATCH: std::cell::RefCell<Vec<[f64; 3]>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// numpy's default ("linear") percentile of `n` sorted values given by `at(i)`.
pub fn percentile_by(n: usize, q: f64, at: impl Fn(usize) -> f64) -> f64 {
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    if lo == hi {
        at(lo)
    } else {
        // numpy's _lerp: a + (b - a) * t, with the symmetric form for t >= 0.5
        let (a, b) = (at(lo), at(hi));
        if frac >= 0.5 {
            b - (b - a) * (1.0 - frac)
        } else {
            a + (b - a) * frac
        }
    }
}

/// The smallest error of the rows (all > 0): the reference of [`rel_weight`].
fn min_err(rows: &[LcRow]) -> f64 {
    rows.iter().map(|r| r[1]).fold(f64::INFINITY, f64::min)
}

/// Inverse-variance weight relative to the heaviest row, `(s_min / sigma)^2` in (0, 1]: the
/// same ratios as `1 / sigma^2` (so the same weighted means and fits), but never overflowing
/// (sigma = 1e-200) nor underflowing the heaviest row's weight to 0 (sigma = 1e200).
#[inline]
fn rel_weight(s_min: f64, sigma: f64) -> f64 {
    let q = s_min / sigma;
    q * q
}

/// Weighted mean with weights `w`.
fn weighted_mean(rows: &[LcRow], w: impl Fn(&LcRow) -> f64) -> f64 {
    let (mut sw, mut swf) = (0.0, 0.0);
    for r in rows {
        let wi = w(r);
        sw += wi;
        swf += wi * r[0];
    }
    swf / sw
}

/// Stetson's (1996) iteratively re-weighted mean, as LSST's `_stetson_mean` (alpha = beta = 2,
/// 20 iterations, tolerance 1e-6, the relative test divided by the new mean, signed).
/// The per-row constants (1/σ², sqrt(n/(n-1))/σ) are computed once, not per iteration.
fn stetson_mean(rows: &[LcRow], start: f64) -> f64 {
    let n = rows.len() as f64;
    let n_factor = (n / (n - 1.0)).sqrt();
    STETSON_SCRATCH.with(|buf| {
        let mut k = buf.borrow_mut();
        k.clear();
        let s = min_err(rows);
        k.extend(rows.iter().map(|r| [r[0], rel_weight(s, r[1]), n_factor / r[1]]));
        let mut mean = start;
        for _ in 0..20 {
            let (mut sw, mut swf) = (0.0, 0.0);
            for &[f, inv_var, scale] in k.iter() {
                let half_chi = 0.5 * (f - mean) * scale;
                let w = inv_var / (1.0 + half_chi * half_chi);
                sw += w;
                swf += w * f;
            }
            let tmp = swf / sw;
            let diff = (tmp - mean).abs();
            mean = tmp;
            if diff / mean < 1e-6 && diff < 1e-6 {
                break;
            }
        }
        mean
    })
}

/// All the statistics of one light curve. `rows` are the used rows (see [`is_used`]) in any
/// order; they are reordered in place.
pub fn lc_stats(rows: &mut [LcRow]) -> LcStats {
    let n = rows.len();
    let mut s = LcStats { n: n as i64, ..LcStats::default() };
    if n == 0 {
        return s;
    }
    let nf = n as f64;
    // A canonical order first: every sum below then adds the same numbers in the same order
    // whatever order the rows arrived in, so a parallel plan (partial states combined in any
    // order) gives bit-for-bit the serial result.
    rows.sort_unstable_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])).then(a[2].total_cmp(&b[2])));

    // Inverse-variance weighted mean and its error, with the weights relative to the largest
    // (see `rel_weight`): 1/sigma^2 itself underflows or overflows for extreme errors.
    let s_min = min_err(rows);
    let sw: f64 = rows.iter().map(|r| rel_weight(s_min, r[1])).sum();
    let mean = weighted_mean(rows, |r| rel_weight(s_min, r[1]));
    s.mean = finite(mean);
    s.mean_err = finite(s_min / sw.sqrt());
    s.err_mean = finite(rows.iter().map(|r| r[1]).sum::<f64>() / nf);

    // Central moments about the plain mean (two passes for accuracy).
    let plain_mean = rows.iter().map(|r| r[0]).sum::<f64>() / nf;
    let (mut m2, mut m3) = (0.0, 0.0);
    for r in rows.iter() {
        let d = r[0] - plain_mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    // A spread no larger than the rounding of the mean itself (about n ulps of the largest
    // flux) is a constant light curve: its variance is zero, not rounding noise, which would
    // otherwise give e.g. skew = sqrt(6) for three equal fluxes (noise divided by noise).
    let max_abs = rows[0][0].abs().max(rows[n - 1][0].abs());
    let rounding = nf * f64::EPSILON * max_abs;
    let constant = m2 / nf <= rounding * rounding;
    if constant {
        (m2, m3) = (0.0, 0.0);
    }
    s.chi2 = if constant { Some(0.0) } else { finite(rows.iter().map(|r| ((r[0] - mean) / r[1]).powi(2)).sum()) };
    if n >= 2 {
        s.sigma = finite((m2 / (nf - 1.0)).sqrt());
    }
    if n >= 3 && m2 > 0.0 {
        // pandas' bias-corrected G1 from the biased moments.
        let (b2, b3) = (m2 / nf, m3 / nf);
        s.skew = finite((nf * (nf - 1.0)).sqrt() / (nf - 2.0) * b3 / b2.powf(1.5));
    }

    // Order statistics: the rows are sorted by flux already. The absolute deviations go to a
    // per-thread scratch buffer, so a group costs no allocation (millions of groups per query).
    let flux_at = |i: usize| rows[i][0];
    s.min = finite(flux_at(0));
    s.max = finite(flux_at(n - 1));
    s.p05 = finite(percentile_by(n, 0.05, flux_at));
    s.p25 = finite(percentile_by(n, 0.25, flux_at));
    let median = percentile_by(n, 0.5, flux_at);
    s.p50 = finite(median);
    s.p75 = finite(percentile_by(n, 0.75, flux_at));
    s.p95 = finite(percentile_by(n, 0.95, flux_at));
    s.mad = SCRATCH.with(|buf| {
        let mut dev = buf.borrow_mut();
        // Only the deviations up to the median's upper rank are needed.
        sorted_deviations(n, flux_at, median, n / 2 + 1, &mut dev);
        finite(percentile_by(n, 0.5, |i| dev[i]))
    });

    // Stetson J.
    if n >= 2 {
        let m = stetson_mean(rows, mean);
        let n_factor = (nf / (nf - 1.0)).sqrt();
        let j: f64 = rows
            .iter()
            .map(|r| {
                let delta = n_factor * (r[0] - m) / r[1];
                let p = delta * delta - 1.0;
                p.signum() * p.abs().sqrt()
            })
            .sum::<f64>()
            / nf;
        s.stetson_j = finite(j);
    }

    // Time-based fields: rows with a finite mjd, sorted by (mjd, flux) so ties are ordered
    // the same way whatever order the rows arrived in.
    let timed_end = partition_in_place(rows, |r| r[2].is_finite());
    let timed = &mut rows[..timed_end];
    timed.sort_unstable_by(|a, b| a[2].total_cmp(&b[2]).then(a[0].total_cmp(&b[0])).then(a[1].total_cmp(&b[1])));
    if timed.len() >= 2 {
        let mut best = f64::NEG_INFINITY;
        for w in timed.windows(2) {
            let dt = w[1][2] - w[0][2];
            if dt > 0.0 {
                best = best.max((w[1][0] - w[0][0]) / dt);
            }
        }
        s.max_slope = finite(best);
        // Weighted least squares about the weighted mean time (no cancellation at MJD 6e4).
        let (mut sw, mut swt, mut swf) = (0.0, 0.0, 0.0);
        let s_min = min_err(timed);
        for r in timed.iter() {
            let w = rel_weight(s_min, r[1]);
            sw += w;
            swt += w * r[2];
            swf += w * r[0];
        }
        let (tbar, fbar) = (swt / sw, swf / sw);
        let (mut stt, mut stf) = (0.0, 0.0);
        for r in timed.iter() {
            let w = rel_weight(s_min, r[1]);
            let dt = r[2] - tbar;
            stt += w * dt * dt;
            stf += w * dt * (r[0] - fbar);
        }
        // At least two distinct times (the first and last after sorting differ).
        if timed[0][2] < timed[timed.len() - 1][2] && stt > 0.0 {
            let slope = stf / stt;
            s.linear_slope = finite(slope);
            s.linear_intercept = finite(fbar - slope * tbar);
        }
    }
    s
}

/// The `count` smallest absolute deviations `|v - center|` of `n` values sorted ascending
/// (given by `at`), in ascending order, into `out`. The deviations of the values below
/// `center`, read downwards, and of those above it, read upwards, are two ascending runs, so
/// merging them replaces a sort (O(count) instead of O(n log n), and the same numbers: `c - v`
/// and `v - c` are exactly `|v - c|` in IEEE arithmetic).
fn sorted_deviations(n: usize, at: impl Fn(usize) -> f64, center: f64, count: usize, out: &mut Vec<f64>) {
    out.clear();
    // First index whose value is not below the center.
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if at(mid) < center {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let (mut down, mut up) = (lo, lo); // next below: down - 1; next above: up
    while out.len() < count.min(n) {
        let below = (down > 0).then(|| center - at(down - 1));
        let above = (up < n).then(|| at(up) - center);
        match (below, above) {
            (Some(b), Some(a)) if b <= a => {
                out.push(b.abs());
                down -= 1;
            }
            (Some(b), None) => {
                out.push(b.abs());
                down -= 1;
            }
            (_, Some(a)) => {
                out.push(a.abs());
                up += 1;
            }
            (None, None) => break,
        }
    }
}

/// Moves the elements satisfying `keep` to the front; returns how many there are.
fn partition_in_place(rows: &mut [LcRow], keep: impl Fn(&LcRow) -> bool) -> usize {
    let mut k = 0;
    for i in 0..rows.len() {
        if keep(&rows[i]) {
            rows.swap(i, k);
            k += 1;
        }
    }
    k
}

/// State of `flux_mean`: the inverse-variance weighted mean of used rows, with the weights
/// relative to the smallest error seen so far (`sum_w` = sum of `(min_err / sigma)^2`), so that
/// extreme errors neither overflow nor underflow the sums (as `lc_stats`' mean).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FluxMeanState {
    pub n: i64,
    /// The smallest error of the used rows (0 before the first).
    pub min_err: f64,
    pub sum_w: f64,
    pub sum_wf: f64,
}

impl FluxMeanState {
    /// Re-expresses the sums relative to a smaller reference error.
    #[inline]
    fn rescale(&mut self, min_err: f64) {
        if self.n > 0 && min_err < self.min_err {
            let q = min_err / self.min_err;
            self.sum_w *= q * q;
            self.sum_wf *= q * q;
        }
        if self.n == 0 || min_err < self.min_err {
            self.min_err = min_err;
        }
    }

    #[inline]
    pub fn add(&mut self, flux: f64, flux_err: f64) {
        if is_used(flux, flux_err) {
            self.rescale(flux_err);
            let w = rel_weight(self.min_err, flux_err);
            self.n += 1;
            self.sum_w += w;
            self.sum_wf += w * flux;
        }
    }

    pub fn combine(&mut self, other: &FluxMeanState) {
        if other.n == 0 {
            return;
        }
        self.rescale(other.min_err);
        let q = self.min_err / other.min_err;
        self.n += other.n;
        self.sum_w += other.sum_w * q * q;
        self.sum_wf += other.sum_wf * q * q;
    }

    /// (mean, mean_err, n); mean and error are None with no used row.
    pub fn finish(&self) -> (Option<f64>, Option<f64>, i64) {
        if self.n == 0 {
            return (None, None, 0);
        }
        (finite(self.sum_wf / self.sum_w), finite(self.min_err / self.sum_w.sqrt()), self.n)
    }
}

/// A band's flux summary as the Association Pipeline keeps it on each object (LSST's DiaObject
/// `psfFlux{Mean, MeanErr, Sigma, Ndata, Min, Max}`: [`FluxMeanState`]'s weighted mean and
/// error, the sample standard deviation, minimum and maximum of the used fluxes) plus the plain
/// sum of the used fluxes. With the sum, a new detection is folded in exactly, without reading
/// the light curve again (`add`): the weighted sums are recovered from the mean and its error,
/// the unweighted mean from the sum, and the standard deviation is updated by Welford's step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FluxSummary {
    pub mean: Option<f64>,
    pub mean_err: Option<f64>,
    pub sigma: Option<f64>,
    pub ndata: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: Option<f64>,
}

impl FluxSummary {
    /// Checks a summary as read from a table: `ndata` >= 0; `mean`, `min`, `max`, `sum` finite
    /// and `mean_err` finite and > 0 and `sigma` finite and >= 0 where present; a mean and its
    /// error whenever `ndata` > 0. Every summary `add` returns passes.
    pub fn validate(&self) -> SkyResult<()> {
        let finite_or_null = |name: &'static str, v: Option<f64>, ok: fn(f64) -> bool, allowed: &str| match v {
            Some(x) if !(x.is_finite() && ok(x)) => Err(SkyError::invalid(name, allowed, show(x))),
            _ => Ok(()),
        };
        if self.ndata < 0 {
            return Err(SkyError::invalid("ndata", "a number of rows >= 0 (or NULL)", self.ndata));
        }
        finite_or_null("mean", self.mean, |_| true, "a finite flux (or NULL)")?;
        finite_or_null("mean_err", self.mean_err, |e| e > 0.0, "a finite error > 0 (or NULL)")?;
        finite_or_null("sigma", self.sigma, |s| s >= 0.0, "a finite standard deviation >= 0 (or NULL)")?;
        finite_or_null("min", self.min, |_| true, "a finite flux (or NULL)")?;
        finite_or_null("max", self.max, |_| true, "a finite flux (or NULL)")?;
        finite_or_null("sum", self.sum, |_| true, "a finite sum of fluxes (or NULL)")?;
        if self.ndata > 0 && (self.mean.is_none() || self.mean_err.is_none()) {
            return Err(SkyError::invalid("mean", "a mean and its error when ndata > 0", "NULL"));
        }
        Ok(())
    }

    /// [`FluxSummary::add`] of a summary that passes [`FluxSummary::validate`], checked: an
    /// invalid summary, or a row whose sums overflow float8, is an error (never a summary a
    /// later call would refuse).
    pub fn checked_add(&self, flux: f64, flux_err: f64) -> SkyResult<FluxSummary> {
        self.validate()?;
        let s = self.add(flux, flux_err);
        s.validate()
            .map_err(|_| SkyError::invalid("flux", "a flux whose sums with the summary fit in float8", show(flux)))?;
        Ok(s)
    }

    /// The summary with one more row; unchanged when the row is not used (see [`is_used`]).
    pub fn add(&self, flux: f64, flux_err: f64) -> FluxSummary {
        if !is_used(flux, flux_err) {
            return *self;
        }
        let (Some(mean), Some(mean_err)) = (self.mean, self.mean_err) else {
            return Self::first(flux, flux_err);
        };
        if self.ndata <= 0 || !(mean_err > 0.0 && mean_err.is_finite()) {
            return Self::first(flux, flux_err);
        }
        // The weighted state, relative to the mean's own error as the reference error: the sums
        // are then 1 and the mean (finish() is invariant under that scaling).
        let mut weighted = FluxMeanState { n: self.ndata, min_err: mean_err, sum_w: 1.0, sum_wf: mean };
        weighted.add(flux, flux_err);
        let (mean, mean_err, ndata) = weighted.finish();
        let n0 = self.ndata as f64;
        // A summary loaded without its sum (e.g. from another catalog): the weighted mean
        // stands in for the unweighted one.
        let sum0 = self.sum.unwrap_or(mean.unwrap_or(0.0) * n0);
        let mean_u = sum0 / n0;
        let m2 = self.sigma.map_or(0.0, |s| s * s * (n0 - 1.0));
        let delta = flux - mean_u;
        let mean_u1 = mean_u + delta / (n0 + 1.0);
        let m2 = (m2 + delta * (flux - mean_u1)).max(0.0);
        FluxSummary {
            mean,
            mean_err,
            sigma: finite((m2 / n0).sqrt()),
            ndata,
            min: Some(self.min.map_or(flux, |m| m.min(flux))),
            max: Some(self.max.map_or(flux, |m| m.max(flux))),
            sum: finite(sum0 + flux),
        }
    }

    fn first(flux: f64, flux_err: f64) -> FluxSummary {
        FluxSummary {
            mean: Some(flux),
            mean_err: Some(flux_err),
            sigma: None,
            ndata: 1,
            min: Some(flux),
            max: Some(flux),
            sum: Some(flux),
        }
    }
}

/// State of `mean_position`: the sum of unit vectors of the positions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanPositionState {
    pub n: i64,
    pub sum: [f64; 3],
}

impl MeanPositionState {
    /// Adds a position (degrees); non-finite or |dec| > 90 positions are not used.
    #[inline]
    pub fn add(&mut self, ra: f64, dec: f64) {
        if ra.is_finite() && dec.is_finite() && dec.abs() <= 90.0 {
            let u = UnitVector::from_radec(ra, dec);
            self.sum[0] += u.x;
            self.sum[1] += u.y;
            self.sum[2] += u.z;
            self.n += 1;
        }
    }

    pub fn combine(&mut self, other: &MeanPositionState) {
        self.n += other.n;
        for k in 0..3 {
            self.sum[k] += other.sum[k];
        }
    }

    /// The direction of the summed unit vectors as (ra in [0, 360), dec); None when there is
    /// no position or the vectors cancel (e.g. two antipodal points).
    pub fn finish(&self) -> Option<(f64, f64)> {
        let [x, y, z] = self.sum;
        let v = UnitVector { x, y, z };
        if self.n == 0 || v.norm() <= 1e-12 * self.n as f64 {
            return None;
        }
        Some(v.to_radec())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn flux_summary_checked_add_refuses_invalid_summaries_and_overflow() {
        let ok = FluxSummary::default().add(10.0, 1.0);
        assert!(ok.checked_add(11.0, 1.0).is_ok());
        assert!(ok.checked_add(f64::NAN, 1.0).is_ok(), "an unused row leaves a valid summary");
        for bad in [
            FluxSummary { ndata: -1, ..ok },
            FluxSummary { mean_err: Some(-1.0), ..ok },
            FluxSummary { mean_err: Some(0.0), ..ok },
            FluxSummary { sigma: Some(f64::NAN), ..ok },
            FluxSummary { mean: None, ..ok },
            FluxSummary { min: Some(f64::INFINITY), ..ok },
        ] {
            assert!(bad.checked_add(f64::NAN, 1.0).is_err(), "{bad:?}");
        }
        let big = FluxSummary::default().add(1e308, 1e-300);
        assert!(big.checked_add(1e308, 1e-300).is_err(), "the sums overflow");
    }

    /// Folding rows in one at a time equals computing the summary from all of them: the
    /// weighted mean and its error as `FluxMeanState` computes them, the sample standard
    /// deviation, min, max and sum computed here by their definitions.
    #[test]
    fn flux_summary_add_equals_the_summary_of_all_rows() {
        let rows: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let x = i as f64;
                (1000.0 + 50.0 * (x * 0.7).sin() + x, 5.0 + (x * 1.3).cos().abs() * 20.0)
            })
            .chain([(f64::NAN, 1.0), (3.0, 0.0), (4.0, f64::INFINITY)])
            .collect();
        let mut s = FluxSummary::default();
        for (k, &(f, e)) in rows.iter().enumerate() {
            s = s.add(f, e);
            let used: Vec<(f64, f64)> = rows[..=k].iter().copied().filter(|&(f, e)| is_used(f, e)).collect();
            let mut w = FluxMeanState::default();
            used.iter().for_each(|&(f, e)| w.add(f, e));
            let (mean, mean_err, n) = w.finish();
            assert_eq!(s.ndata, n);
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                (a, b) => a == b,
            };
            assert!(close(s.mean, mean) && close(s.mean_err, mean_err), "row {k}: {s:?} vs {mean:?} {mean_err:?}");
            let fl: Vec<f64> = used.iter().map(|r| r.0).collect();
            let m = fl.iter().sum::<f64>() / fl.len() as f64;
            let sigma = (fl.len() > 1)
                .then(|| (fl.iter().map(|f| (f - m) * (f - m)).sum::<f64>() / (fl.len() - 1) as f64).sqrt());
            assert!(close(s.sigma, sigma), "row {k}: sigma {:?} vs {sigma:?}", s.sigma);
            assert_eq!(s.min, fl.iter().copied().reduce(f64::min));
            assert_eq!(s.max, fl.iter().copied().reduce(f64::max));
            assert!(close(s.sum, Some(fl.iter().sum())));
        }
    }

    #[test]
    fn flux_summary_without_a_sum_uses_the_weighted_mean() {
        let s = FluxSummary {
            mean: Some(10.0),
            mean_err: Some(1.0),
            sigma: Some(0.0),
            ndata: 4,
            min: Some(10.0),
            max: Some(10.0),
            sum: None,
        };
        let t = s.add(10.0, 1.0);
        assert_eq!((t.ndata, t.mean, t.sigma, t.sum), (5, Some(10.0), Some(0.0), Some(50.0)));
    }
    use super::*;
    use approx::assert_relative_eq;

    proptest::proptest! {
        // The merge of the two monotone runs equals sorting every deviation (bit for bit),
        // for any sorted values and any center, with ties and repeated values.
        #[test]
        fn sorted_deviations_equal_a_full_sort(
            mut values in proptest::collection::vec(-50i32..50, 0..40),
            center in -60i32..60,
            scale in proptest::prop_oneof![proptest::strategy::Just(1.0f64), proptest::strategy::Just(0.1f64)],
        ) {
            let values: Vec<f64> = { values.sort(); values.iter().map(|v| *v as f64 * scale).collect() };
            let c = center as f64 * scale;
            let mut expected: Vec<f64> = values.iter().map(|v| (v - c).abs()).collect();
            expected.sort_by(f64::total_cmp);
            let mut got = Vec::new();
            for count in [0, values.len() / 2 + 1, values.len()] {
                sorted_deviations(values.len(), |i| values[i], c, count, &mut got);
                let want = &expected[..count.min(values.len())];
                proptest::prop_assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                                          want.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn empty_and_single() {
        let s = lc_stats(&mut []);
        assert_eq!(s, LcStats { n: 0, ..Default::default() });
        let s = lc_stats(&mut [[5.0, 2.0, 60000.0]]);
        assert_eq!((s.n, s.mean, s.mean_err, s.sigma, s.stetson_j), (1, Some(5.0), Some(2.0), None, None));
        assert_eq!((s.p05, s.p95, s.mad, s.chi2), (Some(5.0), Some(5.0), Some(0.0), Some(0.0)));
        assert_eq!((s.linear_slope, s.max_slope), (None, None));
    }

    #[test]
    fn closed_forms_for_three_points() {
        // f = 1, 2, 4 with sigma 1: mean 7/3, sigma sqrt(7/3), slope over t = 0, 1, 2 is 1.5.
        let mut rows = [[4.0, 1.0, 60002.0], [1.0, 1.0, 60000.0], [2.0, 1.0, 60001.0]];
        let s = lc_stats(&mut rows);
        assert_relative_eq!(s.mean.unwrap(), 7.0 / 3.0, max_relative = 1e-15);
        assert_relative_eq!(s.mean_err.unwrap(), (1.0f64 / 3.0).sqrt(), max_relative = 1e-15);
        assert_relative_eq!(s.sigma.unwrap(), (7.0f64 / 3.0).sqrt(), max_relative = 1e-15);
        assert_relative_eq!(s.linear_slope.unwrap(), 1.5, max_relative = 1e-12);
        assert_relative_eq!(s.linear_intercept.unwrap(), 7.0 / 3.0 - 1.5 * 60001.0, max_relative = 1e-12);
        assert_eq!(s.max_slope, Some(2.0));
        assert_eq!((s.p50, s.mad), (Some(2.0), Some(1.0)));
        assert_relative_eq!(s.p25.unwrap(), 1.5);
    }

    #[test]
    fn extreme_errors_do_not_underflow_the_mean() {
        // One used row: the mean is its flux and the error its error, whatever their scale
        // (1 / sigma^2 underflows to 0 for sigma = 5e126; flux * weight for flux = 1e-300).
        for (f, e) in
            [(1e-300, 5.11e126), (1.588152195374834e-217, 9.078517232098946e58), (1e300, 1e-200), (-3.0, 1e-160)]
        {
            let s = lc_stats(&mut [[f, e, 60000.0]]);
            assert_eq!((s.mean, s.mean_err), (Some(f), Some(e)), "({f}, {e})");
            let mut m = FluxMeanState::default();
            m.add(f, e);
            assert_eq!(m.finish(), (Some(f), Some(e), 1), "({f}, {e})");
        }
        // Two rows, weights 1 and 1/4: mean (a + b / 4) / (5 / 4), error 1 / sqrt(1 + 1/4) times
        // the smaller error, for errors around 1e150 and 1e-150 alike.
        for scale in [1e150, 1.0, 1e-150] {
            let (a, b) = (10.0, 20.0);
            let s = lc_stats(&mut [[a, scale, 1.0], [b, 2.0 * scale, 2.0]]);
            let want = (a + b / 4.0) / 1.25;
            assert!((s.mean.unwrap() - want).abs() < 1e-12 * want, "{scale}: {:?}", s.mean);
            assert!((s.mean_err.unwrap() / (scale / 1.25f64.sqrt()) - 1.0).abs() < 1e-12);
            // The streaming state in either order, and combined from two halves, agrees.
            let (mut x, mut y, mut z) = (FluxMeanState::default(), FluxMeanState::default(), FluxMeanState::default());
            x.add(a, scale);
            x.add(b, 2.0 * scale);
            y.add(b, 2.0 * scale);
            y.add(a, scale);
            z.add(b, 2.0 * scale);
            let mut half = FluxMeanState::default();
            half.add(a, scale);
            z.combine(&half);
            for st in [x, y, z] {
                let (m, e, n) = st.finish();
                assert_eq!(n, 2);
                assert!(
                    (m.unwrap() - want).abs() < 1e-12 * want
                        && (e.unwrap() / (scale / 1.25f64.sqrt()) - 1.0).abs() < 1e-12
                );
            }
        }
    }

    #[test]
    fn constant_light_curves_have_zero_spread() {
        // 0.1 is not a binary fraction: the mean of three 0.1s rounds, and the deviations
        // used to be rounding noise (skew sqrt(6), sigma 1e-17). Closed form: a constant curve
        // has sigma 0, chi2 0, and no skew (the formula divides by zero: NULL).
        for (f, n) in [(0.1, 3), (0.1, 7), (1e-30, 5), (123456.789, 1000), (-7.3e5, 4)] {
            let mut rows: Vec<LcRow> = (0..n).map(|i| [f, 0.5 + i as f64, 60000.0 + i as f64]).collect();
            let s = lc_stats(&mut rows);
            assert_eq!(s.sigma, Some(0.0), "{f} x {n}");
            assert_eq!(s.chi2, Some(0.0), "{f} x {n}");
            assert_eq!(s.skew, None, "{f} x {n}");
            assert_eq!(s.mad, Some(0.0));
        }
        // A genuine spread far below the flux (1e-9 relative) is kept: the bias-corrected G1
        // of {a, a, a + d} is sqrt(3) whatever d (g1 = 1/sqrt(2), times sqrt(n (n - 1)) / (n - 2)).
        let mut rows: Vec<LcRow> = vec![[1000.0, 1.0, 1.0], [1000.0, 1.0, 2.0], [1000.000001, 1.0, 3.0]];
        let s = lc_stats(&mut rows);
        assert!((s.skew.unwrap() - 3f64.sqrt()).abs() < 1e-4, "{:?}", s.skew);
    }

    #[test]
    fn equal_fluxes_and_equal_times() {
        let mut rows = [[3.0, 1.0, 5.0], [3.0, 1.0, 5.0], [3.0, 2.0, 5.0]];
        let s = lc_stats(&mut rows);
        assert_eq!((s.sigma, s.skew, s.mad), (Some(0.0), None, Some(0.0)));
        assert_eq!((s.linear_slope, s.max_slope), (None, None));
    }

    #[test]
    fn flux_mean_and_mean_position() {
        let mut m = FluxMeanState::default();
        m.add(1.0, 1.0);
        m.add(3.0, 1.0);
        m.add(f64::NAN, 1.0);
        m.add(2.0, 0.0);
        let (mean, err, n) = m.finish();
        assert_eq!((mean, n), (Some(2.0), 2));
        assert_relative_eq!(err.unwrap(), 0.5f64.sqrt(), max_relative = 1e-15);
        let mut p = MeanPositionState::default();
        p.add(359.0, 10.0);
        p.add(1.0, 10.0);
        let (ra, dec) = p.finish().unwrap();
        assert!(!(1e-9..=360.0 - 1e-9).contains(&ra), "{ra}");
        assert!(dec > 10.0 && dec < 10.01);
        let mut q = MeanPositionState::default();
        q.add(0.0, 0.0);
        q.add(180.0, 0.0);
        assert_eq!(q.finish(), None);
    }
}
