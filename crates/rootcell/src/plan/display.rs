//! `rootcell plan` output: the plan as a readable tree.

use std::fmt;

use super::*;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "namespaces")?;
        for ns in &self.namespaces.create {
            writeln!(f, "├─ new {}", ns.proc_name())?;
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
        writeln!(f, "rootfs {}", r.rootfs.display())?;
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
        writeln!(f, "├─ bind rootfs onto itself")?;
        for step in &r.setup {
            writeln!(f, "├─ {step}")?;
        }
        writeln!(f, "├─ switch root: {:?}", r.switch)?;
        for step in &r.finish {
            writeln!(f, "├─ {step}")?;
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
        writeln!(f, "└─ no_new_privileges {}", p.no_new_privileges)
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
                    } => {
                        write!(f, "mount {fstype} {source} on {}", m.destination.display())?;
                        if !options.is_empty() {
                            let data: Vec<_> = options.iter().map(|o| o.to_string()).collect();
                            write!(f, " data [{}]", data.join(","))?;
                        }
                        if *copy_up {
                            write!(f, " copy-up")?;
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
            Step::Mask { path } => write!(f, "mask {}", path.display()),
            Step::ReadOnly { path } => write!(f, "read-only {}", path.display()),
            Step::RemountReadOnly { path } => write!(f, "remount read-only {}", path.display()),
            Step::Sysctl { key, value } => write!(f, "sysctl {key} = {value}"),
            Step::ReopenDevNull => write!(f, "reopen stdio on the container's /dev/null"),
        }
    }
}
