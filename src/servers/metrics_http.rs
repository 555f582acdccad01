//! The loop, watched from outside, on the loop itself: a second listener beside a
//! server's own, on the same loop, speaking the long-poll server's strict HTTP wire.
//!
//! - `GET /metrics`: the Prometheus text format (counters, gauges, histograms);
//! - `GET /loop`: a page that draws the loop live (phase bars per tick, utilization and
//!   lag over the last minute, what keeps the loop alive, the pool);
//! - `GET /loop/poll?since=ID`: the newest window as JSON, held until there is one newer
//!   than `ID` (omit `since` for the newest at once): the page and `looplab top` long-poll
//!   it, so each gets one answer per window and nothing in between.
//!
//! Every `window` an interval timer takes the loop's window ([`Loop::take_window`]),
//! draws it once as JSON, keeps a minute of history, and answers every held poll.
//! Two **probes** keep the figures alive on a server with no timers or pool work of its
//! own: a timer every 10 ms (Node's `monitorEventLoopDelay` samples at that resolution)
//! whose lateness is the loop lag, and a no-op job sent to the pool every 100 ms (one at
//! a time) whose `done` measures the self-pipe wake. The pool probe starts the pool's
//! threads; it is rarer than the lag probe because each job wakes a worker, a context
//! switch on a busy core. All these timers are unref'd: watching never keeps a loop
//! alive. The watcher is in the figures too: a page polling once a second costs a
//! callback or two per window.

mod prometheus;
pub mod view;

use super::http::{whole_number, Response};
use super::longpoll::{Reply, Request, Routes, Wire, WireConfig};
use crate::servers::http::Limits;
use crate::{Listener, Loop, Tcp, Timer};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use view::HistoryPoint;

pub use prometheus::CONTENT_TYPE;

/// The `/loop` page, served from the binary.
const LOOP_PAGE: &str = include_str!("metrics_http/loop.html");

/// How the endpoint is set up.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// How long one window lasts: the page's and `top`'s refresh.
    pub window: Duration,
    /// Windows kept for the minute-long lines.
    pub history: usize,
    /// The lag probe's period (`None`: none; the lag is then only the server's timers').
    pub lag_probe: Option<Duration>,
    /// The pool probe's period (`None`: none; the wake is then only the server's jobs').
    pub pool_probe: Option<Duration>,
    /// Held `/loop/poll` requests at most; more get 503.
    pub max_waiters: usize,
    /// Connections at most; more are accepted and closed.
    pub max_conns: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            addr: ([127, 0, 0, 1], 9100).into(),
            window: Duration::from_secs(1),
            history: 60,
            lag_probe: Some(Duration::from_millis(10)),
            pool_probe: Some(Duration::from_millis(100)),
            max_waiters: 64,
            max_conns: 256,
        }
    }
}

struct State {
    cfg: MetricsConfig,
    /// The newest window's id, JSON answer and figures for `/metrics`.
    latest: Option<(u64, Rc<Response>)>,
    last: prometheus::Extra,
    history: VecDeque<HistoryPoint>,
    waiters: HashMap<Tcp, Reply>,
    timers: Vec<Timer>,
}

#[derive(Clone)]
struct MetricsRoutes(Rc<RefCell<State>>);

/// A running metrics endpoint.
#[derive(Clone)]
pub struct MetricsServer {
    listener: Listener,
    wire: Wire,
    routes: MetricsRoutes,
}

impl MetricsServer {
    /// Listen on `cfg.addr` and serve the loop `lp` (on `lp` itself).
    pub fn listen(lp: &mut Loop, cfg: MetricsConfig) -> io::Result<MetricsServer> {
        let state = State {
            latest: None,
            last: prometheus::Extra {
                utilization: 0.0,
                slowest: None,
            },
            history: VecDeque::with_capacity(cfg.history),
            waiters: HashMap::new(),
            timers: Vec::new(),
            cfg: cfg.clone(),
        };
        let routes = MetricsRoutes(Rc::new(RefCell::new(state)));
        let wire = Wire::new(wire_config(&cfg), Rc::new(routes.clone()));
        let w = wire.clone();
        let listener = lp.tcp_listen(cfg.addr, move |lp, _, accepted| w.accept(lp, accepted))?;
        // The first window starts now, not when the loop was built.
        lp.take_window();
        let r = routes.clone();
        let ticker = lp.set_interval(cfg.window, move |lp, _| r.end_window(lp));
        lp.unref_handle(ticker);
        routes.0.borrow_mut().timers.push(ticker);
        let probes = [
            cfg.lag_probe.map(|every| lp.set_interval(every, |_, _| {})),
            cfg.pool_probe.map(|every| start_pool_probe(lp, every)),
        ];
        for t in probes.into_iter().flatten() {
            lp.unref_handle(t);
            routes.0.borrow_mut().timers.push(t);
        }
        Ok(MetricsServer {
            listener,
            wire,
            routes,
        })
    }

    /// The bound address.
    pub fn local_addr(&self, lp: &Loop) -> io::Result<SocketAddr> {
        lp.local_addr(self.listener)
    }

    /// Stop: the listener and the timers close, held polls get the newest window (or a
    /// 503 before the first), and the connections close as the wire's shutdown says.
    pub fn shutdown(&self, lp: &mut Loop) {
        lp.close(self.listener);
        let (timers, waiters, latest) = {
            let mut s = self.routes.0.borrow_mut();
            let waiters: Vec<Reply> = s.waiters.drain().map(|(_, r)| r).collect();
            (std::mem::take(&mut s.timers), waiters, s.latest.clone())
        };
        for t in timers {
            lp.clear_timer(t);
        }
        self.wire.shutdown(lp);
        for reply in waiters {
            match &latest {
                Some((_, resp)) => reply.send(lp, resp),
                None => reply.send(lp, &Response::text(503, "shutting down")),
            }
        }
    }
}

fn wire_config(cfg: &MetricsConfig) -> WireConfig {
    WireConfig {
        // Only GETs: no body is ever needed, and a head this size is plenty.
        limits: Limits {
            max_header_bytes: 8 * 1024,
            max_headers: 64,
            max_body: 0,
        },
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        send_timeout: Duration::from_secs(10),
        max_conns: cfg.max_conns,
        shutdown_grace: Duration::from_secs(2),
    }
}

/// Every `every`, a no-op pool job whose `done` measures the wake; only one in flight,
/// so a starved pool does not pile probes up.
fn start_pool_probe(lp: &mut Loop, every: Duration) -> Timer {
    let in_flight = Rc::new(Cell::new(false));
    lp.set_interval(every, move |lp, _| {
        if in_flight.replace(true) {
            return;
        }
        let flag = in_flight.clone();
        lp.queue_work(|| (), move |_, _, _| flag.set(false));
    })
}

impl MetricsRoutes {
    /// The window ends: draw it once, keep its point of history, answer the held polls.
    fn end_window(&self, lp: &mut Loop) {
        let w = lp.take_window();
        let history_len = self.0.borrow().cfg.history;
        let point = view::history_point(&w, lp.metrics().pool.queue_depth);
        let (resp, waiters) = {
            let mut s = self.0.borrow_mut();
            if s.history.len() >= history_len.max(1) {
                s.history.pop_front();
            }
            s.history.push_back(point);
            let drawn = view::window(lp, &w, &s.history);
            let json = serde_json::to_string(&drawn).unwrap_or_else(|_| "{}".into());
            let resp = Rc::new(Response::json_text(200, json));
            s.latest = Some((w.id, resp.clone()));
            s.last = prometheus::Extra {
                utilization: w.utilization(),
                slowest: w.slowest,
            };
            let waiters: Vec<Reply> = s.waiters.drain().map(|(_, r)| r).collect();
            (resp, waiters)
        };
        for reply in waiters {
            reply.send(lp, &resp);
        }
    }

    /// `/loop/poll?since=ID`: the newest window now if it is newer than `ID`, else held.
    fn poll(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: &Request) {
        let since = match req.head.param("since") {
            Ok(None) => None,
            Ok(Some(v)) => match whole_number("since", v) {
                Ok(n) => Some(n),
                Err(resp) => return reply.send(lp, &resp),
            },
            Err(resp) => return reply.send(lp, &resp),
        };
        let ready = {
            let s = self.0.borrow();
            s.latest
                .as_ref()
                .filter(|(id, _)| since.is_none_or(|since| *id > since))
                .map(|(_, resp)| resp.clone())
        };
        if let Some(resp) = ready {
            return reply.send(lp, &resp);
        }
        let full = {
            let s = self.0.borrow();
            s.waiters.len() >= s.cfg.max_waiters || wire.shutting_down()
        };
        if full {
            let resp = Response::text(503, "too many watchers; retry shortly")
                .with_header("Retry-After", "1");
            return reply.send(lp, &resp);
        }
        self.0.borrow_mut().waiters.insert(reply.conn(), reply);
    }
}

impl Routes for MetricsRoutes {
    fn request(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: Request) {
        let (path, method) = (req.head.path.as_str(), req.head.method.as_str());
        if !matches!(path, "/" | "/metrics" | "/loop" | "/loop/poll") {
            let resp = Response::text(404, &format!("no such path: {path}"));
            return reply.send(lp, &resp);
        }
        if !matches!(method, "GET" | "HEAD") {
            let msg = format!("{method} is not allowed on {path}; use GET");
            let resp = Response::text(405, &msg).with_header("Allow", "GET, HEAD");
            return reply.send(lp, &resp);
        }
        match path {
            "/metrics" => {
                let text = prometheus::render(lp, &self.0.borrow().last);
                let mut resp = Response::text(200, "");
                resp.content_type = CONTENT_TYPE;
                resp.body = text.into_bytes();
                reply.send(lp, &resp);
            }
            "/loop" => reply.send(lp, &Response::html(LOOP_PAGE)),
            "/loop/poll" => self.poll(lp, wire, reply, &req),
            _ => {
                let text = "looplab metrics: /metrics (Prometheus text format), /loop (the \
                            loop, live), /loop/poll?since=ID (one window as JSON)";
                reply.send(lp, &Response::text(200, text));
            }
        }
    }

    fn closed(&self, _lp: &mut Loop, conn: Tcp) {
        self.0.borrow_mut().waiters.remove(&conn);
    }

    fn release(&self, lp: &mut Loop, conn: Tcp) {
        let held = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(reply) = held {
            let latest = self.0.borrow().latest.clone();
            match latest {
                Some((_, resp)) => reply.send(lp, &resp),
                None => reply.send(lp, &Response::text(503, "no window yet; retry shortly")),
            }
        }
    }
}
