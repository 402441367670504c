//! Qserv chunks and sub-chunks.
//!
//! A port of the assignment rule of LSST's partitioner (`lsst::partition::Chunker::locate`,
//! which uses the same stripes and chunks as `lsst::sphgeom::Chunker`): the sky is cut into
//! `num_stripes` declination stripes, each stripe into `num_sub_stripes` sub-stripes, and each
//! (sub-)stripe into equal-width segments in right ascension, as many as fit while keeping two
//! points one segment apart at least one (sub-)stripe height apart on the sky. Arithmetic is
//! in degrees and in the same order as the C++ code, so ids are bit-for-bit identical; this is
//! why it is written here rather than taken from a library (no Rust crate implements it).
//!
//! Ids: `chunk_id = stripe * 2 * num_stripes + chunk`;
//! `sub_chunk_id = (sub_stripe - stripe * num_sub_stripes) * max_sub_chunks_per_chunk
//!                 + (sub_chunk - chunk * num_sub_chunks_per_chunk[sub_stripe])`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{SkyError, SkyResult};
use crate::interrupt::Ticker;
use crate::sphere::{cap_dec_range, cap_ra_half_width, dist_to_box_deg, DEG_PER_ARCSEC};
use crate::validate;

/// sphgeom refuses sub-stripes smaller than one arcsecond; so do we.
pub const MAX_TOTAL_SUB_STRIPES: i64 = 180 * 3600;

/// Most stripes whose chunk ids (`stripe * 2 * num_stripes + chunk`, below `2 num_stripes^2`)
/// fit the 32-bit ids of Qserv and of the SQL functions.
pub const MAX_STRIPES: i64 = 32_768;

/// Slack (degrees, ~0.4 micro-arcsec) added to circle covers so that points on a chunk
/// boundary, which `locate` assigns by a floor of a rounded quotient, are never missed.
const COVER_SLACK_DEG: f64 = 1e-10;

#[derive(Debug, Clone, PartialEq)]
pub struct Chunker {
    num_stripes: i32,
    num_sub_stripes_per_stripe: i32,
    sub_stripe_height: f64,
    num_chunks_per_stripe: Vec<i32>,
    /// Indexed by sub-stripe.
    num_sub_chunks_per_chunk: Vec<i32>,
    /// Indexed by sub-stripe, degrees.
    sub_chunk_width: Vec<f64>,
    max_sub_chunks_per_chunk: i32,
}

/// Where a position falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    pub chunk_id: i32,
    pub sub_chunk_id: i32,
}

/// Number of segments a latitude band is cut into (lsst partition `segments`).
fn segments(lat_min: f64, lat_max: f64, width: f64) -> i32 {
    let lat = lat_min.abs().max(lat_max.abs());
    if lat > 90.0 - 1.0 / 3600.0 {
        return 1;
    }
    if width >= 180.0 {
        return 1;
    }
    let lat = lat.to_radians();
    let cw = width.to_radians().cos();
    let sl = lat.sin();
    let cl = lat.cos();
    let x = cw - sl * sl;
    let u = cl * cl;
    let y = (u * u - x * x).abs().sqrt();
    (360.0 / y.atan2(x).to_degrees().abs()).floor() as i32
}

impl Chunker {
    /// A chunking of `num_stripes` stripes of `num_sub_stripes_per_stripe` sub-stripes each.
    /// Layouts whose chunk or sub-chunk ids would not fit 32 bits are refused (Qserv's ids are
    /// 32-bit, and sphgeom's arithmetic would silently wrap).
    pub fn new(num_stripes: i32, num_sub_stripes_per_stripe: i32) -> SkyResult<Self> {
        validate::int_in_range("num_stripes", 1, MAX_STRIPES, num_stripes as i64)?;
        validate::int_in_range(
            "num_sub_stripes",
            1,
            MAX_TOTAL_SUB_STRIPES / num_stripes as i64,
            num_sub_stripes_per_stripe as i64,
        )?;
        let num_sub_stripes = num_stripes * num_sub_stripes_per_stripe;
        let stripe_height = 180.0 / num_stripes as f64;
        let sub_stripe_height = 180.0 / num_sub_stripes as f64;
        let mut num_chunks_per_stripe = Vec::with_capacity(num_stripes as usize);
        let mut num_sub_chunks_per_chunk = Vec::with_capacity(num_sub_stripes as usize);
        let mut sub_chunk_width = Vec::with_capacity(num_sub_stripes as usize);
        let mut max_sub_chunks_per_chunk = 0;
        let mut ticker = Ticker::new();
        for i in 0..num_stripes {
            let nc = segments(i as f64 * stripe_height - 90.0, (i + 1) as f64 * stripe_height - 90.0, stripe_height);
            num_chunks_per_stripe.push(nc);
            for j in 0..num_sub_stripes_per_stripe {
                ticker.tick()?;
                let ss = i * num_sub_stripes_per_stripe + j;
                let lat_min = ss as f64 * sub_stripe_height - 90.0;
                let lat_max = (ss + 1) as f64 * sub_stripe_height - 90.0;
                let nsc = segments(lat_min, lat_max, sub_stripe_height) / nc;
                max_sub_chunks_per_chunk = max_sub_chunks_per_chunk.max(nsc);
                num_sub_chunks_per_chunk.push(nsc);
                sub_chunk_width.push(360.0 / (nsc * nc) as f64);
            }
        }
        // Sub-chunk ids run up to num_sub_stripes * max_sub_chunks_per_chunk - 1.
        let max_sub_chunk_id = num_sub_stripes_per_stripe as i64 * max_sub_chunks_per_chunk as i64 - 1;
        if max_sub_chunk_id > i32::MAX as i64 {
            return Err(SkyError::invalid(
                "num_sub_stripes",
                format!("small enough that sub-chunk ids fit 32 bits with {num_stripes} stripes"),
                format!("{num_sub_stripes_per_stripe} (sub-chunk ids up to {max_sub_chunk_id})"),
            ));
        }
        Ok(Chunker {
            num_stripes,
            num_sub_stripes_per_stripe,
            sub_stripe_height,
            num_chunks_per_stripe,
            num_sub_chunks_per_chunk,
            sub_chunk_width,
            max_sub_chunks_per_chunk,
        })
    }

    /// A per-thread cache of recently used chunkers: building one costs ~1000 trig calls,
    /// and a query calls `chunk_id` once per row with the same parameters.
    pub fn cached(num_stripes: i32, num_sub_stripes_per_stripe: i32) -> SkyResult<Rc<Chunker>> {
        thread_local! {
            static CACHE: RefCell<Vec<Rc<Chunker>>> = const { RefCell::new(Vec::new()) };
        }
        crate::cache::cached(
            &CACHE,
            |k| k.num_stripes == num_stripes && k.num_sub_stripes_per_stripe == num_sub_stripes_per_stripe,
            || Chunker::new(num_stripes, num_sub_stripes_per_stripe),
        )
    }

    pub fn num_stripes(&self) -> i32 {
        self.num_stripes
    }

    pub fn num_chunks_in_stripe(&self, stripe: i32) -> i32 {
        self.num_chunks_per_stripe[stripe as usize]
    }

    fn num_sub_stripes(&self) -> i32 {
        self.num_stripes * self.num_sub_stripes_per_stripe
    }

    fn sub_stripe_of(&self, dec: f64) -> i32 {
        let ss = ((dec + 90.0) / self.sub_stripe_height).floor() as i32;
        ss.clamp(0, self.num_sub_stripes() - 1)
    }

    pub fn chunk_id_of(&self, stripe: i32, chunk: i32) -> i32 {
        stripe * 2 * self.num_stripes + chunk
    }

    /// Chunk and sub-chunk of a position; `ra` must be in [0, 360), `dec` in [-90, 90].
    pub fn locate(&self, ra: f64, dec: f64) -> ChunkLocation {
        let sub_stripe = self.sub_stripe_of(dec);
        let stripe = sub_stripe / self.num_sub_stripes_per_stripe;
        let mut sub_chunk = (ra / self.sub_chunk_width[sub_stripe as usize]).floor() as i32;
        let num_chunks = self.num_chunks_per_stripe[stripe as usize];
        let num_sub_chunks_per_chunk = self.num_sub_chunks_per_chunk[sub_stripe as usize];
        let num_sub_chunks = num_chunks * num_sub_chunks_per_chunk;
        if sub_chunk >= num_sub_chunks {
            sub_chunk = num_sub_chunks - 1;
        }
        let chunk = sub_chunk / num_sub_chunks_per_chunk;
        ChunkLocation {
            chunk_id: self.chunk_id_of(stripe, chunk),
            sub_chunk_id: (sub_stripe - stripe * self.num_sub_stripes_per_stripe) * self.max_sub_chunks_per_chunk
                + (sub_chunk - chunk * num_sub_chunks_per_chunk),
        }
    }

    /// Declination bounds of a stripe (clamped to the poles).
    pub fn stripe_dec_bounds(&self, stripe: i32) -> (f64, f64) {
        let h = self.num_sub_stripes_per_stripe as f64 * self.sub_stripe_height;
        let lo = (stripe as f64 * h - 90.0).max(-90.0);
        let hi = ((stripe + 1) as f64 * h - 90.0).min(90.0);
        (lo, hi)
    }

    /// Whether the circle of `radius_arcsec` around (ra, dec) reaches a chunk other than the
    /// centre's own: the rows near a chunk edge, whose neighbours within the radius may lie in
    /// another chunk (a distributed cross-match defers their assignment). Exact as
    /// [`Chunker::chunks_in_circle`].
    pub fn circle_leaves_chunk(&self, ra: f64, dec: f64, radius_arcsec: f64) -> SkyResult<bool> {
        Ok(self.chunks_in_circle(ra, dec, radius_arcsec)?.len() > 1)
    }

    /// Every chunk that the circle of `radius_arcsec` around (ra, dec) touches, ascending.
    /// `ra` must be in [0, 360), `dec` in [-90, 90]. `TooLarge` when more than
    /// [`validate::MAX_RESULT_ELEMENTS`] chunks are candidates (checked before the search).
    pub fn chunks_in_circle(&self, ra: f64, dec: f64, radius_arcsec: f64) -> SkyResult<Vec<i32>> {
        let r = radius_arcsec * DEG_PER_ARCSEC + COVER_SLACK_DEG;
        let (lo, hi) = cap_dec_range(dec, r);
        let s_lo = self.sub_stripe_of(lo) / self.num_sub_stripes_per_stripe;
        let s_hi = self.sub_stripe_of(hi) / self.num_sub_stripes_per_stripe;
        let half_width = cap_ra_half_width(dec, r);
        // The chunks of each stripe worth testing: those in the circle's ra window, or all.
        let candidates = |s: i32| -> std::ops::RangeInclusive<i32> {
            let nc = self.num_chunks_per_stripe[s as usize];
            let width = 360.0 / nc as f64;
            match half_width {
                Some(w) if 2.0 * w + 2.0 * width < 360.0 => {
                    ((ra - w) / width).floor() as i32 - 1..=((ra + w) / width).floor() as i32 + 1
                }
                _ => 0..=nc - 1,
            }
        };
        let n_candidates: u64 = (s_lo..=s_hi).map(|s| candidates(s).count() as u64).sum();
        validate::result_size("chunks", n_candidates, "use fewer stripes or a smaller radius")?;
        let mut out = Vec::new();
        let mut ticker = Ticker::new();
        for s in s_lo..=s_hi {
            let nc = self.num_chunks_per_stripe[s as usize];
            let width = 360.0 / nc as f64;
            let (dmin, dmax) = self.stripe_dec_bounds(s);
            for c in candidates(s) {
                ticker.tick()?;
                let c = c.rem_euclid(nc);
                let ra_min = c as f64 * width;
                let ra_max = ((c + 1) as f64 * width).min(360.0);
                if dist_to_box_deg(ra, dec, ra_min, ra_max, dmin, dmax) <= r {
                    out.push(self.chunk_id_of(s, c));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sphere::sep_deg;
    use proptest::prelude::*;

    /// Brute-force reference for `locate`, written independently from the definition:
    /// scan the chunk boxes of the stripe for the one whose [ra_min, ra_max) holds the point.
    fn brute_chunk(k: &Chunker, ra: f64, dec: f64) -> i32 {
        let ns = k.num_stripes;
        let h = 180.0 / ns as f64;
        let mut s = 0;
        while s + 1 < ns && dec >= (s + 1) as f64 * h - 90.0 {
            s += 1;
        }
        let nc = k.num_chunks_per_stripe[s as usize];
        let w = 360.0 / nc as f64;
        let mut c = 0;
        while c + 1 < nc && ra >= (c + 1) as f64 * w {
            c += 1;
        }
        s * 2 * ns + c
    }

    #[test]
    fn qserv_default_layout() {
        // Qserv's production layout (340 stripes, 3 sub-stripes): stripes near the equator
        // have 2 * 340 - 1 .. 2 * 340 chunks of ~0.53 deg; the polar stripes have one.
        let k = Chunker::new(340, 3).unwrap();
        assert_eq!(k.num_chunks_per_stripe[0], 1);
        assert_eq!(k.num_chunks_per_stripe[339], 1);
        assert!(k.num_chunks_per_stripe[170] >= 670 && k.num_chunks_per_stripe[170] <= 680);
        assert_eq!(k.locate(0.0, -90.0).chunk_id, 0);
        assert_eq!(k.locate(359.9999, 90.0).chunk_id, 339 * 680);
    }

    #[test]
    fn one_stripe_one_chunk() {
        let k = Chunker::new(1, 1).unwrap();
        assert_eq!(k.locate(123.0, 45.0), ChunkLocation { chunk_id: 0, sub_chunk_id: 0 });
        assert_eq!(k.chunks_in_circle(10.0, 10.0, 3600.0).unwrap(), vec![0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Chunker::new(0, 3).is_err());
        assert!(Chunker::new(340, 0).is_err());
        assert!(Chunker::new(340, 2000).is_err());
        assert!(Chunker::new(-1, 1).is_err());
    }

    #[test]
    fn ids_fit_32_bits_or_the_layout_is_refused() {
        // 648000 stripes: chunk ids up to 2 * 648000^2 (used to wrap to negative ids).
        assert!(Chunker::new(648_000, 1).is_err());
        assert!(Chunker::new(32_769, 1).is_err());
        // The largest accepted stripe count: its top chunk id, computed in 64 bits from the
        // definition, is within int4.
        let k = Chunker::new(MAX_STRIPES as i32, 1).unwrap();
        let top = k.locate(359.999999, 90.0).chunk_id as i64;
        assert_eq!(
            top,
            (MAX_STRIPES - 1) * 2 * MAX_STRIPES + k.num_chunks_in_stripe(MAX_STRIPES as i32 - 1) as i64 - 1
        );
        assert!(top > 0);
        // One stripe of 648000 sub-stripes: sub-chunk ids would reach ~4e11.
        assert!(Chunker::new(1, 648_000).is_err());
        // Every accepted layout's ids are non-negative at extreme positions.
        for (ns, nss) in [(340, 3), (32_768, 1), (1, 1000), (85, 12), (3600, 100)] {
            let k = Chunker::new(ns, nss).unwrap();
            for (ra, dec) in [(0.0, -90.0), (359.9999999, 90.0), (123.0, 45.0), (180.0, 0.0), (359.9999999, 0.0)] {
                let loc = k.locate(ra, dec);
                assert!(loc.chunk_id >= 0 && loc.sub_chunk_id >= 0, "({ns}, {nss}) at ({ra}, {dec}): {loc:?}");
            }
        }
    }

    #[test]
    fn huge_circle_covers_are_refused_before_searching() {
        // The whole sky at 6000 stripes: ~46 million chunks.
        let k = Chunker::new(6000, 1).unwrap();
        let e = k.chunks_in_circle(0.0, 0.0, 648_000.0).unwrap_err();
        assert!(matches!(e, SkyError::TooLarge { .. }), "{e}");
        // The whole sky at Qserv's default 340 stripes is fine (~147k chunks): every chunk.
        let k = Chunker::new(340, 3).unwrap();
        let all = k.chunks_in_circle(0.0, 0.0, 648_000.0).unwrap();
        let total: i32 = (0..340).map(|s| k.num_chunks_in_stripe(s)).sum();
        assert_eq!(all.len(), total as usize);
    }

    #[test]
    fn cache_returns_equal_chunkers() {
        let a = Chunker::cached(85, 12).unwrap();
        let b = Chunker::cached(85, 12).unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        assert_eq!(*a, Chunker::new(85, 12).unwrap());
    }

    fn layouts() -> impl Strategy<Value = (i32, i32)> {
        prop_oneof![Just((340, 3)), Just((85, 12)), Just((18, 100)), (1i32..400, 1i32..20)]
    }

    proptest! {
        #[test]
        fn locate_matches_brute_force((ns, nss) in layouts(), ra in 0.0f64..360.0, dec in -90.0f64..=90.0) {
            let k = Chunker::cached(ns, nss).unwrap();
            let loc = k.locate(ra, dec);
            let brute = brute_chunk(&k, ra, dec);
            // The brute force compares against bounds computed as products; locate divides.
            // They may only disagree for points within rounding distance of a boundary.
            if loc.chunk_id != brute {
                let h = 180.0 / ns as f64;
                let near_lat = ((dec + 90.0) / h - ((dec + 90.0) / h).round()).abs() < 1e-9;
                let near_lon = {
                    let s = brute / (2 * ns);
                    let w = 360.0 / k.num_chunks_per_stripe[s as usize] as f64;
                    ((ra / w) - (ra / w).round()).abs() < 1e-9
                };
                prop_assert!(near_lat || near_lon, "ra {ra} dec {dec}: {} vs {brute}", loc.chunk_id);
            }
            prop_assert!(loc.sub_chunk_id >= 0 && loc.sub_chunk_id < nss * k.max_sub_chunks_per_chunk);
        }

        #[test]
        fn chunk_boundaries_split_where_the_boxes_do((ns, nss) in layouts(), s in 0i32..400, c in 0i32..800) {
            // Just east / north of a chunk's lower-left corner is that chunk; just west /
            // south is its neighbour (wrapping at RA 0/360, clamped at the poles).
            let k = Chunker::cached(ns, nss).unwrap();
            let s = s % ns;
            let nc = k.num_chunks_per_stripe[s as usize];
            let c = c % nc;
            let w = 360.0 / nc as f64;
            let (dmin, dmax) = k.stripe_dec_bounds(s);
            let mid_dec = 0.5 * (dmin + dmax);
            let eps = 1e-9;
            prop_assert_eq!(k.locate(c as f64 * w + eps, mid_dec).chunk_id, k.chunk_id_of(s, c));
            let west = crate::sphere::wrap_ra(c as f64 * w - eps);
            prop_assert_eq!(k.locate(west, mid_dec).chunk_id, k.chunk_id_of(s, (c + nc - 1) % nc));
            let ra_mid = (c as f64 + 0.5) * w;
            let north_of_lower = k.locate(ra_mid, (dmin + eps).min(90.0)).chunk_id / (2 * ns);
            prop_assert_eq!(north_of_lower, s);
            if s > 0 {
                prop_assert_eq!(k.locate(ra_mid, dmin - eps).chunk_id / (2 * ns), s - 1);
            }
        }

        #[test]
        fn poles_and_ra_ends((ns, nss) in layouts(), ra in 0.0f64..360.0) {
            let k = Chunker::cached(ns, nss).unwrap();
            prop_assert_eq!(k.locate(ra, 90.0).chunk_id / (2 * ns), ns - 1);
            prop_assert_eq!(k.locate(ra, -90.0).chunk_id / (2 * ns), 0);
            for dec in [-45.0, 0.0, 45.0] {
                let s = k.locate(0.0, dec).chunk_id / (2 * ns);
                let nc = k.num_chunks_per_stripe[s as usize];
                prop_assert_eq!(k.locate(0.0, dec).chunk_id, k.chunk_id_of(s, 0));
                prop_assert_eq!(k.locate(360.0f64.next_down(), dec).chunk_id, k.chunk_id_of(s, nc - 1));
            }
        }

        #[test]
        fn circle_cover_contains_every_inside_point((ns, nss) in layouts(),
                                                    ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                                    r_arcsec in 0.001f64..7200.0,
                                                    pa in 0.0f64..360.0, f in 0.0f64..=1.0) {
            let k = Chunker::cached(ns, nss).unwrap();
            let cover = k.chunks_in_circle(ra, dec, r_arcsec).unwrap();
            prop_assert!(cover.windows(2).all(|w| w[0] < w[1]));
            let r = r_arcsec / 3600.0 * f;
            let (ra2, d2) = crate::sphere::offset_deg(ra, dec, r, pa);
            prop_assert!(sep_deg(ra, dec, ra2, d2) <= r + 1e-9);
            let id = k.locate(ra2, d2).chunk_id;
            prop_assert!(cover.contains(&id), "point ({ra2}, {d2}) in chunk {id} missing from {cover:?}");
            prop_assert!(cover.contains(&k.locate(ra, dec).chunk_id));
        }

        #[test]
        fn circle_cover_has_no_far_chunks((ns, nss) in layouts(),
                                          ra in 0.0f64..360.0, dec in -90.0f64..=90.0,
                                          r_arcsec in 0.001f64..7200.0) {
            // Every returned chunk must come within the radius: check its box by dense sampling.
            let k = Chunker::cached(ns, nss).unwrap();
            for id in k.chunks_in_circle(ra, dec, r_arcsec).unwrap() {
                let s = id / (2 * ns);
                let c = id - s * 2 * ns;
                let w = 360.0 / k.num_chunks_per_stripe[s as usize] as f64;
                let (dmin, dmax) = k.stripe_dec_bounds(s);
                let n = 40;
                let mut best = f64::INFINITY;
                for i in 0..=n {
                    for j in 0..=n {
                        let pr = c as f64 * w + w * i as f64 / n as f64;
                        let pd = dmin + (dmax - dmin) * j as f64 / n as f64;
                        best = best.min(sep_deg(ra, dec, pr, pd));
                    }
                }
                let spacing = w.max(dmax - dmin) / n as f64;
                prop_assert!(best <= r_arcsec / 3600.0 + spacing + 1e-9, "chunk {id} is {best} deg away");
            }
        }
    }
}
