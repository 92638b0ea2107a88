//! The journal of every kernel object and process a run creates, written
//! before the object is created, so that teardown (or `dplab cleanup` after
//! a crash) can remove exactly what the run made, in reverse order.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
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
    /// A cgroup v2 folder of the lab (its own or a pod's), removed once the
    /// processes in it have ended.
    Cgroup { path: PathBuf },
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
    _lock: Option<Flock<File>>,
    /// Group commit of [`Ledger::record_grouped`]: lines appended so far,
    /// lines known to be on disk, and who syncs next.
    appended: AtomicU64,
    synced: AtomicU64,
    syncing: tokio::sync::Mutex<()>,
}

impl Ledger {
    /// Creates the journal of a new run and takes its owner lock.
    pub fn create(run: &RunId, first: Entry) -> Result<Ledger, LedgerError> {
        Ledger::create_in(run.state_dir(), first)
    }

    /// [`Ledger::create`] in folder `dir`.
    fn create_in(dir: PathBuf, first: Entry) -> Result<Ledger, LedgerError> {
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
        let ledger = Ledger::with_file(dir.clone(), file, lock);
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
        Ok(Ledger::with_file(dir, file, None))
    }

    fn with_file(dir: PathBuf, file: File, lock: Option<Flock<File>>) -> Ledger {
        Ledger {
            dir,
            file: Mutex::new(file),
            _lock: lock,
            appended: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an entry and syncs it to disk before the caller creates the
    /// object, so a crash right after still finds it.
    pub fn record(&self, entry: &Entry) -> Result<(), LedgerError> {
        self.record_all(std::slice::from_ref(entry))
    }

    /// Appends entries with one write and one sync, before the caller
    /// creates the objects they name (e.g. a thousand namespaces).
    pub fn record_all(&self, entries: &[Entry]) -> Result<(), LedgerError> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        self.append(&mut file, entries)?;
        file.sync_data().map_err(|e| self.error("sync", e))?;
        self.synced
            .store(self.appended.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    }

    /// Appends an entry and returns once it is on disk, sharing syncs with
    /// concurrent callers (group commit): while one sync runs on a blocking
    /// thread, entries of other tasks pile up and the next sync takes them
    /// all. For objects made many at a time, such as one link per pod.
    pub async fn record_grouped(&self, entry: &Entry) -> Result<(), LedgerError> {
        let (mine, file) = {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            self.append(&mut file, std::slice::from_ref(entry))?;
            let dup = file.try_clone().map_err(|e| self.error("sync", e))?;
            (self.appended.load(Ordering::SeqCst), Arc::new(dup))
        };
        let _turn = self.syncing.lock().await;
        if self.synced.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        // Everything appended before this point is covered by this sync.
        let upto = self.appended.load(Ordering::SeqCst);
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| self.error("sync", std::io::Error::other(e)))?
            .map_err(|e| self.error("sync", e))?;
        self.synced.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    fn append(&self, file: &mut File, entries: &[Entry]) -> Result<(), LedgerError> {
        let mut text = String::new();
        for entry in entries {
            text.push_str(&serde_json::to_string(entry).expect("journal entries serialize"));
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .map_err(|e| self.error("append", e))?;
        self.appended
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn error(&self, op: &'static str, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.dir.join("journal.jsonl"),
            op,
            source,
        }
    }
}

/// The file a run's owner holds an exclusive flock on while it lives.
const OWNER_LOCK: &str = "owner.lock";

/// Takes the exclusive owner lock of a run folder; None if a live process
/// holds it. The lock lasts as long as the returned value.
fn lock_owner(dir: &Path) -> std::io::Result<Option<Flock<File>>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(OWNER_LOCK))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Whether a live process owns the run (holds its lock).
///
/// Read-only: the lock file is opened, never created, and only a shared
/// lock is tried, since this is asked of other runs whose owners may be
/// removing their folders (`dplab run` watches for other labs).
pub fn is_owned_by_live_process(run: &RunId) -> bool {
    let Ok(file) = File::open(run.state_dir().join(OWNER_LOCK)) else {
        return false;
    };
    // The shared lock, if taken, ends when it is dropped right here.
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => false,
        Err((_, e)) => e == Errno::EWOULDBLOCK,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(i: usize) -> Entry {
        Entry::Link {
            netns: "dl3f9a-node1".into(),
            name: format!("dl3f9a-v{i}"),
        }
    }

    fn lines(dir: &Path) -> Vec<Entry> {
        std::fs::read_to_string(dir.join("journal.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_records_are_all_written_once_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::create_in(dir.path().to_path_buf(), Entry::Detached).unwrap();
        ledger.record_all(&[link(0), link(1)]).unwrap();
        let writers = (2..202).map(|i| {
            let ledger = &ledger;
            async move { ledger.record_grouped(&link(i)).await }
        });
        for result in futures::future::join_all(writers).await {
            result.unwrap();
        }
        assert_eq!(ledger.synced.load(Ordering::SeqCst), 203);
        let mut got = lines(dir.path());
        assert_eq!(got.remove(0), Entry::Detached);
        let mut names: Vec<String> = got
            .into_iter()
            .map(|e| match e {
                Entry::Link { name, .. } => name,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        names.sort_by_key(|n| n[8..].parse::<usize>().unwrap());
        let want: Vec<String> = (0..202).map(|i| format!("dl3f9a-v{i}")).collect();
        assert_eq!(names, want);
    }
}
