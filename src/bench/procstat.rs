//! What a server process costs, read from /proc: memory, threads, context switches and
//! CPU time. Linux only; elsewhere the figures are reported as zero.

use std::io;

/// One look at a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// Resident memory now, KiB (VmRSS).
    pub rss_kib: u64,
    /// Peak resident memory so far, KiB (VmHWM).
    pub hwm_kib: u64,
    /// Threads (tasks) now.
    pub threads: u64,
    /// Voluntary context switches, summed over the live threads (a thread gave up the
    /// CPU to wait: a blocking read, epoll_wait).
    pub voluntary: u64,
    /// Involuntary ones (the scheduler took the CPU away: too many runnable threads).
    pub involuntary: u64,
    /// CPU time in user and kernel mode, in clock ticks (all threads, living or not).
    pub utime_ticks: u64,
    /// Kernel-mode CPU ticks.
    pub stime_ticks: u64,
    /// CPU time of the live threads in nanoseconds, from the scheduler's own clock
    /// (`/proc/PID/task/*/schedstat`), where the kernel keeps it.
    pub run_ns: Option<u64>,
}

/// CPU seconds between two samples of one process, as (user, kernel). The total comes
/// from `run_ns` where both samples have it and the thread count did not fall (an ended
/// thread's time leaves the sum); the ticks split it. Ticks alone are 10 ms each: a
/// busy server spends about 60 of them in a 0.6 s window, so one tick more or less moved
/// its CPU per round trip by 1.7%, a good part of the differences the benchmark is asked
/// about.
pub fn cpu_between(start: &ProcSample, end: &ProcSample) -> (f64, f64) {
    let hz = crate::sys::clock::clock_ticks_per_second().max(1) as f64;
    let user = end.utime_ticks.saturating_sub(start.utime_ticks) as f64 / hz;
    let sys = end.stime_ticks.saturating_sub(start.stime_ticks) as f64 / hz;
    let precise = match (start.run_ns, end.run_ns) {
        (Some(a), Some(b)) if b >= a && end.threads >= start.threads => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    match precise {
        Some(total) if user + sys > 0.0 => {
            (total * user / (user + sys), total * sys / (user + sys))
        }
        Some(total) => (0.0, total),
        None => (user, sys),
    }
}

fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sample process `pid`.
pub fn sample(pid: u32) -> io::Result<ProcSample> {
    if !cfg!(target_os = "linux") {
        return Ok(ProcSample::default());
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut s = ProcSample {
        rss_kib: field(&status, "VmRSS"),
        hwm_kib: field(&status, "VmHWM"),
        threads: field(&status, "Threads"),
        utime_ticks: ticks(11),
        stime_ticks: ticks(12),
        ..ProcSample::default()
    };
    // Context switches and run time are per thread: sum the live ones.
    let mut run_ns = Some(0u64);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(ts) = std::fs::read_to_string(task.path().join("status")) {
                s.voluntary += field(&ts, "voluntary_ctxt_switches");
                s.involuntary += field(&ts, "nonvoluntary_ctxt_switches");
            }
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|st| st.split_whitespace().next()?.parse::<u64>().ok());
            run_ns = run_ns.zip(ns).map(|(sum, ns)| sum.saturating_add(ns));
        }
    } else {
        run_ns = None;
    }
    s.run_ns = run_ns;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let s = sample(std::process::id()).unwrap();
        assert!(
            s.rss_kib > 0 && s.hwm_kib >= s.rss_kib && s.threads >= 1,
            "{s:?}"
        );
        assert!(s.voluntary + s.involuntary > 0);
    }

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tx\nVmHWM:\t  1234 kB\nThreads:\t7\nvoluntary_ctxt_switches:\t42\n";
        assert_eq!(field(status, "VmHWM"), 1234);
        assert_eq!(field(status, "Threads"), 7);
        assert_eq!(field(status, "voluntary_ctxt_switches"), 42);
        assert_eq!(field(status, "VmRSS"), 0);
    }
}
