//! The top of report.md: what ran where, how to reproduce it, and how many
//! cells ran.

use std::fmt::Write as _;

use crate::results::format::{escape, shell_quote};
use crate::results::{CellStatus, Results};

pub(super) fn header(out: &mut String, r: &Results) {
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
    crate::results::conditions::header_rows(out, r);
    out.push_str("\nReproduce with:\n\n```sh\n");
    if r.command.is_empty() {
        out.push_str("# the command was not recorded in this results file\n");
    } else {
        let line: Vec<String> = r.command.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(out, "{}", line.join(" "));
    }
    out.push_str("```\n");
}

pub(super) fn summary_counts(out: &mut String, r: &Results) {
    let count = |s: CellStatus| r.cells.iter().filter(|c| c.status == s).count();
    // Unreachable is named only when there is some: older runs cannot have it.
    let unreachable = match count(CellStatus::Unreachable) {
        0 => String::new(),
        n => format!(", {n} unreachable"),
    };
    let _ = writeln!(
        out,
        "\n{} cells: {} ok, {} skipped{unreachable}, {} failed.",
        r.cells.len(),
        count(CellStatus::Ok),
        count(CellStatus::Skipped),
        count(CellStatus::Failed)
    );
}
