//! The benchmark's output: one [`Report`] per sweep, printed as a table on stdout
//! ([`table`]), kept as `results.json` with every figure and the machine it ran on (the
//! [`Report`] is that file's schema: [`write_json`], [`read_json`] for `--replot`), and
//! drawn as `echo.svg` ([`write_svg`]): three panels under a caption that names the
//! machine and the settings, so the picture is never read without them.
//!
//! - `report/machine.rs`: the facts of the machine every figure carries;
//! - `report/table.rs`: the text table;
//! - `report/plot.rs`: the SVG, with its caption (`plot/caption.rs`) and its panels
//!   (`plot/panel.rs`).

mod machine;
mod plot;
mod table;

pub use machine::Machine;
pub use plot::write_svg;
pub use table::table;

use super::runner::{BenchConfig, Paired, Row};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// Everything `results.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Message size, bytes.
    pub size: usize,
    /// Configured window and warmup, seconds.
    pub duration_s: f64,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Load generator threads.
    pub client_threads: usize,
    /// Sweeps run; rows are each cell's median round.
    pub rounds: usize,
    /// The cores the load generator and the server were pinned to (empty: not pinned).
    pub client_cpus: Vec<usize>,
    /// The server's cores.
    pub server_cpus: Vec<usize>,
    /// One row per (server, connections).
    pub rows: Vec<Row>,
    /// CPU per round trip of each server against the first, paired by round.
    #[serde(default)]
    pub paired: Vec<Paired>,
}

impl Report {
    /// Assemble a report for `rows` measured under `cfg` on `machine` (read it before
    /// pinning: the core count a pinned thread sees is its own mask's).
    pub fn new(machine: Machine, cfg: &BenchConfig, rows: Vec<Row>, paired: Vec<Paired>) -> Report {
        Report {
            machine,
            size: cfg.size,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            client_threads: cfg.client_threads,
            rounds: cfg.rounds,
            client_cpus: cfg.pin.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            server_cpus: cfg.pin.as_ref().map(|p| p.1.clone()).unwrap_or_default(),
            rows,
            paired,
        }
    }
}

impl Report {
    /// The settings in one line: what was measured, how, and where the two sides ran.
    pub fn settings(&self) -> String {
        let pinning = if self.server_cpus.is_empty() {
            "not pinned".to_string()
        } else {
            format!(
                "load generator on core(s) {}, server on {}",
                cores(&self.client_cpus),
                cores(&self.server_cpus)
            )
        };
        format!(
            "{} B messages, {} s window after {} s warmup ({} ms per connection at least), {} client thread(s), median of {} round(s); {pinning}",
            self.size,
            self.duration_s,
            self.warmup_s,
            super::runner::WARMUP_PER_CONN.as_secs_f64() * 1000.0,
            self.client_threads,
            self.rounds
        )
    }
}

fn cores(list: &[usize]) -> String {
    let shown: Vec<String> = list.iter().map(usize::to_string).collect();
    shown.join(",")
}

/// Read a `results.json` written earlier (for `--replot`).
pub fn read_json(path: &Path) -> io::Result<Report> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::error::context(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a looplab results.json: {e}", path.display()),
        )
    })
}

/// Write `results.json`.
pub fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    std::fs::write(path, json + "\n")
}
