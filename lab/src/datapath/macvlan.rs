//! `macvlan` (bridge mode): pods are macvlan children of an uplink in the
//! node namespace; pod-to-pod frames are switched inside the macvlan driver
//! and never enter the node's stack.

use super::uplink::{self, ChildLink};
use super::{LabNet, Wiring};
use crate::error::Result;

pub struct Macvlan;

impl ChildLink for Macvlan {
    async fn create(&self, lab: &LabNet<'_>, ns: &str, name: &str, parent: &str) -> Result<()> {
        Ok(lab.nl(ns).add_macvlan(name, parent).await?)
    }
}

impl Wiring for Macvlan {
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()> {
        uplink::wire_node(self, lab, node).await
    }

    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()> {
        uplink::wire_pod(self, lab, pod).await
    }

    fn cluster_ip_needs_masquerade(&self) -> bool {
        true
    }
}
