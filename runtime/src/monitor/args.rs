//! The command line of `crius-monitor container`: a flat list of `--flag value` pairs and
//! switches, built by the daemon (for [`super::start`]) and parsed back by the monitor.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub const USAGE: &str = "usage: crius-monitor container --id ID --runtime PATH --runtime-root DIR \
                         --bundle DIR --dir DIR [--log-path PATH] [--tty] [--stdin] [--stdin-once] \
                         [--oom-cgroup DIR]";

/// Longer ids are no container id of ours.
const MAX_ID_LEN: usize = 128;

/// What the monitor of one container is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerArgs {
    /// The container id, as the OCI runtime knows it.
    pub id: String,
    /// The OCI runtime binary (runc).
    pub runtime: PathBuf,
    /// The runtime's state dir (`runc --root`).
    pub runtime_root: PathBuf,
    /// The bundle: the dir holding `config.json`.
    pub bundle: PathBuf,
    /// The container run dir: sockets, pid file, runtime log and exit file go there.
    pub dir: PathBuf,
    /// The kubelet log file, if any.
    pub log_path: Option<PathBuf>,
    /// The container has a terminal (`process.terminal` in the spec).
    pub tty: bool,
    /// The container's stdin stays open for attach clients.
    pub stdin: bool,
    /// Stdin is closed when the first attach client that wrote to it goes away.
    pub stdin_once: bool,
    /// The container's memory cgroup dir, whose OOM kill counter tells an OOM kill.
    pub oom_cgroup: Option<PathBuf>,
}

impl ContainerArgs {
    /// Checks what the monitor relies on: a plain id (it becomes a command line argument of the
    /// runtime), absolute paths, and a run dir short enough for its socket paths.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= MAX_ID_LEN
            && !self.id.starts_with(['-', '.'])
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !id_ok {
            return Err(format!(
                "invalid container id {:?}: 1 to {MAX_ID_LEN} of [A-Za-z0-9_.-], not starting \
                 with '-' or '.'",
                self.id
            ));
        }
        let paths = [
            ("--runtime", Some(&self.runtime)),
            ("--runtime-root", Some(&self.runtime_root)),
            ("--bundle", Some(&self.bundle)),
            ("--dir", Some(&self.dir)),
            ("--log-path", self.log_path.as_ref()),
            ("--oom-cgroup", self.oom_cgroup.as_ref()),
        ];
        for (flag, path) in paths {
            if let Some(path) = path
                && !path.is_absolute()
            {
                return Err(format!("{flag} {} is not an absolute path", path.display()));
            }
        }
        Ok(())
    }

    /// The command line [`parse_args`] reads back, starting with the `container` subcommand.
    pub fn command_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["container".into()];
        let mut pair = |flag: &str, value: &Path| {
            args.push(flag.into());
            args.push(value.into());
        };
        pair("--id", Path::new(&self.id));
        pair("--runtime", &self.runtime);
        pair("--runtime-root", &self.runtime_root);
        pair("--bundle", &self.bundle);
        pair("--dir", &self.dir);
        if let Some(log_path) = &self.log_path {
            pair("--log-path", log_path);
        }
        if let Some(cgroup) = &self.oom_cgroup {
            pair("--oom-cgroup", cgroup);
        }
        for (flag, on) in [
            ("--tty", self.tty),
            ("--stdin", self.stdin),
            ("--stdin-once", self.stdin_once),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        args
    }
}

/// Parses the arguments after `container` and validates them. The error is a usage error.
pub fn parse_args(args: &[OsString]) -> Result<ContainerArgs, String> {
    let mut id = None;
    let mut runtime = None;
    let mut runtime_root = None;
    let mut bundle = None;
    let mut dir = None;
    let mut log_path = None;
    let mut oom_cgroup = None;
    let (mut tty, mut stdin, mut stdin_once) = (false, false, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let flag = arg.to_str().unwrap_or_default();
        let slot = match flag {
            "--tty" => {
                tty = true;
                continue;
            }
            "--stdin" => {
                stdin = true;
                continue;
            }
            "--stdin-once" => {
                stdin_once = true;
                continue;
            }
            "--runtime" => &mut runtime,
            "--runtime-root" => &mut runtime_root,
            "--bundle" => &mut bundle,
            "--dir" => &mut dir,
            "--log-path" => &mut log_path,
            "--oom-cgroup" => &mut oom_cgroup,
            "--id" => {
                let value = args.next().ok_or("--id needs a value")?;
                let value = value
                    .to_str()
                    .ok_or_else(|| format!("--id {value:?} is not utf-8"))?;
                if id.replace(value.to_string()).is_some() {
                    return Err("--id given twice".to_string());
                }
                continue;
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if slot.replace(PathBuf::from(value)).is_some() {
            return Err(format!("{flag} given twice"));
        }
    }
    let required = |value: Option<PathBuf>, flag: &str| value.ok_or(format!("{flag} is required"));
    let parsed = ContainerArgs {
        id: id.ok_or("--id is required")?,
        runtime: required(runtime, "--runtime")?,
        runtime_root: required(runtime_root, "--runtime-root")?,
        bundle: required(bundle, "--bundle")?,
        dir: required(dir, "--dir")?,
        log_path,
        tty,
        stdin,
        stdin_once,
        oom_cgroup,
    };
    parsed.validate()?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn full() -> ContainerArgs {
        ContainerArgs {
            id: "c0ffee".into(),
            runtime: "/usr/sbin/runc".into(),
            runtime_root: "/run/crius/runc".into(),
            bundle: "/run/crius/containers/c0ffee/bundle".into(),
            dir: "/run/crius/containers/c0ffee".into(),
            log_path: Some("/var/log/pods/p/c/0.log".into()),
            tty: true,
            stdin: true,
            stdin_once: true,
            oom_cgroup: Some("/sys/fs/cgroup/memory/kubepods/c0ffee".into()),
        }
    }

    #[test]
    fn command_args_parse_back() {
        let args = full().command_args();
        assert_eq!(args[0], "container");
        assert_eq!(parse_args(&args[1..]).unwrap(), full());
        let minimal = ContainerArgs {
            log_path: None,
            tty: false,
            stdin: false,
            stdin_once: false,
            oom_cgroup: None,
            ..full()
        };
        let args = minimal.command_args();
        assert_eq!(
            args,
            os(&[
                "container",
                "--id",
                "c0ffee",
                "--runtime",
                "/usr/sbin/runc",
                "--runtime-root",
                "/run/crius/runc",
                "--bundle",
                "/run/crius/containers/c0ffee/bundle",
                "--dir",
                "/run/crius/containers/c0ffee",
            ])
        );
        assert_eq!(parse_args(&args[1..]).unwrap(), minimal);
    }

    #[test]
    fn parse_args_refuses_bad_command_lines() {
        let base = [
            "--runtime",
            "/r",
            "--runtime-root",
            "/rr",
            "--bundle",
            "/b",
            "--dir",
            "/d",
        ];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            parse_args(&os(&args)).unwrap_err()
        };
        assert_eq!(with(&[]), "--id is required");
        assert_eq!(with(&["--id"]), "--id needs a value");
        assert_eq!(with(&["--id", "a", "--id", "b"]), "--id given twice");
        assert_eq!(with(&["--id", "a", "--dir", "/e"]), "--dir given twice");
        assert_eq!(
            with(&["--id", "a", "--log-path"]),
            "--log-path needs a value"
        );
        assert_eq!(
            with(&["--id", "a", "--detach"]),
            "unknown argument \"--detach\""
        );
        assert!(with(&["--id", "-rf"]).contains("invalid container id"));
        assert!(with(&["--id", "a/b"]).contains("invalid container id"));
        assert!(with(&["--id", "a", "--log-path", "rel/0.log"]).contains("not an absolute path"));
        let err = parse_args(&os(&["--id", "a", "--runtime", "/r"])).unwrap_err();
        assert_eq!(err, "--runtime-root is required");
    }
}
