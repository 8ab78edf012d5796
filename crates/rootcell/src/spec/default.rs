//! The config that `rootcell spec` writes: the same as `runc spec`, so that
//! tools and documentation written for runc apply unchanged.

use serde_json::{json, Value};

/// The default config. With `rootless`, the changes runc's `spec --rootless`
/// makes: a user namespace mapping the caller to root, no network namespace,
/// `/sys` bound from the host (a fresh sysfs needs a network namespace owned
/// by the user namespace), no `gid=5` on devpts, no cgroup mount and no
/// resources (an unprivileged user cannot create cgroups without delegation).
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "rootcell",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if let Some((uid, gid)) = rootless {
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    if let Some(namespaces) = linux["namespaces"].as_array_mut() {
        namespaces.retain(|ns| ns["type"] != "network");
        namespaces.push(json!({ "type": "user" }));
    }
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
        for mount in mounts.iter_mut() {
            if mount["type"] == "sysfs" {
                *mount = json!({
                    "destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
                });
            } else if let Some(options) = mount["options"].as_array_mut() {
                options.retain(|o| o.as_str().is_none_or(|o| !o.starts_with("gid=")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_oci() {
        let text = serde_json::to_vec(&default_spec(None)).unwrap();
        let spec = crate::spec::parse(&text).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("rootcell"));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
    }

    #[test]
    fn rootless_spec_maps_the_caller_and_drops_what_needs_privilege() {
        let spec = default_spec(Some((1000, 1001)));
        let linux = &spec["linux"];
        assert_eq!(linux["uidMappings"][0]["hostID"], 1000);
        assert_eq!(linux["gidMappings"][0]["hostID"], 1001);
        let types: Vec<_> = linux["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"user"));
        assert!(!types.contains(&"network"));
        assert!(linux.get("resources").is_none());
        let mounts = spec["mounts"].as_array().unwrap();
        assert!(mounts.iter().all(|m| m["type"] != "cgroup"));
        assert!(mounts
            .iter()
            .flat_map(|m| m["options"].as_array().into_iter().flatten())
            .all(|o| !o.as_str().unwrap().starts_with("gid=")));
        let text = serde_json::to_vec(&spec).unwrap();
        crate::spec::parse(&text).unwrap();
    }
}
