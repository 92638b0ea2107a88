//! When does a change to the services carry traffic? A prober inside the
//! client namespace opens a fresh connection to the service every
//! [`INTERVAL`] (non-blocking, many in flight, each given up after
//! [`PROBE_TIMEOUT`]) from the moment it is told the change started, and
//! reports the moment the change demonstrably works:
//!
//! - [`Until::Established`]: the first probe whose handshake completes
//!   (a new service: before the change no probe can complete);
//! - [`Until::Streak`]: the first of `n` consecutive probes, in the order
//!   they were opened, that all complete (a removed endpoint that refuses
//!   connections: before the change about half the probes hit it, so a
//!   streak of 24 happens by chance with odds of 2^-24 per probe).
//!
//! The time is when that probe's handshake completed. Every probe closes
//! with a RST, as tcp-crr's connections do, so none lingers in TIME_WAIT.

use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use nix::sys::time::TimeSpec;

use crate::cgroup::join::SampleCgroup;
use crate::netns;
use crate::workload::connect_latency::abortive_close;

/// A new probe this often.
pub const INTERVAL: Duration = Duration::from_micros(250);
/// A probe without an answer by then is dropped (its SYN was lost).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// Consecutive completed probes that show a removed endpoint is gone.
pub const STREAK: usize = 24;
/// Longest wait for a change to work.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// What shows that a change works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Established,
    Streak(usize),
}

/// How one probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Established,
    /// A RST: the connection reached a host where nothing listens.
    Refused,
    /// Any other error, or no answer within [`PROBE_TIMEOUT`].
    Lost,
}

/// A prober thread waiting for the start signal.
pub struct Prober {
    go: mpsc::Sender<Instant>,
    cancel: Arc<AtomicBool>,
    handle: JoinHandle<Result<Result<Instant, String>, netns::NetnsError>>,
}

impl Prober {
    /// Starts a thread in `client_ns` that probes `target` once told to.
    pub fn ready(client_ns: &str, target: SocketAddr, until: Until) -> Result<Prober, String> {
        let SocketAddr::V4(target) = target else {
            return Err(format!("{target}: only IPv4 services are probed"));
        };
        let (go, started) = mpsc::channel::<Instant>();
        let cancel = Arc::new(AtomicBool::new(false));
        let cancelled = cancel.clone();
        let ns = client_ns.to_string();
        let handle = netns::spawn_in(client_ns, move || match started.recv() {
            Ok(t0) => {
                // socket-lb translates only sockets of the pod's cgroup:
                // the probes are the client pod's, like a workload's.
                let _in_pod = SampleCgroup::enter_for_netns(&ns)
                    .map_err(|e| format!("joining the cgroup of {ns}: {e}"))?;
                probe(target, until, t0, &cancelled)
            }
            Err(_) => Err("the prober was never started".to_string()),
        })
        .map_err(|e| format!("starting the prober in {client_ns}: {e}"))?;
        Ok(Prober { go, cancel, handle })
    }

    /// Stops the prober (the change it waits for will not come).
    pub fn cancel(self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.wait();
    }

    /// Probes from `t0` on (which may lie in the past) until the change
    /// works; returns when it did.
    pub fn start(&self, t0: Instant) {
        let _ = self.go.send(t0);
    }

    /// Waits for the verdict of a started prober.
    pub fn wait(self) -> Result<Instant, String> {
        drop(self.go);
        match self.handle.join() {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(e)) => Err(format!("prober: {e}")),
            Err(_) => Err("the prober thread panicked".into()),
        }
    }
}

struct InFlight {
    seq: usize,
    fd: OwnedFd,
    opened: Instant,
}

fn probe(
    target: SocketAddrV4,
    until: Until,
    t0: Instant,
    cancel: &AtomicBool,
) -> Result<Instant, String> {
    let addr = SockaddrIn::from(target);
    let mut flight: Vec<InFlight> = Vec::new();
    let mut verdict = Verdict::new(until);
    let mut next = Instant::now();
    let mut seq = 0;
    loop {
        let now = Instant::now();
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        if now.duration_since(t0) > DEADLINE {
            return Err(format!(
                "no fresh connection to {target} showed the change within {DEADLINE:?} ({})",
                verdict.tally()
            ));
        }
        if now >= next {
            match open(&addr) {
                Ok(Some(fd)) => flight.push(InFlight {
                    seq,
                    fd,
                    opened: now,
                }),
                Ok(None) => verdict.record(seq, Outcome::Established, now),
                Err(outcome) => verdict.record(seq, outcome, now),
            }
            seq += 1;
            next = now + INTERVAL;
        }
        let wait = next.saturating_duration_since(Instant::now());
        let ready = poll_flight(&flight, wait)?;
        let now = Instant::now();
        let mut keep = Vec::with_capacity(flight.len());
        for (p, is_ready) in flight.into_iter().zip(ready) {
            if is_ready {
                let outcome = finish(p.fd);
                verdict.record(p.seq, outcome, now);
            } else if now.duration_since(p.opened) > PROBE_TIMEOUT {
                verdict.record(p.seq, Outcome::Lost, now);
            } else {
                keep.push(p);
            }
        }
        flight = keep;
        if let Some(at) = verdict.reached() {
            return Ok(at);
        }
    }
}

/// Opens a non-blocking connection: None if it completed at once, Some(fd)
/// while in progress, Err if it failed at once.
fn open(addr: &SockaddrIn) -> Result<Option<OwnedFd>, Outcome> {
    use std::os::fd::AsRawFd;
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|_| Outcome::Lost)?;
    match socket::connect(fd.as_raw_fd(), addr) {
        Ok(()) => {
            abortive_close(TcpStream::from(fd));
            Ok(None)
        }
        Err(Errno::EINPROGRESS) => Ok(Some(fd)),
        Err(Errno::ECONNREFUSED) => Err(Outcome::Refused),
        Err(_) => Err(Outcome::Lost),
    }
}

/// Which probes finished their handshake (or failed), waiting up to `wait`.
fn poll_flight(flight: &[InFlight], wait: Duration) -> Result<Vec<bool>, String> {
    if flight.is_empty() {
        std::thread::sleep(wait);
        return Ok(Vec::new());
    }
    let mut fds: Vec<PollFd> = flight
        .iter()
        .map(|p| PollFd::new(p.fd.as_fd(), PollFlags::POLLOUT))
        .collect();
    let timeout = TimeSpec::from_duration(wait);
    match nix::poll::ppoll(&mut fds, Some(timeout), None) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(format!("ppoll over {} probes: {e}", flight.len())),
    }
    Ok(fds
        .iter()
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

/// Reads how a finished probe ended and closes it.
fn finish(fd: OwnedFd) -> Outcome {
    match socket::getsockopt(&fd, sockopt::SocketError) {
        Ok(0) => {
            abortive_close(TcpStream::from(fd));
            Outcome::Established
        }
        Ok(e) if e == libc::ECONNREFUSED => Outcome::Refused,
        _ => Outcome::Lost,
    }
}

/// The probes' outcomes in the order they were opened, and when the
/// change showed.
struct Verdict {
    until: Until,
    outcomes: Vec<Option<(Outcome, Instant)>>,
    /// Probes before this index were judged.
    scanned: usize,
    streak: usize,
    reached: Option<Instant>,
}

impl Verdict {
    fn new(until: Until) -> Verdict {
        Verdict {
            until,
            outcomes: Vec::new(),
            scanned: 0,
            streak: 0,
            reached: None,
        }
    }

    fn record(&mut self, seq: usize, outcome: Outcome, at: Instant) {
        if self.outcomes.len() <= seq {
            self.outcomes.resize(seq + 1, None);
        }
        self.outcomes[seq] = Some((outcome, at));
        match self.until {
            Until::Established => {
                if outcome == Outcome::Established && self.reached.is_none() {
                    self.reached = Some(at);
                }
            }
            Until::Streak(n) => self.scan(n),
        }
    }

    /// Walks the outcomes known in opening order, counting the streak.
    fn scan(&mut self, n: usize) {
        while self.reached.is_none() {
            let Some(Some((outcome, _))) = self.outcomes.get(self.scanned) else {
                return;
            };
            if *outcome == Outcome::Established {
                self.streak += 1;
            } else {
                self.streak = 0;
            }
            self.scanned += 1;
            if self.streak >= n {
                let first = self.scanned - n;
                self.reached = self.outcomes[first].map(|(_, at)| at);
            }
        }
    }

    fn reached(&self) -> Option<Instant> {
        self.reached
    }

    fn tally(&self) -> String {
        let count = |o: Outcome| {
            self.outcomes
                .iter()
                .filter(|x| matches!(x, Some((y, _)) if *y == o))
                .count()
        };
        format!(
            "{} probes: {} connected, {} refused, {} lost",
            self.outcomes.len(),
            count(Outcome::Established),
            count(Outcome::Refused),
            count(Outcome::Lost)
        )
    }
}

/// A listener that accepts and drops connections while probes run (the
/// workloads' servers are not running then).
pub struct ProbeServer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl ProbeServer {
    pub fn listen(server_ns: &str, port: u16) -> Result<ProbeServer, String> {
        let listener = netns::run_in(server_ns, move || {
            TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
        })
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("probe listener on port {port} in {server_ns}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("probe listener in {server_ns}: non-blocking: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // The client resets each connection; drop ours.
                if listener.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Ok(ProbeServer { stop, handle })
    }

    pub fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(until: Until, outcomes: &[(usize, Outcome, u64)]) -> Option<u64> {
        let t = Instant::now();
        let mut v = Verdict::new(until);
        for &(seq, o, ms) in outcomes {
            v.record(seq, o, t + Duration::from_millis(ms));
        }
        v.reached()
            .map(|at| at.duration_since(t).as_millis() as u64)
    }

    #[test]
    fn established_is_the_first_completed_handshake() {
        use Outcome::*;
        let got = run(
            Until::Established,
            &[(0, Lost, 1), (2, Established, 5), (1, Established, 7)],
        );
        assert_eq!(got, Some(5));
        assert_eq!(run(Until::Established, &[(0, Refused, 1)]), None);
    }

    #[test]
    fn a_streak_counts_in_opening_order_from_its_first_probe() {
        use Outcome::*;
        // Probe 1 refused breaks the first streak; 2..=4 complete, out of order.
        let outcomes = [
            (0, Established, 1),
            (1, Refused, 2),
            (3, Established, 4),
            (2, Established, 5),
            (4, Established, 6),
        ];
        assert_eq!(run(Until::Streak(3), &outcomes), Some(5));
        assert_eq!(run(Until::Streak(4), &outcomes), None);
    }
}
