//! Name resolution on the pool. `getaddrinfo` is a blocking C call with no fd to poll
//! (it may read /etc/hosts, ask a DNS server, wait seconds), so it runs on a worker, in
//! the slow lane: a burst of lookups can hold at most (n+1)/2 workers.

use crate::event_loop::Loop;
use crate::handle::Work;
use crate::pool::Lane;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolve `host` (a name or a literal address) with the system resolver.
pub fn lookup(
    lp: &mut Loop,
    host: &str,
    port: u16,
    cb: impl FnOnce(&mut Loop, io::Result<Vec<SocketAddr>>) + 'static,
) -> Work {
    let host = host.to_string();
    let shown = host.clone();
    let queued = lp.now();
    lp.queue_work_in(
        Lane::Slow,
        move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>())
        },
        move |lp, _work, r| {
            let r = match r {
                Ok(Ok(addrs)) if addrs.is_empty() => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("resolving {shown} on the pool: no addresses"),
                )),
                Ok(Ok(addrs)) => Ok(addrs),
                Ok(Err(e)) => Err(crate::error::context(
                    format!("resolving {shown} on the pool"),
                    e,
                )),
                Err(w) => Err(crate::Error::wrap_after(
                    format!("resolving {shown} on the pool"),
                    lp.now().saturating_duration_since(queued),
                    io::Error::from(w),
                )),
            };
            cb(lp, r)
        },
    )
}
