//! Bulk cross-match of two position lists (SQL-API.md `crossmatch`).
//!
//! 1. [`zones::ZoneIndex`] indexes the right side in declination zones sorted by right
//!    ascension (the zones algorithm of Gray, Nieto-Santisteban & Szalay 2006, which is what
//!    makes the search parallel and cache-friendly); every left point is matched in parallel
//!    with rayon, in batches so the caller can check for cancellation between them.
//! 2. The candidate pairs (every pair with `sep <= radius`, exactly as `sep_arcsec` computes it)
//!    are then reduced by the mode: all, nearest, greedy one-to-one, or optimal one-to-one
//!    ([`assign`]).

pub mod assign;
pub mod chunked;
pub mod zones;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{SkyError, SkyResult};
use crate::validate;

/// One input row. Errors are 1-sigma arcseconds (ra error already multiplied by cos dec);
/// NaN when absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    pub id: i64,
    pub ra: f64,
    pub dec: f64,
    pub ra_err: f64,
    pub dec_err: f64,
}

impl Source {
    pub fn new(id: i64, ra: f64, dec: f64) -> Self {
        Source { id, ra, dec, ra_err: f64::NAN, dec_err: f64::NAN }
    }
}

/// A candidate pair: indexes into the left and right inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub left: u32,
    pub right: u32,
    pub sep_arcsec: f64,
}

/// One output row of `crossmatch`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRow {
    pub left_id: i64,
    pub right_id: i64,
    pub sep_arcsec: f64,
    pub rank: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Nearest,
    Greedy,
    Optimal,
}

impl Mode {
    pub fn parse(s: &str) -> SkyResult<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "all" => Ok(Mode::All),
            "nearest" => Ok(Mode::Nearest),
            "greedy" => Ok(Mode::Greedy),
            "optimal" => Ok(Mode::Optimal),
            _ => Err(SkyError::invalid("mode", "one of 'all', 'nearest', 'greedy', 'optimal'", format!("'{s}'"))),
        }
    }
}

/// Left points matched per batch between two checks of the pair limit (~10-50 ms of work).
pub const BATCH: usize = 32_768;
/// Default limit on candidate pairs held in memory: 50M pairs, 800 MB.
pub const DEFAULT_MAX_PAIRS: usize = 50_000_000;

/// Checks every row: finite ra, dec in [-90, 90]; ra is wrapped to [0, 360) in place.
pub fn validate_sources(side: &'static str, rows: &mut [Source]) -> SkyResult<()> {
    for s in rows.iter_mut() {
        let bad = |e: SkyError| SkyError::InvalidRow { side, id: s.id, detail: e.to_string() };
        s.ra = validate::ra("ra", s.ra).map_err(bad)?;
        s.dec = validate::dec("dec", s.dec).map_err(bad)?;
    }
    Ok(())
}

/// Limits and the stop flag of a cross-match.
pub struct Control<'a> {
    /// Most candidate pairs held in memory (16 bytes each) before giving up with TooManyPairs.
    pub max_pairs: usize,
    /// Set by another thread to stop the work early (the call then returns `Cancelled`).
    pub cancel: &'a AtomicBool,
}

impl Control<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Every pair within `radius_arcsec`, grouped by left point and sorted by (sep, right id)
/// within a group.
pub fn candidate_pairs(left: &[Source], index: &zones::ZoneIndex, ctl: &Control) -> SkyResult<Vec<Pair>> {
    let right = index.right();
    if left.is_empty() || right.is_empty() {
        return Ok(vec![]);
    }
    // Visit left points in the index's own (zone, ra) order: consecutive searches then touch
    // the same part of the index, which keeps it in cache (2-3x faster than input order).
    let order = index.visit_order(left);
    let mut pairs = Vec::new();
    let found_so_far = AtomicUsize::new(0);
    // Set when a buffer could not grow: the work stops with OutOfMemory instead of the
    // process aborting (Rust's default when an allocation fails, on any thread).
    let out_of_memory = AtomicBool::new(false);
    for chunk in order.chunks(BATCH) {
        // One buffer per rayon task rather than one allocation per left point; stop pushing
        // as soon as the pair limit, a cancel or a failed allocation is reached, so memory
        // stays bounded.
        let found: Vec<Vec<Pair>> = chunk
            .par_iter()
            .fold(Vec::new, |mut acc, &i| {
                if ctl.cancelled()
                    || found_so_far.load(Ordering::Relaxed) > ctl.max_pairs
                    || out_of_memory.load(Ordering::Relaxed)
                {
                    return acc;
                }
                let s = &left[i as usize];
                let before = acc.len();
                index.for_each_within(s.ra, s.dec, |j, sep| {
                    if acc.len() == acc.capacity() && acc.try_reserve(acc.capacity().max(1024)).is_err() {
                        out_of_memory.store(true, Ordering::Relaxed);
                        return;
                    }
                    acc.push(Pair { left: i, right: j, sep_arcsec: sep })
                });
                found_so_far.fetch_add(acc.len() - before, Ordering::Relaxed);
                acc
            })
            .collect();
        if ctl.cancelled() {
            return Err(SkyError::Cancelled);
        }
        if found_so_far.load(Ordering::Relaxed) > ctl.max_pairs {
            return Err(SkyError::TooManyPairs { limit: ctl.max_pairs });
        }
        let batch: usize = found.iter().map(Vec::len).sum();
        if out_of_memory.load(Ordering::Relaxed) || pairs.try_reserve(batch).is_err() {
            return Err(SkyError::OutOfMemory {
                what: "candidate pairs",
                bytes: (found_so_far.load(Ordering::Relaxed) * std::mem::size_of::<Pair>()) as u64,
            });
        }
        pairs.extend(found.into_iter().flatten());
    }
    // Each left's pairs are contiguous (one task handles a left point from start to end):
    // order them by (sep, right id), the order `rank` counts in. There is no global sort: rows
    // come out in the index's visit order, which the SQL contract leaves open.
    for group in pairs.chunk_by_mut(|a, b| a.left == b.left) {
        if group.len() > 1 {
            group.sort_unstable_by(|a, b| {
                a.sep_arcsec
                    .total_cmp(&b.sep_arcsec)
                    .then_with(|| right[a.right as usize].id.cmp(&right[b.right as usize].id))
                    .then_with(|| a.right.cmp(&b.right))
            });
        }
    }
    Ok(pairs)
}

/// The whole cross-match: candidates, then the mode's selection. Rows of one left id are
/// consecutive and in rank order; the order of left ids is unspecified.
///
/// `use_errors`: both inputs have error columns, so `optimal` uses the Gaussian NLL cost.
pub fn crossmatch(
    left: &[Source],
    right: &[Source],
    radius_arcsec: f64,
    mode: Mode,
    use_errors: bool,
    ctl: &Control,
) -> SkyResult<Vec<MatchRow>> {
    validate::positive("radius_arcsec", "arcseconds", radius_arcsec)?;
    crossmatch_indexed(left, &zones::ZoneIndex::new(right, radius_arcsec), mode, use_errors, ctl)
}

/// [`crossmatch`] against a right side already indexed (the index can be built while the left
/// input is still being read).
pub fn crossmatch_indexed(
    left: &[Source],
    index: &zones::ZoneIndex,
    mode: Mode,
    use_errors: bool,
    ctl: &Control,
) -> SkyResult<Vec<MatchRow>> {
    let pairs = checked_candidates(left, index, ctl)?;
    let row = |p: &Pair, rank: i32| match_row(left, index, p, rank);
    let out = match mode {
        Mode::All => ranked(&pairs).map(|(p, rank)| row(p, rank)).collect(),
        Mode::Nearest | Mode::Greedy | Mode::Optimal => {
            let mut chosen = select(&pairs, left, index, mode, use_errors, ctl)?;
            chosen.sort_by_key(|p| p.left);
            chosen.iter().map(|p| row(p, 1)).collect()
        }
    };
    Ok(out)
}

/// [`candidate_pairs`], or `Cancelled` when a cancel arrived meanwhile.
fn checked_candidates(left: &[Source], index: &zones::ZoneIndex, ctl: &Control) -> SkyResult<Vec<Pair>> {
    let pairs = candidate_pairs(left, index, ctl)?;
    if ctl.cancelled() {
        return Err(SkyError::Cancelled);
    }
    Ok(pairs)
}

/// The output row of a candidate pair.
fn match_row(left: &[Source], index: &zones::ZoneIndex, p: &Pair, rank: i32) -> MatchRow {
    MatchRow {
        left_id: left[p.left as usize].id,
        right_id: index.right()[p.right as usize].id,
        sep_arcsec: p.sep_arcsec,
        rank,
    }
}

/// Candidate pairs (grouped by left, nearest first) with their rank per left id.
fn ranked(pairs: &[Pair]) -> impl Iterator<Item = (&Pair, i32)> {
    let mut rank = 0;
    pairs.iter().enumerate().map(move |(k, p)| {
        rank = if k > 0 && pairs[k - 1].left == p.left { rank + 1 } else { 1 };
        (p, rank)
    })
}

/// The pairs `mode` selects among the candidates (`All` selects every pair).
fn select(
    pairs: &[Pair],
    left: &[Source],
    index: &zones::ZoneIndex,
    mode: Mode,
    use_errors: bool,
    ctl: &Control,
) -> SkyResult<Vec<Pair>> {
    let right = index.right();
    Ok(match mode {
        Mode::All => pairs.to_vec(),
        Mode::Nearest => ranked(pairs).filter(|(_, rank)| *rank == 1).map(|(p, _)| *p).collect(),
        Mode::Greedy => assign::greedy(pairs, left, right),
        Mode::Optimal => assign::optimal(pairs, left, right, index.radius_arcsec(), use_errors, ctl.cancel)?,
    })
}

/// Every candidate pair (as [`Mode::All`] returns them) with a flag: is it one of the pairs
/// `mode` selects? What the Association Pipeline persists (all candidates, the assignment
/// marked) from one pass instead of an `all` and a `greedy` cross-match.
pub fn crossmatch_all_marked(
    left: &[Source],
    index: &zones::ZoneIndex,
    mode: Mode,
    use_errors: bool,
    ctl: &Control,
) -> SkyResult<Vec<(MatchRow, bool)>> {
    let pairs = checked_candidates(left, index, ctl)?;
    // Every mode selects at most one pair per left row.
    let mut chosen_right = vec![u32::MAX; left.len()];
    if mode != Mode::All {
        for p in select(&pairs, left, index, mode, use_errors, ctl)? {
            chosen_right[p.left as usize] = p.right;
        }
    }
    Ok(ranked(&pairs)
        .map(|(p, rank)| {
            (match_row(left, index, p, rank), mode == Mode::All || chosen_right[p.left as usize] == p.right)
        })
        .collect())
}

#[cfg(test)]
mod tests;
