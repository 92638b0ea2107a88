//! `dplab probe [--json]`

use crate::cli::{Failure, EXIT_OK};
use crate::probe;

pub async fn run(json: bool) -> Result<u8, Failure> {
    super::require_root()?;
    let caps = probe::probe().await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&caps).expect("capabilities serialize")
        );
    } else {
        let width = caps.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &caps {
            let mark = if c.available { "yes" } else { "no " };
            println!("{:width$}  {mark}  {}", c.name, c.detail);
        }
    }
    Ok(EXIT_OK)
}
