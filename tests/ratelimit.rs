//! The rate limiter: its timestamp bucket against a plain token counter (proptest), its
//! table bound, and its one sweep timer on a real loop.

mod longpoll_server;
mod util;

use looplab::ratelimit::{Buckets, Limited, RateLimiter};
use looplab::{HandleKind, RunMode};
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use util::http::post;
use util::{new_loop, on_every_backend};

/// The textbook bucket, in whole nanoseconds: a credit that refills with elapsed time
/// up to `burst` tokens, and a take that costs one token's time.
struct Model {
    every: u128,
    cap: u128,
    keys: HashMap<u8, (u128, u128)>, // key -> (credit, at)
}

impl Model {
    fn new(every: Duration, burst: u32) -> Model {
        let every = every.as_nanos();
        Model {
            every,
            cap: every * u128::from(burst),
            keys: HashMap::new(),
        }
    }

    /// Ok, or how long until the credit holds one token.
    fn take(&mut self, key: u8, now: u128) -> Result<(), u128> {
        let (credit, at) = self.keys.get(&key).copied().unwrap_or((self.cap, now));
        let credit = (credit + (now - at)).min(self.cap);
        if credit >= self.every {
            self.keys.insert(key, (credit - self.every, now));
            Ok(())
        } else {
            self.keys.insert(key, (credit, now));
            Err(self.every - credit)
        }
    }
}

/// One step of a run: time passes, then a key takes a token (or the table is swept).
#[derive(Clone, Debug)]
struct Step {
    after_us: u64,
    key: u8,
    sweep: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (0u64..40_000, 0u8..6, proptest::bool::weighted(0.15)).prop_map(
        |(after_us, key, sweep)| Step {
            after_us,
            key,
            sweep,
        },
    );
    proptest::collection::vec(step, 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every take answers as the token counter does (same verdict, same wait), and
    /// sweeps in between change no answer: a swept bucket was full.
    #[test]
    fn the_timestamp_bucket_is_a_token_bucket(rate in 1u32..2000, burst in 1u32..8, run in steps()) {
        let mut b = Buckets::new(f64::from(rate), burst, 1000);
        let mut model = Model::new(b.every(), burst);
        let t0 = Instant::now();
        let mut now = 0u128;
        for s in run {
            now += u128::from(s.after_us) * 1000;
            let at = t0 + Duration::from_nanos(now as u64);
            if s.sweep {
                b.sweep(at);
                continue;
            }
            let got = b.take(s.key, at).map_err(|l| match l {
                Limited::Empty { retry_after } => retry_after.as_nanos(),
                other => panic!("the table is far from full: {other:?}"),
            });
            prop_assert_eq!(got, model.take(s.key, now), "key {} at {} ns", s.key, now);
        }
    }

    /// With a small table: never more than `max_keys` keys; a newcomer is refused
    /// exactly when the table is full, and refusing it charges nobody.
    #[test]
    fn the_table_holds_its_bound(max_keys in 1usize..4, run in steps()) {
        let mut b = Buckets::new(50.0, 2, max_keys);
        let mut model = Model::new(b.every(), 2);
        let t0 = Instant::now();
        let mut now = 0u128;
        for s in run {
            now += u128::from(s.after_us) * 1000;
            let at = t0 + Duration::from_nanos(now as u64);
            if s.sweep {
                b.sweep(at);
                continue;
            }
            let (known, full) = (b.contains(&s.key), b.len() >= max_keys);
            match b.take(s.key, at) {
                Err(Limited::TableFull { .. }) => prop_assert!(!known && full),
                got => {
                    prop_assert!(known || !full);
                    let got = got.map_err(|l| l.retry_after().as_nanos());
                    prop_assert_eq!(got, model.take(s.key, now));
                }
            }
            prop_assert!(b.len() <= max_keys);
        }
    }
}

/// A hundred thousand different keys in one instant: the table stops at its bound,
/// the keys already in keep their buckets, and sweeps forget each once it is full again.
#[test]
fn a_flood_of_keys_stops_at_the_bound() {
    let mut b = Buckets::new(10.0, 5, 1000);
    let t0 = Instant::now();
    let mut refused = 0;
    for key in 0u32..100_000 {
        if let Err(l) = b.take(key, t0) {
            assert_eq!(
                l,
                Limited::TableFull {
                    retry_after: b.refill()
                }
            );
            refused += 1;
        }
    }
    assert_eq!((b.len(), refused), (1000, 99_000));
    assert!(
        b.take(0, t0).is_ok(),
        "a tracked key is not refused for being tracked"
    );
    // Each key took one token (key 0 two): full again one (two) token's time later.
    let every = b.every();
    assert_eq!(
        b.sweep(t0 + every - Duration::from_nanos(1)),
        0,
        "never early"
    );
    assert_eq!(b.sweep(t0 + every), 999);
    assert!(b.contains(&0));
    assert_eq!(b.sweep(t0 + every * 2), 1);
    assert!(b.is_empty());
}

/// On a loop: one sweep timer for any number of keys, unref'd (the loop exits with it
/// armed), and it forgets the quiet keys by itself; `stop` clears it.
#[test]
fn one_sweep_timer_forgets_quiet_keys() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        // 100 tokens a second, burst 2: an empty bucket is full again after 20 ms.
        let limiter: RateLimiter<u32> = RateLimiter::new(100.0, 2, 64);
        for key in 0..50 {
            assert!(limiter.take(&mut lp, key).is_ok());
        }
        assert!(limiter.take(&mut lp, 7).is_ok());
        let third = limiter.take(&mut lp, 7).unwrap_err();
        assert!(
            matches!(third, Limited::Empty { retry_after } if retry_after <= Duration::from_millis(10))
        );
        let timers = |lp: &looplab::Loop| {
            lp.handles()
                .iter()
                .filter(|h| h.kind == HandleKind::Timer)
                .count()
        };
        assert_eq!(timers(&lp), 1, "one wheel entry for 50 keys");
        assert!(
            !lp.has_ref(limiter.sweeper().unwrap()),
            "the sweep never holds the loop"
        );
        assert!(
            !lp.run(RunMode::Default).unwrap(),
            "nothing else holds the loop"
        );
        // Keep the loop going long enough for a sweep: 20 ms of refill, then the timer.
        lp.set_timeout(Duration::from_millis(100), |_, _| {});
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            limiter.len(),
            0,
            "every bucket was full again and was forgotten"
        );
        assert_eq!(timers(&lp), 0, "an empty table arms no sweep");
        assert!(limiter.take(&mut lp, 1).is_ok());
        limiter.stop(&mut lp);
        assert!(lp.handles().is_empty(), "{:?}", lp.handles());
    });
}

/// The long-poll server on the library limiter, as chapter 16's exercise shows it:
/// a burst of 2 publishes, then 429 with a Retry-After in whole seconds, after which a
/// publish goes through again. `stop` asserts the loop ends with no handle: the shutdown
/// cleared the limiter's sweep timer.
#[test]
fn the_long_poll_server_answers_429_from_the_library_bucket() {
    on_every_backend(|b| {
        let server = longpoll_server::Server::start(b, |cfg| {
            cfg.publish_rate = 1.0;
            cfg.publish_burst = 2.0;
        });
        let statuses: Vec<u16> = (0..3)
            .map(|i| post(server.addr, "/publish", &format!(r#"{{"text":"m{i}"}}"#)).status)
            .collect();
        assert_eq!(statuses, [201, 201, 429]);
        let limited = post(server.addr, "/publish", r#"{"text":"again"}"#);
        assert_eq!(limited.status, 429);
        let after = limited.header("Retry-After").unwrap_or("none");
        assert!(matches!(after, "1" | "2"), "Retry-After: {after}");
        let wait: u64 = after.parse().unwrap();
        std::thread::sleep(Duration::from_secs(wait));
        assert_eq!(
            post(server.addr, "/publish", r#"{"text":"later"}"#).status,
            201
        );
        let stats = server.stop();
        assert_eq!(stats.chat.rate_limited, 2);
    });
}
