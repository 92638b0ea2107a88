//! Clap value parsers for dplab's named kinds (datapaths, targets,
//! overlays, workloads, tools, ...), built from each kind's `ALL` list,
//! `name()` and `FromStr`: `--help` lists the possible values, and an
//! unknown value is rejected with the kind's own message, which lists the
//! valid names. A new variant needs no edit here; a new kind, one line in
//! [`named_kinds!`].

use std::ffi::OsStr;
use std::fmt::Display;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};

use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::workload::{Tool, Workload};

/// A closed set of names, each parsed into one value.
pub trait NamedKind: FromStr<Err: Display> + Copy + Send + Sync + 'static {
    fn all() -> &'static [Self];
    fn kind_name(self) -> &'static str;
}

macro_rules! named_kinds {
    ($($kind:ty),* $(,)?) => {$(
        impl NamedKind for $kind {
            fn all() -> &'static [Self] {
                &<$kind>::ALL
            }
            fn kind_name(self) -> &'static str {
                self.name()
            }
        }
    )*};
}

named_kinds!(Datapath, ProxyKind, Target, Overlay, Workload, Tool);

/// The value parser of kind `T`, e.g. `value_parser = kind::<Datapath>()`.
pub fn kind<T: NamedKind>() -> KindParser<T> {
    KindParser(PhantomData)
}

#[derive(Clone)]
pub struct KindParser<T>(PhantomData<T>);

impl<T: NamedKind> TypedValueParser for KindParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // Through clap's own string parser, for its "invalid value" wording.
        let parse = |text: &str| text.parse::<T>().map_err(|e| e.to_string());
        parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::all().iter().map(|v| PossibleValue::new(v.kind_name())),
        ))
    }
}

/// `--duration`: 10s, 500ms, 2m (a bare number is seconds).
pub fn duration(text: &str) -> Result<Duration, String> {
    crate::topology::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Probe {
        #[arg(long, value_parser = kind::<Datapath>())]
        datapath: Datapath,
    }

    #[test]
    fn every_name_parses_and_unknown_ones_list_the_valid() {
        for d in Datapath::ALL {
            let p = Probe::try_parse_from(["t", "--datapath", d.name()]).unwrap();
            assert_eq!(p.datapath, d);
        }
        let err = Probe::try_parse_from(["t", "--datapath", "vethrouted"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown datapath"), "{err}");
        for d in Datapath::ALL {
            assert!(err.contains(d.name()), "{err}");
        }
    }

    #[test]
    fn help_lists_the_possible_values() {
        let mut cmd = <Probe as clap::CommandFactory>::command();
        let help = cmd.render_long_help().to_string();
        for d in Datapath::ALL {
            assert!(help.contains(d.name()), "{help}");
        }
    }
}
