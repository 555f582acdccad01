//! Happy eyeballs (RFC 8305): connect to a name that has several addresses without
//! waiting out a dead one.
//!
//! A name like `localhost` resolves to `::1` and `127.0.0.1`; a server may listen on
//! only one of them, and a network may silently drop one family. Trying the addresses
//! one after another costs a whole connect timeout (a minute or more) per dead address.
//! Trying them all at once floods the server with connections it will mostly close.
//! RFC 8305 takes the middle: start with the first address, and start the next one
//! when the previous attempt *fails* or after a short **stagger** (250 ms by default),
//! whichever comes first, with the attempts still running side by side. The first to
//! connect wins; the others are dropped, which closes their half-made sockets.
//!
//! The order alternates the families (v6, v4, v6, ... starting with the family of the
//! resolver's first answer, which the system has already sorted by preference), so a
//! broken family costs one stagger, not one per address.
//!
//! One timer at a time sits on the wheel: the stagger's `Sleep`, replaced each time an
//! attempt starts. What each attempt did goes to the trace.

use super::net::{Connect, TcpStream};
use super::pool::dns;
use super::replicate::{note, Failures};
use super::time::{sleep, Sleep};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// RFC 8305's recommended "Connection Attempt Delay".
pub const STAGGER: Duration = Duration::from_millis(250);

/// Resolve `host` and connect to the first of its addresses that answers, racing them
/// with a [`STAGGER`] between starts (see the module doc). The error, if none
/// connects, names every address and why it failed.
pub async fn connect_happy(host: &str, port: u16) -> io::Result<TcpStream> {
    connect_happy_with(host, port, STAGGER).await
}

/// [`connect_happy`] with another stagger (RFC 8305 advises no less than 100 ms).
pub async fn connect_happy_with(host: &str, port: u16, stagger: Duration) -> io::Result<TcpStream> {
    let addrs = dns::lookup(host, port).await?;
    note(|| format!("happy eyeballs: {host}:{port} is {}", list(&addrs)));
    connect_first(addrs, stagger).await
}

/// Race connections to `addrs` (already resolved): alternate families, start the next
/// attempt after `stagger` or when one fails; the first connected wins.
pub fn connect_first(addrs: Vec<SocketAddr>, stagger: Duration) -> ConnectFirst {
    ConnectFirst {
        order: interleave(addrs),
        next: 0,
        attempts: Vec::new(),
        stagger,
        timer: None,
        failed: Vec::new(),
    }
}

/// `a` and `b` of one family, then of the other, alternating; duplicates dropped.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut seen = Vec::with_capacity(addrs.len());
    for a in addrs {
        if !seen.contains(&a) {
            seen.push(a);
        }
    }
    let first_v6 = seen.first().is_some_and(|a| a.is_ipv6());
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        seen.into_iter().partition(|a| a.is_ipv6() == first_v6);
    first.reverse();
    second.reverse();
    let mut out = Vec::with_capacity(first.len() + second.len());
    while let Some(a) = first.pop() {
        out.push(a);
        out.extend(second.pop());
    }
    out.extend(second.into_iter().rev());
    out
}

fn list(addrs: &[SocketAddr]) -> String {
    let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    shown.join(", ")
}

/// The future of [`connect_first`].
pub struct ConnectFirst {
    order: Vec<SocketAddr>,
    /// The next address of `order` to try.
    next: usize,
    attempts: Vec<(SocketAddr, Pin<Box<Connect>>)>,
    stagger: Duration,
    /// Fires when the next attempt is due; `None` while none is left to start.
    timer: Option<Pin<Box<Sleep>>>,
    failed: Vec<(String, io::Error)>,
}

impl ConnectFirst {
    /// Start the next address, if any is left, and the stagger timer after it.
    fn start_next(&mut self) -> bool {
        let Some(&addr) = self.order.get(self.next) else {
            self.timer = None;
            return false;
        };
        self.next += 1;
        note(|| format!("happy eyeballs: attempt {} to {addr}", self.next));
        self.attempts
            .push((addr, Box::pin(TcpStream::connect(addr))));
        // The old timer is dropped here (its wheel entry cleared): one at a time.
        self.timer = (self.next < self.order.len()).then(|| Box::pin(sleep(self.stagger)));
        true
    }

    /// Poll every attempt: the winner's stream, or `None` (failures recorded).
    fn poll_attempts(&mut self, cx: &mut Context<'_>) -> (Option<(SocketAddr, TcpStream)>, bool) {
        let mut one_failed = false;
        let mut i = 0;
        while i < self.attempts.len() {
            let (addr, fut) = &mut self.attempts[i];
            let addr = *addr;
            match fut.as_mut().poll(cx) {
                Poll::Pending => i += 1,
                Poll::Ready(Ok(stream)) => return (Some((addr, stream)), one_failed),
                Poll::Ready(Err(e)) => {
                    note(|| format!("happy eyeballs: {addr} failed: {e}"));
                    self.failed.push((addr.to_string(), e));
                    drop(self.attempts.remove(i));
                    one_failed = true;
                }
            }
        }
        (None, one_failed)
    }
}

impl Future for ConnectFirst {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.next == 0 && !this.start_next() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
            return Poll::Ready(Err(e));
        }
        loop {
            let (won, one_failed) = this.poll_attempts(cx);
            if let Some((addr, stream)) = won {
                let losers = this.attempts.len() - 1;
                this.attempts.clear(); // the losers close their sockets in their Drop
                this.timer = None;
                note(|| {
                    format!(
                        "happy eyeballs: {addr} connected first; closed {losers} other attempt(s)"
                    )
                });
                return Poll::Ready(Ok(stream));
            }
            // A failure starts the next attempt now; so does the stagger running out.
            let due = one_failed
                || this.attempts.is_empty()
                || this
                    .timer
                    .as_mut()
                    .is_some_and(|t| t.as_mut().poll(cx).is_ready());
            if due && this.start_next() {
                continue; // poll the new attempt (and the new timer) once
            }
            if this.attempts.is_empty() {
                let failures = Failures {
                    what: format!("connecting to {}", list(&this.order)),
                    each: std::mem::take(&mut this.failed),
                };
                return Poll::Ready(Err(failures.into_error()));
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first_answer() {
        let got = interleave(addrs(&[
            "[::1]:1",
            "[::2]:1",
            "[::3]:1",
            "127.0.0.1:1",
            "127.0.0.2:1",
        ]));
        let want = addrs(&[
            "[::1]:1",
            "127.0.0.1:1",
            "[::2]:1",
            "127.0.0.2:1",
            "[::3]:1",
        ]);
        assert_eq!(got, want);
        let got = interleave(addrs(&[
            "127.0.0.1:1",
            "127.0.0.1:1",
            "[::1]:1",
            "127.0.0.2:1",
        ]));
        assert_eq!(got, addrs(&["127.0.0.1:1", "[::1]:1", "127.0.0.2:1"]));
    }
}
