//! `macvlan` (bridge mode): pods are macvlan children of an uplink in the
//! node namespace; pod-to-pod frames are switched inside the macvlan driver
//! and never enter the node's stack.

use super::uplink::ChildLink;
use super::LabNet;
use crate::error::Result;

pub struct Macvlan;

impl ChildLink for Macvlan {
    async fn create(&self, lab: &LabNet<'_>, ns: &str, name: &str, parent: &str) -> Result<()> {
        Ok(lab.nl(ns).add_macvlan(name, parent).await?)
    }
}
