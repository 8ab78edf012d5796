//! `rootcell features`: the OCI runtime features document. It says only
//! what rootcell really implements today.

use serde_json::{json, Value};

pub fn features() -> Value {
    let capabilities: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap",
            "lazytime", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand",
            "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind",
            "rdev", "rdiratime", "relatime", "rexec", "ridmap", "rnoatime", "rnodev",
            "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow",
            "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
            "rsuid", "rsymfollow", "runbindable", "rw", "shared", "slave", "strictatime", "suid",
            "symfollow", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": seccomp(),
            // As in runc: the runtime can apply them; whether this host
            // has the LSM is decided per container (an error otherwise).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } },
            // Whether the kernel has a mode (WEIGHTED_INTERLEAVE needs
            // 6.9) is its answer at create, an error naming the field.
            "memoryPolicy": {
                "modes": [
                    "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"
                ],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            }
        },
        "annotations": {
            "io.github.rootcell.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// `linux.seccomp`: what rootcell accepts, and which filter flags this
/// kernel supports.
fn seccomp() -> Value {
    use rootcell::plan::seccomp::SeccompFlag;
    use rootcell::process::seccomp::{flag_supported, supported_architectures};
    let known: Vec<&str> = SeccompFlag::ALL.iter().map(|f| f.name()).collect();
    let supported: Vec<&str> = SeccompFlag::ALL
        .iter()
        .filter(|f| flag_supported(**f))
        .map(|f| f.name())
        .collect();
    json!({
        "enabled": true,
        "actions": [
            "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ],
        "operators": [
            "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
        ],
        "archs": supported_architectures(),
        "knownFlags": known,
        "supportedFlags": supported,
    })
}
