//! The one parser of `/proc/<pid>/mountinfo` (proc(5)). Every reader of
//! the mount table (cgroup hierarchies, the rootfs's parent mount, the
//! host's proc and sysfs mounts) goes through it, so escapes are undone
//! the same way everywhere.
//!
//! A line:
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//! ```
//!
//! (7) is zero or more optional fields ended by the `-` of (8). The kernel
//! escapes space, tab, newline and backslash in the paths, the source,
//! the type and the options as `\ooo` octal (`\040`, `\011`, `\012`,
//! `\134`); everything else, non-UTF-8 bytes included, is written as is.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::error::{Error, IoContext, Result};
use crate::fs::procfs::{self, ProcfsBase};

/// One mount: one line of mountinfo, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// (1) the mount's id (`statx`'s `stx_mnt_id`).
    pub mount_id: u64,
    /// (2) the parent mount's id (itself for the namespace's root).
    pub parent_id: u64,
    /// (3) `st_dev` of the filesystem.
    pub major: u32,
    pub minor: u32,
    /// (4) the directory of the filesystem that is the mount's root.
    pub root: PathBuf,
    /// (5) where it is mounted, relative to the reader's root.
    pub mount_point: PathBuf,
    /// (6) per-mount options (`rw`, `nosuid`, `relatime`...).
    pub mount_options: Vec<String>,
    /// (7) optional fields: `shared:N`, `master:N`, `propagate_from:N`,
    /// `unbindable`.
    pub optional: Vec<String>,
    /// (9) filesystem type (`ext4`, `cgroup2`, `fuse.sshfs`).
    pub fs_type: String,
    /// (10) filesystem-specific source (`/dev/sda1`, `tmpfs`, `none`).
    pub source: OsString,
    /// (11) per-superblock options (`rw`, `cpu`, `name=systemd`...).
    pub super_options: Vec<String>,
}

impl MountInfo {
    /// The peer group the mount shares events with (`shared:N`).
    pub fn shared(&self) -> Option<u64> {
        self.optional_value("shared:")
    }

    /// The peer group the mount receives events from (`master:N`).
    pub fn master(&self) -> Option<u64> {
        self.optional_value("master:")
    }

    fn optional_value(&self, prefix: &str) -> Option<u64> {
        self.optional
            .iter()
            .find_map(|f| f.strip_prefix(prefix)?.parse().ok())
    }
}

/// The calling process's mount table, read through the private procfs.
pub fn read_self() -> Result<Vec<MountInfo>> {
    let text =
        procfs::read_bytes(ProcfsBase::ProcSelf, "mountinfo").ctx(|| "/proc/self/mountinfo")?;
    parse(&text).map_err(|e| Error::Other(format!("/proc/self/mountinfo: {e}")))
}

/// The proc and sysfs mounts of a table and every mount below `/proc` and
/// `/sys`, deepest first: what `MS_MOVE` + chroot must hide (a fully
/// visible procfs or sysfs left in the mount namespace would let the
/// container mount a fresh, unmasked one: the kernel's "too revealing"
/// check passes).
pub fn proc_and_sys_points(table: &[MountInfo]) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = table
        .iter()
        .filter(|m| {
            matches!(m.fs_type.as_str(), "proc" | "sysfs")
                || m.mount_point.starts_with("/proc")
                || m.mount_point.starts_with("/sys")
        })
        .map(|m| m.mount_point.clone())
        .collect();
    // Stable: mounts stacked on one point stay listed once each, and
    // each unmount takes the top one.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

/// Parses a whole mountinfo file. A malformed line fails the parse naming
/// its number: a table read wrong would send mounts to the wrong place.
pub fn parse(text: &[u8]) -> Result<Vec<MountInfo>, String> {
    text.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            parse_line(line).map_err(|why| {
                format!(
                    "line {} ({:?}): {why}",
                    i + 1,
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect()
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<MountInfo, String> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let sep = fields
        .iter()
        .skip(6)
        .position(|f| *f == b"-")
        .map(|p| p + 6)
        .ok_or("no `-` after the optional fields")?;
    if fields.len() != sep + 4 {
        return Err(format!(
            "{} fields after `-`, expected 3 (type, source, super options)",
            fields.len() - sep - 1
        ));
    }
    let number = |i: usize, what: &str| -> Result<u64, String> {
        std::str::from_utf8(fields[i])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what} {:?} is not a number", lossy(fields[i])))
    };
    let (major, minor) = std::str::from_utf8(fields[2])
        .ok()
        .and_then(|s| s.split_once(':'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| format!("major:minor {:?} is malformed", lossy(fields[2])))?;
    let text = |f: &[u8]| String::from_utf8_lossy(&unescape(f)).into_owned();
    let list = |f: &[u8]| -> Vec<String> {
        f.split(|b| *b == b',')
            .filter(|o| !o.is_empty())
            .map(text)
            .collect()
    };
    Ok(MountInfo {
        mount_id: number(0, "mount id")?,
        parent_id: number(1, "parent id")?,
        major,
        minor,
        root: path(fields[3]),
        mount_point: path(fields[4]),
        mount_options: list(fields[5]),
        optional: fields[6..sep].iter().map(|f| text(f)).collect(),
        fs_type: text(fields[sep + 1]),
        source: OsString::from_vec(unescape(fields[sep + 2])),
        super_options: list(fields[sep + 3]),
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

/// Undoes the kernel's `\ooo` escapes (three octal digits, as
/// `seq_escape` writes them); any other backslash stays as it is.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = match field.get(i + 1..i + 4) {
            Some([a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) if field[i] == b'\\' => {
                Some((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'))
            }
            _ => None,
        };
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> MountInfo {
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn proc5_example() {
        let m =
            one("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue");
        assert_eq!(m.mount_id, 36);
        assert_eq!(m.parent_id, 35);
        assert_eq!((m.major, m.minor), (98, 0));
        assert_eq!(m.root, PathBuf::from("/mnt1"));
        assert_eq!(m.mount_point, PathBuf::from("/mnt2"));
        assert_eq!(m.mount_options, vec!["rw", "noatime"]);
        assert_eq!(m.optional, vec!["master:1"]);
        assert_eq!(m.master(), Some(1));
        assert_eq!(m.shared(), None);
        assert_eq!(m.fs_type, "ext3");
        assert_eq!(m.source, OsString::from("/dev/root"));
        assert_eq!(m.super_options, vec!["rw", "errors=continue"]);
    }

    #[test]
    fn no_optional_fields() {
        let m = one("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw");
        assert!(m.optional.is_empty());
        assert_eq!(m.fs_type, "cgroup2");
        assert_eq!(m.super_options, vec!["rw"]);
        assert_eq!(m.shared(), None);
    }

    #[test]
    fn several_optional_fields() {
        let m = one(
            "300 29 0:50 / /a rw shared:7 master:3 propagate_from:2 unbindable - tmpfs tmpfs rw,size=10k",
        );
        assert_eq!(
            m.optional,
            vec!["shared:7", "master:3", "propagate_from:2", "unbindable"]
        );
        assert_eq!(m.shared(), Some(7));
        assert_eq!(m.master(), Some(3));
        assert_eq!(m.fs_type, "tmpfs");
    }

    #[test]
    fn escapes_are_undone_in_every_field() {
        // A space, a tab, a newline and a backslash in the paths; a space
        // in the source and in a super option.
        let m = one(
            r"50 1 8:1 /with\040space/tab\011nl\012 /mnt/back\134slash\040x rw shared:1 - fuse.my\040fs my\040source rw,opt=a\040b",
        );
        assert_eq!(m.root, PathBuf::from("/with space/tab\tnl\n"));
        assert_eq!(m.mount_point, PathBuf::from("/mnt/back\\slash x"));
        assert_eq!(m.fs_type, "fuse.my fs");
        assert_eq!(m.source, OsString::from("my source"));
        assert_eq!(m.super_options, vec!["rw", "opt=a b"]);
        assert_eq!(m.shared(), Some(1));
    }

    #[test]
    fn a_dash_in_a_path_is_not_the_separator() {
        // `-` as a whole mount point field, and a root of `-`: only a `-`
        // after the first six fields ends the optional fields.
        let m = one("60 1 0:5 - /- rw - tmpfs none rw");
        assert_eq!(m.root, PathBuf::from("-"));
        assert_eq!(m.mount_point, PathBuf::from("/-"));
        assert!(m.optional.is_empty());
        assert_eq!(m.source, OsString::from("none"));
    }

    #[test]
    fn non_utf8_bytes_and_stray_backslashes_are_kept() {
        let m = parse_line(b"61 1 0:5 / /x\xff\\9y rw - tmpfs none rw").unwrap();
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(m.mount_point.as_os_str().as_bytes(), b"/x\xff\\9y");
        assert_eq!(unescape(br"\04"), br"\04");
        assert_eq!(unescape(br"a\400b"), br"a\400b", "not a byte: kept");
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let text =
            b"41 31 0:38 / /ok rw - cgroup2 cgroup2 rw\n42 31 0:38 / /bad rw cgroup2 cgroup2 rw\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("line 2 "), "{err}");
        assert!(parse_line(b"x 1 0:1 / / rw - a b c").is_err());
        assert!(parse_line(b"1 1 01 / / rw - a b c").is_err());
        assert!(parse_line(b"1 1 0:1 / / rw - a b").is_err());
        assert_eq!(parse(b"").unwrap(), Vec::new());
    }

    #[test]
    fn this_process_table_parses() {
        let text = std::fs::read("/proc/self/mountinfo").unwrap();
        let all = parse(&text).unwrap();
        assert!(all
            .iter()
            .any(|m| m.mount_point == std::path::Path::new("/")));
    }

    #[test]
    fn proc_and_sys_points_are_listed_deepest_first_stacked_twice() {
        let text = b"1 0 0:1 / / rw - ext4 /dev/vda rw
2 1 0:2 / /proc rw - proc proc rw
3 2 0:3 / /proc/sys/fs/binfmt_misc rw - binfmt_misc b rw
4 1 0:4 / /sys rw - sysfs sysfs rw
5 4 0:5 / /sys/fs/cgroup rw - tmpfs tmpfs rw
6 1 0:6 / /run/other/proc rw - proc proc rw
7 1 0:7 / /tmp rw - tmpfs tmpfs rw
8 2 0:2 / /proc rw - proc proc rw
";
        let table = parse(text).unwrap();
        let points: Vec<String> = proc_and_sys_points(&table)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            points,
            [
                "/proc/sys/fs/binfmt_misc",
                "/sys/fs/cgroup",
                "/run/other/proc",
                "/proc",
                "/sys",
                "/proc"
            ]
        );
    }
}
