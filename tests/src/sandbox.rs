//! A process run as a container runtime runs a DaemonSet's container, without a
//! runtime: in its own mount namespace, chrooted into an unpacked image's rootfs, with
//! what runtimes mount in every container (`/sys` read-only, without the host's mounts
//! under it; a `/dev` holding only the usual devices), the host's `/proc`
//! (`hostPID: true`), the pod's hostPath mounts (read-only where the manifest says so),
//! a read-only root filesystem, `no_new_privs` (`allowPrivilegeEscalation: false`), the
//! given user, and no capability beyond those the manifest adds.

use std::{
    ffi::CString,
    io,
    os::unix::{ffi::OsStrExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// What a container's securityContext and volumes allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Capabilities kept (`CAP_SYS_ADMIN` is `"SYS_ADMIN"`, as manifests name them);
    /// every other one leaves the bounding set.
    pub capabilities: Vec<String>,
    /// The uid (and gid) it runs as.
    pub uid: u32,
    /// `readOnlyRootFilesystem`.
    pub read_only_root: bool,
    /// `allowPrivilegeEscalation` (false sets `no_new_privs`).
    pub allow_privilege_escalation: bool,
    /// hostPath mounts: (host path, path in the container, read-only).
    pub host_paths: Vec<(PathBuf, PathBuf, bool)>,
}

/// The capabilities container runtimes (containerd, CRI-O) give a container unless
/// its securityContext drops them.
const RUNTIME_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

impl Constraints {
    /// What `container` of a Pod with `pod`'s spec may do, as a container runtime
    /// would set it up (Kubernetes' defaults where the manifest is silent: the image's
    /// user, here root; privilege escalation allowed; the runtime's capabilities).
    pub fn of(pod: &PodSpec, container: &Container) -> Self {
        let context = container.security_context.clone().unwrap_or_default();
        let caps = context.capabilities.unwrap_or_default();
        let drop = caps.drop.unwrap_or_default();
        let mut capabilities: Vec<String> = if drop.iter().any(|d| d == "ALL") {
            Vec::new()
        } else {
            RUNTIME_DEFAULT
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !drop.contains(c))
                .collect()
        };
        capabilities.extend(caps.add.unwrap_or_default());
        let volumes = pod.volumes.clone().unwrap_or_default();
        let host_paths = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|mount| {
                let volume = volumes
                    .iter()
                    .find(|v| v.name == mount.name)
                    .unwrap_or_else(|| panic!("no volume {:?} in the Pod", mount.name));
                let host = volume.host_path.as_ref().unwrap_or_else(|| {
                    panic!("volume {:?}: only hostPath volumes are set up", mount.name)
                });
                (
                    PathBuf::from(&host.path),
                    PathBuf::from(&mount.mount_path),
                    mount.read_only.unwrap_or(false),
                )
            })
            .collect();
        Self {
            capabilities,
            uid: context.run_as_user.unwrap_or(0) as u32,
            read_only_root: context.read_only_root_filesystem.unwrap_or(false),
            allow_privilege_escalation: context.allow_privilege_escalation.unwrap_or(true),
            host_paths,
        }
    }
}

/// The devices runtimes create in a container's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Capability numbers by name (linux/capability.h), as far as `CAP_LAST_CAP` on 6.x.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A mount to make in the child: (source, target, flags); a source of `tmpfs` mounts a
/// new tmpfs, with its device files created after it.
type Mount = (Option<CString>, CString, libc::c_ulong);

/// `program` (a path inside `rootfs`), to be run under `constraints` in `rootfs`; the
/// mount points it needs are created in `rootfs` first.
pub fn command(rootfs: &Path, constraints: &Constraints, program: &str) -> Command {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("a path without NUL");
    let inside = |p: &Path| rootfs.join(p.strip_prefix("/").unwrap_or(p));
    let mut mounts: Vec<Mount> = vec![
        (None, c(Path::new("/")), libc::MS_REC | libc::MS_PRIVATE),
        (Some(c(rootfs)), c(rootfs), libc::MS_BIND | libc::MS_REC),
        // hostPID: the host's processes, as the daemon sees them on a node.
        (
            Some(c(Path::new("/proc"))),
            c(&inside(Path::new("/proc"))),
            libc::MS_BIND | libc::MS_REC,
        ),
    ];
    std::fs::create_dir_all(inside(Path::new("/proc"))).expect("a /proc mount point");
    // sysfs as runtimes mount it: read-only, and without tracefs and the other file
    // systems the host mounts under /sys (a hostPath volume brings those).
    let sys = inside(Path::new("/sys"));
    std::fs::create_dir_all(&sys).expect("a /sys mount point");
    mounts.push((Some(c(Path::new("/sys"))), c(&sys), libc::MS_BIND));
    mounts.push((None, c(&sys), read_only_remount()));
    // /dev: a tmpfs with the devices runtimes create.
    let dev = inside(Path::new("/dev"));
    std::fs::create_dir_all(&dev).expect("a /dev mount point");
    mounts.push((Some(c(Path::new("tmpfs"))), c(&dev), 0));
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        mounts.push((Some(c(&host)), c(&dev.join(device)), libc::MS_BIND));
    }
    for (host, path, read_only) in &constraints.host_paths {
        let target = inside(path);
        std::fs::create_dir_all(&target).expect("a hostPath mount point");
        mounts.push((Some(c(host)), c(&target), libc::MS_BIND));
        if *read_only {
            mounts.push((None, c(&target), read_only_remount()));
        }
    }
    if constraints.read_only_root {
        mounts.push((None, c(rootfs), read_only_remount()));
    }
    let drop: Vec<libc::c_int> = CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(_, name)| !constraints.capabilities.iter().any(|k| k == *name))
        .map(|(i, _)| i as libc::c_int)
        .collect();
    let root = c(rootfs);
    let no_new_privs = !constraints.allow_privilege_escalation;
    let uid = constraints.uid;
    let mut command = Command::new(program);
    // SAFETY: between fork and exec the closure only makes system calls on memory
    // prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            for (source, target, flags) in &mounts {
                let source = source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                let tmpfs = !source.is_null() && libc::strcmp(source, c"tmpfs".as_ptr()) == 0;
                let fstype = if tmpfs { source } else { std::ptr::null() };
                if *flags & libc::MS_BIND != 0 && !tmpfs {
                    // A bind onto a device file needs the file to exist (in /dev's tmpfs).
                    let fd = libc::open(target.as_ptr(), libc::O_CREAT | libc::O_RDONLY, 0o600);
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
                check(libc::mount(
                    source,
                    target.as_ptr(),
                    fstype,
                    *flags,
                    std::ptr::null(),
                ))?;
            }
            check(libc::chroot(root.as_ptr()))?;
            check(libc::chdir(c"/".as_ptr()))?;
            for cap in &drop {
                check(libc::prctl(libc::PR_CAPBSET_DROP, *cap, 0, 0, 0))?;
            }
            if no_new_privs {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            }
            if uid != 0 {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(uid))?;
                check(libc::setuid(uid))?;
            }
            Ok(())
        });
    }
    command
}

/// Flags that make a bind mount read-only.
fn read_only_remount() -> libc::c_ulong {
    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY
}

/// A system call's result as an `io::Result`.
fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes `command` run as on a node whose kernel has no BTF and where neither tracefs
/// nor debugfs is mounted: in its own mount namespace, with empty file systems over
/// `/sys/kernel/btf`, `/sys/kernel/tracing` and `/sys/kernel/debug`.
pub fn without_btf_or_tracefs(command: &mut Command) {
    // SAFETY: between fork and exec the closure only makes system calls on static
    // strings; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let root = (c"/", libc::MS_REC | libc::MS_PRIVATE);
            check(libc::mount(
                std::ptr::null(),
                root.0.as_ptr(),
                std::ptr::null(),
                root.1,
                std::ptr::null(),
            ))?;
            for hidden in [
                c"/sys/kernel/btf",
                c"/sys/kernel/tracing",
                c"/sys/kernel/debug",
            ] {
                let tmpfs = c"tmpfs".as_ptr();
                check(libc::mount(
                    tmpfs,
                    hidden.as_ptr(),
                    tmpfs,
                    0,
                    std::ptr::null(),
                ))?;
            }
            Ok(())
        });
    }
}

/// Makes every `bpf(BPF_PROG_LOAD)` of `command` fail with `EINVAL`, as a kernel built
/// without a program type answers: a seccomp filter that lets every other call pass.
pub fn refusing_program_loads(command: &mut Command) {
    const BPF_PROG_LOAD: u32 = 5;
    // seccomp_data: the call number at offset 0, the first argument's low half at 16.
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_unless = |k: u32, skip: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf: skip,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let filter = [
        statement(load, 0),
        jump_unless(libc::SYS_bpf as u32, 3),
        statement(load, 16),
        jump_unless(BPF_PROG_LOAD, 1),
        statement(ret, libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),
        statement(ret, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes one system call on the
    // filter, copied into the closure before the fork.
    unsafe {
        command.pre_exec(move || {
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            check(libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ))
        });
    }
}
