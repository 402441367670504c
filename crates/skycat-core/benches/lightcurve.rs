//! Micro-benchmark of `lc_stats` finalisation: the statistics of light curves of 17 epochs (a
//! band of a typical forced-source history) and of 200, arriving in time order (as the DRP
//! stores forced sources) and shuffled (as a hash aggregate may deliver them), next to the cost
//! of copying the rows (the floor any finalisation pays).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use skycat_core::lightcurve::{lc_stats, LcRow};

const CURVES: usize = 2_000;

fn curves(len: usize, shuffled: bool) -> Vec<Vec<LcRow>> {
    let mut rng = StdRng::seed_from_u64(len as u64);
    (0..CURVES)
        .map(|_| {
            let mut c: Vec<LcRow> = (0..len)
                .map(|i| {
                    let err = rng.random_range(5.0..50.0);
                    [1000.0 + err * rng.random_range(-3.0..3.0), err, 60000.0 + i as f64 * 3.1]
                })
                .collect();
            if shuffled {
                c.shuffle(&mut rng);
            }
            c
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lc_stats");
    for len in [17, 200] {
        for (order, shuffled) in [("time-ordered", false), ("shuffled", true)] {
            let input = curves(len, shuffled);
            g.throughput(Throughput::Elements(CURVES as u64));
            let mut work = input.clone();
            g.bench_with_input(BenchmarkId::new(format!("stats/{order}"), len), &len, |b, _| {
                b.iter(|| {
                    for (w, i) in work.iter_mut().zip(&input) {
                        w.copy_from_slice(i);
                        black_box(lc_stats(w));
                    }
                })
            });
            g.bench_with_input(BenchmarkId::new(format!("copy-only/{order}"), len), &len, |b, _| {
                b.iter(|| {
                    for (w, i) in work.iter_mut().zip(&input) {
                        w.copy_from_slice(i);
                        black_box(&w);
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
