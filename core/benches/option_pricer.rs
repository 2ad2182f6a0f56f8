//! Cost of the fixed-point Black-76 pricer: one quote (call, put and their Greeks) near the money, far out of
//! the money, and at a long expiry; and the normal cdf alone.
#![allow(missing_docs)] // criterion macros generate undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shardex_core::option::{
    black76::{quote, Inputs, YEAR_MS},
    fixed::WAD,
    normal::cdf,
};

fn pricer(c: &mut Criterion) {
    let mut group = c.benchmark_group("black76");
    let cases = [
        (
            "atm_7d",
            Inputs {
                forward_micros: 3_000_000_000,
                strike_micros: 3_000_000_000,
                vol_ppm: 700_000,
                tau_ms: 7 * 86_400_000,
            },
        ),
        (
            "otm_call_30d",
            Inputs {
                forward_micros: 3_000_000_000,
                strike_micros: 4_500_000_000,
                vol_ppm: 900_000,
                tau_ms: 30 * 86_400_000,
            },
        ),
        (
            "itm_call_1y",
            Inputs { forward_micros: 3_000_000_000, strike_micros: 1_500_000_000, vol_ppm: 600_000, tau_ms: YEAR_MS },
        ),
    ];
    for (name, inputs) in cases {
        group.bench_function(BenchmarkId::new("quote", name), |b| b.iter(|| quote(std::hint::black_box(&inputs))));
    }
    group.finish();
    let mut group = c.benchmark_group("normal");
    for x in [WAD / 2, 2 * WAD, 5 * WAD] {
        group.bench_function(BenchmarkId::new("cdf", x / (WAD / 10)), |b| b.iter(|| cdf(std::hint::black_box(x))));
    }
    group.finish();
}

criterion_group!(benches, pricer);
criterion_main!(benches);
