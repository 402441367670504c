//! Cross-match against brute force: every pair by an O(n m) scan, the modes by their
//! definitions, and `optimal` against exhaustive enumeration of all matchings.

use std::sync::atomic::AtomicBool;

use proptest::prelude::*;

use super::assign::{gaussian_nll, min_cost_assignment};
use super::*;
use crate::error::SkyError;
use crate::sphere::{sep_arcsec, wrap_ra};

fn brute_pairs(left: &[Source], right: &[Source], r: f64) -> Vec<(i64, i64, f64)> {
    let mut v = Vec::new();
    for l in left {
        for q in right {
            let s = sep_arcsec(l.ra, l.dec, q.ra, q.dec);
            if s <= r {
                v.push((l.id, q.id, s));
            }
        }
    }
    v
}

fn run(left: &[Source], right: &[Source], r: f64, mode: Mode, errs: bool) -> Vec<MatchRow> {
    let cancel = AtomicBool::new(false);
    crossmatch(left, right, r, mode, errs, &Control { max_pairs: DEFAULT_MAX_PAIRS, cancel: &cancel }).unwrap()
}

/// A patch of sky with `n` points within `size` degrees of (ra0, dec0), ids from `id0`;
/// some duplicated positions.
fn patch() -> impl Strategy<Value = (f64, f64, f64)> {
    prop_oneof![
        (0.0f64..360.0, -60.0f64..60.0, Just(0.01)),
        (Just(0.0), -10.0f64..10.0, Just(0.01)),   // across RA 0/360
        (0.0f64..360.0, Just(89.995), Just(0.01)), // at the north pole
        (0.0f64..360.0, Just(-90.0), Just(0.01)),  // at the south pole
    ]
}

fn points(center: (f64, f64, f64), id0: i64, n: usize) -> impl Strategy<Value = Vec<Source>> {
    let (ra0, dec0, size) = center;
    prop::collection::vec((-1.0f64..1.0, -1.0f64..1.0, 0.0f64..1.0, 0.01f64..0.5, 0.01f64..0.5), 0..n).prop_map(
        move |v| {
            let mut out: Vec<Source> = Vec::with_capacity(v.len());
            for (k, (x, y, dup, e1, e2)) in v.into_iter().enumerate() {
                let dec = (dec0 + y * size).clamp(-90.0, 90.0);
                let ra = wrap_ra(ra0 + x * size / dec0.to_radians().cos().max(0.05));
                let mut s = Source { id: id0 + k as i64, ra, dec, ra_err: e1, dec_err: e2 };
                if dup < 0.1 && k > 0 {
                    // duplicate an earlier position
                    let p = out[k / 2];
                    s.ra = p.ra;
                    s.dec = p.dec;
                }
                out.push(s);
            }
            out
        },
    )
}

fn inputs(n: usize) -> impl Strategy<Value = (Vec<Source>, Vec<Source>, f64)> {
    patch().prop_flat_map(move |c| (points(c, 1000, n), points(c, 5000, n), 1.0f64..30.0))
}

fn one_to_one(rows: &[MatchRow]) -> bool {
    let mut l: Vec<i64> = rows.iter().map(|r| r.left_id).collect();
    let mut r: Vec<i64> = rows.iter().map(|r| r.right_id).collect();
    l.sort();
    r.sort();
    l.windows(2).all(|w| w[0] != w[1]) && r.windows(2).all(|w| w[0] != w[1])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn all_mode_equals_brute_force((left, right, r) in inputs(60)) {
        let got = run(&left, &right, r, Mode::All, false);
        let mut brute = brute_pairs(&left, &right, r);
        let mut mine: Vec<(i64, i64, f64)> = got.iter().map(|m| (m.left_id, m.right_id, m.sep_arcsec)).collect();
        brute.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        mine.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        prop_assert_eq!(&mine, &brute);
        // ranks: 1, 2, ... by (sep, right id) within each left id
        for m in &got {
            let better = brute.iter().filter(|b| b.0 == m.left_id && (b.2, b.1) < (m.sep_arcsec, m.right_id)).count();
            prop_assert_eq!(m.rank as usize, better + 1);
        }
    }

    #[test]
    fn nearest_is_the_closest_per_left((left, right, r) in inputs(60)) {
        let got = run(&left, &right, r, Mode::Nearest, false);
        let brute = brute_pairs(&left, &right, r);
        let mut lefts: Vec<i64> = brute.iter().map(|b| b.0).collect();
        lefts.sort();
        lefts.dedup();
        prop_assert_eq!(got.len(), lefts.len());
        for m in &got {
            let best = brute.iter().filter(|b| b.0 == m.left_id)
                .min_by(|a, b| a.2.total_cmp(&b.2).then(a.1.cmp(&b.1))).unwrap();
            prop_assert_eq!((m.right_id, m.sep_arcsec, m.rank), (best.1, best.2, 1));
        }
    }

    #[test]
    fn all_marked_is_all_pairs_with_each_modes_selection((left, right, r) in inputs(40), errs in any::<bool>()) {
        // Checked against the other modes, themselves checked against their definitions here.
        let all = run(&left, &right, r, Mode::All, errs);
        let cancel = AtomicBool::new(false);
        let ctl = Control { max_pairs: DEFAULT_MAX_PAIRS, cancel: &cancel };
        let index = zones::ZoneIndex::new(&right, r);
        for mode in [Mode::All, Mode::Nearest, Mode::Greedy, Mode::Optimal] {
            let marked = crossmatch_all_marked(&left, &index, mode, errs, &ctl).unwrap();
            let rows: Vec<MatchRow> = marked.iter().map(|(m, _)| *m).collect();
            prop_assert_eq!(&rows, &all);
            let mut chosen: Vec<(i64, i64)> =
                marked.iter().filter(|(_, c)| *c).map(|(m, _)| (m.left_id, m.right_id)).collect();
            let mut expected: Vec<(i64, i64)> =
                run(&left, &right, r, mode, errs).iter().map(|m| (m.left_id, m.right_id)).collect();
            chosen.sort();
            expected.sort();
            prop_assert_eq!(chosen, expected, "mode {:?}", mode);
        }
    }

    #[test]
    fn greedy_follows_its_definition((left, right, r) in inputs(60)) {
        let got = run(&left, &right, r, Mode::Greedy, false);
        let mut brute = brute_pairs(&left, &right, r);
        brute.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        let (mut lt, mut rt) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        let mut expected = Vec::new();
        for (l, q, s) in brute {
            if !lt.contains(&l) && !rt.contains(&q) {
                lt.insert(l);
                rt.insert(q);
                expected.push((l, q, s));
            }
        }
        let mut mine: Vec<(i64, i64, f64)> = got.iter().map(|m| (m.left_id, m.right_id, m.sep_arcsec)).collect();
        expected.sort_by_key(|e| (e.0, e.1));
        mine.sort_by_key(|e| (e.0, e.1));
        prop_assert_eq!(mine, expected);
        prop_assert!(one_to_one(&got));
    }

    #[test]
    fn optimal_matches_exhaustive_search((left, right, r) in inputs(7), errs in any::<bool>()) {
        let got = run(&left, &right, r, Mode::Optimal, errs);
        prop_assert!(one_to_one(&got));
        let brute = brute_pairs(&left, &right, r);
        let cost = |l: i64, q: i64, s: f64| if errs {
            gaussian_nll(left.iter().find(|x| x.id == l).unwrap(), right.iter().find(|x| x.id == q).unwrap())
        } else { s };
        let ghost = if errs {
            brute.iter().map(|b| cost(b.0, b.1, b.2)).fold(f64::NEG_INFINITY, f64::max) + 1.0
        } else { 1.01 * r };
        let mut lefts: Vec<i64> = brute.iter().map(|b| b.0).collect();
        lefts.sort();
        lefts.dedup();
        // Exhaustive: every left with candidates either takes an unused candidate or a ghost.
        fn best(k: usize, lefts: &[i64], brute: &[(i64, i64, f64)], used: &mut Vec<i64>,
                cost: &dyn Fn(i64, i64, f64) -> f64, ghost: f64) -> f64 {
            if k == lefts.len() { return 0.0; }
            let mut b = ghost + best(k + 1, lefts, brute, used, cost, ghost);
            for p in brute.iter().filter(|p| p.0 == lefts[k]) {
                if !used.contains(&p.1) {
                    used.push(p.1);
                    b = b.min(cost(p.0, p.1, p.2) + best(k + 1, lefts, brute, used, cost, ghost));
                    used.pop();
                }
            }
            b
        }
        let optimum = best(0, &lefts, &brute, &mut Vec::new(), &cost, ghost);
        let total: f64 = got.iter().map(|m| cost(m.left_id, m.right_id, m.sep_arcsec)).sum::<f64>()
            + if lefts.len() > got.len() { ghost * (lefts.len() - got.len()) as f64 } else { 0.0 };
        prop_assert!((total - optimum).abs() <= 1e-9 * (1.0 + optimum.abs()), "total {total} optimum {optimum}");
        for m in &got {
            prop_assert!(brute.iter().any(|b| (b.0, b.1, b.2) == (m.left_id, m.right_id, m.sep_arcsec)));
        }
    }

    #[test]
    fn assignment_matches_exhaustive_search(costs in prop::collection::vec(prop::collection::vec(prop::option::of(-5.0f64..5.0), 5), 1..6)) {
        // Dense random problems with missing edges and a ghost per row.
        let n = costs.len();
        let edges: Vec<Vec<(usize, f64)>> = costs.iter().enumerate().map(|(i, row)| {
            let mut e: Vec<(usize, f64)> = row.iter().enumerate().filter_map(|(j, c)| c.map(|c| (j, c))).collect();
            e.push((5 + i, 3.0));
            e
        }).collect();
        let got = min_cost_assignment(5 + n, &edges, &AtomicBool::new(false)).unwrap();
        let total: f64 = got.iter().enumerate().map(|(i, &j)| edges[i].iter().find(|e| e.0 == j).unwrap().1).sum();
        fn best(i: usize, edges: &[Vec<(usize, f64)>], used: &mut Vec<usize>) -> f64 {
            if i == edges.len() { return 0.0; }
            let mut b = f64::INFINITY;
            for &(j, c) in &edges[i] {
                if !used.contains(&j) {
                    used.push(j);
                    b = b.min(c + best(i + 1, edges, used));
                    used.pop();
                }
            }
            b
        }
        let optimum = best(0, &edges, &mut Vec::new());
        prop_assert!((total - optimum).abs() < 1e-9, "{total} vs {optimum}");
        let mut cols = got.clone();
        cols.sort();
        cols.dedup();
        prop_assert_eq!(cols.len(), n);
    }
}

#[test]
fn empty_inputs() {
    let a = vec![Source::new(1, 10.0, 10.0)];
    for mode in [Mode::All, Mode::Nearest, Mode::Greedy, Mode::Optimal] {
        assert!(run(&[], &a, 1.0, mode, false).is_empty());
        assert!(run(&a, &[], 1.0, mode, false).is_empty());
        assert!(run(&[], &[], 1.0, mode, false).is_empty());
    }
}

#[test]
fn pair_limit_and_cancel_stop_the_work() {
    // 300 x 300 points at one position: 90,000 pairs.
    let pts: Vec<Source> = (0..300).map(|i| Source::new(i, 10.0, 10.0)).collect();
    let go = AtomicBool::new(false);
    let e = crossmatch(&pts, &pts, 1.0, Mode::All, false, &Control { max_pairs: 1000, cancel: &go }).unwrap_err();
    assert_eq!(e, SkyError::TooManyPairs { limit: 1000 });
    let stop = AtomicBool::new(true);
    for mode in [Mode::All, Mode::Optimal] {
        let e = crossmatch(&pts, &pts, 1.0, mode, false, &Control { max_pairs: DEFAULT_MAX_PAIRS, cancel: &stop })
            .unwrap_err();
        assert_eq!(e, SkyError::Cancelled);
    }
    assert!(min_cost_assignment(2, &[vec![(0, 1.0)], vec![(1, 1.0)]], &stop).is_none());
}

#[test]
fn points_exactly_at_the_radius_are_in() {
    let l = vec![Source::new(1, 10.0, 10.0)];
    let r = vec![Source::new(2, 10.0003, 10.0002)];
    let sep = sep_arcsec(10.0, 10.0, 10.0003, 10.0002);
    assert_eq!(run(&l, &r, sep, Mode::All, false).len(), 1);
    assert_eq!(run(&l, &r, sep.next_down(), Mode::All, false).len(), 0);
}

#[test]
fn optimal_beats_greedy_where_greedy_is_wrong() {
    // L1 is closest to R1, but R1 is L2's only candidate: greedy strands L2, optimal does not.
    let l = vec![Source::new(1, 0.0, 0.0), Source::new(2, 0.0, 2.0 / 3600.0)];
    let r = vec![Source::new(10, 0.0, 1.0 / 3600.0), Source::new(11, 0.0, -1.1 / 3600.0)];
    let g = run(&l, &r, 1.2, Mode::Greedy, false);
    let o = run(&l, &r, 1.2, Mode::Optimal, false);
    assert_eq!(g.len(), 1);
    assert_eq!(o.len(), 2);
    assert_eq!((o[0].left_id, o[0].right_id), (1, 11));
    assert_eq!((o[1].left_id, o[1].right_id), (2, 10));
}

#[test]
fn validation_names_the_row() {
    let mut rows = vec![Source::new(7, 10.0, 10.0), Source::new(8, 370.0, -95.0)];
    let e = validate_sources("right", &mut rows).unwrap_err();
    assert_eq!(
        e.to_string(),
        "right input row with id 8: argument \"dec\" must be a finite number of degrees in [-90, 90], got -95"
    );
    let mut rows = vec![Source::new(9, f64::NAN, 0.0)];
    assert!(validate_sources("left", &mut rows).is_err());
    let mut ok = vec![Source::new(1, 370.0, 0.0)];
    validate_sources("left", &mut ok).unwrap();
    assert_eq!(ok[0].ra, 10.0);
    assert!(Mode::parse("bogus").is_err());
    assert_eq!(Mode::parse("Optimal").unwrap(), Mode::Optimal);
}

#[test]
fn optimal_with_infinite_or_huge_errors_is_defined() {
    // Errors beyond the sky (or infinite) say nothing about a position: with both sides at the
    // ceiling every cost is the same constant, so the optimal choice falls to the ghost rule and
    // the closest-first tie-break; what matters here is a finite, one-to-one answer.
    let l = vec![Source { id: 1, ra: 10.0, dec: 10.0, ra_err: f64::INFINITY, dec_err: 1e308 }];
    let r = vec![
        Source { id: 2, ra: 10.0, dec: 10.0002, ra_err: 1e308, dec_err: f64::INFINITY },
        Source { id: 3, ra: 10.0, dec: 10.0001, ra_err: 0.1, dec_err: 0.1 },
    ];
    let got = run(&l, &r, 2.0, Mode::Optimal, true);
    assert_eq!(got.len(), 1);
    assert!(got[0].sep_arcsec.is_finite());
    // The cost of a pair with ceiling errors is the closed form with sigma = 648000 arcsec on
    // both sides: 0.5 (dx^2 + dy^2) / (2 s^2) + 0.5 ln((2 s^2)^2).
    let s2 = 2.0 * 648_000f64.powi(2);
    let c = gaussian_nll(&l[0], &r[0]);
    let dy = 0.0002 * 3600.0;
    assert!((c - (0.5 * dy * dy / s2 + 0.5 * (s2 * s2).ln())).abs() < 1e-9, "{c}");
}
