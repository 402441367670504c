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
//! [`Tract::inner_contains`] tests points against it with `geo`, so that DRP tables can store
//! the polygon and the test stays valid for any other skymap whose tracts are such polygons.

use geo::{coordinate_position::CoordPos, Coord, CoordinatePosition, LineString, Polygon};

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
            let start = -90.0 + h * (i as f64 + 0.5);
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

    /// The ring of a declination: -1 south cap, `num_rings` north cap. Rings are half-open
    /// `[lower, upper)`, so +90 is in the north cap.
    fn ring_of(&self, dec: f64) -> i32 {
        let r = ((dec + 90.0 - self.ring_height_deg / 2.0) / self.ring_height_deg).floor() as i32;
        r.clamp(-1, self.num_rings)
    }

    /// The tract whose inner region holds (ra, dec): LSST's `findTract`, by arithmetic.
    pub fn tract_of(&self, ra: f64, dec: f64) -> i32 {
        let ring = self.ring_of(dec);
        if ring < 0 {
            return 0;
        }
        if ring >= self.num_rings {
            return self.num_tracts() - 1;
        }
        let n = self.ring_tracts[ring as usize];
        let mut k = (0.5 + wrap_ra(ra) / 360.0 * n as f64).floor() as i32;
        if k >= n {
            k = 0;
        }
        self.ring_first[ring as usize] + k
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
            return Some(cap(-1, -90.0, -90.0 + h / 2.0, -90.0));
        }
        if id == last {
            return Some(cap(self.num_rings, 90.0 - h / 2.0, 90.0, 90.0));
        }
        let ring = self.ring_first.partition_point(|&f| f <= id) as i32 - 1;
        let n = self.ring_tracts[ring as usize] as f64;
        let k = (id - self.ring_first[ring as usize]) as f64;
        let dec_min = -90.0 + h * (ring as f64 + 0.5);
        let ra_center = k * 360.0 / n;
        Some(Tract {
            id,
            ring,
            ra_center,
            dec_center: dec_min + h / 2.0,
            // The same expression for a tract's ra_max and its neighbour's ra_min, so that
            // shared edges are bit-identical and boundary points have exactly one owner.
            ra_min: (2.0 * k - 1.0) * 180.0 / n,
            ra_max: (2.0 * k + 1.0) * 180.0 / n,
            dec_min,
            dec_max: dec_min + h,
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
        unwrap_ra_around(ra, self.ra_center)
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

    /// Whether (ra, dec) lies in the inner region (LSST `isPrimary` for objects of this tract).
    pub fn inner_contains(&self, ra: f64, dec: f64) -> bool {
        polygon_contains_half_open(&self.inner_polygon(), self.ra_center, ra, dec)
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

/// `ra` shifted by whole turns into `[center - 180, center + 180)`.
fn unwrap_ra_around(ra: f64, center: f64) -> f64 {
    let lo = center - 180.0;
    let u = lo + (ra - lo).rem_euclid(360.0);
    if u >= center + 180.0 {
        lo
    } else {
        u
    }
}

/// Point-in-polygon on a polygon given in (ra, dec) degrees with ra unwrapped around
/// `ra_center`, made half-open so that polygons tiling the sky edge to edge (tract inner
/// regions) give every point exactly one owner: the point tested is nudged by
/// [`NUDGE_DEG`] towards +ra and +dec (towards -dec at +90). A point on a shared edge then
/// belongs to the tile on the +ra / +dec side, as the skymap's half-open ranges say, and
/// edges that differ by float rounding across the ra = 0/360 seam (360 - 180/n - 360 is not
/// bit-identical to -180/n) cannot give a point two owners or none.
pub fn polygon_contains_half_open(vertices: &[(f64, f64)], ra_center: f64, ra: f64, dec: f64) -> bool {
    if vertices.len() < 3 || !ra.is_finite() || !dec.is_finite() {
        return false;
    }
    let poly = Polygon::new(LineString::from(vertices.to_vec()), vec![]);
    let u = unwrap_ra_around(ra + NUDGE_DEG, ra_center);
    let d = if dec + NUDGE_DEG <= 90.0 { dec + NUDGE_DEG } else { dec - NUDGE_DEG };
    matches!(poly.coordinate_position(&Coord { x: u, y: d }), CoordPos::Inside)
}

/// How far the half-open polygon test moves a point (about 4 micro-arcseconds): far above
/// float rounding of degree-sized edges, far below any astrometric error.
pub const NUDGE_DEG: f64 = 1e-9;

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

    #[test]
    fn boundary_points_go_to_exactly_one_tract() {
        let m = RingsSkymap::new(20).unwrap();
        for id in 0..m.num_tracts() {
            let t = m.tract(id).unwrap();
            for (ra, dec) in t.inner_polygon() {
                let dec = dec.clamp(-90.0, 90.0);
                let owners: Vec<i32> =
                    (0..m.num_tracts()).filter(|&j| m.tract(j).unwrap().inner_contains(ra, dec)).collect();
                // findTract's float arithmetic may round an exact edge either way; the polygon
                // rule must give one owner, and one that findTract puts at most a hair away.
                assert_eq!(owners.len(), 1, "corner ({ra}, {dec}) of tract {id}: {owners:?}");
                let near = m.tracts_containing_outer(ra, dec, 1e-9);
                assert!(near.contains(&owners[0]) && near.contains(&m.tract_of(ra, dec)));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        // Two independent routes to the same answer: the geo polygon test over every tract of
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
