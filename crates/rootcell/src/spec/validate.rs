//! Checks a parsed config for what the JSON types cannot say. Each error
//! names the JSON path of the field at fault.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

pub fn validate(spec: &Spec, bundle: &Path) -> Result<()> {
    validate_oci_version(spec.version())?;
    validate_root(spec, bundle)?;
    let Some(process) = spec.process() else {
        return Err(Error::spec("process", "is required to create a container"));
    };
    validate_process(spec, process)?;
    validate_mounts(spec)?;
    validate_linux(spec)?;
    validate_hooks(spec)?;
    Ok(())
}

/// `ociVersion`: a semantic version of the runtime spec with major version
/// 1, the one rootcell implements. Engines send "1.0.2-dev" (runc, podman,
/// containerd), "1.1.0", "1.2.0"; old Docker configs "1.0.0-rc5".
fn validate_oci_version(version: &str) -> Result<()> {
    match semver_major(version) {
        Some(1) => Ok(()),
        Some(major) => Err(Error::spec(
            "ociVersion",
            format!(
                "{version:?}: version {major} of the runtime spec is not supported \
                 (rootcell implements 1.x)"
            ),
        )),
        None => Err(Error::spec(
            "ociVersion",
            format!("{version:?} is not a semantic version (MAJOR.MINOR.PATCH, e.g. \"1.0.2\")"),
        )),
    }
}

/// The major version of a semantic version (semver.org 2.0.0:
/// `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, numbers without leading
/// zeros, identifiers of `[0-9A-Za-z-]`), or None if `v` is not one.
fn semver_major(v: &str) -> Option<u64> {
    let (rest, build) = match v.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let identifiers_ok = |s: &str, numeric_rule: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(numeric_rule
                    && id.len() > 1
                    && id.starts_with('0')
                    && id.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if !pre.is_none_or(|p| identifiers_ok(p, true))
        || !build.is_none_or(|b| identifiers_ok(b, false))
    {
        return None;
    }
    let numbers: Vec<u64> = core
        .split('.')
        .map(|n| {
            let valid = !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'));
            valid.then(|| n.parse::<u64>().ok()).flatten()
        })
        .collect::<Option<_>>()?;
    match numbers[..] {
        [major, _, _] => Some(major),
        _ => None,
    }
}

fn validate_root(spec: &Spec, bundle: &Path) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "is required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::spec("root.path", "must not be empty"));
    }
    let rootfs = bundle.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::spec(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        )),
        Err(e) => Err(Error::spec(
            "root.path",
            format!("{}: {e}", rootfs.display()),
        )),
    }
}

/// Checks a process: the container's own, or one `exec` starts (from
/// `--process` or from the container's process with the flags applied).
/// Fields are named `process.*`.
pub fn validate_process(spec: &Spec, process: &Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(Error::spec("process.args", "must name a program to run")),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::spec(
            "process.cwd",
            format!("{:?} must be an absolute path", process.cwd()),
        ));
    }
    for (i, var) in process.env().iter().flatten().enumerate() {
        if !matches!(var.split_once('='), Some((key, _)) if !key.is_empty()) {
            return Err(Error::spec(
                format!("process.env[{i}]"),
                format!("{var:?} is not of the form KEY=VALUE"),
            ));
        }
    }
    validate_user(spec, process.user())?;
    let mut seen = Vec::new();
    for (i, rlimit) in process.rlimits().iter().flatten().enumerate() {
        if seen.contains(&rlimit.typ()) {
            return Err(Error::spec(
                format!("process.rlimits[{i}].type"),
                format!("{:?} is set twice", rlimit.typ()),
            ));
        }
        seen.push(rlimit.typ());
        if rlimit.soft() > rlimit.hard() {
            return Err(Error::spec(
                format!("process.rlimits[{i}]"),
                "soft limit is above the hard limit",
            ));
        }
    }
    Ok(())
}

/// `(uid_t)-1` means "leave unchanged" to `setresuid` and `chown`: a
/// container asking for it would keep running as root. In a new user
/// namespace every id must also be mapped, or the kernel refuses it.
/// An id mapping (of a user namespace or of an idmapped mount): a size of
/// zero, or a range past 2^32, is an error naming `field`.
pub fn check_id_mapping(field: &str, m: &oci_spec::runtime::LinuxIdMapping) -> Result<()> {
    let fits = |start: u32| start.checked_add(m.size()).is_some();
    if m.size() == 0 || !fits(m.host_id()) || !fits(m.container_id()) {
        return Err(Error::spec(
            field,
            "size must be non-zero and the range must fit in 32 bits",
        ));
    }
    Ok(())
}

fn validate_user(spec: &Spec, user: &oci_spec::runtime::User) -> Result<()> {
    let ids = std::iter::once(("process.user.uid".to_string(), user.uid(), true))
        .chain(std::iter::once((
            "process.user.gid".to_string(),
            user.gid(),
            false,
        )))
        .chain(
            user.additional_gids()
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, g)| (format!("process.user.additionalGids[{i}]"), *g, false)),
        );
    let linux = spec.linux().as_ref();
    let new_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
        });
    for (field, id, is_uid) in ids {
        if id == u32::MAX {
            return Err(Error::spec(
                field,
                "4294967295 is (uid_t)-1, which the kernel reads as \"no change\": not a valid id",
            ));
        }
        let maps = linux.and_then(|l| {
            if is_uid {
                l.uid_mappings().as_ref()
            } else {
                l.gid_mappings().as_ref()
            }
        });
        if let (true, Some(maps)) = (new_userns, maps) {
            let mapped = maps.iter().any(|m| {
                id >= m.container_id()
                    && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
            });
            if !mapped {
                return Err(Error::spec(
                    field,
                    format!(
                        "{id} is not mapped in the container's user namespace (linux.{}Mappings)",
                        if is_uid { "uid" } else { "gid" }
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_mounts(spec: &Spec) -> Result<()> {
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        let dest = mount.destination();
        if !dest.is_absolute() {
            return Err(Error::spec(
                format!("mounts[{i}].destination"),
                format!("{:?} must be an absolute path", dest),
            ));
        }
        if mount.typ().is_none() && mount.source().is_none() {
            return Err(Error::spec(
                format!("mounts[{i}]"),
                "needs a type or a source",
            ));
        }
    }
    Ok(())
}

/// The sysctls of the IPC namespace.
pub fn is_ipc_sysctl(key: &str) -> bool {
    key.starts_with("fs.mqueue.")
        || [
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
        ]
        .contains(&key)
        || key.starts_with("kernel.shm")
}

/// The sysctls of the UTS namespace.
fn is_uts_sysctl(key: &str) -> bool {
    key == "kernel.hostname" || key == "kernel.domainname"
}

/// A new user namespace needs `linux.uidMappings` and `linux.gidMappings`
/// (except in rootless chroot isolation, which maps the caller's own ids).
pub fn user_namespace_mappings(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if !new_user {
        return Ok(());
    }
    for (field, list) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        if list.as_deref().unwrap_or_default().is_empty() {
            return Err(Error::spec(field, "a new user namespace needs mappings"));
        }
    }
    Ok(())
}

/// What a hostname, a domainname, UTS sysctls and mounts need of the config's own
/// namespaces: a new UTS namespace, a mount namespace, id mappings. Chroot isolation
/// makes both itself, and the isolation mode is known only with the
/// command line's flag: `plan::build` checks this in full isolation.
pub fn validate_namespace_needs(spec: &Spec) -> Result<()> {
    user_namespace_mappings(spec)?;
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let has_new = |typ: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|ns| ns.typ() == typ && ns.path().is_none())
    };
    let has_any = |typ: LinuxNamespaceType| namespaces.iter().any(|ns| ns.typ() == typ);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(Error::spec(
            "hostname",
            "setting a hostname needs a new uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(Error::spec(
            "domainname",
            "setting a domainname needs a new uts namespace",
        ));
    }
    if !has_new(LinuxNamespaceType::Uts) {
        if let Some(key) = linux
            .sysctl()
            .iter()
            .flat_map(|s| s.keys())
            .find(|k| is_uts_sysctl(k))
        {
            return Err(Error::spec(
                format!("linux.sysctl.{key}"),
                "needs a new uts namespace",
            ));
        }
    }
    if !has_any(LinuxNamespaceType::Mount) {
        if let Some(i) = spec.mounts().iter().flatten().position(|_| true) {
            return Err(Error::spec(
                format!("mounts[{i}]"),
                "mounts need a mount namespace in linux.namespaces",
            ));
        }
    }
    if !has_any(LinuxNamespaceType::Mount) {
        // Masks, read-only paths and a read-only root are mounts: without a
        // mount namespace of its own they would land in the runtime's.
        let needs_mounts = [
            (
                "linux.maskedPaths",
                linux.masked_paths().as_ref().is_some_and(|v| !v.is_empty()),
            ),
            (
                "linux.readonlyPaths",
                linux
                    .readonly_paths()
                    .as_ref()
                    .is_some_and(|v| !v.is_empty()),
            ),
            (
                "root.readonly",
                spec.root()
                    .as_ref()
                    .and_then(|r| r.readonly())
                    .unwrap_or(false),
            ),
        ];
        if let Some((field, _)) = needs_mounts.iter().find(|(_, set)| *set) {
            return Err(Error::spec(
                *field,
                "needs a mount namespace in linux.namespaces",
            ));
        }
    }
    Ok(())
}

fn validate_linux(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    // Running without the cache and memory-bandwidth partition the config
    // asks for would hand the container resources it was meant not to have;
    // runc refuses it too where it cannot apply it (no resctrl).
    if linux.intel_rdt().is_some() {
        return Err(Error::spec(
            "linux.intelRdt",
            "Intel RDT (resctrl) is not supported by rootcell; remove the field",
        ));
    }
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::spec(
                format!("linux.namespaces[{i}].type"),
                format!("{:?} is listed twice", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(Error::spec(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} must be an absolute path", path.display()),
                ));
            }
        }
    }
    let has_new = |typ: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|ns| ns.typ() == typ && ns.path().is_none())
    };

    let mappings = linux.uid_mappings().is_some() || linux.gid_mappings().is_some();
    if mappings && !has_new(LinuxNamespaceType::User) {
        return Err(Error::spec(
            "linux.uidMappings",
            "id mappings need a new user namespace in linux.namespaces",
        ));
    }
    if has_new(LinuxNamespaceType::User) {
        for (field, list) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            // An empty list is checked by `user_namespace_mappings`, once
            // the isolation is known (rootless chroot isolation maps the
            // caller's own ids).
            let list = list.as_deref().unwrap_or_default();
            for (i, m) in list.iter().enumerate() {
                check_id_mapping(&format!("{field}[{i}]"), m)?;
            }
        }
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        validate_sysctl_key(key)?;
        let field = format!("linux.sysctl.{key}");
        // A network namespace joined by path counts, as in runc: that is
        // how containerd's CRI plugin gives a pod's sandbox the namespace
        // CNI set up. Stage 1 refuses to join the runtime's own network
        // namespace for them (`Plan::writes_sysctls_in`).
        let has_net = namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::Network);
        if key.starts_with("net.") && !has_net {
            return Err(Error::spec(
                field,
                "net.* sysctls need a network namespace of the container's own in linux.namespaces",
            ));
        }
        // The same for an ipc namespace joined by path (a pod's containers
        // join their sandbox's), as in runc; stage 1 refuses the runtime's
        // own (`Plan::writes_sysctls_in`).
        let ipc = is_ipc_sysctl(key);
        let has_ipc = namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::Ipc);
        if ipc && !has_ipc {
            return Err(Error::spec(
                field,
                "ipc sysctls need an ipc namespace of the container's own in linux.namespaces",
            ));
        }
        // Whether a UTS namespace exists is known with the isolation mode
        // only (chroot isolation adds one): `validate_namespace_needs`.
        let uts = is_uts_sysctl(key);
        // Anything else is global to the host: writing it from a container
        // would change the machine, so it is refused (as runc does).
        if !ipc && !uts && !key.starts_with("net.") {
            return Err(Error::spec(
                field,
                "is not namespaced: it would change the host, so it cannot be set per container",
            ));
        }
    }
    if let Some(path) = linux.cgroups_path() {
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(Error::spec(
                "linux.cgroupsPath",
                format!("{} must not contain \"..\"", path.display()),
            ));
        }
    }
    for (field, list) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in list.iter().flatten().enumerate() {
            if !p.starts_with('/') {
                return Err(Error::spec(
                    format!("{field}[{i}]"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
    }
    for (i, dev) in linux.devices().iter().flatten().enumerate() {
        device_path(i, dev.path())?;
    }
    Ok(())
}

/// `linux.devices[i].path`, checked and cleaned: absolute, no `..`
/// component (it would be resolved after the check and could leave /dev:
/// `/dev/../etc/x`), and strictly below `/dev` once `.` and repeated
/// slashes are gone.
pub fn device_path(i: usize, path: &Path) -> Result<PathBuf> {
    let err = |why: &str| {
        Error::spec(
            format!("linux.devices[{i}].path"),
            format!("{:?} {why}", path.display().to_string()),
        )
    };
    if !path.is_absolute() {
        return Err(err("must be an absolute path under /dev"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(err("must not contain \"..\""));
    }
    let cleaned: PathBuf = path.components().collect();
    match cleaned.strip_prefix("/dev") {
        Ok(rest) if !rest.as_os_str().is_empty() => Ok(cleaned),
        _ => Err(err("must be a path below /dev")),
    }
}

/// A sysctl key names a file below /proc/sys: dotted words only, so that it
/// can never address anything outside /proc/sys.
pub fn validate_sysctl_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.contains('/')
        || key.contains("..")
        || key.starts_with('.')
        || key.ends_with('.')
        || key.contains('\0');
    if bad {
        return Err(Error::spec(
            format!("linux.sysctl.{key}"),
            "a sysctl key is dot-separated words without '/' or '..'",
        ));
    }
    Ok(())
}

fn validate_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let lists = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(Error::spec(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{} must be an absolute path", hook.path().display()),
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::spec(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be a positive number of seconds",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = crate::spec::default_spec(None);
        edit(&mut v);
        crate::spec::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn oci_version_is_a_semver_with_major_1() {
        for ok in [
            "1.0.2-dev",
            "1.1.0",
            "1.0.0-rc5",
            "1.2.1",
            "1.0.0+dev",
            "1.0.0-rc.1+b.2",
        ] {
            assert!(validate_oci_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "banana",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "v1.0.0",
            " 1.0.0",
            "1.0.x",
        ] {
            let err = validate_oci_version(bad).unwrap_err().to_string();
            assert!(err.starts_with("ociVersion: "), "{bad}: {err}");
            assert!(err.contains("not a semantic version"), "{bad}: {err}");
        }
        for bad in ["2.0.0", "0.9.0", "10.0.0-rc1"] {
            let err = validate_oci_version(bad).unwrap_err().to_string();
            assert!(err.starts_with("ociVersion: "), "{bad}: {err}");
            assert!(err.contains("not supported"), "{bad}: {err}");
        }
    }

    #[test]
    fn uts_sysctls_without_a_uts_namespace_are_refused_only_for_full_isolation() {
        let tmp = std::env::temp_dir();
        let spec = spec_with(|v| {
            v["root"]["path"] = tmp.to_str().unwrap().into();
            v["hostname"] = serde_json::Value::Null;
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "uts");
            v["linux"]["sysctl"] = serde_json::json!({"kernel.domainname": "d"});
        });
        // Loading accepts it: chroot isolation adds a UTS namespace.
        assert!(validate(&spec, &tmp).is_ok());
        let err = validate_namespace_needs(&spec).unwrap_err().to_string();
        assert_eq!(
            err,
            "linux.sysctl.kernel.domainname: needs a new uts namespace"
        );
    }

    #[test]
    fn host_global_sysctls_are_refused() {
        let tmp = std::env::temp_dir();
        let ok = spec_with(|v| {
            v["root"]["path"] = tmp.to_str().unwrap().into();
            v["linux"]["sysctl"] =
                serde_json::json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"});
        });
        assert!(validate(&ok, &tmp).is_ok());
        let bad = spec_with(|v| {
            v["root"]["path"] = tmp.to_str().unwrap().into();
            v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        });
        let err = validate(&bad, &tmp).unwrap_err().to_string();
        assert!(err.starts_with("linux.sysctl.vm.swappiness"), "{err}");
    }

    #[test]
    fn net_and_ipc_sysctls_need_their_namespace_new_or_joined() {
        let tmp = std::env::temp_dir();
        for (typ, key, path) in [
            ("network", "net.ipv4.ip_forward", "/var/run/netns/cni-1"),
            ("ipc", "kernel.msgmax", "/proc/1234/ns/ipc"),
        ] {
            let with_ns = |ns_entry: serde_json::Value| {
                spec_with(|v| {
                    v["root"]["path"] = tmp.to_str().unwrap().into();
                    let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
                    ns.retain(|n| n["type"] != typ);
                    if !ns_entry.is_null() {
                        ns.push(ns_entry.clone());
                    }
                    v["linux"]["sysctl"] = serde_json::json!({ key: "1" });
                })
            };
            let new = with_ns(serde_json::json!({ "type": typ }));
            assert!(validate(&new, &tmp).is_ok(), "{typ}");
            let joined = with_ns(serde_json::json!({ "type": typ, "path": path }));
            assert!(validate(&joined, &tmp).is_ok(), "{typ}");
            let host = with_ns(serde_json::Value::Null);
            let err = validate(&host, &tmp).unwrap_err().to_string();
            assert!(err.starts_with(&format!("linux.sysctl.{key}: ")), "{err}");
        }
    }

    #[test]
    fn intel_rdt_is_refused_naming_the_field() {
        let tmp = std::env::temp_dir();
        let spec = spec_with(|v| {
            v["root"]["path"] = tmp.to_str().unwrap().into();
            v["linux"]["intelRdt"] = serde_json::json!({"closID": "x", "l3CacheSchema": "L3:0=f"});
        });
        let err = validate(&spec, &tmp).unwrap_err().to_string();
        assert!(err.starts_with("linux.intelRdt"), "{err}");
    }

    #[test]
    fn masks_without_a_mount_namespace_are_refused() {
        let tmp = std::env::temp_dir();
        let spec = spec_with(|v| {
            v["root"]["path"] = tmp.to_str().unwrap().into();
            v["mounts"] = serde_json::json!([]);
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
            v["hostname"] = serde_json::Value::Null;
        });
        let err = validate_namespace_needs(&spec).unwrap_err().to_string();
        assert!(err.starts_with("linux.maskedPaths"), "{err}");
    }

    #[test]
    fn out_of_range_and_unmapped_ids_are_refused() {
        let tmp = std::env::temp_dir();
        let check = |edit: &dyn Fn(&mut serde_json::Value)| {
            let spec = spec_with(|v| {
                v["root"]["path"] = tmp.to_str().unwrap().into();
                edit(v);
            });
            validate(&spec, &tmp).map_err(|e| e.to_string())
        };
        let e = check(&|v| v["process"]["user"]["uid"] = 4294967295u32.into()).unwrap_err();
        assert!(e.starts_with("process.user.uid:"), "{e}");
        let e = check(&|v| v["process"]["user"]["gid"] = 4294967295u32.into()).unwrap_err();
        assert!(e.starts_with("process.user.gid:"), "{e}");
        let e = check(&|v| {
            v["process"]["user"]["additionalGids"] = serde_json::json!([1, 4294967295u32])
        })
        .unwrap_err();
        assert!(e.starts_with("process.user.additionalGids[1]:"), "{e}");
        assert!(check(&|v| v["process"]["user"]["uid"] = 4294967294u32.into()).is_ok());
        // With a new user namespace, ids must be mapped.
        let userns = |v: &mut serde_json::Value| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        };
        assert!(check(&|v| {
            userns(v);
            v["process"]["user"]["uid"] = 999.into();
        })
        .is_ok());
        let e = check(&|v| {
            userns(v);
            v["process"]["user"]["uid"] = 1000.into();
        })
        .unwrap_err();
        assert!(e.starts_with("process.user.uid: 1000 is not mapped"), "{e}");
        let e = check(&|v| {
            userns(v);
            v["process"]["user"]["additionalGids"] = serde_json::json!([5000]);
        })
        .unwrap_err();
        assert!(e.starts_with("process.user.additionalGids[0]:"), "{e}");
    }

    #[test]
    fn sysctl_keys_cannot_leave_proc_sys() {
        assert!(validate_sysctl_key("net.ipv4.ip_forward").is_ok());
        for bad in ["../../etc/passwd", "net/ipv4", "kernel..x", ".x", "x.", ""] {
            assert!(validate_sysctl_key(bad).is_err(), "{bad}");
        }
    }
}
