//! Idmapped bind mounts, made by the runtime before it forks the container.
//!
//! The kernel only idmaps a detached mount, and only for a caller with
//! `CAP_SYS_ADMIN` over the source filesystem's user namespace (the initial
//! one for host filesystems). The container's init has lost that by the
//! time it mounts, so the runtime clones each source, idmaps it, and hands
//! the detached tree to init, which attaches it like any other bind.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Error, IoContext, Result};
use crate::fs::mount::{clone_path, set_idmap, set_propagation};
use crate::plan::{Idmap, MountKind, Propagation, PropagationChange, RootfsPlan, Step};
use crate::process::ids;

/// Detached idmapped trees, by the index of their mount in the config.
#[derive(Default)]
pub struct IdmappedMounts {
    trees: HashMap<usize, OwnedFd>,
}

impl IdmappedMounts {
    /// Clones and idmaps the source of every idmapped bind in `plan`. One
    /// user namespace is made per distinct mapping.
    pub fn prepare(plan: &RootfsPlan) -> Result<IdmappedMounts> {
        let mut namespaces: HashMap<(Vec<_>, Vec<_>), OwnedFd> = HashMap::new();
        let mut trees = HashMap::new();
        for step in &plan.setup {
            let Step::Mount(m) = step else { continue };
            let (
                MountKind::Bind {
                    source,
                    recursive,
                    idmap: Some(idmap),
                },
                Some(index),
            ) = (&m.kind, m.config_index)
            else {
                continue;
            };
            let field = format!("mounts[{index}] ({})", m.destination.display());
            let key = (idmap.uid_mappings.clone(), idmap.gid_mappings.clone());
            if !namespaces.contains_key(&key) {
                let ns = ids::user_namespace_with(&idmap.uid_mappings, &idmap.gid_mappings)
                    .map_err(|e| Error::Other(format!("{field}: idmap: {e}")))?;
                namespaces.insert(key.clone(), ns);
            }
            let userns = &namespaces[&key];
            let tree = match clone_path(source, *recursive) {
                // Cloning in the host's mount namespace needs its privileges.
                Err(e @ rustix::io::Errno::PERM) => Err(idmap_error(&field, source, idmap, e)),
                other => other.ctx(|| format!("{field}: source {}", source.display())),
            }?;
            // Cloned in the host's mount namespace, the tree would be a peer
            // of the host's shared mounts: make it a slave first, like every
            // other mount of the container, so nothing propagates back.
            set_propagation(
                &tree,
                PropagationChange {
                    kind: Propagation::Slave,
                    recursive: true,
                },
            )
            .ctx(|| format!("{field}: propagation"))?;
            set_idmap(&tree, userns.as_fd(), idmap.recursive)
                .map_err(|e| idmap_error(&field, source, idmap, e))?;
            trees.insert(index, tree);
        }
        Ok(IdmappedMounts { trees })
    }

    /// The prepared tree of config mount `index`, once.
    pub fn take(&mut self, index: usize) -> Option<OwnedFd> {
        self.trees.remove(&index)
    }
}

fn idmap_error(
    field: &str,
    source: &std::path::Path,
    idmap: &Idmap,
    errno: rustix::io::Errno,
) -> Error {
    let why = match errno {
        rustix::io::Errno::PERM => {
            "idmapping a host directory needs CAP_SYS_ADMIN in the initial user namespace \
             (not available to a rootless runtime), and a source that is not idmapped already"
        }
        rustix::io::Errno::INVAL => {
            "the filesystem of the source does not support idmapped mounts \
             (or ridmap met a mount below that does not)"
        }
        _ => "",
    };
    let io: std::io::Error = errno.into();
    Error::Other(format!(
        "{field}: {} of {} refused by the kernel: {io}{}{why}",
        if idmap.recursive { "ridmap" } else { "idmap" },
        source.display(),
        if why.is_empty() { "" } else { ": " },
    ))
}
