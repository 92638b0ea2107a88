//! A thread parked inside one namespace that runs jobs for async callers,
//! for what only a thread inside can do: /proc/sys/net shows the
//! namespace of the thread that opens it. One thread serves every sysctl
//! write of its namespace instead of one thread per write.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::sched::{setns, CloneFlags};

use super::{NetnsError, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The thread of one namespace; it ends when the worker is dropped.
pub struct NsWorker {
    name: String,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsWorker {
    /// Starts a thread inside namespace `name`.
    pub fn spawn(name: &str) -> Result<NsWorker> {
        let file = super::open(name)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (entered_tx, entered) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let result = setns(file.as_fd(), CloneFlags::CLONE_NEWNET);
            let inside = result.is_ok();
            let _ = entered_tx.send(result);
            if inside {
                for job in queue {
                    job();
                }
            }
        });
        let panicked = || NetnsError::Panicked {
            name: name.to_string(),
        };
        match entered.recv() {
            Ok(Ok(())) => Ok(NsWorker {
                name: name.to_string(),
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(NetnsError::Sys {
                name: name.to_string(),
                op: "setns",
                source: e,
            }),
            Err(_) => Err(panicked()),
        }
    }

    /// Runs `f` on the namespace's thread and waits for its result without
    /// blocking the caller's executor.
    pub async fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = futures::channel::oneshot::channel();
        let panicked = || NetnsError::Panicked {
            name: self.name.clone(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(panicked)?
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| panicked())?;
        rx.await.map_err(|_| panicked())
    }

    /// Writes a sysctl under /proc/sys (e.g. `net/ipv4/ip_forward`) inside
    /// the namespace.
    pub async fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys").join(key);
        let value = value.to_string();
        let shown = path.clone();
        self.run(move || std::fs::write(&path, value))
            .await?
            .map_err(|e| NetnsError::Io {
                name: self.name.clone(),
                op: "write sysctl",
                source: std::io::Error::new(e.kind(), format!("{}: {e}", shown.display())),
            })
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the jobs already sent.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
