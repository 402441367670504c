//! Times the phases of a 1M x 1M cross-match outside PostgreSQL:
//! `cargo run --release -p skycat-sim --example profile_crossmatch`.
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use skycat_core::crossmatch::{self as xm, zones::ZoneIndex, Control, Mode, Source};
use skycat_sim::sky;

fn main() {
    let n = 1_000_000;
    let l = sky::uniform(n, 11, 0);
    let r = sky::reobserve(&l, 12, 50_000_000, 0.8, 0.1, n / 5);
    let conv = |v: &[sky::SimSource]| -> Vec<Source> { v.iter().map(|s| Source::new(s.id, s.ra, s.dec)).collect() };
    let (left, right) = (conv(&l), conv(&r));
    let t = Instant::now();
    let index = ZoneIndex::new(&right, 2.0);
    println!("index build     {:>7.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let order = index.visit_order(&left);
    println!("visit order     {:>7.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let mut n_pairs = 0usize;
    for &i in &order {
        index.for_each_within(left[i as usize].ra, left[i as usize].dec, |_, _| n_pairs += 1);
    }
    println!("queries (1 thr) {:>7.1} ms  {n_pairs} pairs", t.elapsed().as_secs_f64() * 1e3);
    let stop = AtomicBool::new(false);
    for mode in [Mode::All, Mode::Greedy, Mode::Optimal] {
        let t = Instant::now();
        let rows =
            xm::crossmatch(&left, &right, 2.0, mode, false, &Control { max_pairs: usize::MAX, cancel: &stop }).unwrap();
        println!("crossmatch {mode:?} {:>7.1} ms  {} rows", t.elapsed().as_secs_f64() * 1e3, rows.len());
    }
}
