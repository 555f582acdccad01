//! `looplab bench`: the echo sweep, the loop-group sweep and the hostile run.

use super::*;
use crate::Result;
use looplab::bench::report::{self, Report};
use looplab::bench::runner::{self, BenchConfig, Row, ServerKind};
use looplab::group::ListenMode;
use looplab::Backend;
use std::time::Duration;

pub(crate) fn run_hostile(
    duration: Option<Duration>,
    pin: Option<&(Vec<usize>, Vec<usize>)>,
    out: &std::path::Path,
) -> Result {
    use looplab::bench::hostile::{self, HostileConfig};
    if cfg!(debug_assertions) {
        eprintln!(
            "looplab bench: this is a debug build; figures are only meaningful with --release"
        );
    }
    let cfg = HostileConfig {
        duration: duration.unwrap_or(HostileConfig::default().duration),
        ..HostileConfig::default()
    };
    let report = hostile::run(&cfg, pin)?;
    print!("{}", hostile::table(&report));
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let json = out.join("hostile.json");
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json, text).map_err(|e| format!("writing {}: {e}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

pub(crate) fn run_loops_bench(
    loops: Vec<usize>,
    modes: Vec<ListenMode>,
    cfg: &BenchConfig,
) -> Result {
    use looplab::bench::loops::{self, LoopsConfig};
    if loops.contains(&0) || modes.is_empty() {
        return Err("--loops values must be above zero, and --modes non-empty".into());
    }
    let lc = LoopsConfig {
        loops,
        modes,
        conns: cfg.conns.clone(),
        size: cfg.size,
        duration: cfg.duration,
        warmup: cfg.warmup,
        client_threads: cfg.client_threads,
        pin: cfg.pin.clone(),
        rounds: cfg.rounds,
    };
    // Read before the cells pin this thread: a pinned thread sees only its own cores.
    let machine = report::Machine::here().describe();
    let rows = loops::run(&lc, |cell| eprintln!("looplab bench: {cell}"))?;
    println!("{machine}");
    print!("{}", loops::table(&rows));
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let json = cfg.out.join("loops.json");
    std::fs::write(&json, serde_json::to_string_pretty(&rows)?)
        .map_err(|e| format!("writing {}: {e}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

pub(crate) fn run_bench(args: BenchArgs) -> Result {
    if args.replot {
        let json = args.out.join("results.json");
        let report = report::read_json(&json)?;
        print!("{}", report::table(&report));
        let svg = args.out.join("echo.svg");
        report::write_svg(&report, &svg)?;
        println!("redrew {}", svg.display());
        return Ok(());
    }
    if args.timers {
        looplab::bench::timers::report(&[10_000, 100_000, 1_000_000], 3);
        return Ok(());
    }
    raise_fd_limit();
    let default_servers = if cfg!(target_os = "linux") {
        vec![
            ServerKind::Threads,
            ServerKind::Loop(Backend::Epoll),
            ServerKind::Loop(Backend::Mio),
            ServerKind::Raw,
        ]
    } else {
        vec![
            ServerKind::Threads,
            ServerKind::Loop(Backend::default_for_os()),
            ServerKind::Loop(Backend::Mio),
        ]
    };
    let (conns, duration, warmup) = if args.full {
        (
            vec![1, 10, 100, 1000, 5000, 10_000],
            Duration::from_secs(3),
            Duration::from_secs(1),
        )
    } else {
        (
            vec![10, 100, 1000, 5000],
            Duration::from_millis(600),
            Duration::from_millis(150),
        )
    };
    let cfg = BenchConfig {
        servers: args.servers.unwrap_or(default_servers),
        conns: args.conns.unwrap_or(conns),
        size: args.size,
        duration: args.duration.unwrap_or(duration),
        warmup: args.warmup.unwrap_or(warmup),
        client_threads: args.clients_threads.max(1),
        rounds: args.rounds.max(1),
        pin: None,
        out: args.out,
    };
    let mut cfg = cfg;
    let machine = report::Machine::here();
    let cores = machine.cores;
    if !args.no_pin && cores >= 2 {
        // The client's threads get the first cores, the server the rest (at least one).
        let client = cfg.client_threads.min(cores - 1);
        cfg.pin = Some(((0..client).collect(), (client..cores).collect()));
    }
    if cfg.size == 0 || cfg.conns.contains(&0) || cfg.servers.is_empty() {
        return Err(
            "--size, every --conns value and --servers must be non-empty and above zero".into(),
        );
    }
    if args.hostile {
        return run_hostile(args.duration, cfg.pin.as_ref(), &cfg.out);
    }
    if let Some(loops) = args.loops {
        let modes = args
            .modes
            .unwrap_or(vec![ListenMode::Reuseport, ListenMode::Exclusive]);
        return run_loops_bench(loops, modes, &cfg);
    }
    if let Some(n) = args.waiters {
        let r = looplab::bench::waiters::run(n, cfg.pin.as_ref())?;
        looplab::bench::waiters::print(&r);
        return Ok(());
    }
    if cfg!(debug_assertions) {
        eprintln!("looplab bench: this is a debug build; figures are only meaningful with --release (make bench)");
    }
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let cells = (cfg.servers.len() * cfg.conns.len() * cfg.rounds) as u64;
    let bar = indicatif::ProgressBar::new(cells);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed}, ~{eta} left]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Servers compared at one connection count run back to back, so drift in the
    // machine's state (other load, thermal) touches them alike; each round starts the
    // list one server further on, so no server always runs first or after the same one.
    let mut rows = Vec::new();
    for round in 1..=cfg.rounds {
        for &conns in &cfg.conns {
            for &server in runner::in_turn(&cfg.servers, round) {
                bar.set_message(format!(
                    "round {round}: {} x {conns} connections",
                    server.name()
                ));
                match runner::measure(server, conns, &cfg) {
                    Ok(row) => rows.push(Row { round, ..row }),
                    Err(e) => bar.suspend(|| {
                        eprintln!(
                            "looplab bench: {} at {conns} connections failed: {e}",
                            server.name()
                        )
                    }),
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let paired = runner::paired_cpu(&rows, &cfg.servers, &cfg.conns);
    let mut rows = runner::median_rounds(rows, &cfg.servers, &cfg.conns);
    runner::relate_to_raw(&mut rows);
    let report = Report::new(machine, &cfg, rows, paired);
    print!("{}", report::table(&report));
    let json = cfg.out.join("results.json");
    let svg = cfg.out.join("echo.svg");
    report::write_json(&report, &json)?;
    report::write_svg(&report, &svg)?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(())
}
