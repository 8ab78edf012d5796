//! Extended attributes in tar streams, as docker's `pkg/archive` carries
//! them: PAX records `SCHILY.xattr.<name>`.
//!
//! Packing writes `security.capability` only (docker's
//! `ReadSecurityXattrToTarHeader`), read with `fgetxattr` on the entry's
//! own open fd (regular files and directories). A v3 capability (one bound
//! to the root of a user namespace, `rootid`) is rewritten for the stream:
//! owned by the container's root it becomes a v2 capability, as docker
//! writes it; owned by another container id it stays v3 with that
//! container id (docker would widen it to v2); owned by an id the container
//! does not map it is left out (no one in the container holds it).
//!
//! Unpacking sets every `SCHILY.xattr.*` record with `fsetxattr` on the
//! created (or met) regular file or directory, after its owner (a chown
//! clears `security.capability`) and before its mode, as docker's
//! `createTarFile`. An `EPERM` is skipped with a debug line, as docker
//! skips it; any other refusal (`ENOTSUP` included: docker's cp does not
//! ask for best-effort xattrs) is an error naming the entry and the
//! attribute. Into a container with a user namespace, what the container's
//! own root could not set is skipped the same way (`trusted.*`, which needs
//! `CAP_SYS_ADMIN` in the initial user namespace), and a capability is
//! stored as the kernel stores one written by the container's root: v3,
//! its `rootid` the host id of the stream's root (container id 0 for v2,
//! the record's own `rootid` for v3, mapped to the host). ACL records
//! (`system.posix_acl_*`) have their user and group ids mapped the same
//! way. Entries of other kinds (symlinks, fifos, devices) get no xattrs:
//! there is no fd to set them on without following a name (`user.*` is
//! refused on them by the kernel anyway).

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

use super::{entry_err, IdMap};
use crate::Result;

/// The PAX record prefix of an extended attribute (Schily's, which GNU
/// tar, libarchive, Go's `archive/tar` and docker use).
pub(super) const PAX_XATTR: &str = "SCHILY.xattr.";

pub(super) const CAPABILITY: &str = "security.capability";

/// `linux/capability.h`: `magic_etc` revisions and value sizes.
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const XATTR_CAPS_SZ_2: usize = 20;
const XATTR_CAPS_SZ_3: usize = 24;

/// The revision and `rootid` (0 for v2) of a capability value; None when it
/// is not one the kernel accepts.
fn parse_cap(value: &[u8]) -> Option<(u32, u32)> {
    let word = |i: usize| u32::from_le_bytes(value[i..i + 4].try_into().unwrap_or([0; 4]));
    match value.len() {
        XATTR_CAPS_SZ_2 if word(0) & VFS_CAP_REVISION_MASK == VFS_CAP_REVISION_2 => {
            Some((VFS_CAP_REVISION_2, 0))
        }
        XATTR_CAPS_SZ_3 if word(0) & VFS_CAP_REVISION_MASK == VFS_CAP_REVISION_3 => {
            Some((VFS_CAP_REVISION_3, word(20)))
        }
        _ => None,
    }
}

/// The capability sets of `value` as a v2 value (rootid dropped).
fn as_v2(value: &[u8]) -> Vec<u8> {
    let mut out = value[..XATTR_CAPS_SZ_2].to_vec();
    let magic = u32::from_le_bytes(out[..4].try_into().unwrap_or([0; 4]));
    let magic = (magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2;
    out[..4].copy_from_slice(&magic.to_le_bytes());
    out
}

/// The capability sets of `value` as a v3 value owned by `rootid`.
fn as_v3(value: &[u8], rootid: u32) -> Vec<u8> {
    let mut out = as_v2(value);
    let magic = u32::from_le_bytes(out[..4].try_into().unwrap_or([0; 4]));
    let magic = (magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_3;
    out[..4].copy_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&rootid.to_le_bytes());
    out
}

/// A capability as read on the host (the kernel shows a v3 value's rootid
/// as a host id) → its value in the stream, in container ids; None: left
/// out (its rootid is not mapped in the container).
pub(super) fn cap_to_stream(value: &[u8], ids: &IdMap) -> Option<Vec<u8>> {
    match parse_cap(value) {
        // Unknown revisions travel as they are (the kernel will judge).
        None => Some(value.to_vec()),
        Some((VFS_CAP_REVISION_3, rootid)) => match super::to_container(&ids.uids, rootid)? {
            0 => Some(as_v2(value)),
            root => Some(as_v3(value, root)),
        },
        Some(_) => Some(value.to_vec()),
    }
}

/// A capability from the stream (container ids) → the value to store into
/// a container with user namespace mappings `ids` (none: as it is).
pub(super) fn cap_from_stream(value: &[u8], ids: &IdMap) -> std::result::Result<Vec<u8>, String> {
    if ids.uids.is_empty() {
        return Ok(value.to_vec());
    }
    let Some((_, rootid)) = parse_cap(value) else {
        return Err("not a v2 or v3 capability value".into());
    };
    let host = super::to_host(&ids.uids, rootid).ok_or_else(|| {
        format!("its root (uid {rootid}) is not mapped in the container's user namespace")
    })?;
    Ok(as_v3(value, host))
}

/// `linux/posix_acl_xattr.h`: version 2, then entries of (le16 tag, le16
/// perm, le32 id); ACL_USER and ACL_GROUP entries carry an id.
const ACL_VERSION: u32 = 2;
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;

/// An ACL value from the stream (container ids) → host ids.
pub(super) fn acl_from_stream(value: &[u8], ids: &IdMap) -> std::result::Result<Vec<u8>, String> {
    if ids.uids.is_empty() && ids.gids.is_empty() {
        return Ok(value.to_vec());
    }
    let bad = || "not a POSIX ACL value".to_string();
    if value.len() < 4 || !(value.len() - 4).is_multiple_of(8) {
        return Err(bad());
    }
    if u32::from_le_bytes(value[..4].try_into().map_err(|_| bad())?) != ACL_VERSION {
        return Err(bad());
    }
    let mut out = value.to_vec();
    for e in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let (maps, what) = match tag {
            ACL_USER => (&ids.uids, "uid"),
            ACL_GROUP => (&ids.gids, "gid"),
            _ => continue,
        };
        let id = u32::from_le_bytes(e[4..8].try_into().map_err(|_| bad())?);
        let host = super::to_host(maps, id).ok_or_else(|| {
            format!("{what} {id} is not mapped in the container's user namespace")
        })?;
        e[4..8].copy_from_slice(&host.to_le_bytes());
    }
    Ok(out)
}

/// The PAX records of the entry `name` for its `security.capability`,
/// read on its open fd (a regular file or a directory); empty when it has
/// none or it cannot be read (docker ignores that error too).
pub(super) fn pack_records(fd: impl AsFd, ids: &IdMap, name: &Path) -> Vec<(String, Vec<u8>)> {
    let mut buf = [0u8; 64];
    let value = match rustix::fs::fgetxattr(fd, CAPABILITY, &mut buf[..]) {
        Ok(n) => &buf[..n],
        Err(Errno::NODATA | Errno::OPNOTSUPP) => return Vec::new(),
        Err(e) => {
            tracing::debug!("{}: {CAPABILITY} not read: {e}", name.display());
            return Vec::new();
        }
    };
    match cap_to_stream(value, ids) {
        Some(v) => vec![(format!("{PAX_XATTR}{CAPABILITY}"), v)],
        None => {
            tracing::debug!(
                "{}: {CAPABILITY} left out: its root is not mapped in the container's user namespace",
                name.display()
            );
            Vec::new()
        }
    }
}

/// The xattrs an entry's pax records name (`SCHILY.xattr.<name>`), in
/// stream order, from the raw pax data (bounded by the header guard).
/// Parsed by each record's length, as POSIX defines it: values are binary
/// and may hold newlines (a capability often does), which the tar crate's
/// own record iterator splits on.
pub(super) fn entry_xattrs(pax: Option<&[u8]>, rel: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
    let mut out = Vec::new();
    for (key, value) in parse_pax(pax.unwrap_or_default()).map_err(|why| entry_err(rel, why))? {
        if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
            out.push((OsString::from_vec(name.to_vec()), value.to_vec()));
        }
    }
    Ok(out)
}

/// One pax record: (key, value).
pub(super) type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// Pax records `"<len> <key>=<value>\n"`, `<len>` counting the whole
/// record.
pub(super) fn parse_pax(mut data: &[u8]) -> std::result::Result<Vec<PaxRecord<'_>>, String> {
    let bad = |why: &str| format!("malformed pax header: {why}");
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no record length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("bad record length"))?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad("record length out of bounds"));
        }
        let record = &data[sp + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("record without '='"))?;
        out.push((&record[..eq], &record[eq + 1..]));
        data = &data[len..];
    }
    Ok(out)
}

/// What to do with one xattr record when unpacking.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Set this value.
    Set(Vec<u8>),
    /// Skip it, for this reason (a debug line).
    Skip(String),
}

/// Decides one record (pure): into a container with a user namespace
/// (`ids` not empty), what its root could not set is skipped and ids in
/// the value are mapped to the host.
pub(super) fn decide(
    name: &[u8],
    value: &[u8],
    ids: &IdMap,
) -> std::result::Result<Decision, String> {
    let userns = !(ids.uids.is_empty() && ids.gids.is_empty());
    if userns && name.starts_with(b"trusted.") {
        return Ok(Decision::Skip(
            "the container's root could not set it (CAP_SYS_ADMIN of the initial user namespace)"
                .into(),
        ));
    }
    match name {
        b"security.capability" => cap_from_stream(value, ids).map(Decision::Set),
        b"system.posix_acl_access" | b"system.posix_acl_default" => {
            acl_from_stream(value, ids).map(Decision::Set)
        }
        _ => Ok(Decision::Set(value.to_vec())),
    }
}

/// Sets the entry's xattrs on its fd (a regular file or a directory).
pub(super) fn apply(
    fd: impl AsFd,
    rel: &Path,
    xattrs: &[(OsString, Vec<u8>)],
    ids: &IdMap,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for (name, value) in xattrs {
        let shown = name.to_string_lossy();
        let value = match decide(name.as_bytes(), value, ids) {
            Ok(Decision::Set(v)) => v,
            Ok(Decision::Skip(why)) => {
                tracing::debug!("{}: xattr {shown} skipped: {why}", rel.display());
                continue;
            }
            Err(why) => return Err(entry_err(rel, format!("xattr {shown}: {why}"))),
        };
        match rustix::fs::fsetxattr(fd.as_fd(), name.as_os_str(), &value, XattrFlags::empty()) {
            Ok(()) => {}
            // docker: "EPERM occurs if modifying xattrs is not allowed".
            Err(Errno::PERM) => {
                tracing::debug!("{}: xattr {shown} skipped: {}", rel.display(), Errno::PERM);
            }
            Err(e) => return Err(entry_err(rel, format!("xattr {shown}: {e}"))),
        }
    }
    Ok(())
}

/// Says that an entry's xattrs are not set (a kind without an fd to set
/// them on).
pub(super) fn skip_all(rel: &Path, xattrs: &[(OsString, Vec<u8>)]) {
    for (name, _) in xattrs {
        tracing::debug!(
            "{}: xattr {} skipped: set on regular files and directories only",
            rel.display(),
            name.to_string_lossy()
        );
    }
}
