//! The servers `looplab bench` can start: each one's name in `--servers` and in the
//! table, and the `looplab` command line that starts it.

use crate::Backend;

/// A server the benchmark can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `looplab echo-threads`: one OS thread per connection.
    Threads,
    /// `looplab echo` on one of the loop's backends, with `--metrics-addr`: its phase
    /// times and pool wake are read from `/metrics` at the window's start and end.
    Loop(Backend),
    /// The same with no endpoint and metrics off (`LOOPLAB_METRICS=0`, as by default):
    /// `epoll-bare` beside `epoll` is what watching the loop costs.
    LoopBare(Backend),
    /// `looplab echo-raw`: the hand-written libc epoll loop, the floor.
    Raw,
    /// `looplab echo-async`: the echo as `async fn` tasks on the loop (default backend,
    /// edge-triggered, as tokio's).
    Async,
    /// The same, level-triggered (`--trigger=level`): what the kernel's second look at
    /// every reported socket costs.
    AsyncLevel,
    /// `looplab echo-tokio`: tokio's current_thread runtime (feature `peer-tokio`).
    Tokio,
    /// `looplab echo --backend uring`: the io_uring completion echo (Linux).
    Uring,
}

impl ServerKind {
    /// The name used by `--servers` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Threads => "threads",
            ServerKind::Loop(b) => b.name(),
            ServerKind::LoopBare(Backend::Epoll) => "epoll-bare",
            ServerKind::LoopBare(Backend::Kqueue) => "kqueue-bare",
            ServerKind::LoopBare(Backend::Mio) => "mio-bare",
            ServerKind::Raw => "raw",
            ServerKind::Async => "async",
            ServerKind::AsyncLevel => "async-level",
            ServerKind::Tokio => "tokio",
            ServerKind::Uring => "uring",
        }
    }

    /// The `looplab` arguments that start it, listening on an ephemeral port.
    pub(super) fn args(self) -> Vec<String> {
        let addr = "--addr=127.0.0.1:0".to_string();
        match self {
            ServerKind::Threads => vec!["echo-threads".into(), addr],
            ServerKind::Loop(b) => vec![
                "echo".into(),
                addr,
                format!("--backend={b}"),
                "--metrics-addr=127.0.0.1:0".into(),
            ],
            ServerKind::LoopBare(b) => vec!["echo".into(), addr, format!("--backend={b}")],
            ServerKind::Raw => vec!["echo-raw".into(), addr],
            ServerKind::Async => vec!["echo-async".into(), addr],
            ServerKind::AsyncLevel => vec!["echo-async".into(), addr, "--trigger=level".into()],
            ServerKind::Tokio => vec!["echo-tokio".into(), addr],
            ServerKind::Uring => vec!["echo".into(), addr, "--backend=uring".into()],
        }
    }
}

impl std::str::FromStr for ServerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "threads" => Ok(ServerKind::Threads),
            "raw" => Ok(ServerKind::Raw),
            "async" => Ok(ServerKind::Async),
            "async-level" => Ok(ServerKind::AsyncLevel),
            "uring" => Ok(ServerKind::Uring),
            "tokio" if cfg!(feature = "peer-tokio") => Ok(ServerKind::Tokio),
            "tokio" => Err("the tokio peer needs a build with `--features peer-tokio`".to_string()),
            other => match other.strip_suffix("-bare") {
                Some(b) => b.parse::<Backend>().map(ServerKind::LoopBare),
                None => other.parse::<Backend>().map(ServerKind::Loop),
            }
            .map_err(|_| {
                format!(
                    "unknown server '{other}': expected threads, epoll, kqueue, mio, async, async-level, uring or raw \
                     (a backend with -bare: metrics off)"
                )
            }),
        }
    }
}
