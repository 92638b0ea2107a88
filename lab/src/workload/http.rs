//! http: an HTTP/1.1 server (hyper) in the server namespace and a keep-alive
//! client with `http_concurrency` connections (like `ab -k -c 100`; the
//! lean client of `http_client`), each on a tokio current-thread runtime
//! owned by a thread that entered its namespace, so every socket is
//! created there.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::common::{server_err_fn, tcp_listener, StopFlag, Timeline, Workers};
use super::generator::{Generator, Side};
use super::histogram::LatencyHistogram;
use super::http_client::Connection;
use super::{Endpoints, Params, Progress, Sample, Workload, WorkloadError};

const W: Workload = Workload::Http;
/// The body every request gets back (small, like a health check).
const BODY: &[u8] = b"dplab says hello\n";
const STOP_POLL: Duration = Duration::from_millis(100);

/// What the client measured inside the interval.
struct Outcome {
    latencies: LatencyHistogram,
    requests: u64,
    errors: u64,
}

pub fn run(p: &Params, e: &Endpoints, progress: Progress<'_>) -> Result<Sample, WorkloadError> {
    let g = Generator::new(W, p, e.target, progress, "client or server");
    let done = Arc::new(AtomicU64::new(0));

    let server = HttpServer::start_measured(e, p.timeout, &g.cpu.server)?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), WorkloadError>>();
    let (timeline_tx, timeline_rx) = mpsc::channel::<Timeline>();
    let mut client = Workers::<Outcome>::new(W);
    {
        let (stop, done, params, target) = (g.stop.clone(), done.clone(), p.clone(), e.target);
        client.spawn(Some(&e.client_netns), &g.cpu.client, move || {
            client_main(target, &params, &stop, &done, ready_tx, timeline_rx)
        })?;
    }
    // The client connects everything first; the clock starts after.
    let ready = ready_rx.recv_timeout(p.timeout + Duration::from_secs(1));
    if let Err(err) = ready.map_err(|_| None).and_then(|r| r.map_err(Some)) {
        // Call the sample off: dropping the timeline sender wakes a client
        // that became ready too late.
        g.stop.stop();
        drop(timeline_tx);
        let joined = client.join(Instant::now() + p.timeout);
        let _ = server.stop(Instant::now() + STOP_POLL * 2);
        return Err(err.or(joined.err()).unwrap_or(WorkloadError::Failed {
            workload: W,
            target: e.target,
            what: format!("client did not connect within {:?}", p.timeout),
        }));
    }
    let timeline = Timeline::starting_now(p);
    let _ = timeline_tx.send(timeline);

    let count = || done.load(Ordering::Relaxed) as f64;
    let m = g.measure(timeline, &count, client, server)?;
    let outcome = m.clients.into_iter().next().expect("one client worker");
    if outcome.requests == 0 {
        return Err(WorkloadError::Failed {
            workload: W,
            target: e.target,
            what: format!(
                "no request succeeded in the measured interval ({} errors)",
                outcome.errors
            ),
        });
    }
    let mut sample = Sample::default();
    sample.set(
        "requests_per_s",
        outcome.requests as f64 / p.duration.as_secs_f64(),
    );
    sample.set("errors", outcome.errors as f64);
    outcome.latencies.add_to(&mut sample);
    m.usage.add_to(&mut sample, None);
    Ok(sample)
}

/// The built-in HTTP server on its own namespaced thread; also usable on
/// its own, e.g. as the server for `ab` or `wrk` in a comparison.
pub struct HttpServer {
    stop: StopFlag,
    workers: Workers<()>,
}

impl HttpServer {
    /// Listens on 0.0.0.0:`e.server_port` in `e.server_netns` and serves
    /// until [`HttpServer::stop`].
    pub fn start(e: &Endpoints, timeout: Duration) -> Result<Self, WorkloadError> {
        Self::start_measured(e, timeout, &Default::default())
    }

    fn start_measured(
        e: &Endpoints,
        timeout: Duration,
        tids: &super::cpu::TidSet,
    ) -> Result<Self, WorkloadError> {
        let listener = tcp_listener(W, e, timeout)?;
        listener
            .set_nonblocking(true)
            .map_err(|s| server_err_fn(W, e)("set nonblocking", s))?;
        let stop = StopFlag::default();
        let mut workers = Workers::new(W);
        let (flag, server_err) = (stop.clone(), server_err_fn(W, e));
        workers.spawn(None, tids, move || {
            serve(listener, &flag).map_err(|s| server_err("serve", s))
        })?;
        Ok(HttpServer { stop, workers })
    }

    /// Stops accepting, drops every connection and joins the thread.
    pub fn stop(self, deadline: Instant) -> Result<(), WorkloadError> {
        self.stop.stop();
        self.workers
            .join(deadline.max(Instant::now() + STOP_POLL * 2))?;
        Ok(())
    }
}

/// As the server side of the sample: stopped once the client ended.
impl Side for HttpServer {
    type Output = ();
    fn any_finished(&self) -> bool {
        self.workers.any_finished()
    }
    fn finish(self, deadline: Instant) -> Result<(), WorkloadError> {
        self.stop(deadline + STOP_POLL)
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Accepts and serves keep-alive connections until stopped.
fn serve(listener: std::net::TcpListener, stop: &StopFlag) -> std::io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        while !stop.stopped() {
            let Ok(accepted) = tokio::time::timeout(STOP_POLL, listener.accept()).await else {
                continue;
            };
            let (stream, _) = match accepted {
                Ok(a) => a,
                // A client that gave up before accept: not the server's fault.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                    });
                // A client closing its connection ends this task; not an error.
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
        Ok(())
    })
}

async fn open(target: SocketAddr, timeout: Duration) -> Result<Connection, WorkloadError> {
    Connection::open(target, timeout)
        .await
        .map_err(|source| WorkloadError::Connect {
            target,
            timeout,
            source,
        })
}

/// Per-connection state the watchdog inspects.
#[derive(Default)]
struct Slot {
    busy_since: Cell<Option<Instant>>,
    fd: Cell<Option<std::os::fd::RawFd>>,
}

/// Shuts down the socket of any request older than `timeout` (a timer per
/// request would cost more than the request); the request then fails, is
/// counted as an error and the loop reconnects.
async fn watchdog(slots: &[Slot], timeout: Duration) {
    loop {
        tokio::time::sleep(STOP_POLL).await;
        for slot in slots {
            if slot.busy_since.get().is_some_and(|t| t.elapsed() > timeout) {
                if let Some(fd) = slot.fd.get() {
                    // The fd is the slot's live connection: this runtime has
                    // one thread, so it cannot be closed or reused while the
                    // watchdog runs. A failed shutdown leaves the request to
                    // the next round.
                    use nix::sys::socket::{shutdown, Shutdown};
                    let _ = shutdown(fd, Shutdown::Both);
                }
            }
        }
    }
}

fn client_main(
    target: SocketAddr,
    p: &Params,
    stop: &StopFlag,
    done: &AtomicU64,
    ready: mpsc::Sender<Result<(), WorkloadError>>,
    timeline: mpsc::Receiver<Timeline>,
) -> Result<Outcome, WorkloadError> {
    let rt = runtime().map_err(|source| WorkloadError::Transfer {
        workload: W,
        target,
        op: "start tokio runtime",
        source,
    })?;
    rt.block_on(async {
        let opened =
            futures::future::join_all((0..p.http_concurrency).map(|_| open(target, p.timeout)))
                .await;
        let conns = match opened.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(s) => s,
            Err(e) => {
                // The coordinator reports the connect error itself.
                let _ = ready.send(Err(e));
                return Err(WorkloadError::Failed {
                    workload: W,
                    target,
                    what: "could not connect".into(),
                });
            }
        };
        let _ = ready.send(Ok(()));
        let Ok(timeline) = timeline.recv() else {
            return Err(WorkloadError::Failed {
                workload: W,
                target,
                what: "the measurement was called off".into(),
            });
        };
        let latencies = RefCell::new(LatencyHistogram::new());
        let requests = Cell::new(0u64);
        let errors = Cell::new(0u64);
        let first_error = RefCell::new(None::<String>);
        let slots: Vec<Slot> = conns.iter().map(|_| Slot::default()).collect();
        let loops = conns.into_iter().zip(&slots).map(|(conn, slot)| {
            let (latencies, requests, errors, first_error) =
                (&latencies, &requests, &errors, &first_error);
            async move {
                let mut conn = conn;
                slot.fd.set(Some(conn.raw_fd()));
                while !stop.stopped() {
                    let started = Instant::now();
                    slot.busy_since.set(Some(started));
                    let result = conn.get().await;
                    slot.busy_since.set(None);
                    let now = Instant::now();
                    let measuring = timeline.measuring(now);
                    match result {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            if measuring {
                                latencies.borrow_mut().record(now - started);
                                requests.set(requests.get() + 1);
                            }
                        }
                        Err(why) => {
                            if measuring {
                                errors.set(errors.get() + 1);
                            }
                            first_error.borrow_mut().get_or_insert(why.to_string());
                            // The connection is likely dead: open a new one,
                            // pausing so a broken path is not hammered.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            if let Ok(fresh) = open(target, p.timeout).await {
                                slot.fd.set(Some(fresh.raw_fd()));
                                conn = fresh;
                            }
                        }
                    }
                }
            }
        });
        tokio::select! {
            _ = futures::future::join_all(loops) => {}
            _ = watchdog(&slots, p.timeout) => {}
        }
        if requests.get() == 0 {
            if let Some(why) = first_error.into_inner() {
                return Err(WorkloadError::Failed {
                    workload: W,
                    target,
                    what: why,
                });
            }
        }
        Ok(Outcome {
            latencies: latencies.into_inner(),
            requests: requests.get(),
            errors: errors.get(),
        })
    })
}
