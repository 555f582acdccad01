//! A log-bucketed histogram: HdrHistogram's idea, small enough to read in one sitting.
//!
//! Recording must cost next to nothing, since the loop records on every tick: a value
//! goes into the bucket found from its leading zeros and its next three bits, one
//! array increment. Each power of two is split into 8 equal buckets, so a bucket is
//! never wider than 1/8 of the values in it: a percentile read back is at most 12.5%
//! above the true value (HDR calls this 3 bits of precision; `hdrhistogram` in the tools
//! layer offers more, but the core stays on its lean crates).
//!
//! ```text
//!   value      0 1 .. 7 | 8 9 .. 15 | 16 18 .. 30 | 32 36 .. 60 | ...
//!   bucket     0 1 .. 7 | 8 9 .. 15 | 16 17 .. 23 | 24 25 .. 31 | ...
//!   width      1        | 1         | 2           | 4           | doubles each octave
//! ```
//!
//! Durations are recorded in nanoseconds, counts as they are. Values past
//! [`MAX_VALUE`] (2^40 - 1: 18 minutes in ns) are clamped to it.

use std::time::Duration;

/// Bits of a value kept below its leading one: 3 bits, 8 buckets per octave.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values need at most this many bits; larger ones are clamped.
const MAX_BITS: u32 = 40;
/// The largest value recorded as itself.
pub const MAX_VALUE: u64 = (1 << MAX_BITS) - 1;
/// Exact buckets for 0..SUB, then SUB buckets for each octave up to MAX_BITS.
const BUCKETS: usize = SUB + (MAX_BITS - SUB_BITS) as usize * SUB;

/// Counts of values by bucket, with their number, sum and maximum.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Histogram {{ count: {}, p50: {}, p99: {}, max: {} }}",
            self.count,
            self.value_at_quantile(0.5),
            self.value_at_quantile(0.99),
            self.max
        )
    }
}

/// The bucket of `v`: exact below SUB, then the octave and the 3 bits after the lead.
fn bucket_of(v: u64) -> usize {
    let v = v.min(MAX_VALUE);
    if v < SUB as u64 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros(); // the lead bit's position, >= SUB_BITS
    let shift = octave - SUB_BITS;
    let top = (v >> shift) as usize; // SUB..2*SUB: the lead bit and the next three
    (shift as usize + 1) * SUB + (top - SUB)
}

/// The smallest value of bucket `i` (`i == BUCKETS` gives the first value past the end).
fn lowest(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = i / SUB - 1;
    let top = (i % SUB + SUB) as u64;
    top << shift
}

/// The largest value of bucket `i`.
fn highest(i: usize) -> u64 {
    lowest(i + 1) - 1
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Count one value.
    pub fn record(&mut self, v: u64) {
        let v = v.min(MAX_VALUE);
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.max = self.max.max(v);
    }

    /// Count one duration, in nanoseconds.
    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The largest value counted (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value below which a fraction `q` (0..=1) of the values lie: the top of the
    /// bucket holding that rank, never above the maximum. 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return highest(i).min(self.max);
            }
        }
        self.max
    }

    /// A quantile of a histogram of nanoseconds, as a Duration.
    pub fn duration_at_quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.value_at_quantile(q))
    }

    /// Values at most `2^bits - 1`: exact, because that is the top of a bucket.
    pub fn count_below_pow2(&self, bits: u32) -> u64 {
        let top = if bits >= MAX_BITS {
            MAX_VALUE
        } else {
            (1u64 << bits) - 1
        };
        self.counts[..=bucket_of(top)].iter().sum()
    }

    /// Add every value of `other` to this one.
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_values_without_gaps() {
        for i in 0..BUCKETS {
            assert_eq!(bucket_of(lowest(i)), i, "lowest of {i}");
            assert_eq!(bucket_of(highest(i)), i, "highest of {i}");
            if i + 1 < BUCKETS {
                assert_eq!(highest(i) + 1, lowest(i + 1));
            }
        }
        assert_eq!(highest(BUCKETS - 1), MAX_VALUE);
    }

    #[test]
    fn a_bucket_is_at_most_an_eighth_of_its_values_wide() {
        for i in SUB..BUCKETS {
            let width = highest(i) - lowest(i) + 1;
            assert!(
                width * 8 <= lowest(i),
                "bucket {i}: {width} wide at {}",
                lowest(i)
            );
        }
    }

    #[test]
    fn quantiles_are_within_an_eighth_and_never_above_max() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.value_at_quantile(0.5);
        assert!((500_000..=562_500).contains(&p50), "{p50}");
        assert_eq!(h.value_at_quantile(1.0), 1_000_000);
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.count(), 1000);
        assert_eq!(Histogram::new().value_at_quantile(0.5), 0);
    }

    #[test]
    fn counts_at_powers_of_two_are_exact_and_cumulative() {
        let mut h = Histogram::new();
        for v in [0, 1, 2, 3, 4, 7, 8, 1023, 1024, 1025, u64::MAX] {
            h.record(v);
        }
        assert_eq!(h.count_below_pow2(0), 1); // 0
        assert_eq!(h.count_below_pow2(1), 2); // 0, 1
        assert_eq!(h.count_below_pow2(2), 4); // ..3
        assert_eq!(h.count_below_pow2(3), 6); // ..7
        assert_eq!(h.count_below_pow2(10), 8); // ..1023
        assert_eq!(h.count_below_pow2(11), 10);
        assert_eq!(h.count_below_pow2(MAX_BITS), 11, "clamped, still counted");
        assert_eq!(h.max(), MAX_VALUE);
    }

    #[test]
    fn adding_merges_counts_sum_and_max() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        a.record(10);
        b.record(20);
        b.record(5);
        a.add(&b);
        assert_eq!((a.count(), a.sum(), a.max()), (3, 35, 20));
    }
}
