//! What a run measured: the results.json schema, statistics over samples,
//! and the renderings for people (report.md, charts, comparisons).

pub mod chart;
pub mod compare;
pub mod conditions;
pub mod format;
pub mod layout;
pub mod report;
pub mod schema;
pub mod stats;
pub mod sweep;

pub use schema::{Cell, CellStatus, Host, Metric, Results, Settings};
