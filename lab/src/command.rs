//! Running a program inside a lab namespace (iptables-restore,
//! iptables-save, tc) and turning its failure into a [`LabError`] that
//! names the command, the namespace and what the program said.

use std::io::Write;
use std::process::Stdio;

use crate::error::{LabError, Result};
use crate::netns;

/// Runs `program args` inside namespace `ns`, feeding `stdin` if given;
/// returns its standard output. A non-zero exit is an error carrying its
/// standard error.
pub fn run_in(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let what = format!("{program} {} in {ns}", args.join(" "));
    let fail = |message: String| LabError::Command {
        what: what.clone(),
        message,
    };
    let mut cmd = netns::command_in(ns, program)?;
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
