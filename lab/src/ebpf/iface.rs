//! Interface index and MAC address of a device inside a namespace, for the
//! endpoint map: one RTM_GETLINK by name on a netlink socket created in
//! that namespace (sysfs would show the namespace it was mounted from, not
//! the thread's).

use std::io::{Error, ErrorKind};

use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::EbpfError;
use crate::netns;

/// Index and MAC of `ifname` in namespace `ns`.
pub fn ifindex_and_mac(ns: &str, ifname: &str) -> Result<(u32, [u8; 6]), EbpfError> {
    let err = |op: &'static str, source: Error| EbpfError::Interface {
        netns: ns.to_string(),
        ifname: ifname.to_string(),
        op,
        source,
    };
    if ifname.contains('\0') || ifname.len() >= libc::IFNAMSIZ {
        return Err(err(
            "check name",
            Error::new(ErrorKind::InvalidInput, "not a valid interface name"),
        ));
    }
    netns::run_in(ns, move || lookup_here(ifname))?.map_err(|(op, e)| err(op, e))
}

/// Runs in the caller's namespace.
fn lookup_here(name: &str) -> Result<(u32, [u8; 6]), (&'static str, Error)> {
    let link = get_link(name)?;
    // A device without a hardware address (addr_len 0) has no
    // IFLA_ADDRESS: all zero, as SIOCGIFHWADDR reports it.
    let mut mac = [0u8; 6];
    if let Some(address) = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(address) => Some(address),
        _ => None,
    }) {
        for (dst, src) in mac.iter_mut().zip(address) {
            *dst = *src;
        }
    }
    Ok((link.header.index, mac))
}

/// The kernel's RTM_NEWLINK answer for the link called `name`.
fn get_link(name: &str) -> Result<LinkMessage, (&'static str, Error)> {
    let socket = open_socket().map_err(|e| ("open netlink socket", e))?;

    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(msg));
    req.header.flags = NLM_F_REQUEST;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0).map_err(|e| ("get link", e))?;

    loop {
        let (answer, _) = socket.recv_from_full().map_err(|e| ("get link", e))?;
        let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer).map_err(|e| {
            (
                "get link",
                Error::new(ErrorKind::InvalidData, e.to_string()),
            )
        })?;
        if answer.header.sequence_number != req.header.sequence_number {
            continue;
        }
        return match answer.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => Ok(link),
            NetlinkPayload::Error(e) if e.code.is_some() => Err(("get link", e.to_io())),
            other => Err((
                "get link",
                Error::new(
                    ErrorKind::InvalidData,
                    format!("unexpected answer: {other:?}"),
                ),
            )),
        };
    }
}

/// A route netlink socket of the calling thread's namespace, talking to
/// the kernel.
fn open_socket() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}
