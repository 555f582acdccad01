//! Publishes per client: the library's token bucket ([`crate::ratelimit`]) keyed by
//! the client's address. A publish takes a token; with none left the answer is 429 and
//! `Retry-After`. At most [`MAX_CLIENTS`] addresses are tracked; a new address beyond
//! that is refused (429) until the limiter's sweep forgets the clients that went quiet.

use crate::ratelimit::{self, Limited};
use crate::Loop;
use std::net::IpAddr;

/// How many client addresses are tracked at most.
pub const MAX_CLIENTS: usize = 10_000;

/// Buckets by client address.
#[derive(Clone)]
pub struct RateLimiter(ratelimit::RateLimiter<IpAddr>);

impl RateLimiter {
    /// `rate` per second, `burst` at most (rounded to a whole token, at least one).
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        // A float-to-int `as` saturates (NaN gives 0, raised to 1 by the library).
        let burst = burst.round() as u32;
        RateLimiter(ratelimit::RateLimiter::new(rate, burst, MAX_CLIENTS))
    }

    /// Take a token for `ip` now, or say why not and when to try again.
    pub fn take(&self, lp: &mut Loop, ip: IpAddr) -> Result<(), Limited> {
        self.0.take(lp, ip)
    }

    /// Forget every client and clear the sweep timer (at shutdown).
    pub fn stop(&self, lp: &mut Loop) {
        self.0.stop(lp);
    }
}
