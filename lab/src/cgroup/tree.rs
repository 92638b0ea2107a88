//! Making and removing a lab's cgroup folders. Each folder is journalled
//! before mkdir, so teardown and `dplab cleanup` find it after a crash.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{io_err, lab_dir_under, procs, v2_mount, CgroupError, Result};
use crate::ledger::{Entry, Ledger};
use crate::names::RunId;

/// Journals and creates `<mount>/dplab-<run>/` and one child per member
/// (pod or node name); returns the lab's folder.
pub fn create<'a>(
    ledger: &Ledger,
    run: &RunId,
    members: impl IntoIterator<Item = &'a str>,
) -> Result<PathBuf> {
    let mount = v2_mount().ok_or(CgroupError::NoV2Mount)?;
    let lab = lab_dir_under(mount, run);
    make(ledger, &lab)?;
    for member in members {
        make(ledger, &lab.join(member))?;
    }
    Ok(lab)
}

fn make(ledger: &Ledger, dir: &Path) -> Result<()> {
    ledger.record(&Entry::Cgroup {
        path: dir.to_path_buf(),
    })?;
    // A fresh run id never has a folder yet: an existing one is not ours.
    std::fs::create_dir(dir).map_err(io_err(dir, "create"))
}

/// Removes an empty cgroup folder; gone already counts as removed (false).
/// The processes in it must have ended (a dying one may take a moment to
/// leave, so EBUSY is retried for a while).
pub fn remove(dir: &Path) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let pids = procs(dir)?;
                return Err(if pids.is_empty() {
                    io_err(dir, "remove")(e)
                } else {
                    CgroupError::Busy {
                        path: dir.to_path_buf(),
                        pids,
                    }
                });
            }
            Err(e) => return Err(io_err(dir, "remove")(e)),
        }
    }
}

/// The child folders of a lab's cgroup folder (for a teardown without
/// journal).
pub fn children(lab: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lab)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}
