//! Names of everything dplab creates: every kernel object carries `dl` plus
//! the run id, so runs never collide and `dplab cleanup` can find leftovers.

use std::fmt;

/// Linux interface names hold at most 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Prefix of every namespace and link dplab creates.
pub const PREFIX: &str = "dl";

/// Name of a multi-node lab's switch namespace (after the run prefix); no
/// node or pod may take it.
pub const UNDERLAY_NS: &str = "underlay";

/// Names (after the run prefix) of a node's devices towards the other
/// nodes: its underlay link, and its VXLAN device on vxlan labs.
pub const UNDERLAY_LINK: &str = "ul";
pub const VXLAN_LINK: &str = "vx";

/// Where run journals live.
pub const STATE_DIR: &str = "/run/dplab";

/// The bpffs folder under which each run pins its eBPF objects (in a
/// folder named after the run; see `ebpf::pins`).
pub const BPFFS_DIR: &str = "/sys/fs/bpf/dplab";

/// A short run id: 4 lower-case hex digits, e.g. `3f9a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    /// Picks a fresh id whose state folder and namespaces do not exist yet.
    pub fn fresh() -> RunId {
        loop {
            let id = RunId(format!("{:04x}", rand::random::<u16>()));
            let taken = std::path::Path::new(STATE_DIR).join(&id.0).exists()
                || !crate::netns::list_with_prefix(&id.prefix()).is_empty();
            if !taken {
                return id;
            }
        }
    }

    /// Accepts a run id typed by a user (`3f9a` or `dl3f9a`).
    pub fn parse(text: &str) -> Option<RunId> {
        let id = text.strip_prefix(PREFIX).unwrap_or(text);
        (id.len() == 4
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| RunId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `dl3f9a-`: what every object of this run starts with.
    pub fn prefix(&self) -> String {
        format!("{PREFIX}{}-", self.0)
    }

    /// Namespace of a node or pod: `dl3f9a-node1`, `dl3f9a-pod-a`.
    pub fn netns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// A link name in a node namespace: `dl3f9a-` plus a short role and index
    /// (e.g. `v0`, `br0`), at most 15 bytes.
    pub fn link(&self, short: &str) -> String {
        let name = format!("{}{short}", self.prefix());
        debug_assert!(name.len() <= IFNAME_MAX, "link name {name} too long");
        name
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(STATE_DIR).join(&self.0)
    }

    pub fn bpffs_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(BPFFS_DIR).join(&self.0)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an interface name: 1 to 15 bytes, no '/', ':' or white space.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name \"{name}\" is {} bytes; Linux allows 1 to {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!(
            "interface name \"{name}\" contains '/', ':' or white space"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_parses_with_or_without_prefix() {
        assert_eq!(RunId::parse("3f9a").unwrap().as_str(), "3f9a");
        assert_eq!(RunId::parse("dl3f9a").unwrap().as_str(), "3f9a");
        assert!(RunId::parse("3F9A").is_none());
        assert!(RunId::parse("3f9").is_none());
        assert!(RunId::parse("zzzz").is_none());
    }

    #[test]
    fn names_carry_the_run_prefix() {
        let id = RunId::parse("3f9a").unwrap();
        assert_eq!(id.netns("node1"), "dl3f9a-node1");
        assert_eq!(id.link("br0"), "dl3f9a-br0");
    }

    #[test]
    fn interface_names_must_fit_ifnamsiz() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("abcdefghijklmno").is_ok());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
    }
}
