//! One-to-one selection among candidate pairs.
//!
//! * [`greedy`]: pairs sorted by (sep, left id, right id); a pair is taken when neither side
//!   is taken yet.
//! * [`optimal`]: LSST ap_association's formulation: minimise the total cost of the chosen
//!   pairs plus a "ghost" cost for every left row that has candidates but stays unmatched.
//!   Solved exactly per connected component of the candidate graph with a sparse
//!   shortest-augmenting-path (Hungarian / Jonker-Volgenant) algorithm, each left row having a
//!   private ghost column. Written here because no maintained Rust crate solves sparse,
//!   rectangular, float-cost assignment (pathfinding's kuhn_munkres is dense and needs Ord costs).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use rayon::prelude::*;

use super::{Pair, Source};
use crate::error::{SkyError, SkyResult};
use crate::sphere::wrap_delta_ra;

pub fn greedy(pairs: &[Pair], left: &[Source], right: &[Source]) -> Vec<Pair> {
    let mut order: Vec<&Pair> = pairs.iter().collect();
    order.sort_by(|a, b| {
        a.sep_arcsec
            .total_cmp(&b.sep_arcsec)
            .then_with(|| left[a.left as usize].id.cmp(&left[b.left as usize].id))
            .then_with(|| right[a.right as usize].id.cmp(&right[b.right as usize].id))
    });
    let mut left_taken = vec![false; left.len()];
    let mut right_taken = vec![false; right.len()];
    let mut out = Vec::new();
    for p in order {
        if !left_taken[p.left as usize] && !right_taken[p.right as usize] {
            left_taken[p.left as usize] = true;
            right_taken[p.right as usize] = true;
            out.push(*p);
        }
    }
    out
}

/// Error floor and the value assumed for a NULL or non-positive error (arcsec).
pub const ERR_FLOOR_ARCSEC: f64 = 0.05;
pub const ERR_MISSING_ARCSEC: f64 = 0.2;
/// Error ceiling (arcsec): the whole sky. A larger or infinite error says as little about a
/// position as this one, and keeps every cost finite (variances and their product below 1e23).
pub const ERR_CEILING_ARCSEC: f64 = 648_000.0;

fn err(e: f64) -> f64 {
    if e.is_nan() || e <= 0.0 {
        ERR_MISSING_ARCSEC
    } else {
        e.clamp(ERR_FLOOR_ARCSEC, ERR_CEILING_ARCSEC)
    }
}

/// Gaussian negative log-likelihood of a pair (SQL-API.md): offsets in arcsec, tangent-plane
/// at the left position, variances the sums of both sides' (floored) errors squared.
pub fn gaussian_nll(l: &Source, r: &Source) -> f64 {
    let dx = wrap_delta_ra(r.ra - l.ra) * l.dec.to_radians().cos() * 3600.0;
    let dy = (r.dec - l.dec) * 3600.0;
    let sx2 = err(l.ra_err).powi(2) + err(r.ra_err).powi(2);
    let sy2 = err(l.dec_err).powi(2) + err(r.dec_err).powi(2);
    0.5 * (dx * dx / sx2 + dy * dy / sy2) + 0.5 * (sx2 * sy2).ln()
}

/// The connected components of the bipartite candidate graph: union-find over left indexes
/// `0..n_left` and right indexes offset by `n_left`.
pub(super) struct Components {
    parent: Vec<u32>,
    n_left: u32,
}

impl Components {
    pub(super) fn of_pairs(n_left: usize, n_right: usize, pairs: &[Pair]) -> Components {
        let n_left = n_left as u32;
        let mut uf = Components { parent: (0..n_left + n_right as u32).collect(), n_left };
        for p in pairs {
            let (a, b) = (uf.find(p.left), uf.find(n_left + p.right));
            if a != b {
                uf.parent[a.max(b) as usize] = a.min(b);
            }
        }
        uf
    }

    /// The component of left row `k`.
    pub(super) fn of_left(&mut self, k: u32) -> u32 {
        self.find(k)
    }

    /// The component of right row `k`.
    pub(super) fn of_right(&mut self, k: u32) -> u32 {
        self.find(self.n_left + k)
    }

    /// Components are numbered below this.
    pub(super) fn len(&self) -> usize {
        self.parent.len()
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            self.parent[x as usize] = self.parent[self.parent[x as usize] as usize];
            x = self.parent[x as usize];
        }
        x
    }
}

/// The optimal one-to-one selection. `use_errors`: both inputs carry error columns, so the
/// cost is the Gaussian NLL and the ghost is (largest candidate cost) + 1; otherwise the cost
/// is the separation and the ghost 1.01 x radius.
pub fn optimal(
    pairs: &[Pair],
    left: &[Source],
    right: &[Source],
    radius_arcsec: f64,
    use_errors: bool,
    cancel: &AtomicBool,
) -> SkyResult<Vec<Pair>> {
    if pairs.is_empty() {
        return Ok(vec![]);
    }
    let costs: Vec<f64> = if use_errors {
        pairs.iter().map(|p| gaussian_nll(&left[p.left as usize], &right[p.right as usize])).collect()
    } else {
        pairs.iter().map(|p| p.sep_arcsec).collect()
    };
    let ghost =
        if use_errors { costs.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 1.0 } else { 1.01 * radius_arcsec };
    // The solver needs finite costs (validated positions and clamped errors give them; a
    // non-finite one here is a bug, reported as an error rather than a wrong assignment).
    if !ghost.is_finite() || costs.iter().any(|c| !c.is_finite()) {
        return Err(SkyError::invalid(
            "radius_arcsec",
            "a radius and errors that give finite match costs",
            "a non-finite cost",
        ));
    }
    let mut components = Components::of_pairs(left.len(), right.len(), pairs);
    let mut by_comp: Vec<(u32, usize)> =
        pairs.iter().enumerate().map(|(k, p)| (components.of_left(p.left), k)).collect();
    if cancel.load(AtomicOrdering::Relaxed) {
        return Err(SkyError::Cancelled);
    }
    by_comp.par_sort_unstable();
    if cancel.load(AtomicOrdering::Relaxed) {
        return Err(SkyError::Cancelled);
    }
    let groups: Vec<&[(u32, usize)]> = by_comp.chunk_by(|a, b| a.0 == b.0).collect();
    let chosen: Vec<Option<Vec<Pair>>> = groups
        .par_iter()
        .map(|g| solve_component(g.iter().map(|&(_, k)| (pairs[k], costs[k])), left, right, ghost, cancel))
        .collect();
    let mut out = Vec::new();
    for c in chosen {
        out.extend(c.ok_or(SkyError::Cancelled)?);
    }
    Ok(out)
}

/// Solves one component given its (pair, cost) list.
fn solve_component(
    items: impl Iterator<Item = (Pair, f64)>,
    left: &[Source],
    right: &[Source],
    ghost: f64,
    cancel: &AtomicBool,
) -> Option<Vec<Pair>> {
    let items: Vec<(Pair, f64)> = items.collect();
    // Rows: the component's lefts by id; columns: its rights by id, then one ghost per row.
    let mut rows: Vec<u32> = items.iter().map(|(p, _)| p.left).collect();
    rows.sort_by_key(|&i| (left[i as usize].id, i));
    rows.dedup();
    let mut cols: Vec<u32> = items.iter().map(|(p, _)| p.right).collect();
    cols.sort_by_key(|&j| (right[j as usize].id, j));
    cols.dedup();
    let row_pos = |i: u32| rows.binary_search_by_key(&(left[i as usize].id, i), |&r| (left[r as usize].id, r)).unwrap();
    let col_pos =
        |j: u32| cols.binary_search_by_key(&(right[j as usize].id, j), |&c| (right[c as usize].id, c)).unwrap();
    let mut edges: Vec<Vec<(usize, f64, Pair)>> = vec![Vec::new(); rows.len()];
    for (k, (p, c)) in items.iter().enumerate() {
        // A component can hold millions of pairs: look at the flag while building it too.
        if k % 65_536 == 65_535 && cancel.load(AtomicOrdering::Relaxed) {
            return None;
        }
        edges[row_pos(p.left)].push((col_pos(p.right), *c, *p));
    }
    let n_right = cols.len();
    let ghost_pair = Pair { left: 0, right: u32::MAX, sep_arcsec: f64::NAN };
    for (r, e) in edges.iter_mut().enumerate() {
        e.sort_by_key(|x| x.0);
        e.push((n_right + r, ghost, ghost_pair));
    }
    if cancel.load(AtomicOrdering::Relaxed) {
        return None;
    }
    let plain: Vec<Vec<(usize, f64)>> = edges.iter().map(|e| e.iter().map(|x| (x.0, x.1)).collect()).collect();
    let assignment = min_cost_assignment(n_right + rows.len(), &plain, cancel)?;
    let chosen = assignment
        .iter()
        .enumerate()
        .filter(|&(_, &col)| col < n_right)
        .map(|(r, &col)| edges[r].iter().find(|x| x.0 == col).expect("assigned along an edge").2)
        .collect();
    Some(chosen)
}

/// Heap key: (distance, column is assigned, column), ordered with total_cmp on the distance.
struct Key(f64, bool, usize);

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1)).then(self.2.cmp(&o.2))
    }
}

const FREE: usize = usize::MAX;

/// Minimum-cost assignment of every row to a distinct column, where row `i` may take column
/// `j` at cost `c` for each `(j, c)` in `edges[i]` (every row must have a feasible column; here
/// each has a private ghost). Shortest augmenting paths with Dijkstra over the sparse edges and
/// row/column potentials (the dense version is scipy's `linear_sum_assignment`, Crouse 2016).
/// Ties prefer free columns, then lower column indexes, so the result is deterministic.
/// Returns the column of each row, or None when `cancel` was set.
pub fn min_cost_assignment(n_cols: usize, edges: &[Vec<(usize, f64)>], cancel: &AtomicBool) -> Option<Vec<usize>> {
    let n_rows = edges.len();
    // Shift costs to be non-negative: every row takes exactly one column, so this adds the
    // same constant to every feasible total and keeps Dijkstra's reduced costs >= 0.
    let min_cost = edges.iter().flatten().map(|e| e.1).fold(f64::INFINITY, f64::min);
    let shift = if min_cost.is_finite() { min_cost } else { 0.0 };
    let mut u = vec![0.0; n_rows];
    let mut v = vec![0.0; n_cols];
    let mut row_of_col = vec![FREE; n_cols];
    let mut col_of_row = vec![FREE; n_rows];
    let mut dist = vec![f64::INFINITY; n_cols];
    let mut path = vec![FREE; n_cols];
    let mut scanned = vec![false; n_cols];
    for s in 0..n_rows {
        if cancel.load(AtomicOrdering::Relaxed) {
            return None;
        }
        let mut touched: Vec<usize> = Vec::new();
        let mut visited_rows: Vec<usize> = Vec::new();
        let mut scanned_cols: Vec<usize> = Vec::new();
        let mut heap: BinaryHeap<Reverse<Key>> = BinaryHeap::new();
        let mut min_val = 0.0;
        let mut i = s;
        let sink = loop {
            // A row of a dense component can relax millions of edges: look at the flag here too.
            if visited_rows.len() % 64 == 63 && cancel.load(AtomicOrdering::Relaxed) {
                return None;
            }
            visited_rows.push(i);
            for &(j, c) in &edges[i] {
                if scanned[j] {
                    continue;
                }
                let r = min_val + (c - shift) - u[i] - v[j];
                if r < dist[j] {
                    if dist[j] == f64::INFINITY {
                        touched.push(j);
                    }
                    dist[j] = r;
                    path[j] = i;
                    heap.push(Reverse(Key(r, row_of_col[j] != FREE, j)));
                }
            }
            let j = loop {
                let Reverse(Key(d, _, j)) = heap.pop().expect("every row has a free ghost column");
                if !scanned[j] && d <= dist[j] {
                    break j;
                }
            };
            min_val = dist[j];
            scanned[j] = true;
            scanned_cols.push(j);
            if row_of_col[j] == FREE {
                break j;
            }
            i = row_of_col[j];
        };
        u[s] += min_val;
        for &i in &visited_rows[1..] {
            u[i] += min_val - dist[col_of_row[i]];
        }
        for &j in &scanned_cols {
            v[j] -= min_val - dist[j];
        }
        let mut j = sink;
        loop {
            let i = path[j];
            row_of_col[j] = i;
            let prev = col_of_row[i];
            col_of_row[i] = j;
            if i == s {
                break;
            }
            j = prev;
        }
        for j in touched {
            dist[j] = f64::INFINITY;
            scanned[j] = false;
        }
    }
    Some(col_of_row)
}
