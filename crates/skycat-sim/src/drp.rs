//! Simulated DRP (data release processing) outputs per tract: what LSST's DRP writes for a
//! release, small enough to generate and exact enough to score de-duplication and calibration.
//!
//! - The release covers the `tracts` tracts of a [`RingsSkymap`] whose centres are nearest to
//!   (`ra0`, `dec0`) ([`DrpConfig::tract_ids`]).
//! - True objects ([`true_sky`]) are uniform on the sphere inside the ra/dec bounding box of
//!   the union of those tracts' **outer** regions, so some lie outside every release tract's
//!   inner region (their primary tract is not in the release: `in_release` is false). Each has
//!   a measured coadd position (the true one plus N(0, 0.02 arcsec) per axis), per-band base
//!   fluxes (log-normal, median about 3000 nJy in r, with a colour slope), and one in ten
//!   varies as a sinusoid (relative amplitude 0.05 .. 0.8, period 0.2 .. 300 days).
//! - The measured position is drawn **once per true object**: every tract that sees the object
//!   writes the same coordinates, so LSST's `isPrimary` (the copy whose tract's inner region
//!   holds the measured position) selects exactly one copy of each in-release object, and
//!   none of the others.
//! - Tract `t` sees the true objects whose measured position is in its outer region; their
//!   object ids are `t * 100_000_000 + local index` (in truth-id order), so an object in an
//!   overlap has one id per tract that sees it: the duplicates DRP de-duplicates.
//! - Each tract has `visits_per_tract` visits (`visit = t * 1000 + v`, bands cycling u g r i z
//!   y, mjd = 60600 + 3.1 v + jitter) pointed at the tract centre, on a square grid of
//!   LSST-sized detectors ([`crate::tract::calibs`]) covering the outer region and the dither.
//! - For each (visit, object) the detector holding the object's true position (if any)
//!   measures it: a **forced** measurement at the measured coadd position (every such pair; 1
//!   in 500 failed, NaN flux and error), a single-visit **source** when its measured S/N > 5
//!   (centroid = true pixel + N(0, 3.5 / S/N pixels)), and for variable objects a **DIA
//!   source** when the true difference from the mean flux exceeds 5 sigma.
//!
//! Instrumental fluxes are in counts: `true nJy / calib_mean + noise`, error
//! `sqrt(counts + SKY_COUNTS^2)`. Everything is deterministic from the seed; each tract's
//! random streams are seeded from (seed, tract[, visit]), so tracts can be generated alone
//! and in any order, and visits in parallel.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal, StandardNormal};
use skycat_core::skymap::{RingsSkymap, Tract};
use skycat_core::sphere::{position_angle_deg, sep_deg};
use skycat_core::wcs::Wcs;

use crate::sky::{displace, rng};
use crate::tract::{calibs, DETECTOR_NX, DETECTOR_NY, PIXEL_DEG};
use crate::BANDS;

/// Object ids of tract `t` are `t * OBJECT_ID_STRIDE + local index`.
pub const OBJECT_ID_STRIDE: i64 = 100_000_000;
/// Visit ids of tract `t` are `t * VISIT_ID_STRIDE + v`.
pub const VISIT_ID_STRIDE: i64 = 1000;
/// Source ids of tract `t` are `t * SOURCE_ID_STRIDE + running`; DIA source ids
/// `t * SOURCE_ID_STRIDE + DIA_SOURCE_ID_OFFSET + running`.
pub const SOURCE_ID_STRIDE: i64 = 10_000_000_000;
pub const DIA_SOURCE_ID_OFFSET: i64 = 5_000_000_000;
/// 1-sigma error of the measured coadd position, per axis (arcsec).
pub const COADD_SIGMA_ARCSEC: f64 = 0.02;
/// Sky noise per measurement (counts): with calib_mean about 0.45 nJy per count, a single
/// visit's 5-sigma limit is about 570 nJy (24.5 mag AB), like an LSST visit.
pub const SKY_COUNTS: f64 = 250.0;
/// Seeing FWHM over the pixel scale: a centroid's error is this over the S/N (pixels).
pub const SEEING_PX: f64 = 0.7 / 0.2;
/// Detection threshold (S/N) of sources and DIA sources.
pub const DETECTION_SNR: f64 = 5.0;
/// First visit's MJD and days between visits.
pub const MJD0: f64 = 60_600.0;
pub const VISIT_CADENCE_DAYS: f64 = 3.1;
/// Largest dither of a visit's boresight per axis (degrees), as `tract::calibs` draws it.
const DITHER_DEG: f64 = 0.05;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct DrpConfig {
    pub num_rings: i32,
    pub border_deg: f64,
    /// Tracts in the release: those whose centres are nearest (ra0, dec0).
    pub tracts: usize,
    pub ra0: f64,
    pub dec0: f64,
    /// True objects in the bounding box of the release's outer regions.
    pub objects: usize,
    pub visits_per_tract: usize,
    pub seed: u64,
}

impl Default for DrpConfig {
    fn default() -> Self {
        DrpConfig {
            num_rings: 120,
            border_deg: 0.1,
            tracts: 4,
            ra0: 60.0,
            dec0: -30.0,
            objects: 100_000,
            visits_per_tract: 24,
            seed: 1,
        }
    }
}

impl DrpConfig {
    /// Checks what the simulation cannot work with.
    pub fn validate(&self) -> Result<(), String> {
        RingsSkymap::new(self.num_rings).map_err(|e| e.to_string())?;
        if !(self.border_deg.is_finite() && (0.0..=5.0).contains(&self.border_deg)) {
            return Err(format!("border_deg must be in [0, 5], got {}", self.border_deg));
        }
        if self.tracts == 0 {
            return Err("at least one tract".into());
        }
        if !(self.ra0.is_finite() && self.dec0.is_finite() && (-90.0..=90.0).contains(&self.dec0)) {
            return Err(format!("(ra0, dec0) = ({}, {}) is not a sky position", self.ra0, self.dec0));
        }
        if self.visits_per_tract == 0 || self.visits_per_tract as i64 >= VISIT_ID_STRIDE {
            return Err(format!("visits_per_tract must be in 1..{VISIT_ID_STRIDE}"));
        }
        if self.objects as i64 >= OBJECT_ID_STRIDE {
            return Err(format!("objects must be below {OBJECT_ID_STRIDE}"));
        }
        Ok(())
    }

    pub fn skymap(&self) -> RingsSkymap {
        RingsSkymap::new(self.num_rings).expect("num_rings is validated by DrpConfig::validate")
    }

    /// The release's tracts, ascending: the `tracts` tracts whose centres are nearest to
    /// (ra0, dec0) (ties by id).
    pub fn tract_ids(&self) -> Vec<i32> {
        let map = self.skymap();
        let mut by_distance: Vec<(f64, i32)> = (0..map.num_tracts())
            .map(|id| {
                let t = map.tract(id).expect("id in range");
                (sep_deg(self.ra0, self.dec0, t.ra_center, t.dec_center), id)
            })
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut ids: Vec<i32> = by_distance.iter().take(self.tracts).map(|&(_, id)| id).collect();
        ids.sort_unstable();
        ids
    }
}

/// The command-line options of `skycat-sim drp` (flattened into its clap command).
#[derive(clap::Args, Debug, Clone)]
pub struct DrpArgs {
    #[arg(long, default_value_t = 120)]
    pub num_rings: i32,
    /// Border of the tracts' outer regions (degrees).
    #[arg(long, default_value_t = 0.1)]
    pub border_deg: f64,
    /// Tracts in the release: those whose centres are nearest to (--ra0, --dec0).
    #[arg(long, default_value_t = 4)]
    pub tracts: usize,
    #[arg(long, default_value_t = 60.0)]
    pub ra0: f64,
    #[arg(long, default_value_t = -30.0, allow_hyphen_values = true)]
    pub dec0: f64,
    /// True objects in the bounding box of the release's outer regions.
    #[arg(long, default_value_t = 100_000)]
    pub objects: usize,
    #[arg(long, default_value_t = 24)]
    pub visits_per_tract: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl DrpArgs {
    pub fn config(&self) -> Result<DrpConfig, String> {
        let c = DrpConfig {
            num_rings: self.num_rings,
            border_deg: self.border_deg,
            tracts: self.tracts,
            ra0: self.ra0,
            dec0: self.dec0,
            objects: self.objects,
            visits_per_tract: self.visits_per_tract,
            seed: self.seed,
        };
        c.validate()?;
        Ok(c)
    }
}

/// One true object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueObject {
    /// 1, 2, ...
    pub truth_id: i64,
    pub ra: f64,
    pub dec: f64,
    /// The measured coadd position, the same in every tract that sees the object.
    pub ra_meas: f64,
    pub dec_meas: f64,
    /// `RingsSkymap::tract_of(ra_meas, dec_meas)`, and whether that tract is in the release.
    pub primary_tract: i32,
    pub in_release: bool,
    pub variable: bool,
    /// Mean flux per band (u g r i z y), nJy: base times colour.
    pub flux: [f64; 6],
    /// Variability: flux(t) = mean (1 + amplitude sin(2 pi mjd / period + phase)).
    pub amplitude: f64,
    pub period: f64,
    pub phase: f64,
}

impl TrueObject {
    /// True flux (nJy) in band `band` (index into [`BANDS`]) at `mjd`.
    pub fn flux_at(&self, band: usize, mjd: f64) -> f64 {
        let mean = self.flux[band];
        if self.variable {
            mean * (1.0 + self.amplitude * (std::f64::consts::TAU * mjd / self.period + self.phase).sin())
        } else {
            mean
        }
    }
}

/// The true sky of a release.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueSky {
    pub tract_ids: Vec<i32>,
    /// In truth-id order (`objects[i].truth_id == i + 1`).
    pub objects: Vec<TrueObject>,
}

/// ra unwrapped into `[center - 180, center + 180)`.
fn unwrap_around(ra: f64, center: f64) -> f64 {
    center - 180.0 + (ra - center + 180.0).rem_euclid(360.0)
}

/// The ra/dec bounding box of the union of the tracts' outer regions: (ra_lo, ra_hi, dec_lo,
/// dec_hi), ra unwrapped around the first tract's centre (ra_hi - ra_lo = 360 with a cap).
fn outer_bounding_box(tracts: &[Tract], border: f64) -> (f64, f64, f64, f64) {
    let (mut ra_lo, mut ra_hi, mut dec_lo, mut dec_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let ref_ra = tracts[0].ra_center;
    let mut whole = false;
    for t in tracts {
        let (d0, d1) = ((t.dec_min - border).max(-90.0), (t.dec_max + border).min(90.0));
        dec_lo = dec_lo.min(d0);
        dec_hi = dec_hi.max(d1);
        // The widest ra growth of Tract::outer_contains over the outer dec range.
        let c = d0.abs().max(d1.abs()).to_radians().cos();
        if t.ra_max - t.ra_min >= 360.0 || c <= 1e-9 {
            whole = true;
            continue;
        }
        let grow = (1.01 * border / c).min(180.0);
        let shift = unwrap_around(t.ra_center, ref_ra) - t.ra_center;
        ra_lo = ra_lo.min(t.ra_min + shift - grow);
        ra_hi = ra_hi.max(t.ra_max + shift + grow);
    }
    if whole || ra_hi - ra_lo >= 360.0 {
        (0.0, 360.0, dec_lo, dec_hi)
    } else {
        (ra_lo, ra_hi, dec_lo, dec_hi)
    }
}

/// Stream tags: which random stream of a release a seed is for.
const STREAM_TRUTH: u64 = 1;
const STREAM_CALIB: u64 = 2;
const STREAM_MJD: u64 = 3;
const STREAM_VISIT: u64 = 4;

/// A seed for one stream of one tract (and visit): splitmix64 over the parts.
fn mix(seed: u64, parts: &[u64]) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    parts.iter().fold(splitmix(seed), |h, &p| splitmix(h ^ splitmix(p)))
}

/// The release's true objects (deterministic from `config.seed`).
pub fn true_sky(config: &DrpConfig) -> TrueSky {
    let map = config.skymap();
    let tract_ids = config.tract_ids();
    let tracts: Vec<Tract> = tract_ids.iter().map(|&id| map.tract(id).expect("a tract of the map")).collect();
    let (ra_lo, ra_hi, dec_lo, dec_hi) = outer_bounding_box(&tracts, config.border_deg);
    let (z_lo, z_hi) = (dec_lo.to_radians().sin(), dec_hi.to_radians().sin());
    let mut r = rng(mix(config.seed, &[STREAM_TRUTH]));
    let unit = Normal::new(0.0, 1.0).expect("valid");
    let base = LogNormal::new(3000f64.ln(), 1.5).expect("valid");
    let objects = (0..config.objects)
        .map(|i| {
            let ra = unwrap_around(r.random_range(ra_lo..ra_hi), 180.0);
            let dec = r.random_range(z_lo..=z_hi).clamp(-1.0, 1.0).asin().to_degrees();
            let (ra_meas, dec_meas) = displace(ra, dec, COADD_SIGMA_ARCSEC, COADD_SIGMA_ARCSEC, &unit, &mut r);
            let f0: f64 = base.sample(&mut r);
            let slope = 0.3 * unit.sample(&mut r);
            let mut flux = [0.0; 6];
            for (b, f) in flux.iter_mut().enumerate() {
                *f = f0 * (slope * (b as f64 - 2.0) + 0.05 * unit.sample(&mut r)).exp();
            }
            let variable = r.random_range(0..10) == 0;
            let amplitude = r.random_range(0.05..0.8);
            let period = r.random_range(0.2..300.0);
            let phase = r.random_range(0.0..std::f64::consts::TAU);
            let primary_tract = map.tract_of(ra_meas, dec_meas);
            TrueObject {
                truth_id: i as i64 + 1,
                ra,
                dec,
                ra_meas,
                dec_meas,
                primary_tract,
                in_release: tract_ids.binary_search(&primary_tract).is_ok(),
                variable,
                flux,
                amplitude,
                period,
                phase,
            }
        })
        .collect();
    TrueSky { tract_ids, objects }
}

/// One object of a tract: `object.parquet` (and `object_truth.parquet`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TractObject {
    pub object_id: i64,
    pub truth_id: i64,
    /// The measured coadd position.
    pub ra: f64,
    pub dec: f64,
}

/// The calibration of one (visit, detector): `calib.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitCalib {
    pub visit: i64,
    pub detector: i32,
    pub band: &'static str,
    pub mjd: f64,
    /// nJy per count, and its error.
    pub calib_mean: f64,
    pub calib_err: f64,
    pub wcs: Wcs,
}

/// A single-visit detection: `source.parquet`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrpSource {
    pub source_id: i64,
    pub object_id: i64,
    pub visit: i64,
    pub detector: i32,
    pub x: f64,
    pub y: f64,
    pub x_err: f64,
    pub y_err: f64,
    pub psf_inst_flux: f64,
    pub psf_inst_flux_err: f64,
}

/// A difference-image detection: `dia_source.parquet`. `truth_object_id` (the tract's object
/// that varied) is kept for tests and not written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrpDiaSource {
    pub dia_source_id: i64,
    pub truth_object_id: i64,
    pub visit: i64,
    pub detector: i32,
    pub x: f64,
    pub y: f64,
    pub x_err: f64,
    pub y_err: f64,
    pub psf_inst_flux: f64,
    pub psf_inst_flux_err: f64,
}

/// A forced measurement at the object's coadd position: `forced_source.parquet`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawForced {
    pub object_id: i64,
    pub visit: i64,
    pub detector: i32,
    /// The object's measured coadd position (LSST's coord_ra / coord_dec).
    pub ra: f64,
    pub dec: f64,
    /// That position through the detector's WCS.
    pub x: f64,
    pub y: f64,
    pub psf_inst_flux: f64,
    pub psf_inst_flux_err: f64,
}

/// A tract's outputs, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TractOutput {
    pub objects: Vec<TractObject>,
    /// Visit-major, detector-minor.
    pub calibs: Vec<VisitCalib>,
    /// Rows in (visit, object) order.
    pub sources: Vec<DrpSource>,
    pub dia_sources: Vec<DrpDiaSource>,
    pub forced: Vec<RawForced>,
}

/// Where the streamed rows of a tract go, in (visit, object) order.
pub trait TractSink {
    fn source(&mut self, s: &DrpSource);
    fn dia_source(&mut self, d: &DrpDiaSource);
    fn forced(&mut self, f: &RawForced);
    /// Called after each visit's rows with the number of visits done.
    fn visit_done(&mut self, _visits: usize) {}
}

/// A tract's objects and calibrations (what is not streamed).
#[derive(Debug, Clone, PartialEq)]
pub struct TractFrame {
    pub objects: Vec<TractObject>,
    pub calibs: Vec<VisitCalib>,
}

/// Detectors per side of the square grid that covers the tract's outer region, whatever the
/// dither and rotation.
fn grid_side(tract: &Tract, border: f64) -> usize {
    let (mut ex, mut ey) = (0.0f64, 0.0f64);
    let c = (tract.dec_min - border).abs().max((tract.dec_max + border).abs()).to_radians().cos().max(1e-9);
    let grow = (1.01 * border / c).min(180.0);
    let (r0, r1) = (tract.ra_min - grow, tract.ra_max + grow);
    let (d0, d1) = ((tract.dec_min - border).max(-90.0), (tract.dec_max + border).min(90.0));
    for k in 0..=32 {
        let f = k as f64 / 32.0;
        for (ra, dec) in
            [(r0 + f * (r1 - r0), d0), (r0 + f * (r1 - r0), d1), (r0, d0 + f * (d1 - d0)), (r1, d0 + f * (d1 - d0))]
        {
            let (dx, dy) = tangent_offset(tract.ra_center, tract.dec_center, ra, dec);
            ex = ex.max(dx.abs());
            ey = ey.max(dy.abs());
        }
    }
    // Dither, then a detector's 2-degree rotation and SIP (well under 0.02 degrees).
    let margin = DITHER_DEG + 0.02;
    let sx = (2.0 * (ex + margin) / (DETECTOR_NX * PIXEL_DEG)).ceil();
    let sy = (2.0 * (ey + margin) / (DETECTOR_NY * PIXEL_DEG)).ceil();
    sx.max(sy).max(1.0) as usize
}

/// (east, north) offsets in degrees of (ra, dec) from (ra0, dec0) as `tract::calibs` places
/// detector centres: distance along the position angle.
fn tangent_offset(ra0: f64, dec0: f64, ra: f64, dec: f64) -> (f64, f64) {
    let r = sep_deg(ra0, dec0, ra, dec);
    let (s, c) = position_angle_deg(ra0, dec0, ra, dec).to_radians().sin_cos();
    (r * s, r * c)
}

/// Everything a tract's visits need, shared by the visit workers.
struct TractCtx<'a> {
    tract: i32,
    seed: u64,
    side: usize,
    objects: Vec<TractObject>,
    /// The true objects of `objects`, and their true (east, north) offsets from the tract centre.
    truth: Vec<&'a TrueObject>,
    offsets: Vec<(f64, f64)>,
    calibs: Vec<VisitCalib>,
    /// Per visit: the dither of the boresight (east, north degrees).
    dithers: Vec<(f64, f64)>,
}

#[derive(Default)]
struct VisitRows {
    sources: Vec<DrpSource>,
    dia_sources: Vec<DrpDiaSource>,
    forced: Vec<RawForced>,
}

impl TractCtx<'_> {
    fn detectors(&self) -> usize {
        self.side * self.side
    }

    /// The detector of visit `v` whose pixel bounds hold true object `k`, with the pixel:
    /// the nearest detector centre first, then its neighbours nearest first.
    fn find_detector(&self, v: usize, k: usize) -> Option<(usize, f64, f64)> {
        let o = self.truth[k];
        let (dx, dy) = self.offsets[k];
        let half = (self.side as f64 - 1.0) / 2.0;
        let fx = (dx - self.dithers[v].0) / (DETECTOR_NX * PIXEL_DEG) + half;
        let fy = (dy - self.dithers[v].1) / (DETECTOR_NY * PIXEL_DEG) + half;
        let n = self.side as f64;
        if !(fx > -1.0 && fx < n && fy > -1.0 && fy < n) {
            return None;
        }
        let (ix, iy) = (fx.round().clamp(0.0, n - 1.0) as i64, fy.round().clamp(0.0, n - 1.0) as i64);
        let try_at = |gx: i64, gy: i64| -> Option<(usize, f64, f64)> {
            let d = gy as usize * self.side + gx as usize;
            let (x, y) = self.calibs[v * self.detectors() + d].wcs.sky_to_pixel(o.ra, o.dec);
            ((-0.5..DETECTOR_NX - 0.5).contains(&x) && (-0.5..DETECTOR_NY - 0.5).contains(&y)).then_some((d, x, y))
        };
        if let Some(hit) = try_at(ix, iy) {
            return Some(hit);
        }
        let mut around: Vec<(f64, i64, i64)> = Vec::with_capacity(8);
        for gy in iy - 1..=iy + 1 {
            for gx in ix - 1..=ix + 1 {
                if (gx, gy) != (ix, iy) && (0..self.side as i64).contains(&gx) && (0..self.side as i64).contains(&gy) {
                    around.push(((gx as f64 - fx).powi(2) + (gy as f64 - fy).powi(2), gx, gy));
                }
            }
        }
        around.sort_by(|a, b| a.0.total_cmp(&b.0));
        around.iter().find_map(|&(_, gx, gy)| try_at(gx, gy))
    }

    /// The rows of visit `v`, ids not yet assigned (0).
    fn visit_rows(&self, v: usize) -> VisitRows {
        let mut r = rng(mix(self.seed, &[self.tract as u64, STREAM_VISIT, v as u64]));
        let band = v % BANDS.len();
        let mut out = VisitRows::default();
        for k in 0..self.objects.len() {
            let Some((d, xt, yt)) = self.find_detector(v, k) else {
                continue;
            };
            let (o, t) = (&self.objects[k], self.truth[k]);
            let c = &self.calibs[v * self.detectors() + d];
            let truth = t.flux_at(band, c.mjd);
            let counts = truth / c.calib_mean;
            let err = (counts + SKY_COUNTS * SKY_COUNTS).sqrt();
            let mut normal = || -> f64 { r.sample(StandardNormal) };

            let forced_flux = counts + err * normal();
            let failed = r.random_range(0..500) == 0;
            let (x, y) = c.wcs.sky_to_pixel(o.ra, o.dec);
            out.forced.push(RawForced {
                object_id: o.object_id,
                visit: c.visit,
                detector: c.detector,
                ra: o.ra,
                dec: o.dec,
                x,
                y,
                psf_inst_flux: if failed { f64::NAN } else { forced_flux },
                psf_inst_flux_err: if failed { f64::NAN } else { err },
            });

            let mut normal = || -> f64 { r.sample(StandardNormal) };
            let flux = counts + err * normal();
            let snr = flux / err;
            if snr > DETECTION_SNR {
                let pos_err = SEEING_PX / snr;
                out.sources.push(DrpSource {
                    source_id: 0,
                    object_id: o.object_id,
                    visit: c.visit,
                    detector: c.detector,
                    x: xt + pos_err * normal(),
                    y: yt + pos_err * normal(),
                    x_err: pos_err,
                    y_err: pos_err,
                    psf_inst_flux: flux,
                    psf_inst_flux_err: err,
                });
            }

            let mean = t.flux[band];
            if t.variable && (truth - mean).abs() / (err * c.calib_mean) > DETECTION_SNR {
                let diff = (truth - mean) / c.calib_mean + err * normal();
                let pos_err = SEEING_PX / (diff.abs() / err).max(1.0);
                out.dia_sources.push(DrpDiaSource {
                    dia_source_id: 0,
                    truth_object_id: o.object_id,
                    visit: c.visit,
                    detector: c.detector,
                    x: xt + pos_err * normal(),
                    y: yt + pos_err * normal(),
                    x_err: pos_err,
                    y_err: pos_err,
                    psf_inst_flux: diff,
                    psf_inst_flux_err: err,
                });
            }
        }
        out
    }
}

fn tract_ctx<'a>(config: &DrpConfig, sky: &'a TrueSky, tract_id: i32) -> TractCtx<'a> {
    let tract = config.skymap().tract(tract_id).unwrap_or_else(|| panic!("no tract {tract_id} in the skymap"));
    let t64 = tract_id as i64;
    let mut objects = Vec::new();
    let mut truth = Vec::new();
    let mut offsets = Vec::new();
    for o in &sky.objects {
        if tract.outer_contains(o.ra_meas, o.dec_meas, config.border_deg) {
            objects.push(TractObject {
                object_id: t64 * OBJECT_ID_STRIDE + objects.len() as i64,
                truth_id: o.truth_id,
                ra: o.ra_meas,
                dec: o.dec_meas,
            });
            truth.push(o);
            offsets.push(tangent_offset(tract.ra_center, tract.dec_center, o.ra, o.dec));
        }
    }
    let side = grid_side(&tract, config.border_deg);
    let visits = config.visits_per_tract;
    let detectors = side * side;
    let raw = calibs(
        visits,
        detectors,
        t64 * VISIT_ID_STRIDE,
        tract.ra_center,
        tract.dec_center,
        mix(config.seed, &[tract_id as u64, STREAM_CALIB]),
    );
    let mut r = rng(mix(config.seed, &[tract_id as u64, STREAM_MJD]));
    let mjds: Vec<f64> = (0..visits).map(|v| MJD0 + v as f64 * VISIT_CADENCE_DAYS + r.random_range(0.0..0.3)).collect();
    let half = (side as f64 - 1.0) / 2.0;
    let dithers = (0..visits)
        .map(|v| {
            // Detector 0 sits at grid (-half, -half) from the dithered boresight.
            let [ra, dec] = raw[v * detectors].wcs.crval;
            let (dx, dy) = tangent_offset(tract.ra_center, tract.dec_center, ra, dec);
            (dx + half * DETECTOR_NX * PIXEL_DEG, dy + half * DETECTOR_NY * PIXEL_DEG)
        })
        .collect();
    let calibs = raw
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let v = i / detectors;
            VisitCalib {
                visit: c.visit,
                detector: c.detector,
                band: BANDS[v % BANDS.len()],
                mjd: mjds[v],
                calib_mean: c.calib_mean,
                calib_err: c.calib_err,
                wcs: c.wcs,
            }
        })
        .collect();
    TractCtx { tract: tract_id, seed: config.seed, side, objects, truth, offsets, calibs, dithers }
}

/// Simulates tract `tract` of the release, streaming its sources, DIA sources and forced
/// measurements to `sink` in (visit, object) order (visits simulated in parallel, a few at a
/// time); returns its objects and calibrations. Deterministic from (config, tract).
pub fn simulate_tract_into(config: &DrpConfig, sky: &TrueSky, tract: i32, sink: &mut impl TractSink) -> TractFrame {
    let ctx = tract_ctx(config, sky, tract);
    let t64 = tract as i64;
    let (mut next_source, mut next_dia) = (0i64, 0i64);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let visits: Vec<usize> = (0..config.visits_per_tract).collect();
    for chunk in visits.chunks(threads) {
        let rows: Vec<VisitRows> = std::thread::scope(|s| {
            let ctx = &ctx;
            let handles: Vec<_> = chunk.iter().map(|&v| s.spawn(move || ctx.visit_rows(v))).collect();
            handles.into_iter().map(|h| h.join().expect("a visit worker panicked")).collect()
        });
        for (v, mut rows) in chunk.iter().zip(rows) {
            for s in &mut rows.sources {
                s.source_id = t64 * SOURCE_ID_STRIDE + next_source;
                next_source += 1;
                sink.source(s);
            }
            for d in &mut rows.dia_sources {
                d.dia_source_id = t64 * SOURCE_ID_STRIDE + DIA_SOURCE_ID_OFFSET + next_dia;
                next_dia += 1;
                sink.dia_source(d);
            }
            for f in &rows.forced {
                sink.forced(f);
            }
            sink.visit_done(v + 1);
        }
    }
    TractFrame { objects: ctx.objects, calibs: ctx.calibs }
}

impl TractSink for TractOutput {
    fn source(&mut self, s: &DrpSource) {
        self.sources.push(*s);
    }
    fn dia_source(&mut self, d: &DrpDiaSource) {
        self.dia_sources.push(*d);
    }
    fn forced(&mut self, f: &RawForced) {
        self.forced.push(*f);
    }
}

/// Simulates tract `tract` of the release in memory.
pub fn simulate_tract(config: &DrpConfig, sky: &TrueSky, tract: i32) -> TractOutput {
    let mut out = TractOutput {
        objects: Vec::new(),
        calibs: Vec::new(),
        sources: Vec::new(),
        dia_sources: Vec::new(),
        forced: Vec::new(),
    };
    let frame = simulate_tract_into(config, sky, tract, &mut out);
    out.objects = frame.objects;
    out.calibs = frame.calibs;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skycat_core::sphere::sep_arcsec;
    use std::collections::HashMap;

    fn small() -> DrpConfig {
        DrpConfig { objects: 20_000, visits_per_tract: 6, seed: 7, ..DrpConfig::default() }
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
    }

    #[test]
    fn deterministic_and_independent_of_tract_order() {
        let c = DrpConfig { objects: 5_000, visits_per_tract: 4, ..small() };
        let sky = true_sky(&c);
        assert_eq!(sky, true_sky(&c));
        let ids = c.tract_ids();
        assert_eq!(ids.len(), 4);
        let last = *ids.last().unwrap();
        let alone = simulate_tract(&c, &sky, last);
        let mut after = None;
        for &t in &ids {
            let out = simulate_tract(&c, &sky, t);
            if t == last {
                after = Some(out);
            }
        }
        let after = after.unwrap();
        assert!(!alone.forced.is_empty() && !alone.sources.is_empty());
        // NaN != NaN: compare bit patterns through the Debug form.
        assert_eq!(format!("{alone:?}"), format!("{after:?}"));
        let other = true_sky(&DrpConfig { seed: 8, ..c.clone() });
        assert_ne!(sky.objects[0], other.objects[0]);
    }

    #[test]
    fn primary_copies_are_exact_and_overlaps_duplicate() {
        let c = small();
        let map = c.skymap();
        let sky = true_sky(&c);
        let ids = c.tract_ids();
        // tract -> truth ids it holds
        let mut holders: HashMap<i64, Vec<i32>> = HashMap::new();
        for &t in &ids {
            let frame = simulate_tract_into(
                &DrpConfig { visits_per_tract: 1, ..c.clone() },
                &sky,
                t,
                &mut TractOutput {
                    objects: vec![],
                    calibs: vec![],
                    sources: vec![],
                    dia_sources: vec![],
                    forced: vec![],
                },
            );
            for (k, o) in frame.objects.iter().enumerate() {
                assert_eq!(o.object_id, t as i64 * OBJECT_ID_STRIDE + k as i64);
                let truth = &sky.objects[o.truth_id as usize - 1];
                assert_eq!((o.ra, o.dec), (truth.ra_meas, truth.dec_meas), "one measured position");
                holders.entry(o.truth_id).or_default().push(t);
            }
        }
        let tracts: Vec<Tract> = ids.iter().map(|&t| map.tract(t).unwrap()).collect();
        let (mut in_release, mut outside, mut duplicated) = (0, 0, 0);
        for o in &sky.objects {
            let inner: Vec<i32> =
                tracts.iter().filter(|t| t.inner_contains(o.ra_meas, o.dec_meas)).map(|t| t.id).collect();
            let held = holders.get(&o.truth_id).cloned().unwrap_or_default();
            if held.len() >= 2 {
                duplicated += 1;
            }
            if o.in_release {
                in_release += 1;
                assert_eq!(inner, vec![o.primary_tract], "truth {}", o.truth_id);
                assert!(held.contains(&o.primary_tract), "truth {} not in its primary tract", o.truth_id);
            } else {
                outside += 1;
                assert!(inner.is_empty(), "truth {} is in {inner:?}", o.truth_id);
            }
        }
        eprintln!("tracts {ids:?}: {in_release} in release, {outside} outside, {duplicated} in >= 2 tracts");
        assert!(outside > 0 && in_release > outside);
        assert!(duplicated > sky.objects.len() / 50, "{duplicated}");
    }

    #[test]
    fn positions_map_back_and_centroid_pulls_are_unit() {
        let c = DrpConfig { objects: 10_000, ..small() };
        let sky = true_sky(&c);
        let t = c.tract_ids()[0];
        let out = simulate_tract(&c, &sky, t);
        let wcs: HashMap<(i64, i32), &VisitCalib> = out.calibs.iter().map(|c| ((c.visit, c.detector), c)).collect();
        let by_id: HashMap<i64, &TractObject> = out.objects.iter().map(|o| (o.object_id, o)).collect();
        let mut worst = 0.0f64;
        for f in &out.forced {
            let (ra, dec) = wcs[&(f.visit, f.detector)].wcs.pixel_to_sky(f.x, f.y);
            let o = by_id[&f.object_id];
            assert_eq!((f.ra, f.dec), (o.ra, o.dec));
            worst = worst.max(sep_arcsec(ra, dec, o.ra, o.dec));
        }
        assert!(worst < 1e-6, "{worst} arcsec");
        let mut pulls = Vec::new();
        for s in &out.sources {
            let truth = &sky.objects[by_id[&s.object_id].truth_id as usize - 1];
            let (x, y) = wcs[&(s.visit, s.detector)].wcs.sky_to_pixel(truth.ra, truth.dec);
            assert!((-0.5..DETECTOR_NX - 0.5).contains(&x) && (-0.5..DETECTOR_NY - 0.5).contains(&y));
            pulls.push((s.x - x) / s.x_err);
            pulls.push((s.y - y) / s.y_err);
        }
        let (m, sd) = mean_std(&pulls);
        eprintln!("{} forced, {} sources: pull mean {m:.4} std {sd:.4}", out.forced.len(), out.sources.len());
        assert!(pulls.len() > 10_000);
        assert!(m.abs() < 0.05 && (sd - 1.0).abs() < 0.1, "{m} {sd}");
    }

    #[test]
    fn flux_pulls_of_constant_objects_are_unit_normal() {
        let c = DrpConfig { objects: 10_000, ..small() };
        let sky = true_sky(&c);
        let t = c.tract_ids()[1];
        let out = simulate_tract(&c, &sky, t);
        let cal: HashMap<(i64, i32), &VisitCalib> = out.calibs.iter().map(|c| ((c.visit, c.detector), c)).collect();
        let truth: HashMap<i64, &TrueObject> =
            out.objects.iter().map(|o| (o.object_id, &sky.objects[o.truth_id as usize - 1])).collect();
        let band_index = |b: &str| BANDS.iter().position(|x| *x == b).unwrap();
        let (mut pulls, mut failed) = (Vec::new(), 0);
        for f in &out.forced {
            let o = truth[&f.object_id];
            if f.psf_inst_flux.is_nan() {
                assert!(f.psf_inst_flux_err.is_nan());
                failed += 1;
                continue;
            }
            if o.variable {
                continue;
            }
            let c = cal[&(f.visit, f.detector)];
            let want = o.flux[band_index(c.band)];
            pulls.push((f.psf_inst_flux * c.calib_mean - want) / (f.psf_inst_flux_err * c.calib_mean));
        }
        let (m, sd) = mean_std(&pulls);
        eprintln!("{} pulls: mean {m:.4} std {sd:.4}; {failed} failed", pulls.len());
        assert!(m.abs() < 0.05 && (sd - 1.0).abs() < 0.1, "{m} {sd}");
        let rate = failed as f64 / out.forced.len() as f64;
        assert!(rate > 0.0005 && rate < 0.005, "{rate}");
        // DIA sources belong to variable objects only.
        assert!(!out.dia_sources.is_empty());
        assert!(out.dia_sources.iter().all(|d| truth[&d.truth_object_id].variable));
    }

    struct Counter {
        sources: usize,
        dia_sources: usize,
        forced: usize,
        ids: Vec<i64>,
    }

    impl TractSink for Counter {
        fn source(&mut self, s: &DrpSource) {
            self.sources += 1;
            self.ids.push(s.source_id);
        }
        fn dia_source(&mut self, d: &DrpDiaSource) {
            self.dia_sources += 1;
            self.ids.push(d.dia_source_id);
        }
        fn forced(&mut self, _: &RawForced) {
            self.forced += 1;
        }
    }

    #[test]
    fn default_sizes() {
        let c = DrpConfig::default();
        let sky = true_sky(&c);
        let mut n = Counter { sources: 0, dia_sources: 0, forced: 0, ids: Vec::new() };
        let mut objects = 0;
        for t in c.tract_ids() {
            let f = simulate_tract_into(&c, &sky, t, &mut n);
            objects += f.objects.len();
            assert_eq!(f.calibs.len() % c.visits_per_tract, 0);
            let per_visit = f.calibs.len() / c.visits_per_tract;
            assert_eq!((per_visit as f64).sqrt().round().powi(2) as usize, per_visit, "a square grid");
        }
        eprintln!(
            "tracts {:?}: {objects} tract objects, {} forced, {} sources, {} DIA sources",
            c.tract_ids(),
            n.forced,
            n.sources,
            n.dia_sources
        );
        assert!(objects > 70_000 && objects < 130_000, "{objects}");
        assert!(n.forced > 1_500_000 && n.forced < 3_500_000, "{}", n.forced);
        assert!(n.sources > n.forced / 2 && n.sources < n.forced, "{}", n.sources);
        assert!(n.dia_sources > 1000 && n.dia_sources < n.forced / 10, "{}", n.dia_sources);
        let total = n.ids.len();
        n.ids.sort_unstable();
        n.ids.dedup();
        assert_eq!(n.ids.len(), total, "source and DIA source ids unique in the release");
    }
}
