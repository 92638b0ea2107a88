//! tc programs the pre-TCX way (Linux < 6.6), inside a lab namespace: a
//! clsact qdisc on the link and one cls_bpf filter in direct-action mode per
//! program. Unlike TCX links these are not bpffs objects: the caller
//! journals them, and they are removed by name (namespace, link, direction,
//! priority, handle), by this process or by a later teardown.

use aya::programs::tc::{
    self, SchedClassifier, SchedClassifierLink, TcAttachOptions, TcAttachType, TcHandle,
};
use aya::programs::{Link, ProgramError};
use futures::TryStreamExt;
use netlink_packet_route::tc::{TcAttribute, TcHandle as NlTcHandle};

use super::{EbpfError, Result};
use crate::netns;

/// Every dplab filter sits alone at this priority and handle of its
/// direction, so its name is known before it is created (for the journal).
pub const FILTER_PRIORITY: u16 = 1;
pub const FILTER_HANDLE: u32 = 1;

pub(super) fn attach_type_of(direction: &str) -> TcAttachType {
    match direction {
        "egress" => TcAttachType::Egress,
        _ => TcAttachType::Ingress,
    }
}

/// Adds a clsact qdisc to `ifname` in namespace `ns`; Ok(false) if the link
/// already has one.
pub fn add_clsact(ns: &str, ifname: &str) -> Result<bool> {
    let added = netns::run_in(ns, || tc::qdisc_add_clsact(ifname))?;
    match added {
        Ok(()) => Ok(true),
        Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(qdisc_err(ns, ifname, "add", e.to_string())),
    }
}

/// Removes the clsact qdisc of `ifname` in `ns` with every filter on it;
/// Ok(false) when it, the link or the namespace is gone already.
pub fn delete_clsact(ns: &str, ifname: &str) -> Result<bool> {
    // Asking to delete a clsact that is not there answers EINVAL (it does
    // not match the device's default qdisc), like a malformed request.
    if !netns::exists(ns) || !has_clsact(ns, ifname)? {
        return Ok(false);
    }
    let deleted = netns::run_in(ns, || {
        with_rtnetlink(ifname, |handle, index| async move {
            let mut req = handle.qdisc().del(index);
            let msg = req.message_mut();
            msg.header.parent = NlTcHandle::CLSACT;
            msg.header.handle = NlTcHandle::from(0xffff_0000);
            msg.attributes.push(TcAttribute::Kind("clsact".into()));
            req.execute().await
        })
    })?;
    match deleted {
        Ok(()) => Ok(true),
        Err(e) if e.gone() => Ok(false),
        Err(e) => Err(qdisc_err(ns, ifname, "delete", e.message)),
    }
}

/// Whether `ifname` in `ns` has a clsact qdisc (false when the link is
/// gone).
pub fn has_clsact(ns: &str, ifname: &str) -> Result<bool> {
    let found = netns::run_in(ns, || {
        with_rtnetlink(ifname, |handle, index| async move {
            let qdiscs: Vec<_> = handle
                .qdisc()
                .get()
                .index(index)
                .execute()
                .try_collect()
                .await?;
            Ok(qdiscs.iter().any(|q| {
                q.header.index == index
                    && q.attributes
                        .iter()
                        .any(|a| matches!(a, TcAttribute::Kind(k) if k == "clsact"))
            }))
        })
    })?;
    match found {
        Err(e) if e.gone() => Ok(false),
        other => other.map_err(|e| qdisc_err(ns, ifname, "list", e.message)),
    }
}

/// Attaches the loaded `classifier` as a direct-action cls_bpf filter at
/// `direction` of `ifname` in `ns` (the clsact qdisc must exist).
pub(super) fn attach_filter(
    classifier: &mut SchedClassifier,
    program: &'static str,
    ns: &str,
    ifname: &str,
    direction: &'static str,
) -> Result<()> {
    let attach_err = |source| EbpfError::Attach {
        program,
        netns: ns.to_string(),
        ifname: ifname.to_string(),
        direction,
        source: Box::new(source),
    };
    let options = tc::NlOptions {
        priority: FILTER_PRIORITY,
        handle: TcHandle::from(FILTER_HANDLE),
        classid: None,
    };
    let link_id = netns::run_in(ns, || {
        classifier.attach_with_options(
            ifname,
            attach_type_of(direction),
            TcAttachOptions::Netlink(options),
        )
    })?
    .map_err(attach_err)?;
    let link = classifier.take_link(link_id).map_err(attach_err)?;
    // aya detaches a netlink filter when its link value is dropped, by
    // interface index in whatever namespace the dropping thread is in: the
    // wrong one here, and the filter must outlive this process anyway. The
    // value holds no fd and no heap memory; the filter is removed by name
    // (detach_filter) instead.
    std::mem::forget(link);
    Ok(())
}

/// Removes dplab's filter at `direction` of `ifname` in `ns`; Ok(false)
/// when it, the link or the namespace is gone already.
pub fn detach_filter(
    ns: &str,
    ifname: &str,
    direction: &str,
    priority: u16,
    handle: u32,
) -> Result<bool> {
    // Without its qdisc the filter is gone (and asking answers EINVAL).
    if !netns::exists(ns) || !has_clsact(ns, ifname)? {
        return Ok(false);
    }
    let detached = netns::run_in(ns, || {
        let link = SchedClassifierLink::attached(
            ifname,
            attach_type_of(direction),
            priority,
            TcHandle::from(handle),
            None,
        )
        .map_err(ProgramError::IOError)?;
        link.detach()
    })?;
    match detached {
        Ok(()) => Ok(true),
        Err(ProgramError::IOError(e)) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(ProgramError::NetlinkError(e))
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENODEV | libc::EINVAL)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(EbpfError::TcObject {
            object: "cls_bpf filter",
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            op: "delete",
            message: format!("{direction} priority {priority} handle {handle:#x}: {e}"),
        }),
    }
}

/// A failed rtnetlink request: the kernel's errno if it answered one.
struct NlFailure {
    errno: Option<i32>,
    message: String,
}

impl From<rtnetlink::Error> for NlFailure {
    fn from(e: rtnetlink::Error) -> Self {
        let errno = match &e {
            rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
            _ => None,
        };
        NlFailure {
            errno,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for NlFailure {
    fn from(e: std::io::Error) -> Self {
        NlFailure {
            errno: e.raw_os_error(),
            message: e.to_string(),
        }
    }
}

impl NlFailure {
    /// The object (or its link) does not exist.
    fn gone(&self) -> bool {
        matches!(self.errno, Some(libc::ENOENT | libc::ENODEV))
    }
}

/// Runs one rtnetlink request on a connection opened in the calling
/// thread's namespace, with the index of `ifname` there.
fn with_rtnetlink<F, Fut, T>(ifname: &str, request: F) -> std::result::Result<T, NlFailure>
where
    F: FnOnce(rtnetlink::Handle, i32) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, rtnetlink::Error>>,
{
    let index = nix::net::if_::if_nametoindex(ifname).map_err(std::io::Error::from)?;
    // This thread runs no runtime (it was made to enter the namespace): a
    // private one serves the single request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(request(handle, index as i32).await?)
    })
}

fn qdisc_err(ns: &str, ifname: &str, op: &'static str, message: String) -> EbpfError {
    EbpfError::TcObject {
        object: "clsact qdisc",
        netns: ns.to_string(),
        ifname: ifname.to_string(),
        op,
        message,
    }
}
