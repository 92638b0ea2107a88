//! tcp-crr: each of `parallel` client threads loops connect, one
//! `message_size` request and response, close (like netperf TCP_CRR).
//!
//! TIME_WAIT: the client closes with SO_LINGER {on, 0}, as netperf does, so
//! the close sends a RST and leaves no TIME_WAIT socket on either side; the
//! ephemeral port range is never exhausted however long the run.
//!
//! Every connect is timed apart as well: the first-packet latency
//! ([`super::connect_latency`]).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{
    server_err_fn, stalled, tcp_listener, transfer_err_fn, StopFlag, Timeline, Workers,
};
use super::connect_latency::{abortive_close, timed_connect, ConnectTimes};
use super::generator::{Generator, UntilStopped};
use super::histogram::LatencyHistogram;
use super::tcp_rr::{finish, read_message, Tally};
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};

const W: Workload = Workload::TcpCrr;
/// How often a server thread blocked in accept checks whether to stop.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let listener = Arc::new(tcp_listener(W, e, ACCEPT_POLL)?);
    // One connection first: the path works and the server is listening.
    super::common::tcp_connect(e, p.timeout)?;

    let g = Generator::new(W, p, e.target, progress, "a worker");
    let done = Arc::new(AtomicU64::new(0));
    // Servers stop only after every client finished its last transaction.
    let mut servers = UntilStopped {
        workers: Workers::<()>::new(W),
        stop: StopFlag::default(),
        grace: ACCEPT_POLL,
    };
    for _ in 0..p.parallel {
        let (listener, stop, size, timeout) = (
            listener.clone(),
            servers.stop.clone(),
            p.message_size,
            p.timeout,
        );
        let server_err = server_err_fn(W, e);
        servers.workers.spawn(None, &g.cpu.server, move || {
            serve(&listener, size, timeout, &stop).map_err(|(op, s)| server_err(op, stalled(s)))
        })?;
    }
    let timeline = Timeline::starting_now(p);
    let mut clients = Workers::<(Tally, ConnectTimes)>::new(W);
    for _ in 0..p.parallel {
        let (stop, done, size, timeout, target) = (
            g.stop.clone(),
            done.clone(),
            p.message_size,
            p.timeout,
            e.target,
        );
        // Each client thread lives in the client namespace: it creates a
        // socket per transaction.
        clients.spawn(Some(&e.client_netns), &g.cpu.client, move || {
            connect_loop(target, size, timeout, &timeline, &stop, &done)
        })?;
    }

    let count = || done.load(Ordering::Relaxed) as f64;
    let m = g.measure(timeline, &count, clients, servers)?;
    let (tallies, connects): (Vec<Tally>, Vec<ConnectTimes>) = m.clients.into_iter().unzip();
    let mut sample = finish(W, e, p, tallies, m.usage)?;
    let mut all = ConnectTimes::default();
    for c in &connects {
        all.merge(c);
    }
    all.add_to(&mut sample);
    Ok(sample)
}

fn connect_loop(
    target: SocketAddr,
    size: usize,
    timeout: Duration,
    timeline: &Timeline,
    stop: &StopFlag,
    done: &AtomicU64,
) -> Result<(Tally, ConnectTimes), WorkloadError> {
    let io_err = transfer_err_fn(W, target);
    let request = vec![0x63u8; size];
    let mut response = vec![0u8; size];
    let mut tally = Tally {
        latencies: LatencyHistogram::new(),
        transactions: 0,
    };
    let mut connects = ConnectTimes::default();
    while !stop.stopped() {
        let started = Instant::now();
        let (mut s, handshake) =
            timed_connect(target, timeout).map_err(|source| WorkloadError::Connect {
                target,
                timeout,
                source,
            })?;
        s.set_read_timeout(Some(timeout))
            .and_then(|()| s.set_write_timeout(Some(timeout)))
            .and_then(|()| s.set_nodelay(true))
            .map_err(|e| io_err("set socket options", e))?;
        s.write_all(&request)
            .map_err(|e| io_err("write request", e))?;
        match read_message(&mut s, &mut response) {
            Ok(true) => {}
            Ok(false) => {
                return Err(io_err(
                    "read response",
                    std::io::ErrorKind::UnexpectedEof.into(),
                ))
            }
            Err(e) => return Err(io_err("read response", e)),
        }
        abortive_close(s);
        let now = Instant::now();
        done.fetch_add(1, Ordering::Relaxed);
        if timeline.measuring(now) {
            tally.latencies.record(now - started);
            tally.transactions += 1;
            connects.record(handshake);
        }
    }
    Ok((tally, connects))
}

/// Accepts connections until stopped; answers one request on each and
/// waits for the client to close.
fn serve(
    listener: &TcpListener,
    size: usize,
    timeout: Duration,
    stop: &StopFlag,
) -> Result<(), (&'static str, std::io::Error)> {
    let mut buf = vec![0u8; size];
    while !stop.stopped() {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The client's RST may arrive before accept returns.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(("accept", e)),
        };
        s.set_read_timeout(Some(timeout))
            .and_then(|()| s.set_write_timeout(Some(timeout)))
            .and_then(|()| s.set_nodelay(true))
            .map_err(|e| ("set socket options", e))?;
        match read_message(&mut s, &mut buf) {
            Ok(true) => {}
            // The warm-up probe connection carries no request.
            Ok(false) => continue,
            Err(e) => return Err(("read request", e)),
        }
        s.write_all(&buf).map_err(|e| ("write response", e))?;
        // Wait for the client's RST/FIN so the server never closes first
        // (which would leave TIME_WAIT here).
        let mut rest = [0u8; 1];
        let _ = std::io::Read::read(&mut s, &mut rest);
    }
    Ok(())
}
