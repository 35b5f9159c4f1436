//! crius-monitor: the per-container supervisor and the namespace pinning helper.
//!
//! Neither role exists yet (the pod sandbox and container issues build them); until then the
//! binary refuses every invocation so nothing mistakes it for a working monitor.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("crius-monitor: no subcommands are built yet");
    ExitCode::from(2)
}
