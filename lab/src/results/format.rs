//! Number and markdown formatting shared by report.md, the charts and
//! `dplab compare`: how a value, its interval and a ratio are written.

use super::{stats, CellStatus, Metric};

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
pub fn format_ratio(a: &Metric, b: &Metric) -> String {
    let Some(ratio) = median_ratio(a, b) else {
        return "n/a".to_string();
    };
    if with_interval(a).differs_from(&with_interval(b)) {
        format!("{ratio:.2}")
    } else {
        format!("{ratio:.2} ≈")
    }
}

/// Quotes an argument for a POSIX shell when it needs it. By hand, not
/// `shlex::try_quote`: shlex also quotes `,` `=` `%`, which dplab's own
/// flags carry (`--only veth-routed,bridge`), and the line should read as
/// it was typed. The tests check it against shlex's splitter.
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
pub fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// How a status reads in tables and notes.
pub fn status_word(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Ok => "ok",
        CellStatus::Skipped => "skipped",
        CellStatus::Unreachable => "unreachable",
        CellStatus::Failed => "failed",
    }
}

/// A ratio already judged against the noise: `1.05` or `1.05 ≈`; `–` when
/// there is none.
pub fn format_ratio_pair(ratio: Option<(f64, bool)>) -> String {
    match ratio {
        Some((v, true)) => format!("{v:.2}"),
        Some((v, false)) => format!("{v:.2} ≈"),
        None => "–".to_string(),
    }
}

/// `1,000`: counts with thousands separated.
pub fn services_label(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
        assert_eq!(shell_quote("veth-routed,bridge"), "veth-routed,bridge");
    }

    #[test]
    fn quoted_words_split_back_into_the_same_words() {
        let words = [
            "dplab",
            "--only",
            "a,b",
            "it's",
            "",
            "a b",
            "$HOME",
            "`x`",
            "a\nb",
            "x!y",
            "~x",
            "*",
            "grüße",
            "\"q\"",
            "tab\there",
            "line\nbreak",
            "'",
            "''",
        ];
        let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let split = shlex::split(&line.join(" ")).expect("shlex splits the line");
        assert_eq!(split, words);
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
