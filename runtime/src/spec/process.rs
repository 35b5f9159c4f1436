//! The container's process: its arguments, environment and working directory, from the image
//! config and the request, by the Kubernetes rules.

use std::path::{Component, Path, PathBuf};

use super::image_config::ImageConfig;
use super::request::ContainerRequest;
use crate::RuntimeError;

/// `PATH` when neither the image nor the request sets one (Docker's and containerd's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

/// The process arguments. A request `command` replaces the image's entrypoint and drops its cmd;
/// request `args` alone replace the cmd and keep the entrypoint.
pub fn args(request: &ContainerRequest, image: &ImageConfig) -> Result<Vec<String>, RuntimeError> {
    let (entrypoint, cmd) = if !request.command.is_empty() {
        (&request.command, &request.args)
    } else if !request.args.is_empty() {
        (&image.entrypoint, &request.args)
    } else {
        (&image.entrypoint, &image.cmd)
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    match args.first() {
        None => Err(invalid(
            "no command: neither the request nor the image sets a command or args".to_string(),
        )),
        Some(first) if first.is_empty() => {
            Err(invalid("the command to run is an empty string".to_string()))
        }
        Some(_) if args.iter().any(|a| a.contains('\0')) => {
            Err(invalid("the command holds a NUL byte".to_string()))
        }
        Some(_) => Ok(args),
    }
}

/// An environment in `KEY=VALUE` form where a later value of a key replaces the earlier one in
/// place.
#[derive(Default)]
struct Environment {
    entries: Vec<(String, String)>,
}

impl Environment {
    fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }
}

/// Checks a request's environment variable: a key of at least one byte without `=` or NUL, a
/// value without NUL. Newlines are allowed: the environment goes to `execve`, not to a file.
pub fn validate_env(key: &str, value: &str) -> Result<(), RuntimeError> {
    if key.is_empty() || key.contains(['=', '\0']) {
        return Err(invalid(format!(
            "environment variable name {:?} must be non-empty, without '=' or NUL",
            key.chars().take(64).collect::<String>()
        )));
    }
    if value.contains('\0') {
        return Err(invalid(format!(
            "environment variable {key}: the value holds a NUL byte"
        )));
    }
    Ok(())
}

/// The process environment: `PATH` (and `TERM=xterm` with a tty) unless the image sets them, the
/// image's variables, `HOSTNAME` of the pod, the request's variables (which win over everything),
/// and `HOME` of the user unless set.
pub fn env(
    request: &ContainerRequest,
    image: &ImageConfig,
    hostname: &str,
    home: Option<&str>,
) -> Result<Vec<String>, RuntimeError> {
    let mut environment = Environment::default();
    environment.set("PATH", DEFAULT_PATH);
    if request.tty {
        environment.set("TERM", "xterm");
    }
    for entry in &image.env {
        // Checked by `ImageConfig::parse`; an entry without '=' is a variable without a value.
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        environment.set(key, value);
    }
    environment.set("HOSTNAME", hostname);
    for (key, value) in &request.envs {
        validate_env(key, value)?;
        environment.set(key, value);
    }
    if !environment.contains("HOME") {
        environment.set("HOME", home.filter(|h| !h.is_empty()).unwrap_or("/"));
    }
    Ok(environment
        .entries
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect())
}

/// `path` made absolute-clean without touching the filesystem: `.` and empty components
/// dropped, `..` taking off the previous component (and nothing above `/`).
pub fn clean_path(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

/// The working directory: the request's, else the image's, else `/`. It must be absolute and
/// may not be under `/proc` (a working directory of `/proc/self/fd/<n>` would hand the process
/// a directory fd of the runtime's: CVE-2024-21626).
pub fn cwd(request: &ContainerRequest, image: &ImageConfig) -> Result<PathBuf, RuntimeError> {
    let asked = if !request.working_dir.is_empty() {
        &request.working_dir
    } else if !image.working_dir.is_empty() {
        &image.working_dir
    } else {
        return Ok(PathBuf::from("/"));
    };
    if !asked.starts_with('/') || asked.contains('\0') {
        return Err(invalid(format!(
            "working directory {asked:?} is not an absolute path"
        )));
    }
    let clean = clean_path(Path::new(asked));
    if clean.starts_with("/proc") {
        return Err(invalid(format!(
            "working directory {asked:?} is under /proc"
        )));
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..ImageConfig::default()
        }
    }

    fn request(command: &[&str], args: &[&str]) -> ContainerRequest {
        ContainerRequest {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..ContainerRequest::default()
        }
    }

    #[test]
    fn args_follow_the_kubernetes_command_rules() {
        let img = image(&["/entry"], &["default-arg"]);
        assert_eq!(
            args(&request(&[], &[]), &img).unwrap(),
            ["/entry", "default-arg"]
        );
        assert_eq!(args(&request(&[], &["a"]), &img).unwrap(), ["/entry", "a"]);
        assert_eq!(
            args(&request(&["/bin/sh"], &[]), &img).unwrap(),
            ["/bin/sh"]
        );
        assert_eq!(
            args(&request(&["/bin/sh"], &["-c", "x"]), &img).unwrap(),
            ["/bin/sh", "-c", "x"]
        );
        let cmd_only = image(&[], &["/bin/app"]);
        assert_eq!(args(&request(&[], &[]), &cmd_only).unwrap(), ["/bin/app"]);
        assert_eq!(
            args(&request(&[], &["/other"]), &cmd_only).unwrap(),
            ["/other"]
        );
    }

    #[test]
    fn no_command_at_all_is_refused() {
        let err = args(&request(&[], &[]), &ImageConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no command"), "{err}");
        assert!(args(&request(&[""], &[]), &ImageConfig::default()).is_err());
        assert!(args(&request(&["/bin/sh", "a\0b"], &[]), &ImageConfig::default()).is_err());
    }

    #[test]
    fn env_layers_defaults_image_hostname_request_and_home() {
        let img = ImageConfig {
            env: vec!["PATH=/image/bin".into(), "A=image".into(), "B=image".into()],
            ..ImageConfig::default()
        };
        let mut req = request(&[], &[]);
        req.tty = true;
        req.envs = vec![("B".into(), "request".into()), ("C".into(), "x".into())];
        assert_eq!(
            env(&req, &img, "pod-host", Some("/root")).unwrap(),
            [
                "PATH=/image/bin",
                "TERM=xterm",
                "A=image",
                "B=request",
                "HOSTNAME=pod-host",
                "C=x",
                "HOME=/root"
            ]
        );
        let plain = env(&request(&[], &[]), &ImageConfig::default(), "h", None).unwrap();
        assert_eq!(
            plain,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h".into(),
                "HOME=/".into()
            ]
        );
    }

    #[test]
    fn env_keeps_a_request_home_and_newlines() {
        let mut req = request(&[], &[]);
        req.envs = vec![
            ("HOME".into(), "/data".into()),
            ("CERT".into(), "line1\nline2\n".into()),
        ];
        let env = env(&req, &ImageConfig::default(), "h", Some("/root")).unwrap();
        assert!(env.contains(&"HOME=/data".to_string()), "{env:?}");
        assert!(env.contains(&"CERT=line1\nline2\n".to_string()), "{env:?}");
        assert!(!env.contains(&"HOME=/root".to_string()), "{env:?}");
    }

    #[test]
    fn env_refuses_bad_keys_and_nul_values() {
        for (key, value) in [("", "v"), ("A=B", "v"), ("A\0", "v"), ("A", "v\0w")] {
            let mut req = request(&[], &[]);
            req.envs = vec![(key.into(), value.into())];
            let err = env(&req, &ImageConfig::default(), "h", None).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{key:?}"
            );
        }
    }

    #[test]
    fn cwd_from_request_then_image_then_root() {
        let mut req = request(&[], &[]);
        let mut img = ImageConfig::default();
        assert_eq!(cwd(&req, &img).unwrap(), Path::new("/"));
        img.working_dir = "/srv/app/".into();
        assert_eq!(cwd(&req, &img).unwrap(), Path::new("/srv/app"));
        req.working_dir = "/work/./x/../y".into();
        assert_eq!(cwd(&req, &img).unwrap(), Path::new("/work/y"));
    }

    #[test]
    fn cwd_under_proc_or_relative_is_refused() {
        for dir in [
            "/proc/self/fd/3",
            "/proc",
            "/tmp/../proc/self/fd/7",
            "//proc/./self/cwd",
            "relative/dir",
            "/a\0",
        ] {
            let mut req = request(&[], &[]);
            req.working_dir = dir.into();
            assert!(cwd(&req, &ImageConfig::default()).is_err(), "{dir}");
        }
        let mut req = request(&[], &[]);
        req.working_dir = "/procedures".into();
        assert_eq!(
            cwd(&req, &ImageConfig::default()).unwrap(),
            Path::new("/procedures")
        );
    }

    #[test]
    fn clean_path_stays_under_root() {
        assert_eq!(
            clean_path(Path::new("/../../etc//x/.")),
            Path::new("/etc/x")
        );
        assert_eq!(clean_path(Path::new("/")), Path::new("/"));
    }
}
