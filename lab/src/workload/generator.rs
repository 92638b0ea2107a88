//! The skeleton every built-in generator runs once its workers are started:
//! the measurement clock over the client and server sides, then joining
//! the clients and ending the servers, and the error of a sample whose
//! worker ended before the measured interval did. Each generator states
//! only its sockets, its workers and what it counts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::common::{StopFlag, Timeline, Workers};
use super::cpu::{CpuMeter, CpuUsage};
use super::{Params, Progress, Workload, WorkloadError};

/// One side of a sample's workers, as the skeleton watches and ends it.
pub trait Side {
    type Output;
    /// Whether a worker of this side has ended (before t1: an error).
    fn any_finished(&self) -> bool;
    /// Ends the side and joins it by about `deadline`.
    fn finish(self, deadline: Instant) -> Result<Self::Output, WorkloadError>;
}

/// Workers that end on their own once the sample's stop flag is set or
/// their peer closes.
impl<T: Send + 'static> Side for Workers<T> {
    type Output = Vec<T>;
    fn any_finished(&self) -> bool {
        Workers::any_finished(self)
    }
    fn finish(self, deadline: Instant) -> Result<Vec<T>, WorkloadError> {
        self.join(deadline)
    }
}

/// No side of its own (tcp-stream keeps both sides in one set).
impl Side for () {
    type Output = ();
    fn any_finished(&self) -> bool {
        false
    }
    fn finish(self, _deadline: Instant) -> Result<(), WorkloadError> {
        Ok(())
    }
}

/// Servers that cannot tell when the clients are done: they run until
/// their own flag is set, which finishing does once the clients ended, and
/// may take `grace` more to notice it.
pub struct UntilStopped<T> {
    pub workers: Workers<T>,
    pub stop: StopFlag,
    pub grace: Duration,
}

impl<T: Send + 'static> Side for UntilStopped<T> {
    type Output = Vec<T>;
    fn any_finished(&self) -> bool {
        self.workers.any_finished()
    }
    fn finish(self, deadline: Instant) -> Result<Vec<T>, WorkloadError> {
        self.stop.stop();
        self.workers.join(deadline + self.grace)
    }
}

/// What both sides returned, and the CPU they used in the interval.
pub struct Measured<C, S> {
    pub clients: C,
    pub servers: S,
    pub usage: CpuUsage,
}

/// One sample of a built-in generator: its stop flag and CPU meter, which
/// the workers are started with, and what the skeleton needs to report.
pub struct Generator<'a> {
    pub stop: StopFlag,
    pub cpu: CpuMeter,
    workload: Workload,
    params: &'a Params,
    target: SocketAddr,
    progress: Progress<'a>,
    /// The workers that may end early, for the error ("a connection").
    who: &'static str,
}

impl<'a> Generator<'a> {
    pub fn new(
        workload: Workload,
        params: &'a Params,
        target: SocketAddr,
        progress: Progress<'a>,
        who: &'static str,
    ) -> Self {
        Generator {
            stop: StopFlag::default(),
            cpu: CpuMeter::pinned(params.cpus),
            workload,
            params,
            target,
            progress,
            who,
        }
    }

    /// Runs the clock over `timeline`, then joins the clients and ends the
    /// servers. `count` returns a cumulative amount whose rate per second
    /// is the headline metric (e.g. bits / 1e9 for Gbit/s).
    pub fn measure<C: Side, S: Side>(
        &self,
        timeline: Timeline,
        count: &dyn Fn() -> f64,
        clients: C,
        servers: S,
    ) -> Result<Measured<C::Output, S::Output>, WorkloadError> {
        self.measure_marking(timeline, count, clients, servers, || {})
    }

    /// As [`Generator::measure`], calling `mark` at t0 and at t1 (with the
    /// CPU snapshots). `mark` is dropped before the workers are joined, so
    /// what it owns (a second handle on a socket) does not keep them open.
    pub fn measure_marking<C: Side, S: Side>(
        &self,
        timeline: Timeline,
        count: &dyn Fn() -> f64,
        clients: C,
        servers: S,
        mark: impl FnMut(),
    ) -> Result<Measured<C::Output, S::Output>, WorkloadError> {
        let ended = || clients.any_finished() || servers.any_finished();
        let usage = Supervision {
            timeline,
            cpu: &self.cpu,
            stop: &self.stop,
            count,
            progress: self.progress,
            worker_ended: &ended,
        }
        .run(mark);
        let deadline = join_deadline(&timeline, self.params);
        // Servers are ended even when a client failed, so no thread is
        // left behind; the clients' error, if any, is the one reported.
        let clients = clients.finish(deadline);
        let servers = servers.finish(deadline);
        let (clients, servers) = (clients?, servers?);
        let usage = usage.ok_or_else(|| WorkloadError::Failed {
            workload: self.workload,
            target: self.target,
            what: format!("{} ended before the measured interval did", self.who),
        })?;
        Ok(Measured {
            clients,
            servers,
            usage,
        })
    }
}

/// The measurement clock: reports progress every 250 ms, calls `mark` at
/// the interval's edges, takes CPU snapshots there and sets `stop` at `t1`.
/// Returns early (None) if a worker ended before t1, which only happens on
/// error; the caller then joins to surface it.
struct Supervision<'a> {
    timeline: Timeline,
    cpu: &'a CpuMeter,
    stop: &'a StopFlag,
    count: &'a dyn Fn() -> f64,
    progress: Progress<'a>,
    worker_ended: &'a dyn Fn() -> bool,
}

impl Supervision<'_> {
    fn run(&self, mut mark: impl FnMut()) -> Option<CpuUsage> {
        let tick = Duration::from_millis(250);
        let mut last = (Instant::now(), (self.count)());
        let mut t0_snapshot = None;
        loop {
            let now = Instant::now();
            // Workers may end on their own at t1, so check the clock first.
            if now < self.timeline.t1 && (self.worker_ended)() {
                self.stop.stop();
                return None;
            }
            if t0_snapshot.is_none() && now >= self.timeline.t0 {
                mark();
                t0_snapshot = Some(self.cpu.snapshot());
            }
            if now >= self.timeline.t1 {
                mark();
                let end = self.cpu.snapshot();
                self.stop.stop();
                let start = t0_snapshot.unwrap_or_else(|| self.cpu.snapshot());
                return Some(CpuUsage::between(&start, &end));
            }
            if let Some(report) = self.progress {
                if now.duration_since(last.0) >= tick {
                    let c = (self.count)();
                    report((c - last.1) / now.duration_since(last.0).as_secs_f64());
                    last = (now, c);
                }
            }
            let next_edge = if t0_snapshot.is_none() {
                self.timeline.t0
            } else {
                self.timeline.t1
            };
            let wait = next_edge
                .saturating_duration_since(now)
                .min(Duration::from_millis(20));
            std::thread::sleep(wait.max(Duration::from_micros(100)));
        }
    }
}

/// When the workers must have ended: after t1 plus one timeout (a blocked
/// read or write returns by then) and some grace.
fn join_deadline(tl: &Timeline, p: &Params) -> Instant {
    tl.t1.max(Instant::now()) + p.timeout + Duration::from_millis(500)
}
