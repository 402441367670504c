//! The sky index key behind `skycat.sky_key` and index-assisted `dwithin`.
//!
//! The key is the HEALPix NESTED index at depth 29 (cells of ~0.4 milli-arcsec). In the NESTED
//! scheme every coarser cell is one contiguous range of depth-29 keys, so a cone maps to a few
//! key ranges at whatever depth suits its radius: one B-tree on `sky_key(ra, dec)` serves
//! 0.001-arcsecond matches and degree-sized cones alike. (q3c does the same with its own
//! quad-cube curve; HEALPix is used here because it is the sky pixelisation of the field, so
//! keys are meaningful to users, and `cdshealpix` gives exact, well-tested cone covers.)
//!
//! A cone is turned into at most `max_ranges` ranges: the cover is computed at the finest depth
//! whose merged ranges fit, because every range becomes one arm of a BitmapOr.

use crate::sphere::DEG_PER_ARCSEC;

/// Depth of the key (nside = 2^29).
pub const KEY_DEPTH: u8 = 29;
/// Number of depth-29 cells: keys are in [0, KEY_COUNT).
pub const KEY_COUNT: i64 = 12 << (2 * KEY_DEPTH as i64);
/// How many ranges the index condition of `dwithin` holds (its BitmapOr arms) for matching
/// radii, where every probe is one outer row of a join and a few extra candidates cost less
/// than more index scans.
pub const MAX_RANGES: usize = 4;
/// Ranges for cone searches wider than [`WIDE_CONE_ARCSEC`]: the cover then shrinks from ~12x
/// to ~5x the circle's area, i.e. a third of the heap pages to read on a big table (measured:
/// 10,000 cones of 10' on 10M rows as one LATERAL statement, 8.2 s with 4 ranges, 3.5 s with
/// 16, 3.45 s with 64: past 16 the extra index descents cost what the heap pages save).
/// A cone is a constant centre, a parameter, or a column of an outer query (a LATERAL
/// subquery: one cone per outer row, each scan choosing only between the index and a full
/// scan). Joins keep [`MAX_RANGES`]: PostgreSQL estimates each range of a join at 1/9 of the
/// table (two inequalities on two relations, 1/3 each), so more ranges make the index look
/// too expensive and the planner tests every pair instead.
pub const WIDE_MAX_RANGES: usize = 16;
pub const WIDE_CONE_ARCSEC: f64 = 10.0;

/// The number of index-condition ranges `dwithin` uses, given the radius if it is known at
/// planning time and whether the centre is fixed during a scan (a cone search, see
/// [`WIDE_MAX_RANGES`]) or the other side of a join.
pub fn slots_for(radius_arcsec: Option<f64>, cone: bool) -> usize {
    match radius_arcsec {
        Some(r) if cone && r > WIDE_CONE_ARCSEC => WIDE_MAX_RANGES,
        _ => MAX_RANGES,
    }
}

/// Margin added to the radius before covering, so points a rounding error outside a cell
/// boundary are never missed (the exact test runs afterwards anyway).
const COVER_MARGIN_RAD: f64 = 1e-10;
/// First depth tried: cells about this many radii across.
const START_CELLS_PER_RADIUS: f64 = 2.0;

/// The key of a position (ra in [0, 360), dec in [-90, 90], degrees).
pub fn sky_key(ra: f64, dec: f64) -> i64 {
    cdshealpix::nested::hash(KEY_DEPTH, ra.to_radians(), dec.to_radians()) as i64
}

/// Inclusive key ranges, sorted and disjoint, whose union contains the key of every point within
/// `radius_arcsec` of (ra, dec); at most `max_ranges` of them (`max_ranges` >= 1).
pub fn key_ranges(ra: f64, dec: f64, radius_arcsec: f64, max_ranges: usize) -> Vec<(i64, i64)> {
    let r = (radius_arcsec * DEG_PER_ARCSEC).to_radians() * (1.0 + 1e-12) + COVER_MARGIN_RAD;
    // A depth-0 cell is ~58.6 degrees across; past ~30 degrees the cover is most of the sky.
    if r >= 30f64.to_radians() {
        return vec![(0, KEY_COUNT - 1)];
    }
    // Start where cells are about twice the radius, so that one cover usually fits (each
    // cdshealpix cover costs a few microseconds), and coarsen until it does.
    let cell0 = 58.63f64.to_radians();
    // More ranges allowed: start finer (each depth quarters the cells).
    let finer = ((max_ranges as f64 / MAX_RANGES as f64).log2() / 2.0).floor().max(0.0) as i64;
    let mut depth =
        ((cell0 / (START_CELLS_PER_RADIUS * r)).log2().floor() as i64 + finer).clamp(0, KEY_DEPTH as i64) as u8;
    loop {
        let bmoc = cdshealpix::nested::cone_coverage_approx(depth, ra.to_radians(), dec.to_radians(), r);
        let shift = 2 * (KEY_DEPTH - depth) as u32;
        let ranges: Vec<(i64, i64)> =
            bmoc.to_ranges().iter().map(|rg| ((rg.start << shift) as i64, ((rg.end << shift) - 1) as i64)).collect();
        if ranges.len() <= max_ranges {
            return ranges;
        }
        if depth == 0 {
            return vec![(0, KEY_COUNT - 1)];
        }
        depth -= 1;
    }
}

/// The last cone covered (its ra, dec, radius bits and slot count) and its ranges.
type CachedCover = Option<([u64; 4], Vec<(i64, i64)>)>;

thread_local! {
    /// The last cone covered on this thread: every bound function of one probe asks for the
    /// same cone, so it is covered once per probe rather than 2 x MAX_RANGES times.
    static LAST_COVER: std::cell::RefCell<CachedCover> = const { std::cell::RefCell::new(None) };
}

/// Bound of range `slot` of the `n_slots`-range cover of a cone: the lower bound, or the
/// upper one when `upper`. Slots past the last range are the empty range [1, 0].
pub fn range_bound(ra: f64, dec: f64, radius_arcsec: f64, slot: i32, n_slots: usize, upper: bool) -> i64 {
    let key = [ra.to_bits(), dec.to_bits(), radius_arcsec.to_bits(), n_slots as u64];
    LAST_COVER.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(k, _)| *k != key).unwrap_or(true) {
            *c = Some((key, key_ranges(ra, dec, radius_arcsec, n_slots.max(1))));
        }
        let ranges = &c.as_ref().expect("just filled").1;
        match (usize::try_from(slot).ok().and_then(|s| ranges.get(s)), upper) {
            (Some(&(_, hi)), true) => hi,
            (Some(&(lo, _)), false) => lo,
            (None, true) => 0,
            (None, false) => 1,
        }
    })
}

/// Fraction of the sky covered by the ranges (to judge how tight a cover is).
pub fn ranges_sky_fraction(ranges: &[(i64, i64)]) -> f64 {
    ranges.iter().map(|(a, b)| (b - a + 1) as f64).sum::<f64>() / KEY_COUNT as f64
}

/// Centres the typical cover is averaged over: where a circle meets few cells and where it
/// straddles cell corners, at low, middle and high declination.
const TYPICAL_CENTRES: [(f64, f64); 4] = [(10.3, 2.1), (137.9, -33.4), (251.7, 61.8), (45.0, 41.81)];

/// Fraction of the sky in the `n_slots`-range cover of a typical circle of `radius_arcsec`
/// (the mean over a few centres): what PostgreSQL should expect one probe of `dwithin`'s index
/// condition to read when the centre is only known at run time.
pub fn typical_cover_sky_fraction(radius_arcsec: f64, n_slots: usize) -> f64 {
    let sum: f64 = TYPICAL_CENTRES
        .iter()
        .map(|&(ra, dec)| ranges_sky_fraction(&key_ranges(ra, dec, radius_arcsec, n_slots.max(1))))
        .sum();
    sum / TYPICAL_CENTRES.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::sep_deg;
    use proptest::prelude::*;

    fn contains(ranges: &[(i64, i64)], k: i64) -> bool {
        ranges.iter().any(|&(a, b)| a <= k && k <= b)
    }

    #[test]
    fn typical_cover_is_a_few_times_the_circle() {
        for (r, n) in [(1.0, 4), (5.0, 4), (36.0, 4), (600.0, 16), (3600.0, 16)] {
            let circle = crate::sphere::cap_sky_fraction(r);
            let cover = typical_cover_sky_fraction(r, n);
            assert!(cover >= circle && cover < 40.0 * circle, "r={r} n={n}: cover {cover} circle {circle}");
        }
    }

    #[test]
    fn range_bounds_list_the_cover_then_empty_slots() {
        let ranges = key_ranges(33.0, -12.0, 5.0, MAX_RANGES);
        for slot in 0..MAX_RANGES as i32 + 2 {
            let (lo, hi) = (
                range_bound(33.0, -12.0, 5.0, slot, MAX_RANGES, false),
                range_bound(33.0, -12.0, 5.0, slot, MAX_RANGES, true),
            );
            match ranges.get(slot as usize) {
                Some(&r) => assert_eq!((lo, hi), r),
                None => assert!(lo > hi, "slot {slot} must be empty"),
            }
        }
        // another cone replaces the cached one
        assert_eq!(range_bound(10.0, 10.0, 1.0, 0, MAX_RANGES, false), key_ranges(10.0, 10.0, 1.0, MAX_RANGES)[0].0);
        assert_eq!(range_bound(10.0, 10.0, 1.0, -1, MAX_RANGES, false), 1);
        // a different slot count is a different cover
        let wide = key_ranges(10.0, 10.0, 600.0, WIDE_MAX_RANGES);
        assert_eq!(range_bound(10.0, 10.0, 600.0, 5, WIDE_MAX_RANGES, true), wide.get(5).map(|r| r.1).unwrap_or(0));
    }

    #[test]
    fn keys_span_the_sky() {
        assert_eq!(sky_key(0.0, 90.0).clamp(0, KEY_COUNT - 1), sky_key(0.0, 90.0));
        assert!(sky_key(359.999999, -90.0) < KEY_COUNT);
        assert_eq!(key_ranges(10.0, 10.0, 200.0 * 3600.0, 4), vec![(0, KEY_COUNT - 1)]);
    }

    #[test]
    fn cover_is_tight_for_typical_radii() {
        // The union of ranges should not be much larger than the circle: report the ratio
        // of covered area to circle area for matching and cone radii away from the poles.
        for r_arcsec in [0.01, 1.0, 2.0, 7.2, 36.0, 600.0, 3600.0] {
            let mut worst: f64 = 0.0;
            for i in 0..200 {
                let ra = (i as f64 * 37.7) % 360.0;
                let dec = -80.0 + (i as f64 * 13.1) % 160.0;
                let cover = ranges_sky_fraction(&key_ranges(ra, dec, r_arcsec, MAX_RANGES));
                let r = (r_arcsec / 3600.0f64).to_radians();
                let circle = (1.0 - r.cos()) / 2.0;
                worst = worst.max(cover / circle);
            }
            println!("radius {r_arcsec} arcsec: cover at most {worst:.1}x the circle's area");
            assert!(worst < 60.0, "radius {r_arcsec}: cover up to {worst:.1}x the circle");
        }
    }

    proptest! {
        #[test]
        fn cover_contains_every_point_within_the_radius(ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                                        log_r in -3.0f64..4.0, pa in 0.0f64..360.0,
                                                        f in 0.0f64..=1.0, n in 1usize..40) {
            let r_arcsec = 10f64.powf(log_r);
            let ranges = key_ranges(ra, dec, r_arcsec, n);
            prop_assert!(!ranges.is_empty() && ranges.len() <= n);
            prop_assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
            let (ra2, d2) = crate::sphere::offset_deg(ra, dec, r_arcsec / 3600.0 * f, pa);
            prop_assert!(sep_deg(ra, dec, ra2, d2) <= r_arcsec / 3600.0 + 1e-12);
            prop_assert!(contains(&ranges, sky_key(ra2, d2)), "({ra2}, {d2}) at {r_arcsec}\" not covered by {ranges:?}");
            prop_assert!(contains(&ranges, sky_key(ra, dec)));
        }

        #[test]
        fn rim_points_are_covered(ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                  log_r in -3.0f64..4.0, pa in 0.0f64..360.0) {
            // Exactly on the rim: the hardest case for a cover.
            let r_arcsec = 10f64.powf(log_r);
            let ranges = key_ranges(ra, dec, r_arcsec, MAX_RANGES);
            let (ra2, d2) = crate::sphere::offset_deg(ra, dec, r_arcsec / 3600.0, pa);
            prop_assert!(contains(&ranges, sky_key(ra2, d2)));
        }
    }
}
