//! A topology error names the file, the line and the field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct TopologyError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place (e.g. unreadable file).
    pub line: usize,
    /// Dotted path of the field, e.g. `pods[1].address`.
    pub field: String,
    pub message: String,
}

impl TopologyError {
    pub fn file(path: &Path, e: std::io::Error) -> Self {
        TopologyError {
            file: path.to_path_buf(),
            line: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }
    }

    pub fn at(path: &Path, text: &str, span: Range<usize>, field: &str, message: String) -> Self {
        TopologyError {
            file: path.to_path_buf(),
            line: line_of(text, span.start),
            field: field.to_string(),
            message,
        }
    }

    pub fn from_toml(path: &Path, text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        TopologyError {
            file: path.to_path_buf(),
            line,
            field: String::new(),
            message: e.message().trim().to_string(),
        }
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TopologyError {}
