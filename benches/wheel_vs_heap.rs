//! Criterion: 1M timers, insert, cancel half, advance 1 ms at a time until the rest fire,
//! on the timing wheel and on a binary heap with lazy deletion.
//! Run: `cargo bench --bench wheel_vs_heap`.

use criterion::{criterion_group, criterion_main, Criterion};
use looplab::bench::timers::{deadlines, run_heap, run_wheel};

fn wheel_vs_heap(c: &mut Criterion) {
    let d = deadlines(1_000_000);
    let mut group = c.benchmark_group("1M timers: insert, cancel half, fire the rest");
    group.sample_size(10);
    group.bench_function("wheel", |b| b.iter(|| run_wheel(&d)));
    group.bench_function("heap", |b| b.iter(|| run_heap(&d)));
    group.finish();
}

criterion_group!(benches, wheel_vs_heap);
criterion_main!(benches);
