//! Loads apiprof's eBPF object and attaches its probes to one Go process.

use std::{num::NonZeroU32, path::PathBuf};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
        PerfEvent, ProgramError, UProbe,
    },
    util::online_cpus,
    Ebpf, EbpfError, EbpfLoader,
};
use profiler_common::{
    attach::{WriterFields, AT_ENTRY, AT_STACK_CHECK},
    client::ClientOffsets,
    offsets::GoOffsets,
};
use tracing::{debug, info, warn};

use crate::{
    capture::{monotonic_ns, unix_ms, Header, FORMAT_VERSION},
    target::disasm::{calls_to, nil_checked_field, stack_check_jump, writer_fields},
    target::offsets::{self, client_go, OffsetsError},
    target::probes::{self, At, Probe},
    target::symbols::SymbolSource,
    target::{Target, TargetError},
};

/// The eBPF object built by build.rs from `profiler-ebpf`.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// What the kernel must offer, as errors name it.
const KERNEL_NEEDS: &str = "apiprof needs root (CAP_SYS_ADMIN) and Linux 5.8 or later built with eBPF uprobe and perf-event programs, ring buffers and global data (CONFIG_BPF_SYSCALL, CONFIG_BPF_EVENTS, CONFIG_UPROBE_EVENTS)";

/// Loading or attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The process could not be inspected.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No offsets for the binary's Go version.
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    /// The kernel refused the object (its maps, or the probes aya makes of what the
    /// kernel supports).
    #[error("loading the eBPF object: {source}; {}", KERNEL_NEEDS)]
    Load {
        /// aya's error.
        #[source]
        source: EbpfError,
    },
    /// The kernel refused one program: its type, a helper it calls, or the verifier.
    #[error(
        "the kernel refused to load the eBPF program {program}: {source}; {}",
        KERNEL_NEEDS
    )]
    ProgramLoad {
        /// The eBPF program.
        program: &'static str,
        /// aya's error, with the verifier log.
        #[source]
        source: Box<ProgramError>,
    },
    /// A program could not be loaded or attached.
    #[error("attaching {program} to {function} in {binary}: {source}; apiprof needs root (CAP_SYS_ADMIN for uprobes, CAP_SYS_PTRACE for another's process) and the process still running")]
    Attach {
        /// The eBPF program.
        program: &'static str,
        /// The Go function.
        function: String,
        /// The probed executable.
        binary: PathBuf,
        /// aya's error (boxed: it is large and rare).
        #[source]
        source: Box<ProgramError>,
    },
    /// A required probe fits no function of the binary.
    #[error("{binary} has none of {functions:?}, which apiprof needs to follow requests; is it a Go net/http server?")]
    MissingFunction {
        /// The probed executable.
        binary: PathBuf,
        /// The functions looked for.
        functions: &'static [&'static str],
    },
    /// The HTTP/2 server's `write` does not show where it keeps what a handler wrote.
    #[error("{function} in {binary} does not read and write the response state as apiprof expects; please report this with the Go and golang.org/x/net versions")]
    WriterFields {
        /// The probed executable.
        binary: PathBuf,
        /// The `write` function.
        function: &'static str,
    },
    /// A function has no instruction of the kind a probe goes on (a CALL of a given
    /// function).
    #[error("{function} in {binary} has no {instruction} apiprof can decode; please report this with the Go version")]
    NoAttachPoint {
        /// The probed executable.
        binary: PathBuf,
        /// The Go function.
        function: String,
        /// The instruction looked for.
        instruction: String,
    },
    /// The CPU sampling clock could not be started.
    #[error("starting the CPU sampler ({what}): {source}; apiprof needs root (CAP_SYS_ADMIN or CAP_PERFMON), or record with --no-cpu")]
    Sampler {
        /// The step that failed.
        what: &'static str,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object lacks a map or program this build expects.
    #[error("the eBPF object has no usable {name} ({reason}): rebuild apiprof")]
    Object {
        /// Map or program name.
        name: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// What apiprof records besides requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracking {
    /// Attribute the runtime's heap allocation samples.
    pub allocs: bool,
    /// Sample on-CPU time every this many nanoseconds of CPU, on every CPU; `None`: no
    /// CPU samples.
    pub cpu_period_ns: Option<u64>,
    /// Follow goroutine lineage at any depth with a probe on goroutine creation.
    pub deep_lineage: bool,
}

/// The loaded programs and their links to one process. Dropping it detaches them all,
/// which can take a second or two (the kernel waits for grace periods as it removes
/// each uprobe): the daemon drops it on a blocking thread.
pub struct Links(#[expect(dead_code, reason = "held for its Drop: detaching")] Ebpf);

/// Loaded programs attached to one process, and the maps userspace reads.
pub struct Probes {
    /// Keeps programs and links alive; dropping it detaches everything.
    pub links: Links,
    /// Kernel events.
    pub events: RingBuf<MapData>,
    /// Per-CPU count of events the kernel could not hand over.
    pub dropped: PerCpuArray<MapData, u64>,
    /// The Go functions probed.
    pub functions: Vec<String>,
    /// Where their addresses came from.
    pub symbols: SymbolSource,
    /// What they track besides requests.
    pub tracking: Tracking,
    /// What every report of the target must say (see `offsets::caution`).
    pub cautions: Vec<String>,
}

impl Probes {
    /// Loads the eBPF object and attaches the HTTP probes to `target`, and what
    /// `tracking` asks for: allocation probes, the CPU sampler, and the goroutine lineage
    /// both attribute through.
    pub fn attach(target: &Target, tracking: Tracking) -> Result<Self, LoadError> {
        let go_offsets = offsets::for_version(target.binary.go_version())?;
        let mut families = vec![probes::HTTP];
        // Lineage from `g.parentGoid` costs nothing per goroutine; Go before 1.21 has
        // none, so the probe on goroutine creation provides it there.
        if (tracking.allocs || tracking.cpu_period_ns.is_some())
            && (tracking.deep_lineage || go_offsets.g_parent_goid == 0)
        {
            families.push(probes::LINEAGE);
        }
        if tracking.allocs {
            families.push(probes::ALLOC);
        }
        Self::load(target, go_offsets, &families, ClientOffsets::ZERO, tracking)
    }

    /// Loads the eBPF object and attaches the client-side probes to `target`, a client-go
    /// program: its requests, rate-limiter waits, informer resyncs and workqueues.
    pub fn attach_client(target: &Target) -> Result<Self, LoadError> {
        let client = ClientOffsets {
            request_rate_limiter: rate_limiter_field(target)?,
            fifo_name: client_go::FIFO_NAME,
        };
        let tracking = Tracking {
            allocs: false,
            cpu_period_ns: None,
            deep_lineage: false,
        };
        let go_offsets = offsets::for_version(target.binary.go_version())?;
        Self::load(target, go_offsets, &[probes::CLIENT], client, tracking)
    }

    /// Loads the eBPF object with `go_offsets` (the target's Go version's) and
    /// `client`, and attaches the probes of `families` to `target`.
    fn load(
        target: &Target,
        go_offsets: GoOffsets,
        families: &[&[Probe]],
        client: ClientOffsets,
        tracking: Tracking,
    ) -> Result<Self, LoadError> {
        let cautions: Vec<String> = offsets::caution(target.binary.go_version())
            .into_iter()
            .collect();
        for caution in &cautions {
            warn!(pid = target.pid, "{caution}");
        }
        // One copy of the programs per process, with its pid and offsets as constants.
        let mut ebpf = EbpfLoader::new()
            .override_global("TGID", &target.pid, true)
            .override_global("GO_OFFSETS", &go_offsets, true)
            .override_global("CLIENT_OFFSETS", &client, true)
            .load(EBPF_OBJECT)
            .map_err(|source| LoadError::Load { source })?;

        let pid = NonZeroU32::new(target.pid).ok_or(LoadError::Object {
            name: "pid",
            reason: "pid 0".into(),
        })?;
        let mut functions = Vec::new();
        // What optional probes provide, and whether any probe attached for it.
        let mut provided: Vec<(&str, bool)> = Vec::new();
        for probe in families.iter().copied().flatten() {
            let attached = attach(&mut ebpf, target, pid, probe)?;
            if attached.is_empty() && probe.required {
                return Err(LoadError::MissingFunction {
                    binary: target.exe.clone(),
                    functions: probe.functions,
                });
            }
            match provided
                .iter_mut()
                .find(|(what, _)| *what == probe.provides)
            {
                Some((_, any)) => *any |= !attached.is_empty(),
                None => provided.push((probe.provides, !attached.is_empty())),
            }
            functions.extend(attached);
        }
        for (what, _) in provided.iter().filter(|(_, any)| !any) {
            warn!(
                missing = what,
                "none of the functions that provide this is in the binary; reports will lack it"
            );
        }
        if let Some(period_ns) = tracking.cpu_period_ns {
            attach_cpu_sampler(&mut ebpf, period_ns)?;
        }
        info!(pid = target.pid, go = %target.binary.go_version(), functions = functions.len(), ?tracking, "probes attached");

        let events = take_map(&mut ebpf, "EVENTS")?;
        let dropped = take_map(&mut ebpf, "DROPPED")?;
        Ok(Self {
            links: Links(ebpf),
            events,
            dropped,
            functions,
            symbols: target.binary.source(),
            tracking,
            cautions,
        })
    }

    /// The capture header of what these probes observe in `target`.
    pub fn header(&self, target: &Target) -> Header {
        let (mem_profile_rate, rate_source) = if self.tracking.allocs {
            target.mem_profile_rate()
        } else {
            (0, "not tracked")
        };
        Header {
            format_version: FORMAT_VERSION,
            pid: target.pid,
            binary: target.exe.clone(),
            target: target.name(),
            go_version: target.binary.go_version().to_string(),
            symbols: self.symbols,
            probes: self.functions.clone(),
            mem_profile_rate,
            mem_profile_rate_source: rate_source.to_owned(),
            cpu_sample_period_ns: self.tracking.cpu_period_ns.unwrap_or(0),
            cautions: self.cautions.clone(),
            started_unix_ms: unix_ms(),
            started_ktime_ns: monotonic_ns(),
        }
    }
}

/// Attaches `probe` to each of its functions the binary has; returns their names.
fn attach(
    ebpf: &mut Ebpf,
    target: &Target,
    pid: NonZeroU32,
    probe: &Probe,
) -> Result<Vec<String>, LoadError> {
    let program = probe.program;
    let found: Vec<_> = probe
        .functions
        .iter()
        .flat_map(|name| target.binary.functions_named(name))
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let attach_err = |function: &str, source: ProgramError| LoadError::Attach {
        program,
        function: function.to_owned(),
        binary: target.exe.clone(),
        source: Box::new(source),
    };
    let uprobe: &mut UProbe = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Object {
            name: program,
            reason: "missing".into(),
        })?
        .try_into()
        .map_err(|e| attach_err(&found[0].name, e))?;
    if uprobe.fd().is_err() {
        uprobe.load().map_err(|e| LoadError::ProgramLoad {
            program,
            source: Box::new(e),
        })?;
    }
    let proc_exe = PathBuf::from(format!("/proc/{}/exe", target.pid));
    let mut attached = Vec::new();
    for function in &found {
        let code = target.binary.code(function);
        let cookie = match probe.writer_fields_from {
            Some(write) => writer_fields_cookie(target, write)?,
            None => probe.cookie | AT_ENTRY,
        };
        // (address, cookie): entry probes on the stack check's jump when there is one.
        let addresses: Vec<(u64, u64)> = match probe.at {
            At::Entry => vec![stack_check_jump(code, function.address)
                .map_or((function.address, AT_ENTRY), |jump| (jump, AT_STACK_CHECK))],
            // At any of several callees, the cookie also says which (its index).
            At::CallTo(_) | At::CallToAny(_) => (0u64..)
                .zip(probe.at.callees())
                .filter_map(|(i, callee)| Some((i, target.binary.function(callee).ok()?)))
                .flat_map(|(i, callee)| {
                    calls_to(code, function.address, callee.address)
                        .into_iter()
                        .map(move |call| (call, cookie | i))
                })
                .collect(),
        };
        if addresses.is_empty() {
            let error = LoadError::NoAttachPoint {
                binary: target.exe.clone(),
                function: function.name.clone(),
                instruction: match probe.at {
                    At::Entry => "entry".into(),
                    _ => format!("CALL of {}", probe.at.callees().join(" or ")),
                },
            };
            if probe.required {
                return Err(error);
            }
            warn!(%error, "skipping an optional probe");
            continue;
        }
        for (address, cookie) in &addresses {
            let file_offset = function.file_offset + (address - function.address);
            uprobe
                .attach(
                    UProbeAttachPoint {
                        location: UProbeAttachLocation::AbsoluteOffset(file_offset),
                        cookie: Some(*cookie),
                    },
                    &proc_exe,
                    UProbeScope::OneProcess(pid),
                )
                .map_err(|e| attach_err(&function.name, e))?;
        }
        debug!(program, function = %function.name, points = addresses.len(), "attached");
        attached.push(function.name.clone());
    }
    Ok(attached)
}

/// The cookie that tells a program where the HTTP/2 server whose `write` is named keeps
/// what a handler wrote.
fn writer_fields_cookie(target: &Target, write: &'static str) -> Result<u64, LoadError> {
    let error = || LoadError::WriterFields {
        binary: target.exe.clone(),
        function: write,
    };
    let function = target.binary.function(write).map_err(|_| error())?;
    writer_fields(target.binary.code(&function), function.address)
        .map(WriterFields::to_cookie)
        .ok_or_else(error)
}

/// Where client-go's `rest.Request` keeps its rate limiter: the field
/// `tryThrottleWithInfo` first compares with nil. 0 when the client has no such
/// function (its throttling probes then attach nowhere).
fn rate_limiter_field(target: &Target) -> Result<u64, LoadError> {
    let Ok(function) = target.binary.function(probes::TRY_THROTTLE) else {
        return Ok(0);
    };
    nil_checked_field(target.binary.code(&function), function.address).ok_or_else(|| {
        LoadError::NoAttachPoint {
            binary: target.exe.clone(),
            function: function.name.clone(),
            instruction: "nil check of the request's rate limiter".into(),
        }
    })
}

/// Starts the sampling clock: a software CPU-clock perf event on every online CPU (it
/// works in VMs without a hardware PMU), running `cpu_sample` every `period_ns` of CPU
/// time; the program keeps only samples of observed processes. The kernel keeps a
/// CPU clock's period fixed, so each sample stands for exactly `period_ns`.
fn attach_cpu_sampler(ebpf: &mut Ebpf, period_ns: u64) -> Result<(), LoadError> {
    let sampler = |what, source: Box<dyn std::error::Error + Send + Sync>| LoadError::Sampler {
        what,
        source,
    };
    let program: &mut PerfEvent = ebpf
        .program_mut("cpu_sample")
        .ok_or_else(|| LoadError::Object {
            name: "cpu_sample",
            reason: "missing".into(),
        })?
        .try_into()
        .map_err(|e| sampler("loading cpu_sample", Box::new(e)))?;
    program.load().map_err(|e| LoadError::ProgramLoad {
        program: "cpu_sample",
        source: Box::new(e),
    })?;
    let cpus = online_cpus().map_err(|(_, e)| sampler("listing online CPUs", Box::new(e)))?;
    for cpu in &cpus {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu: *cpu },
                SamplePolicy::Period(period_ns),
                false,
            )
            .map_err(|e| sampler("perf_event_open of a CPU clock", Box::new(e)))?;
    }
    debug!(cpus = cpus.len(), period_ns, "CPU sampler attached");
    Ok(())
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(LoadError::Object {
        name,
        reason: "missing".into(),
    })?;
    T::try_from(map).map_err(|e| LoadError::Object {
        name,
        reason: e.to_string(),
    })
}
