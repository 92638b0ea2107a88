//! /proc/PID/stat and /proc/PID/task/TID/stat, read in one place: the CPU
//! times of threads, tools and their children (workload, machine) and the
//! start time that tells a journalled PID from a later one (teardown).
//!
//! By hand rather than with the procfs crate: dplab reads five fields, and
//! procfs would bring procfs-core, rustix and more crates for them.

use std::path::Path;
use std::str::FromStr;

/// One stat file: the fields after the command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    rest: String,
}

impl PidStat {
    /// Parses the text of a stat file; None if it has no command name.
    pub fn parse(text: &str) -> Option<PidStat> {
        // The command name (field 2) may contain spaces and parentheses:
        // fields resume after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        Some(PidStat {
            rest: rest.to_string(),
        })
    }

    /// The stat file at `path` (/proc/PID/stat or a task's), if readable.
    pub fn read(path: impl AsRef<Path>) -> Option<PidStat> {
        PidStat::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// /proc/`pid`/stat.
    pub fn of_process(pid: u32) -> Option<PidStat> {
        PidStat::read(format!("/proc/{pid}/stat"))
    }

    /// Field `n` as proc(5) numbers them, from 3 (the state) on.
    fn field<T: FromStr>(&self, n: usize) -> Option<T> {
        self.rest
            .split_whitespace()
            .nth(n.checked_sub(3)?)?
            .parse()
            .ok()
    }

    fn seconds(&self, fields: std::ops::RangeInclusive<usize>) -> Option<f64> {
        let ticks = fields.map(|n| self.field::<f64>(n)).sum::<Option<f64>>()?;
        Some(ticks / ticks_per_second())
    }

    /// utime + stime (fields 14 and 15), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.seconds(14..=15)
    }

    /// utime + stime + cutime + cstime (fields 14 to 17): with the children
    /// it has waited for, in seconds.
    pub fn cpu_seconds_with_reaped(&self) -> Option<f64> {
        self.seconds(14..=17)
    }

    /// starttime (field 22): clock ticks after boot.
    pub fn start_time(&self) -> Option<u64> {
        self.field(22)
    }
}

/// USER_HZ, the unit of every time in /proc/PID/stat and /proc/stat.
pub fn ticks_per_second() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODD: &str = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 7 3 20 0 1 0 98765 4096";

    #[test]
    fn fields_count_from_after_the_last_parenthesis() {
        let s = PidStat::parse(ODD).unwrap();
        let hz = ticks_per_second();
        assert_eq!(s.cpu_seconds(), Some(300.0 / hz));
        assert_eq!(s.cpu_seconds_with_reaped(), Some(310.0 / hz));
        assert_eq!(s.start_time(), Some(98765));
        assert_eq!(s.field::<String>(3).as_deref(), Some("S"));
        assert_eq!(s.field::<u64>(2), None, "the name is not a field here");
    }

    #[test]
    fn short_or_nameless_text_gives_none() {
        assert_eq!(PidStat::parse("1234 S 1 2"), None);
        let short = PidStat::parse("1 (x) S 1 2 3").unwrap();
        assert_eq!(short.cpu_seconds(), None);
        assert_eq!(short.start_time(), None);
    }

    #[test]
    fn own_process_has_a_start_time() {
        let own = PidStat::of_process(std::process::id()).unwrap();
        assert!(own.start_time().is_some_and(|t| t > 0));
        assert!(own.cpu_seconds().is_some());
    }
}
