//! A token bucket per client address: `rate` tokens a second, at most `burst` saved up.
//! A publish takes a token; with none left the answer is 429 and how long to wait.
//! The table of buckets is bounded: when full, buckets that have refilled (clients
//! that went quiet) are forgotten, and if none has, the newcomer is refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many client addresses are tracked at most.
pub const MAX_CLIENTS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets by client address.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// `rate` per second, `burst` at most.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            buckets: HashMap::new(),
        }
    }

    /// Take a token for `ip`, or say how long until one is there.
    pub fn take(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_CLIENTS {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if self.buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(20.0, 40.0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        for i in 0..40 {
            assert!(rl.take(ip, t0).is_ok(), "burst token {i}");
        }
        let wait = rl.take(ip, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(40) && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
        assert!(
            rl.take(ip, t0 + Duration::from_millis(50)).is_ok(),
            "one token refilled"
        );
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(rl.take(other, t0).is_ok(), "buckets are per address");
    }
}
