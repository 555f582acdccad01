//! The timing wheel against the simplest correct model: a list sorted by
//! (deadline, insertion order). Random inserts, cancels and time advances, with deadlines
//! and jumps up to 2^32 ms; the wheel must fire exactly the model's timers, in its order.

use looplab::timer::{TimerKey, Wheel};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Insert a timer `delay` ms after the wheel's current time.
    Insert(u64),
    /// Cancel the n-th live timer (modulo how many there are).
    Cancel(usize),
    /// Move time forward by this many ms.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let delay = prop_oneof![0u64..70, 0u64..5000, 0u64..(1 << 20), 0u64..(1 << 32)];
    let step = prop_oneof![0u64..3, 0u64..100, 0u64..10_000, 0u64..(1 << 32)];
    prop_oneof![
        4 => delay.prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => step.prop_map(Op::Advance),
    ]
}

/// The model: (deadline, seq, id), kept sorted.
#[derive(Default)]
struct Model {
    timers: Vec<(u64, u64, u32)>,
    seq: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn wheel_fires_what_a_sorted_list_fires(ops in prop::collection::vec(op(), 1..300)) {
        let mut wheel = Wheel::new();
        let mut model = Model::default();
        let mut keys: Vec<(u32, TimerKey)> = Vec::new(); // live (id, wheel key)
        let mut now = 0u64;
        let mut next_id = 0u32;
        for op in ops {
            match op {
                Op::Insert(delay) => {
                    let deadline = now + delay;
                    let key = wheel.insert(deadline, next_id);
                    model.timers.push((deadline, model.seq, next_id));
                    model.seq += 1;
                    model.timers.sort();
                    keys.push((next_id, key));
                    next_id += 1;
                }
                Op::Cancel(n) if !keys.is_empty() => {
                    let (id, key) = keys.remove(n % keys.len());
                    prop_assert_eq!(wheel.cancel(key), Some(id));
                    model.timers.retain(|t| t.2 != id);
                }
                Op::Cancel(_) => {}
                Op::Advance(step) => {
                    now += step;
                    let mut out = Vec::new();
                    wheel.advance(now, &mut out);
                    let fired: Vec<(u64, u32)> = out.into_iter().map(|e| (e.deadline, e.value)).collect();
                    let split = model.timers.partition_point(|t| t.0 <= now);
                    let expected: Vec<(u64, u32)> = model.timers.drain(..split).map(|t| (t.0, t.2)).collect();
                    prop_assert_eq!(&fired, &expected);
                    keys.retain(|(id, _)| !fired.iter().any(|f| f.1 == *id));
                }
            }
            prop_assert_eq!(wheel.len(), model.timers.len());
            let next = wheel.next_deadline().map(|(d, id)| (d, *id));
            prop_assert_eq!(next, model.timers.first().map(|t| (t.0, t.2)));
        }
    }
}

/// A key outlives its timer harmlessly: once the entry is reused by another timer, the
/// old key cancels nothing, and the new timer still fires.
#[test]
fn a_stale_key_cancels_nothing() {
    let mut wheel = Wheel::new();
    let old = wheel.insert(10, "old");
    assert_eq!(wheel.cancel(old), Some("old"));
    let new = wheel.insert(10, "new");
    assert_ne!(old, new);
    assert_eq!(wheel.cancel(old), None, "the old key reached the new timer");
    let mut out = Vec::new();
    wheel.advance(10, &mut out);
    assert_eq!(
        out.into_iter().map(|e| e.value).collect::<Vec<_>>(),
        ["new"]
    );
}

#[derive(Debug, Clone)]
enum Crowded {
    /// Insert a timer due `delay` ms from now (small range: timers share slots).
    Insert(u64),
    /// Cancel the n-th live timer in the model's order: the next one, when n is 0.
    Cancel(usize),
    /// Move time forward.
    Advance(u64),
}

fn crowded() -> impl Strategy<Value = Crowded> {
    // A few windows, so most timers share a slot with many others, arriving out of order:
    // inside one ms (level 0), one 64 ms slot (level 1), one 4096 ms slot (level 2).
    let delay = prop_oneof![0u64..3, 60u64..130, 4000u64..8200];
    prop_oneof![
        6 => delay.prop_map(Crowded::Insert),
        3 => prop_oneof![Just(0usize), any::<usize>()].prop_map(Crowded::Cancel),
        2 => prop_oneof![0u64..2, 0u64..70, 0u64..5000].prop_map(Crowded::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `next_deadline` against a BTreeMap of (deadline, seq) where timers crowd into a
    /// few slots and the earliest is often the one cancelled: the wheel keeps only its
    /// first slot in order, and that order must be exact after every operation.
    #[test]
    fn next_deadline_is_the_models_first_when_slots_are_crowded(
        ops in prop::collection::vec(crowded(), 1..400)
    ) {
        use std::collections::BTreeMap;
        let mut wheel = Wheel::new();
        let mut model: BTreeMap<(u64, u64), (u32, TimerKey)> = BTreeMap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for op in ops {
            match op {
                Crowded::Insert(delay) => {
                    let id = seq as u32;
                    let key = wheel.insert(now + delay, id);
                    model.insert((now + delay, seq), (id, key));
                    seq += 1;
                }
                Crowded::Cancel(n) if !model.is_empty() => {
                    let at = *model.keys().nth(n % model.len()).unwrap();
                    let (id, key) = model.remove(&at).unwrap();
                    prop_assert_eq!(wheel.cancel(key), Some(id));
                }
                Crowded::Cancel(_) => {}
                Crowded::Advance(step) => {
                    now += step;
                    let mut out = Vec::new();
                    wheel.advance(now, &mut out);
                    let fired: Vec<(u64, u32)> = out.into_iter().map(|e| (e.deadline, e.value)).collect();
                    let later = model.split_off(&(now + 1, 0));
                    let expected: Vec<(u64, u32)> = model.iter().map(|(k, v)| (k.0, v.0)).collect();
                    model = later;
                    prop_assert_eq!(fired, expected);
                }
            }
            let next = wheel.next_deadline().map(|(d, id)| (d, *id));
            prop_assert_eq!(next, model.iter().next().map(|(k, v)| (k.0, v.0)));
            prop_assert_eq!(wheel.len(), model.len());
        }
    }
}
