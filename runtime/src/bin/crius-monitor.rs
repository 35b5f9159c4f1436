//! crius-monitor: the per-container supervisor and the namespace pinning helper.
//!
//! `container` creates a container through the OCI runtime and supervises it until it exits (see
//! `crius_runtime::monitor::supervise`): the first process exits at once, the long-lived one
//! reports one JSON line on stdout, and a usage error is exit 2 with a line on stderr.
//! `pin-ns` pins a pod's namespaces (see `crius_runtime::pinning::pin_ns`): exit 0 and no output
//! on success, exit 1 and one line on stderr on failure, exit 2 on a usage error. Every other
//! invocation is refused with exit 2.
//!
//! This process must stay single-threaded: `container` and `pin-ns --pid` fork.

use std::ffi::OsString;
use std::process::ExitCode;

use crius_runtime::monitor::{args as container_args, supervise};
use crius_runtime::pinning::pin_ns;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.split_first() {
        Some((command, rest)) if command == "container" => container_command(rest),
        Some((command, rest)) if command == "pin-ns" => pin_ns_command(rest),
        Some((command, _)) => usage_error(&format!("unknown subcommand {command:?}")),
        None => usage_error("no subcommand given"),
    }
}

fn container_command(args: &[OsString]) -> ExitCode {
    match container_args::parse_args(args) {
        Ok(args) => supervise::run(&args),
        Err(message) => usage_error(&format!("container: {message}")),
    }
}

fn pin_ns_command(args: &[OsString]) -> ExitCode {
    let args = match pin_ns::parse_args(args) {
        Ok(args) => args,
        Err(message) => return usage_error(&format!("pin-ns: {message}")),
    };
    match pin_ns::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crius-monitor pin-ns: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!(
        "crius-monitor: {message}\n{}\n{}",
        container_args::USAGE,
        pin_ns::USAGE
    );
    ExitCode::from(2)
}
