//! A simulated night of the Association Pipeline's inputs, with the truth to score it.
//!
//! - a static sky of objects in a region (uniform, with a magnitude-like flux distribution),
//!   a fraction of them variable;
//! - moving objects on great-circle tracks, and MOPS's predicted positions per visit (the true
//!   position plus a prediction error);
//! - a night of visits (one visit = a pair of exposures): fields on an overlapping grid, each
//!   visited twice in a block about half an hour apart, sometimes twice in a row (consecutive
//!   visits of one field), one band per block;
//! - per visit the DIASources a difference-imaging pipeline emits: variable objects at their
//!   positions with astrometric and flux noise, transients (new objects that recur at the same
//!   place on later visits), moving-object detections and artefacts ("junk"), each with the
//!   class id the detection pipeline would give it.
//!
//! - per visit the exposure metadata image processing writes with it ([`visit_exposures`]):
//!   the visit, its two snaps (FPA_Exposure, FPAExposure2Visit), one row per CCD per snap
//!   (CCD_Exposure, 189 science CCDs) and one per amplifier (AmpExposure, 16 per CCD).
//!
//! Class ids (the rows `skycat.ap_create` puts in `source_classification`): 1 variable and
//! 2 transient (route 'object'), 3 moving (route 'mops'), 4 artefact (route 'junk').

use rand::seq::index::sample;
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use skycat_core::sphere::{offset_deg, sep_deg};

use crate::sky::{displace, point_in_cap, rng};
use crate::BANDS;

pub const CLASS_VARIABLE: i32 = 1;
pub const CLASS_TRANSIENT: i32 = 2;
pub const CLASS_MOVING: i32 = 3;
pub const CLASS_ARTEFACT: i32 = 4;
/// First id of objects created by the pipeline is above every simulated object id; transient
/// truth ids are in their own range so they never collide with static object ids.
pub const TRANSIENT_ID0: i64 = 1_000_000_000_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct NightConfig {
    pub seed: u64,
    /// Static objects in the region.
    pub objects: usize,
    /// The region: ra in [ra_min, ra_max), dec in [dec_min, dec_max] (degrees).
    pub ra_min: f64,
    pub ra_max: f64,
    pub dec_min: f64,
    pub dec_max: f64,
    /// Fraction of static objects that vary (only those are detected in difference images).
    pub variable_fraction: f64,
    pub visits: usize,
    /// DIASources per visit (about; the mix below).
    pub sources_per_visit: usize,
    pub fov_radius_deg: f64,
    /// 1-sigma astrometric noise of a detection per axis (arcsec).
    pub noise_arcsec: f64,
    /// Mix of a visit's sources: transients, moving-object detections, artefacts; the rest are
    /// variable-object detections.
    pub transient_fraction: f64,
    pub moving_fraction: f64,
    pub artefact_fraction: f64,
    /// 1-sigma error of MOPS's predicted positions per axis (arcsec).
    pub prediction_error_arcsec: f64,
    /// MJD of the first visit, and seconds between visits (DC2: 37 s).
    pub mjd0: f64,
    pub visit_seconds: f64,
    /// Fields per block: each block visits its fields in order, then again.
    pub fields_per_block: usize,
    /// A transient recurs during this many visits of the night after its first (0: all night).
    pub transient_lifetime_visits: usize,
    /// Only this many fields of the grid, spread over it (0: the whole grid). With as many
    /// fields per block, the night revisits them again and again: each has a long history by
    /// the end (how a visit's cost grows with the history is measured on such a night).
    pub fields: usize,
}

impl Default for NightConfig {
    fn default() -> Self {
        NightConfig {
            seed: 1,
            objects: 200_000,
            ra_min: 30.0,
            ra_max: 40.0,
            dec_min: -5.0,
            dec_max: 5.0,
            variable_fraction: 0.2,
            visits: 30,
            sources_per_visit: 2_000,
            fov_radius_deg: 1.75,
            noise_arcsec: 0.1,
            transient_fraction: 0.04,
            moving_fraction: 0.03,
            artefact_fraction: 0.03,
            prediction_error_arcsec: 0.2,
            mjd0: 61_000.1,
            visit_seconds: 37.0,
            fields_per_block: 5,
            fields: 0,
            transient_lifetime_visits: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaticObject {
    pub object_id: i64,
    pub ra: f64,
    pub dec: f64,
    pub variable: bool,
    /// Mean flux (nJy), log-normal: many faint, few bright objects.
    pub flux: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovingObject {
    pub moving_object_id: i64,
    /// Position at `mjd0`, direction (position angle, deg) and rate (deg/day) of the track.
    pub ra0: f64,
    pub dec0: f64,
    pub pa_deg: f64,
    pub rate_deg_per_day: f64,
    pub mjd0: f64,
}

impl MovingObject {
    /// The true position at `mjd` (along the great circle through the start position).
    pub fn position(&self, mjd: f64) -> (f64, f64) {
        offset_deg(self.ra0, self.dec0, self.rate_deg_per_day * (mjd - self.mjd0), self.pa_deg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visit {
    pub visit: i64,
    pub ra: f64,
    pub dec: f64,
    pub mjd: f64,
    pub band: &'static str,
}

/// What a DIASource really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    /// A detection of static object `object_id`.
    Object(i64),
    /// A detection of transient number `id` (ids from [`TRANSIENT_ID0`]); its first detection
    /// should create an object that later detections associate with.
    Transient(i64),
    Moving(i64),
    Artefact,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiaSource {
    pub dia_source_id: i64,
    pub visit: i64,
    pub detector: i32,
    pub ra: f64,
    pub dec: f64,
    pub ra_err_arcsec: f64,
    pub dec_err_arcsec: f64,
    pub mjd: f64,
    pub band: &'static str,
    pub psf_flux: f64,
    pub psf_flux_err: f64,
    pub snr: f64,
    pub class_id: i32,
    pub truth: Truth,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MopsPred {
    pub moving_object_id: i64,
    pub visit: i64,
    pub ra: f64,
    pub dec: f64,
    pub ra_err_arcsec: f64,
    pub dec_err_arcsec: f64,
    pub mjd: f64,
}

/// The simulated night: the catalogs before it starts and, per visit, the inputs.
pub struct Night {
    pub config: NightConfig,
    /// Sorted by dec (for FOV lookups).
    pub objects: Vec<StaticObject>,
    pub moving: Vec<MovingObject>,
    pub visits: Vec<Visit>,
    /// Per visit (same order as `visits`).
    pub sources: Vec<Vec<DiaSource>>,
    pub predictions: Vec<Vec<MopsPred>>,
}

/// Indices of `objects` (sorted by dec) within `radius_deg` of (ra, dec).
pub fn in_fov(objects: &[StaticObject], ra: f64, dec: f64, radius_deg: f64) -> Vec<usize> {
    let lo = objects.partition_point(|o| o.dec < dec - radius_deg);
    let hi = objects.partition_point(|o| o.dec <= dec + radius_deg);
    (lo..hi).filter(|&i| sep_deg(ra, dec, objects[i].ra, objects[i].dec) <= radius_deg).collect()
}

/// The field centres: an overlapping grid over the region (spacing 1.6 FOV radii, so
/// neighbouring fields share about a quarter of their area, as survey pointings do).
fn field_grid(c: &NightConfig) -> Vec<(f64, f64)> {
    let step = 1.6 * c.fov_radius_deg;
    let mut fields = Vec::new();
    let mut dec = c.dec_min + c.fov_radius_deg * 0.8;
    while dec <= c.dec_max - c.fov_radius_deg * 0.8 + 1e-9 || fields.is_empty() {
        let d = dec.min(c.dec_max);
        let ra_step = step / d.to_radians().cos().max(0.1);
        let mut ra = c.ra_min + c.fov_radius_deg * 0.8;
        let mut row = 0;
        while ra <= c.ra_max - c.fov_radius_deg * 0.8 + 1e-9 || row == 0 {
            fields.push((ra.min(c.ra_max), d));
            ra += ra_step;
            row += 1;
        }
        dec += step;
    }
    fields
}

/// The visit sequence: blocks of `fields_per_block` fields, each block visited twice in the
/// same order (the pair that finds moving objects); the second of every three blocks starts with its first
/// field twice in a row, so consecutive visits of one field occur.
fn schedule(c: &NightConfig, r: &mut impl Rng) -> Vec<Visit> {
    let grid = field_grid(c);
    let fields: Vec<(f64, f64)> = match c.fields {
        0 => grid,
        n => (0..n.min(grid.len())).map(|k| grid[k * grid.len() / n.min(grid.len())]).collect(),
    };
    let mut visits = Vec::with_capacity(c.visits);
    let mut block = 0usize;
    while visits.len() < c.visits {
        let band = BANDS[1 + block % 5];
        let start = r.random_range(0..fields.len());
        let picked: Vec<(f64, f64)> =
            (0..c.fields_per_block.max(1)).map(|k| fields[(start + k * 7) % fields.len()]).collect();
        let mut order: Vec<(f64, f64)> = picked.iter().chain(picked.iter()).copied().collect();
        if block % 3 == 1 {
            order.insert(0, picked[0]);
        }
        for (ra, dec) in order {
            if visits.len() == c.visits {
                break;
            }
            let n = visits.len() as i64;
            visits.push(Visit { visit: 1000 + n, ra, dec, mjd: c.mjd0 + n as f64 * c.visit_seconds / 86400.0, band });
        }
        block += 1;
    }
    visits
}

/// Simulates the night. Deterministic from `config.seed`.
pub fn simulate(config: &NightConfig) -> Night {
    let c = config.clone();
    let mut r = rng(c.seed);
    let flux_dist = LogNormal::new(8.0, 1.2).expect("valid");
    let unit = Normal::new(0.0, 1.0).expect("valid");

    // The static sky, uniform in the region (uniform in sin(dec)).
    let (s0, s1) = (c.dec_min.to_radians().sin(), c.dec_max.to_radians().sin());
    let mut objects: Vec<StaticObject> = (0..c.objects)
        .map(|i| StaticObject {
            object_id: i as i64 + 1,
            ra: r.random_range(c.ra_min..c.ra_max),
            dec: r.random_range(s0..s1).asin().to_degrees(),
            variable: r.random::<f64>() < c.variable_fraction,
            flux: flux_dist.sample(&mut r),
        })
        .collect();
    objects.sort_by(|a, b| a.dec.total_cmp(&b.dec).then(a.object_id.cmp(&b.object_id)));

    let visits = schedule(&c, &mut r);

    // Moving objects: enough that a visit sees about moving_fraction * sources_per_visit.
    let area = (c.ra_max - c.ra_min).to_radians() * (s1 - s0) * (180.0 / std::f64::consts::PI).powi(2);
    let fov_area = std::f64::consts::PI * c.fov_radius_deg.powi(2);
    let n_moving = ((c.moving_fraction * c.sources_per_visit as f64) * area / fov_area).ceil() as usize;
    let moving: Vec<MovingObject> = (0..n_moving)
        .map(|i| MovingObject {
            moving_object_id: i as i64 + 1,
            ra0: r.random_range(c.ra_min..c.ra_max),
            dec0: r.random_range(s0..s1).asin().to_degrees(),
            pa_deg: r.random_range(0.0..360.0),
            rate_deg_per_day: r.random_range(0.05..1.0),
            mjd0: c.mjd0,
        })
        .collect();

    let cos_fov = c.fov_radius_deg.to_radians().cos();
    let mut transients: Vec<(i64, f64, f64, usize)> = Vec::new(); // (truth id, ra, dec, first visit)
    let mut sources = Vec::with_capacity(visits.len());
    let mut predictions = Vec::with_capacity(visits.len());
    for (vi, v) in visits.iter().enumerate() {
        let mut out: Vec<DiaSource> = Vec::new();
        let mut next_id = v.visit * 1_000_000;
        let mut push = |out: &mut Vec<DiaSource>,
                        ra: f64,
                        dec: f64,
                        flux: f64,
                        class_id: i32,
                        truth: Truth,
                        r: &mut rand_chacha::ChaCha8Rng| {
            let (ra, dec) = displace(ra, dec, c.noise_arcsec, c.noise_arcsec, &unit, r);
            let err = (flux.abs() + 2500.0).sqrt();
            let f = flux + err * unit.sample(r);
            out.push(DiaSource {
                dia_source_id: next_id,
                visit: v.visit,
                detector: r.random_range(0..189),
                ra,
                dec,
                ra_err_arcsec: c.noise_arcsec,
                dec_err_arcsec: c.noise_arcsec,
                mjd: v.mjd,
                band: v.band,
                psf_flux: f,
                psf_flux_err: err,
                snr: f.abs() / err,
                class_id,
                truth,
            });
            next_id += 1;
        };
        let target = c.sources_per_visit as f64;

        // Variable objects in the field, a random subset as many as the mix asks for.
        let variables: Vec<usize> =
            in_fov(&objects, v.ra, v.dec, c.fov_radius_deg).into_iter().filter(|&i| objects[i].variable).collect();
        let want = (target * (1.0 - c.transient_fraction - c.moving_fraction - c.artefact_fraction)).round() as usize;
        let mut picked: Vec<usize> =
            sample(&mut r, variables.len(), want.min(variables.len())).into_iter().map(|k| variables[k]).collect();
        picked.sort_unstable();
        for i in picked {
            let o = objects[i];
            let amp = o.flux * r.random_range(0.1..1.0) * if r.random::<bool>() { 1.0 } else { -1.0 };
            push(&mut out, o.ra, o.dec, amp, CLASS_VARIABLE, Truth::Object(o.object_id), &mut r);
        }

        // Transients seen before in this field recur (80%) while they last; new ones appear.
        for &(id, ra, dec, first) in &transients {
            let alive = c.transient_lifetime_visits == 0 || vi - first < c.transient_lifetime_visits;
            if alive && sep_deg(ra, dec, v.ra, v.dec) <= c.fov_radius_deg && r.random::<f64>() < 0.8 {
                let flux = flux_dist.sample(&mut r);
                push(&mut out, ra, dec, flux, CLASS_TRANSIENT, Truth::Transient(id), &mut r);
            }
        }
        for _ in 0..(target * c.transient_fraction).round() as usize {
            let (ra, dec) = point_in_cap(v.ra, v.dec, cos_fov, &mut r);
            let id = TRANSIENT_ID0 + transients.len() as i64;
            transients.push((id, ra, dec, vi));
            let flux = flux_dist.sample(&mut r);
            push(&mut out, ra, dec, flux, CLASS_TRANSIENT, Truth::Transient(id), &mut r);
        }

        // Moving objects in the field: detected 90% of the time; MOPS predicts every one.
        let mut preds = Vec::new();
        for m in &moving {
            let (ra, dec) = m.position(v.mjd);
            if sep_deg(ra, dec, v.ra, v.dec) > c.fov_radius_deg {
                continue;
            }
            let (pra, pdec) = displace(ra, dec, c.prediction_error_arcsec, c.prediction_error_arcsec, &unit, &mut r);
            preds.push(MopsPred {
                moving_object_id: m.moving_object_id,
                visit: v.visit,
                ra: pra,
                dec: pdec,
                ra_err_arcsec: c.prediction_error_arcsec,
                dec_err_arcsec: c.prediction_error_arcsec,
                mjd: v.mjd,
            });
            if r.random::<f64>() < 0.9 {
                let flux = flux_dist.sample(&mut r);
                push(&mut out, ra, dec, flux, CLASS_MOVING, Truth::Moving(m.moving_object_id), &mut r);
            }
        }

        // Artefacts anywhere in the field.
        for _ in 0..(target * c.artefact_fraction).round() as usize {
            let (ra, dec) = point_in_cap(v.ra, v.dec, cos_fov, &mut r);
            let flux = 500.0 * unit.sample(&mut r);
            push(&mut out, ra, dec, flux, CLASS_ARTEFACT, Truth::Artefact, &mut r);
        }
        sources.push(out);
        predictions.push(preds);
    }
    Night { config: c, objects, moving, visits, sources, predictions }
}

/// Snaps (exposures) per visit: LSST takes a visit as a pair of back-to-back exposures.
pub const SNAPS_PER_VISIT: i64 = 2;
/// Exposure time of one snap (s).
pub const SNAP_EXP_TIME_S: f64 = 15.0;
/// Seconds from the start of one snap to the start of the next (exposure + readout).
pub const SNAP_CADENCE_S: f64 = 17.0;
/// Science CCDs of the LSST camera: 21 rafts (a 5 x 5 grid without its corners) of 3 x 3.
pub const CCDS: i32 = 189;
/// Amplifiers (readout segments) per CCD.
pub const AMPS_PER_CCD: i32 = 16;
/// Centre-to-centre distance of neighbouring CCDs and of neighbouring rafts on the sky (deg):
/// 42.25 mm and 127 mm at the plate scale of 0.2 arcsec per 10 um pixel.
const CCD_PITCH_DEG: f64 = 42.25 * 20.0 / 3600.0;
const RAFT_PITCH_DEG: f64 = 127.0 * 20.0 / 3600.0;

/// One exposure of the focal plane (LSST's FPA_Exposure): a snap of a visit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpaExposure {
    pub exposure_id: i64,
    pub ra: f64,
    pub dec: f64,
    /// Start of the exposure.
    pub mjd: f64,
    pub band: &'static str,
    pub exp_time: f64,
}

/// Which visit an exposure belongs to (LSST's FPAExposure2Visit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpaExposureToVisit {
    pub exposure_id: i64,
    pub visit: i64,
}

/// One CCD of one exposure (LSST's CCD_Exposure): where the CCD's centre points and what the
/// image processing measured on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CcdExposure {
    pub exposure_id: i64,
    /// LSST detector number, 0..188 (raft by raft, 9 CCDs each).
    pub ccd: i32,
    pub ra: f64,
    pub dec: f64,
    /// Photometric zero point (AB mag of 1 count per second).
    pub zero_point: f64,
    /// PSF FWHM (arcsec).
    pub seeing_arcsec: f64,
    /// Median sky level (counts per pixel).
    pub sky_background: f64,
}

/// One amplifier of one CCD of one exposure (LSST's AmpExposure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmpExposure {
    pub exposure_id: i64,
    pub ccd: i32,
    /// 0..15.
    pub amp: i32,
    /// e- per ADU.
    pub gain: f64,
    /// e- rms.
    pub read_noise: f64,
    /// Overscan level (ADU).
    pub bias_level: f64,
}

/// What image processing writes for one visit besides its DIASources: the visit row, its two
/// exposures and their link to the visit, one row per CCD per exposure and one per amplifier
/// per CCD per exposure. Every list is sorted by its primary key.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitExposures {
    pub visit: Visit,
    pub fpa: Vec<FpaExposure>,
    pub to_visit: Vec<FpaExposureToVisit>,
    pub ccds: Vec<CcdExposure>,
    pub amps: Vec<AmpExposure>,
}

impl VisitExposures {
    /// Rows of the five kinds together (what ingesting the visit inserts).
    pub fn rows(&self) -> usize {
        1 + self.fpa.len() + self.to_visit.len() + self.ccds.len() + self.amps.len()
    }
}

/// The id of snap `snap` (0 or 1) of `visit`: `visit * 2 + snap`.
pub fn exposure_id(visit: i64, snap: i64) -> i64 {
    visit * SNAPS_PER_VISIT + snap
}

/// The centre of CCD `ccd` relative to the boresight (deg towards east, deg towards north).
/// Rafts are numbered row by row from the south-west over the 5 x 5 grid without its corners,
/// CCDs row by row within their raft (LSST's R01 S00 = detector 0 ... R43 S22 = 188).
pub fn ccd_offset_deg(ccd: i32) -> (f64, f64) {
    let rafts: Vec<(i32, i32)> = (0..5)
        .flat_map(|ry| (0..5).map(move |rx| (rx, ry)))
        .filter(|&(rx, ry)| !((rx == 0 || rx == 4) && (ry == 0 || ry == 4)))
        .collect();
    let (rx, ry) = rafts[(ccd / 9) as usize];
    let (sx, sy) = (ccd % 9 % 3, ccd % 9 / 3);
    let x = f64::from(rx - 2) * RAFT_PITCH_DEG + f64::from(sx - 1) * CCD_PITCH_DEG;
    let y = f64::from(ry - 2) * RAFT_PITCH_DEG + f64::from(sy - 1) * CCD_PITCH_DEG;
    (x, y)
}

/// A seed for one purpose of one visit: SplitMix64 of the night's seed, the visit and a tag,
/// so the exposure metadata does not draw from (and never changes) the night's own stream.
fn sub_seed(seed: u64, visit: i64, tag: u64) -> u64 {
    let mut z = seed ^ (visit as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tag.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The exposure metadata of visit `v` of a night simulated with `seed`: deterministic from the
/// seed and the visit alone (the truth an ingest of the visit's files must reproduce).
///
/// Two snaps of 15 s, the second 17 s after the first, both at the visit's pointing and band;
/// per CCD its centre's position, a zero point (per-band value, the exposure's transparency,
/// the CCD's fixed response), the seeing (the exposure's, worse towards the edge) and the sky
/// level; per amplifier its fixed gain and read noise and the exposure's bias level.
pub fn visit_exposures(seed: u64, v: &Visit) -> VisitExposures {
    const CAMERA: u64 = 1;
    const EXPOSURE: u64 = 2;
    let unit = Normal::new(0.0, 1.0).expect("valid");
    let band_index = BANDS.iter().position(|b| *b == v.band).unwrap_or(2);
    let zp_band = [26.52, 28.51, 28.36, 28.17, 27.78, 26.82][band_index];
    let sky_band = [22.0, 95.0, 190.0, 320.0, 470.0, 520.0][band_index];

    // The camera: per CCD a response offset, per amplifier gain, read noise and bias (fixed for
    // the night, so the same in every exposure).
    let mut cam = rng(sub_seed(seed, 0, CAMERA));
    let ccd_response: Vec<f64> = (0..CCDS).map(|_| 0.01 * unit.sample(&mut cam)).collect();
    let amp_consts: Vec<(f64, f64, f64)> = (0..CCDS * AMPS_PER_CCD)
        .map(|_| {
            let gain = 1.6 + 0.08 * unit.sample(&mut cam);
            let read_noise = (6.0 + 0.8 * unit.sample(&mut cam)).max(3.0);
            let bias = 20_000.0 + 1_500.0 * unit.sample(&mut cam);
            (gain, read_noise, bias)
        })
        .collect();

    let mut fpa = Vec::new();
    let mut to_visit = Vec::new();
    let mut ccds = Vec::with_capacity((SNAPS_PER_VISIT * CCDS as i64) as usize);
    let mut amps = Vec::with_capacity((SNAPS_PER_VISIT * (CCDS * AMPS_PER_CCD) as i64) as usize);
    for snap in 0..SNAPS_PER_VISIT {
        let id = exposure_id(v.visit, snap);
        let mut r = rng(sub_seed(seed, v.visit, EXPOSURE + snap as u64));
        fpa.push(FpaExposure {
            exposure_id: id,
            ra: v.ra,
            dec: v.dec,
            mjd: v.mjd + snap as f64 * SNAP_CADENCE_S / 86_400.0,
            band: v.band,
            exp_time: SNAP_EXP_TIME_S,
        });
        to_visit.push(FpaExposureToVisit { exposure_id: id, visit: v.visit });
        // Clouds only take light away; the seeing is log-normal around 0.7 arcsec.
        let transparency = -(0.04 * unit.sample(&mut r)).abs();
        let seeing = 0.7 * (0.2 * unit.sample(&mut r)).exp();
        let sky = sky_band * (1.0 + r.random_range(0.0..0.3));
        for ccd in 0..CCDS {
            let (x, y) = ccd_offset_deg(ccd);
            let (ra, dec) = offset_deg(v.ra, v.dec, x.hypot(y), x.atan2(y).to_degrees());
            let edge = (x * x + y * y) / (1.75 * 1.75);
            ccds.push(CcdExposure {
                exposure_id: id,
                ccd,
                ra,
                dec,
                zero_point: zp_band + transparency + ccd_response[ccd as usize] + 0.003 * unit.sample(&mut r),
                seeing_arcsec: seeing * (1.0 + 0.05 * edge) * (1.0 + 0.02 * unit.sample(&mut r)),
                sky_background: sky * (1.0 + 0.02 * unit.sample(&mut r)),
            });
            for amp in 0..AMPS_PER_CCD {
                let (gain, read_noise, bias) = amp_consts[(ccd * AMPS_PER_CCD + amp) as usize];
                amps.push(AmpExposure {
                    exposure_id: id,
                    ccd,
                    amp,
                    gain,
                    read_noise,
                    bias_level: bias + 2.0 * unit.sample(&mut r),
                });
            }
        }
    }
    VisitExposures { visit: *v, fpa, to_visit, ccds, amps }
}

impl Night {
    /// The exposure metadata of visit `v` (see [`visit_exposures`]).
    pub fn exposures(&self, v: &Visit) -> VisitExposures {
        visit_exposures(self.config.seed, v)
    }
}

/// Writes the night as CSV files for `COPY ... FROM` (no headers) into `dir`:
/// - `object.csv`: object_id, ra, dec, variable, flux (the catalog before the night);
/// - `moving_object.csv`: moving_object_id, ra, dec (at the first visit), rate_deg_per_day;
/// - `visit.csv`: visit, ra, dec, mjd, band;
/// - `dia_source_new.csv`: the columns of `ap.dia_source_new` in SQL-API order, every visit;
/// - `mops_pred.csv`: the columns of `ap.mops_pred`;
/// - `truth.csv`: dia_source_id, kind (object | transient | moving | artefact), truth id.
///
/// `progress` is called after each visit with the number of visits written.
pub fn write_csv(night: &Night, dir: &std::path::Path, mut progress: impl FnMut(usize)) -> std::io::Result<()> {
    use crate::csv_f64 as f;
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join(name))?))
    };
    let mut w = open("object.csv")?;
    for o in &night.objects {
        writeln!(w, "{},{},{},{},{}", o.object_id, f(o.ra), f(o.dec), o.variable, f(o.flux))?;
    }
    w.flush()?;
    let mut w = open("moving_object.csv")?;
    for m in &night.moving {
        let (ra, dec) = m.position(night.config.mjd0);
        writeln!(w, "{},{},{},{}", m.moving_object_id, f(ra), f(dec), f(m.rate_deg_per_day))?;
    }
    w.flush()?;
    let mut w = open("visit.csv")?;
    for v in &night.visits {
        writeln!(w, "{},{},{},{},{}", v.visit, f(v.ra), f(v.dec), f(v.mjd), v.band)?;
    }
    w.flush()?;
    let (mut src, mut pred, mut truth) = (open("dia_source_new.csv")?, open("mops_pred.csv")?, open("truth.csv")?);
    for (k, (sources, preds)) in night.sources.iter().zip(&night.predictions).enumerate() {
        for d in sources {
            write_dia_source_csv(&mut src, d)?;
            write_truth_csv(&mut truth, d)?;
        }
        for p in preds {
            writeln!(
                pred,
                "{},{},{},{},{},{},{}",
                p.moving_object_id,
                p.visit,
                f(p.ra),
                f(p.dec),
                f(p.ra_err_arcsec),
                f(p.dec_err_arcsec),
                f(p.mjd)
            )?;
        }
        progress(k + 1);
    }
    src.flush()?;
    pred.flush()?;
    truth.flush()
}

/// One DIASource as a CSV line in `ap.dia_source_new`'s column order.
pub fn write_dia_source_csv<W: std::io::Write + ?Sized>(w: &mut W, d: &DiaSource) -> std::io::Result<()> {
    use crate::csv_f64 as f;
    writeln!(
        w,
        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
        d.dia_source_id,
        d.visit,
        d.detector,
        f(d.ra),
        f(d.dec),
        f(d.ra_err_arcsec),
        f(d.dec_err_arcsec),
        f(d.mjd),
        d.band,
        f(d.psf_flux),
        f(d.psf_flux_err),
        f(d.snr),
        d.class_id
    )
}

/// The truth of one DIASource as a CSV line: dia_source_id, kind, truth id (empty for artefacts).
pub fn write_truth_csv<W: std::io::Write + ?Sized>(w: &mut W, d: &DiaSource) -> std::io::Result<()> {
    let (kind, id) = match d.truth {
        Truth::Object(id) => ("object", id.to_string()),
        Truth::Transient(id) => ("transient", id.to_string()),
        Truth::Moving(id) => ("moving", id.to_string()),
        Truth::Artefact => ("artefact", String::new()),
    };
    writeln!(w, "{},{kind},{id}", d.dia_source_id)
}

/// The command-line options that shape a night, shared by `skycat-sim night` and
/// `skycat-ap night` (flattened into their clap commands).
#[derive(clap::Args, Debug, Clone)]
pub struct NightArgs {
    #[arg(long, default_value_t = 200_000)]
    pub objects: usize,
    #[arg(long, default_value_t = 30)]
    pub visits: usize,
    #[arg(long, default_value_t = 2_000)]
    pub sources_per_visit: usize,
    /// The sky region: ra_min,ra_max,dec_min,dec_max in degrees.
    #[arg(long, value_delimiter = ',', default_values_t = [30.0, 40.0, -5.0, 5.0])]
    pub region: Vec<f64>,
    /// Fraction of objects that vary (only those are detected: a visit's DIASources are at most
    /// this fraction of the field's objects, plus transients, movers and artefacts).
    #[arg(long, default_value_t = 0.2)]
    pub variable_fraction: f64,
    #[arg(long, default_value_t = 0.1)]
    pub noise_arcsec: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Visit only this many fields of the grid, spread over it, again and again (0: the whole
    /// grid, blocks of 5 fields): `--fields 2 --visits 205` gives each field 100 prior visits.
    #[arg(long, default_value_t = 0)]
    pub fields: usize,
    /// A transient recurs during this many visits after its first (0: all night). Bounds the
    /// DIASources per visit of a night that revisits its fields again and again.
    #[arg(long, default_value_t = 0)]
    pub transient_lifetime: usize,
}

impl NightArgs {
    /// The simulation's configuration (defaults for what the options do not set).
    pub fn config(&self) -> Result<NightConfig, String> {
        let [ra_min, ra_max, dec_min, dec_max] = self.region[..] else {
            return Err("--region takes ra_min,ra_max,dec_min,dec_max".into());
        };
        Ok(NightConfig {
            seed: self.seed,
            objects: self.objects,
            visits: self.visits,
            sources_per_visit: self.sources_per_visit,
            ra_min,
            ra_max,
            dec_min,
            dec_max,
            variable_fraction: self.variable_fraction,
            noise_arcsec: self.noise_arcsec,
            fields: self.fields,
            transient_lifetime_visits: self.transient_lifetime,
            fields_per_block: if self.fields > 0 { self.fields } else { NightConfig::default().fields_per_block },
            ..NightConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skycat_core::sphere::sep_arcsec;

    fn small() -> NightConfig {
        NightConfig { objects: 50_000, visits: 12, sources_per_visit: 500, ..NightConfig::default() }
    }

    #[test]
    fn a_night_of_two_fields_revisits_them() {
        let c = NightConfig { visits: 41, fields: 2, fields_per_block: 2, ..small() };
        let v = schedule(&c, &mut rng(1));
        let mut centres: Vec<(f64, f64)> = v.iter().map(|v| (v.ra, v.dec)).collect();
        centres.sort_by(|a, b| a.partial_cmp(b).unwrap());
        centres.dedup();
        assert_eq!(centres.len(), 2, "two fields");
        let first = v.iter().filter(|x| (x.ra, x.dec) == centres[0]).count();
        assert!((19..=22).contains(&first), "each visited about half the time: {first} of 41");
        let d = sep_arcsec(centres[0].0, centres[0].1, centres[1].0, centres[1].1) / 3600.0;
        assert!(d > 2.0 * c.fov_radius_deg, "the fields do not overlap ({d} deg)");
    }

    #[test]
    fn deterministic_and_sized() {
        let a = simulate(&small());
        let b = simulate(&small());
        assert_eq!(a.sources, b.sources);
        assert_eq!(a.visits.len(), 12);
        for (v, s) in a.visits.iter().zip(&a.sources) {
            // The variable share is capped by the variables in the field; the rest is exact.
            assert!(s.len() > 350 && s.len() < 700, "visit {} has {} sources", v.visit, s.len());
            for d in s {
                assert_eq!(d.visit, v.visit);
                // Everything lies in the field (noise of 0.1 arcsec aside).
                assert!(sep_arcsec(d.ra, d.dec, v.ra, v.dec) <= v_radius_arcsec(&a) + 1.0);
            }
        }
        let mut ids: Vec<i64> = a.sources.iter().flatten().map(|d| d.dia_source_id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "dia_source_id unique");
    }

    fn v_radius_arcsec(n: &Night) -> f64 {
        n.config.fov_radius_deg * 3600.0
    }

    #[test]
    fn detections_sit_at_their_truth_within_the_noise() {
        let n = simulate(&small());
        let by_id: std::collections::HashMap<i64, StaticObject> = n.objects.iter().map(|o| (o.object_id, *o)).collect();
        let seps: Vec<f64> = n
            .sources
            .iter()
            .flatten()
            .filter_map(|d| match d.truth {
                Truth::Object(id) => Some(sep_arcsec(d.ra, d.dec, by_id[&id].ra, by_id[&id].dec)),
                _ => None,
            })
            .collect();
        assert!(seps.len() > 1000);
        // Rayleigh with sigma 0.1 arcsec: mean sigma * sqrt(pi/2) = 0.125.
        let mean = seps.iter().sum::<f64>() / seps.len() as f64;
        assert!((mean - 0.1253).abs() < 0.01, "mean separation {mean}");
        assert!(seps.iter().all(|s| *s < 0.7), "no detection beyond 7 sigma");
    }

    #[test]
    fn consecutive_visits_of_one_field_and_pairs() {
        let n = simulate(&small());
        let same = n.visits.windows(2).filter(|w| (w[0].ra, w[0].dec) == (w[1].ra, w[1].dec)).count();
        assert!(same >= 1, "some field is visited twice in a row");
        // Transients recur: some transient truth id is seen in two visits.
        let mut seen = std::collections::HashMap::new();
        for d in n.sources.iter().flatten() {
            if let Truth::Transient(id) = d.truth {
                *seen.entry(id).or_insert(0) += 1;
            }
        }
        assert!(seen.values().any(|&k| k >= 2));
    }

    #[test]
    fn exposures_of_a_visit() {
        let n = simulate(&small());
        let v = n.visits[3];
        let e = n.exposures(&v);
        assert_eq!(e, n.exposures(&v), "deterministic");
        assert_eq!(e.visit, v);
        let ids = [v.visit * 2, v.visit * 2 + 1];
        assert_eq!(e.fpa.iter().map(|x| x.exposure_id).collect::<Vec<_>>(), ids);
        assert_eq!(e.to_visit, ids.map(|exposure_id| FpaExposureToVisit { exposure_id, visit: v.visit }));
        for (k, x) in e.fpa.iter().enumerate() {
            assert_eq!((x.ra, x.dec, x.band, x.exp_time), (v.ra, v.dec, v.band, SNAP_EXP_TIME_S));
            assert!((x.mjd - v.mjd - k as f64 * 17.0 / 86400.0).abs() < 1e-9);
        }
        assert_eq!(e.ccds.len(), 2 * 189);
        assert_eq!(e.amps.len(), 2 * 189 * 16);
        assert_eq!(e.rows(), 1 + 2 + 2 + 378 + 6048);
        // Sorted by primary key, no duplicates.
        assert!(e.ccds.windows(2).all(|w| (w[0].exposure_id, w[0].ccd) < (w[1].exposure_id, w[1].ccd)));
        assert!(e
            .amps
            .windows(2)
            .all(|w| (w[0].exposure_id, w[0].ccd, w[0].amp) < (w[1].exposure_id, w[1].ccd, w[1].amp)));
        // CCD centres cover the field: all distinct, within 2 degrees, the central CCD at the
        // boresight (raft R22 = the 11th raft, its middle sensor: detector 94).
        for c in &e.ccds {
            let r = sep_arcsec(c.ra, c.dec, v.ra, v.dec) / 3600.0;
            assert!(r < 2.0, "ccd {} at {r} deg", c.ccd);
            assert!(c.seeing_arcsec > 0.2 && c.seeing_arcsec < 3.0);
            assert!(c.zero_point > 25.0 && c.zero_point < 30.0);
            assert!(c.sky_background > 0.0);
        }
        assert!(sep_arcsec(e.ccds[94].ra, e.ccds[94].dec, v.ra, v.dec) < 1e-6);
        let mut centres: Vec<(u64, u64)> = e.ccds[..189].iter().map(|c| (c.ra.to_bits(), c.dec.to_bits())).collect();
        centres.sort_unstable();
        centres.dedup();
        assert_eq!(centres.len(), 189);
        // Gain and read noise belong to the amplifier: the same in both snaps and every visit;
        // the bias level drifts per exposure.
        let other = n.exposures(&n.visits[0]);
        for (a, b) in e.amps[..3024].iter().zip(&e.amps[3024..]).chain(e.amps.iter().zip(&other.amps)) {
            assert_eq!((a.ccd, a.amp, a.gain, a.read_noise), (b.ccd, b.amp, b.gain, b.read_noise));
        }
        assert!(e.amps[..3024].iter().zip(&e.amps[3024..]).any(|(a, b)| a.bias_level != b.bias_level));
        // Another seed, other metadata; the DIASources do not depend on it.
        let e2 = visit_exposures(2, &v);
        assert_ne!(e2.ccds[0].zero_point, e.ccds[0].zero_point);
    }

    #[test]
    fn predictions_are_near_the_moving_detections() {
        let n = simulate(&small());
        let mut checked = 0;
        for (s, p) in n.sources.iter().zip(&n.predictions) {
            for d in s {
                if let Truth::Moving(id) = d.truth {
                    let pred = p.iter().find(|q| q.moving_object_id == id).expect("every detected mover is predicted");
                    assert!(sep_arcsec(d.ra, d.dec, pred.ra, pred.dec) < 2.0);
                    checked += 1;
                }
            }
        }
        assert!(checked > 10, "{checked}");
    }
}
