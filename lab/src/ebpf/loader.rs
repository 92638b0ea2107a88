//! Loading the load balancer objects: the programs they hold, verifying them,
//! and taking their maps.

use std::path::Path;

use aya::programs::tc::SchedClassifier;
use aya::{Ebpf, EbpfLoader};

use super::{EbpfError, Result};

/// The programs of the three objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbProgram {
    /// tc ingress of a pod's host-side veth (veth-ebpf host routing).
    VethIngress,
    /// tc egress of a pod's eth0, inside the pod (the eBPF proxy on other
    /// wirings).
    PodEgress,
    /// tc ingress of a pod's eth0, inside the pod.
    PodIngress,
    /// tc ingress of a node's underlay link or VXLAN device.
    NetdevIngress,
    /// tc egress of a node's underlay link or VXLAN device.
    NetdevEgress,
}

impl LbProgram {
    pub const ALL: [LbProgram; 5] = [
        LbProgram::VethIngress,
        LbProgram::PodEgress,
        LbProgram::PodIngress,
        LbProgram::NetdevIngress,
        LbProgram::NetdevEgress,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            LbProgram::VethIngress => "veth_ingress",
            LbProgram::PodEgress => "pod_egress",
            LbProgram::PodIngress => "pod_ingress",
            LbProgram::NetdevIngress => "netdev_ingress",
            LbProgram::NetdevEgress => "netdev_egress",
        }
    }
}

/// Loads an object's maps (pinned by name under `pin_dir`, or reused from
/// there) and its programs' bytecode, not yet verified.
pub(super) fn load_object(name: &'static str, bytes: &[u8], pin_dir: &Path) -> Result<Ebpf> {
    EbpfLoader::new()
        .default_map_pin_directory(pin_dir)
        .load(bytes)
        .map_err(|source| EbpfError::LoadObject {
            object: name,
            source: Box::new(source),
        })
}

/// Loads (verifies) one program; a rejection carries the verifier log.
pub(super) fn load_program(object: &mut Ebpf, program: LbProgram) -> Result<()> {
    classifier_mut(object, program)?
        .load()
        .map_err(|source| EbpfError::Program {
            program: program.name(),
            op: "load",
            source: Box::new(source),
        })
}

/// Loads `program` unless it is loaded already.
pub(super) fn ensure_loaded(object: &mut Ebpf, program: LbProgram) -> Result<()> {
    if classifier(object, program)?.fd().is_ok() {
        return Ok(());
    }
    load_program(object, program)
}

pub(super) fn classifier(object: &Ebpf, program: LbProgram) -> Result<&SchedClassifier> {
    let prog = object
        .program(program.name())
        .ok_or_else(|| missing_program(program))?;
    prog.try_into().map_err(|source| EbpfError::Program {
        program: program.name(),
        op: "use as tc classifier",
        source: Box::new(source),
    })
}

pub(super) fn classifier_mut(
    object: &mut Ebpf,
    program: LbProgram,
) -> Result<&mut SchedClassifier> {
    let prog = object
        .program_mut(program.name())
        .ok_or_else(|| missing_program(program))?;
    prog.try_into().map_err(|source| EbpfError::Program {
        program: program.name(),
        op: "use as tc classifier",
        source: Box::new(source),
    })
}

fn missing_program(program: LbProgram) -> EbpfError {
    EbpfError::Program {
        program: program.name(),
        op: "find in object",
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    }
}

/// Takes map `name` out of `object`, typed.
pub(super) fn take_map<T>(object: &mut Ebpf, name: &'static str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = object.take_map(name).ok_or_else(|| EbpfError::Map {
        map: name,
        op: "find in object".into(),
        source: Box::new(aya::maps::MapError::InvalidName {
            name: name.to_string(),
        }),
    })?;
    T::try_from(map).map_err(|source| EbpfError::Map {
        map: name,
        op: "open with its key and value types".into(),
        source: Box::new(source),
    })
}

/// Loads (verifies) classifier `program` of an object given as bytes and
/// drops it again, with the same error a lab load would give: a rejection
/// carries the whole verifier log. For tests and diagnosis of new programs.
pub fn check_classifier(object: &'static str, bytes: &[u8], program: &'static str) -> Result<()> {
    let mut ebpf = EbpfLoader::new()
        .load(bytes)
        .map_err(|source| EbpfError::LoadObject {
            object,
            source: Box::new(source),
        })?;
    let prog = ebpf.program_mut(program).ok_or(EbpfError::Program {
        program,
        op: "find",
        source: Box::new(aya::programs::ProgramError::NotLoaded),
    })?;
    let classifier: &mut SchedClassifier =
        prog.try_into().map_err(|source| EbpfError::Program {
            program,
            op: "use as tc classifier",
            source: Box::new(source),
        })?;
    classifier.load().map_err(|source| EbpfError::Program {
        program,
        op: "load",
        source: Box::new(source),
    })
}
