//! Errors of building, measuring and tearing down a lab. Each wraps the
//! failing kernel object and operation; the binary adds context with anyhow.

use crate::ledger::LedgerError;
use crate::netns::netlink::NetlinkError;
use crate::netns::NetnsError;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The kernel or the build cannot do what was asked: the cell is skipped.
    #[error("{0}")]
    Unsupported(String),
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl LabError {
    /// Whether the failure means "not possible here" rather than "broken".
    pub fn is_unsupported(&self) -> bool {
        matches!(self, LabError::Unsupported(_))
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;
