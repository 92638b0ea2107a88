//! Links born inside another namespace: the pod end of a veth pair, or a
//! macvlan/ipvlan child, is created straight in the pod (IFLA_NET_NS_FD in
//! RTM_NEWLINK) instead of being created here and moved. Moving a link
//! between namespaces makes the kernel wait for an RCU grace period under
//! RTNL (~17 ms a link on this kind of machine, measured), which was most
//! of a lab's setup time; creating it in place costs nothing extra.

use std::os::fd::AsRawFd;

use futures::StreamExt;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoVeth, IpVlanMode, LinkAttribute, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::netlink::{IpvlanMode, Netlink, NetlinkError};

/// A veth pair whose peer is created inside another namespace.
pub struct VethInto<'a> {
    /// Name of the end that stays in this namespace.
    pub host: &'a str,
    /// Namespace of the other end, and its name there.
    pub peer_netns: &'a str,
    pub peer: &'a str,
    /// MTU of both ends, if not the default.
    pub mtu: Option<u32>,
    /// Bridge to plug the host end into, by index.
    pub master: Option<u32>,
}

/// Indexes of a new veth pair, each in its own namespace.
#[derive(Debug, Clone, Copy)]
pub struct VethIndexes {
    pub host: u32,
    /// The peer's index in its namespace, if the kernel told (RTM_NEWLINK
    /// echoes exist since Linux 6.3).
    pub peer: Option<u32>,
}

/// Kinds of child link that can be created inside a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Macvlan,
    Ipvlan(IpvlanMode),
}

impl Netlink {
    /// Creates the pair in one request: the host end here, up (with MTU and
    /// bridge if given); the peer inside `peer_netns` under its final name,
    /// down (the kernel cannot open a veth end before its peer exists, so
    /// the caller brings it up from inside). The kernel's echo of the new
    /// host end carries both indexes, so no lookups follow.
    pub async fn add_veth_into(&self, veth: VethInto<'_>) -> Result<VethIndexes, NetlinkError> {
        let what = format!("{} / {}:{}", veth.host, veth.peer_netns, veth.peer);
        let target = super::open(veth.peer_netns).map_err(|e| NetlinkError {
            netns: self.netns().to_string(),
            op: "open peer namespace for veth",
            object: what.clone(),
            source: Box::new(rtnetlink::Error::NamespaceError(e.to_string())),
        })?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(veth.peer.to_string())
            .setns_by_fd(target.as_raw_fd());
        let mut host = LinkVeth::new(veth.host, veth.peer).up();
        if let Some(mtu) = veth.mtu {
            peer = peer.mtu(mtu);
            host = host.mtu(mtu);
        }
        if let Some(master) = veth.master {
            host = host.controller(master);
        }
        let msg = host
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        // The echo goes to the socket that asked only because the new
        // device (the host end) lives in this socket's namespace.
        let echoed = self.add_link_echo(msg, "create veth", &what).await?;
        drop(target);
        let (host_index, peer_index) = match echoed {
            Some(link) => {
                let peer = link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Link(index) => Some(*index),
                    _ => None,
                });
                (link.header.index, peer)
            }
            None => (self.index(veth.host).await?, None),
        };
        self.remember(veth.host, host_index);
        Ok(VethIndexes {
            host: host_index,
            peer: peer_index,
        })
    }

    /// Creates a child link of `parent` (a link here) straight inside
    /// namespace `target` under `name`, up.
    pub async fn add_child_into(
        &self,
        kind: ChildKind,
        parent: &str,
        target: &str,
        name: &str,
    ) -> Result<(), NetlinkError> {
        let parent_index = self.index(parent).await?;
        let what = format!("{target}:{name} on {parent}");
        let ns = super::open(target).map_err(|e| NetlinkError {
            netns: self.netns().to_string(),
            op: "open target namespace for",
            object: what.clone(),
            source: Box::new(rtnetlink::Error::NamespaceError(e.to_string())),
        })?;
        let fd = ns.as_raw_fd();
        let (op, msg) = match kind {
            ChildKind::Macvlan => (
                "create macvlan",
                LinkMacVlan::new(name, parent_index, MacVlanMode::Bridge)
                    .setns_by_fd(fd)
                    .up()
                    .build(),
            ),
            ChildKind::Ipvlan(mode) => (
                "create ipvlan",
                LinkIpVlan::new(
                    name,
                    parent_index,
                    match mode {
                        IpvlanMode::L2 => IpVlanMode::L2,
                        IpvlanMode::L3 => IpVlanMode::L3,
                    },
                )
                .setns_by_fd(fd)
                .up()
                .build(),
            ),
        };
        // No echo here: it would be sent to whichever socket of the target
        // namespace has this socket's port id.
        self.handle()
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(self.err(op, what))
    }

    /// RTM_NEWLINK with NLM_F_ECHO: the kernel answers with the new link
    /// before its ACK (Linux 6.3 and later; older ones send only the ACK).
    async fn add_link_echo(
        &self,
        msg: LinkMessage,
        op: &'static str,
        what: &str,
    ) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewLink(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
        let mut handle = self.handle().clone();
        let mut answers = handle.request(req).map_err(self.err(op, what))?;
        let mut echoed = None;
        while let Some(answer) = answers.next().await {
            match answer.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    echoed = Some(link)
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(self.err(op, what)(rtnetlink::Error::NetlinkError(e)))
                }
                _ => {}
            }
        }
        Ok(echoed)
    }
}
