//! Processes crius watches (container inits, monitors) named by pid and start time, and held by
//! pidfd, so that a recycled pid is never mistaken for them and never signalled.

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags};

use crate::RuntimeError;
use crate::container::record::ProcessIdentity;

/// The process with this pid as it is now, or None if there is none.
pub fn identify(pid: i32) -> Option<ProcessIdentity> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'. The start time is field 22, the 20th after it.
    let (_, fields) = stat.rsplit_once(')')?;
    let start_ticks = fields.split_whitespace().nth(19)?.parse().ok()?;
    Some(ProcessIdentity { pid, start_ticks })
}

/// A pidfd for `process`, or None when it has ended (its pid gone or now someone else's).
pub fn open(process: ProcessIdentity) -> Result<Option<OwnedFd>, RuntimeError> {
    let Some(pid) = Pid::from_raw(process.pid) else {
        return Ok(None);
    };
    let pidfd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => {
            return Err(RuntimeError::io(
                "pidfd_open",
                format!("/proc/{}", process.pid),
            )(e.into()));
        }
    };
    // The pidfd now holds whichever process has the pid; it is ours if it started when ours did.
    Ok((identify(process.pid) == Some(process)).then_some(pidfd))
}

/// Sends `signal` through `pidfd`; false when the process has already ended. Signals without a
/// name (real-time ones) are not taken here.
pub fn signal(pidfd: &OwnedFd, signal: i32) -> Result<bool, RuntimeError> {
    let Some(named) = rustix::process::Signal::from_named_raw(signal) else {
        return Err(RuntimeError::InvalidArgument(format!(
            "signal {signal} cannot be sent through a pidfd"
        )));
    };
    match rustix::process::pidfd_send_signal(pidfd, named) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(RuntimeError::io("pidfd_send_signal", "pidfd")(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_identified_and_opened() {
        let me = identify(std::process::id() as i32).unwrap();
        assert!(me.start_ticks > 0);
        assert!(open(me).unwrap().is_some());
    }

    #[test]
    fn a_process_with_another_start_time_is_not_opened() {
        let me = identify(std::process::id() as i32).unwrap();
        let impostor = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(open(impostor).unwrap().is_none());
    }

    #[test]
    fn an_ended_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(identify(pid).is_none());
    }
}
