//! A lab built in process through the real [`Lab::up`], as `dplab up`
//! builds one, and torn down when dropped: a test that panics leaves
//! nothing behind. The teardown report must be clean, unless the test is
//! already panicking (then its own failure is the one to see).

use std::ops::{Deref, DerefMut};
use std::path::Path;

use dplab::kinds::{Datapath, ProxyKind};
use dplab::lab::Lab;
use dplab::names::RunId;
use dplab::teardown::TeardownReport;

pub struct TestLab {
    lab: Option<Lab>,
}

impl TestLab {
    /// Builds the lab of topology `toml` (TOML text) with `datapath` and
    /// `proxy` under a fresh run id. Call inside a tokio runtime.
    pub async fn up(toml: &str, datapath: Datapath, proxy: ProxyKind) -> anyhow::Result<TestLab> {
        let plan = dplab::topology::parse(Path::new("test.toml"), toml)?;
        let lab = Lab::up(&plan, datapath, proxy, None, RunId::fresh()).await?;
        Ok(TestLab { lab: Some(lab) })
    }

    /// Tears the lab down now and asserts the report is clean.
    pub fn down(mut self) {
        let report = self.lab.take().expect("lab up").down();
        assert_clean(&report);
    }
}

fn assert_clean(report: &TeardownReport) {
    assert!(report.is_clean(), "teardown: {:?}", report.errors);
}

impl Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        self.lab.as_ref().expect("lab up")
    }
}

impl DerefMut for TestLab {
    fn deref_mut(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("lab up")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            let report = lab.down();
            if !std::thread::panicking() {
                assert_clean(&report);
            }
        }
    }
}
