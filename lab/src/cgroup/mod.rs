//! The lab's cgroup v2 subtree, for the socket-lb proxy: its hooks act on
//! sockets by the cgroup of the task that created them, so every pod (and
//! node) of such a lab gets a cgroup and its processes run there.
//!
//! Layout: `<cgroup2 mount>/dplab-<run-id>/<pod or node name>/`. The
//! cgroup2 mount is found in /proc/mounts (/sys/fs/cgroup on a pure v2
//! host, /sys/fs/cgroup/unified on a hybrid one). Folders are journalled
//! before they are made ([`tree::create`]) and removed by teardown once
//! the processes in them have ended ([`tree::remove`]); processes join
//! them with [`join`].

pub mod join;
pub mod tree;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ledger::LedgerError;
use crate::names::{RunId, PREFIX};

/// Prefix of a lab's cgroup folder under the cgroup2 mount.
pub const DIR_PREFIX: &str = "dplab-";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 filesystem is mounted (none in /proc/mounts)")]
    NoV2Mount,
    #[error("cgroup {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: still holds processes {pids:?} after ending them")]
    Busy { path: PathBuf, pids: Vec<u32> },
    #[error("cgroup {path}: not a folder of run {run}; refusing to remove it")]
    Foreign { path: PathBuf, run: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub type Result<T> = std::result::Result<T, CgroupError>;

pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { path, op, source }
}

/// Where the cgroup2 filesystem is mounted, if it is (read once).
pub fn v2_mount() -> Option<&'static Path> {
    static MOUNT: OnceLock<Option<PathBuf>> = OnceLock::new();
    MOUNT
        .get_or_init(|| {
            std::fs::read_to_string("/proc/mounts")
                .ok()
                .and_then(|m| parse_v2_mount(&m))
        })
        .as_deref()
}

/// The first cgroup2 mount point in /proc/mounts text.
pub fn parse_v2_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount(point)))
    })
}

/// /proc/mounts writes space, tab, newline and backslash as octal escapes.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<mount>/dplab-<run>`: the lab's own folder.
pub fn lab_dir_under(mount: &Path, run: &RunId) -> PathBuf {
    mount.join(format!("{DIR_PREFIX}{run}"))
}

/// The lab's folder, when a cgroup2 filesystem is mounted.
pub fn lab_dir(run: &RunId) -> Option<PathBuf> {
    v2_mount().map(|m| lab_dir_under(m, run))
}

/// The cgroup of a lab's namespace (`dl3f9a-pod-a` -> `.../dplab-3f9a/pod-a`),
/// if that lab has one.
pub fn of_netns(ns: &str) -> Option<PathBuf> {
    let (id, name) = ns.strip_prefix(PREFIX)?.split_once('-')?;
    let run = RunId::parse(id)?;
    let dir = lab_dir(&run)?.join(name);
    dir.is_dir().then_some(dir)
}

/// Whether `path` is run `run`'s lab folder or one of its direct children:
/// the only cgroups teardown ever removes.
pub fn is_of_run(path: &Path, run: &RunId) -> bool {
    v2_mount().is_some_and(|mount| is_of_run_under(mount, path, run))
}

fn is_of_run_under(mount: &Path, path: &Path, run: &RunId) -> bool {
    let lab = lab_dir_under(mount, run);
    path == lab
        || (path.parent() == Some(lab.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.is_empty() && !n.starts_with('.')))
}

/// Runs that have a cgroup folder (left by a running lab or a crash).
pub fn lab_runs() -> Vec<RunId> {
    let Some(mount) = v2_mount() else {
        return Vec::new();
    };
    let mut runs: Vec<RunId> = std::fs::read_dir(mount)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(DIR_PREFIX).and_then(RunId::parse))
        .collect();
    runs.sort();
    runs
}

/// PIDs of the processes in cgroup `dir` (none if it is gone).
pub fn procs(dir: &Path) -> Result<Vec<u32>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir, "read cgroup.procs")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_v2_mount_of_a_hybrid_host() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            parse_v2_mount(mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            parse_v2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            parse_v2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
        assert_eq!(
            parse_v2_mount("none /mnt/my\\040cg cgroup2 rw 0 0\n"),
            Some(PathBuf::from("/mnt/my cg"))
        );
    }

    #[test]
    fn only_the_runs_own_folders_are_its() {
        let mount = Path::new("/sys/fs/cgroup/unified");
        let run = RunId::parse("3f9a").unwrap();
        let lab = lab_dir_under(mount, &run);
        assert_eq!(lab, Path::new("/sys/fs/cgroup/unified/dplab-3f9a"));
        let of_run = |p: &Path| is_of_run_under(mount, p, &run);
        assert!(of_run(&lab));
        assert!(of_run(&lab.join("pod-a")));
        assert!(!of_run(&lab.join("pod-a/x")));
        assert!(!of_run(mount));
        assert!(!of_run(&lab.join("..")));
        let other = RunId::parse("0001").unwrap();
        assert!(!of_run(&lab_dir_under(mount, &other)));
    }
}
