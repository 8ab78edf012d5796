//! Tar streams of a container's files (`rootcell cp`'s data path), both
//! ways, with `docker cp`'s rules, over directory fds only.
//!
//! `pack` walks a tree inside a [`RootDir`] with `openat(O_NOFOLLOW)`
//! relative to each directory's fd: nothing met during the walk is ever
//! followed, a fifo or a device is written as a header only (never opened
//! for reading), a regular file is opened `O_NONBLOCK` and checked to still
//! be a regular file (a name listed as a regular file is opened that way at
//! once; one that is not, or no longer, one is looked at through an
//! `O_PATH` fd first), and its data is streamed with `pread` (or, into a
//! pipe, `sendfile` from that fd) bounded by the size in its header (holes
//! of a sparse file are not read from disk: `SEEK_DATA`/`SEEK_HOLE`). The
//! stream goes out through one fixed-size buffer: memory does not grow
//! with the tree or the files.
//!
//! `unpack` reads a tar stream entry by entry: each name is cleaned
//! lexically and refused when it climbs out of the destination (`../`), a
//! leading `/` is dropped (docker joins the name to the destination); the
//! parent directory is then resolved inside the root with
//! `openat2(RESOLVE_IN_ROOT)` (once for a run of entries in the same
//! directory: its fd is kept), so a symlink entry written earlier can lead
//! anywhere in the root but never out of it; the entry is created with a
//! `*at` call relative to that fd (`O_EXCL|O_NOFOLLOW`), and its owner,
//! mode and mtime are set on the created fd or on (parent fd, name) with
//! `AT_SYMLINK_NOFOLLOW`, never by path.

mod guard;
mod pack;
#[cfg(test)]
mod tests;
mod unpack;
mod xattr;

pub use pack::{pack, pack_into};
pub use unpack::unpack;

use std::ffi::OsString;
use std::io;
use std::path::Path;

use crate::plan::IdMapping;
use crate::Error;

/// The id written for a host id that has no container id (the kernel's
/// overflow id, as `stat` shows it inside a user namespace).
const OVERFLOW_ID: u32 = 65534;

/// Buffer size for streaming file data.
const CHUNK: usize = 128 * 1024;

/// A container's user namespace mappings; empty means no user namespace
/// (container ids are host ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

fn to_container(maps: &[IdMapping], host: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(host);
    }
    maps.iter().find_map(|m| {
        let off = host.checked_sub(m.host_id)?;
        (off < m.size)
            .then(|| m.container_id.checked_add(off))
            .flatten()
    })
}

fn to_host(maps: &[IdMapping], container: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(container);
    }
    maps.iter().find_map(|m| {
        let off = container.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id.checked_add(off)).flatten()
    })
}

impl IdMap {
    /// Host (uid, gid) → container ids; unmapped ids become 65534.
    pub fn host_to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            to_container(&self.uids, uid).unwrap_or(OVERFLOW_ID),
            to_container(&self.gids, gid).unwrap_or(OVERFLOW_ID),
        )
    }

    /// Container (uid, gid) → host ids; None when either is unmapped.
    pub fn container_to_host(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        Some((to_host(&self.uids, uid)?, to_host(&self.gids, gid)?))
    }
}

/// How `pack` reads its source.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// `-L`: follow the source path's own final symlink (inside the root).
    pub follow_link: bool,
    /// The container's mappings: owners in the stream are container ids,
    /// as docker's daemon writes them whether or not `-a` was given (`-a`
    /// only matters where the stream is extracted).
    pub ids: IdMap,
    /// The name the source gets in the stream instead of its own (docker's
    /// `RebaseArchiveEntries`, done while packing): the source entry and
    /// the prefix of everything below it. A directory's contents (`dir/.`)
    /// then travel under that name, the directory's own entry included.
    pub rename: Option<OsString>,
}

/// Who owns what `unpack` creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ownership {
    /// No chown: entries belong to the caller (a host extraction without
    /// `-a`).
    #[default]
    Caller,
    /// The owners in the stream, read as container ids and mapped to host
    /// ids (`-a`; docker also does this into a container without `-a`).
    Archive,
    /// Every entry gets these container ids, mapped to host ids (docker's
    /// `-a` into a container with a configured user).
    Fixed { uid: u32, gid: u32 },
}

/// How `unpack` writes.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    pub ownership: Ownership,
    pub ids: IdMap,
    /// What becomes of character and block device entries (the caller's
    /// decision: `cp::device_rule`).
    pub devices: DeviceNodes,
}

/// What `unpack` does with a character or block device entry. Decided by
/// the caller from who may create a device where the entry lands (the
/// plan: `cp::device_rule`), never guessed from a failing `mknod`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceNodes {
    /// The copy fails, naming the entry.
    #[default]
    Refuse,
    /// The entry is skipped with a warning naming it (docker in a user
    /// namespace, podman onto the host).
    Skip,
    /// The node is created (`mknodat`).
    Create,
}

fn io_err(context: impl Into<String>, cause: impl Into<io::Error>) -> Error {
    Error::Io {
        context: context.into(),
        cause: cause.into(),
    }
}

/// An error naming a tar entry; a hostile name (up to a MiB) is shown by
/// its start, its end and its length, so the message stays readable.
fn entry_err(name: &Path, reason: impl std::fmt::Display) -> Error {
    use std::os::unix::ffi::OsStrExt;
    const SHOWN: usize = 256;
    let b = name.as_os_str().as_bytes();
    if b.len() <= SHOWN {
        return Error::Other(format!("tar entry {:?}: {reason}", name));
    }
    let head = Path::new(std::ffi::OsStr::from_bytes(&b[..SHOWN / 2]));
    let tail = Path::new(std::ffi::OsStr::from_bytes(&b[b.len() - SHOWN / 4..]));
    Error::Other(format!(
        "tar entry {head:?}…{tail:?} ({} bytes): {reason}",
        b.len()
    ))
}

// ---------------------------------------------------------------- pack
