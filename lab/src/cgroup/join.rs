//! Putting processes into a pod's cgroup.
//!
//! External programs join before exec ([`join_on_exec`]): the child writes
//! itself into the cgroup between fork and exec, so every socket it ever
//! opens belongs to the pod.
//!
//! The built-in generators are threads of dplab, and in cgroup v2 all
//! threads of a process share one cgroup (outside threaded mode), so dplab
//! itself joins the client pod's cgroup for one sample ([`SampleCgroup`])
//! and returns to its original cgroup afterwards. A socket keeps the
//! cgroup it was created in, so the client's sockets stay the pod's for
//! their whole life. Server sockets made during the sample land in the
//! client's cgroup too, which the hooks ignore: they only translate
//! connects and sends to service addresses, and only translate back on the
//! very sockets they translated (keyed by socket cookie).

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{io_err, of_netns, procs, v2_mount, CgroupError, Result};

/// Serialises samples that move dplab: one process has one cgroup.
static SAMPLE: Mutex<()> = Mutex::new(());

/// dplab's cgroup before it joined a pod's, while it is away: teardown
/// (e.g. on Ctrl-C mid-sample) sends it back there before removing the
/// pod's cgroup.
static HOME: Mutex<Option<PathBuf>> = Mutex::new(None);

/// dplab's own process inside a pod's cgroup; back home when dropped.
pub struct SampleCgroup {
    home: PathBuf,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl SampleCgroup {
    /// Joins the cgroup of namespace `ns` (`dl3f9a-pod-b`) if its lab has
    /// cgroups; None when it has none (nothing to do).
    pub fn enter_for_netns(ns: &str) -> Result<Option<SampleCgroup>> {
        let Some(dir) = of_netns(ns) else {
            return Ok(None);
        };
        let guard = SAMPLE.lock().unwrap_or_else(|p| p.into_inner());
        let home = own_cgroup()?;
        *HOME.lock().unwrap_or_else(|p| p.into_inner()) = Some(home.clone());
        if let Err(e) = move_self(&dir) {
            *HOME.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Err(e);
        }
        Ok(Some(SampleCgroup {
            home,
            _one_at_a_time: guard,
        }))
    }
}

impl Drop for SampleCgroup {
    fn drop(&mut self) {
        if let Err(e) = move_self(&self.home) {
            eprintln!(
                "dplab: warning: cannot return to cgroup {}: {e}",
                self.home.display()
            );
        }
        *HOME.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// If dplab itself is in cgroup `dir` (a sample interrupted by a signal),
/// moves it back to where it came from, so `dir` can be removed. Returns
/// whether it was there.
pub fn leave_if_inside(dir: &Path) -> Result<bool> {
    if !procs(dir)?.contains(&std::process::id()) {
        return Ok(false);
    }
    let home = HOME.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let home = home.ok_or_else(|| CgroupError::Busy {
        path: dir.to_path_buf(),
        pids: vec![std::process::id()],
    })?;
    move_self(&home)?;
    Ok(true)
}

/// Makes the child of `cmd` join cgroup `dir` before it execs.
pub fn join_on_exec(cmd: &mut std::process::Command, dir: &Path) -> Result<()> {
    // Opened here (close-on-exec) so the child only writes: no allocation
    // or path lookup between fork and exec.
    let procs_file = open_procs(dir)?;
    // SAFETY: the hook runs between fork and exec and only calls write(2),
    // which is async-signal-safe, on a descriptor the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            // "0" means the writing process itself.
            nix::unistd::write(&procs_file, b"0")
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    Ok(())
}

fn open_procs(dir: &Path) -> Result<File> {
    let path = dir.join("cgroup.procs");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err(dir, "open cgroup.procs"))
}

/// Moves this whole process (every thread) into cgroup `dir`.
fn move_self(dir: &Path) -> Result<()> {
    use std::io::Write;
    open_procs(dir)?
        .write_all(std::process::id().to_string().as_bytes())
        .map_err(io_err(dir, "move dplab's process in"))
}

/// This process's cgroup v2 folder (the `0::` line of /proc/self/cgroup).
pub fn own_cgroup() -> Result<PathBuf> {
    let mount = v2_mount().ok_or(CgroupError::NoV2Mount)?;
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(io_err(Path::new("/proc/self/cgroup"), "read"))?;
    let rel = v2_path_of(&text).ok_or_else(|| {
        io_err(Path::new("/proc/self/cgroup"), "find the cgroup2 line")(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no 0:: line",
        ))
    })?;
    Ok(mount.join(rel.trim_start_matches('/')))
}

/// The path of the `0::/path` line of /proc/<pid>/cgroup text.
fn v2_path_of(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_v2_line_of_a_hybrid_host() {
        let text = "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu:/\n0::/dplab-3f9a/pod-b\n";
        assert_eq!(v2_path_of(text), Some("/dplab-3f9a/pod-b"));
        assert_eq!(v2_path_of("0::/\n"), Some("/"));
        assert_eq!(v2_path_of("1:cpu:/\n"), None);
    }
}
