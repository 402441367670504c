//! A rings skymap: the tract layout of LSST's `lsst.skymap.RingsSkyMap` (raStart = 0), the
//! unit in which DRP writes its per-tract outputs and de-duplicates objects.
//!
//! The sphere is cut into `num_rings` declination rings of height `h = 180 / (num_rings + 1)`
//! degrees between two polar caps of height `h / 2`. Tract 0 is the south cap, then the rings'
//! tracts from south to north, then the north cap. Ring `i` spans
//! `[-90 + h/2 + i h, -90 + h/2 + (i+1) h)` and holds `n_i = floor(360 cos(d) / h) + 1` tracts,
//! `d` being the ring edge nearer the equator; tract `k` of a ring is centred on
//! `ra = k 360 / n_i` and its **inner region** spans `ra ± 180 / n_i` (tract 0 straddles
//! ra = 0). Inner regions tile the sphere without overlap; a tract's **outer region** is its
//! inner region grown by `border_deg` on every side, so neighbouring tracts overlap and an
//! object near an edge is measured by several tracts. LSST's `isPrimary` keeps the copy from
//! the tract whose inner region holds the object's position.
//!
//! The inner region is a polygon in (ra, dec) with ra unwrapped around the tract centre;
//! [`Tract::inner_contains`] tests points against it with [`polygon_contains`], so that DRP
//! tables can store the polygon and the test stays valid for any other skymap whose tracts
//! are such polygons.
//!
//! **Every point of the sky has exactly one owning tract**, and the polygon test and
//! [`RingsSkymap::tract_of`] agree on it bit for bit: both compare the point with the same
//! edge values ([`RingsSkymap::ring_lower`], [`RingsSkymap::ra_edge`]), neighbouring tracts share
//! their edges bit-identically (tract 0 of a ring starts at the ring's last edge minus 360,
//! and the unwrapping of a point across ra = 0/360 is an exact subtraction), and the ranges
//! are half-open `[min, max)` in both coordinates (dec = +90 belongs to the north cap).

use crate::error::SkyResult;
use crate::sphere::wrap_ra;
use crate::validate;

/// Most rings accepted (LSST's DC2 skymap uses 120; 3600 gives 3-arcminute rings).
pub const MAX_RINGS: i32 = 3600;

#[derive(Debug, Clone, PartialEq)]
pub struct RingsSkymap {
    num_rings: i32,
    ring_height_deg: f64,
    /// Tracts per ring, and the id of each ring's first tract.
    ring_tracts: Vec<i32>,
    ring_first: Vec<i32>,
}

/// One tract's geometry: the inner region as ra/dec bounds (ra unwrapped: `ra_min` may be
/// negative for tract 0 of a ring; the caps span [0, 360)).
#[derive(Debug, Clone, PartialEq)]
pub struct Tract {
    pub id: i32,
    /// -1 for the south cap, `num_rings` for the north cap.
    pub ring: i32,
    pub ra_center: f64,
    pub dec_center: f64,
    pub ra_min: f64,
    pub ra_max: f64,
    pub dec_min: f64,
    pub dec_max: f64,
}

impl RingsSkymap {
    pub fn new(num_rings: i32) -> SkyResult<Self> {
        validate::in_range("num_rings", "rings", 1.0, MAX_RINGS as f64, num_rings as f64)?;
        let h = 180.0 / (num_rings + 1) as f64;
        let mut ring_tracts = Vec::with_capacity(num_rings as usize);
        let mut ring_first = Vec::with_capacity(num_rings as usize);
        let mut next = 1;
        for i in 0..num_rings {
            let start = ring_lower_of(h, i);
            let d = start.abs().min((start + h).abs());
            // LSST computes this in radians: int(2 pi cos(d) / ringSize) + 1.
            let n = (2.0 * std::f64::consts::PI * d.to_radians().cos() / h.to_radians()) as i32 + 1;
            ring_first.push(next);
            ring_tracts.push(n);
            next += n;
        }
        Ok(Self { num_rings, ring_height_deg: h, ring_tracts, ring_first })
    }

    /// A per-thread cache of the last skymaps used: a query calls `skymap_tract` once per row
    /// with the same `num_rings`, and building one costs a few hundred trig calls.
    pub fn cached(num_rings: i32) -> SkyResult<std::rc::Rc<RingsSkymap>> {
        thread_local! {
            static CACHE: std::cell::RefCell<Vec<std::rc::Rc<RingsSkymap>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        crate::cache::cached(&CACHE, |m| m.num_rings == num_rings, || RingsSkymap::new(num_rings))
    }

    pub fn num_rings(&self) -> i32 {
        self.num_rings
    }

    pub fn ring_height_deg(&self) -> f64 {
        self.ring_height_deg
    }

    /// Number of tracts, the two caps included.
    pub fn num_tracts(&self) -> i32 {
        self.ring_first.last().map_or(2, |f| f + self.ring_tracts[self.ring_tracts.len() - 1] + 1)
    }

    /// Lower declination edge of ring `i` (0..=num_rings; `num_rings` gives the north cap's
    /// lower edge). The one expression for every dec edge of the skymap.
    pub fn ring_lower(&self, i: i32) -> f64 {
        ring_lower_of(self.ring_height_deg, i)
    }

    /// The ring of a declination: -1 south cap, `num_rings` north cap. Rings are half-open
    /// `[ring_lower(i), ring_lower(i + 1))`, so +90 is in the north cap.
    fn ring_of(&self, dec: f64) -> i32 {
        let guess = ((dec + 90.0 - self.ring_height_deg / 2.0) / self.ring_height_deg).floor();
        let mut r = guess.clamp(-1.0, self.num_rings as f64) as i32;
        // Agree with the edges exactly where the division rounded across one.
        while r >= 0 && dec < self.ring_lower(r) {
            r -= 1;
        }
        while r < self.num_rings && dec >= self.ring_lower(r + 1) {
            r += 1;
        }
        r
    }

    /// The ra edge between tracts `k - 1` and `k` of a ring of `n` tracts, for k in 1..=n:
    /// `(2k - 1) 180 / n`. Tract `k` spans `[ra_edge(k), ra_edge(k + 1))`; tract 0 spans
    /// `[ra_edge(n) - 360, ra_edge(1))`, i.e. it also holds ra >= ra_edge(n).
    pub fn ra_edge(n: i32, k: i32) -> f64 {
        (2.0 * k as f64 - 1.0) * 180.0 / n as f64
    }

    /// The tract whose inner region holds (ra, dec): LSST's `findTract` (a rounded quotient),
    /// then moved to the tract whose edges, compared exactly, hold the point.
    pub fn tract_of(&self, ra: f64, dec: f64) -> i32 {
        let ring = self.ring_of(dec);
        if ring < 0 {
            return 0;
        }
        if ring >= self.num_rings {
            return self.num_tracts() - 1;
        }
        let n = self.ring_tracts[ring as usize];
        let ra = wrap_ra(ra);
        // k in 0..=n, where n stands for tract 0 seen from above (ra >= ra_edge(n)).
        let mut k = ((0.5 + ra / 360.0 * n as f64).floor() as i32).clamp(0, n);
        while k > 0 && ra < Self::ra_edge(n, k) {
            k -= 1;
        }
        while k < n && ra >= Self::ra_edge(n, k + 1) {
            k += 1;
        }
        self.ring_first[ring as usize] + if k == n { 0 } else { k }
    }

    /// The geometry of tract `id`, or None when there is no such tract.
    pub fn tract(&self, id: i32) -> Option<Tract> {
        let h = self.ring_height_deg;
        let last = self.num_tracts() - 1;
        if id < 0 || id > last {
            return None;
        }
        let cap = |ring: i32, dec_min: f64, dec_max: f64, dec_center: f64| Tract {
            id,
            ring,
            // The caps' polygons span ra [0, 360]: unwrap around 180 to stay inside them.
            ra_center: 180.0,
            dec_center,
            ra_min: 0.0,
            ra_max: 360.0,
            dec_min,
            dec_max,
        };
        if id == 0 {
            return Some(cap(-1, -90.0, self.ring_lower(0), -90.0));
        }
        if id == last {
            return Some(cap(self.num_rings, self.ring_lower(self.num_rings), 90.0, 90.0));
        }
        let ring = self.ring_first.partition_point(|&f| f <= id) as i32 - 1;
        let n = self.ring_tracts[ring as usize];
        let k = id - self.ring_first[ring as usize];
        let dec_min = self.ring_lower(ring);
        // The edges tract_of compares with; tract 0's lower edge is the ring's last edge
        // minus 360 (exact), which is what a point just below ra = 360 unwraps against.
        let ra_min = if k == 0 { Self::ra_edge(n, n) - 360.0 } else { Self::ra_edge(n, k) };
        Some(Tract {
            id,
            ring,
            ra_center: k as f64 * 360.0 / n as f64,
            dec_center: dec_min + h / 2.0,
            ra_min,
            ra_max: Self::ra_edge(n, k + 1),
            dec_min,
            dec_max: self.ring_lower(ring + 1),
        })
    }

    /// Every tract whose outer region (inner grown by `border_deg`) holds (ra, dec), ascending.
    pub fn tracts_containing_outer(&self, ra: f64, dec: f64, border_deg: f64) -> Vec<i32> {
        let lo = self.ring_of((dec - border_deg).max(-90.0));
        let hi = self.ring_of((dec + border_deg).min(90.0));
        let mut out = Vec::new();
        for ring in lo..=hi {
            let ids: Vec<i32> = if ring < 0 {
                vec![0]
            } else if ring >= self.num_rings {
                vec![self.num_tracts() - 1]
            } else {
                let first = self.ring_first[ring as usize];
                (first..first + self.ring_tracts[ring as usize]).collect()
            };
            for id in ids {
                if self.tract(id).is_some_and(|t| t.outer_contains(ra, dec, border_deg)) {
                    out.push(id);
                }
            }
        }
        out
    }
}

impl Tract {
    /// ra unwrapped into `[ra_center - 180, ra_center + 180)`.
    fn unwrap_ra(&self, ra: f64) -> f64 {
        unwrap_ra_around(wrap_ra(ra), self.ra_center)
    }

    /// The inner region's outline in (ra, dec) degrees, counter-clockwise, ra unwrapped
    /// around the centre: the polygon DRP stores per tract.
    pub fn inner_polygon(&self) -> Vec<(f64, f64)> {
        vec![
            (self.ra_min, self.dec_min),
            (self.ra_max, self.dec_min),
            (self.ra_max, self.dec_max),
            (self.ra_min, self.dec_max),
        ]
    }

    /// Whether (ra, dec) lies in the inner region (LSST `isPrimary` for objects of this tract):
    /// the polygon test DRP runs in SQL on the stored polygon.
    pub fn inner_contains(&self, ra: f64, dec: f64) -> bool {
        let (poly_ra, poly_dec): (Vec<f64>, Vec<f64>) = self.inner_polygon().into_iter().unzip();
        polygon_contains(&poly_ra, &poly_dec, ra, dec).unwrap_or(false)
    }

    /// Whether (ra, dec) lies in the outer region: the inner region grown by `border_deg` in
    /// dec and by `border_deg / cos(dec)` in ra (whole circles of ra near the poles).
    pub fn outer_contains(&self, ra: f64, dec: f64, border_deg: f64) -> bool {
        if dec < self.dec_min - border_deg || dec > self.dec_max + border_deg {
            return false;
        }
        if self.ra_max - self.ra_min >= 360.0 {
            return true;
        }
        let c = dec.abs().max(self.dec_min.abs().min(self.dec_max.abs())).to_radians().cos();
        if c <= 1e-9 {
            return true;
        }
        // 1% slack: a great-circle step of border_deg can reach slightly further in ra than
        // border_deg / cos(dec) at the ends; an outer region may include a little more.
        let grow = (1.01 * border_deg / c).min(180.0);
        let u = self.unwrap_ra(ra);
        u >= self.ra_min - grow && u <= self.ra_max + grow
    }
}

/// Lower dec edge of ring `i` of a skymap with rings `h` degrees high (between polar caps of
/// `h / 2`).
fn ring_lower_of(h: f64, i: i32) -> f64 {
    -90.0 + h * (i as f64 + 0.5)
}

/// `ra` (in [0, 360)) unwrapped into `[center - 180, center + 180)` by at most one turn.
/// A point near a polygon edge at the 0/360 seam moves by one subtraction of 360 from a value
/// in [180, 360), which is exact (Sterbenz), so it compares with `edge - 360` exactly as the
/// point itself compares with `edge`.
fn unwrap_ra_around(ra: f64, center: f64) -> f64 {
    if ra >= center + 180.0 {
        ra - 360.0
    } else if ra < center - 180.0 {
        ra + 360.0
    } else {
        ra
    }
}

/// Whether (ra, dec) lies in the polygon with vertices `(poly_ra[i], poly_dec[i])` in degrees
/// (ra unwrapped around the middle of the vertices' ra range, as a tract's inner region is).
/// Half-open: a point on an edge belongs to the polygon on its +ra / +dec side, except that
/// dec = +90 belongs to a polygon reaching +90; so polygons that tile the sky with shared edges
/// give every point exactly one owner. `Err` names what is wrong with the vertices.
///
/// Written out (even-odd crossing number with exact comparisons) rather than taken from `geo`:
/// `geo` reports points on an edge as "on the boundary" without saying which side, and the
/// tie-break must be exact for the ownership rule to hold at the 0/360 seam.
pub fn polygon_contains(poly_ra: &[f64], poly_dec: &[f64], ra: f64, dec: f64) -> SkyResult<bool> {
    if poly_ra.len() != poly_dec.len() || poly_ra.len() < 3 {
        let got = format!("{} poly_ra and {} poly_dec values", poly_ra.len(), poly_dec.len());
        return Err(crate::SkyError::invalid("poly_ra", "3 or more vertices, as many as poly_dec", got));
    }
    if poly_ra.iter().chain(poly_dec).any(|v| !v.is_finite()) {
        return Err(crate::SkyError::invalid("poly_ra", "finite vertices", "a NaN or infinite vertex"));
    }
    let ra = validate::ra("ra", ra)?;
    let dec = validate::dec("dec", dec)?;
    let (lo, hi) = poly_ra.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let x = unwrap_ra_around(ra, (lo + hi) / 2.0);
    // The pole itself: just below +90, which is inside whatever holds the top edge.
    let y = if dec == 90.0 { 90.0f64.next_down() } else { dec };
    let n = poly_ra.len();
    let mut inside = false;
    for i in 0..n {
        let (ax, ay) = (poly_ra[i], poly_dec[i]);
        let (bx, by) = (poly_ra[(i + 1) % n], poly_dec[(i + 1) % n]);
        // Edges spanning y half-open (lower end in, upper end out); horizontal ones never.
        if (ay <= y) != (by <= y) {
            // Where the edge crosses the horizontal line through the point; exact (= ax) for
            // the vertical edges of tract regions.
            let cross_x = if ax == bx { ax } else { ax + (y - ay) * (bx - ax) / (by - ay) };
            if x < cross_x {
                inside = !inside;
            }
        }
    }
    Ok(inside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dc2_layout() {
        // LSST's DC2 rings skymap has 120 rings; its tract count is 18938.
        let m = RingsSkymap::new(120).unwrap();
        assert_eq!(m.num_tracts(), 18938);
        assert_eq!(m.tract_of(0.0, -90.0), 0);
        assert_eq!(m.tract_of(10.0, 90.0), 18937);
        let t = m.tract(m.tract_of(56.0, -30.0)).unwrap();
        assert!(t.inner_contains(56.0, -30.0));
        assert!(t.ra_max - t.ra_min < 2.0 && (t.dec_max - t.dec_min - 180.0 / 121.0).abs() < 1e-12);
    }

    /// The float neighbours of `v`: `v` itself and up to `k` ulps either side.
    fn neighbours(v: f64, k: usize) -> Vec<f64> {
        let mut out = vec![v];
        let (mut up, mut down) = (v, v);
        for _ in 0..k {
            up = up.next_up();
            down = down.next_down();
            out.push(up);
            out.push(down);
        }
        out
    }

    /// Checks that exactly one tract's inner polygon holds (ra, dec) and that it is tract_of's.
    fn assert_one_owner(m: &RingsSkymap, ra: f64, dec: f64) {
        if !(-90.0..=90.0).contains(&dec) {
            return;
        }
        // Every tract within 0.01 deg: a superset of the possible owners.
        let near = m.tracts_containing_outer(ra, dec, 0.01);
        let owners: Vec<i32> = near.iter().copied().filter(|&j| m.tract(j).unwrap().inner_contains(ra, dec)).collect();
        assert_eq!(owners, vec![m.tract_of(ra, dec)], "({ra:?}, {dec:?}) near {near:?}");
    }

    /// Every corner and edge of every tract, and the float neighbourhood (3 ulps) of each, in
    /// ra and dec, including the ra = 0/360 seam and both poles.
    fn check_edges(rings: i32) {
        let m = RingsSkymap::new(rings).unwrap();
        for id in 0..m.num_tracts() {
            let t = m.tract(id).unwrap();
            let ra_mid = t.ra_center;
            let dec_mid = 0.5 * (t.dec_min + t.dec_max);
            let ras = [t.ra_min, t.ra_max, wrap_ra(t.ra_min), wrap_ra(t.ra_max), ra_mid];
            let decs = [t.dec_min, t.dec_max, dec_mid];
            for &r0 in &ras {
                for &d0 in &decs {
                    for r in neighbours(r0, 3) {
                        for d in neighbours(d0, 3) {
                            assert_one_owner(&m, wrap_ra(r), d);
                        }
                    }
                }
            }
        }
        for ra in [0.0, 360.0f64.next_down(), 90.0, 180.0, 270.0] {
            for d in [90.0, 90.0f64.next_down(), -90.0, (-90.0f64).next_up()] {
                assert_one_owner(&m, ra, d);
            }
        }
    }

    #[test]
    fn every_edge_neighbourhood_has_exactly_one_owner() {
        for rings in [1, 2, 3, 7, 20] {
            check_edges(rings);
        }
    }

    #[test]
    fn dc2_seam_point_has_an_owner() {
        // Found by an independent check: this point belonged to neither tract 4817 nor 5030.
        let m = RingsSkymap::new(120).unwrap();
        let (ra, dec) = (359.15887850367295, -29.699976771331464);
        assert_eq!(m.tract_of(ra, dec), 5030);
        assert!(m.tract(5030).unwrap().inner_contains(ra, dec));
        assert!(!m.tract(4817).unwrap().inner_contains(ra, dec));
        assert_one_owner(&m, ra, dec);
        // And the ra edge itself between them, with its neighbours.
        let edge = RingsSkymap::ra_edge(214, 214);
        for r in neighbours(edge, 5) {
            assert_one_owner(&m, wrap_ra(r), dec);
        }
    }

    #[test]
    fn dc2_edges_around_the_seam() {
        // The 120-ring skymap's first and last tract of every ring, all edges and corners.
        let m = RingsSkymap::new(120).unwrap();
        for ring in 0..120usize {
            let first = m.ring_first[ring];
            for id in [first, first + m.ring_tracts[ring] - 1] {
                let t = m.tract(id).unwrap();
                for r0 in [t.ra_min, t.ra_max, wrap_ra(t.ra_min), wrap_ra(t.ra_max)] {
                    for d0 in [t.dec_min, t.dec_max, 0.5 * (t.dec_min + t.dec_max)] {
                        for r in neighbours(r0, 2) {
                            for d in neighbours(d0, 2) {
                                assert_one_owner(&m, wrap_ra(r), d);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn polygon_contains_rejects_bad_vertices() {
        assert!(polygon_contains(&[0.0, 1.0], &[0.0, 1.0], 0.5, 0.5).is_err());
        assert!(polygon_contains(&[0.0, 1.0, f64::NAN], &[0.0, 0.0, 1.0], 0.5, 0.2).is_err());
        assert!(polygon_contains(&[0.0, 1.0, 1.0], &[0.0, 0.0, 1.0], 0.5, 91.0).is_err());
        // A triangle: closed-form inside/outside.
        assert!(polygon_contains(&[0.0, 2.0, 0.0], &[0.0, 0.0, 2.0], 0.5, 0.5).unwrap());
        assert!(!polygon_contains(&[0.0, 2.0, 0.0], &[0.0, 0.0, 2.0], 1.5, 1.5).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        // Two routes to the same answer: the polygon test over every tract of
        // the point's neighbourhood, and findTract's arithmetic.
        #[test]
        fn polygon_test_agrees_with_find_tract(ra in 0.0f64..360.0, dec in -90.0f64..=90.0, rings in 1i32..150) {
            let m = RingsSkymap::new(rings).unwrap();
            let id = m.tract_of(ra, dec);
            let t = m.tract(id).unwrap();
            prop_assert!(t.inner_contains(ra, dec), "tract {} {:?} misses ({}, {})", id, t, ra, dec);
            for other in m.tracts_containing_outer(ra, dec, m.ring_height_deg()) {
                if other != id {
                    prop_assert!(!m.tract(other).unwrap().inner_contains(ra, dec), "also in {}", other);
                }
            }
            prop_assert!(m.tracts_containing_outer(ra, dec, 0.05).contains(&id));
        }

        // A point within border_deg of a tract's inner region is in its outer region.
        #[test]
        fn outer_region_holds_the_border(ra in 0.0f64..360.0, dec in -80.0f64..80.0, pa in 0.0f64..360.0, d in 0.0f64..0.099) {
            let m = RingsSkymap::new(120).unwrap();
            let id = m.tract_of(ra, dec);
            let (ra2, dec2) = crate::sphere::offset_deg(ra, dec, d, pa);
            prop_assert!(m.tract(id).unwrap().outer_contains(ra2, dec2, 0.1));
            prop_assert!(m.tracts_containing_outer(ra2, dec2, 0.1).contains(&id));
        }
    }
}
