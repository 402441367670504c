//! Micro-benchmarks of the per-row kernels behind the SQL functions, each next to a baseline
//! measured in the same run: `sep_arcsec` against the plain acos and haversine formulas (the
//! cheap, less accurate alternatives), `chunk_id` against a bare floor division (the cheapest possible key) and
//! against rebuilding the chunker per call (what caching saves), and H3/HEALPix cell lookups.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use skycat_core::chunker::Chunker;
use skycat_core::stripes::StripeScheme;
use skycat_core::{h3cells, healpix, skykey, sphere};

const N: usize = 10_000;

fn positions(seed: u64) -> Vec<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..N).map(|_| (rng.random_range(0.0..360.0), rng.random_range(-1.0f64..1.0).asin().to_degrees())).collect()
}

fn acos_sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (s1, c1) = dec1.to_radians().sin_cos();
    let (s2, c2) = dec2.to_radians().sin_cos();
    (s1 * s2 + c1 * c2 * (ra2 - ra1).to_radians().cos()).clamp(-1.0, 1.0).acos().to_degrees() * 3600.0
}

fn haversine_sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let sd = ((dec2 - dec1).to_radians() * 0.5).sin();
    let sa = ((ra2 - ra1).to_radians() * 0.5).sin();
    let h = sd * sd + dec1.to_radians().cos() * dec2.to_radians().cos() * sa * sa;
    2.0 * h.sqrt().min(1.0).asin().to_degrees() * 3600.0
}

fn separation(c: &mut Criterion) {
    let a = positions(1);
    let b = positions(2);
    let mut g = c.benchmark_group("sep_arcsec");
    g.throughput(Throughput::Elements(N as u64));
    type SepFn = fn(f64, f64, f64, f64) -> f64;
    let kernels: [(&str, SepFn); 3] = [
        ("skycat_sep_arcsec", sphere::sep_arcsec),
        ("baseline_acos", acos_sep_arcsec),
        ("baseline_haversine", haversine_sep_arcsec),
    ];
    for (name, f) in kernels {
        g.bench_function(name, |bch| {
            bch.iter(|| {
                let mut s = 0.0;
                for (p, q) in a.iter().zip(&b) {
                    s += f(black_box(p.0), p.1, q.0, q.1);
                }
                s
            })
        });
    }
    g.finish();
}

fn partition_keys(c: &mut Criterion) {
    let pts = positions(3);
    let mut g = c.benchmark_group("partition_key");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("baseline_floor_division", |bch| {
        bch.iter(|| pts.iter().map(|p| ((black_box(p.1) + 90.0) / 1.0).floor() as i64).sum::<i64>())
    });
    let stripes = StripeScheme::new(1.0).unwrap();
    g.bench_function("stripe_1deg", |bch| {
        bch.iter(|| pts.iter().map(|p| stripes.stripe_of(black_box(p.1))).sum::<usize>())
    });
    for (ns, nss) in [(340, 3), (85, 12)] {
        g.bench_with_input(
            BenchmarkId::new("chunk_id_cached", format!("{ns}x{nss}")),
            &(ns, nss),
            |bch, &(ns, nss)| {
                bch.iter(|| {
                    pts.iter()
                        .map(|p| Chunker::cached(ns, nss).unwrap().locate(black_box(p.0), p.1).chunk_id as i64)
                        .sum::<i64>()
                })
            },
        );
    }
    g.bench_function("h3_cell_res7", |bch| {
        bch.iter(|| pts.iter().map(|p| h3cells::cell(black_box(p.0), p.1, 7).unwrap()).sum::<i64>())
    });
    g.bench_function("healpix_cell_d12", |bch| {
        bch.iter(|| pts.iter().map(|p| healpix::cell(black_box(p.0), p.1, 12).unwrap()).sum::<i64>())
    });
    g.finish();

    let mut g = c.benchmark_group("cone_key_ranges");
    g.throughput(Throughput::Elements(1000));
    for r in [1.0, 2.0, 36.0, 600.0] {
        g.bench_with_input(BenchmarkId::from_parameter(format!("{r}arcsec")), &r, |bch, &r| {
            bch.iter(|| {
                pts[..1000]
                    .iter()
                    .map(|p| skykey::key_ranges(black_box(p.0), p.1, r, skykey::MAX_RANGES).len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();

    // What the per-thread cache saves: building the 340x3 chunker once per call.
    let mut g = c.benchmark_group("chunker_build");
    g.bench_function("uncached_340x3_per_call", |bch| {
        bch.iter(|| Chunker::new(black_box(340), 3).unwrap().locate(10.0, 10.0).chunk_id)
    });
    g.finish();
}

criterion_group!(benches, separation, partition_keys);
criterion_main!(benches);
