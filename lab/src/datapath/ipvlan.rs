//! `ipvlan-l2` / `ipvlan-l3`: pods are ipvlan children of an uplink in the
//! node namespace, sharing its MAC. Traffic between pods stays inside the
//! ipvlan driver; traffic to other addresses is handed to the node's stack
//! (L2: frames for the shared MAC go to the parent's receive path; L3: the
//! parent's namespace routes them).

use super::uplink::ChildLink;
use crate::error::LabError;
use crate::netns::cross::ChildKind;
use crate::netns::netlink::{IpvlanMode, NetlinkError};

pub struct Ipvlan {
    pub mode: IpvlanMode,
}

impl ChildLink for Ipvlan {
    fn kind(&self) -> ChildKind {
        ChildKind::Ipvlan(self.mode)
    }

    fn creation_error(&self, e: NetlinkError) -> LabError {
        if e.errno() == Some(libc::EOPNOTSUPP) {
            LabError::Unsupported(
                "kernel has no ipvlan support (EOPNOTSUPP creating an ipvlan link)".into(),
            )
        } else {
            e.into()
        }
    }

    fn pods_use_gateway(&self) -> bool {
        self.mode == IpvlanMode::L2
    }
}
