//! Where and how the run's programs attach inside lab namespaces: at tc
//! ingress/egress by TCX link or, where the kernel has no TCX, by clsact
//! qdisc + cls_bpf filter over netlink ([`super::tc_netlink`]); and at a
//! netkit device's own hooks by BPF link ([`super::netkit_link`]). Links
//! are pinned in the run's `links/` folder so they outlive this process;
//! qdiscs and filters are journalled before they are made. Everything is
//! detached by name, by this process or a later one.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, LinkOrder};
use aya::programs::tc::{SchedClassifier, TcAttachOptions};

use super::loader::LbProgram;
use super::netkit_link::{self, NetkitHook};
use super::tc_mode::TcAttachMode;
use super::tc_netlink::{self, FILTER_HANDLE, FILTER_PRIORITY};
use super::{pins, EbpfError, Result};
use crate::ledger::{self, Entry, Ledger};
use crate::names::RunId;
use crate::netns;

/// What keeps one program attached.
enum Hook {
    /// A TCX or netkit BPF link, pinned at this path.
    Pinned(PathBuf),
    /// A cls_bpf filter at FILTER_PRIORITY / FILTER_HANDLE of `direction`.
    ClsBpf,
}

struct Attachment {
    netns: String,
    ifname: String,
    /// `ingress` / `egress` (tc) or a netkit hook name.
    direction: &'static str,
    hook: Hook,
}

impl Attachment {
    /// How it is attached, as results.json names it.
    fn kind(&self) -> &'static str {
        match (&self.hook, self.direction) {
            (Hook::ClsBpf, _) => TcAttachMode::Netlink.name(),
            (Hook::Pinned(_), "ingress" | "egress") => TcAttachMode::Tcx.name(),
            (Hook::Pinned(_), _) => "netkit",
        }
    }
}

/// A clsact qdisc made for the run: (netns, ifname).
type Qdisc = (String, String);

/// The attachments of one run, and how its tc programs attach.
pub(super) struct Attachments {
    run_id: String,
    links: Vec<Attachment>,
    qdiscs: Vec<Qdisc>,
    /// The run's journal, when the run has one (labs and probes do; tests
    /// of the programs alone do not).
    journal: Option<Ledger>,
    tc_mode: Option<TcAttachMode>,
    /// Why TCX was not used, when it was tried and refused.
    tcx_refused: Option<String>,
}

const DIRECTIONS: [&str; 4] = ["ingress", "egress", "netkit-primary", "netkit-peer"];

impl Attachments {
    /// Picks up what an earlier process of this run attached: link pins,
    /// and the qdiscs and filters its journal names.
    pub(super) fn recover(run_id: &str) -> Result<Self> {
        let (links, qdiscs) = recorded(run_id)?;
        let journal = match journaled_run(run_id) {
            Some(run) => Some(Ledger::open(&run).map_err(|e| EbpfError::Journal(e.to_string()))?),
            None => None,
        };
        let recovered_mode = links.iter().find_map(|a| match a.kind() {
            "tcx" => Some(TcAttachMode::Tcx),
            "netlink" => Some(TcAttachMode::Netlink),
            _ => None,
        });
        Ok(Attachments {
            run_id: run_id.to_string(),
            links,
            qdiscs,
            journal,
            tc_mode: TcAttachMode::forced()?.or(recovered_mode),
            tcx_refused: None,
        })
    }

    /// Attaches the loaded `classifier` at tc `direction` (`ingress` or
    /// `egress`) of `ifname` in namespace `ns`: by TCX link, or by netlink
    /// when TCX is forced off or refused (then every later tc attachment of
    /// the run uses netlink too).
    pub(super) fn attach_tc(
        &mut self,
        classifier: &mut SchedClassifier,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        direction: &'static str,
    ) -> Result<()> {
        match self.tc_mode {
            Some(TcAttachMode::Tcx) => self.attach_tcx(classifier, program, ns, ifname, direction),
            Some(TcAttachMode::Netlink) => {
                self.attach_netlink(classifier, program, ns, ifname, direction)
            }
            None => match self.attach_tcx(classifier, program, ns, ifname, direction) {
                Ok(()) => {
                    self.tc_mode = Some(TcAttachMode::Tcx);
                    Ok(())
                }
                Err(tcx) => {
                    self.attach_netlink(classifier, program, ns, ifname, direction)
                        .map_err(|netlink| EbpfError::TcAttach {
                            tcx: tcx.to_string(),
                            netlink: Box::new(netlink),
                        })?;
                    self.tc_mode = Some(TcAttachMode::Netlink);
                    self.tcx_refused = Some(tcx.to_string());
                    Ok(())
                }
            },
        }
    }

    fn attach_tcx(
        &mut self,
        classifier: &mut SchedClassifier,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        direction: &'static str,
    ) -> Result<()> {
        let attach_err = |source| EbpfError::Attach {
            program: program.name(),
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            source: Box::new(source),
        };
        let pin_path = self.pin_path(ns, ifname, direction)?;
        // The interface name resolves, and the TCX link attaches, in the
        // calling thread's namespace.
        let link_id = netns::run_in(ns, || {
            classifier.attach_with_options(
                ifname,
                tc_netlink::attach_type_of(direction),
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
        })?
        .map_err(attach_err)?;
        let link = classifier.take_link(link_id).map_err(attach_err)?;
        let link = FdLink::try_from(link).map_err(|source| EbpfError::LinkFd {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            source: Box::new(source),
        })?;
        // The pin keeps the link (and so the attachment) once the fd closes.
        link.pin(&pin_path).map_err(|source| EbpfError::PinLink {
            path: pin_path.clone(),
            source: Box::new(source),
        })?;
        self.push(ns, ifname, direction, Hook::Pinned(pin_path));
        Ok(())
    }

    fn attach_netlink(
        &mut self,
        classifier: &mut SchedClassifier,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        direction: &'static str,
    ) -> Result<()> {
        let qdisc = (ns.to_string(), ifname.to_string());
        if !self.qdiscs.contains(&qdisc) {
            self.record(Entry::TcQdisc {
                netns: ns.to_string(),
                ifname: ifname.to_string(),
            })?;
            tc_netlink::add_clsact(ns, ifname)?;
            self.qdiscs.push(qdisc);
        }
        self.record(Entry::TcFilter {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction: direction.to_string(),
            priority: FILTER_PRIORITY,
            handle: FILTER_HANDLE,
        })?;
        tc_netlink::attach_filter(classifier, program.name(), ns, ifname, direction)?;
        self.push(ns, ifname, direction, Hook::ClsBpf);
        Ok(())
    }

    /// Attaches the loaded `classifier` at `hook` of the netkit pair whose
    /// primary device is `primary` in namespace `ns`, and pins the link.
    pub(super) fn attach_netkit(
        &mut self,
        classifier: &SchedClassifier,
        program: LbProgram,
        ns: &str,
        primary: &str,
        hook: NetkitHook,
    ) -> Result<()> {
        let netkit_err = |op, source| EbpfError::Netkit {
            program: program.name(),
            netns: ns.to_string(),
            ifname: primary.to_string(),
            hook: hook.name(),
            op,
            source,
        };
        let prog_fd = classifier.fd().map_err(|source| EbpfError::Program {
            program: program.name(),
            op: "take its fd",
            source: Box::new(source),
        })?;
        let pin_path = self.pin_path(ns, primary, hook.name())?;
        // The primary's index, and the link, belong to its namespace.
        let link = netns::run_in(ns, || {
            let index = nix::net::if_::if_nametoindex(primary)
                .map_err(|e| ("find the primary device", std::io::Error::from(e)))?;
            netkit_link::link_create(prog_fd.as_fd(), index, hook)
                .map_err(|e| ("BPF_LINK_CREATE", e))
        })?
        .map_err(|(op, e)| netkit_err(op, e))?;
        netkit_link::pin(link.as_fd(), &pin_path).map_err(|e| netkit_err("pin the link", e))?;
        self.push(ns, primary, hook.name(), Hook::Pinned(pin_path));
        Ok(())
    }

    /// Makes every later tc attachment use `mode`, without trying TCX.
    pub(super) fn set_tc_mode(&mut self, mode: TcAttachMode) {
        self.tc_mode = Some(mode);
    }

    /// How the current attachments are made (`tcx`, `netlink`, `netkit`),
    /// each once, or None when nothing is attached.
    pub(super) fn kinds(&self) -> Option<String> {
        let mut kinds: Vec<&str> = self.links.iter().map(Attachment::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        (!kinds.is_empty()).then(|| kinds.join("+"))
    }

    /// The tc attach mode in use and, when it is netlink because TCX was
    /// refused, why.
    pub(super) fn tc_mode(&self) -> Option<(TcAttachMode, Option<&str>)> {
        self.tc_mode.map(|m| (m, self.tcx_refused.as_deref()))
    }

    /// (netns, ifname, direction) of every attachment.
    pub(super) fn list(&self) -> Vec<(String, String, &'static str)> {
        self.links
            .iter()
            .map(|a| (a.netns.clone(), a.ifname.clone(), a.direction))
            .collect()
    }

    /// Detaches every program: removes the filters, then the qdiscs, and
    /// unpins the links. Keeps going on errors and reports them all.
    pub(super) fn detach_all(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for a in self.links.drain(..) {
            let what = format!("{}/{} {}", a.netns, a.ifname, a.direction);
            let done = match &a.hook {
                Hook::ClsBpf => tc_netlink::detach_filter(
                    &a.netns,
                    &a.ifname,
                    a.direction,
                    FILTER_PRIORITY,
                    FILTER_HANDLE,
                )
                .map(drop)
                .map_err(|e| e.to_string()),
                Hook::Pinned(path) => match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(format!("unpin link {}: {e}", path.display()))
                    }
                    _ => Ok(()),
                },
            };
            if let Err(e) = done {
                errors.push(format!("{what}: {e}"));
            }
        }
        for (ns, ifname) in self.qdiscs.drain(..) {
            if let Err(e) = tc_netlink::delete_clsact(&ns, &ifname) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EbpfError::Teardown {
                run_id: self.run_id.clone(),
                errors,
            })
        }
    }

    fn pin_path(&self, ns: &str, ifname: &str, direction: &str) -> Result<PathBuf> {
        Ok(pins::links_dir(&self.run_id)?.join(link_pin_name(ns, ifname, direction)))
    }

    fn push(&mut self, ns: &str, ifname: &str, direction: &'static str, hook: Hook) {
        self.links.push(Attachment {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            hook,
        });
    }

    /// Journals an object before it is made, if the run has a journal.
    fn record(&self, entry: Entry) -> Result<()> {
        match &self.journal {
            Some(journal) => journal
                .record(&entry)
                .map_err(|e| EbpfError::Journal(e.to_string())),
            None => Ok(()),
        }
    }
}

/// The run's id when it has a journal (labs and probes; not the tests of
/// the programs alone).
fn journaled_run(run_id: &str) -> Option<RunId> {
    RunId::parse(run_id).filter(|r| r.state_dir().join("journal.jsonl").exists())
}

/// What run `run_id` has attached, as its link pins and its journal
/// record it: the attachments and the clsact qdiscs.
fn recorded(run_id: &str) -> Result<(Vec<Attachment>, Vec<Qdisc>)> {
    let mut links = Vec::new();
    for entry in std::fs::read_dir(pins::links_dir(run_id)?)
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if let Some((netns, ifname, direction)) = parse_link_pin_name(&path) {
            links.push(Attachment {
                netns,
                ifname,
                direction,
                hook: Hook::Pinned(path),
            });
        }
    }
    let mut qdiscs = Vec::new();
    if let Some(run) = journaled_run(run_id) {
        for entry in ledger::read_journal(&run).unwrap_or_default() {
            match entry {
                Entry::TcQdisc { netns, ifname } => qdiscs.push((netns, ifname)),
                Entry::TcFilter {
                    netns,
                    ifname,
                    direction,
                    ..
                } => links.push(Attachment {
                    netns,
                    ifname,
                    direction: tc_direction(&direction),
                    hook: Hook::ClsBpf,
                }),
                _ => {}
            }
        }
    }
    Ok((links, qdiscs))
}

/// How the programs of a running lab are attached (`tcx`, `netlink`,
/// `netkit`, `+`-joined), from its link pins and journal, without loading
/// anything; None when it has no eBPF programs.
pub fn recorded_attach_kinds(run_id: &str) -> Option<String> {
    let (links, _) = recorded(run_id).ok()?;
    super::join_attach_kinds(links.iter().map(|a| a.kind().to_string()))
}

fn tc_direction(direction: &str) -> &'static str {
    match direction {
        "egress" => "egress",
        _ => "ingress",
    }
}

/// Link pins are named `<netns>__<ifname>__<direction>`; netns and interface
/// names never hold "__" in dplab (run id + short names).
fn link_pin_name(ns: &str, ifname: &str, direction: &str) -> String {
    format!("{ns}__{ifname}__{direction}")
}

fn parse_link_pin_name(path: &Path) -> Option<(String, String, &'static str)> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.rsplitn(3, "__");
    let last = parts.next()?;
    let direction = DIRECTIONS.into_iter().find(|d| *d == last)?;
    let ifname = parts.next()?.to_string();
    let ns = parts.next()?.to_string();
    Some((ns, ifname, direction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_round_trip() {
        for direction in DIRECTIONS {
            let name = link_pin_name("dl3f9a-node1", "h-pod-a", direction);
            let parsed = parse_link_pin_name(Path::new(&name)).unwrap();
            assert_eq!(parsed, ("dl3f9a-node1".into(), "h-pod-a".into(), direction));
        }
        assert!(parse_link_pin_name(Path::new("dl3f9a-node1__x__sideways")).is_none());
    }
}
