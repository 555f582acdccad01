//! The machine a benchmark ran on, in every report: a figure read without the cores,
//! the kernel and the build it came from is a figure misread.

use serde::{Deserialize, Serialize};

/// Facts about the machine, so a figure is never read without its context.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// The OS.
    pub os: String,
    /// The loop backend `looplab echo` uses by default here.
    pub default_backend: String,
    /// `release` or `debug`: debug figures are not worth comparing.
    pub build_profile: String,
    /// The CPU's model name (`/proc/cpuinfo`), "unknown" elsewhere.
    #[serde(default)]
    pub cpu: String,
}

impl Machine {
    /// Read the facts of this machine.
    pub fn here() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            os: std::env::consts::OS.to_string(),
            default_backend: crate::Backend::default_for_os().to_string(),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
            cpu: cpu_model(),
        }
    }

    /// "2 cores (Intel(R) Xeon(R) Processor), linux 6.18, release build": one line.
    pub fn describe(&self) -> String {
        let cpu = if self.cpu.is_empty() || self.cpu == "unknown" {
            String::new()
        } else {
            format!(" ({})", self.cpu)
        };
        format!(
            "{} cores{cpu}, {} {}, {} build",
            self.cores, self.os, self.kernel, self.build_profile
        )
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
