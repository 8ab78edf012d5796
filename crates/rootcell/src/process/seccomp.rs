//! Executes a [`SeccompPlan`]: the runtime compiles it with libseccomp into
//! a BPF program before forking; the container's process loads that
//! program with a raw `seccomp(2)` just before it drops its privileges or
//! execs (see `prepare`); the runtime sends a notification fd to the seccomp
//! agent.
//!
//! Compiling in the runtime keeps libseccomp (and its allocations and
//! errors) out of the container's process, which only makes one syscall.
//! Loading the program ourselves instead of `seccomp_load` gives every
//! kernel flag (`WAIT_KILLABLE_RECV` needs libseccomp ≥ 2.6 otherwise) and
//! no implicit `no_new_privs`.

use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::error::{Error, IoContext, Result};
use crate::plan::seccomp::{CompareOp, SeccompAction, SeccompFlag, SeccompPlan};
use crate::process::sys;

const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = 1 << 0;
const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: libc::c_ulong = 1 << 4;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;

/// A compiled filter, ready for `seccomp(2)`.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` for the load.
    pub flags: libc::c_ulong,
}

impl Filter {
    /// The filter has `SCMP_ACT_NOTIFY` rules: loading it returns a
    /// notification fd for the agent.
    pub fn notifies(&self) -> bool {
        self.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }
}

fn kernel_flag(flag: SeccompFlag) -> libc::c_ulong {
    match flag {
        SeccompFlag::Tsync => SECCOMP_FILTER_FLAG_TSYNC,
        SeccompFlag::Log => SECCOMP_FILTER_FLAG_LOG,
        SeccompFlag::SpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        SeccompFlag::WaitKillableRecv => SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    }
}

fn scmp_action(a: SeccompAction) -> ScmpAction {
    match a {
        SeccompAction::KillThread => ScmpAction::KillThread,
        SeccompAction::KillProcess => ScmpAction::KillProcess,
        SeccompAction::Trap => ScmpAction::Trap,
        SeccompAction::Errno { errno } => ScmpAction::Errno(i32::from(errno)),
        SeccompAction::Trace { message } => ScmpAction::Trace(message),
        SeccompAction::Allow => ScmpAction::Allow,
        SeccompAction::Log => ScmpAction::Log,
        SeccompAction::Notify => ScmpAction::Notify,
    }
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "?".into())
}

/// Compiles the plan into BPF with libseccomp. Runs in the runtime, before
/// the container's processes exist.
pub fn compile(plan: &SeccompPlan) -> Result<Filter> {
    const F: &str = "linux.seccomp";
    let lib = |e: libseccomp::error::SeccompError| e.to_string();
    let mut ctx = ScmpFilterContext::new(scmp_action(plan.default_action)).map_err(|e| {
        Error::spec(
            format!("{F}.defaultAction"),
            format!("libseccomp: {}", lib(e)),
        )
    })?;
    for (i, name) in plan.architectures.iter().enumerate() {
        let unsupported = || {
            Error::spec(
                format!("{F}.architectures[{i}]"),
                format!(
                    "{name} is not supported by libseccomp {}",
                    libseccomp_version()
                ),
            )
        };
        let arch = ScmpArch::from_str(name).map_err(|_| unsupported())?;
        if !supported_architectures().contains(&name.as_str()) {
            return Err(unsupported());
        }
        ctx.add_arch(arch).map_err(|e| {
            Error::spec(
                format!("{F}.architectures[{i}]"),
                format!(
                    "libseccomp cannot add {name} to a filter for this machine (a filter \
                     cannot mix byte orders): {}",
                    lib(e)
                ),
            )
        })?;
    }
    for rule in &plan.rules {
        let field = format!("{F}.syscalls[{}]", rule.config_index);
        let syscall = ScmpSyscall::from_name(&rule.syscall).map_err(|e| {
            Error::spec(
                format!("{field}.names"),
                format!("{}: {}", rule.syscall, lib(e)),
            )
        })?;
        let conditions: Vec<ScmpArgCompare> = rule
            .conditions
            .iter()
            .map(|c| {
                let op = match c.op {
                    CompareOp::Ne => ScmpCompareOp::NotEqual,
                    CompareOp::Lt => ScmpCompareOp::Less,
                    CompareOp::Le => ScmpCompareOp::LessOrEqual,
                    CompareOp::Eq => ScmpCompareOp::Equal,
                    CompareOp::Ge => ScmpCompareOp::GreaterEqual,
                    CompareOp::Gt => ScmpCompareOp::Greater,
                    CompareOp::MaskedEq => ScmpCompareOp::MaskedEqual(c.value),
                };
                let datum = if c.op == CompareOp::MaskedEq {
                    c.value_two
                } else {
                    c.value
                };
                ScmpArgCompare::new(c.index, op, datum)
            })
            .collect();
        ctx.add_rule_conditional(scmp_action(rule.action), syscall, &conditions)
            .map_err(|e| {
                Error::spec(
                    field,
                    format!(
                        "libseccomp refused the rule for {}: {}",
                        rule.syscall,
                        lib(e)
                    ),
                )
            })?;
    }

    let mut program = export(&ctx).ctx(|| format!("{F}: exporting the compiled filter"))?;
    if let Some(stub) = &plan.enosys_stub {
        program = with_enosys_stub(stub.above, program).map_err(|why| {
            Error::spec(
                format!("{F}.syscalls"),
                format!("the ENOSYS stub for syscalls above {}: {why}", stub.newest),
            )
        })?;
    }
    Ok(Filter {
        program,
        flags: load_flags(plan)?,
    })
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscall numbers have this bit; they share x86_64's audit arch.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: Option<u32> = Some(0xc000_003e); // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: Option<u32> = Some(0xc000_00b7); // AUDIT_ARCH_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH_NATIVE: Option<u32> = None;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// runc's ENOSYS stub, put in front of libseccomp's program: on the native
/// architecture (not x32, whose numbers carry `X32_SYSCALL_BIT` and go to
/// libseccomp's program), a syscall numbered above `above` returns ENOSYS;
/// everything else falls through into libseccomp's program, which starts
/// by loading the architecture itself (checked here, so that a libseccomp
/// that ever stops doing so cannot be misread).
fn with_enosys_stub(
    above: u32,
    program: Vec<libc::sock_filter>,
) -> std::result::Result<Vec<libc::sock_filter>, String> {
    let Some(arch) = AUDIT_ARCH_NATIVE else {
        return Ok(program);
    };
    match program.first() {
        Some(first) if first.code == BPF_LD_W_ABS && first.k == DATA_ARCH => {}
        _ => return Err("libseccomp's program does not start by loading the architecture".into()),
    }
    let stub = [
        /* 0 */ insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
        /* 1 */ insn(BPF_JEQ_K, 0, 4, arch), // other arch: to 6
        /* 2 */ insn(BPF_LD_W_ABS, 0, 0, DATA_NR),
        /* 3 */ insn(BPF_JSET_K, 2, 0, X32_SYSCALL_BIT), // x32: to 6
        /* 4 */ insn(BPF_JGT_K, 0, 1, above), // not newer: to 6
        /* 5 */ insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    if stub.len() + program.len() > MAX_INSNS {
        return Err(format!(
            "the filter would have {} instructions, more than the kernel's {MAX_INSNS}",
            stub.len() + program.len()
        ));
    }
    Ok(stub.into_iter().chain(program).collect())
}

/// The `seccomp(2)` flags for the plan, each checked against the kernel.
fn load_flags(plan: &SeccompPlan) -> Result<libc::c_ulong> {
    let notifies = plan.rules.iter().any(|r| r.action == SeccompAction::Notify);
    let mut flags = plan
        .flags
        .iter()
        .filter(|f| **f != SeccompFlag::WaitKillableRecv || notifies)
        .fold(0, |acc, f| acc | kernel_flag(*f));
    if notifies {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with a listener unless a failed sync
        // reports ESRCH (the return value is the fd).
        if flags & SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    for (i, flag) in plan.flags.iter().enumerate() {
        if !flag_supported(*flag) {
            return Err(Error::spec(
                format!("linux.seccomp.flags[{i}]"),
                format!("{} is not supported by this kernel", flag.name()),
            ));
        }
    }
    Ok(flags)
}

/// Where compiled filters are kept, below the state root.
pub const CACHE_DIR: [&str; 2] = [".cache", "seccomp"];

/// Like [`compile`], but the BPF program comes from the cache below
/// `state_root` when the same plan was compiled before by the same
/// libseccomp for this machine: compiling podman's default profile costs
/// tens of milliseconds, loading it back a few syscalls. The flags are
/// checked against the kernel every time. Cache failures only cost the
/// compilation.
///
/// A cached program becomes the container's filter, so the cache is
/// trusted only as far as `state::trust` allows: each directory and the
/// file must be the runtime user's and not writable by others. A cache
/// that fails is never read (nor written, for a directory), with a
/// warning; the filter is compiled from the config instead.
pub fn compile_cached(plan: &SeccompPlan, state_root: &Path) -> Result<Filter> {
    let key = cache_key(plan);
    let name = format!("{:016x}.bpf", fnv1a(key.as_bytes()));
    let dir_path = CACHE_DIR
        .iter()
        .fold(state_root.to_path_buf(), |p, c| p.join(c));
    let path = dir_path.join(&name);
    let dir = match crate::state::trust::private_dir(state_root, &CACHE_DIR, "seccomp cache") {
        Ok(dir) => Some(dir),
        Err(e) => {
            untrusted_cache(&e);
            None
        }
    };
    if let Some(program) = dir
        .as_ref()
        .and_then(|d| read_cached(d, &name, &path, &key))
    {
        return Ok(Filter {
            program,
            flags: load_flags(plan)?,
        });
    }
    let filter = compile(plan)?;
    if let Some(dir) = &dir {
        if let Err(e) = write_cached(dir, &name, &key, &filter.program) {
            tracing::debug!("seccomp cache {}: {e}", path.display());
        }
    }
    Ok(filter)
}

fn untrusted_cache(e: &Error) {
    tracing::warn!("{e}; compiling the seccomp filter instead");
    eprintln!("rootcell: warning: {e}; compiling the seccomp filter instead");
}

/// What the compiled program depends on: the plan, libseccomp and the
/// machine's architecture.
fn cache_key(plan: &SeccompPlan) -> String {
    format!(
        "rootcell seccomp cache v2 (ENOSYS stub); libseccomp {}; arch {}; {}",
        libseccomp_version(),
        std::env::consts::ARCH,
        serde_json::to_string(plan).unwrap_or_default()
    )
}

/// FNV-1a, for file names only: the whole key is compared on reading.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const INSN_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

/// The cached program, if `name` in `dir` passes the owner and mode checks
/// and holds exactly `key`, a newline and whole BPF instructions.
fn read_cached(
    dir: &OwnedFd,
    name: &str,
    path: &Path,
    key: &str,
) -> Option<Vec<libc::sock_filter>> {
    let mut file = match crate::state::trust::open_file_at(dir, name, "seccomp cache file", path) {
        Ok(file) => file?,
        Err(e) => {
            untrusted_cache(&e);
            return None;
        }
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let body = bytes.strip_prefix(key.as_bytes())?.strip_prefix(b"\n")?;
    if body.is_empty() || body.len() % INSN_SIZE != 0 {
        return None;
    }
    Some(instructions(body))
}

/// Writes the program to a private (0600) temporary file in `dir`, then
/// renames it over `name`: whole or not at all, and an untrusted file of
/// that name is replaced.
fn write_cached(
    dir: &OwnedFd,
    name: &str,
    key: &str,
    program: &[libc::sock_filter],
) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let mut bytes = key.as_bytes().to_vec();
    bytes.push(b'\n');
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.extend_from_slice(&[insn.jt, insn.jf]);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    let tmp = format!("{name}.tmp.{}", std::process::id());
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let written = std::fs::File::from(fd).write_all(&bytes);
    written
        .and_then(|()| Ok(rustix::fs::renameat(dir, tmp.as_str(), dir, name)?))
        .inspect_err(|_| {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        })
}

fn instructions(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// The BPF program libseccomp generates, read back from a memfd.
fn export(ctx: &ScmpFilterContext) -> io::Result<Vec<libc::sock_filter>> {
    let fd = rustix::fs::memfd_create("rootcell-seccomp", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(file.as_fd()).map_err(io::Error::other)?;
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if bytes.is_empty() || bytes.len() % INSN_SIZE != 0 {
        return Err(io::Error::other(format!(
            "libseccomp exported {} bytes, not whole BPF instructions",
            bytes.len()
        )));
    }
    Ok(instructions(&bytes))
}

/// Loads the filter on the calling thread. Returns the notification fd
/// when the filter notifies; the kernel opens it close-on-exec, so nothing
/// more is needed for it not to reach the process's program (no syscall
/// may follow the load but `execve` and the fd's handoff).
pub fn load(filter: &Filter) -> Result<Option<OwnedFd>> {
    sys::seccomp_set_filter(filter.flags, &filter.program).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EACCES) {
            " (loading a filter needs process.noNewPrivileges or CAP_SYS_ADMIN)"
        } else {
            ""
        };
        Error::Io {
            context: format!("linux.seccomp: loading the filter{hint}"),
            cause: e,
        }
    })
}

/// Whether this kernel accepts a filter flag.
pub fn flag_supported(flag: SeccompFlag) -> bool {
    let bits = match flag {
        // Only valid together with a listener.
        SeccompFlag::WaitKillableRecv => {
            SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | SECCOMP_FILTER_FLAG_NEW_LISTENER
        }
        other => kernel_flag(other),
    };
    sys::seccomp_flag_supported(bits)
}

/// The architectures this libseccomp can add to a filter, by name.
pub fn supported_architectures() -> &'static [&'static str] {
    static ARCHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    ARCHS.get_or_init(probe_architectures)
}

fn probe_architectures() -> Vec<&'static str> {
    const ALL: [&str; 24] = [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_NATIVE",
    ];
    // One filter per architecture, without the native one: a filter
    // cannot mix byte orders.
    let known = |arch: ScmpArch| {
        ScmpFilterContext::new(ScmpAction::Allow).is_ok_and(|mut ctx| {
            ctx.remove_arch(ScmpArch::native()).is_ok() && ctx.add_arch(arch).is_ok()
        })
    };
    ALL.into_iter()
        .filter(|name| *name != "SCMP_ARCH_NATIVE")
        .filter(|name| ScmpArch::from_str(name).is_ok_and(known))
        .collect()
}

/// Sends the notification fd to the seccomp agent at `path`, as the
/// runtime spec's seccomp-agent protocol says: one connection, one
/// `sendmsg` carrying the container process state as JSON with the fd in
/// `SCM_RIGHTS`, then close.
pub fn send_to_agent(
    path: &Path,
    pid: i32,
    metadata: &str,
    state: serde_json::Value,
    fd: &OwnedFd,
) -> Result<()> {
    let field = || {
        format!(
            "linux.seccomp.listenerPath: sending the notification fd to the agent at {}",
            path.display()
        )
    };
    let mut payload = serde_json::json!({
        "ociVersion": state["ociVersion"].clone(),
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if !metadata.is_empty() {
        payload["metadata"] = metadata.into();
    }
    let bytes = serde_json::to_vec(&payload).map_err(|e| Error::Other(e.to_string()))?;
    let stream = UnixStream::connect(path).ctx(field)?;
    // An agent that accepts but never reads must not hang the create.
    stream
        .set_write_timeout(Some(std::time::Duration::from_secs(10)))
        .ctx(field)?;
    crate::process::sync::send_with_fd(stream.as_fd(), &bytes, fd.as_fd()).ctx(field)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(v: serde_json::Value) -> SeccompPlan {
        let s = serde_json::from_value(v).unwrap();
        crate::plan::seccomp::seccomp_plan(&s, &|n| ScmpSyscall::from_name(n).ok().map(i32::from))
            .unwrap()
    }

    /// A classic BPF interpreter for what seccomp programs use, to run the
    /// compiled filters on made-up syscalls.
    fn run_bpf(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        loop {
            let i = prog[pc];
            let k = i.k;
            pc += 1;
            let code = u32::from(i.code);
            match code & 0x07 {
                0x00 => match code & 0xe0 {
                    0x20 => {
                        let o = k as usize;
                        a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap())
                    }
                    0x00 => a = k,
                    0x60 => a = mem[k as usize],
                    m => panic!("ld mode {m:#x}"),
                },
                0x01 => match code & 0xe0 {
                    0x00 => x = k,
                    0x60 => x = mem[k as usize],
                    m => panic!("ldx mode {m:#x}"),
                },
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x04 => {
                    let v = if code & 0x08 != 0 { x } else { k };
                    a = match code & 0xf0 {
                        0x00 => a.wrapping_add(v),
                        0x10 => a.wrapping_sub(v),
                        0x40 => a | v,
                        0x50 => a & v,
                        0x80 => (!a).wrapping_add(1),
                        op => panic!("alu {op:#x}"),
                    }
                }
                0x05 => {
                    let v = if code & 0x08 != 0 { x } else { k };
                    let taken = match code & 0xf0 {
                        0x00 => {
                            pc += k as usize;
                            continue;
                        }
                        0x10 => a == v,
                        0x20 => a > v,
                        0x30 => a >= v,
                        0x40 => a & v != 0,
                        op => panic!("jmp {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                0x06 => return if code & 0x18 == 0x10 { a } else { k },
                0x07 => {
                    if code & 0xf8 == 0 {
                        x = a
                    } else {
                        a = x
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_enosys_stub_answers_newer_syscalls_and_leaves_the_rest() {
        let p = plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "getpid", "copy_file_range"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let stub = p.enosys_stub.clone().unwrap();
        assert_eq!((stub.above, stub.newest.as_str()), (326, "copy_file_range"));
        let f = compile(&p).unwrap();
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let call = |nr: i64, arch| run_bpf(&f.program, nr as u32, arch, [0; 6]);
        assert_eq!(call(libc::SYS_read, X86_64), ALLOW);
        assert_eq!(call(libc::SYS_copy_file_range, X86_64), ALLOW);
        // Older than the newest named: the profile's default.
        assert_eq!(call(libc::SYS_mount, X86_64), eperm);
        assert_eq!(call(libc::SYS_unshare, X86_64), eperm);
        // Newer: ENOSYS, so libc falls back.
        for nr in [
            libc::SYS_statx,
            libc::SYS_openat2,
            libc::SYS_close_range,
            libc::SYS_clone3,
            libc::SYS_faccessat2,
            libc::SYS_pidfd_open,
        ] {
            assert_eq!(call(nr, X86_64), enosys, "{nr}");
        }
        // x32 and i386 go to libseccomp's program.
        assert_eq!(call(0x4000_0000 | 332, X86_64), eperm, "x32 statx");
        assert_eq!(call(0x4000_0000, X86_64), ALLOW, "x32 read");
        assert_eq!(call(383, I386), eperm, "i386 statx");
        assert_eq!(call(20, I386), ALLOW, "i386 getpid");
        // An architecture the filter lacks is killed by libseccomp.
        assert_eq!(call(0, 0xc000_00b7), 0);

        // Allowing by default: no stub.
        let p = plan(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        assert_eq!(p.enosys_stub, None);
        let f = compile(&p).unwrap();
        assert_eq!(
            run_bpf(&f.program, libc::SYS_statx as u32, X86_64, [0; 6]),
            ALLOW
        );
    }

    #[test]
    fn the_stub_needs_libseccomps_arch_load_and_fits_the_kernels_limit() {
        let main = vec![
            insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
            insn(BPF_RET_K, 0, 0, ALLOW),
        ];
        if AUDIT_ARCH_NATIVE.is_none() {
            return;
        }
        let p = with_enosys_stub(10, main.clone()).unwrap();
        assert_eq!(p.len(), 8);
        assert_eq!(
            run_bpf(&p, 11, AUDIT_ARCH_NATIVE.unwrap(), [0; 6]),
            0x0005_0026
        );
        assert_eq!(run_bpf(&p, 10, AUDIT_ARCH_NATIVE.unwrap(), [0; 6]), ALLOW);
        assert!(with_enosys_stub(10, vec![insn(BPF_RET_K, 0, 0, ALLOW)]).is_err());
        let long = [main[0]]
            .into_iter()
            .chain(std::iter::repeat_n(main[1], MAX_INSNS - 1))
            .collect();
        assert!(with_enosys_stub(10, long).is_err());
    }

    #[test]
    fn compiles_to_bpf_with_the_right_flags() {
        let f = compile(&plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [
                {"names": ["mkdir", "_llseek"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 8, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        })))
        .unwrap();
        assert!(f.program.len() > 5, "{}", f.program.len());
        // WAIT_KILLABLE_RECV only matters with a listener: dropped here.
        assert_eq!(f.flags, SECCOMP_FILTER_FLAG_LOG);
        assert!(!f.notifies());

        let f = compile(&plan(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .unwrap();
        assert!(f.notifies());
        assert_eq!(
            f.flags,
            SECCOMP_FILTER_FLAG_TSYNC
                | SECCOMP_FILTER_FLAG_TSYNC_ESRCH
                | SECCOMP_FILTER_FLAG_NEW_LISTENER
                | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        );
    }

    #[test]
    fn architectures_libseccomp_lacks_name_the_field() {
        let archs = supported_architectures();
        assert!(archs.contains(&"SCMP_ARCH_X86_64"), "{archs:?}");
        assert!(archs.contains(&"SCMP_ARCH_X86"), "{archs:?}");
        if !archs.contains(&"SCMP_ARCH_LOONGARCH64") {
            let e = compile(&plan(serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64"]
            })))
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("linux.seccomp.architectures[1]:"), "{e}");
        }
    }
}
