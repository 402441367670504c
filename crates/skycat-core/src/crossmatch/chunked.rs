//! One sky chunk of a cross-match split by chunk (the distributed cross-match).
//!
//! The left input is the rows of one chunk; the right input is the right rows of the same
//! chunk plus its margin (right rows of other chunks within the margin of this one). With a
//! margin of at least the radius, every pair of a left row of this chunk is found here, so
//! `all` and `nearest` are exact chunk by chunk: every left row's pairs are all in its own
//! chunk's task.
//!
//! A one-to-one assignment (`greedy`, `optimal`) is decided per connected component of the
//! candidate graph. A component is entirely inside this chunk unless one of its rows is an
//! *edge* row: a left row whose circle of the radius reaches another chunk, or a right row
//! from the margin or whose circle reaches another chunk (only such rows can have candidates
//! found in another chunk's task). Components without edge rows are solved here; the pairs of
//! the others are returned *deferred*, and the caller solves the union of every chunk's
//! deferred pairs once more, with the same mode (the deferred components are closed: a pair
//! touching one of their rows is deferred by whichever chunk finds it). The result equals the
//! cross-match of the whole inputs.

use super::assign::Components;
use super::{checked_candidates, ranked, select, zones, Control, Mode, Pair, Source};
use crate::error::{SkyError, SkyResult};
use crate::validate;

/// A pair of one chunk: indexes into the chunk's left and right inputs, its rank among the
/// pairs of its left row (`all`; 1 otherwise) and whether it is deferred to the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkPair {
    pub pair: Pair,
    pub rank: i32,
    pub deferred: bool,
}

/// The cross-match of one chunk. `left_edge` / `right_edge` flag the edge rows (same length as
/// the inputs, or empty when there are none); they matter only to `greedy` and `optimal`.
/// Positions-only cross-match (the Gaussian cost of `optimal` needs a ghost cost taken over
/// every candidate pair of the whole match, which one chunk does not know).
pub fn crossmatch_chunk(
    left: &[Source],
    left_edge: &[bool],
    right: &[Source],
    right_edge: &[bool],
    radius_arcsec: f64,
    mode: Mode,
    ctl: &Control,
) -> SkyResult<Vec<ChunkPair>> {
    validate::positive("radius_arcsec", "arcseconds", radius_arcsec)?;
    for (name, edge, n) in [("left_edge", left_edge, left.len()), ("right_edge", right_edge, right.len())] {
        if !edge.is_empty() && edge.len() != n {
            return Err(SkyError::invalid(
                name,
                format!("empty or one flag per row ({n})"),
                format!("{} flags", edge.len()),
            ));
        }
    }
    let index = zones::ZoneIndex::new(right, radius_arcsec);
    let pairs = checked_candidates(left, &index, ctl)?;
    let undeferred = |pair: &Pair, rank| ChunkPair { pair: *pair, rank, deferred: false };
    Ok(match mode {
        Mode::All => ranked(&pairs).map(|(p, rank)| undeferred(p, rank)).collect(),
        Mode::Nearest => ranked(&pairs).filter(|(_, rank)| *rank == 1).map(|(p, _)| undeferred(p, 1)).collect(),
        Mode::Greedy | Mode::Optimal => {
            let deferred = deferred_components(left.len(), right.len(), &pairs, left_edge, right_edge);
            let (later, local): (Vec<Pair>, Vec<Pair>) = pairs.iter().partition(|p| deferred[p.left as usize]);
            let mut out: Vec<ChunkPair> =
                select(&local, left, &index, mode, false, ctl)?.iter().map(|p| undeferred(p, 1)).collect();
            out.extend(ranked(&later).map(|(p, rank)| ChunkPair { pair: *p, rank, deferred: true }));
            out
        }
    })
}

/// For every left row: is its component of the candidate graph deferred (holds an edge row)?
fn deferred_components(
    n_left: usize,
    n_right: usize,
    pairs: &[Pair],
    left_edge: &[bool],
    right_edge: &[bool],
) -> Vec<bool> {
    let mut components = Components::of_pairs(n_left, n_right, pairs);
    let mut has_edge_row = vec![false; components.len()];
    for (k, _) in left_edge.iter().enumerate().filter(|(_, e)| **e) {
        has_edge_row[components.of_left(k as u32) as usize] = true;
    }
    for (k, _) in right_edge.iter().enumerate().filter(|(_, e)| **e) {
        has_edge_row[components.of_right(k as u32) as usize] = true;
    }
    (0..n_left as u32).map(|l| has_edge_row[components.of_left(l) as usize]).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::AtomicBool;

    use proptest::prelude::*;

    use super::super::{crossmatch, DEFAULT_MAX_PAIRS};
    use super::*;
    use crate::chunker::Chunker;
    use crate::sphere::wrap_ra;

    type Row = (i64, i64, u64, i32);

    fn ctl(cancel: &AtomicBool) -> Control<'_> {
        Control { max_pairs: DEFAULT_MAX_PAIRS, cancel }
    }

    /// The whole cross-match, as rows comparable bit for bit.
    fn whole(left: &[Source], right: &[Source], r: f64, mode: Mode) -> BTreeSet<Row> {
        let cancel = AtomicBool::new(false);
        crossmatch(left, right, r, mode, false, &ctl(&cancel))
            .unwrap()
            .into_iter()
            .map(|m| (m.left_id, m.right_id, m.sep_arcsec.to_bits(), m.rank))
            .collect()
    }

    /// What the distributed cross-match does: per chunk, the chunk's left rows against its
    /// right rows and margin, then the deferred rows matched once more as a whole.
    fn by_chunk(
        left: &[Source],
        right: &[Source],
        r: f64,
        margin: f64,
        mode: Mode,
        chunker: &Chunker,
    ) -> BTreeSet<Row> {
        let cancel = AtomicBool::new(false);
        let home = |s: &Source| chunker.locate(s.ra, s.dec).chunk_id;
        let near = |s: &Source, radius: f64| chunker.chunks_in_circle(s.ra, s.dec, radius).unwrap();
        let chunks: BTreeSet<i32> = left.iter().map(home).collect();
        let mut out = BTreeSet::new();
        let (mut later_left, mut later_right) = (BTreeSet::new(), BTreeSet::new());
        for c in chunks {
            let l: Vec<Source> = left.iter().filter(|s| home(s) == c).copied().collect();
            let l_edge: Vec<bool> = l.iter().map(|s| near(s, r).len() > 1).collect();
            let mut rr = Vec::new();
            let mut r_edge = Vec::new();
            for s in right {
                if home(s) == c {
                    rr.push(*s);
                    r_edge.push(near(s, r).len() > 1);
                } else if near(s, margin).contains(&c) {
                    rr.push(*s);
                    r_edge.push(true);
                }
            }
            for p in crossmatch_chunk(&l, &l_edge, &rr, &r_edge, r, mode, &ctl(&cancel)).unwrap() {
                let (a, b) = (l[p.pair.left as usize], rr[p.pair.right as usize]);
                if p.deferred {
                    later_left.insert(a.id);
                    later_right.insert(b.id);
                } else {
                    out.insert((a.id, b.id, p.pair.sep_arcsec.to_bits(), p.rank));
                }
            }
        }
        let l: Vec<Source> = left.iter().filter(|s| later_left.contains(&s.id)).copied().collect();
        let rr: Vec<Source> = right.iter().filter(|s| later_right.contains(&s.id)).copied().collect();
        out.extend(whole(&l, &rr, r, mode));
        out
    }

    /// Dense points over a few chunks of a coarse layout (chunks of ~1 degree), so that many
    /// components cross chunk edges.
    fn sky(n: usize, id0: i64) -> impl Strategy<Value = Vec<Source>> {
        prop::collection::vec((0.0f64..3.0, -1.5f64..1.5), n).prop_map(move |v| {
            v.into_iter().enumerate().map(|(k, (x, y))| Source::new(id0 + k as i64, wrap_ra(359.0 + x), y)).collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn by_chunk_equals_the_whole_match(left in sky(400, 1), right in sky(400, 100_000), r in 60.0f64..400.0,
                                           mode in prop_oneof![Just(Mode::All), Just(Mode::Nearest), Just(Mode::Greedy), Just(Mode::Optimal)]) {
            let chunker = Chunker::new(180, 2).unwrap();
            let expected = whole(&left, &right, r, mode);
            prop_assert!(!expected.is_empty());
            prop_assert_eq!(by_chunk(&left, &right, r, r, mode, &chunker), expected);
        }
    }

    #[test]
    fn without_edge_flags_an_assignment_across_an_edge_differs() {
        // Two left rows either side of a chunk edge compete for one right row: without the
        // edge flags each chunk would take it (the flags are what makes the split exact).
        let chunker = Chunker::new(180, 1).unwrap();
        let left = [Source::new(1, 0.5, -0.0004), Source::new(2, 0.5, 0.0003)];
        let right = [Source::new(10, 0.5, 0.0001)];
        assert_ne!(chunker.locate(0.5, -0.0004).chunk_id, chunker.locate(0.5, 0.0003).chunk_id);
        let cancel = AtomicBool::new(false);
        let below = crossmatch_chunk(&left[..1], &[], &right, &[], 3.0, Mode::Greedy, &ctl(&cancel)).unwrap();
        let above = crossmatch_chunk(&left[1..], &[], &right, &[], 3.0, Mode::Greedy, &ctl(&cancel)).unwrap();
        assert_eq!((below.len(), above.len()), (1, 1)); // right 10 taken twice
        let flagged = crossmatch_chunk(&left[..1], &[true], &right, &[true], 3.0, Mode::Greedy, &ctl(&cancel)).unwrap();
        assert!(flagged.iter().all(|p| p.deferred));
        assert_eq!(by_chunk(&left, &right, 3.0, 3.0, Mode::Greedy, &chunker), whole(&left, &right, 3.0, Mode::Greedy));
    }

    #[test]
    fn edge_flags_of_the_wrong_length_are_an_error() {
        let cancel = AtomicBool::new(false);
        let l = [Source::new(1, 0.0, 0.0)];
        let e = crossmatch_chunk(&l, &[true, false], &l, &[], 1.0, Mode::Greedy, &ctl(&cancel)).unwrap_err();
        assert!(e.to_string().contains("left_edge"), "{e}");
    }
}
