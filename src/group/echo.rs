//! The echo server on every loop of a group: `looplab echo --loops N`.
//!
//! Each loop runs the ordinary one-loop [`Echo`] on its share of the connections; the
//! loops never talk (echo needs nothing from another connection), so this is the
//! share-nothing case. What the group adds is the count per loop: how evenly the
//! kernel spread the connections.

use super::{GroupBuilder, LoopGroup};
use crate::servers::echo::{Echo, EchoConfig, EchoStats};
use std::io;

/// Start `config`'s echo on every loop of `group` (its listen address is `config.addr`).
/// `on_error` hears errors no client sees (a failed accept), with the loop's index.
pub fn spawn(
    group: GroupBuilder,
    config: EchoConfig,
    on_error: impl Fn(usize, &io::Error) + Send + Sync + Clone + 'static,
) -> io::Result<LoopGroup<(), EchoStats>> {
    group.listen(config.addr).spawn(move |lp, ctx| {
        // `max_conns` is the server's: each loop sheds past its share (rounded up).
        let share = EchoConfig {
            max_conns: config.max_conns.div_ceil(ctx.loops()),
            ..config.clone()
        };
        let echo = Echo::listen_with(lp, share, |lp, on_conn| ctx.listen(lp, on_conn))?;
        let (i, tell) = (ctx.index(), on_error.clone());
        echo.on_error(move |e| tell(i, e));
        let e = echo.clone();
        ctx.on_stop(move |lp| e.shutdown(lp));
        Ok(move |_: &mut crate::Loop| echo.stats())
    })
}
