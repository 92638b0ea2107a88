//! `macvlan` (bridge mode): pods are macvlan children of an uplink in the
//! node namespace; pod-to-pod frames are switched inside the macvlan driver
//! and never enter the node's stack.

use super::uplink::ChildLink;
use crate::netns::cross::ChildKind;

pub struct Macvlan;

impl ChildLink for Macvlan {
    fn kind(&self) -> ChildKind {
        ChildKind::Macvlan
    }
}
