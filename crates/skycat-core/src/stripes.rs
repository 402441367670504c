//! Declination stripes: the unit of parallelism of the Association Pipeline and the range
//! partitions that `create_stripe_partitions` builds.
//!
//! Stripe `i` covers `[lower(i), lower(i + 1))` with `lower(i) = -90 + i * h`, and the top
//! stripe also holds dec = +90. The bounds are computed in exactly one place
//! ([`StripeScheme::lower_bound`]) so that `stripe(dec)` always names the partition
//! PostgreSQL routes a row to, even where `floor((dec + 90) / h)` would round the other way.

use crate::error::SkyResult;
use crate::sphere::{cap_dec_range, DEG_PER_ARCSEC};
use crate::validate;

/// Most partitions `create_stripe_partitions` will create (h = 0.05 deg).
pub const MAX_PARTITIONS: usize = 3600;

/// Thinnest stripe accepted (3.6 milliarcseconds): 180 million stripes, so every stripe
/// index fits the SQL `int` that `stripe()` returns, and the count is computed exactly.
pub const MIN_HEIGHT_DEG: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StripeScheme {
    height_deg: f64,
    count: usize,
}

impl StripeScheme {
    /// A scheme of stripes `height_deg` high; the last stripe may be shorter.
    pub fn new(height_deg: f64) -> SkyResult<Self> {
        validate::in_range("stripe_height_deg", "degrees", MIN_HEIGHT_DEG, 180.0, height_deg)?;
        // The stripes are those whose lower bound lies below +90.
        let mut count = (180.0 / height_deg).ceil() as usize;
        while count > 1 && -90.0 + (count - 1) as f64 * height_deg >= 90.0 {
            count -= 1;
        }
        while -90.0 + count as f64 * height_deg < 90.0 {
            count += 1;
        }
        Ok(StripeScheme { height_deg, count })
    }

    /// A scheme meant to become table partitions: at most [`MAX_PARTITIONS`] stripes.
    pub fn for_partitions(height_deg: f64) -> SkyResult<Self> {
        let min_height = 180.0 / MAX_PARTITIONS as f64;
        validate::in_range("stripe_height_deg", "degrees", min_height, 180.0, height_deg)?;
        Self::new(height_deg)
    }

    pub fn height_deg(&self) -> f64 {
        self.height_deg
    }

    /// Number of stripes from -90 to +90.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Lower declination bound of stripe `i` (inclusive); stripe 0 starts at -90.
    pub fn lower_bound(&self, i: usize) -> f64 {
        if i == 0 {
            -90.0
        } else {
            -90.0 + i as f64 * self.height_deg
        }
    }

    /// Upper declination bound of stripe `i` (exclusive), as a partition bound: the top
    /// stripe ends just above +90 so that +90 itself belongs to it and nothing beyond does.
    pub fn upper_bound(&self, i: usize) -> f64 {
        if i + 1 >= self.count {
            next_up(90.0)
        } else {
            self.lower_bound(i + 1)
        }
    }

    /// The stripe holding `dec` (which must already be validated to [-90, 90]).
    pub fn stripe_of(&self, dec: f64) -> usize {
        let guess = ((dec + 90.0) / self.height_deg).floor();
        let mut i = if guess < 0.0 { 0 } else { (guess as usize).min(self.count - 1) };
        // Agree with the bounds even where the division rounded across an integer.
        while i > 0 && dec < self.lower_bound(i) {
            i -= 1;
        }
        while i + 1 < self.count && dec >= self.lower_bound(i + 1) {
            i += 1;
        }
        i
    }

    /// Every stripe touched by the circle of `radius_arcsec` around (ra, dec), ascending;
    /// `TooLarge` past [`validate::MAX_RESULT_ELEMENTS`] stripes (checked before allocating).
    pub fn stripes_in_circle(&self, dec: f64, radius_arcsec: f64) -> SkyResult<Vec<usize>> {
        let (lo, hi) = cap_dec_range(dec, radius_arcsec * DEG_PER_ARCSEC);
        let (first, last) = (self.stripe_of(lo), self.stripe_of(hi));
        validate::result_size("stripes", (last - first + 1) as u64, "use taller stripes or a smaller radius")?;
        Ok((first..=last).collect())
    }

    /// (index, lower, upper) for every stripe; what `create_stripe_partitions` creates.
    pub fn partitions(&self) -> impl Iterator<Item = (usize, f64, f64)> + '_ {
        (0..self.count).map(move |i| (i, self.lower_bound(i), self.upper_bound(i)))
    }
}

/// The smallest double greater than a finite positive `x`.
fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts() {
        assert_eq!(StripeScheme::new(1.0).unwrap().count(), 180);
        assert_eq!(StripeScheme::new(7.0).unwrap().count(), 26);
        assert_eq!(StripeScheme::new(180.0).unwrap().count(), 1);
        assert_eq!(StripeScheme::new(0.1).unwrap().count(), 1800);
        assert_eq!(StripeScheme::new(100.0).unwrap().count(), 2);
        assert!(StripeScheme::new(0.0).is_err());
        assert!(StripeScheme::new(-1.0).is_err());
        assert!(StripeScheme::new(f64::NAN).is_err());
        assert!(StripeScheme::new(181.0).is_err());
        // Thinner than MIN_HEIGHT_DEG is refused (it used to loop forever or overflow int4).
        assert!(StripeScheme::new(1e-18).is_err());
        assert!(StripeScheme::new(f64::MIN_POSITIVE).is_err());
        assert!(StripeScheme::new(9e-7).is_err());
        assert_eq!(StripeScheme::new(MIN_HEIGHT_DEG).unwrap().count(), 180_000_000);
        assert_eq!(StripeScheme::for_partitions(0.05).unwrap().count(), MAX_PARTITIONS);
        assert!(StripeScheme::for_partitions(0.049).is_err());
    }

    #[test]
    fn poles_and_boundaries() {
        let s = StripeScheme::new(1.0).unwrap();
        assert_eq!(s.stripe_of(-90.0), 0);
        assert_eq!(s.stripe_of(90.0), 179);
        assert_eq!(s.stripe_of(89.999999), 179);
        assert_eq!(s.stripe_of(0.0), 90);
        assert_eq!(s.stripe_of(-1e-300), 89);
        assert_eq!(s.stripe_of(-89.0), 1);
        // h = 7: the top stripe is short ([92, 90] -> 25 holds 85..90).
        let s7 = StripeScheme::new(7.0).unwrap();
        assert_eq!(s7.stripe_of(90.0), 25);
        assert_eq!(s7.stripe_of(85.0), 25);
        assert_eq!(s7.stripe_of(84.999), 24);
    }

    #[test]
    fn closed_form_where_the_division_is_exact() {
        // With h a power of two every lower bound and every quotient is exact, so the
        // answer must be exactly floor((dec + 90) / h).
        let s = StripeScheme::new(0.25).unwrap();
        for k in 0..720 {
            let dec = -90.0 + k as f64 * 0.25 + 0.125;
            assert_eq!(s.stripe_of(dec), ((dec + 90.0) / 0.25).floor() as usize);
        }
    }

    #[test]
    fn stripe_indexes_fit_int4_at_the_thinnest_height() {
        let s = StripeScheme::new(MIN_HEIGHT_DEG).unwrap();
        // floor((dec + 90) / h) by exact rational arithmetic: 90 / 1e-6 = 9e7 (+/- 1 for the
        // rounding of the bound itself), 180 / 1e-6 - 1 at the top.
        assert!((s.stripe_of(0.0) as i64 - 90_000_000).abs() <= 1);
        assert_eq!(s.stripe_of(90.0), 179_999_999);
        assert!(s.stripe_of(90.0) <= i32::MAX as usize);
    }

    #[test]
    fn circle_cover_is_bounded_before_allocating() {
        let s = StripeScheme::new(MIN_HEIGHT_DEG).unwrap();
        // 2 degrees of 1e-6-degree stripes: 2 million stripes, refused.
        // (The bounds of a circle fall within a stripe of 2 r / h, hence the +/- 1.)
        match s.stripes_in_circle(0.0, 3600.0).unwrap_err() {
            crate::SkyError::TooLarge { estimated, .. } => assert!((estimated as i64 - 2_000_001).abs() <= 1),
            e => panic!("{e}"),
        }
        // Just over 1 degree across is past the limit of a million; 1799 arcsec fits.
        assert!(s.stripes_in_circle(0.0, 1801.0).is_err());
        let n = s.stripes_in_circle(0.0, 1799.0).unwrap().len() as i64;
        assert!((n - 999_445).abs() <= 1, "{n}");
    }

    #[test]
    fn upper_bounds_chain_and_top_holds_pole() {
        let s = StripeScheme::new(0.1).unwrap();
        let parts: Vec<_> = s.partitions().collect();
        for w in parts.windows(2) {
            assert_eq!(w[0].2, w[1].1, "partitions must tile without gaps");
        }
        assert_eq!(parts[0].1, -90.0);
        assert!(parts.last().unwrap().2 > 90.0);
        assert!(parts.last().unwrap().1 < 90.0);
    }

    proptest! {
        #[test]
        fn stripe_agrees_with_partition_bounds(h in 0.01f64..180.0, dec in -90.0f64..=90.0) {
            let s = StripeScheme::new(h).unwrap();
            let i = s.stripe_of(dec);
            prop_assert!(dec >= s.lower_bound(i) && dec < s.upper_bound(i));
            // and the naive formula is off by at most one
            let naive = ((dec + 90.0) / h).floor().min((s.count() - 1) as f64) as i64;
            prop_assert!((naive - i as i64).abs() <= 1);
        }

        #[test]
        fn circle_stripes_cover_rim_points(h in 0.05f64..20.0, dec in -90.0f64..=90.0,
                                           r_arcsec in 0.001f64..36000.0, pa in 0.0f64..360.0,
                                           f in 0.0f64..=1.0) {
            let s = StripeScheme::new(h).unwrap();
            let got = s.stripes_in_circle(dec, r_arcsec).unwrap();
            prop_assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
            // A point inside the circle (fraction f of the radius along pa).
            let r = r_arcsec / 3600.0 * f;
            let (_, d2) = crate::sphere::offset_deg(0.0, dec, r, pa);
            prop_assert!(got.contains(&s.stripe_of(d2)), "dec {d2} stripe {} not in {got:?}", s.stripe_of(d2));
        }
    }
}
