//! Attaching the run's tc programs inside lab namespaces, keeping the
//! attachments pinned in the run's `links/` folder so they outlive this
//! process, and detaching them.

use std::path::Path;

use aya::programs::links::{FdLink, LinkOrder, PinnedLink};
use aya::programs::tc::{SchedClassifier, TcAttachOptions, TcAttachType};

use super::loader::LbProgram;
use super::{pins, EbpfError, Result};
use crate::netns;

/// A program attached with a pinned TCX link.
struct Attachment {
    netns: String,
    ifname: String,
    direction: &'static str,
    link: PinnedLink,
}

/// The attachments of one run.
pub(super) struct Attachments {
    run_id: String,
    links: Vec<Attachment>,
}

impl Attachments {
    /// Picks up the link pins an earlier process of this run left.
    pub(super) fn recover(run_id: &str) -> Result<Self> {
        let links_dir = pins::links_dir(run_id)?;
        let mut links = Vec::new();
        for entry in std::fs::read_dir(&links_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let Some((netns, ifname, direction)) = parse_link_pin_name(&path) else {
                continue;
            };
            if let Ok(link) = PinnedLink::from_pin(&path) {
                links.push(Attachment {
                    netns,
                    ifname,
                    direction,
                    link,
                });
            }
        }
        Ok(Attachments {
            run_id: run_id.to_string(),
            links,
        })
    }

    /// Attaches `classifier` (the loaded `program`) at `attach_type` of
    /// `ifname` in namespace `ns`, and pins the link.
    pub(super) fn attach(
        &mut self,
        classifier: &mut SchedClassifier,
        program: LbProgram,
        ns: &str,
        ifname: &str,
        attach_type: TcAttachType,
    ) -> Result<()> {
        let direction = match attach_type {
            TcAttachType::Egress => "egress",
            _ => "ingress",
        };
        let attach_err = |source| EbpfError::Attach {
            program: program.name(),
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            source: Box::new(source),
        };
        let pin_path = pins::links_dir(&self.run_id)?.join(link_pin_name(ns, ifname, direction));
        // The interface name resolves, and the TCX link attaches, in the
        // calling thread's namespace.
        let link_id = netns::run_in(ns, || {
            classifier.attach_with_options(
                ifname,
                attach_type,
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
        let link = link.pin(&pin_path).map_err(|source| EbpfError::PinLink {
            path: pin_path.clone(),
            source: Box::new(source),
        })?;
        self.links.push(Attachment {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
            direction,
            link,
        });
        Ok(())
    }

    /// (netns, ifname, direction) of every attachment.
    pub(super) fn list(&self) -> Vec<(String, String, &'static str)> {
        self.links
            .iter()
            .map(|a| (a.netns.clone(), a.ifname.clone(), a.direction))
            .collect()
    }

    /// Detaches every program (unpins and closes the links). Keeps going on
    /// errors and reports them all.
    pub(super) fn detach_all(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        for attachment in self.links.drain(..) {
            let what = format!(
                "{}/{} {}",
                attachment.netns, attachment.ifname, attachment.direction
            );
            match attachment.link.unpin() {
                Ok(fd_link) => drop(fd_link),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("unpin link of {what}: {e}")),
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
}

/// Link pins are named `<netns>__<ifname>__<direction>`; netns and interface
/// names never hold "__" in dplab (run id + short names).
fn link_pin_name(ns: &str, ifname: &str, direction: &str) -> String {
    format!("{ns}__{ifname}__{direction}")
}

fn parse_link_pin_name(path: &Path) -> Option<(String, String, &'static str)> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.rsplitn(3, "__");
    let direction = match parts.next()? {
        "ingress" => "ingress",
        "egress" => "egress",
        _ => return None,
    };
    let ifname = parts.next()?.to_string();
    let ns = parts.next()?.to_string();
    Some((ns, ifname, direction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_round_trip() {
        let name = link_pin_name("dl3f9a-node1", "h-pod-a", "ingress");
        let parsed = parse_link_pin_name(Path::new(&name)).unwrap();
        assert_eq!(parsed, ("dl3f9a-node1".into(), "h-pod-a".into(), "ingress"));
    }
}
