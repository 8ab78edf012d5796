//! Applies the capability sets of `process.capabilities`.
//!
//! The sets are applied exactly as configured: inheritable capabilities
//! are never added on our own (they let a later exec of a file with
//! inheritable file capabilities gain privileges, CVE-2022-29162), and an
//! ambient capability the kernel cannot raise (not both permitted and
//! inheritable) was left out by the planner, with a warning.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};

use crate::error::{Error, Result};
use crate::plan::Capabilities;

fn parse(names: &[String], field: &str) -> Result<CapsHashSet> {
    names
        .iter()
        .map(|n| {
            Capability::from_str(n).map_err(|_| {
                Error::spec(
                    format!("process.capabilities.{field}"),
                    format!("unknown capability {n:?}"),
                )
            })
        })
        .collect()
}

/// Refuses capabilities this process cannot give: one missing from its own
/// bounding set (the host withholds it, or the kernel does not know it)
/// can never be regained, and one missing from its permitted set cannot be
/// granted. Without this check the bounding set silently lacks it and the
/// other sets fail with a bare EPERM. One `PR_CAPBSET_READ` per configured
/// bounding capability and one `capget`, not a read of every capability
/// the kernel knows (init runs this before every container's process).
pub fn check_held(c: &Capabilities) -> Result<()> {
    let permitted = caps::read(None, CapSet::Permitted)
        .map_err(|e| Error::Other(format!("reading the runtime's capabilities: {e}")))?;
    let refused = |field: &str, cap: Capability, which: &str| {
        Err(Error::spec(
            format!("process.capabilities.{field}"),
            format!(
                "{cap} is not in the runtime's own {which}: the host does not grant it \
                 (or this kernel does not know it), so the container cannot have it"
            ),
        ))
    };
    for cap in parse(&c.bounding, "bounding")? {
        if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            return refused("bounding", cap, "bounding set");
        }
    }
    let sets: [(&str, &[String]); 4] = [
        ("effective", &c.effective),
        ("permitted", &c.permitted),
        ("ambient", &c.ambient),
        ("ambient", &c.ambient_left_out),
    ];
    for (field, names) in sets {
        for cap in parse(names, field)? {
            if !permitted.contains(&cap) {
                return refused(field, cap, "permitted set");
            }
        }
    }
    Ok(())
}

/// Drops everything not in the bounding set. Needs CAP_SETPCAP, so it runs
/// before switching to the container's user. Every capability this crate
/// knows is dropped without reading it first: dropping one not held is a
/// no-op, and one the kernel does not know (EINVAL) is not there to drop.
pub fn apply_bounding(c: &Capabilities) -> Result<()> {
    check_held(c)?;
    let bounding = parse(&c.bounding, "bounding")?;
    for cap in caps::all().difference(&bounding) {
        if let Err(e) = crate::process::sys::drop_bounding(cap.index()) {
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(Error::Other(format!(
                    "dropping {cap} from the bounding set: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient, after the user
/// switch, exactly as planned (`None`: no `process.capabilities`, nothing
/// changes). Inheritable first, while the permitted set still holds what
/// the runtime had: the kernel then refuses only an inheritable capability
/// outside the bounding set, as for runc, which sets all three at once.
///
/// `keep_sys_admin`: CAP_SYS_ADMIN also stays in the effective and
/// permitted sets, for loading the seccomp filter without no_new_privs.
/// Never in the inheritable, ambient or bounding sets: `execve` computes
/// the new permitted set as (inheritable & file inheritable) | (file
/// permitted & bounding) | ambient, without the old permitted set, so it
/// is gone once the container's program runs (capabilities(7)).
pub fn apply_sets(c: Option<&Capabilities>, keep_sys_admin: bool) -> Result<()> {
    let err = |set: &'static str| {
        move |e: caps::errors::CapsError| {
            Error::Other(format!(
                "process.capabilities.{set}: {e} (does the runtime hold these capabilities?)"
            ))
        }
    };
    let Some(c) = c else {
        if keep_sys_admin {
            // A user switch cleared the effective set; the permitted one
            // was kept (PR_SET_KEEPCAPS).
            caps::raise(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
                .map_err(err("effective"))?;
        }
        return Ok(());
    };
    let mut effective = parse(&c.effective, "effective")?;
    let mut permitted = parse(&c.permitted, "permitted")?;
    let inheritable = parse(&c.inheritable, "inheritable")?;
    let ambient = parse(&c.ambient, "ambient")?;
    if keep_sys_admin {
        effective.insert(Capability::CAP_SYS_ADMIN);
        permitted.insert(Capability::CAP_SYS_ADMIN);
    }
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| {
        Error::Other(format!(
            "process.capabilities.inheritable: {e} (the kernel refuses inheritable \
             capabilities outside the bounding set)"
        ))
    })?;
    caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .map_err(err("effective"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(err("permitted"))?;
    caps::set(None, CapSet::Effective, &effective).map_err(err("effective"))?;
    caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
    // The plan left out what the kernel cannot raise (with a warning).
    for cap in &ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(err("ambient"))?;
    }
    Ok(())
}
