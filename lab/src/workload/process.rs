//! External tool processes: find the program, start it inside a namespace,
//! journal its PID, wait with a time limit, kill and reap it by PID.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{PidRecorder, Tool, WorkloadError};
use crate::netns;

/// The full path of `program` in $PATH, if it is there and executable.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    // Without PATH (as after `env -i`) look where the tools usually are.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    which::which_in_global(program, Some(path)).ok()?.next()
}

/// A started tool process; killed and reaped when dropped.
pub struct ToolProcess<'a> {
    child: Option<Child>,
    tool: Tool,
    pids: &'a dyn PidRecorder,
}

impl<'a> ToolProcess<'a> {
    /// Starts `program args` inside namespace `ns` with stderr captured,
    /// stdout too if `capture_stdout` (a server's chatter goes to /dev/null
    /// so it never blocks on a full pipe), and journals its PID as `what`.
    /// With `cpu` it starts pinned to that CPU.
    pub fn start(
        tool: Tool,
        ns: &str,
        args: &[String],
        what: &str,
        capture_stdout: bool,
        cpu: Option<usize>,
        pids: &'a dyn PidRecorder,
    ) -> Result<Self, WorkloadError> {
        let program = tool.program().expect("external tools have a program");
        let mut cmd = netns::command_in(ns, program)?;
        if let Some(cpu) = cpu {
            super::pinning::pin_command(&mut cmd, cpu)?;
        }
        // In a lab with cgroups (socket-lb) the program runs in the pod's
        // cgroup too, so its sockets go through the lab's hooks.
        if let Some(dir) = crate::cgroup::of_netns(ns) {
            crate::cgroup::join::join_on_exec(&mut cmd, &dir)?;
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(if capture_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|source| WorkloadError::ToolIo {
            tool,
            op: format!("start {program} {} in netns {ns}", args.join(" ")),
            source,
        })?;
        pids.spawned(child.id(), what);
        Ok(ToolProcess {
            child: Some(child),
            tool,
            pids,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Waits for the process to exit within `limit`, then returns what it
    /// did. Over the limit it is killed.
    pub fn wait_output(mut self, limit: Duration) -> Result<Finished, WorkloadError> {
        let mut child = self.child.take().expect("not yet waited");
        // Read the pipes on threads so a chatty tool never blocks on a full pipe.
        let out = child.stdout.take().map(read_all_on_thread);
        let err = child.stderr.take().map(read_all_on_thread);
        let started = Instant::now();
        let deadline = started + limit;
        let mut cpu_s = None;
        let status = loop {
            // Only a child that has exited is reaped, and its CPU time is
            // read from /proc first, while it is still a zombie.
            let reaped = if exited_unreaped(child.id()) {
                cpu_s = super::cpu::process_cpu_seconds(child.id());
                child.wait().map(Some)
            } else {
                Ok(None)
            };
            match reaped {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(source) => {
                    kill_and_reap(&mut child, self.pids);
                    return Err(WorkloadError::ToolIo {
                        tool: self.tool,
                        op: "wait".into(),
                        source,
                    });
                }
            }
        };
        let Some(status) = status else {
            kill_and_reap(&mut child, self.pids);
            return Err(WorkloadError::ToolTimeout {
                tool: self.tool,
                limit,
            });
        };
        self.pids.reaped(child.id());
        let collect = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Ok(Finished {
            success: status.success(),
            stdout: collect(out),
            stderr: collect(err),
            cpu_s,
            wall: started.elapsed(),
        })
    }

    /// Kills the process now and returns what it wrote to stderr.
    pub fn stop(mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        kill_and_reap(&mut child, self.pids);
        let mut text = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for ToolProcess<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child, self.pids);
        }
    }
}

/// How a tool process ended.
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// user + system CPU seconds of the process, if readable at its exit.
    pub cpu_s: Option<f64>,
    /// From start of waiting to exit.
    pub wall: Duration,
}

/// True once `pid` exited; leaves it a zombie (WNOWAIT) so /proc still
/// holds its final CPU times.
fn exited_unreaped(pid: u32) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    // StillAlive is what waitid gives for a child that has not exited yet.
    matches!(waitid(Id::Pid(pid), flags), Ok(status) if status != WaitStatus::StillAlive)
}

fn read_all_on_thread(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// SIGKILL by PID (Child::kill) and wait, so no zombie stays behind.
fn kill_and_reap(child: &mut Child, pids: &dyn PidRecorder) {
    let _ = child.kill();
    let _ = child.wait();
    pids.reaped(child.id());
}

/// Waits until process `pid` has a TCP socket listening on `port` in its own
/// network namespace (/proc/<pid>/net/tcp shows the process's namespace).
pub fn wait_listening(
    proc_: &mut ToolProcess<'_>,
    port: u16,
    limit: Duration,
) -> Result<(), WorkloadError> {
    let deadline = Instant::now() + limit;
    let pid = proc_.pid();
    while Instant::now() < deadline {
        if !proc_.running() {
            return Err(WorkloadError::ToolReported {
                tool: proc_.tool,
                message: format!("server exited before listening on port {port}"),
            });
        }
        let listening = ["tcp", "tcp6"].iter().any(|f| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
                .map(|t| has_listener(&t, port))
                .unwrap_or(false)
        });
        if listening {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(WorkloadError::ToolTimeout {
        tool: proc_.tool,
        limit,
    })
}

/// Whether a /proc/net/tcp{,6} table has a LISTEN (state 0A) socket on `port`.
pub fn has_listener(table: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace();
        let local = f.nth(1).unwrap_or("");
        let state = f.nth(1).unwrap_or("");
        local.ends_with(&want) && state == "0A"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_found_in_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 0100007F:1452 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        assert!(has_listener(table, 5201));
        assert!(!has_listener(table, 5202), "established, not listening");
        assert!(!has_listener(table, 80));
    }

    #[test]
    fn finds_sh_in_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-dplab").is_none());
    }
}
