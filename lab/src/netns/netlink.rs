//! One rtnetlink connection per namespace, opened from a thread that entered
//! it: a netlink socket belongs to the namespace it was created in, so the
//! handle can then be used from any task.

use super::{run_in, NetnsError};

/// Opens an rtnetlink connection inside namespace `name`; its connection task
/// runs on the current tokio runtime.
pub fn handle_in(name: &str) -> Result<rtnetlink::Handle, NetnsError> {
    let runtime = tokio::runtime::Handle::current();
    run_in(name, move || connect_here(&runtime))?.map_err(socket_error(name))
}

/// Opens an rtnetlink connection in the calling thread's namespace, with
/// its connection task on `runtime`.
fn connect_here(runtime: &tokio::runtime::Handle) -> std::io::Result<rtnetlink::Handle> {
    // The socket registers with the runtime's reactor.
    let _entered = runtime.enter();
    let (connection, handle, _) = rtnetlink::new_connection()?;
    runtime.spawn(connection);
    Ok(handle)
}

/// Every connection is a socket, and a thousand pods are a thousand
/// sockets: the common soft limit of 1024 open files is too low. Raises it
/// as far as needed (never past the hard limit) before opening them.
fn allow_open_files(names: &[String]) -> Result<(), NetnsError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Some(first) = names.first() else {
        return Ok(());
    };
    let error = |e: std::io::Error| NetnsError::Io {
        name: first.clone(),
        op: "raise the open files limit for one netlink socket per namespace",
        source: e,
    };
    let open_now = std::fs::read_dir("/proc/self/fd").map_err(error)?.count() as u64;
    // Room for the sockets plus what setup opens beside them.
    let needed = open_now + names.len() as u64 + 256;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| error(e.into()))?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(error(std::io::Error::other(format!(
            "{} namespaces need {needed} open files; the hard limit is {hard} (ulimit -Hn)",
            names.len()
        ))));
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard).map_err(|e| error(e.into()))
}

fn socket_error(name: &str) -> impl FnOnce(std::io::Error) -> NetnsError + '_ {
    move |source| NetnsError::Io {
        name: name.to_string(),
        op: "open rtnetlink socket",
        source,
    }
}

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{IpVlanMode, LinkAttribute, MacVlanMode};
use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::{LinkBridge, LinkIpVlan, LinkMacVlan, LinkUnspec, LinkVeth, RouteMessageBuilder};

#[derive(Debug, thiserror::Error)]
#[error("netns {netns}: {op} {object}: {source}")]
pub struct NetlinkError {
    pub netns: String,
    pub op: &'static str,
    pub object: String,
    #[source]
    pub source: Box<rtnetlink::Error>,
}

impl NetlinkError {
    /// The errno the kernel answered, if it was a kernel error.
    pub fn errno(&self) -> Option<i32> {
        match self.source.as_ref() {
            rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
            _ => None,
        }
    }
}

/// Link, address and route operations inside one namespace.
pub struct Netlink {
    netns: String,
    handle: rtnetlink::Handle,
    /// Link indexes already known (from creation echoes or lookups), so
    /// that every later request on a link costs one round trip, not two.
    indexes: Mutex<HashMap<String, u32>>,
}

/// ipvlan modes dplab uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L2,
    L3,
}

impl Netlink {
    /// Opens a connection inside namespace `netns`.
    pub fn open(netns: &str) -> Result<Netlink, super::NetnsError> {
        Ok(Netlink::with_handle(netns, handle_in(netns)?))
    }

    /// Wraps a connection opened inside namespace `netns`.
    pub fn with_handle(netns: &str, handle: rtnetlink::Handle) -> Netlink {
        // Loopback is index 1 in every namespace (LOOPBACK_IFINDEX).
        let known = HashMap::from([("lo".to_string(), 1)]);
        Netlink {
            netns: netns.to_string(),
            handle,
            indexes: Mutex::new(known),
        }
    }

    /// Opens a connection inside every namespace of `names` (which exist),
    /// on a few threads.
    pub fn open_all(names: &[String]) -> Result<Vec<Netlink>, super::NetnsError> {
        allow_open_files(names)?;
        let runtime = tokio::runtime::Handle::current();
        let opened = super::pool::run_in_each(names, |_| connect_here(&runtime))?;
        Self::wrap_all(names, opened)
    }

    /// Creates every namespace of `names` and opens a connection inside
    /// each while creating it, on a few threads.
    pub fn create_all(names: &[String]) -> Result<Vec<Netlink>, super::NetnsError> {
        allow_open_files(names)?;
        let runtime = tokio::runtime::Handle::current();
        let opened = super::pool::create_all(names, |_| connect_here(&runtime))?;
        Self::wrap_all(names, opened)
    }

    fn wrap_all(
        names: &[String],
        opened: Vec<std::io::Result<rtnetlink::Handle>>,
    ) -> Result<Vec<Netlink>, super::NetnsError> {
        names
            .iter()
            .zip(opened)
            .map(|(name, handle)| {
                Ok(Netlink::with_handle(
                    name,
                    handle.map_err(socket_error(name))?,
                ))
            })
            .collect()
    }

    /// The namespace this connection lives in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Records that link `name` has index `index` (learnt elsewhere, e.g.
    /// the pod end of a veth pair created from the node).
    pub fn remember(&self, name: &str, index: u32) {
        self.known().insert(name.to_string(), index);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.indexes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    pub(super) fn err(
        &self,
        op: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(rtnetlink::Error) -> NetlinkError + '_ {
        let object = object.into();
        move |source| NetlinkError {
            netns: self.netns.clone(),
            op,
            object,
            source: Box::new(source),
        }
    }

    /// Index of the link called `name`.
    pub async fn index(&self, name: &str) -> Result<u32, NetlinkError> {
        if let Some(&index) = self.known().get(name) {
            return Ok(index);
        }
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links
            .try_next()
            .await
            .map_err(self.err("find link", name))?
        {
            Some(msg) => {
                self.remember(name, msg.header.index);
                Ok(msg.header.index)
            }
            None => unreachable!("rtnetlink answers ENODEV for a missing link"),
        }
    }

    pub async fn add_veth(&self, name: &str, peer: &str) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(self.err("create veth", format!("{name}/{peer}")))
    }

    /// Creates a link from a prepared message (for kinds without a helper).
    pub async fn add_link(
        &self,
        msg: rtnetlink::packet_route::link::LinkMessage,
        what: &str,
    ) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(self.err("create", what))
    }

    /// The link's MAC address.
    pub async fn mac(&self, name: &str) -> Result<Vec<u8>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = links
            .try_next()
            .await
            .map_err(self.err("find link", name))?;
        Ok(msg
            .and_then(|m| {
                m.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::Address(mac) => Some(mac),
                    _ => None,
                })
            })
            .unwrap_or_default())
    }

    /// A VXLAN device as Flannel makes it: no learning, static FDB entries
    /// added by [`Self::add_fdb`], local address and parent device given.
    pub async fn add_vxlan(
        &self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
        parent: &str,
        port: u16,
    ) -> Result<(), NetlinkError> {
        let parent_index = self.index(parent).await?;
        let msg = rtnetlink::LinkVxlan::new(name, vni)
            .dev(parent_index)
            .local(local)
            .port(port)
            .learning(false)
            .build();
        self.add_link(msg, name).await
    }

    /// A permanent neighbour entry: `ip` is at `mac` on `dev`.
    pub async fn add_neighbour(
        &self,
        dev: &str,
        ip: Ipv4Addr,
        mac: &[u8],
    ) -> Result<(), NetlinkError> {
        use rtnetlink::packet_route::neighbour::NeighbourState;
        let index = self.index(dev).await?;
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(ip))
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .execute()
            .await
            .map_err(self.err("add neighbour", format!("{ip} on {dev}")))
    }

    /// A permanent FDB entry of a VXLAN device: frames for `mac` go to the
    /// VTEP at `remote`.
    pub async fn add_fdb(
        &self,
        dev: &str,
        mac: &[u8],
        remote: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        use rtnetlink::packet_route::neighbour::{NeighbourFlags, NeighbourState};
        let index = self.index(dev).await?;
        self.handle
            .neighbours()
            .add_bridge(index, mac)
            .destination(IpAddr::V4(remote))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .execute()
            .await
            .map_err(self.err("add fdb entry", format!("{remote} on {dev}")))
    }

    pub async fn add_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(self.err("create bridge", name))
    }

    pub async fn add_macvlan(&self, name: &str, parent: &str) -> Result<(), NetlinkError> {
        let parent_index = self.index(parent).await?;
        self.handle
            .link()
            .add(LinkMacVlan::new(name, parent_index, MacVlanMode::Bridge).build())
            .execute()
            .await
            .map_err(self.err("create macvlan", name))
    }

    pub async fn add_ipvlan(
        &self,
        name: &str,
        parent: &str,
        mode: IpvlanMode,
    ) -> Result<(), NetlinkError> {
        let parent_index = self.index(parent).await?;
        let mode = match mode {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
        };
        self.handle
            .link()
            .add(LinkIpVlan::new(name, parent_index, mode).build())
            .execute()
            .await
            .map_err(self.err("create ipvlan", name))
    }

    /// Changes link `name` with one RTM_SETLINK built by `change`.
    pub async fn set_link(
        &self,
        name: &str,
        op: &'static str,
        change: impl FnOnce(
            rtnetlink::LinkMessageBuilder<LinkUnspec>,
        ) -> rtnetlink::LinkMessageBuilder<LinkUnspec>,
    ) -> Result<(), NetlinkError> {
        let index = self.index(name).await?;
        self.handle
            .link()
            .set(change(LinkUnspec::new_with_index(index)).build())
            .execute()
            .await
            .map_err(self.err(op, name))
    }

    pub async fn set_up(&self, name: &str) -> Result<(), NetlinkError> {
        self.set_link(name, "set up", |l| l.up()).await
    }

    /// Plugs link `name` into bridge `bridge`.
    pub async fn set_master(&self, name: &str, bridge: &str) -> Result<(), NetlinkError> {
        let bridge_index = self.index(bridge).await?;
        self.set_link(name, "plug into bridge", |l| l.controller(bridge_index))
            .await
    }

    /// Moves link `name` into namespace `target` and names it `new_name`
    /// there (in one message, so no name clash in either namespace).
    pub async fn move_to(
        &self,
        name: &str,
        target: &str,
        new_name: &str,
    ) -> Result<(), NetlinkError> {
        let index = self.index(name).await?;
        let ns = super::open(target).map_err(|e| NetlinkError {
            netns: self.netns.clone(),
            op: "open target namespace for",
            object: name.to_string(),
            source: Box::new(rtnetlink::Error::NamespaceError(e.to_string())),
        })?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .setns_by_fd(ns.as_raw_fd())
                    .name(new_name.to_string())
                    .build(),
            )
            .execute()
            .await
            .map_err(self.err(
                "move to namespace",
                format!("{name} -> {target}/{new_name}"),
            ))?;
        self.known().remove(name);
        Ok(())
    }

    pub async fn set_alias(&self, name: &str, alias: &str) -> Result<(), NetlinkError> {
        self.set_link(name, "set alias", |l| l.alias(alias)).await
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.set_link(name, "set mtu", |l| l.mtu(mtu)).await
    }

    pub async fn add_address(
        &self,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let index = self.index(name).await?;
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .map_err(self.err("add address", format!("{ip}/{prefix} on {name}")))
    }

    /// Adds a route to `dest/prefix` out of `dev`, via `gateway` if given
    /// (on-link: the gateway need not be in a connected subnet).
    pub async fn add_route(
        &self,
        dest: Ipv4Addr,
        prefix: u8,
        dev: &str,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        let index = self.index(dev).await?;
        let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, prefix)
            .output_interface(index);
        route = match gateway {
            Some(gw) => route.gateway(gw).onlink(),
            None => route.scope(RouteScope::Link),
        };
        let what = match gateway {
            Some(gw) => format!("{dest}/{prefix} via {gw} dev {dev}"),
            None => format!("{dest}/{prefix} dev {dev}"),
        };
        self.handle
            .route()
            .add(route.build())
            .execute()
            .await
            .map_err(self.err("add route", what))
    }
}
