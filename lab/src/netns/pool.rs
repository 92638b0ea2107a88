//! Many namespaces at once: creating, entering and deleting hundreds of
//! them on a few threads instead of one thread each.
//!
//! A thread that unshares its network namespace stays in the new one, so
//! the threads here are made for the job and end with it: no tokio worker
//! and no long-lived thread ever changes namespace.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::{path_of, NetnsError, Result, NETNS_DIR};

/// Threads that create or enter namespaces at once. The kernel serialises
/// much of the work (RTNL, the mount lock), so a few threads are enough to
/// keep it busy; more only add contention.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

/// Runs `job(i)` for every `i < count` on a few threads and returns the
/// results in order. With `stop_on_error`, no new index starts after the
/// first error (those stay `None`), so a failing kernel is not hammered.
/// The indices of a thread that panicked stay `None` too.
fn for_each<T, F>(count: usize, stop_on_error: bool, job: F) -> Vec<Option<Result<T>>>
where
    T: Send,
    F: Fn(usize) -> Result<T> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Result<T>>> = (0..count).map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<T>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads().min(count).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || failed.load(Ordering::Relaxed) {
                            return mine;
                        }
                        let result = job(i);
                        if stop_on_error && result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        mine.push((i, result));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, result) in done.into_iter().flatten() {
        results[i] = Some(result);
    }
    results
}

/// Collects [`for_each`]'s results: all values in order, or the first error
/// by index (an index never started because another failed is no error of
/// its own; one lost without any error means its thread panicked).
fn collect<T>(names: &[String], results: Vec<Option<Result<T>>>) -> Result<Vec<T>> {
    let mut values = Vec::with_capacity(results.len());
    let mut skipped = None;
    for (name, result) in names.iter().zip(results) {
        match result {
            Some(Ok(v)) => values.push(v),
            Some(Err(e)) => return Err(e),
            None => skipped = Some(name),
        }
    }
    match skipped {
        Some(name) => Err(NetnsError::Panicked { name: name.clone() }),
        None => Ok(values),
    }
}

/// Creates every namespace in `names` (each must not exist yet) and runs
/// `inside(name)` on the thread while it is inside the new namespace (to
/// open sockets there). Returns `inside`'s results in order, or the first
/// error; namespaces created before an error stay (the caller journalled
/// them and tears them down).
pub fn create_all<T, F>(names: &[String], inside: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(&str) -> T + Sync,
{
    let io = |name: &str, op, source| NetnsError::Io {
        name: name.to_string(),
        op,
        source,
    };
    if let Some(first) = names.first() {
        std::fs::create_dir_all(NETNS_DIR).map_err(|e| io(first, "create /run/netns", e))?;
    }
    let results = for_each(names.len(), true, |i| {
        let name = &names[i];
        create_here(name)?;
        Ok(inside(name))
    });
    collect(names, results)
}

/// Creates namespace `name` and leaves the calling thread inside it.
fn create_here(name: &str) -> Result<()> {
    let path = path_of(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| NetnsError::Io {
            name: name.to_string(),
            op: "create mount point",
            source: e,
        })?;
    let sys = |op, source| NetnsError::Sys {
        name: name.to_string(),
        op,
        source,
    };
    let made = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| sys("unshare", e))
        .and_then(|()| {
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| sys("bind mount", e))
        });
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Runs `inside(name)` inside every namespace of `names` (which exist) on a
/// few threads, and returns the results in order or the first error.
pub fn run_in_each<T, F>(names: &[String], inside: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(&str) -> T + Sync,
{
    let results = for_each(names.len(), true, |i| {
        let name = &names[i];
        let file = super::open(name)?;
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Sys {
            name: name.clone(),
            op: "setns",
            source: e,
        })?;
        Ok(inside(name))
    });
    collect(names, results)
}

/// Deletes every namespace in `names` on a few threads; one result per name,
/// in order (a namespace already gone counts as deleted). Unlike creation
/// it goes on after an error: teardown reports every failure.
pub fn delete_all(names: &[String]) -> Vec<Result<()>> {
    let results = for_each(names.len(), false, |i| super::delete(&names[i]));
    names
        .iter()
        .zip(results)
        .map(|(name, r)| {
            r.unwrap_or_else(|| {
                Err(NetnsError::Panicked {
                    name: name.to_string(),
                })
            })
        })
        .collect()
}
