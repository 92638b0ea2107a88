//! Colours of the series (matplotlib's tab10). A proxy keeps its colour in
//! every chart and every run, so charts of different runs read alike.

use plotters::style::RGBColor;

pub(super) const POD_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const P50_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub(super) const P90_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub(super) const P99_COLOUR: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// Series without a fixed meaning (overlays), in order.
pub(super) const PALETTE: [RGBColor; 4] = [
    POD_COLOUR,
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// The service proxies of the contract and their colours; blue stays pod IP.
const PROXY_COLOURS: [(&str, RGBColor); 5] = [
    ("iptables", RGBColor(0xff, 0x7f, 0x0e)),
    ("nftables", RGBColor(0x2c, 0xa0, 0x2c)),
    ("ipvs", RGBColor(0x94, 0x67, 0xbd)),
    ("ebpf", RGBColor(0xd6, 0x27, 0x28)),
    ("socket-lb", RGBColor(0x8c, 0x56, 0x4b)),
];

/// For proxies dplab does not know by name, and for no proxy at all.
const OTHER_COLOURS: [RGBColor; 4] = [
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of each proxy of `proxies` (in the run's order): its own,
/// or the next unused other colour.
pub(super) fn proxy_colours(proxies: &[Option<String>]) -> Vec<RGBColor> {
    let mut others = OTHER_COLOURS.iter().cycle();
    proxies
        .iter()
        .map(|p| {
            PROXY_COLOURS
                .iter()
                .find(|(name, _)| Some(*name) == p.as_deref())
                .map(|(_, c)| *c)
                .unwrap_or_else(|| *others.next().expect("cycle is endless"))
        })
        .collect()
}
