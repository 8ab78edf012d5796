//! Users and groups: writing a new user namespace's id maps (runtime side)
//! and becoming the configured user (container side).

use std::os::fd::OwnedFd;
use std::process::Command;

use pathrs::flags::OpenFlags;

use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};
use crate::plan::isolation::IdRange;
use crate::plan::IdMapping;
use crate::process::sys;

/// Whether a `write_maps` failure is the kernel or `newuidmap` refusing
/// the mapping (EPERM/EACCES, the helper missing or refusing), the case
/// `--isolation auto` may avoid with chroot isolation; any other failure
/// (EIO, a vanished process) stays an error.
pub fn is_mapping_refusal(e: &Error) -> bool {
    match e {
        Error::Io { cause, .. } => {
            matches!(
                cause.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
            ) || cause.raw_os_error() == Some(libc::EPERM)
        }
        // newuidmap/newgidmap ran and refused the ranges.
        Error::Other(_) => true,
        _ => false,
    }
}

/// Writes `uid_map`/`gid_map` of the process `pid` through a private procfs
/// handle. An unprivileged caller may only map its own ids (after denying
/// setgroups); anything larger goes through the setuid `newuidmap` and
/// `newgidmap` helpers, as podman and runc do.
pub fn write_maps(pid: i32, uid_maps: &[IdMapping], gid_maps: &[IdMapping]) -> Result<()> {
    let privileged = rustix::process::geteuid().is_root();
    let own_only = |maps: &[IdMapping], own: u32| {
        maps.len() == 1 && maps[0].size == 1 && maps[0].host_id == own
    };
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    if privileged || (own_only(uid_maps, uid) && own_only(gid_maps, gid)) {
        if !privileged {
            write_proc(pid, "setgroups", "deny")?;
        }
        write_proc(pid, "uid_map", &format_maps(uid_maps))?;
        write_proc(pid, "gid_map", &format_maps(gid_maps))?;
        return Ok(());
    }
    for (helper, maps) in [("newuidmap", uid_maps), ("newgidmap", gid_maps)] {
        let mut cmd = Command::new(helper);
        cmd.arg(pid.to_string());
        for m in maps {
            cmd.args([m.container_id, m.host_id, m.size].map(|n| n.to_string()));
        }
        let out = cmd.output().ctx(|| {
            format!("{helper} (from the uidmap package) is needed to map more than your own id")
        })?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "{helper}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Whether `uid` has subordinate uid and gid ranges (`/etc/subuid`,
/// `/etc/subgid`, by name or number) and `newuidmap`/`newgidmap` exist to
/// write them: otherwise an unprivileged caller can map only its own ids.
pub fn has_subordinate_ids(uid: u32) -> bool {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let name = read("/etc/passwd").lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
    });
    let listed = |file: &str| {
        read(file).lines().any(|l| {
            let f: Vec<&str> = l.split(':').collect();
            f.len() == 3
                && f[2].trim().parse::<u64>().is_ok_and(|n| n > 0)
                && (f[0] == uid.to_string() || Some(f[0]) == name.as_deref())
        })
    };
    let in_path = |helper: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(helper).is_file()))
    };
    listed("/etc/subuid") && listed("/etc/subgid") && in_path("newuidmap") && in_path("newgidmap")
}

/// A new user namespace with the given maps, held by an fd: the mapping of
/// an idmapped mount. A short-lived child creates the namespace and exits
/// once the fd is open (the fd keeps the namespace alive).
pub fn user_namespace_with(uid_maps: &[IdMapping], gid_maps: &[IdMapping]) -> Result<OwnedFd> {
    use rustix::pipe::{pipe_with, PipeFlags};
    let (ready_read, ready_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
    let (done_read, done_write) = pipe_with(PipeFlags::CLOEXEC).ctx(|| "pipe")?;
    let pid = match sys::fork().ctx(|| "fork")? {
        sys::Forked::Child => {
            drop(ready_read);
            drop(done_write);
            let ok = sys::unshare(libc::CLONE_NEWUSER).is_ok();
            let _ = rustix::io::write(&ready_write, &[u8::from(ok)]);
            // Block until the parent closes its end: it has the fd then.
            let _ = rustix::io::read(&done_read, &mut [0u8; 1]);
            sys::exit_now(0)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(ready_write);
    drop(done_read);
    let result = (|| {
        let mut ok = [0u8; 1];
        let n = rustix::io::read(&ready_read, &mut ok).ctx(|| "user namespace helper")?;
        if n != 1 || ok[0] != 1 {
            return Err(Error::Other(
                "could not create a user namespace for an idmapped mount".into(),
            ));
        }
        write_maps(pid, uid_maps, gid_maps)?;
        procfs::open_link(
            ProcfsBase::ProcPid(pid as u32),
            "ns/user",
            OpenFlags::O_RDONLY,
        )
        .ctx(|| format!("/proc/{pid}/ns/user"))
    })();
    // Release the child and reap it, whatever happened.
    drop(done_write);
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    );
    result
}

fn format_maps(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn write_proc(pid: i32, file: &str, content: &str) -> Result<()> {
    procfs::write(ProcfsBase::ProcPid(pid as u32), file, content).ctx(|| {
        format!(
            "writing /proc/{pid}/{file} ({})",
            content.trim().replace('\n', ", ")
        )
    })
}

/// Becomes `uid:gid` with `groups`, keeping capabilities across the switch
/// so that the configured sets can be applied afterwards. `setgroups` is
/// tried first: only when it is refused is `/proc/self/setgroups` read
/// (a user namespace that denies it), which spares the common case a
/// procfs handle. There, groups that are only the primary `gid` (what
/// buildah and podman send: `additionalGids: [gid]`) are met by the
/// `setresgid` below; any other group is an error naming the field (runc
/// drops them all silently).
pub fn become_user(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    match sys::setgroups(groups) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !setgroups_allowed() => {
            if groups.iter().any(|&g| g != gid) {
                return Err(Error::spec(
                    "process.user.additionalGids",
                    "cannot set supplementary groups: setgroups is denied in this user namespace",
                ));
            }
        }
        Err(e) => return Err(e).ctx(|| "process.user.additionalGids: setgroups"),
    }
    sys::setresgid(gid).ctx(|| format!("process.user.gid {gid}: setresgid (is it mapped?)"))?;
    sys::setresuid(uid).ctx(|| format!("process.user.uid {uid}: setresuid (is it mapped?)"))?;
    Ok(())
}

/// Whether `setgroups(2)` is allowed in our user namespace.
pub fn setgroups_allowed() -> bool {
    procfs::read(ProcfsBase::ProcSelf, "setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// The id ranges of our own user namespace (the first and third columns
/// of `/proc/self/uid_map` and `gid_map`), or None in the initial user
/// namespace (everything mapped, `0 0 4294967295`) or when unreadable.
pub fn own_namespace_ranges() -> Option<(Vec<IdRange>, Vec<IdRange>)> {
    // Asked by every command (rootless detection) and again by `create`'s
    // host facts: the answer cannot change within one process.
    static RANGES: std::sync::OnceLock<Option<(Vec<IdRange>, Vec<IdRange>)>> =
        std::sync::OnceLock::new();
    RANGES.get_or_init(read_own_namespace_ranges).clone()
}

/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`
/// in linux/proc_ns.h, fixed since Linux 3.8).
const INITIAL_USER_NS_INODE: u64 = 0xEFFF_FFFD;

fn read_own_namespace_ranges() -> Option<(Vec<IdRange>, Vec<IdRange>)> {
    // The common case in one `statx`, without reading both maps: the
    // namespace file of the initial user namespace has a fixed inode.
    if std::fs::metadata("/proc/self/ns/user").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino() == INITIAL_USER_NS_INODE
    }) {
        return None;
    }
    let uids = parse_ranges(&procfs::read(ProcfsBase::ProcSelf, "uid_map").ok()?);
    let gids = parse_ranges(&procfs::read(ProcfsBase::ProcSelf, "gid_map").ok()?);
    let initial = |r: &[IdRange]| {
        r == [IdRange {
            start: 0,
            size: u32::MAX,
        }]
    };
    (!(initial(&uids) && initial(&gids))).then_some((uids, gids))
}

/// Whether the runtime runs in a user namespace that is not the initial one.
pub fn in_user_namespace() -> bool {
    own_namespace_ranges().is_some()
}

/// `uid_map` text → the ranges of ids inside (first and third columns).
fn parse_ranges(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (f.len() == 3).then(|| IdRange {
                start: f[0],
                size: f[2],
            })
        })
        .collect()
}

/// The mappings of process `pid`'s user namespace (its `/proc/<pid>/
/// {uid,gid}_map`, read in the private procfs): container id → host id.
pub fn maps_of(pid: i32) -> Result<(Vec<IdMapping>, Vec<IdMapping>)> {
    read_maps(ProcfsBase::ProcPid(pid as u32), &pid.to_string())
}

/// The mappings of our own user namespace.
pub fn maps_of_self() -> Result<(Vec<IdMapping>, Vec<IdMapping>)> {
    read_maps(ProcfsBase::ProcSelf, "self")
}

fn read_maps(base: ProcfsBase, who: &str) -> Result<(Vec<IdMapping>, Vec<IdMapping>)> {
    let read = |name: &str| -> Result<Vec<IdMapping>> {
        let text = procfs::read(base, name).ctx(|| format!("/proc/{who}/{name}"))?;
        parse_maps(&text)
            .ok_or_else(|| Error::Other(format!("/proc/{who}/{name}: unreadable map {text:?}")))
    };
    Ok((read("uid_map")?, read("gid_map")?))
}

/// A `uid_map` (or `gid_map`) text → mappings; None when a line is not
/// three numbers.
pub fn parse_maps(text: &str) -> Option<Vec<IdMapping>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            match f[..] {
                [container_id, host_id, size] => Some(IdMapping {
                    container_id,
                    host_id,
                    size,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_refusals_of_the_mapping_let_auto_fall_back() {
        use crate::error::Error;
        let io = |e: std::io::Error| Error::Io {
            context: "uid_map".into(),
            cause: e,
        };
        assert!(super::is_mapping_refusal(&io(
            std::io::Error::from_raw_os_error(libc::EPERM)
        )));
        assert!(super::is_mapping_refusal(&io(
            std::io::ErrorKind::NotFound.into()
        )));
        assert!(super::is_mapping_refusal(&Error::Other(
            "newuidmap: refused".into()
        )));
        assert!(!super::is_mapping_refusal(&io(
            std::io::Error::from_raw_os_error(libc::EIO)
        )));
        assert!(!super::is_mapping_refusal(&io(
            std::io::Error::from_raw_os_error(libc::ESRCH)
        )));
    }
    use super::*;

    #[test]
    fn uid_map_ranges_are_the_inside_columns() {
        assert_eq!(
            parse_ranges("         0     100000      65536\n 65536 1000 1\n"),
            vec![
                IdRange {
                    start: 0,
                    size: 65536
                },
                IdRange {
                    start: 65536,
                    size: 1
                }
            ]
        );
        assert_eq!(
            parse_ranges("0 0 4294967295\n"),
            vec![IdRange {
                start: 0,
                size: u32::MAX
            }]
        );
        assert!(parse_ranges("").is_empty());
    }
}
