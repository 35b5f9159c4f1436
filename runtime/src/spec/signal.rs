//! Signal names as images give them (`StopSignal`): `SIGQUIT`, `QUIT`, `quit`, `3`,
//! `SIGRTMIN+3`, `RTMAX-1`.

use nix::sys::signal::Signal;

use crate::RuntimeError;

/// The signal a container is stopped with when its image names none.
pub const DEFAULT_STOP_SIGNAL: i32 = Signal::SIGTERM as i32;

/// The first real-time signal as glibc (and Docker's signal table) numbers it: the kernel's
/// first two are reserved by the C library.
const SIGRTMIN: i32 = 34;
/// The last real-time signal.
const SIGRTMAX: i32 = 64;

fn unknown(signal: &str) -> RuntimeError {
    RuntimeError::InvalidArgument(format!(
        "stop signal {:?} is not a signal name or number",
        signal.chars().take(32).collect::<String>()
    ))
}

/// Parses a signal name (with or without `SIG`, any case), a number (1 to 64), or a real-time
/// signal relative to `RTMIN`/`RTMAX`.
pub fn parse(signal: &str) -> Result<i32, RuntimeError> {
    let in_range = |number: i32| (1..=SIGRTMAX).contains(&number).then_some(number);
    if let Ok(number) = signal.parse::<i32>() {
        return in_range(number).ok_or_else(|| unknown(signal));
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str, sign: i32, anchor: i32| {
        let offset = name.strip_prefix(base)?;
        let offset: i32 = if offset.is_empty() {
            0
        } else if offset.starts_with(['+', '-']) && offset.len() > 1 {
            // The sign must match the anchor: RTMIN+n and RTMAX-n.
            if !offset.starts_with(if sign > 0 { '+' } else { '-' }) {
                return None;
            }
            offset[1..].parse().ok()?
        } else {
            return None;
        };
        let number = anchor + sign * offset;
        (SIGRTMIN..=SIGRTMAX).contains(&number).then_some(number)
    };
    if name.starts_with("RTMIN") {
        return realtime("RTMIN", 1, SIGRTMIN).ok_or_else(|| unknown(signal));
    }
    if name.starts_with("RTMAX") {
        return realtime("RTMAX", -1, SIGRTMAX).ok_or_else(|| unknown(signal));
    }
    Signal::iterator()
        .find(|s| s.as_str().strip_prefix("SIG") == Some(name))
        .map(|s| s as i32)
        .or(match name {
            "IOT" => Some(Signal::SIGABRT as i32),
            "CLD" => Some(Signal::SIGCHLD as i32),
            "POLL" => Some(Signal::SIGIO as i32),
            _ => None,
        })
        .ok_or_else(|| unknown(signal))
}

/// The stop signal of an image: its `StopSignal`, else SIGTERM.
pub fn stop_signal(image_stop_signal: Option<&str>) -> Result<i32, RuntimeError> {
    image_stop_signal.map_or(Ok(DEFAULT_STOP_SIGNAL), parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime_signals_parse() {
        for (text, number) in [
            ("SIGQUIT", 3),
            ("QUIT", 3),
            ("quit", 3),
            ("SigTerm", 15),
            ("3", 3),
            ("9", 9),
            ("SIGKILL", 9),
            ("SIGWINCH", 28),
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("RTMIN+30", 64),
            ("SIGRTMAX", 64),
            ("SIGRTMAX-2", 62),
            ("IOT", 6),
            ("64", 64),
        ] {
            assert_eq!(parse(text).unwrap(), number, "{text}");
        }
    }

    #[test]
    fn unknown_signals_are_refused() {
        for text in [
            "",
            "SIG",
            "SIGFOO",
            "0",
            "65",
            "-1",
            "RTMIN+31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "SIGRTMIN+x",
            "QUIT ",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{text}"
            );
        }
    }

    #[test]
    fn no_image_stop_signal_is_sigterm() {
        assert_eq!(stop_signal(None).unwrap(), 15);
        assert_eq!(stop_signal(Some("SIGINT")).unwrap(), 2);
    }
}
