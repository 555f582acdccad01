//! How the long-poll server is set up: every limit has a field here and a flag on the
//! command line.

use super::conn::WireConfig;
use crate::servers::http::Limits;
use std::net::SocketAddr;
use std::time::Duration;

/// How the server is set up; every limit has a flag on the command line.
#[derive(Clone, Debug)]
pub struct LongPollConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How long a poll is held when the client does not say (at most 120 s).
    pub poll_timeout: Duration,
    /// Held polls at most; more get 503.
    pub max_waiters: usize,
    /// Connections at most; more are accepted and closed.
    pub max_conns: usize,
    /// Messages retained.
    pub log_size: usize,
    /// Longest message text, bytes; longer gets 413.
    pub max_text: usize,
    /// A request head must be complete this soon after it starts (408).
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// A reply left unread this long closes its connection.
    pub send_timeout: Duration,
    /// At shutdown, connections still open after this are cut.
    pub shutdown_grace: Duration,
    /// Publishes per second per client address, and the burst allowed (429).
    pub publish_rate: f64,
    /// The burst of publishes a client may save up.
    pub publish_burst: f64,
    /// Request size limits.
    pub limits: Limits,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        LongPollConfig {
            addr: ([127, 0, 0, 1], 8080).into(),
            poll_timeout: Duration::from_secs(25),
            max_waiters: 10_000,
            max_conns: 100_000,
            log_size: 1024,
            max_text: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            publish_rate: 20.0,
            publish_burst: 40.0,
            limits: Limits::default(),
        }
    }
}

impl LongPollConfig {
    pub(super) fn wire(&self) -> WireConfig {
        WireConfig {
            limits: self.limits,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            send_timeout: self.send_timeout,
            max_conns: self.max_conns,
            shutdown_grace: self.shutdown_grace,
        }
    }
}
