//! Memory and CPU time of a process from `/proc` (Linux), shared by the footprint examples.

use std::time::Duration;

/// Resident set size and its peak, in KiB, of process `pid` (`self` for this one).
pub fn rss_kib(pid: &str) -> (u64, u64) {
    status_kib(pid, "VmRSS:", "VmHWM:")
}

/// The resident set of process `pid` split into anonymous memory (heap, stacks: what the process
/// allocated) and file-backed pages (the mapped binary and libraries: clean, shared with other
/// processes mapping the same file, and dropped by the kernel under memory pressure), in KiB.
#[allow(dead_code)] // only the footprint of the `run` binary reports the split
pub fn rss_anon_file_kib(pid: &str) -> (u64, u64) {
    status_kib(pid, "RssAnon:", "RssFile:")
}

/// Two KiB fields of `/proc/<pid>/status`, 0 when absent.
fn status_kib(pid: &str, first: &str, second: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field(first), field(second))
}

/// CPU time (user + system) of process `pid`, from `/proc/<pid>/stat` (clock ticks of 10 ms, the
/// Linux USER_HZ).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state field's start.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
