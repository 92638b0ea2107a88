//! The bpffs folder of a run: /sys/fs/bpf/dplab/<run-id>/ holds `links/`,
//! the pinned TCX attachments, and the maps (by name): in `nodes/<node>/`,
//! one set per node of a lab, or at the top for a load balancer of no
//! particular node (tests, probes). Removing the folder frees everything: a
//! pinned link whose file goes away (and which no process holds) detaches
//! its program.

use std::path::{Path, PathBuf};

use super::EbpfError;
use crate::names::BPFFS_DIR;

pub const BPFFS: &str = "/sys/fs/bpf";

/// The run's pin folder; rejects ids that could escape BPFFS_DIR.
pub fn pin_dir(run_id: &str) -> Result<PathBuf, EbpfError> {
    let valid = !run_id.is_empty()
        && run_id != "."
        && run_id != ".."
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !valid {
        return Err(EbpfError::InvalidRunId(run_id.to_string()));
    }
    Ok(Path::new(BPFFS_DIR).join(run_id))
}

/// The folder of node `node`'s maps in run `run_id`.
pub fn node_pin_dir(run_id: &str, node: &str) -> Result<PathBuf, EbpfError> {
    let valid = !node.is_empty()
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && node != "links";
    if !valid {
        return Err(EbpfError::InvalidRunId(format!("{run_id}/{node}")));
    }
    Ok(pin_dir(run_id)?.join("nodes").join(node))
}

/// Every folder of the run that may hold a set of maps: the top one and
/// each node's.
pub(crate) fn scope_dirs(run_id: &str) -> Result<Vec<PathBuf>, EbpfError> {
    let top = pin_dir(run_id)?;
    let mut dirs = vec![top.clone()];
    let mut nodes: Vec<PathBuf> = std::fs::read_dir(top.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    nodes.sort();
    dirs.extend(nodes);
    Ok(dirs)
}

pub(crate) fn links_dir(run_id: &str) -> Result<PathBuf, EbpfError> {
    Ok(pin_dir(run_id)?.join("links"))
}

pub(crate) fn create_dir(path: &Path) -> Result<(), EbpfError> {
    std::fs::create_dir_all(path).map_err(|source| EbpfError::Pins {
        path: path.to_path_buf(),
        op: "create folder",
        source,
    })
}

/// Run ids that have a pin folder (left by a running lab or a crash).
pub fn list_pinned_runs() -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_dir(BPFFS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    runs.sort();
    runs
}

/// Removes a run's pins: its maps and the links that keep its programs
/// attached. Gone already counts as removed. Drops BPFFS_DIR when it empties.
pub fn remove_pins(run_id: &str) -> Result<(), EbpfError> {
    let dir = pin_dir(run_id)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(EbpfError::Pins {
                path: dir,
                op: "remove folder",
                source,
            })
        }
    }
    // Fails while other runs still have pins, which is what we want.
    let _ = std::fs::remove_dir(BPFFS_DIR);
    Ok(())
}

/// Mounts bpffs at /sys/fs/bpf unless one is there already, as Cilium and
/// Calico do on a node without it. Never unmounted: other tools may pin there.
pub fn ensure_bpffs() -> Result<(), EbpfError> {
    use nix::mount::{mount, MsFlags};
    if bpffs_mounted() {
        return Ok(());
    }
    mount(
        Some("bpffs"),
        BPFFS,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME,
        Some("mode=0700"),
    )
    .map_err(|e| EbpfError::Pins {
        path: BPFFS.into(),
        op: "mount bpffs",
        source: e.into(),
    })
}

/// Whether the kernel offers bpffs at all.
pub fn bpffs_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().last() == Some("bpf"))
    })
}

/// Whether /sys/fs/bpf is a mounted bpffs (pins need it).
pub fn bpffs_mounted() -> bool {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    // f_type is i64 on x86_64 but narrower elsewhere.
    #[allow(clippy::unnecessary_cast)]
    nix::sys::statfs::statfs(BPFFS)
        .map(|s| s.filesystem_type().0 as i64 == BPF_FS_MAGIC)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_cannot_escape() {
        assert!(pin_dir("3f9a").is_ok());
        assert!(pin_dir("dlte-x_1").is_ok());
        assert!(pin_dir("..").is_err());
        assert!(pin_dir("a/b").is_err());
        assert!(pin_dir("").is_err());
        assert!(node_pin_dir("3f9a", "node-a")
            .unwrap()
            .ends_with("3f9a/nodes/node-a"));
        assert!(node_pin_dir("3f9a", "../x").is_err());
    }
}
