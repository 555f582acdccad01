//! The leaf futures of `looplab::task` (sleep, race and timeout, TCP, the pool, signals):
//! what they do, and that dropping each undoes what it started. On every backend this
//! OS offers.

#[path = "util/task.rs"]
mod task_util;
mod util;

use looplab::task::{self, Either, TcpListener, TcpStream};
use looplab::{HandleKind, Loop, RunMode};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use task_util::{fail_after, kinds, left, GUARD};
use util::{new_loop, on_every_backend};

/// `race`: the first to finish wins, the loser is dropped at once (its timer cleared);
/// `timeout` is a race against a sleep.
#[test]
fn race_drops_the_loser_and_timeout_times_out() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let won = lp
            .block_on(task::race(
                task::sleep(Duration::from_secs(3600)),
                task::sleep(Duration::from_millis(5)),
            ))
            .unwrap();
        assert!(matches!(won, Either::Right(Ok(()))));
        assert!(
            kinds(&lp, guard, HandleKind::Timer).is_empty(),
            "{:?}",
            lp.handles()
        );
        let late = lp
            .block_on(task::timeout(
                Duration::from_millis(5),
                task::sleep(Duration::from_secs(3600)),
            ))
            .unwrap();
        assert_eq!(late.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(
            kinds(&lp, guard, HandleKind::Timer).is_empty(),
            "{:?}",
            lp.handles()
        );
    });
}

/// fs, dns and offload on the pool.
#[test]
fn pool_futures_read_files_resolve_and_offload() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let dir = std::env::temp_dir().join(format!("looplab-task-{}-{b}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.txt");
        let p = path.clone();
        let (back, size, addrs, sum) = lp
            .block_on(async move {
                task::fs::write(&p, "hello pool").await?;
                let back = task::fs::read(&p).await?;
                let size = task::fs::stat(&p).await?.len();
                let addrs = task::dns::lookup("127.0.0.1", 80).await?;
                let sum = task::offload(|| (1..=100u32).sum::<u32>()).await?;
                Ok::<_, io::Error>((back, size, addrs, sum))
            })
            .unwrap()
            .unwrap();
        assert_eq!(back, b"hello pool");
        assert_eq!(size, 10);
        assert_eq!(addrs[0], "127.0.0.1:80".parse().unwrap());
        assert_eq!(sum, 5050);
        let missing = lp.block_on(task::fs::read(dir.join("missing"))).unwrap();
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// Echo over the task API: a server task per connection, clients as tasks, every byte
/// of every message checked.
async fn client(addr: std::net::SocketAddr, id: usize, rounds: usize) -> io::Result<usize> {
    let mut conn = TcpStream::connect(addr).await?;
    let mut checked = 0;
    for round in 0..rounds {
        let msg: Vec<u8> = (0..100 + id * 7 + round)
            .map(|i| (i * 31 + id * 17 + round) as u8)
            .collect();
        conn.write_all(&msg).await?;
        let mut back = vec![0u8; msg.len()];
        let mut got = 0;
        while got < back.len() {
            let n = conn.read(&mut back[got..]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "echo closed"));
            }
            got += n;
        }
        assert_eq!(back, msg, "client {id} round {round}");
        checked += msg.len();
    }
    conn.shutdown().await?;
    let mut rest = [0u8; 16];
    assert_eq!(
        conn.read(&mut rest).await?,
        0,
        "the server's FIN follows ours"
    );
    Ok(checked)
}

#[test]
fn the_async_echo_serves_n_clients_every_byte_checked() {
    use looplab::servers::echo::EchoConfig;
    use looplab::servers::echo_async::EchoAsync;
    on_every_backend(|b| {
        const CLIENTS: usize = 50;
        const ROUNDS: usize = 20;
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let config = EchoConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..EchoConfig::default()
        };
        let echo = EchoAsync::listen(&mut lp, config).unwrap();
        let addr = echo.local_addr();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| lp.spawn(client(addr, id, ROUNDS)))
            .collect();
        let checked = lp
            .block_on(async move {
                let mut total = 0;
                for c in clients {
                    total += c.await.map_err(io::Error::from)??;
                }
                Ok::<_, io::Error>(total)
            })
            .unwrap()
            .unwrap();
        let expected: usize = (0..CLIENTS)
            .flat_map(|id| (0..ROUNDS).map(move |r| 100 + id * 7 + r))
            .sum();
        assert_eq!(checked, expected);
        let stats = echo.stats();
        assert_eq!(stats.accepted, CLIENTS as u64);
        assert_eq!(stats.bytes, expected as u64);
        echo.shutdown(&mut lp);
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// The callback echo (rung 4) and task clients on one loop.
#[test]
fn task_clients_against_the_callback_echo_on_one_loop() {
    use looplab::servers::echo::{Echo, EchoConfig};
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let config = EchoConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..EchoConfig::default()
        };
        let echo = Echo::listen(&mut lp, config).unwrap();
        let addr = echo.local_addr(&lp).unwrap();
        let clients: Vec<_> = (0..10).map(|id| lp.spawn(client(addr, id, 10))).collect();
        let e = echo.clone();
        lp.block_on(async move {
            for c in clients {
                c.await.expect("client task").expect("client io");
            }
        })
        .unwrap();
        e.shutdown(&mut lp);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(echo.stats().accepted, 10);
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// A short sleep: what a dropped future loses its race to.
fn quick() -> task::Sleep {
    task::sleep(Duration::from_millis(2))
}

/// Dropping a sleep before it fires clears its timer: the wheel holds nothing of it.
#[test]
fn dropping_a_sleep_clears_its_timer() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let long = task::sleep(Duration::from_secs(3600));
        lp.block_on(async move { task::race(long, quick()).await })
            .unwrap();
        let timers = kinds(&lp, guard, HandleKind::Timer);
        assert!(timers.is_empty(), "{timers:?}");
    });
}

/// Dropping a waiting read or accept withdraws its interest: the loop stops watching the
/// stream and the listener (they stay open until their owners drop them).
#[test]
fn dropping_a_read_or_an_accept_withdraws_its_interest() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let (listener, server_side, client_side) = lp
            .block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).await?;
                let client = TcpStream::connect(listener.local_addr()).await?;
                let mut server = listener.accept().await?;
                let mut buf = [0u8; 8];
                let r = task::race(server.read(&mut buf), quick()).await;
                assert!(matches!(r, Either::Right(_)), "nothing was sent");
                let a = task::race(listener.accept(), quick()).await;
                assert!(matches!(a, Either::Right(_)), "nobody else connected");
                Ok::<_, io::Error>((listener, server, client))
            })
            .unwrap()
            .unwrap();
        let watched: Vec<_> = left(&lp, guard).into_iter().filter(|i| i.active).collect();
        assert!(
            watched.is_empty(),
            "a dropped read/accept left {watched:?} watched"
        );
        assert_eq!(kinds(&lp, guard, HandleKind::Listener).len(), 1);
        assert_eq!(kinds(&lp, guard, HandleKind::Tcp).len(), 2);
        drop((listener, server_side, client_side));
        lp.run(RunMode::Default).unwrap(); // the drops' asks close them
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// Dropping a pool future whose job no worker has started cancels the job: the queue
/// holds nothing of it (the only worker is busy behind a gate meanwhile).
#[test]
fn dropping_a_pool_future_cancels_its_job() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .threadpool_size(1)
            .build()
            .unwrap();
        let guard = fail_after(&mut lp, GUARD);
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = gate.clone();
        let busy = lp.spawn(task::offload(move || drop(g.lock())));
        lp.block_on(async move {
            task::race(task::offload(|| 1), quick()).await;
        })
        .unwrap();
        let work = kinds(&lp, guard, HandleKind::Work);
        assert_eq!(work.len(), 1, "only the busy job is left: {work:?}");
        drop(held);
        lp.block_on(busy).unwrap().unwrap().unwrap();
        assert!(kinds(&lp, guard, HandleKind::Work).is_empty());
    });
}

/// Dropping a connect before it is taken closes the half-made stream; dropping a signal
/// stream stops watching the signal.
#[test]
fn dropping_a_connect_or_a_signal_stream_closes_its_handle() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let listener = lp
            .block_on(TcpListener::bind("127.0.0.1:0".parse().unwrap()))
            .unwrap()
            .unwrap();
        let addr = listener.local_addr();
        lp.block_on(async move {
            // The yield wins on its second poll, when the connect may well be done too:
            // a connect dropped before it is taken must close its stream either way.
            task::race(task::yield_now(), TcpStream::connect(addr)).await;
            let mut usr2 = task::signal(libc::SIGUSR2);
            task::race(usr2.next(), quick()).await;
        })
        .unwrap();
        drop(listener);
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}
