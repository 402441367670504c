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

use crate::sphere::{cap_dec_range, cap_ra_half_width, sep_arcsec, UnitVector, DEG_PER_ARCSEC};

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
    zone_height: f64,
    radius_arcsec: f64,
    radius_deg: f64,
    chord2_max: f64,
}

impl<'a> ZoneIndex<'a> {
    pub fn new(right: &'a [Source], radius_arcsec: f64) -> Self {
        let radius_deg = radius_arcsec * DEG_PER_ARCSEC;
        let zone_height = radius_deg.max(MIN_ZONE_HEIGHT_DEG);
        let mut entries: Vec<Entry> = right
            .iter()
            .enumerate()
            .map(|(i, s)| Entry {
                zone: zone_of(s.dec, zone_height),
                ra: s.ra,
                index: i as u32,
                v: UnitVector::from_radec(s.ra, s.dec),
            })
            .collect();
        entries.sort_unstable_by(|a, b| {
            a.zone
                .cmp(&b.zone)
                .then(a.ra.total_cmp(&b.ra))
                .then(a.index.cmp(&b.index))
        });
        // Chord length of the radius, with slack for rounding; the exact test follows.
        let half = (radius_deg.min(180.0).to_radians() * 0.5).sin();
        let chord2_max = 4.0 * half * half * (1.0 + 1e-9) + 1e-24;
        ZoneIndex {
            right,
            entries,
            zone_height,
            radius_arcsec,
            radius_deg,
            chord2_max,
        }
    }

    /// (right index, separation in arcsec) of every right point within the radius of (ra, dec).
    pub fn within(&self, ra: f64, dec: f64) -> impl Iterator<Item = (u32, f64)> + '_ {
        // The search box is grown by WINDOW_SLACK_DEG so that a pair whose computed separation
        // equals the radius is never cut off by rounding in the box; the exact test decides.
        let r = self.radius_deg + WINDOW_SLACK_DEG;
        let (dlo, dhi) = cap_dec_range(dec, r);
        let (zlo, zhi) = (
            zone_of(dlo, self.zone_height),
            zone_of(dhi, self.zone_height),
        );
        let windows: Vec<(f64, f64)> = match cap_ra_half_width(dec, r) {
            None => vec![(0.0, 360.0)],
            Some(w) => {
                let (a, b) = (ra - w, ra + w);
                if a < 0.0 {
                    vec![(a + 360.0, 360.0), (0.0, b)]
                } else if b >= 360.0 {
                    vec![(a, 360.0), (0.0, b - 360.0)]
                } else {
                    vec![(a, b)]
                }
            }
        };
        let q = UnitVector::from_radec(ra, dec);
        (zlo..=zhi)
            .flat_map(move |z| windows.clone().into_iter().map(move |(a, b)| (z, a, b)))
            .flat_map(move |(z, a, b)| {
                let start = self
                    .entries
                    .partition_point(|e| e.zone < z || (e.zone == z && e.ra < a));
                let end = self
                    .entries
                    .partition_point(|e| e.zone < z || (e.zone == z && e.ra <= b));
                self.entries[start..end.max(start)].iter()
            })
            .filter_map(move |e| {
                let (dx, dy, dz) = (e.v.x - q.x, e.v.y - q.y, e.v.z - q.z);
                if dx * dx + dy * dy + dz * dz > self.chord2_max {
                    return None;
                }
                let s = &self.right[e.index as usize];
                let sep = sep_arcsec(ra, dec, s.ra, s.dec);
                (sep <= self.radius_arcsec).then_some((e.index, sep))
            })
    }
}

fn zone_of(dec: f64, h: f64) -> i32 {
    ((dec + 90.0) / h).floor() as i32
}
