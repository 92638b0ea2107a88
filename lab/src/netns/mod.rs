//! Named network namespaces, `ip netns` compatible (bind mounts under /run/netns).
//!
//! setns() changes only the calling thread, so every function that enters a
//! namespace does it on a thread made for it (a fresh one, a pool's, or a
//! worker's), never on a tokio worker.

pub mod cross;
pub mod netlink;
pub mod pool;
pub mod worker;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, CloneFlags};

/// Where `ip netns` keeps its bind mounts.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("netns {name}: {op}: {source}")]
    Io {
        name: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("netns {name}: {op}: {source}")]
    Sys {
        name: String,
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("netns {name}: the thread that entered it panicked")]
    Panicked { name: String },
}

pub type Result<T> = std::result::Result<T, NetnsError>;

pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    path_of(name).exists()
}

/// Creates the named namespace `name`. Fails if it exists already, so two runs
/// can never share one.
pub fn create(name: &str) -> Result<()> {
    pool::create_all(&[name.to_string()], |_| ()).map(drop)
}

/// Deletes the named namespace. A namespace that is already gone counts as
/// deleted. The kernel frees the namespace (and every link in it) once the
/// last reference (mount, process, open fd) is gone.
pub fn delete(name: &str) -> Result<()> {
    let path = path_of(name);
    if !path.exists() {
        return Ok(());
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Sys {
                name: name.to_string(),
                op: "umount",
                source: e,
            })
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::Io {
            name: name.to_string(),
            op: "remove mount point",
            source: e,
        }),
    }
}

/// Names of every namespace under /run/netns that starts with `prefix`.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Opens the namespace file, e.g. to move a link into it (IFLA_NET_NS_FD) or to
/// hand it to a child process.
pub fn open(name: &str) -> Result<File> {
    File::open(path_of(name)).map_err(|e| NetnsError::Io {
        name: name.to_string(),
        op: "open",
        source: e,
    })
}

/// Runs `f` on a new thread that entered namespace `name`, and returns its
/// result. Sockets created inside `f` stay in that namespace for their whole
/// life, whichever thread uses them afterwards.
pub fn run_in<F, R>(name: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let file = open(name)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Sys {
                    name: name.to_string(),
                    op: "setns",
                    source: e,
                })?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetnsError::Panicked {
                name: name.to_string(),
            })?
    })
}

/// Like [`run_in`] but the thread keeps running: for servers that live as long
/// as a measurement. The handle yields the closure's result.
pub fn spawn_in<F, R>(name: &str, f: F) -> Result<std::thread::JoinHandle<Result<R>>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let file = open(name)?;
    let owned = name.to_string();
    Ok(std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Sys {
            name: owned,
            op: "setns",
            source: e,
        })?;
        Ok(f())
    }))
}

/// Writes a sysctl under /proc/sys/net inside namespace `name`
/// (e.g. `net/ipv4/ip_forward`). /proc/sys/net shows the namespace of the
/// thread that opens it, so the write happens on a thread inside `name`.
pub fn write_sysctl(name: &str, key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    run_in(name, || std::fs::write(&path, value))?.map_err(|e| NetnsError::Io {
        name: name.to_string(),
        op: "write sysctl",
        source: std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
    })
}

/// Reads a sysctl inside namespace `name`.
pub fn read_sysctl(name: &str, key: &str) -> Result<String> {
    let path = Path::new("/proc/sys").join(key);
    run_in(name, || std::fs::read_to_string(&path))?
        .map(|s| s.trim().to_string())
        .map_err(|e| NetnsError::Io {
            name: name.to_string(),
            op: "read sysctl",
            source: std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        })
}

/// A `Command` whose child process enters a namespace before exec (for
/// iptables-restore, iperf3, qperf, ping). It owns the namespace file until
/// the child is spawned.
pub struct NsCommand {
    pub cmd: std::process::Command,
    _ns: File,
}

impl std::ops::Deref for NsCommand {
    type Target = std::process::Command;
    fn deref(&self) -> &Self::Target {
        &self.cmd
    }
}

impl std::ops::DerefMut for NsCommand {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.cmd
    }
}

/// Builds a command that runs `program` inside namespace `name`.
pub fn command_in(name: &str, program: &str) -> Result<NsCommand> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let ns = open(name)?;
    let fd = ns.as_raw_fd();
    let mut cmd = std::process::Command::new(program);
    // SAFETY: setns is an async-signal-safe syscall and is all that runs
    // between fork and exec. The fd is close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(NsCommand { cmd, _ns: ns })
}
