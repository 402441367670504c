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

/// Rows per step of Stetson's iteration (flux, weight and scale of 4 rows side by side).
const STETSON_LANES: usize = 4;

/// Per-thread buffers of [`lc_stats`], reused: a query computes millions of light curves.
#[derive(Default)]
struct Scratch {
    /// A copy of the fluxes, reordered by the order statistics.
    fluxes: Vec<f64>,
    /// Stetson's per-row constants, [`STETSON_LANES`] rows side by side.
    lanes: Vec<StetsonLane>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// numpy's default ("linear") percentile of `n` sorted values given by `at(i)`.
pub fn percentile_by(n: usize, q: f64, at: impl Fn(usize) -> f64) -> f64 {
    let [lo, hi] = percentile_ranks(n, q);
    percentile_between(n, q, at(lo), if hi == lo { f64::NAN } else { at(hi) })
}

/// The ranks `floor` and `ceil` of `q * (n - 1)` that numpy's linear percentile reads.
#[inline]
fn percentile_ranks(n: usize, q: f64) -> [usize; 2] {
    let pos = q * (n - 1) as f64;
    [pos.floor() as usize, pos.ceil() as usize]
}

/// numpy's linear percentile `q` of `n` values from the values `a` and `b` at its two ranks
/// ([`percentile_ranks`]; `b` is not read when the ranks are equal).
#[inline]
fn percentile_between(n: usize, q: f64, a: f64, b: f64) -> f64 {
    let pos = q * (n - 1) as f64;
    let frac = pos - pos.floor();
    if frac == 0.0 {
        a
    } else if frac >= 0.5 {
        // numpy's _lerp: a + (b - a) * t, with the symmetric form for t >= 0.5
        b - (b - a) * (1.0 - frac)
    } else {
        a + (b - a) * frac
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

/// Stetson's (1996) iteratively re-weighted mean, as LSST's `_stetson_mean` (alpha = beta = 2,
/// 20 iterations, tolerance 1e-6, the relative test divided by the new mean, signed).
/// The per-row constants (1/σ², sqrt(n/(n-1))/σ) are computed once, not per iteration.
#[inline(always)]
fn stetson_mean<const AVX2: bool>(rows: &[LcRow], s_min: f64, start: f64, k: &mut Vec<StetsonLane>) -> f64 {
    let n = rows.len() as f64;
    let n_factor = (n / (n - 1.0)).sqrt();
    k.clear();
    // Padded to whole lanes with rows of weight 0 (which add exactly 0 to both sums).
    let lanes = rows.len().div_ceil(STETSON_LANES);
    k.reserve(lanes);
    for chunk in rows.chunks(STETSON_LANES) {
        let mut lane: StetsonLane = [[0.0; STETSON_LANES]; 3];
        for (i, r) in chunk.iter().enumerate() {
            lane[0][i] = r[0];
            lane[1][i] = rel_weight(s_min, r[1]);
            lane[2][i] = n_factor / r[1];
        }
        k.push(lane);
    }
    let mut mean = start;
    for _ in 0..20 {
        let (sw, swf) = match AVX2 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 is true only in `lc_stats_avx2`, which runs on CPUs with AVX2.
            true => unsafe { stetson_sums_avx2(k, mean) },
            _ => stetson_sums(k, mean),
        };
        let tmp = swf.iter().sum::<f64>() / sw.iter().sum::<f64>();
        let diff = (tmp - mean).abs();
        mean = tmp;
        if diff / mean < 1e-6 && diff < 1e-6 {
            break;
        }
    }
    mean
}

/// Stetson's per-row constants for [`STETSON_LANES`] rows: fluxes, weights
/// ([`rel_weight`]) and `sqrt(n / (n - 1)) / sigma`.
type StetsonLane = [[f64; STETSON_LANES]; 3];

/// One iteration of Stetson's mean about `mean`: per lane, the sums of the weights and of the
/// weighted fluxes. STETSON_LANES independent sums, added at the end, so that the divisions of
/// one iteration can run side by side (up to 20 iterations over every row were most of
/// lc_stats' time).
#[inline(always)]
fn stetson_sums(k: &[StetsonLane], mean: f64) -> ([f64; STETSON_LANES], [f64; STETSON_LANES]) {
    let (mut sw, mut swf) = ([0.0; STETSON_LANES], [0.0; STETSON_LANES]);
    for [f, inv_var, scale] in k.iter() {
        for i in 0..STETSON_LANES {
            let half_chi = 0.5 * (f[i] - mean) * scale[i];
            let w = inv_var[i] / (1.0 + half_chi * half_chi);
            sw[i] += w;
            swf[i] += w * f[i];
        }
    }
    (sw, swf)
}

/// [`stetson_sums`] in one 256-bit register per quantity: the same operations in the same
/// order per lane (so bit for bit the same sums), written with intrinsics because the compiler
/// leaves the divisions scalar.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn stetson_sums_avx2(k: &[StetsonLane], mean: f64) -> ([f64; STETSON_LANES], [f64; STETSON_LANES]) {
    use std::arch::x86_64::*;
    let (half, one, mean) = (_mm256_set1_pd(0.5), _mm256_set1_pd(1.0), _mm256_set1_pd(mean));
    let (mut sw, mut swf) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for [f, inv_var, scale] in k.iter() {
        // SAFETY: each lane is 4 f64 in memory; unaligned loads.
        let (f, inv_var, scale) = unsafe {
            (_mm256_loadu_pd(f.as_ptr()), _mm256_loadu_pd(inv_var.as_ptr()), _mm256_loadu_pd(scale.as_ptr()))
        };
        let half_chi = _mm256_mul_pd(_mm256_mul_pd(half, _mm256_sub_pd(f, mean)), scale);
        let w = _mm256_div_pd(inv_var, _mm256_add_pd(one, _mm256_mul_pd(half_chi, half_chi)));
        sw = _mm256_add_pd(sw, w);
        swf = _mm256_add_pd(swf, _mm256_mul_pd(w, f));
    }
    let (mut out_w, mut out_wf) = ([0.0; STETSON_LANES], [0.0; STETSON_LANES]);
    // SAFETY: the arrays hold 4 f64.
    unsafe {
        _mm256_storeu_pd(out_w.as_mut_ptr(), sw);
        _mm256_storeu_pd(out_wf.as_mut_ptr(), swf);
    }
    (out_w, out_wf)
}

/// The canonical order of a light curve's rows: by time, then flux, then error (a total
/// order, NaN times last). Every sum in [`lc_stats`] adds the rows in this order, so the result
/// does not depend on the order the rows arrived in (a parallel plan combines partial states in
/// any order and gives bit for bit the serial result); the time-based fields need it anyway.
#[inline]
fn canonical(a: &LcRow, b: &LcRow) -> std::cmp::Ordering {
    a[2].total_cmp(&b[2]).then(a[0].total_cmp(&b[0])).then(a[1].total_cmp(&b[1]))
}

/// Light curves up to this length are sorted for their order statistics (the common case:
/// tens of epochs per band), longer ones use selections ([`select_percentiles`]).
const SORT_AT_MOST: usize = 32;

/// The percentiles p05, p25, p50, p75, p95 and the MAD (the median of `|v - p50|`) of the
/// fluxes `v`, which are reordered.
#[inline(always)]
fn order_statistics(v: &mut [f64]) -> ([f64; 5], f64) {
    const QS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];
    let n = v.len();
    if n <= SORT_AT_MOST {
        sort_total(v);
        let p = QS.map(|q| percentile_by(n, q, |i| v[i]));
        (p, median_deviation_of_sorted(v, p[2]))
    } else {
        let p = select_percentiles(v, QS);
        // |v - median| is exact in IEEE arithmetic whichever side v lies on.
        for x in v.iter_mut() {
            *x = (*x - p[2]).abs();
        }
        (p, select_percentiles(v, [0.5])[0])
    }
}

/// `f64::total_cmp`'s order as an integer: the sign bit kept, the other bits flipped for
/// negative values. The map is its own inverse.
#[inline]
fn total_key(bits: u64) -> u64 {
    let b = bits as i64;
    (b ^ (((b >> 63) as u64) >> 1) as i64) as u64
}

/// Sorts at most [`SORT_AT_MOST`] items by an `f64` each (`value`) in `f64::total_cmp`'s order,
/// by rank counting: each item's place is the number of items before it in that order (ties
/// by position), counted on the integer keys of [`total_key`]. O(n²) comparisons, but
/// branch-free and vectorised, where the standard library's insertion sort (what it runs for
/// the few dozen rows of a band's light curve) mispredicts a branch on every item out of
/// order. Items of equal keys keep their order.
#[inline(always)]
fn sort_by_rank<T: Copy + Default>(items: &mut [T], value: impl Fn(&T) -> f64) {
    let n = items.len();
    debug_assert!(n <= SORT_AT_MOST);
    let mut keys = [0i64; SORT_AT_MOST];
    for (k, x) in keys.iter_mut().zip(items.iter()) {
        *k = total_key(value(x).to_bits()) as i64;
    }
    let keys = &keys[..n];
    let mut sorted = [T::default(); SORT_AT_MOST];
    for (i, &key) in keys.iter().enumerate() {
        let before: usize = keys[..i].iter().map(|&k| (k <= key) as usize).sum::<usize>()
            + keys[i..].iter().map(|&k| (k < key) as usize).sum::<usize>();
        sorted[before] = items[i];
    }
    items.copy_from_slice(&sorted[..n]);
}

/// Sorts at most [`SORT_AT_MOST`] values in `f64::total_cmp`'s order ([`sort_by_rank`]); they
/// come back bit for bit.
#[inline(always)]
fn sort_total(v: &mut [f64]) {
    sort_by_rank(v, |&x| x);
}

/// Sorts at most [`SORT_AT_MOST`] rows in the [`canonical`] order: by time alone with
/// [`sort_by_rank`] (rows of a light curve may arrive in random time order, as from a hash
/// aggregate over a table not stored by time), then an insertion sort by the whole order,
/// which only moves rows of equal times.
#[inline(always)]
fn sort_canonical_short(rows: &mut [LcRow]) {
    sort_by_rank(rows, |r| r[2]);
    if !rows.is_sorted_by(|a, b| canonical(a, b).is_le()) {
        rows.sort_by(canonical); // an insertion sort for short slices: only equal times move
    }
}

/// The median of `|x - m|` over the sorted values `v` without sorting the deviations: below
/// `m` they shrink as `x` grows, from `m` on they grow (IEEE rounding is monotone), so their
/// ascending order is a merge of the two runs walked outwards from `m`.
#[inline(always)]
fn median_deviation_of_sorted(v: &[f64], m: f64) -> f64 {
    let n = v.len();
    let [lo, hi] = percentile_ranks(n, 0.5);
    let mut left = v.partition_point(|&x| x < m);
    let mut right = left;
    let mut at = [0.0; 2];
    for k in 0..=hi {
        // The next deviation on each side (a side used up counts as infinite; both never are,
        // as hi < n): the smaller one is the next in order.
        let below = if left > 0 { (v[left - 1] - m).abs() } else { f64::INFINITY };
        let above = if right < n { (v[right] - m).abs() } else { f64::INFINITY };
        let d = if left > 0 && below <= above {
            left -= 1;
            below
        } else {
            right += 1;
            above
        };
        if k == lo {
            at[0] = d;
        }
        if k == hi {
            at[1] = d;
        }
    }
    percentile_between(n, 0.5, at[0], at[1])
}

/// The percentiles `qs` (numpy "linear") of `v`, which is reordered: a selection of the few
/// ranks they read (O(n)) instead of a sort (O(n log n)). The values at those ranks are exactly
/// those of the sorted order, so the results are too.
fn select_percentiles<const K: usize>(v: &mut [f64], qs: [f64; K]) -> [f64; K] {
    let n = v.len();
    // Every rank read, ascending (qs are ascending), duplicates kept: no allocation per group.
    let mut ranks = [0usize; 10];
    debug_assert!(2 * K <= ranks.len() && qs.is_sorted());
    for (k, &q) in qs.iter().enumerate() {
        [ranks[2 * k], ranks[2 * k + 1]] = percentile_ranks(n, q);
    }
    let ranks = &ranks[..2 * K];
    let mut at = [0.0; 10];
    // Each rank is selected in what lies above the previous one.
    let mut from = 0;
    for (k, &r) in ranks.iter().enumerate() {
        if r < from {
            at[k] = at[k - 1]; // the same rank as the one before
            continue;
        }
        let (_, x, _) = v[from..].select_nth_unstable_by(r - from, f64::total_cmp);
        at[k] = *x;
        from = r + 1;
    }
    let mut k = 0;
    qs.map(|q| {
        k += 2;
        percentile_between(n, q, at[k - 2], at[k - 1])
    })
}

/// All the statistics of one light curve. `rows` are the used rows (see [`is_used`]) in any
/// order; they are put in the canonical order ([`canonical`]) in place. Rows that arrive in
/// that order (the DRP stores forced sources by object and time) are only checked, not sorted.
pub fn lc_stats(rows: &mut [LcRow]) -> LcStats {
    SCRATCH.with(|scratch| {
        let scratch = &mut scratch.borrow_mut();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { lc_stats_avx2(rows, scratch) };
        }
        lc_stats_in::<false>(rows, scratch)
    })
}

/// [`lc_stats_in`] compiled for AVX2: Stetson's divisions four rows at a time and the rank
/// counting of [`sort_total`] in 256-bit lanes (30% less time per light curve in the
/// `lightcurve` micro-benchmark).
/// The same IEEE operations in the same order (Rust never fuses a multiply and an add on its
/// own), so the same results bit for bit as the baseline build, which CPUs without AVX2 run.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lc_stats_avx2(rows: &mut [LcRow], scratch: &mut Scratch) -> LcStats {
    lc_stats_in::<true>(rows, scratch)
}

/// [`lc_stats`] with its buffers; inlined into each build of it.
#[inline(always)]
fn lc_stats_in<const AVX2: bool>(rows: &mut [LcRow], scratch: &mut Scratch) -> LcStats {
    let n = rows.len();
    let mut s = LcStats { n: n as i64, ..LcStats::default() };
    if n == 0 {
        return s;
    }
    let nf = n as f64;
    if !rows.is_sorted_by(|a, b| canonical(a, b).is_le()) {
        if n <= SORT_AT_MOST {
            sort_canonical_short(rows);
        } else {
            rows.sort_unstable_by(canonical);
        }
    }

    // One pass: the smallest error, the extremes, the plain sums.
    let (mut s_min, mut lo, mut hi, mut sum_f, mut sum_e) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    for r in rows.iter() {
        s_min = s_min.min(r[1]);
        lo = lo.min(r[0]);
        hi = hi.max(r[0]);
        sum_f += r[0];
        sum_e += r[1];
    }
    // Inverse-variance weighted mean and its error, with the weights relative to the largest
    // (see `rel_weight`): 1/sigma^2 itself underflows or overflows for extreme errors.
    let (mut sw, mut swf) = (0.0, 0.0);
    for r in rows.iter() {
        let w = rel_weight(s_min, r[1]);
        sw += w;
        swf += w * r[0];
    }
    let mean = swf / sw;
    s.mean = finite(mean);
    s.mean_err = finite(s_min / sw.sqrt());
    s.err_mean = finite(sum_e / nf);

    // Central moments about the plain mean (two passes for accuracy), and chi2.
    let plain_mean = sum_f / nf;
    let (mut m2, mut m3, mut chi2) = (0.0, 0.0, 0.0);
    for r in rows.iter() {
        let d = r[0] - plain_mean;
        m2 += d * d;
        m3 += d * d * d;
        let z = (r[0] - mean) / r[1];
        chi2 += z * z;
    }
    // A spread no larger than the rounding of the mean itself (about n ulps of the largest
    // flux) is a constant light curve: its variance is zero, not rounding noise, which would
    // otherwise give e.g. skew = sqrt(6) for three equal fluxes (noise divided by noise).
    let rounding = nf * f64::EPSILON * lo.abs().max(hi.abs());
    let constant = m2 / nf <= rounding * rounding;
    if constant {
        (m2, m3) = (0.0, 0.0);
    }
    s.chi2 = if constant { Some(0.0) } else { finite(chi2) };
    if n >= 2 {
        s.sigma = finite((m2 / (nf - 1.0)).sqrt());
    }
    if n >= 3 {
        // pandas' bias-corrected G1 from the biased moments; 0 for a constant light curve, as
        // pandas (LSST's reference) reports it.
        s.skew = if m2 > 0.0 {
            let (b2, b3) = (m2 / nf, m3 / nf);
            finite((nf * (nf - 1.0)).sqrt() / (nf - 2.0) * b3 / b2.powf(1.5))
        } else {
            Some(0.0)
        };
    }

    // Order statistics on a per-thread scratch copy of the fluxes (no allocation per group:
    // a query computes millions of them), then the absolute deviations from the median.
    s.min = finite(lo);
    s.max = finite(hi);
    let v = &mut scratch.fluxes;
    v.clear();
    v.extend(rows.iter().map(|r| r[0]));
    let ([p05, p25, p50, p75, p95], mad) = order_statistics(v);
    (s.p05, s.p25, s.p50, s.p75, s.p95) = (finite(p05), finite(p25), finite(p50), finite(p75), finite(p95));
    s.mad = finite(mad);

    // Stetson J.
    if n >= 2 {
        let m = stetson_mean::<AVX2>(rows, s_min, mean, &mut scratch.lanes);
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

    // Time-based fields: the rows with a finite mjd, a contiguous run of the canonical order
    // (non-finite times sort to either end), already ordered by (mjd, flux, error).
    let first = rows.partition_point(|r| r[2].total_cmp(&f64::NEG_INFINITY).is_le());
    let end = rows.partition_point(|r| r[2].total_cmp(&f64::INFINITY).is_lt());
    let timed = &rows[first..end.max(first)];
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

/// One object's light curves in several bands, filled row by row as a scan meets them (the
/// DRP's forced sources are stored object by object): per band, the rows seen and the used
/// rows. The buffers are kept between objects ([`BandCurves::clear`]), so a stream of
/// millions of objects allocates only for its longest light curves.
#[derive(Debug, Clone)]
pub struct BandCurves {
    curves: Vec<Vec<LcRow>>,
    rows: Vec<i64>,
}

impl BandCurves {
    pub fn new(bands: usize) -> Self {
        BandCurves { curves: vec![Vec::new(); bands], rows: vec![0; bands] }
    }

    /// Forget the current object (keeping the buffers).
    pub fn clear(&mut self) {
        self.curves.iter_mut().for_each(Vec::clear);
        self.rows.iter_mut().for_each(|r| *r = 0);
    }

    /// A row of band `band` (an index below the band count); a NaN `mjd` for a missing time.
    /// Returns the used rows the band now holds (what a caller bounds).
    #[inline]
    pub fn push(&mut self, band: usize, flux: f64, flux_err: f64, mjd: f64) -> usize {
        self.rows[band] += 1;
        let c = &mut self.curves[band];
        if is_used(flux, flux_err) {
            c.push([flux, flux_err, mjd]);
        }
        c.len()
    }

    /// Rows seen in every band.
    pub fn rows(&self) -> i64 {
        self.rows.iter().sum()
    }

    /// Per band: the rows seen (used or not) and the statistics of the used ones, exactly as
    /// `lc_stats` over that band's rows gives them.
    pub fn stats(&mut self) -> impl Iterator<Item = (i64, LcStats)> + '_ {
        self.rows.iter().copied().zip(self.curves.iter_mut().map(|c| lc_stats(c)))
    }
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

    /// numpy's linear percentile from a full sort: the reference of the selection.
    fn sorted_percentile(v: &[f64], q: f64) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        percentile_by(v.len(), q, |i| v[i])
    }

    proptest::proptest! {
        // The order statistics from selection equal those of a full sort bit for bit, and the
        // result does not depend on the order the rows arrive in (nor on whether they arrive
        // sorted): any values with ties, short and long curves, NaN and infinite times.
        #[test]
        fn order_statistics_equal_a_full_sort_in_any_arrival_order(
            values in proptest::collection::vec((-50i32..50, 1i32..5, 0i32..30), 1..80),
            scale in proptest::prop_oneof![proptest::strategy::Just(1.0f64), proptest::strategy::Just(0.1f64)],
            nan_times in 0usize..3,
            seed in 0u64..1000,
        ) {
            let mut rows: Vec<LcRow> = values.iter().enumerate().map(|(i, &(f, e, t))| {
                let t = if i < nan_times { [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i] } else { 60000.0 + t as f64 };
                [f as f64 * scale, e as f64 * 0.5, t]
            }).collect();
            let fluxes: Vec<f64> = rows.iter().map(|r| r[0]).collect();
            let median = sorted_percentile(&fluxes, 0.5);
            let devs: Vec<f64> = fluxes.iter().map(|f| (f - median).abs()).collect();
            let s = lc_stats(&mut rows.clone());
            let want = [0.05, 0.25, 0.5, 0.75, 0.95].map(|q| sorted_percentile(&fluxes, q).to_bits());
            let got = [s.p05, s.p25, s.p50, s.p75, s.p95].map(|x| x.unwrap().to_bits());
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(s.mad.unwrap().to_bits(), sorted_percentile(&devs, 0.5).to_bits());
            proptest::prop_assert_eq!(s.min, fluxes.iter().copied().reduce(f64::min));
            proptest::prop_assert_eq!(s.max, fluxes.iter().copied().reduce(f64::max));
            // Another arrival order (a deterministic shuffle), and the sorted order.
            let mut k = seed;
            for i in (1..rows.len()).rev() {
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                rows.swap(i, (k >> 33) as usize % (i + 1));
            }
            let shuffled = lc_stats(&mut rows);
            proptest::prop_assert_eq!(format!("{shuffled:?}"), format!("{s:?}"));
            let again = lc_stats(&mut rows);
            proptest::prop_assert_eq!(format!("{again:?}"), format!("{s:?}"));
        }
    }

    proptest::proptest! {
        // The rank-counting sort of short light curves gives the standard library's sort in
        // the canonical order, bit for bit: many ties in time, flux and error, signed zeros,
        // NaN and infinite times.
        #[test]
        fn the_short_canonical_sort_equals_the_library_sort(
            rows in proptest::collection::vec((0usize..6, -3i32..3, 1i32..3), 0..=SORT_AT_MOST),
        ) {
            let times = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 60000.0, 60000.5, -0.0];
            let mut a: Vec<LcRow> = rows.iter().map(|&(t, f, e)| [f as f64 * 0.5, e as f64, times[t]]).collect();
            let mut b = a.clone();
            sort_canonical_short(&mut a);
            b.sort_unstable_by(canonical);
            let bits = |v: &[LcRow]| v.iter().map(|r| r.map(f64::to_bits)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&a), bits(&b));
        }
    }

    proptest::proptest! {
        // The AVX2 build of lc_stats and the baseline one (what a CPU without AVX2 runs) give
        // the same results bit for bit: random light curves of every length around the
        // sort/selection switch, errors over many decades, rows in any order.
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn the_avx2_build_equals_the_baseline_bit_for_bit(
            rows in proptest::collection::vec((-1e4f64..1e4, -3f64..3.0, 0f64..3650.0), 0..120),
        ) {
            if !std::arch::is_x86_feature_detected!("avx2") {
                eprintln!("this CPU has no AVX2: only the baseline build runs here");
                return Ok(());
            }
            let mut a: Vec<LcRow> = rows.iter().map(|&(f, e, t)| [f, 10f64.powf(e), 60000.0 + t]).collect();
            let mut b = a.clone();
            let mut scratch = Scratch::default();
            let base = lc_stats_in::<false>(&mut a, &mut scratch);
            // SAFETY: checked above.
            let avx2 = unsafe { lc_stats_avx2(&mut b, &mut scratch) };
            proptest::prop_assert_eq!(format!("{:?}", base.float_fields().map(|v| v.map(f64::to_bits))),
                                      format!("{:?}", avx2.float_fields().map(|v| v.map(f64::to_bits))));
            proptest::prop_assert_eq!(base.n, avx2.n);
        }
    }

    #[test]
    fn band_curves_equal_lc_stats_per_band() {
        let mut b = BandCurves::new(3);
        let rows =
            [(0, 1.0, 1.0, 1.0), (2, 5.0, 1.0, 2.0), (0, 3.0, 2.0, 3.0), (0, f64::NAN, 1.0, 4.0), (2, 4.0, -1.0, 5.0)];
        for &(band, f, e, t) in &rows {
            b.push(band, f, e, t);
        }
        assert_eq!(b.rows(), 5);
        let got: Vec<(i64, LcStats)> = b.stats().collect();
        assert_eq!(got[0], (3, lc_stats(&mut [[1.0, 1.0, 1.0], [3.0, 2.0, 3.0]])));
        assert_eq!(got[1], (0, LcStats { n: 0, ..Default::default() }));
        assert_eq!(got[2], (2, lc_stats(&mut [[5.0, 1.0, 2.0]])));
        b.clear();
        assert_eq!((b.rows(), b.stats().map(|(r, s)| r + s.n).sum::<i64>()), (0, 0));
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
        // has sigma 0, chi2 0 and skew 0 (as pandas, LSST's reference, reports it).
        for (f, n) in [(0.1, 3), (0.1, 7), (1e-30, 5), (123456.789, 1000), (-7.3e5, 4)] {
            let mut rows: Vec<LcRow> = (0..n).map(|i| [f, 0.5 + i as f64, 60000.0 + i as f64]).collect();
            let s = lc_stats(&mut rows);
            assert_eq!(s.sigma, Some(0.0), "{f} x {n}");
            assert_eq!(s.chi2, Some(0.0), "{f} x {n}");
            assert_eq!(s.skew, if n >= 3 { Some(0.0) } else { None }, "{f} x {n}");
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
        assert_eq!((s.sigma, s.skew, s.mad), (Some(0.0), Some(0.0), Some(0.0)));
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
