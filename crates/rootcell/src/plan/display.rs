//! `rootcell plan` output: the plan as a readable tree.

use std::fmt;

use super::*;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.isolation {
            Isolation::Oci => writeln!(f, "isolation oci")?,
            Isolation::Chroot => writeln!(
                f,
                "isolation chroot: no namespace joined; root switched by MS_MOVE + chroot; mount flags verified"
            )?,
            Isolation::Auto => writeln!(
                f,
                "isolation auto: planned as oci; create retries with chroot isolation if the kernel refuses a fresh proc or sysfs, pivot_root or the id mapping"
            )?,
        }
        if let Some(b) = self.runtime_binary {
            writeln!(f, "{b}")?;
        }
        match self.spawn {
            spawn::InitSpawn::Stage1 => writeln!(f, "{}\n{}", self.spawn, self.cgroup_entry)?,
            spawn::InitSpawn::Direct if self.namespaces.creates(Namespace::Cgroup) => writeln!(
                f,
                "{}; it creates the cgroup namespace once in them",
                self.spawn
            )?,
            spawn::InitSpawn::Direct => writeln!(f, "{}", self.spawn)?,
        }
        if self.create_hooks_sync {
            writeln!(
                f,
                "hooks: init stops after its rootfs steps while the runtime runs the prestart and createRuntime hooks"
            )?;
        }
        match self.init_procfs {
            InitProcfs::ContainerProc => writeln!(
                f,
                "procfs: init uses the container's fresh /proc once mounted (a private one if needed before)"
            )?,
            InitProcfs::Private => writeln!(
                f,
                "procfs: init makes a private one first (a user namespace: not after the masks)"
            )?,
        }
        if self.rootfs.lock_mounts {
            writeln!(
                f,
                "mounts locked: after the root switch, a child user namespace with the same ids and a new mount namespace in it"
            )?;
        }
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        writeln!(f, "namespaces")?;
        for ns in &self.namespaces.create {
            if self.namespaces.shared_if_refused.contains(ns) {
                writeln!(
                    f,
                    "├─ new {} (shared with the runtime's if the kernel refuses it)",
                    ns.proc_name()
                )?;
            } else {
                writeln!(f, "├─ new {}", ns.proc_name())?;
            }
        }
        for (ns, path) in &self.namespaces.join {
            writeln!(f, "├─ join {} {}", ns.proc_name(), path.display())?;
        }
        for (kind, maps) in [
            ("uid", &self.namespaces.uid_mappings),
            ("gid", &self.namespaces.gid_mappings),
        ] {
            for m in maps {
                writeln!(
                    f,
                    "├─ {kind} map {} → host {} ({} ids)",
                    m.container_id, m.host_id, m.size
                )?;
            }
        }
        if let Some(h) = &self.hostname {
            writeln!(f, "├─ hostname {h}")?;
        }
        if let Some(d) = &self.domainname {
            writeln!(f, "├─ domainname {d}")?;
        }
        let r = &self.rootfs;
        match &r.source {
            RootSource::Bundle => writeln!(f, "rootfs {}", r.rootfs.display())?,
            RootSource::HostTree(_) => writeln!(f, "rootfs: the host's tree")?,
        }
        writeln!(
            f,
            "├─ propagation of / : {}{:?}",
            if r.root_propagation.recursive {
                "recursive "
            } else {
                ""
            },
            r.root_propagation.kind
        )?;
        match &r.source {
            RootSource::Bundle => writeln!(f, "├─ bind rootfs onto itself")?,
            RootSource::HostTree(staging) => {
                let fs = match &staging.filesystem {
                    StagingFilesystem::Tmpfs { options } if options.is_empty() => {
                        "a tmpfs".to_string()
                    }
                    StagingFilesystem::Tmpfs { options } => {
                        let data: Vec<_> = options.iter().map(|o| o.to_string()).collect();
                        format!("a tmpfs [{}]", data.join(","))
                    }
                    StagingFilesystem::Directory => "a new directory in $TMPDIR".to_string(),
                };
                writeln!(
                    f,
                    "├─ staging: {fs}, attached at {} while the root is assembled in its root/",
                    staging.mountpoint.display()
                )?;
            }
        }
        for step in &r.setup {
            writeln!(f, "├─ {step}")?;
        }
        writeln!(f, "├─ switch root: {:?}", r.switch)?;
        if let Some(points) = &r.hide_host_mounts {
            let names: Vec<String> = points.iter().map(|p| p.display().to_string()).collect();
            writeln!(
                f,
                "│    first hiding the host's proc and sysfs mounts outside the root: {}",
                names.join(", ")
            )?;
        }
        if let Some(rules) = &r.device_rules {
            let texts: Vec<String> = rules
                .iter()
                .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.text()))
                .collect();
            writeln!(
                f,
                "├─ device rules met by the nodes where no devices cgroup holds them: {}",
                texts.join(", ")
            )?;
        }
        for step in &r.finish {
            writeln!(f, "├─ {step}")?;
        }
        if let Some(res) = &self.resources {
            fmt_resources(f, res)?;
        }
        if let Some(m) = &self.memory_policy {
            writeln!(
                f,
                "memory policy {} nodes {:?} flags {:?} (set_mempolicy mode {:#x})",
                m.mode, m.nodes, m.flags, m.raw_mode
            )?;
        }
        let p = &self.process;
        writeln!(f, "process")?;
        writeln!(f, "├─ args {:?}", p.args)?;
        writeln!(f, "├─ cwd {}", p.cwd.display())?;
        writeln!(
            f,
            "├─ user {}:{} groups {:?} umask {:04o}",
            p.uid, p.gid, p.additional_gids, p.umask
        )?;
        if p.terminal {
            let size = p
                .console_size
                .map(|s| format!(", {}x{}", s.height, s.width))
                .unwrap_or_default();
            writeln!(
                f,
                "├─ terminal: a new pty from /dev/pts/ptmx{size}, its peer on /dev/console and stdio, the master sent out"
            )?;
        }
        for r in &p.rlimits {
            writeln!(f, "├─ {} soft {} hard {}", r.name, r.soft, r.hard)?;
        }
        if let Some(c) = &p.capabilities {
            writeln!(f, "├─ capabilities bounding {:?}", c.bounding)?;
            writeln!(
                f,
                "│  effective {:?} permitted {:?}",
                c.effective, c.permitted
            )?;
            writeln!(
                f,
                "│  inheritable {:?} ambient {:?}",
                c.inheritable, c.ambient
            )?;
        }
        if let Some(adj) = p.oom_score_adj {
            writeln!(f, "├─ oom_score_adj {adj}")?;
        }
        if let Some(pers) = &p.personality {
            writeln!(f, "├─ personality {} ({:#x})", pers.domain, pers.persona)?;
        }
        if let Some(s) = &p.scheduler {
            writeln!(
                f,
                "├─ scheduler {} nice {} priority {} flags {:#x}",
                s.policy_name, s.nice, s.priority, s.flags
            )?;
            if s.runtime != 0 {
                writeln!(
                    f,
                    "│  runtime {} deadline {} period {} ns",
                    s.runtime, s.deadline, s.period
                )?;
            }
        }
        if let Some(io) = &p.io_priority {
            writeln!(f, "├─ io priority {} {}", io.class_name, io.priority)?;
        }
        if let Some(a) = &p.exec_cpu_affinity {
            let show = |c: &Option<Vec<u32>>| {
                c.as_deref()
                    .map(super::process::format_cpu_list)
                    .unwrap_or_else(|| "-".into())
            };
            writeln!(
                f,
                "├─ exec cpu affinity initial {} final {} (exec only, not init)",
                show(&a.initial),
                show(&a.final_cpus)
            )?;
        }
        if let Some(profile) = &p.lsm.apparmor_profile {
            writeln!(f, "├─ apparmor profile {profile}")?;
        }
        if let Some(label) = &p.lsm.selinux_label {
            writeln!(f, "├─ selinux label {label}")?;
        }
        writeln!(f, "├─ no_new_privileges {}", p.no_new_privileges)?;
        for w in &p.warnings {
            writeln!(f, "├─ warning: {w}")?;
        }
        let steps: Vec<String> = p
            .final_steps
            .iter()
            .map(|s| match s {
                super::FinalStep::SetCapabilities {
                    keep_sys_admin: true,
                } => "set_capabilities(+CAP_SYS_ADMIN until execve)".to_string(),
                super::FinalStep::LoadSeccomp { handoff: true } => {
                    "load_seccomp(+notify fd handoff)".to_string()
                }
                other => serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v["step"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect();
        writeln!(f, "├─ final steps: {}", steps.join(" → "))?;
        match &p.seccomp {
            None => writeln!(f, "└─ seccomp: none"),
            Some(s) => {
                writeln!(
                    f,
                    "└─ seccomp default {} archs [native{}] flags [{}], loaded {}",
                    s.default_action,
                    s.architectures
                        .iter()
                        .map(|a| format!(",{}", a.trim_start_matches("SCMP_ARCH_").to_lowercase()))
                        .collect::<String>(),
                    s.flags
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(","),
                    if p.no_new_privileges {
                        "right before execve, after no_new_privs"
                    } else {
                        "right before execve, with CAP_SYS_ADMIN kept until execve"
                    }
                )?;
                if let Some(stub) = &s.enosys_stub {
                    writeln!(
                        f,
                        "   ├─ ENOSYS for native syscalls above {} ({}, the newest named)",
                        stub.above, stub.newest
                    )?;
                }
                if let Some(l) = &s.listener {
                    writeln!(f, "   ├─ notify agent {}", l.path.display())?;
                }
                if !s.skipped_syscalls.is_empty() {
                    writeln!(
                        f,
                        "   ├─ skipped (unknown to libseccomp): {}",
                        s.skipped_syscalls.join(" ")
                    )?;
                }
                // Group consecutive rules with the same action and no
                // conditions, as profiles list them.
                let mut i = 0;
                while i < s.rules.len() {
                    let r = &s.rules[i];
                    let last = i + 1 == s.rules.len();
                    let branch = if last { "└─" } else { "├─" };
                    if r.conditions.is_empty() {
                        let mut names = vec![r.syscall.as_str()];
                        while i + 1 < s.rules.len()
                            && s.rules[i + 1].action == r.action
                            && s.rules[i + 1].conditions.is_empty()
                        {
                            i += 1;
                            names.push(s.rules[i].syscall.as_str());
                        }
                        let branch = if i + 1 == s.rules.len() {
                            "└─"
                        } else {
                            "├─"
                        };
                        writeln!(f, "   {branch} {}: {}", r.action, names.join(" "))?;
                    } else {
                        let conds: Vec<String> = r
                            .conditions
                            .iter()
                            .map(|c| match c.op {
                                super::seccomp::CompareOp::MaskedEq => {
                                    format!("arg{} & {:#x} == {:#x}", c.index, c.value, c.value_two)
                                }
                                op => format!("arg{} {} {}", c.index, op.symbol(), c.value),
                            })
                            .collect();
                        writeln!(
                            f,
                            "   {branch} {}: {} if {}",
                            r.action,
                            r.syscall,
                            conds.join(" && ")
                        )?;
                    }
                    i += 1;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for super::seccomp::SeccompAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::seccomp::SeccompAction::*;
        match self {
            KillThread => write!(f, "kill thread"),
            KillProcess => write!(f, "kill process"),
            Trap => write!(f, "trap"),
            Errno { errno } => write!(f, "errno {errno}"),
            Trace { message } => write!(f, "trace {message}"),
            Allow => write!(f, "allow"),
            Log => write!(f, "log"),
            Notify => write!(f, "notify"),
        }
    }
}

impl super::seccomp::CompareOp {
    fn symbol(self) -> &'static str {
        use super::seccomp::CompareOp::*;
        match self {
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Eq => "==",
            Ge => ">=",
            Gt => ">",
            MaskedEq => "&==",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Mount(m) => {
                match &m.kind {
                    MountKind::Fresh {
                        fstype,
                        source,
                        options,
                        copy_up,
                        host_fallback,
                    } => {
                        write!(f, "mount {fstype} {source} on {}", m.destination.display())?;
                        if !options.is_empty() {
                            let data: Vec<_> = options.iter().map(|o| o.to_string()).collect();
                            write!(f, " data [{}]", data.join(","))?;
                        }
                        if *copy_up {
                            write!(f, " copy-up")?;
                        }
                        if let Some(h) = host_fallback {
                            write!(
                                f,
                                ", else (refused) {} the host's {}{}",
                                if h.recursive { "rbind" } else { "bind" },
                                h.source.display(),
                                if h.read_only { " read-only" } else { "" }
                            )?;
                        }
                    }
                    MountKind::Bind {
                        source,
                        recursive,
                        idmap,
                    } => {
                        write!(
                            f,
                            "{} {} on {}",
                            if *recursive { "rbind" } else { "bind" },
                            source.display(),
                            m.destination.display()
                        )?;
                        if let Some(map) = idmap {
                            let show = |maps: &[IdMapping]| {
                                maps.iter()
                                    .map(|m| format!("{}→{}+{}", m.container_id, m.host_id, m.size))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            };
                            write!(
                                f,
                                " {} uids [{}] gids [{}]",
                                if map.recursive { "ridmap" } else { "idmap" },
                                show(&map.uid_mappings),
                                show(&map.gid_mappings)
                            )?;
                        }
                    }
                    MountKind::Overlay {
                        lower,
                        layer,
                        driver,
                    } => write!(
                        f,
                        "overlay {} (upper: staging upper/{}) on {}{}",
                        lower.display(),
                        layer.display(),
                        m.destination.display(),
                        match driver {
                            OverlayDriver::Kernel => String::new(),
                            other => format!(" driver [{other}]"),
                        }
                    )?,
                    MountKind::Staging { path } => write!(
                        f,
                        "bind staging {} on {}",
                        path.display(),
                        m.destination.display()
                    )?,
                }
                let attrs = m.attrs.describe();
                if !attrs.is_empty() {
                    write!(f, " attrs [{}]", attrs.join(","))?;
                }
                let rattrs = m.recursive_attrs.describe();
                if !rattrs.is_empty() {
                    write!(f, " recursive attrs [{}]", rattrs.join(","))?;
                }
                if let Some(p) = m.propagation {
                    write!(
                        f,
                        " propagation {}{:?}",
                        if p.recursive { "r" } else { "" },
                        p.kind
                    )?;
                }
                Ok(())
            }
            Step::Device(d) => write!(
                f,
                "{} {:?} {}:{} {} mode {:04o} owner {}:{}",
                if d.bind_from_host {
                    "bind device"
                } else {
                    "mknod"
                },
                d.kind,
                d.major,
                d.minor,
                d.path.display(),
                d.mode,
                d.uid,
                d.gid
            ),
            Step::Symlink { target, link } => {
                write!(f, "symlink {} → {}", link.display(), target.display())
            }
            Step::Mkdir { path } => write!(f, "mkdir -p {}", path.display()),
            Step::StagingFile { name, mode, .. } => {
                write!(f, "write staging files/{} mode {mode:o}", name.display())
            }
            Step::Mask { path } => write!(f, "mask {}", path.display()),
            Step::ReadOnly { path } => write!(f, "read-only {}", path.display()),
            Step::RemountReadOnly { path } => write!(f, "remount read-only {}", path.display()),
            Step::Sysctl { key, value } => write!(f, "sysctl {key} = {value}"),
            Step::ReopenDevNull => write!(f, "reopen stdio on the container's /dev/null"),
            Step::RootPropagation(p) => write!(
                f,
                "propagation of the new root: {}{:?}",
                if p.recursive { "recursive " } else { "" },
                p.kind
            ),
        }
    }
}

/// The cgroup files `linux.resources` writes, in order, and the fields it
/// accepts but ignores.
fn fmt_resources(f: &mut fmt::Formatter<'_>, res: &super::CgroupResources) -> fmt::Result {
    writeln!(f, "cgroup resources ({:?})", res.version)?;
    for w in &res.writes {
        let files: Vec<String> = w
            .files
            .iter()
            .map(|c| format!("{} = {:?}", c.name, c.value))
            .collect();
        writeln!(f, "├─ {} ({})", files.join(" or "), w.field)?;
    }
    if let Some(filter) = &res.device_filter {
        let rules: Vec<String> = filter
            .rules
            .iter()
            .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.text()))
            .collect();
        writeln!(
            f,
            "├─ device filter (eBPF, last match decides): {}",
            rules.join(", ")
        )?;
    }
    for warning in &res.warnings {
        writeln!(f, "├─ warning: {warning}")?;
    }
    Ok(())
}

impl fmt::Display for binary::BinaryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use binary::{BinaryPlan, Protection};
        match self {
            BinaryPlan::Keep(Protection::ReadOnlyMount) => {
                write!(f, "runtime binary: on a read-only mount, run as is")
            }
            BinaryPlan::Keep(Protection::SealedMemfd) => {
                write!(f, "runtime binary: a sealed memfd, run as is")
            }
            BinaryPlan::Keep(Protection::Immutable) => write!(
                f,
                "runtime binary: immutable, run as is (no process of the container can hold CAP_LINUX_IMMUTABLE in the initial user namespace)"
            ),
            BinaryPlan::Reexec => write!(
                f,
                "runtime binary: re-executed from a read-only image first (writable, or immutable while a process of the container may hold CAP_LINUX_IMMUTABLE)"
            ),
        }
    }
}
