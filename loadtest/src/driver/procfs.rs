//! Resident memory and CPU time of a process, from `/proc` (Linux only; `None` elsewhere or when
//! the process is gone).

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`), 100 on every Linux the
/// benchmark runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of the process, in kB.
pub fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// User plus system CPU time of the process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// Fields 14 and 15 (`utime`, `stime`) of a `stat` line; the command name in parentheses may
/// itself hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// CPU use of a set of processes over an interval, as a percentage of one core.
#[derive(Debug)]
pub struct CpuMeter {
    pids: Vec<u32>,
    start_ticks: Option<u64>,
    start: Instant,
}

impl CpuMeter {
    pub fn start(pids: Vec<u32>) -> Self {
        let start_ticks = total_ticks(&pids);
        Self {
            pids,
            start_ticks,
            start: Instant::now(),
        }
    }

    pub fn percent(&self) -> Option<f64> {
        let ticks = total_ticks(&self.pids)?.checked_sub(self.start_ticks?)?;
        Some(percent_of_core(ticks, self.start.elapsed()))
    }
}

fn total_ticks(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| cpu_ticks(*pid)).sum()
}

pub fn percent_of_core(ticks: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    ticks as f64 / TICKS_PER_SECOND / wall.as_secs_f64() * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_status() {
        let status = "Name:\tingress\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12_345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_an_awkward_command_name() {
        let stat =
            "4242 (tokio) (x y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1000 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn percent_of_one_core() {
        assert_eq!(percent_of_core(150, Duration::from_secs(2)), 75.0);
        assert_eq!(percent_of_core(1, Duration::ZERO), 0.0);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        assert!(resident_kb(pid).unwrap_or(0) > 0);
        assert!(cpu_ticks(pid).is_some());
    }
}
