//! Running a loaded program once on a hand-made frame
//! (BPF_PROG_TEST_RUN), for tests of the programs' logic without devices.

use aya::{TestRun, TestRunOptions};

use super::loader::LbProgram;
use super::{EbpfError, Result, ServiceLb};

/// Result of one BPF_PROG_TEST_RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutcome {
    /// The tc verdict (TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT).
    pub verdict: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

impl ServiceLb {
    /// Runs `program` once on `frame` with BPF_PROG_TEST_RUN (no device: a
    /// redirect shows only as the verdict). Maps are the run's real maps.
    pub fn test_run(&self, program: LbProgram, frame: &[u8]) -> Result<TestRunOutcome> {
        let prog = self.program(program)?;
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            })
            .map_err(|source| EbpfError::Program {
                program: program.name(),
                op: "BPF_PROG_TEST_RUN",
                source: Box::new(source),
            })?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutcome {
            verdict: result.return_value,
            frame: out,
        })
    }
}
