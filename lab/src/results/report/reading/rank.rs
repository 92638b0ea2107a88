//! Rankings of measured values, best first, saying at each step whether the
//! difference is beyond noise.

use std::fmt::Write as _;

use crate::results::format::{format_number, with_interval};
use crate::results::report::Headline;
use crate::results::Metric;

/// A measured value with the name a reader knows it by.
pub(super) struct Entry<'a> {
    pub name: String,
    pub metric: &'a Metric,
    /// Written after the value, e.g. its ratio to pod IP: ` ×0.96`.
    pub note: String,
}

impl<'a> Entry<'a> {
    pub fn new(name: String, metric: &'a Metric) -> Entry<'a> {
        Entry {
            name,
            metric,
            note: String::new(),
        }
    }
}

/// Two values whose 95% intervals do not overlap.
pub(super) fn apart(a: &Metric, b: &Metric) -> bool {
    with_interval(a).differs_from(&with_interval(b))
}

/// Sorts best first and writes the chain: between neighbours `>`/`<`
/// (intervals apart) or `≈` (they overlap).
pub(super) fn ranking(entries: &mut [Entry], h: &Headline) -> String {
    entries.sort_by(|a, b| {
        let o = a.metric.median.total_cmp(&b.metric.median);
        if h.higher_is_better {
            o.reverse()
        } else {
            o
        }
    });
    let mut line = String::new();
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            let sep = match (apart(entries[n - 1].metric, e.metric), h.higher_is_better) {
                (false, _) => " ≈ ",
                (true, true) => " > ",
                (true, false) => " < ",
            };
            line.push_str(sep);
        }
        let _ = write!(
            line,
            "{} {}{}",
            e.name,
            format_number(e.metric.median),
            e.note
        );
    }
    line
}

/// `- **tcp-stream throughput, pod IP** (Gbit/s): highest: macvlan 19.9,
/// within noise of veth-ebpf. Ranking: ...`; `None` without entries.
pub(super) fn ranking_line(mut entries: Vec<Entry>, h: &Headline, title: &str) -> Option<String> {
    if entries.is_empty() {
        return None;
    }
    let chain = ranking(&mut entries, h);
    let best = &entries[0];
    let word = if h.higher_is_better {
        "highest"
    } else {
        "lowest"
    };
    let mut line = format!(
        "- **{} {}, {title}** ({}): {word}: {} {}",
        h.workload,
        h.label,
        h.unit,
        best.name,
        format_number(best.metric.median)
    );
    let tied: Vec<&str> = entries[1..]
        .iter()
        .filter(|e| !apart(best.metric, e.metric))
        .map(|e| e.name.as_str())
        .collect();
    if entries.len() == 1 {
        line.push_str(" (the only one measured).");
    } else if tied.is_empty() {
        line.push_str(", ahead of every other beyond noise.");
    } else {
        let _ = write!(line, ", within noise of {}.", tied.join(", "));
    }
    if entries.len() > 1 {
        let _ = write!(line, " Ranking: {chain}.");
    }
    Some(line)
}
