//! Topology files: parse TOML into raw types (keeping every field's position
//! for error messages), then validate the whole thing into a [`Plan`] before
//! anything touches the kernel.

mod check;
mod error;
mod matrix;
mod nodes;
mod paths;
mod plan;
mod raw;
mod services;
pub mod sweep;
mod validate;

pub use error::TopologyError;
pub use plan::{
    parse_duration, Endpoint, Matrix, NodePlan, PathPlan, Plan, PodPlan, Protocol, ServicePlan,
    UnderlayPlan,
};
pub use sweep::Sweep;

use std::path::Path;

/// Reads, parses and validates a topology file.
pub fn load(path: &Path) -> Result<Plan, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|e| TopologyError::file(path, e))?;
    parse(path, &text)
}

/// Parses and validates topology text; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Plan, TopologyError> {
    let raw: raw::Topology =
        toml::from_str(text).map_err(|e| TopologyError::from_toml(path, text, &e))?;
    validate::validate(path, text, raw)
}

#[cfg(test)]
mod tests;
