//! The journal of every kernel object and process a run creates, written
//! before the object is created, so that teardown (or `dplab cleanup` after
//! a crash) can remove exactly what the run made, in reverse order.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::names::{RunId, STATE_DIR};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// Who made the run, first line of every journal.
    Run {
        run_id: String,
        topology: String,
        datapath: String,
        /// The service proxy (journals written before the proxy axis lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proxy: Option<String>,
        owner_pid: u32,
        started_at: String,
    },
    /// A named network namespace under /run/netns.
    Netns { name: String },
    /// A link inside one of the run's namespaces; it goes with the namespace.
    Link { netns: String, name: String },
    /// A process started inside a namespace (a server), ended by PID.
    Process {
        pid: u32,
        start_time: u64,
        what: String,
    },
    /// A process that ended normally: no longer to be killed.
    ProcessEnded { pid: u32 },
    /// `dplab up` finished building and left the lab running on purpose:
    /// `dplab cleanup` keeps it, `dplab down` removes it.
    Detached,
    /// A folder of eBPF pins in bpffs.
    BpfPins { path: PathBuf },
    /// A clsact qdisc added to a link of one of the run's namespaces, to
    /// hold tc programs attached by netlink (kernels without TCX). Removed
    /// explicitly: the namespace may outlive the run.
    TcQdisc { netns: String, ifname: String },
    /// A cls_bpf filter (direct action) on a clsact qdisc: `direction` is
    /// `ingress` or `egress`; priority and handle identify it.
    TcFilter {
        netns: String,
        ifname: String,
        direction: String,
        priority: u16,
        handle: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("journal {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// An open journal. The owning process holds an exclusive flock on
/// `owner.lock` for as long as it lives, which tells `dplab cleanup` that
/// the run is still alive.
pub struct Ledger {
    dir: PathBuf,
    file: Mutex<File>,
    _lock: Option<File>,
}

impl Ledger {
    /// Creates the journal of a new run and takes its owner lock.
    pub fn create(run: &RunId, first: Entry) -> Result<Ledger, LedgerError> {
        let dir = run.state_dir();
        let io = |op, source| LedgerError::Io {
            path: dir.clone(),
            op,
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("create state folder", e))?;
        let lock = lock_owner(&dir).map_err(|e| io("lock", e))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("journal.jsonl"))
            .map_err(|e| io("open", e))?;
        let ledger = Ledger {
            dir: dir.clone(),
            file: Mutex::new(file),
            _lock: lock,
        };
        ledger.record(&first)?;
        Ok(ledger)
    }

    /// Opens the journal of an existing run (for `dplab test`/`down`).
    pub fn open(run: &RunId) -> Result<Ledger, LedgerError> {
        let dir = run.state_dir();
        let path = dir.join("journal.jsonl");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| LedgerError::Io {
                path: path.clone(),
                op: "open",
                source: e,
            })?;
        Ok(Ledger {
            dir,
            file: Mutex::new(file),
            _lock: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an entry and syncs it to disk before the caller creates the
    /// object, so a crash right after still finds it.
    pub fn record(&self, entry: &Entry) -> Result<(), LedgerError> {
        let mut line = serde_json::to_string(entry).expect("journal entries serialize");
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| LedgerError::Io {
                path: self.dir.join("journal.jsonl"),
                op: "append",
                source: e,
            })
    }
}

/// Takes the exclusive owner lock of a run folder; None if a live process
/// holds it.
fn lock_owner(dir: &Path) -> std::io::Result<Option<File>> {
    use std::os::fd::AsRawFd;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("owner.lock"))?;
    // SAFETY: flock on an fd we own; the lock lives as long as the file.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Whether a live process owns the run (holds its lock).
pub fn is_owned_by_live_process(run: &RunId) -> bool {
    let dir = run.state_dir();
    if !dir.exists() {
        return false;
    }
    matches!(lock_owner(&dir), Ok(None))
}

/// Reads a run's journal; a torn last line (crash mid-write) is ignored.
pub fn read_journal(run: &RunId) -> Result<Vec<Entry>, LedgerError> {
    let path = run.state_dir().join("journal.jsonl");
    let file = File::open(&path).map_err(|e| LedgerError::Io {
        path: path.clone(),
        op: "read",
        source: e,
    })?;
    Ok(BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

/// Run ids that have a journal under /run/dplab.
pub fn journaled_runs() -> Vec<RunId> {
    let mut runs: Vec<RunId> = std::fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| RunId::parse(&n))
        .collect();
    runs.sort();
    runs
}

/// Whether `dplab up` left the run running on purpose.
pub fn is_detached(run: &RunId) -> bool {
    read_journal(run).is_ok_and(|entries| entries.contains(&Entry::Detached))
}
