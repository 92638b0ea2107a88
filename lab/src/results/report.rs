//! report.md: a run's results rendered for people. Every sentence and number
//! in it is derived from the `Results` value; nothing is invented.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{chart, stats, Cell, CellStatus, Metric, Results};

/// The metric that stands for a workload in the tables, and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct Headline {
    pub workload: &'static str,
    pub metric: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
}

/// One table per entry in the single-node section, in this order.
pub const HEADLINES: &[Headline] = &[
    Headline {
        workload: "tcp-stream",
        metric: "throughput_gbps",
        label: "throughput",
        unit: "Gbit/s",
        higher_is_better: true,
    },
    Headline {
        workload: "udp-stream",
        metric: "throughput_gbps",
        label: "throughput",
        unit: "Gbit/s",
        higher_is_better: true,
    },
    Headline {
        workload: "tcp-rr",
        metric: "latency_us_p50",
        label: "latency p50",
        unit: "µs",
        higher_is_better: false,
    },
    Headline {
        workload: "tcp-rr",
        metric: "transactions_per_s",
        label: "transactions",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "tcp-crr",
        metric: "connections_per_s",
        label: "connections",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "http",
        metric: "requests_per_s",
        label: "requests",
        unit: "1/s",
        higher_is_better: true,
    },
    Headline {
        workload: "ping",
        metric: "rtt_ms",
        label: "round-trip time",
        unit: "ms",
        higher_is_better: false,
    },
];

/// The columns of the multi-node tables: (workload, metric, column title).
const MULTI_NODE_COLUMNS: &[(&str, &str, &str)] = &[
    ("ping", "rtt_ms", "RTT ms"),
    ("tcp-stream", "throughput_gbps", "bandwidth Gbit/s"),
    ("tcp-rr", "latency_us_p50", "latency µs (p50)"),
    ("http", "requests_per_s", "requests/s"),
];

/// CPU cost metrics, shown when any cell carries them.
const CPU_METRICS: &[(&str, &str)] = &[
    ("cpu_client_percent", "client CPU %"),
    ("cpu_server_percent", "server CPU %"),
    ("cpu_s_per_gb", "CPU s/GB"),
];

const INTERVAL_LEGEND: &str = "Values: median over the repetitions (95% interval of the median). \
     `≈`: the intervals overlap, so the difference is within noise.";

/// Writes report.md and the SVG charts into `out_dir`; returns the files written.
pub fn write_report(results: &Results, out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let charts = chart::all_charts(results).map_err(std::io::Error::other)?;
    let mut written = Vec::new();
    let mut links = Vec::new();
    for c in &charts {
        let path = out_dir.join(&c.file_name);
        std::fs::write(&path, &c.svg)?;
        written.push(path);
        links.push((c.title.clone(), c.file_name.clone()));
    }
    let report = out_dir.join("report.md");
    std::fs::write(&report, render_markdown(results, &links))?;
    written.push(report);
    Ok(written)
}

/// The whole report.md; `charts` are (title, file name relative to report.md).
pub fn render_markdown(results: &Results, charts: &[(String, String)]) -> String {
    let notes = Notes::new(results);
    let mut placed = vec![false; results.cells.len()];
    let mut out = String::new();
    header(&mut out, results);
    summary_counts(&mut out, results);
    single_node_tables(&mut out, results, &notes, &mut placed);
    multi_node_tables(&mut out, results, &notes, &mut placed);
    other_cells(&mut out, results, &notes, &placed);
    cpu_cost(&mut out, results);
    reading(&mut out, results);
    if !charts.is_empty() {
        out.push_str("\n## Charts\n\n");
        for (title, file) in charts {
            let _ = writeln!(out, "![{}]({})\n", escape(title), file);
        }
    }
    skipped_and_failed(&mut out, results, &notes);
    proof_of_path(&mut out, results);
    benchmarks(&mut out, results);
    out
}

/// Footnotes for the cells that are not ok: one number per distinct
/// (status, reason), so that a datapath the kernel lacks is one note, not
/// one per cell.
struct Notes {
    /// Per cell: its note number (1-based), if it is not ok.
    number: Vec<Option<usize>>,
    /// Per note number - 1: the status and reason it stands for.
    notes: Vec<(CellStatus, String)>,
}

impl Notes {
    fn new(results: &Results) -> Notes {
        let mut notes: Vec<(CellStatus, String)> = Vec::new();
        let number = results
            .cells
            .iter()
            .map(|c| {
                if c.status == CellStatus::Ok {
                    return None;
                }
                let note = (c.status, reason_of(c).to_string());
                let at = notes.iter().position(|n| *n == note).unwrap_or_else(|| {
                    notes.push(note);
                    notes.len() - 1
                });
                Some(at + 1)
            })
            .collect();
        Notes { number, notes }
    }

    /// What a table slot shows for cell `index` and `metric`.
    fn slot(&self, results: &Results, index: usize, metric: &str) -> String {
        let cell = &results.cells[index];
        let value = match (cell.status, self.number[index]) {
            (CellStatus::Ok, _) | (_, None) => cell
                .metrics
                .get(metric)
                .map(format_metric)
                .unwrap_or_else(|| "n/a".to_string()),
            (status, Some(n)) => format!("{} [{n}]", status_word(status)),
        };
        value + &super::conditions::marker(cell)
    }

    /// The footnote lines for the notes of the cells among `indices`.
    fn footnotes(&self, indices: &[usize]) -> String {
        let used: BTreeSet<usize> = indices.iter().filter_map(|&i| self.number[i]).collect();
        let mut out = String::new();
        for n in used {
            let (status, reason) = &self.notes[n - 1];
            let _ = writeln!(out, "[{n}] {}: {}  ", status_word(*status), escape(reason));
        }
        out
    }
}

fn reason_of(cell: &Cell) -> &str {
    cell.reason.as_deref().unwrap_or("no reason recorded")
}

fn status_word(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Ok => "ok",
        CellStatus::Skipped => "skipped",
        CellStatus::Failed => "failed",
    }
}

/// A number with as many digits as a reader can use.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        // Three significant digits for small values such as 0.0451 ms.
        let decimals = (2 - a.log10().floor() as i32).clamp(3, 9) as usize;
        format!("{v:.decimals$}")
    }
}

/// The 95% interval of a metric's median; computed from the samples when
/// the file does not carry one (older files, hand-written ones).
pub fn interval(m: &Metric) -> (f64, f64) {
    let recorded = m.ci95_low <= m.median
        && m.median <= m.ci95_high
        && !(m.ci95_low == 0.0 && m.ci95_high == 0.0 && m.median != 0.0);
    if recorded {
        (m.ci95_low, m.ci95_high)
    } else if !m.samples.is_empty() {
        stats::median_ci95(&m.samples)
    } else {
        (m.min, m.max)
    }
}

/// The metric with its interval filled in, ready for `Metric::differs_from`.
pub fn with_interval(m: &Metric) -> Metric {
    let (ci95_low, ci95_high) = interval(m);
    Metric {
        ci95_low,
        ci95_high,
        ..m.clone()
    }
}

/// `17.6 (17.2–17.8)`.
pub fn format_metric(m: &Metric) -> String {
    let (low, high) = interval(m);
    format!(
        "{} ({}–{})",
        format_number(m.median),
        format_number(low),
        format_number(high)
    )
}

/// `b / a` of the medians: equal medians (also 0 and 0) give 1; `None`
/// when only `a` is 0 or either is not a number.
pub fn median_ratio(a: &Metric, b: &Metric) -> Option<f64> {
    if a.median == b.median {
        Some(1.0)
    } else if a.median == 0.0 || !a.median.is_finite() || !b.median.is_finite() {
        None
    } else {
        Some(b.median / a.median)
    }
}

/// `b/a` of the medians with `≈` when the intervals overlap.
fn format_ratio(a: &Metric, b: &Metric) -> String {
    let Some(ratio) = median_ratio(a, b) else {
        return "n/a".to_string();
    };
    if with_interval(a).differs_from(&with_interval(b)) {
        format!("{ratio:.2}")
    } else {
        format!("{ratio:.2} ≈")
    }
}

/// Quotes an argument for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Keeps text from breaking a markdown table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn header(out: &mut String, r: &Results) {
    let _ = writeln!(out, "# dplab report: {}\n", escape(&r.topology));
    out.push_str("| | |\n|---|---|\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "| {k} | {} |", escape(&v));
    };
    row("Topology", r.topology.clone());
    row("Run", r.run_id.clone());
    row("Host", r.host.hostname.clone());
    row("Kernel", r.host.kernel.clone());
    let cpus = if r.host.cpu_model.is_empty() {
        r.host.cpus.to_string()
    } else {
        format!("{} × {}", r.host.cpus, r.host.cpu_model)
    };
    row("CPUs", cpus);
    row("Tool", r.settings.tool.clone());
    let mut duration = format!("{} s per repetition", r.settings.duration_s);
    if r.settings.warmup_s > 0.0 {
        let _ = write!(duration, ", warm-up {} s", r.settings.warmup_s);
    }
    row("Duration", duration);
    row("Repetitions", r.settings.repetitions.to_string());
    row("Date", format!("{} – {}", r.started_at, r.finished_at));
    row("dplab version", r.dplab_version.clone());
    if let Some(shaping) = &r.settings.shaping {
        row("Link shaping", shaping.clone());
    }
    super::conditions::header_rows(out, r);
    out.push_str("\nReproduce with:\n\n```sh\n");
    if r.command.is_empty() {
        out.push_str("# the command was not recorded in this results file\n");
    } else {
        let line: Vec<String> = r.command.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(out, "{}", line.join(" "));
    }
    out.push_str("```\n");
}

fn summary_counts(out: &mut String, r: &Results) {
    let count = |s: CellStatus| r.cells.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "\n{} cells: {} ok, {} skipped, {} failed.",
        r.cells.len(),
        count(CellStatus::Ok),
        count(CellStatus::Skipped),
        count(CellStatus::Failed)
    );
}

/// Datapaths in the order the run first measured them.
fn datapaths_in_order<'a>(cells: impl Iterator<Item = &'a Cell>) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for c in cells {
        if !seen.contains(&c.datapath) {
            seen.push(c.datapath.clone());
        }
    }
    seen
}

/// One row of a single-node table: a datapath, with its pod IP cell and one
/// of its cluster IP cells (one row per service proxy).
#[derive(Debug, Clone)]
pub struct SingleNodeRow {
    pub datapath: String,
    pub service_proxy: Option<String>,
    pub pod: Option<usize>,
    pub cluster: Option<usize>,
}

/// The rows of the single-node table for `workload`; cells that do not fit
/// a slot (a second cell for the same slot, other targets) are left out
/// here and end up under "Other cells".
pub fn single_node_rows(r: &Results, workload: &str) -> Vec<SingleNodeRow> {
    let of_workload: Vec<usize> = (0..r.cells.len())
        .filter(|&i| r.cells[i].overlay.is_none() && r.cells[i].workload == workload)
        .collect();
    let mut rows = Vec::new();
    for dp in datapaths_in_order(of_workload.iter().map(|&i| &r.cells[i])) {
        let mine = |target: &str| -> Vec<usize> {
            of_workload
                .iter()
                .copied()
                .filter(|&i| r.cells[i].datapath == dp && r.cells[i].target == target)
                .collect()
        };
        let pod = mine("pod-ip").first().copied();
        let mut proxies: Vec<(Option<String>, usize)> = Vec::new();
        for i in mine("cluster-ip") {
            let proxy = r.cells[i].service_proxy.clone();
            if !proxies.iter().any(|(p, _)| *p == proxy) {
                proxies.push((proxy, i));
            }
        }
        if proxies.is_empty() {
            rows.push(SingleNodeRow {
                datapath: dp.clone(),
                service_proxy: None,
                pod,
                cluster: None,
            });
        }
        for (proxy, i) in proxies {
            rows.push(SingleNodeRow {
                datapath: dp.clone(),
                service_proxy: proxy,
                pod,
                cluster: Some(i),
            });
        }
    }
    rows
}

fn ok_metric<'a>(r: &'a Results, index: Option<usize>, metric: &str) -> Option<&'a Metric> {
    let cell = &r.cells[index?];
    if cell.status != CellStatus::Ok {
        return None;
    }
    cell.metrics.get(metric)
}

fn single_node_tables(out: &mut String, r: &Results, notes: &Notes, placed: &mut [bool]) {
    if !r.cells.iter().any(|c| c.overlay.is_none()) {
        return;
    }
    out.push_str("\n## Single node: pod IP and cluster IP per datapath\n\n");
    out.push_str(INTERVAL_LEGEND);
    out.push('\n');
    for h in HEADLINES {
        let rows = single_node_rows(r, h.workload);
        if rows.is_empty() {
            continue;
        }
        let better = if h.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(
            out,
            "\n### {}: {} ({}, {better})\n",
            h.workload, h.label, h.unit
        );
        out.push_str("| datapath | pod IP | cluster IP | service proxy | cluster/pod |\n");
        out.push_str("|---|---|---|---|---|\n");
        let mut used = Vec::new();
        for row in &rows {
            let slot = |i: Option<usize>| match i {
                Some(i) => notes.slot(r, i, h.metric),
                None => "–".to_string(),
            };
            let ratio = match (
                ok_metric(r, row.pod, h.metric),
                ok_metric(r, row.cluster, h.metric),
            ) {
                (Some(p), Some(c)) => format_ratio(p, c),
                _ => "–".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                escape(&row.datapath),
                slot(row.pod),
                slot(row.cluster),
                row.service_proxy.as_deref().unwrap_or("–"),
                ratio
            );
            for i in [row.pod, row.cluster].into_iter().flatten() {
                placed[i] = true;
                used.push(i);
            }
        }
        let footnotes = notes.footnotes(&used);
        if !footnotes.is_empty() {
            out.push('\n');
            out.push_str(&footnotes);
        }
    }
}

/// One row of a multi-node table: a path through one overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct PathKey {
    pub datapath: String,
    pub client: String,
    pub server: String,
    pub target: String,
    pub placement: Option<String>,
}

impl PathKey {
    fn of(c: &Cell) -> PathKey {
        PathKey {
            datapath: c.datapath.clone(),
            client: c.client.clone(),
            server: c.server.clone(),
            target: c.target.clone(),
            placement: c.placement.clone(),
        }
    }

    /// Same endpoints and target, whatever the datapath or overlay.
    fn same_route(&self, other: &PathKey) -> bool {
        self.client == other.client
            && self.server == other.server
            && self.target == other.target
            && self.placement == other.placement
    }
}

/// Rows of one overlay's table: each path with its cell per column of
/// `MULTI_NODE_COLUMNS`.
pub fn multi_node_rows(r: &Results, overlay: &str) -> Vec<(PathKey, Vec<Option<usize>>)> {
    let mut rows: Vec<(PathKey, Vec<Option<usize>>)> = Vec::new();
    for (i, c) in r.cells.iter().enumerate() {
        if c.overlay.as_deref() != Some(overlay) {
            continue;
        }
        let Some(col) = MULTI_NODE_COLUMNS
            .iter()
            .position(|(w, _, _)| *w == c.workload)
        else {
            continue;
        };
        let key = PathKey::of(c);
        let row = match rows.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                rows.push((key, vec![None; MULTI_NODE_COLUMNS.len()]));
                rows.len() - 1
            }
        };
        // A second cell for the same slot stays unplaced: "Other cells".
        if rows[row].1[col].is_none() {
            rows[row].1[col] = Some(i);
        }
    }
    rows
}

fn overlays_in_order(r: &Results) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for o in r.cells.iter().filter_map(|c| c.overlay.as_ref()) {
        if !seen.contains(o) {
            seen.push(o.clone());
        }
    }
    seen
}

fn path_label(k: &PathKey) -> String {
    format!("{} > {}", k.client, k.server)
}

fn multi_node_tables(out: &mut String, r: &Results, notes: &Notes, placed: &mut [bool]) {
    let overlays = overlays_in_order(r);
    if overlays.is_empty() {
        return;
    }
    out.push_str("\n## Multi-node: paths per overlay\n\n");
    out.push_str(INTERVAL_LEGEND);
    out.push_str(" `–`: the workload was not run on this path.\n");
    for overlay in &overlays {
        let rows = multi_node_rows(r, overlay);
        let several_datapaths = datapaths_in_order(
            r.cells
                .iter()
                .filter(|c| c.overlay.as_deref() == Some(overlay)),
        )
        .len()
            > 1;
        let _ = writeln!(out, "\n### overlay {overlay}\n");
        let mut head = String::from("| path | placement | target |");
        if several_datapaths {
            head.push_str(" datapath |");
        }
        for (_, _, title) in MULTI_NODE_COLUMNS {
            let _ = write!(head, " {title} |");
        }
        let _ = writeln!(out, "{head}");
        let columns = 3 + usize::from(several_datapaths) + MULTI_NODE_COLUMNS.len();
        let _ = writeln!(out, "|{}", "---|".repeat(columns));
        let mut used = Vec::new();
        for (key, slots) in &rows {
            let _ = write!(
                out,
                "| {} | {} | {} |",
                escape(&path_label(key)),
                key.placement.as_deref().unwrap_or("–"),
                escape(&key.target)
            );
            if several_datapaths {
                let _ = write!(out, " {} |", escape(&key.datapath));
            }
            for (slot, (_, metric, _)) in slots.iter().zip(MULTI_NODE_COLUMNS) {
                let text = match slot {
                    Some(i) => {
                        placed[*i] = true;
                        used.push(*i);
                        notes.slot(r, *i, metric)
                    }
                    None => "–".to_string(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        let footnotes = notes.footnotes(&used);
        if !footnotes.is_empty() {
            out.push('\n');
            out.push_str(&footnotes);
        }
    }
    overlay_ratio_table(out, r);
}

/// Cross-node paths measured on both overlays, with vxlan/routed per column.
pub struct OverlayRatio {
    pub path: PathKey,
    /// Per column of `MULTI_NODE_COLUMNS`: (vxlan/routed, significant).
    pub ratios: Vec<Option<(f64, bool)>>,
}

pub fn overlay_ratios(r: &Results, base: &str, other: &str) -> Vec<OverlayRatio> {
    let base_rows = multi_node_rows(r, base);
    let other_rows = multi_node_rows(r, other);
    let mut found = Vec::new();
    for (bk, bslots) in &base_rows {
        if bk.placement.as_deref() != Some("cross-node") {
            continue;
        }
        let Some((_, oslots)) = other_rows.iter().find(|(ok, _)| ok.same_route(bk)) else {
            continue;
        };
        let ratios = MULTI_NODE_COLUMNS
            .iter()
            .enumerate()
            .map(|(col, (_, metric, _))| {
                let a = ok_metric(r, bslots[col], metric)?;
                let b = ok_metric(r, oslots[col], metric)?;
                let ratio = median_ratio(a, b)?;
                Some((ratio, with_interval(a).differs_from(&with_interval(b))))
            })
            .collect();
        found.push(OverlayRatio {
            path: bk.clone(),
            ratios,
        });
    }
    found
}

fn format_ratio_pair(ratio: Option<(f64, bool)>) -> String {
    match ratio {
        Some((v, true)) => format!("{v:.2}"),
        Some((v, false)) => format!("{v:.2} ≈"),
        None => "–".to_string(),
    }
}

fn overlay_ratio_table(out: &mut String, r: &Results) {
    let ratios = overlay_ratios(r, "routed", "vxlan");
    if ratios.is_empty() {
        return;
    }
    out.push_str("\n### vxlan / routed, cross-node\n\n");
    out.push_str("Ratio of the medians, vxlan divided by routed. `≈`: within noise.\n\n");
    let mut head = String::from("| path | target | datapath |");
    for (_, _, title) in MULTI_NODE_COLUMNS {
        let _ = write!(head, " {title} |");
    }
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "|{}", "---|".repeat(3 + MULTI_NODE_COLUMNS.len()));
    for o in &ratios {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            escape(&path_label(&o.path)),
            escape(&o.path.target),
            escape(&o.path.datapath)
        );
        for ratio in &o.ratios {
            let _ = write!(out, " {} |", format_ratio_pair(*ratio));
        }
        out.push('\n');
    }
}

/// A short list of a cell's metrics: `rtt_ms 0.045 (0.044–0.046)`.
fn metric_list(cell: &Cell) -> String {
    if cell.metrics.is_empty() {
        return "–".to_string();
    }
    cell.metrics
        .iter()
        .map(|(k, m)| format!("{k} {}", format_metric(m)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Cells that fit no table slot, so that none goes missing.
fn other_cells(out: &mut String, r: &Results, notes: &Notes, placed: &[bool]) {
    let rest: Vec<usize> = (0..r.cells.len()).filter(|&i| !placed[i]).collect();
    if rest.is_empty() {
        return;
    }
    out.push_str("\n## Other cells\n\nCells that fit none of the tables above.\n\n");
    out.push_str("| cell | service proxy | status | metrics |\n|---|---|---|---|\n");
    for &i in &rest {
        let c = &r.cells[i];
        let status = match notes.number[i] {
            Some(n) => format!("{} [{n}]", status_word(c.status)),
            None => status_word(c.status).to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            escape(&c.key()),
            c.service_proxy.as_deref().unwrap_or("–"),
            status,
            escape(&metric_list(c))
        );
    }
}

fn cpu_cost(out: &mut String, r: &Results) {
    let has_cpu = |c: &Cell| CPU_METRICS.iter().any(|(m, _)| c.metrics.contains_key(*m));
    let cells: Vec<&Cell> = r.cells.iter().filter(|c| has_cpu(c)).collect();
    if cells.is_empty() {
        return;
    }
    out.push_str("\n## CPU cost\n\n");
    out.push_str("| cell |");
    for (_, title) in CPU_METRICS {
        let _ = write!(out, " {title} |");
    }
    let _ = writeln!(out, "\n|{}", "---|".repeat(1 + CPU_METRICS.len()));
    for c in cells {
        let _ = write!(out, "| `{}` |", escape(&c.key()));
        for (m, _) in CPU_METRICS {
            let v = c
                .metrics
                .get(*m)
                .map(format_metric)
                .unwrap_or_else(|| "–".to_string());
            let _ = write!(out, " {v} |");
        }
        out.push('\n');
    }
}

/// A measured value with the name a reader knows it by.
struct Entry<'a> {
    name: String,
    metric: &'a Metric,
}

/// Best first; between neighbours `>` (intervals apart) or `≈` (overlap).
fn ranking(entries: &mut [Entry], h: &Headline) -> String {
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
            let prev = with_interval(entries[n - 1].metric);
            let sep = if prev.differs_from(&with_interval(e.metric)) {
                if h.higher_is_better {
                    " > "
                } else {
                    " < "
                }
            } else {
                " ≈ "
            };
            line.push_str(sep);
        }
        let _ = write!(line, "{} {}", e.name, format_number(e.metric.median));
    }
    line
}

fn reading(out: &mut String, r: &Results) {
    let mut lines = Vec::new();
    for h in HEADLINES {
        let rows = single_node_rows(r, h.workload);
        if rows.is_empty() {
            continue;
        }
        for (target, title) in [("pod-ip", "pod IP"), ("cluster-ip", "cluster IP")] {
            let mut entries = Vec::new();
            let mut seen = Vec::new();
            for row in &rows {
                let index = if target == "pod-ip" {
                    row.pod
                } else {
                    row.cluster
                };
                if seen.contains(&index) {
                    continue; // a pod IP cell shared by several proxy rows
                }
                seen.push(index);
                if let Some(m) = ok_metric(r, index, h.metric) {
                    let name = match (&row.service_proxy, target) {
                        (Some(p), "cluster-ip") => format!("{} ({p})", row.datapath),
                        _ => row.datapath.clone(),
                    };
                    entries.push(Entry { name, metric: m });
                }
            }
            if entries.is_empty() {
                continue;
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
                .filter(|e| !with_interval(best.metric).differs_from(&with_interval(e.metric)))
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
            lines.push(line);
        }
        let costs: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let p = ok_metric(r, row.pod, h.metric)?;
                let c = ok_metric(r, row.cluster, h.metric)?;
                let ratio = median_ratio(p, c)?;
                let noise = if with_interval(p).differs_from(&with_interval(c)) {
                    ""
                } else {
                    ", within noise"
                };
                let proxy = row
                    .service_proxy
                    .as_deref()
                    .map(|p| format!(" via {p}"))
                    .unwrap_or_default();
                Some(format!("{}{proxy} {ratio:.2}{noise}", row.datapath))
            })
            .collect();
        if !costs.is_empty() {
            lines.push(format!(
                "- **{} {}, cluster IP / pod IP**: {}.",
                h.workload,
                h.label,
                costs.join("; ")
            ));
        }
    }
    for o in overlay_ratios(r, "routed", "vxlan") {
        let parts: Vec<String> = o
            .ratios
            .iter()
            .zip(MULTI_NODE_COLUMNS)
            .filter_map(|(ratio, (_, _, title))| {
                let (v, significant) = (*ratio)?;
                let noise = if significant { "" } else { ", within noise" };
                Some(format!("{title} {v:.2}{noise}"))
            })
            .collect();
        if !parts.is_empty() {
            lines.push(format!(
                "- **vxlan / routed, cross-node {} ({})**: {}.",
                path_label(&o.path),
                o.path.target,
                parts.join("; ")
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("\n## Reading\n\n");
    out.push_str(
        "Derived from the numbers above only. In a ranking, `>`/`<` means the 95% intervals \
         of neighbours do not overlap, `≈` that they do (the difference is within noise).\n\n",
    );
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

fn skipped_and_failed(out: &mut String, r: &Results, notes: &Notes) {
    out.push_str("\n## Skipped and failed\n\n");
    if notes.notes.is_empty() {
        out.push_str("None: every cell ran.\n");
        return;
    }
    for (at, (status, reason)) in notes.notes.iter().enumerate() {
        let n = at + 1;
        let _ = writeln!(out, "{n}. **{}**: {}", status_word(*status), escape(reason));
        for (i, c) in r.cells.iter().enumerate() {
            if notes.number[i] == Some(n) {
                let _ = writeln!(out, "   - `{}`", c.key());
            }
        }
    }
}

fn proof_of_path(out: &mut String, r: &Results) {
    let keys: BTreeSet<&str> = r
        .cells
        .iter()
        .flat_map(|c| c.proof.keys().map(String::as_str))
        .collect();
    out.push_str("\n## Proof of path\n\n");
    if keys.is_empty() {
        out.push_str("No cell recorded proof counters.\n");
        return;
    }
    out.push_str(
        "Counters read before and after each measurement (their difference): \
         which rules and programs the packets went through. `–`: not recorded.\n\n",
    );
    out.push_str("| cell | status |");
    for k in &keys {
        let _ = write!(out, " {k} |");
    }
    let _ = writeln!(out, "\n|{}", "---|".repeat(2 + keys.len()));
    for c in &r.cells {
        let _ = write!(
            out,
            "| `{}` | {} |",
            escape(&c.key()),
            status_word(c.status)
        );
        for k in &keys {
            match c.proof.get(*k) {
                Some(v) => {
                    let _ = write!(out, " {v} |");
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
}

fn benchmarks(out: &mut String, r: &Results) {
    if r.benchmarks.is_empty() {
        return;
    }
    out.push_str("\n## Benchmarks of dplab itself\n\n| benchmark | value |\n|---|---|\n");
    for (name, value) in &r.benchmarks {
        let _ = writeln!(out, "| {} | {} |", escape(name), format_number(*value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_useful_digits() {
        assert_eq!(format_number(17.62), "17.6");
        assert_eq!(format_number(1.234), "1.23");
        assert_eq!(format_number(35123.4), "35123");
        assert_eq!(format_number(0.04512), "0.0451");
        assert_eq!(format_number(0.5), "0.500");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(f64::NAN), "–");
    }

    #[test]
    fn metric_shows_median_and_interval() {
        let m = Metric {
            median: 17.6,
            ci95_low: 17.2,
            ci95_high: 17.8,
            ..Metric::default()
        };
        assert_eq!(format_metric(&m), "17.6 (17.2–17.8)");
    }

    #[test]
    fn missing_interval_is_computed_from_samples() {
        let m = Metric {
            median: 17.6,
            min: 17.2,
            max: 17.8,
            samples: vec![17.2, 17.6, 17.8],
            ..Metric::default()
        };
        let (low, high) = interval(&m);
        assert!((17.2..=17.6).contains(&low) && (17.6..=17.8).contains(&high));
        assert!(low < high);
    }

    #[test]
    fn ratio_of_medians() {
        let m = |median| Metric {
            median,
            ..Metric::default()
        };
        assert_eq!(median_ratio(&m(10.0), &m(12.5)), Some(1.25));
        assert_eq!(median_ratio(&m(0.0), &m(0.0)), Some(1.0));
        assert_eq!(median_ratio(&m(0.0), &m(3.0)), None);
        assert_eq!(median_ratio(&m(f64::NAN), &m(3.0)), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--duration"), "--duration");
        assert_eq!(shell_quote("results/a b"), "'results/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn ratio_marks_overlap() {
        let a = Metric {
            median: 10.0,
            ci95_low: 9.0,
            ci95_high: 11.0,
            ..Metric::default()
        };
        let b = Metric {
            median: 10.5,
            ci95_low: 10.0,
            ci95_high: 11.0,
            ..Metric::default()
        };
        let c = Metric {
            median: 20.0,
            ci95_low: 19.0,
            ci95_high: 21.0,
            ..Metric::default()
        };
        assert_eq!(format_ratio(&a, &b), "1.05 ≈");
        assert_eq!(format_ratio(&a, &c), "2.00");
    }
}
