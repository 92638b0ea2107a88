//! ping adapter: iputils `ping -n -i 0.2` in the client namespace. Replies
//! to echoes sent during the warm-up are dropped by sequence number; the
//! rest are summarised as the built-in ping does.

use std::time::Duration;

use super::iperf3::excerpt;
use super::ping::{summarize, INTERVAL};
use super::process::{Finished, ToolProcess};
use super::{Endpoints, Params, PidRecorder, Sample, Tool, WorkloadError};

const T: Tool = Tool::Ping;

pub fn run(p: &Params, e: &Endpoints, pids: &dyn PidRecorder) -> Result<Sample, WorkloadError> {
    let per = INTERVAL.as_secs_f64();
    let warmup_count = (p.warmup.as_secs_f64() / per).ceil() as u64;
    let measured_count = ((p.duration.as_secs_f64() / per).round() as u64).max(1);
    let count = warmup_count + measured_count;
    let wait_s = p.timeout.as_secs().max(1);
    // -w: ping's own deadline, so it ends even if replies never come.
    let deadline_s = (count as f64 * per).ceil() as u64 + wait_s;
    let args = [
        "-n".to_string(),
        "-i".into(),
        format!("{per}"),
        "-c".into(),
        count.to_string(),
        "-W".into(),
        wait_s.to_string(),
        "-w".into(),
        deadline_s.to_string(),
        e.target.ip().to_string(),
    ];
    let ping = ToolProcess::start(T, &e.client_netns, &args, "ping", true, p.cpus.client, pids)?;
    let Finished { stdout, stderr, .. } = ping.wait_output(Duration::from_secs(deadline_s + 2))?;
    let replies = parse_replies(&stdout);
    let measured: Vec<f64> = replies
        .iter()
        .filter(|(seq, _)| *seq > warmup_count && *seq <= count)
        .map(|(_, rtt)| *rtt)
        .collect();
    if measured.is_empty() {
        let summary = parse_summary(&stdout);
        return Err(WorkloadError::ToolReported {
            tool: T,
            message: match summary {
                Some(s) if s.received == 0 => {
                    format!("no reply from {} ({} sent)", e.target.ip(), s.transmitted)
                }
                _ => excerpt(&format!("{stdout}{stderr}")),
            },
        });
    }
    Ok(summarize(&measured, measured_count as usize).expect("non-empty"))
}

/// (icmp_seq, rtt in ms) of each reply line of iputils ping.
pub fn parse_replies(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|line| {
            let seq = value_after(line, "icmp_seq=")?.parse().ok()?;
            let rtt = value_after(line, "time=")?.parse().ok()?;
            Some((seq, rtt))
        })
        .collect()
}

fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()
}

/// The statistics lines at the end of iputils ping's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub transmitted: u64,
    pub received: u64,
    pub loss_percent: f64,
    /// min, avg, max, mdev in ms; absent when nothing came back.
    pub rtt_ms: Option<[f64; 4]>,
}

pub fn parse_summary(text: &str) -> Option<Summary> {
    let counts = text.lines().find(|l| l.contains("packets transmitted"))?;
    let number_before = |key: &str| -> Option<f64> {
        let head = &counts[..counts.find(key)?];
        head.trim_end()
            .rsplit([' ', ','])
            .next()?
            .trim_end_matches('%')
            .parse()
            .ok()
    };
    let rtt_ms = text
        .lines()
        .find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))
        .and_then(|l| {
            let values = l.split('=').nth(1)?.split_whitespace().next()?;
            let v: Vec<f64> = values.split('/').filter_map(|x| x.parse().ok()).collect();
            (v.len() == 4).then(|| [v[0], v[1], v[2], v[3]])
        });
    Some(Summary {
        transmitted: number_before(" packets transmitted")? as u64,
        received: number_before(" received")? as u64,
        loss_percent: number_before(" packet loss")?,
        rtt_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn replies_and_summary_agree() {
        let text = fixture("ping_ok.txt");
        let replies = parse_replies(&text);
        assert_eq!(replies.len(), 5);
        assert_eq!(replies[0], (1, 0.035));
        let summary = parse_summary(&text).unwrap();
        assert_eq!(summary.transmitted, 5);
        assert_eq!(summary.received, 5);
        assert_eq!(summary.loss_percent, 0.0);
        let [min, avg, max, mdev] = summary.rtt_ms.unwrap();
        let ours = summarize(&replies.iter().map(|r| r.1).collect::<Vec<_>>(), 5).unwrap();
        assert_eq!(ours.get("rtt_min_ms"), Some(min));
        assert_eq!(ours.get("rtt_max_ms"), Some(max));
        // Reply lines are printed to 1 us; ping averages the exact values.
        assert!((ours.get("rtt_ms").unwrap() - avg).abs() <= 0.001);
        assert!((ours.get("rtt_mdev_ms").unwrap() - mdev).abs() <= 0.001);
    }

    #[test]
    fn unreachable_has_no_replies() {
        let text = fixture("ping_unreachable.txt");
        assert!(parse_replies(&text).is_empty());
        let summary = parse_summary(&text).unwrap();
        assert_eq!((summary.transmitted, summary.received), (5, 0));
        assert_eq!(summary.loss_percent, 100.0);
        assert_eq!(summary.rtt_ms, None);
    }
}
