//! `dplab report RESULTS.json [--out DIR]` and `dplab compare A.json B.json`.

use std::path::Path;

use anyhow::Context;

use crate::cli::{bad_input, Failure, EXIT_OK};
use crate::results::schema::SCHEMAS_READ;
use crate::results::{compare, report, Results};

fn load(path: &Path) -> Result<Results, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("{}: cannot read: {e}", path.display())))?;
    let r: Results = serde_json::from_str(&text).map_err(|e| {
        bad_input(format!(
            "{}:{}: not a dplab results file: {e}",
            path.display(),
            e.line()
        ))
    })?;
    if !SCHEMAS_READ.contains(&r.schema.as_str()) {
        return Err(bad_input(format!(
            "{}: schema \"{}\" is not one this dplab reads ({})",
            path.display(),
            r.schema,
            SCHEMAS_READ.join(", ")
        )));
    }
    Ok(r)
}

pub fn report(results: &Path, out: Option<&Path>) -> Result<u8, Failure> {
    let r = load(results)?;
    let dir = out.unwrap_or_else(|| results.parent().unwrap_or(Path::new(".")));
    let written = report::write_report(&r, dir)
        .with_context(|| format!("writing the report into {}", dir.display()))?;
    for f in written {
        println!("{}", f.display());
    }
    Ok(EXIT_OK)
}

pub fn compare(a: &Path, b: &Path, json: bool) -> Result<u8, Failure> {
    let (ra, rb) = (load(a)?, load(b)?);
    let c = compare::compare(&ra, &rb);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&c).expect("comparison serializes")
        );
    } else {
        print!("{}", c.render_table());
    }
    Ok(EXIT_OK)
}
