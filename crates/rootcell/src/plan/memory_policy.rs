//! `linux.memoryPolicy` (runtime spec 1.2): the NUMA policy init sets with
//! `set_mempolicy(2)` before it execs, inherited by everything the
//! container's process starts. Planned here as plain data: the mode, the
//! flags and the node list parsed from its `"0-3,7"` form, with every rule
//! the kernel would otherwise answer with a bare EINVAL checked first and
//! named by field.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};
use serde::Serialize;

use crate::error::{Error, Result};

const F: &str = "linux.memoryPolicy";

/// The largest node count a kernel can be built with (`CONFIG_NODES_SHIFT`
/// is at most 10): a node number at or above it can never exist.
pub const MAX_NUMNODES: u32 = 1 << 10;

/// `linux.memoryPolicy`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryPolicy {
    /// The mode as the config names it (`MPOL_BIND`).
    pub mode: String,
    /// The flags as the config names them, without duplicates.
    pub flags: Vec<String>,
    /// The node numbers, sorted, without duplicates.
    pub nodes: Vec<u32>,
    /// `mode | flags`, the first argument of `set_mempolicy`.
    pub raw_mode: i32,
}

impl MemoryPolicy {
    /// The node mask as `set_mempolicy` takes it (an array of `unsigned
    /// long`) and its `maxnode` argument: the number of bits plus one,
    /// since the kernel drops the last bit it is given (set_mempolicy(2)).
    /// No nodes: an empty mask and 0.
    pub fn nodemask(&self) -> (Vec<libc::c_ulong>, libc::c_ulong) {
        let Some(&last) = self.nodes.last() else {
            return (Vec::new(), 0);
        };
        let bits = libc::c_ulong::BITS;
        let mut mask = vec![0 as libc::c_ulong; (last / bits + 1) as usize];
        for &n in &self.nodes {
            mask[(n / bits) as usize] |= 1 << (n % bits);
        }
        let maxnode = mask.len() as libc::c_ulong * libc::c_ulong::from(bits) + 1;
        (mask, maxnode)
    }
}

// The kernel's values (include/uapi/linux/mempolicy.h).
fn mode_value(mode: MemoryPolicyModeType) -> i32 {
    match mode {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag_value(flag: MemoryPolicyFlagType) -> i32 {
    match flag {
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
    }
}

/// Checks `linux.memoryPolicy` and turns it into a [`MemoryPolicy`].
/// The rules are the kernel's (mm/mempolicy.c), and runc's for the node
/// counts: DEFAULT and LOCAL take no nodes; BIND, INTERLEAVE,
/// PREFERRED_MANY and WEIGHTED_INTERLEAVE need at least one; PREFERRED
/// takes any number (none means local allocation). STATIC_NODES and
/// RELATIVE_NODES exclude each other and need nodes; NUMA_BALANCING only
/// goes with BIND or PREFERRED_MANY.
pub fn memory_policy(policy: &LinuxMemoryPolicy) -> Result<MemoryPolicy> {
    use MemoryPolicyFlagType as Fl;
    use MemoryPolicyModeType as M;
    let mode = policy.mode();
    let nodes_text = policy.nodes().as_deref().unwrap_or("");
    let nodes = parse_nodes(nodes_text).map_err(|e| Error::spec(format!("{F}.nodes"), e))?;
    let mut flags: Vec<MemoryPolicyFlagType> = Vec::new();
    for f in policy.flags().iter().flatten() {
        if !flags.contains(f) {
            flags.push(*f);
        }
    }
    let has = |f: Fl| flags.contains(&f);

    match mode {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            return Err(Error::spec(
                format!("{F}.nodes"),
                format!("{mode} takes no nodes, but {nodes_text:?} names some"),
            ))
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            return Err(Error::spec(
                format!("{F}.nodes"),
                format!("{mode} needs at least one node"),
            ))
        }
        _ => {}
    }
    if has(Fl::MpolFStaticNodes) && has(Fl::MpolFRelativeNodes) {
        return Err(Error::spec(
            format!("{F}.flags"),
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    if (has(Fl::MpolFStaticNodes) || has(Fl::MpolFRelativeNodes)) && nodes.is_empty() {
        return Err(Error::spec(
            format!("{F}.flags"),
            format!(
                "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES need nodes, and {mode} has none"
            ),
        ));
    }
    if has(Fl::MpolFNumaBalancing) && !matches!(mode, M::MpolBind | M::MpolPreferredMany) {
        return Err(Error::spec(
            format!("{F}.flags"),
            format!(
                "MPOL_F_NUMA_BALANCING goes only with MPOL_BIND or MPOL_PREFERRED_MANY, not {mode}"
            ),
        ));
    }
    Ok(MemoryPolicy {
        mode: mode.to_string(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        nodes,
        raw_mode: flags
            .iter()
            .fold(mode_value(mode), |acc, f| acc | flag_value(*f)),
    })
}

/// A node list in the kernel's list format: comma-separated numbers and
/// `a-b` ranges (`"0-3,7"`); empty means no nodes.
pub fn parse_nodes(text: &str) -> Result<Vec<u32>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    // A set of the possible nodes, not a list: repeated ranges in a long
    // string cannot make it grow.
    let mut set = [false; MAX_NUMNODES as usize];
    let number = |s: &str| -> Result<u32, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text:?}: {s:?} is not a node number"));
        }
        match s.parse::<u32>() {
            Ok(n) if n < MAX_NUMNODES => Ok(n),
            _ => Err(format!(
                "{text:?}: node {s} is beyond the largest node number a kernel can have ({})",
                MAX_NUMNODES - 1
            )),
        }
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("{text:?}: the range {a}-{b} is reversed"));
                }
                set[a as usize..=b as usize].fill(true);
            }
            None => set[number(part)? as usize] = true,
        }
    }
    Ok((0..MAX_NUMNODES).filter(|n| set[*n as usize]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> Result<MemoryPolicy> {
        memory_policy(&serde_json::from_value(v).unwrap())
    }

    fn err(v: serde_json::Value) -> String {
        policy(v).unwrap_err().to_string()
    }

    #[test]
    fn node_lists_parse_like_the_kernel_list_format() {
        assert_eq!(parse_nodes("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_nodes("0").unwrap(), vec![0]);
        assert_eq!(parse_nodes("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        // Repeated ranges do not multiply: the result is a set.
        let long = vec!["0-1023"; 10_000].join(",");
        assert_eq!(parse_nodes(&long).unwrap().len(), 1024);
        assert_eq!(parse_nodes("3,1, 2,1-2").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_nodes("1023").unwrap(), vec![1023]);
        for bad in ["x", "1,,2", "-1", "3-1", "1-", "0x1", "1024", "99999999999"] {
            assert!(parse_nodes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn modes_flags_and_nodes_become_the_syscall_arguments() {
        let p = policy(serde_json::json!({
            "mode": "MPOL_INTERLEAVE", "nodes": "0-1",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_STATIC_NODES"]
        }))
        .unwrap();
        assert_eq!(p.mode, "MPOL_INTERLEAVE");
        assert_eq!(p.flags, vec!["MPOL_F_STATIC_NODES"]);
        assert_eq!(p.nodes, vec![0, 1]);
        assert_eq!(p.raw_mode, 3 | (1 << 15));
        assert_eq!(p.nodemask(), (vec![0b11], 65));

        let p = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,64",
            "flags": ["MPOL_F_NUMA_BALANCING"]}))
        .unwrap();
        assert_eq!(p.raw_mode, 2 | (1 << 13));
        assert_eq!(p.nodemask(), (vec![1, 1], 129));

        let p = policy(serde_json::json!({"mode": "MPOL_LOCAL"})).unwrap();
        assert_eq!((p.raw_mode, p.nodemask()), (4, (vec![], 0)));
        let p = policy(serde_json::json!({"mode": "MPOL_PREFERRED", "nodes": ""})).unwrap();
        assert_eq!(p.raw_mode, 1);
        let p =
            policy(serde_json::json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"})).unwrap();
        assert_eq!(p.raw_mode, 6);
    }

    #[test]
    fn invalid_policies_name_the_field() {
        for (v, field) in [
            (
                serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "1"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": ""}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "2-1"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "5000"}),
                "linux.memoryPolicy.nodes",
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
                    "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
                "linux.memoryPolicy.flags",
            ),
            (
                serde_json::json!({"mode": "MPOL_PREFERRED",
                    "flags": ["MPOL_F_RELATIVE_NODES"]}),
                "linux.memoryPolicy.flags",
            ),
            (
                serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
                    "flags": ["MPOL_F_NUMA_BALANCING"]}),
                "linux.memoryPolicy.flags",
            ),
        ] {
            let e = err(v.clone());
            assert!(e.starts_with(&format!("{field}:")), "{v}: {e}");
        }
    }
}
