//! Boxes around unit vectors: the keys of the GiST index on `sky_point`.
//!
//! A position is a unit vector on the sphere; an index key is an axis-aligned box in 3-D that
//! holds the vectors below it (a leaf's box holds one vector). Boxes of f32 corners, rounded
//! outwards, keep a key at 24 bytes (as pgSphere's) while never excluding a point that is
//! inside: every test here is conservative and the index rechecks with the exact separation.
//! Working in 3-D needs no special case at the poles or at ra = 0/360.
//!
//! * the nearest point of the box to `q` (Euclidean) is no farther than any unit vector in it,
//!   so the chord to it bounds the angular distance from below: KNN order stays exact, and a
//!   cone (centre `q`, radius `r`) can hold a point of the box only if that bound is <= r.

use crate::sphere::{angle_of_chord, chord_of_angle, UnitVector, DEG_PER_ARCSEC};

/// A 3-D box: `lo[i] <= v[i] <= hi[i]` for the vectors it holds. An empty box (no vector:
/// an invalid position) has `lo = +inf`, `hi = -inf` and meets nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct SkyBox {
    pub lo: [f32; 3],
    pub hi: [f32; 3],
}

/// Slack on the conservative tests, far above f64 rounding of unit vectors and far below any
/// radius anyone searches with (~2e-5 arcsec).
const SLACK: f64 = 1e-10;

impl SkyBox {
    pub const EMPTY: SkyBox = SkyBox { lo: [f32::INFINITY; 3], hi: [f32::NEG_INFINITY; 3] };

    /// The box of one position (ra, dec in degrees, already validated), corners rounded outwards.
    pub fn of_point(ra: f64, dec: f64) -> SkyBox {
        let v = UnitVector::from_radec(ra, dec);
        let v = [v.x, v.y, v.z];
        SkyBox { lo: v.map(round_down), hi: v.map(round_up) }
    }

    pub fn is_empty(&self) -> bool {
        (0..3).any(|i| self.lo[i] > self.hi[i])
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &SkyBox) -> SkyBox {
        let mut b = *self;
        for i in 0..3 {
            b.lo[i] = b.lo[i].min(other.lo[i]);
            b.hi[i] = b.hi[i].max(other.hi[i]);
        }
        b
    }

    /// Sum of the edges (0 for a point, 0 for an empty box): what penalty and split minimise.
    pub fn margin(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        (0..3).map(|i| (self.hi[i] - self.lo[i]) as f64).sum()
    }

    /// Centre of the box (the point of a leaf).
    pub fn centre(&self) -> [f64; 3] {
        std::array::from_fn(|i| (self.lo[i] as f64 + self.hi[i] as f64) / 2.0)
    }

    /// Can the box hold a unit vector within `radius_arcsec` of the unit vector `q`? (The
    /// nearest point of the box is no farther than such a vector would be. The half-space test
    /// `max v . q >= cos r` is also conservative but useless here: the cap is a thin slice of
    /// the sphere, and a box of a degree or two reaches its plane from 15 degrees away.)
    pub fn may_meet_cone(&self, q: &UnitVector, radius_arcsec: f64) -> bool {
        self.min_chord2(q) <= max_chord2(radius_arcsec)
    }

    /// Squared Euclidean distance from `q` to the nearest point of the box (+inf if empty).
    pub fn min_chord2(&self, q: &UnitVector) -> f64 {
        if self.is_empty() {
            return f64::INFINITY;
        }
        let q = [q.x, q.y, q.z];
        (0..3)
            .map(|i| {
                let (lo, hi) = (self.lo[i] as f64, self.hi[i] as f64);
                let d = if q[i] < lo {
                    lo - q[i]
                } else if q[i] > hi {
                    q[i] - hi
                } else {
                    0.0
                };
                d * d
            })
            .sum()
    }

    /// A lower bound of the separation (arcsec) between `q` and any unit vector in the box
    /// (+inf for an empty box).
    pub fn min_sep_arcsec(&self, q: &UnitVector) -> f64 {
        let d2 = self.min_chord2(q);
        if d2.is_infinite() {
            return f64::INFINITY;
        }
        angle_of_chord(d2.sqrt() - SLACK).to_degrees() / DEG_PER_ARCSEC
    }

    /// The sky key (HEALPix NESTED, skycat_core::skykey) of the box's centre: boxes near
    /// each other on the sky get near values, the order a sorted index build packs them in.
    /// (A 3-D Morton curve was tried first: the sphere is a thin shell in 3-D, and runs of that
    /// curve jump across it, so packed pages had boxes that overlapped; a cone of 6" read 126
    /// index pages of a 2M-row index.)
    pub fn sort_key(&self) -> i64 {
        if self.is_empty() {
            return i64::MAX;
        }
        let [x, y, z] = self.centre();
        let (ra, dec) = UnitVector { x, y, z }.to_radec();
        crate::skykey::sky_key(ra, dec)
    }
}

/// The largest squared chord a point within `radius_arcsec` can be at (a hair more): what
/// [`SkyBox::may_meet_cone`] compares [`SkyBox::min_chord2`] with; a scan computes it once.
pub fn max_chord2(radius_arcsec: f64) -> f64 {
    let chord = chord_of_angle((radius_arcsec * DEG_PER_ARCSEC).to_radians()) + SLACK;
    chord * chord
}

/// The largest f32 not above `x`.
fn round_down(x: f64) -> f32 {
    let f = x as f32;
    if f as f64 > x {
        f.next_down()
    } else {
        f
    }
}

/// The smallest f32 not below `x`.
fn round_up(x: f64) -> f32 {
    let f = x as f32;
    if (f as f64) < x {
        f.next_up()
    } else {
        f
    }
}

/// Splits boxes into two groups for an overfull index page: by the median of their centres
/// along the axis where the centres spread most (a simple, balanced R-tree split; the index
/// is normally built sorted, which needs no split at all). Returns the indices of the left
/// group; the others go right. Both groups are non-empty when there are two boxes or more.
pub fn split(boxes: &[SkyBox]) -> Vec<usize> {
    let n = boxes.len();
    let centres: Vec<[f64; 3]> = boxes.iter().map(|b| if b.is_empty() { [0.0; 3] } else { b.centre() }).collect();
    let spread_of = |axis: usize| {
        let (lo, hi) =
            centres.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| (lo.min(c[axis]), hi.max(c[axis])));
        hi - lo
    };
    let axis = (0..3).max_by(|&a, &b| spread_of(a).total_cmp(&spread_of(b))).unwrap_or(0);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| centres[a][axis].total_cmp(&centres[b][axis]));
    order.truncate(n / 2);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::sep_arcsec;
    use proptest::prelude::*;

    fn point() -> impl Strategy<Value = (f64, f64)> {
        (0.0..360.0f64, -1.0..1.0f64).prop_map(|(ra, z)| (ra, z.asin().to_degrees()))
    }

    proptest! {
        /// A box over some points never excludes one of them from a cone that holds it, and
        /// never says a point is nearer than it is.
        #[test]
        fn boxes_are_conservative(points in prop::collection::vec(point(), 1..20), centre in point(),
                                  near in prop::collection::vec((0.0..360.0f64, 0.0..5.0f64), 0..5)) {
            // Some points close to the centre, so small cones and distances are exercised.
            let mut pts = points.clone();
            for (pa, d) in near {
                pts.push(crate::sphere::offset_deg(centre.0, centre.1, d / 3600.0, pa));
            }
            let b = pts.iter().fold(SkyBox::EMPTY, |b, &(ra, dec)| b.union(&SkyBox::of_point(ra, dec)));
            let q = UnitVector::from_radec(centre.0, centre.1);
            let nearest = pts.iter().map(|&(ra, dec)| sep_arcsec(ra, dec, centre.0, centre.1)).fold(f64::INFINITY, f64::min);
            prop_assert!(b.min_sep_arcsec(&q) <= nearest, "lower bound {} above the nearest {}", b.min_sep_arcsec(&q), nearest);
            prop_assert!(b.may_meet_cone(&q, nearest), "a cone reaching the nearest point excluded");
            // And tight for a single point: a cone a little smaller than its distance misses it.
            if pts.len() == 1 && nearest > 1.0 {
                prop_assert!(!b.may_meet_cone(&q, nearest * 0.999 - 0.1));
            }
        }

        #[test]
        fn a_point_box_holds_its_point(p in point()) {
            let b = SkyBox::of_point(p.0, p.1);
            let v = UnitVector::from_radec(p.0, p.1);
            for (i, x) in [v.x, v.y, v.z].iter().enumerate() {
                prop_assert!(b.lo[i] as f64 <= *x && *x <= b.hi[i] as f64);
            }
            prop_assert!(b.may_meet_cone(&v, 0.0));
            prop_assert_eq!(b.min_sep_arcsec(&v), 0.0);
        }
    }

    #[test]
    fn a_big_box_beside_a_small_cone_is_excluded() {
        // A 2-degree patch 5 degrees from a 10' cone: the half-space test would keep it.
        let b = SkyBox::of_point(20.0, 0.0).union(&SkyBox::of_point(22.0, 2.0));
        assert!(!b.may_meet_cone(&UnitVector::from_radec(15.0, 1.0), 600.0));
        assert!(b.may_meet_cone(&UnitVector::from_radec(21.0, 1.0), 1.0));
    }

    #[test]
    fn far_boxes_are_excluded_and_far() {
        let b = SkyBox::of_point(10.0, 20.0).union(&SkyBox::of_point(10.1, 20.1));
        let q = UnitVector::from_radec(200.0, -30.0);
        assert!(!b.may_meet_cone(&q, 3600.0));
        // The box's nearest corner is at least as near as its points, and not absurdly nearer.
        let true_min = sep_arcsec(10.0, 20.0, 200.0, -30.0).min(sep_arcsec(10.1, 20.1, 200.0, -30.0));
        let bound = b.min_sep_arcsec(&q);
        assert!(bound <= true_min && bound > 0.9 * true_min, "{bound} vs {true_min}");
        assert!(SkyBox::EMPTY.is_empty() && !SkyBox::EMPTY.may_meet_cone(&q, 1e6));
        assert_eq!(SkyBox::EMPTY.min_sep_arcsec(&q), f64::INFINITY);
    }

    #[test]
    fn split_is_balanced_and_separates_clusters() {
        let mut boxes: Vec<SkyBox> = (0..10).map(|i| SkyBox::of_point(10.0 + i as f64 * 0.01, 0.0)).collect();
        boxes.extend((0..10).map(|i| SkyBox::of_point(190.0 + i as f64 * 0.01, 0.0)));
        let left = split(&boxes);
        assert_eq!(left.len(), 10);
        let left_side: Vec<bool> = (0..20).map(|i| left.contains(&i)).collect();
        assert!(
            left_side[..10].iter().all(|&l| l == left_side[0]) && left_side[10..].iter().all(|&l| l != left_side[0])
        );
    }

    #[test]
    fn the_sort_key_is_the_sky_key_of_the_point() {
        for (ra, dec) in [(10.0, 10.0), (359.9999, -89.9), (0.0, 90.0), (123.4, -5.6)] {
            let b = SkyBox::of_point(ra, dec);
            // The centre of the f32 box is within ~1e-7 of the point: the key's cell at depth
            // 20 (~0.2") is the same.
            assert_eq!(b.sort_key() >> 18, crate::skykey::sky_key(ra, dec) >> 18, "({ra}, {dec})");
        }
        assert_eq!(SkyBox::EMPTY.sort_key(), i64::MAX);
    }
}
