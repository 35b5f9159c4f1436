//! The syscall table of crius's RuntimeDefault seccomp profile.
//!
//! Anything not listed fails with EPERM. The table says which syscalls are allowed, and under
//! which condition: always, only with a capability that makes them meaningful (the mount family
//! with CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE, ...), only without one (`clone` restricted to
//! flags without new namespaces), or only on some host architectures. Which syscalls follow the
//! Docker/containerd default profiles.

use oci_spec::runtime::{Capability, LinuxSeccompOperator};

/// When a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    Always,
    /// The process has this capability.
    With(Capability),
    /// The process lacks this capability.
    Without(Capability),
    /// The host is one of these architectures (`std::env::consts::ARCH` names).
    HostArch(&'static [&'static str]),
}

/// What a matching syscall does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Allow,
    /// Fails with this errno.
    Fail(u32),
}

/// A condition on one argument of the syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ArgMatch {
    pub(super) index: usize,
    pub(super) value: u64,
    pub(super) op: LinuxSeccompOperator,
}

/// One row of the table: these syscalls (with this argument, if any) have this outcome when
/// `when` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rule {
    pub(super) names: &'static [&'static str],
    pub(super) when: When,
    pub(super) outcome: Outcome,
    pub(super) arg: Option<ArgMatch>,
}

impl Rule {
    const fn allow(names: &'static [&'static str], when: When) -> Self {
        Rule {
            names,
            when,
            outcome: Outcome::Allow,
            arg: None,
        }
    }

    /// Allows `names` when argument `index` equals `value`.
    const fn allow_arg_eq(names: &'static [&'static str], index: usize, value: u64) -> Self {
        Rule {
            names,
            when: When::Always,
            outcome: Outcome::Allow,
            arg: Some(ArgMatch {
                index,
                value,
                op: LinuxSeccompOperator::ScmpCmpEq,
            }),
        }
    }
}

/// errno for a syscall the kernel does not know, so that libc falls back (clone3 → clone).
const ENOSYS: u32 = 38;

/// `socket` address family of virtual machine sockets.
const AF_VSOCK: u64 = 40;

/// The `clone` flags that create namespaces.
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
pub(super) const CLONE_NAMESPACE_FLAGS: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// `personality` personas allowed: the Linux default, `uname -r` as 2.6, 32-bit, both, and the
/// query (0xffffffff).
const PER_LINUX: u64 = 0x0000;
const UNAME26: u64 = 0x0008;
const PER_LINUX32: u64 = 0x0002_0000;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

const X86_FAMILY: &[&str] = &["x86_64", "x86"];
const ARM_FAMILY: &[&str] = &["aarch64", "arm"];

/// Syscalls every container may make.
const BASE: &[&str] = &[
    // files and directories
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "_llseek",
    "lseek",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "name_to_handle_at",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pipe",
    "pipe2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "sendfile64",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vmsplice",
    "write",
    "writev",
    // extended attributes
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    // polling, events, notifications
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "_newselect",
    "pause",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "signalfd",
    "signalfd4",
    // asynchronous I/O
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    // memory
    "brk",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    // processes, threads, signals
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_time64",
    "futex_waitv",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "kill",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "seccomp",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setpriority",
    "setrlimit",
    "setsid",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
    "ugetrlimit",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    // scheduling
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    // credentials
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getuid",
    "getuid32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",
    // time and timers (reading the clocks; setting them needs CAP_SYS_TIME below)
    "adjtimex",
    "alarm",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    // sockets (`socket` itself is below, without AF_VSOCK)
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",
    // System V and POSIX IPC (namespaced)
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    // sandboxing oneself, system information
    "getrandom",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "sysinfo",
    "uname",
];

/// The table, in order. A syscall allowed by no applicable rule fails with EPERM.
pub(super) const RULES: &[Rule] = &[
    Rule::allow(BASE, When::Always),
    Rule {
        names: &["socket"],
        when: When::Always,
        outcome: Outcome::Allow,
        arg: Some(ArgMatch {
            index: 0,
            value: AF_VSOCK,
            op: LinuxSeccompOperator::ScmpCmpNe,
        }),
    },
    Rule::allow_arg_eq(&["personality"], 0, PER_LINUX),
    Rule::allow_arg_eq(&["personality"], 0, UNAME26),
    Rule::allow_arg_eq(&["personality"], 0, PER_LINUX32),
    Rule::allow_arg_eq(&["personality"], 0, PER_LINUX32 | UNAME26),
    Rule::allow_arg_eq(&["personality"], 0, PERSONALITY_QUERY),
    // architecture-specific calls
    Rule::allow(&["arch_prctl"], When::HostArch(&["x86_64"])),
    Rule::allow(&["modify_ldt"], When::HostArch(X86_FAMILY)),
    Rule::allow(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "sync_file_range2",
        ],
        When::HostArch(ARM_FAMILY),
    ),
    // namespaces, mounts and other administration
    Rule::allow(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        When::With(Capability::SysAdmin),
    ),
    // without CAP_SYS_ADMIN: clone without namespace flags, clone3 (whose flags seccomp cannot
    // see) unknown, so that libc falls back to clone
    Rule {
        names: &["clone"],
        when: When::Without(Capability::SysAdmin),
        outcome: Outcome::Allow,
        arg: Some(ArgMatch {
            index: 0,
            value: CLONE_NAMESPACE_FLAGS,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
        }),
    },
    Rule {
        names: &["clone3"],
        when: When::Without(Capability::SysAdmin),
        outcome: Outcome::Fail(ENOSYS),
        arg: None,
    },
    Rule::allow(
        &["open_by_handle_at"],
        When::With(Capability::DacReadSearch),
    ),
    Rule::allow(&["reboot"], When::With(Capability::SysBoot)),
    Rule::allow(&["chroot"], When::With(Capability::SysChroot)),
    Rule::allow(
        &["delete_module", "finit_module", "init_module"],
        When::With(Capability::SysModule),
    ),
    Rule::allow(&["acct"], When::With(Capability::SysPacct)),
    Rule::allow(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        When::With(Capability::SysPtrace),
    ),
    Rule::allow(&["ioperm", "iopl"], When::With(Capability::SysRawio)),
    Rule::allow(
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
        When::With(Capability::SysTime),
    ),
    Rule::allow(&["vhangup"], When::With(Capability::SysTtyConfig)),
    Rule::allow(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        When::With(Capability::SysNice),
    ),
    Rule::allow(&["syslog"], When::With(Capability::Syslog)),
    Rule::allow(&["bpf"], When::With(Capability::Bpf)),
    Rule::allow(&["perf_event_open"], When::With(Capability::Perfmon)),
];
