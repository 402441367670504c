//! The in-memory index of the right-hand input: points in declination zones, sorted by right
//! ascension within a zone, with their unit vectors for a cheap pre-filter.
//!
//! A query visits the zones its circle spans and, in each, the right-ascension window
//! `ra ± w`, where `w` is the circle's largest half-width in right ascension (the whole zone
//! when the circle holds a pole), wrapped at 0/360. Candidates pass a chord-length test with
//! a little slack and then the exact `sep_arcsec <= radius` test, so the answer is exactly the
//! brute-force one.
//!
//! Memory: 40 bytes per indexed point (zone, ra, index, unit vector), plus the input itself.

use rayon::prelude::*;

use crate::sphere::{cap_dec_range, cap_ra_windows, chord_of_angle, sep_arcsec, UnitVector, DEG_PER_ARCSEC};

use super::Source;

/// Zones are at least this high (degrees): tiny radii would otherwise create millions of
/// zones; a zone only needs to be no thinner than the search radius.
const MIN_ZONE_HEIGHT_DEG: f64 = 1.0 / 60.0;
/// Growth of the search box, degrees (~4 micro-arcseconds).
const WINDOW_SLACK_DEG: f64 = 1e-9;

#[derive(Debug, Clone, Copy)]
struct Entry {
    zone: i32,
    ra: f64,
    index: u32,
    v: UnitVector,
}

pub struct ZoneIndex<'a> {
    right: &'a [Source],
    entries: Vec<Entry>,
    zone_starts: Vec<u32>,
    zone_height: f64,
    radius_arcsec: f64,
    radius_deg: f64,
    chord2_max: f64,
}

impl<'a> ZoneIndex<'a> {
    pub fn new(right: &'a [Source], radius_arcsec: f64) -> Self {
        let radius_deg = radius_arcsec * DEG_PER_ARCSEC;
        let zone_height = radius_deg.max(MIN_ZONE_HEIGHT_DEG);
        // Build the entries in input order (the trigonometry in parallel over sequential
        // memory), then sort them with their keys: gathering them in sorted order instead
        // reads the input at random and took twice as long (30 ms for 500k points).
        let mut keyed: Vec<(u64, Entry)> = right
            .par_iter()
            .enumerate()
            .map(|(i, s)| {
                let zone = zone_of(s.dec, zone_height);
                (
                    sort_key(zone, s.ra),
                    Entry { zone, ra: s.ra, index: i as u32, v: UnitVector::from_radec(s.ra, s.dec) },
                )
            })
            .collect();
        keyed.par_sort_unstable_by_key(|k| k.0);
        let entries: Vec<Entry> = keyed.into_par_iter().map(|k| k.1).collect();
        // zone_starts[z] = first entry of zone z; zone_starts[z + 1] ends it.
        let n_zones = zone_of(90.0, zone_height) as usize + 1;
        let mut zone_starts = vec![0u32; n_zones + 1];
        for e in &entries {
            zone_starts[e.zone as usize + 1] += 1;
        }
        for z in 0..n_zones {
            zone_starts[z + 1] += zone_starts[z];
        }
        // Chord length of the radius, with slack for rounding; the exact test follows.
        let chord = chord_of_angle(radius_deg.to_radians());
        let chord2_max = chord * chord * (1.0 + 1e-9) + 1e-24;
        ZoneIndex { right, entries, zone_starts, zone_height, radius_arcsec, radius_deg, chord2_max }
    }

    /// The indexed points.
    pub fn right(&self) -> &'a [Source] {
        self.right
    }

    pub fn radius_arcsec(&self) -> f64 {
        self.radius_arcsec
    }

    /// Indexes of `points` sorted the way the index is: by zone, then right ascension.
    pub fn visit_order(&self, points: &[Source]) -> Vec<u32> {
        sorted_by_zone_and_ra(points, self.zone_height)
    }

    /// Calls `found(right index, separation in arcsec)` for every right point within the
    /// radius of (ra, dec).
    pub fn for_each_within(&self, ra: f64, dec: f64, mut found: impl FnMut(u32, f64)) {
        // The search box is grown by WINDOW_SLACK_DEG so that a pair whose computed separation
        // equals the radius is never cut off by rounding in the box; the exact test decides.
        let r = self.radius_deg + WINDOW_SLACK_DEG;
        let (dlo, dhi) = cap_dec_range(dec, r);
        let (zlo, zhi) = (zone_of(dlo, self.zone_height), zone_of(dhi, self.zone_height));
        let windows = cap_ra_windows(ra, dec, r);
        let q = UnitVector::from_radec(ra, dec);
        for z in zlo..=zhi {
            let zone = &self.entries[self.zone_starts[z as usize] as usize..self.zone_starts[z as usize + 1] as usize];
            for &(a, b) in windows.iter().filter(|w| w.0 <= w.1) {
                let start = zone.partition_point(|e| e.ra < a);
                for e in zone[start..].iter().take_while(|e| e.ra <= b) {
                    let (dx, dy, dz) = (e.v.x - q.x, e.v.y - q.y, e.v.z - q.z);
                    if dx * dx + dy * dy + dz * dz > self.chord2_max {
                        continue;
                    }
                    let s = &self.right[e.index as usize];
                    let sep = sep_arcsec(ra, dec, s.ra, s.dec);
                    if sep <= self.radius_arcsec {
                        found(e.index, sep);
                    }
                }
            }
        }
    }
}

/// Indexes of `points` sorted by (zone, ra) ([`sort_key`]). The key packs the zone (at most 10,800 of them,
/// 14 bits) above ra quantised to 2^49 steps of 360 degrees (6.4e-13 degrees, far inside the
/// search window's slack of 1e-9 degrees, so a search never misses a point for the order of
/// two points closer than a step): a 16-byte (key, index) sorts twice as fast as the exact
/// 128-bit key it replaces, and building the index is most of the time of a cross-match of
/// a small catalogue against a big one.
fn sorted_by_zone_and_ra(points: &[Source], zone_height: f64) -> Vec<u32> {
    let mut keyed: Vec<(u64, u32)> =
        points.par_iter().enumerate().map(|(i, s)| (sort_key(zone_of(s.dec, zone_height), s.ra), i as u32)).collect();
    keyed.par_sort_unstable();
    keyed.into_iter().map(|k| k.1).collect()
}

fn sort_key(zone: i32, ra: f64) -> u64 {
    const RA_STEPS: f64 = (1u64 << 49) as f64;
    let ra_step = ((ra / 360.0) * RA_STEPS).clamp(0.0, RA_STEPS - 1.0) as u64;
    ((zone as u64) << 49) | ra_step
}

fn zone_of(dec: f64, h: f64) -> i32 {
    ((dec + 90.0) / h).floor() as i32
}
