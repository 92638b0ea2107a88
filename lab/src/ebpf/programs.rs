//! The three objects of one load balancer, each loaded when one of its
//! programs is first needed and each program verified then: a lab uses a
//! few of the five, and loading an object (aya's loader parses the kernel's
//! BTF every time) and verifying are most of the cost of setting one up.

use std::path::{Path, PathBuf};

use aya::programs::tc::SchedClassifier;
use aya::Ebpf;

use super::loader::{classifier, classifier_mut, ensure_loaded, load_object, LbProgram};
use super::{objects, EbpfError, Result};

/// Which object holds a program, and its embedded bytes.
#[derive(Clone, Copy)]
enum Object {
    Veth,
    Pod,
    Netdev,
}

impl Object {
    fn of(program: LbProgram) -> Object {
        match program {
            LbProgram::VethIngress => Object::Veth,
            LbProgram::PodEgress | LbProgram::PodIngress => Object::Pod,
            LbProgram::NetdevIngress | LbProgram::NetdevEgress => Object::Netdev,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Object::Veth => "tc_veth_lb.o",
            Object::Pod => "tc_pod_lb.o",
            Object::Netdev => "tc_netdev_lb.o",
        }
    }

    fn bytes(self) -> Result<&'static [u8]> {
        match self {
            Object::Veth => objects::veth(),
            Object::Pod => objects::pod(),
            Object::Netdev => objects::netdev(),
        }
        .ok_or_else(|| {
            EbpfError::Unavailable("eBPF objects were not compiled into this build".into())
        })
    }
}

pub(super) struct Programs {
    maps_dir: PathBuf,
    objects: [Option<Ebpf>; 3],
}

impl Programs {
    /// Loads the first object (whose maps the caller takes); the others
    /// wait until needed. All share the maps pinned in `maps_dir`.
    pub(super) fn new(maps_dir: &Path) -> Result<Programs> {
        let mut programs = Programs {
            maps_dir: maps_dir.to_path_buf(),
            objects: [None, None, None],
        };
        programs.object_mut(Object::Veth)?;
        Ok(programs)
    }

    /// The object that defines every map, loaded.
    pub(super) fn maps_object(&mut self) -> Result<&mut Ebpf> {
        self.object_mut(Object::Veth)
    }

    fn object_mut(&mut self, which: Object) -> Result<&mut Ebpf> {
        let slot = &mut self.objects[which as usize];
        if slot.is_none() {
            *slot = Some(load_object(which.name(), which.bytes()?, &self.maps_dir)?);
        }
        Ok(slot.as_mut().expect("just loaded"))
    }

    /// `program`, loaded and verified (its object too if need be).
    pub(super) fn loaded(&mut self, program: LbProgram) -> Result<&mut SchedClassifier> {
        let object = self.object_mut(Object::of(program))?;
        ensure_loaded(object, program)?;
        classifier_mut(object, program)
    }

    /// `program` if it is loaded already.
    pub(super) fn get(&self, program: LbProgram) -> Option<&SchedClassifier> {
        let object = self.objects[Object::of(program) as usize].as_ref()?;
        classifier(object, program).ok().filter(|c| c.fd().is_ok())
    }
}
