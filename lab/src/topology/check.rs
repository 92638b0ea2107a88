//! What every check of a topology needs: the file and text to point into,
//! one error constructor naming file, line and field, and the parsers of
//! names, addresses and CIDRs that all sections share.

use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use ipnet::Ipv4Net;
use toml::Spanned;

use super::error::TopologyError;

/// Node and pod names become namespace names (`dl3f9a-<name>`).
const NAME_MAX: usize = 40;

/// Collects the context every check needs to point at a place in the file.
pub(super) struct Checker<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Checker<'_> {
    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: String,
    ) -> Result<T, TopologyError> {
        Err(TopologyError::at(
            self.path, self.text, span, field, message,
        ))
    }

    pub(super) fn name(
        &self,
        value: &Spanned<String>,
        field: &str,
    ) -> Result<String, TopologyError> {
        let name = value.get_ref();
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name.is_empty() || name.len() > NAME_MAX || !ok_chars || name.starts_with('-') {
            return self.err(
                value.span(),
                field,
                format!(
                    "\"{name}\" is not a valid name: use 1 to {NAME_MAX} lower-case letters, digits and '-', not starting with '-'"
                ),
            );
        }
        if name == crate::names::UNDERLAY_NS {
            return self.err(
                value.span(),
                field,
                format!("\"{name}\" is reserved for the namespace of the underlay switch"),
            );
        }
        Ok(name.clone())
    }

    pub(super) fn ipv4(
        &self,
        value: &Spanned<String>,
        field: &str,
    ) -> Result<Ipv4Addr, TopologyError> {
        Ipv4Addr::from_str(value.get_ref().trim()).or_else(|_| {
            self.err(
                value.span(),
                field,
                format!("\"{}\" is not an IPv4 address", value.get_ref()),
            )
        })
    }

    pub(super) fn cidr(
        &self,
        value: &Spanned<String>,
        field: &str,
    ) -> Result<Ipv4Net, TopologyError> {
        let net = Ipv4Net::from_str(value.get_ref().trim()).or_else(|_| {
            self.err(
                value.span(),
                field,
                format!(
                    "\"{}\" is not an IPv4 CIDR like 192.168.10.0/24",
                    value.get_ref()
                ),
            )
        })?;
        if net.trunc() != net {
            return self.err(
                value.span(),
                field,
                format!("\"{net}\" has host bits set; did you mean {}?", net.trunc()),
            );
        }
        if net.prefix_len() > 30 {
            return self.err(
                value.span(),
                field,
                format!("\"{net}\" is too small: at most /30"),
            );
        }
        Ok(net)
    }
}

pub(super) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An address a pod may hold: inside the CIDR, neither network nor broadcast.
pub(super) fn is_host_of(cidr: Ipv4Net, ip: Ipv4Addr) -> bool {
    cidr.contains(&ip) && ip != cidr.network() && ip != cidr.broadcast()
}
