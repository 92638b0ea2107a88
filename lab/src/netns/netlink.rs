//! One rtnetlink connection per namespace, opened from a thread that entered
//! it: a netlink socket belongs to the namespace it was created in, so the
//! handle can then be used from any task.

use super::{run_in, NetnsError};

/// Opens an rtnetlink connection inside namespace `name`; its connection task
/// runs on the current tokio runtime.
pub fn handle_in(name: &str) -> Result<rtnetlink::Handle, NetnsError> {
    let runtime = tokio::runtime::Handle::current();
    let (connection, handle, _) = run_in(name, move || {
        // The socket registers with the caller's reactor.
        let _entered = runtime.enter();
        rtnetlink::new_connection()
    })?
    .map_err(|e| NetnsError::Io {
        name: name.to_string(),
        op: "open rtnetlink socket",
        source: e,
    })?;
    tokio::spawn(connection);
    Ok(handle)
}
