//! How tc programs are attached: TCX links (Linux >= 6.6) or, on older
//! kernels, a clsact qdisc with a cls_bpf direct-action filter made over
//! netlink. The choice is made by trying TCX first, unless
//! `DPLAB_TC_ATTACH` forces one (so both paths can be tested on a new
//! kernel).

use std::fmt;
use std::str::FromStr;

use super::EbpfError;

/// The environment variable that forces a mode: `tcx` or `netlink`.
pub const FORCE_ENV: &str = "DPLAB_TC_ATTACH";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcAttachMode {
    /// A BPF link of type TCX per program, pinned in the run's bpffs folder.
    Tcx,
    /// A clsact qdisc per link and a cls_bpf filter per program, both
    /// journalled and removed by name.
    Netlink,
}

impl TcAttachMode {
    pub const fn name(self) -> &'static str {
        match self {
            TcAttachMode::Tcx => "tcx",
            TcAttachMode::Netlink => "netlink",
        }
    }

    /// The mode `DPLAB_TC_ATTACH` forces, if it is set (empty counts as unset).
    pub fn forced() -> Result<Option<TcAttachMode>, EbpfError> {
        match std::env::var(FORCE_ENV) {
            Ok(v) if !v.is_empty() => v
                .parse()
                .map(Some)
                .map_err(|e| EbpfError::BadSetting(format!("{FORCE_ENV}: {e}"))),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for TcAttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TcAttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcx" => Ok(TcAttachMode::Tcx),
            "netlink" => Ok(TcAttachMode::Netlink),
            other => Err(format!(
                "unknown tc attach mode \"{other}\" (known: tcx, netlink)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [TcAttachMode::Tcx, TcAttachMode::Netlink] {
            assert_eq!(m.name().parse::<TcAttachMode>().unwrap(), m);
        }
        assert!("clsact".parse::<TcAttachMode>().is_err());
    }
}
