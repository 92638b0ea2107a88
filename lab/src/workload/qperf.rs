//! qperf adapter: `qperf -lp PORT` in the server namespace and
//! `qperf IP -lp PORT -ip DATA_PORT -t S -v TEST` in the client namespace;
//! tcp_bw (tcp-stream), tcp_lat (tcp-rr), udp_bw (udp-stream).
//!
//! qperf synchronises on the control port and moves data on a second port,
//! `server_port + 1`, which the client dials at the target IP too: through a
//! cluster IP both ports must be forwarded. qperf has no warm-up option, so
//! a warm-up is a separate, discarded run. Its CPU figures cover the whole
//! machine (both ends share it here), so CPU comes from /proc/<pid>/stat.

use std::time::Duration;

use super::cpu::process_tree_cpu_seconds;
use super::iperf3::{excerpt, whole_seconds};
use super::process::{wait_listening, Finished, ToolProcess};
use super::{Endpoints, Params, PidRecorder, Sample, Tool, Workload, WorkloadError};

const T: Tool = Tool::Qperf;

fn test_name(w: Workload) -> Result<&'static str, WorkloadError> {
    match w {
        Workload::TcpStream => Ok("tcp_bw"),
        Workload::TcpRr => Ok("tcp_lat"),
        Workload::UdpStream => Ok("udp_bw"),
        _ => Err(WorkloadError::Unsupported {
            tool: T,
            workload: w,
        }),
    }
}

pub fn run(
    w: Workload,
    p: &Params,
    e: &Endpoints,
    pids: &dyn PidRecorder,
) -> Result<Sample, WorkloadError> {
    let test = test_name(w)?;
    let seconds = whole_seconds(p.duration)?;
    // Refuse what qperf cannot do rather than measure something else.
    if p.parallel != 1 {
        return Err(WorkloadError::BadParams(format!(
            "qperf runs one stream; parallel {} is not possible",
            p.parallel
        )));
    }
    if w == Workload::UdpStream && p.udp_rate_bps.is_some() {
        return Err(WorkloadError::BadParams(
            "qperf udp_bw sends flat out; it cannot pace to udp_rate_bps".into(),
        ));
    }
    let data_port = e
        .server_port
        .checked_add(1)
        .ok_or_else(|| WorkloadError::BadParams("qperf needs server_port + 1 for data".into()))?;
    let mut server = ToolProcess::start(
        T,
        &e.server_netns,
        &["-lp", &e.server_port.to_string()].map(String::from),
        "qperf server",
        false,
        p.cpus.server,
        pids,
    )?;
    wait_listening(&mut server, e.server_port, p.timeout)?;
    let warmup = p.warmup.as_secs_f64().ceil() as u64;
    let server_pid = server.pid();
    let outcome = (|| {
        if warmup > 0 {
            client_run(w, test, warmup, data_port, p, e, pids)?;
        }
        let server_cpu_before = process_tree_cpu_seconds(server_pid);
        let (mut sample, client) = client_run(w, test, seconds, data_port, p, e, pids)?;
        // qperf's own CPU figures cover the whole machine; these are the
        // two processes' own (the server forks a child per test), over the
        // client's lifetime.
        let wall = client.wall.as_secs_f64();
        if let Some(cpu) = client.cpu_s {
            sample.set("cpu_client_percent", 100.0 * cpu / wall);
        }
        if let (Some(a), Some(b)) = (server_cpu_before, process_tree_cpu_seconds(server_pid)) {
            sample.set("cpu_server_percent", 100.0 * (b - a) / wall);
        }
        Ok(sample)
    })();
    let _ = server.stop();
    outcome
}

fn client_run(
    w: Workload,
    test: &str,
    seconds: u64,
    data_port: u16,
    p: &Params,
    e: &Endpoints,
    pids: &dyn PidRecorder,
) -> Result<(Sample, Finished), WorkloadError> {
    let message_size = match w {
        Workload::TcpStream => p.stream_write_size,
        Workload::UdpStream => p.udp_payload_size,
        _ => p.message_size,
    };
    let timeout_s = p.timeout.as_secs().max(1);
    let args = [
        e.target.ip().to_string(),
        "-lp".into(),
        e.target.port().to_string(),
        "-ip".into(),
        data_port.to_string(),
        "-t".into(),
        seconds.to_string(),
        "-to".into(),
        timeout_s.to_string(),
        "-m".into(),
        message_size.to_string(),
        "-v".into(),
        test.into(),
    ];
    let client = ToolProcess::start(
        T,
        &e.client_netns,
        &args,
        "qperf client",
        true,
        p.cpus.client,
        pids,
    )?;
    // qperf spends up to its timeout synchronising at each end.
    let limit = Duration::from_secs(seconds + 2 * timeout_s) + Duration::from_secs(2);
    let finished = client.wait_output(limit)?;
    let text = format!("{}{}", finished.stdout, finished.stderr);
    if !finished.success {
        return Err(WorkloadError::ToolReported {
            tool: T,
            message: excerpt(&text),
        });
    }
    Ok((parse(w, &text)?, finished))
}

/// The value of `name = value unit` lines in qperf's output, converted by
/// the unit into a plain number (bytes/s, seconds) .
pub fn field(text: &str, name: &str) -> Option<(f64, String)> {
    text.lines().find_map(|line| {
        let (key, rest) = line.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let mut parts = rest.split_whitespace();
        let value: f64 = parts.next()?.replace(',', "").parse().ok()?;
        let unit = parts.collect::<Vec<_>>().join(" ");
        Some((value, unit))
    })
}

/// Bytes per second from a qperf bandwidth (decimal prefixes, as qperf uses).
pub fn bytes_per_second(value: f64, unit: &str) -> Option<f64> {
    let scale = match unit {
        "bytes/sec" => 1.0,
        "KB/sec" => 1e3,
        "MB/sec" => 1e6,
        "GB/sec" => 1e9,
        "TB/sec" => 1e12,
        _ => return None,
    };
    Some(value * scale)
}

/// Microseconds from a qperf time.
pub fn microseconds(value: f64, unit: &str) -> Option<f64> {
    let scale = match unit {
        "ns" => 1e-3,
        "us" => 1.0,
        "ms" => 1e3,
        "sec" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}

fn unparsable(what: &str, text: &str) -> WorkloadError {
    WorkloadError::ToolOutput {
        tool: T,
        what: what.to_string(),
        excerpt: excerpt(text),
    }
}

/// Metrics from the text output of one qperf test.
pub fn parse(w: Workload, text: &str) -> Result<Sample, WorkloadError> {
    if text.contains("failed") {
        return Err(WorkloadError::ToolReported {
            tool: T,
            message: excerpt(text),
        });
    }
    let rate = |name: &str| {
        field(text, name)
            .and_then(|(v, unit)| bytes_per_second(v, &unit))
            .ok_or_else(|| unparsable(&format!("no {name} in bytes/sec units"), text))
    };
    let mut s = Sample::default();
    match w {
        Workload::TcpStream => s.set("throughput_gbps", rate("bw")? * 8.0 / 1e9),
        Workload::UdpStream => {
            let (sent, received) = (rate("send_bw")?, rate("recv_bw")?);
            s.set("throughput_gbps", received * 8.0 / 1e9);
            s.set("offered_gbps", sent * 8.0 / 1e9);
            // qperf reports rates, not counts: loss is the rate shortfall.
            if sent > 0.0 {
                s.set("loss_percent", (100.0 * (1.0 - received / sent)).max(0.0));
            }
        }
        Workload::TcpRr => {
            let one_way = field(text, "latency")
                .and_then(|(v, unit)| microseconds(v, &unit))
                .ok_or_else(|| unparsable("no latency", text))?;
            // qperf's latency is half a round trip; dplab's tcp-rr latency
            // is the whole request/response, as netperf's.
            s.set("latency_us_mean", 2.0 * one_way);
            s.set("one_way_latency_us", one_way);
            s.set("transactions_per_s", 1e6 / (2.0 * one_way));
        }
        _ => {
            return Err(WorkloadError::Unsupported {
                tool: T,
                workload: w,
            })
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn tcp_bw_and_lat() {
        let text = fixture("qperf_tcp_bw_lat.txt");
        let bw = parse(Workload::TcpStream, &text).unwrap();
        assert!((bw.get("throughput_gbps").unwrap() - 16.88).abs() < 1e-9);
        let lat = parse(Workload::TcpRr, &text).unwrap();
        assert!((lat.get("one_way_latency_us").unwrap() - 14.7).abs() < 1e-9);
        assert!((lat.get("latency_us_mean").unwrap() - 29.4).abs() < 1e-9);
    }

    #[test]
    fn udp_bw() {
        let s = parse(Workload::UdpStream, &fixture("qperf_udp_bw.txt")).unwrap();
        assert!((s.get("throughput_gbps").unwrap() - 2.928).abs() < 1e-9);
        assert!((s.get("offered_gbps").unwrap() - 3.064).abs() < 1e-9);
        assert!((s.get("loss_percent").unwrap() - 100.0 * (1.0 - 366.0 / 383.0)).abs() < 1e-9);
    }

    #[test]
    fn failure_is_an_error() {
        let err = parse(Workload::TcpRr, &fixture("qperf_failure_refused.txt")).unwrap_err();
        assert!(err.to_string().contains("failed to connect"), "{err}");
    }

    #[test]
    fn units() {
        assert_eq!(
            field("    port  =  19,766 ", "port"),
            Some((19766.0, String::new()))
        );
        assert_eq!(bytes_per_second(2.5, "MB/sec"), Some(2.5e6));
        assert_eq!(microseconds(900.0, "ns"), Some(0.9));
        assert_eq!(bytes_per_second(1.0, "furlongs"), None);
    }
}
