//! stderr, shared by diagnostics (the `log` crate, filtered by `-v`/`-q`)
//! and the live progress bar: every log line is written with the bar
//! lifted, so neither garbles the other. stdout stays for results (run ids,
//! output folders, tables) that scripts read.

use std::io::Write;
use std::sync::OnceLock;

use indicatif::MultiProgress;
use log::{Level, LevelFilter};

/// The progress bars, drawn on stderr when it is a terminal.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Sends dplab's diagnostics at `level` and up to stderr as
/// `dplab: ...` lines (other crates' at warnings only); RUST_LOG, when
/// set, overrides both.
pub fn init_logging(level: LevelFilter) {
    let _ = env_logger::Builder::new()
        .filter_level(LevelFilter::Warn)
        .filter_module("dplab", level)
        .parse_default_env()
        .format(|buf, record| match record.level() {
            Level::Info => writeln!(buf, "dplab: {}", record.args()),
            Level::Warn => writeln!(buf, "dplab: warning: {}", record.args()),
            Level::Error => writeln!(buf, "dplab: error: {}", record.args()),
            other => writeln!(
                buf,
                "dplab: {}: {}",
                other.as_str().to_lowercase(),
                record.args()
            ),
        })
        .target(env_logger::Target::Pipe(Box::new(BelowTheBar)))
        .try_init();
}

/// stderr with the progress bar lifted while writing.
struct BelowTheBar;

impl Write for BelowTheBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
