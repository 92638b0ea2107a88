//! Pieces every built-in workload shares: the timeline (warm-up, measured
//! interval), worker threads with a join deadline and sockets created
//! inside a namespace. The clock that runs them is in `generator`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cpu::TidSet;
use super::{Endpoints, Params, Workload, WorkloadError};
use crate::netns;

/// Warm-up from `start` to `t0`, measured interval from `t0` to `t1`.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub start: Instant,
    pub t0: Instant,
    pub t1: Instant,
}

impl Timeline {
    /// A timeline starting now.
    pub fn starting_now(p: &Params) -> Timeline {
        let start = Instant::now();
        let t0 = start + p.warmup;
        Timeline {
            start,
            t0,
            t1: t0 + p.duration,
        }
    }

    pub fn measuring(&self, at: Instant) -> bool {
        at >= self.t0 && at < self.t1
    }
}

/// Set once the measured interval is over (or the sample is aborted).
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Workers of one sample; each registers its thread id for CPU accounting.
pub struct Workers<T> {
    handles: Vec<JoinHandle<Result<Result<T, WorkloadError>, netns::NetnsError>>>,
    workload: Workload,
}

impl<T: Send + 'static> Workers<T> {
    pub fn new(workload: Workload) -> Self {
        Workers {
            handles: Vec::new(),
            workload,
        }
    }

    /// Starts `f` on a new thread, inside namespace `ns` if given (needed
    /// when the worker creates sockets itself, as tcp-crr does).
    pub fn spawn<F>(&mut self, ns: Option<&str>, tids: &TidSet, f: F) -> Result<(), WorkloadError>
    where
        F: FnOnce() -> Result<T, WorkloadError> + Send + 'static,
    {
        let tids = tids.clone();
        let body = move || {
            tids.register_current();
            if let Some(cpu) = tids.cpu() {
                super::pinning::pin_current_thread(cpu)?;
            }
            f()
        };
        let handle = match ns {
            Some(ns) => netns::spawn_in(ns, body)?,
            None => std::thread::spawn(move || Ok(body())),
        };
        self.handles.push(handle);
        Ok(())
    }

    pub fn any_finished(&self) -> bool {
        self.handles.iter().any(|h| h.is_finished())
    }

    /// Waits until every worker ended or `deadline` passed; returns the first
    /// error, or every result. A worker that overruns is left behind (its
    /// sockets time out on their own) and reported as hung.
    pub fn join(self, deadline: Instant) -> Result<Vec<T>, WorkloadError> {
        let allowed = deadline.saturating_duration_since(Instant::now());
        while Instant::now() < deadline && !self.handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !self.handles.iter().all(|h| h.is_finished()) {
            return Err(WorkloadError::Hung {
                workload: self.workload,
                waited: allowed,
            });
        }
        let mut results = Vec::with_capacity(self.handles.len());
        let mut first_error = None;
        for h in self.handles {
            let outcome = match h.join() {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(WorkloadError::Failed {
                    workload: self.workload,
                    target: SocketAddr::from(([0, 0, 0, 0], 0)),
                    what: "a worker thread panicked".into(),
                }),
            };
            match outcome {
                Ok(r) => results.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }
}

/// The error of a server-side operation `op` of workload `w`.
pub fn server_err_fn(
    w: Workload,
    e: &Endpoints,
) -> impl Fn(&'static str, std::io::Error) -> WorkloadError + Send + 'static {
    let (netns, port) = (e.server_netns.clone(), e.server_port);
    move |op, source| WorkloadError::Server {
        workload: w,
        netns: netns.clone(),
        port,
        op,
        source,
    }
}

/// The error of a client or server operation `op` on the path to `target`;
/// a socket timeout reads as a stall.
pub fn transfer_err_fn(
    w: Workload,
    target: SocketAddr,
) -> impl Fn(&'static str, std::io::Error) -> WorkloadError + Copy {
    move |op, source| WorkloadError::Transfer {
        workload: w,
        target,
        op,
        source: stalled(source),
    }
}

/// Binds a TCP listener on 0.0.0.0:port inside the server namespace; accept
/// returns after `timeout` if no client comes.
pub fn tcp_listener(
    w: Workload,
    e: &Endpoints,
    timeout: Duration,
) -> Result<TcpListener, WorkloadError> {
    let server_err = server_err_fn(w, e);
    let port = e.server_port;
    let listener = netns::run_in(&e.server_netns, move || {
        TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
    })?
    .map_err(|s| server_err("bind", s))?;
    set_recv_timeout(&listener, timeout).map_err(|s| server_err("set accept timeout", s))?;
    Ok(listener)
}

/// SO_RCVTIMEO, which also bounds accept() on a listening socket.
pub fn set_recv_timeout(fd: &impl std::os::fd::AsFd, timeout: Duration) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    let tv = nix::sys::time::TimeVal::new(
        timeout.as_secs() as libc::time_t,
        timeout.subsec_micros() as libc::suseconds_t,
    );
    setsockopt(fd, ReceiveTimeout, &tv).map_err(std::io::Error::from)
}

/// Connects from inside the client namespace, bounded by `timeout`; the
/// stream gets read and write timeouts too.
pub fn tcp_connect(e: &Endpoints, timeout: Duration) -> Result<TcpStream, WorkloadError> {
    let target = e.target;
    let stream = netns::run_in(&e.client_netns, move || {
        TcpStream::connect_timeout(&target, timeout)
    })?
    .map_err(|source| WorkloadError::Connect {
        target,
        timeout,
        source,
    })?;
    with_timeouts(stream, timeout).map_err(|source| WorkloadError::Connect {
        target,
        timeout,
        source,
    })
}

pub fn with_timeouts(stream: TcpStream, timeout: Duration) -> std::io::Result<TcpStream> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// `p.parallel` connections, each with its client end and its server end;
/// every connect and accept is bounded by `p.timeout`, as is every read and
/// write after.
pub fn connected_pairs(
    w: Workload,
    p: &Params,
    e: &Endpoints,
) -> Result<(Vec<TcpStream>, Vec<TcpStream>), WorkloadError> {
    let listener = tcp_listener(w, e, p.timeout)?;
    let clients: Vec<TcpStream> = (0..p.parallel)
        .map(|_| tcp_connect(e, p.timeout))
        .collect::<Result<_, _>>()?;
    let server_err = server_err_fn(w, e);
    let servers = (0..p.parallel)
        .map(|_| {
            let (s, _) = listener
                .accept()
                .map_err(|s| server_err("accept (the client's connection did not arrive)", s))?;
            with_timeouts(s, p.timeout).map_err(|s| server_err("set socket timeouts", s))
        })
        .collect::<Result<_, _>>()?;
    Ok((clients, servers))
}

/// Rewords a socket timeout (EAGAIN from SO_RCVTIMEO/SO_SNDTIMEO) so the
/// error says what happened: the path stopped carrying traffic.
pub fn stalled(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "stalled: nothing moved within the timeout",
        ),
        _ => e,
    }
}
