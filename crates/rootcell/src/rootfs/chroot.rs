//! Chroot isolation's part of mounting: the host's mount bound where a
//! fresh `proc`, `sysfs`, `devpts` or `mqueue` was refused, and the flags
//! of every config mount read back after mounting.

use std::os::fd::OwnedFd;

use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{self as mnt, clone_path};
use crate::plan::options::attr;
use crate::plan::{AttrChange, HostFallback, MountStep};

/// Chroot isolation: the host's mount bound where a fresh one was
/// refused, with the step's attributes (read-only for `/sys`).
pub(super) fn host_fallback(
    m: &MountStep,
    fallback: &HostFallback,
    refused: &mnt::FreshError,
    field: &str,
) -> Result<OwnedFd> {
    let what = format!(
        "{field}: a fresh mount was refused ({refused}); binding the host's {}",
        fallback.source.display()
    );
    tracing::info!("{what}");
    let tree = clone_path(&fallback.source, fallback.recursive).ctx(|| what.clone())?;
    let mut attrs = AttrChange {
        set: m.attrs.set | m.recursive_attrs.set,
        clear: m.attrs.clear | m.recursive_attrs.clear,
    };
    if fallback.read_only {
        attrs.set |= attr::RDONLY;
    }
    mnt::set_attrs(&tree, attrs, fallback.recursive).ctx(|| format!("{what}: mount attributes"))?;
    Ok(tree)
}

/// Chroot isolation: the read-only, nosuid, nodev and noexec flags a
/// config mount asked for must really be set on it (a kernel or a
/// filesystem that silently ignored one is an error, not a warning). A
/// `/sys` bound from the host in place of a fresh one must be read-only.
pub(super) fn verify_flags(tree: &OwnedFd, m: &MountStep, extra: u64, field: &str) -> Result<()> {
    let wanted = m.attrs.set | m.recursive_attrs.set | extra;
    let missing = mnt::missing_attrs(tree, wanted).ctx(|| format!("{field}: statfs"))?;
    if missing != 0 {
        return Err(Error::Other(format!(
            "{field}: the mount lacks {} after mounting (the kernel did not apply them)",
            mnt::attr_names(missing)
        )));
    }
    Ok(())
}
