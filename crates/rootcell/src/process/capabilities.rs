//! Applies the capability sets of `process.capabilities`.
//!
//! Inheritable capabilities are never granted on their own (they let a
//! later exec of a file with inheritable file capabilities gain privileges,
//! CVE-2022-29162); only the minimum the kernel needs to honour an explicit
//! `ambient` request (ambient ⊆ permitted ∩ inheritable) is set.

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
/// other sets fail with a bare EPERM.
pub fn check_held(c: &Capabilities) -> Result<()> {
    let read = |set: CapSet| {
        caps::read(None, set)
            .map_err(|e| Error::Other(format!("reading the runtime's capabilities: {e}")))
    };
    let bounding = read(CapSet::Bounding)?;
    let permitted = read(CapSet::Permitted)?;
    let sets: [(&str, &[String], &CapsHashSet, &str); 4] = [
        ("bounding", &c.bounding, &bounding, "bounding set"),
        ("effective", &c.effective, &permitted, "permitted set"),
        ("permitted", &c.permitted, &permitted, "permitted set"),
        ("ambient", &c.ambient, &permitted, "permitted set"),
    ];
    for (field, names, held, which) in sets {
        for cap in parse(names, field)? {
            if !held.contains(&cap) {
                return Err(Error::spec(
                    format!("process.capabilities.{field}"),
                    format!(
                        "{cap} is not in the runtime's own {which}: the host does not grant it \
                         (or this kernel does not know it), so the container cannot have it"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Drops everything not in the bounding set. Needs CAP_SETPCAP, so it runs
/// before switching to the container's user.
pub fn apply_bounding(c: &Capabilities) -> Result<()> {
    check_held(c)?;
    let bounding = parse(&c.bounding, "bounding")?;
    let supported = caps::runtime::thread_all_supported();
    for cap in supported.difference(&bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| Error::Other(format!("dropping {cap} from the bounding set: {e}")))?;
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient, after the user switch.
pub fn apply_sets(c: &Capabilities) -> Result<()> {
    let effective = parse(&c.effective, "effective")?;
    let permitted = parse(&c.permitted, "permitted")?;
    let ambient = parse(&c.ambient, "ambient")?;
    let inheritable: CapsHashSet = ambient.intersection(&permitted).copied().collect();
    let err = |set: &'static str| {
        move |e: caps::errors::CapsError| {
            Error::Other(format!(
                "process.capabilities.{set}: {e} (does the runtime hold these capabilities?)"
            ))
        }
    };
    caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .map_err(err("effective"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(err("permitted"))?;
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(err("inheritable"))?;
    caps::set(None, CapSet::Effective, &effective).map_err(err("effective"))?;
    caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
    for cap in &inheritable {
        caps::raise(None, CapSet::Ambient, *cap).map_err(err("ambient"))?;
    }
    Ok(())
}
