//! `ipvlan-l2` / `ipvlan-l3`: pods are ipvlan children of an uplink in the
//! node namespace, sharing its MAC. Traffic between pods stays inside the
//! ipvlan driver; traffic to other addresses is handed to the node's stack
//! (L2: frames for the shared MAC go to the parent's receive path; L3: the
//! parent's namespace routes them).

use super::uplink::ChildLink;
use super::LabNet;
use crate::error::{LabError, Result};
use crate::netns::netlink::IpvlanMode;

pub struct Ipvlan {
    pub mode: IpvlanMode,
}

impl ChildLink for Ipvlan {
    async fn create(&self, lab: &LabNet<'_>, ns: &str, name: &str, parent: &str) -> Result<()> {
        match lab.nl(ns).add_ipvlan(name, parent, self.mode).await {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Err(LabError::Unsupported(
                "kernel has no ipvlan support (EOPNOTSUPP creating an ipvlan link)".into(),
            )),
            other => Ok(other?),
        }
    }

    fn pods_use_gateway(&self) -> bool {
        self.mode == IpvlanMode::L2
    }
}
