//! The generated system configuration of a sandbox (unless
//! `--keep-system-config`): `/etc/passwd`, `/etc/group`, `/etc/hosts`,
//! `/etc/nsswitch.conf` and `/etc/hostname`, as BenchExec's
//! `setup_container_system_config` writes them. They make user and host
//! lookups inside answer from these files only (no LDAP, no DNS, no host
//! user database) and know exactly three users: root, the one mapped user
//! the command runs as, and nobody.
//!
//! Pure functions: the layout planner turns their output into
//! `Step::StagingFile`s. Names that come from outside (the host's user and
//! group names) are checked with [`valid_name`] and replaced by
//! `user<uid>`/`group<gid>` (the layout's name for ids the host has no name
//! for) when they could break a file format (a `:`, `,`, newline or space)
//! or clash with root/nobody; [`Identity::new`] refuses them instead, for
//! callers that want an error.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The hostname written when the one asked for is not a valid hostname:
/// the layout's own (`layout::SANDBOX_HOSTNAME`; BenchExec's is
/// `benchexec`).
pub const FALLBACK_HOSTNAME: &str = "sandbox";
/// uid and gid of nobody / nogroup.
pub const NOBODY_ID: u32 = 65534;
/// BenchExec also makes `/etc/mtab` a symlink to this (not a bind: a
/// symlink cannot be bound over).
pub const MTAB_TARGET: &str = "/proc/self/mounts";
/// Longest name accepted (glibc has no limit; `useradd` allows 32 by
/// default, systemd 256).
pub const MAX_NAME_LEN: usize = 256;

/// The user the command runs as inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    /// `$HOME` inside (a fresh hidden directory).
    pub home: PathBuf,
}

impl Identity {
    /// A checked identity: `user` and `group` must pass [`valid_name`] and
    /// not name root/nobody/nogroup for other ids, `home` must be an
    /// absolute, normal path without `:` or a newline.
    pub fn new(
        uid: u32,
        gid: u32,
        user: impl Into<String>,
        group: impl Into<String>,
        home: impl Into<PathBuf>,
    ) -> Result<Identity> {
        let id = Identity {
            uid,
            gid,
            user: user.into(),
            group: group.into(),
            home: home.into(),
        };
        if id.uid != 0 && id.uid != NOBODY_ID {
            check_name("user", &id.user, &["root", "nobody"])?;
        }
        if id.gid != 0 && id.gid != NOBODY_ID {
            check_name("group", &id.group, &["root", "nogroup", "nobody"])?;
        }
        if safe_home(&id.home).is_none() {
            return Err(Error::Other(format!(
                "home directory {:?}: must be an absolute path without `..`, `:` or control characters",
                id.home
            )));
        }
        Ok(id)
    }

    /// The identity for `uid`/`gid` with the names the host gives them,
    /// looked up in the *contents* of the host's `/etc/passwd` and
    /// `/etc/group` (read by the caller; no NSS). Ids the host has no
    /// usable name for are called `user<uid>`/`group<gid>`. `$HOME` is
    /// `/home/<user>`, root's too (BenchExec's HOME is a fresh
    /// `/home/benchexec` whatever the uid).
    pub fn from_host(uid: u32, gid: u32, host_passwd: &str, host_group: &str) -> Identity {
        let user = match uid {
            0 => "root".to_string(),
            NOBODY_ID => "nobody".to_string(),
            _ => lookup(host_passwd, uid)
                .filter(|n| usable(n, &["root", "nobody"]))
                .map_or_else(|| format!("user{uid}"), str::to_string),
        };
        let group = match gid {
            0 => "root".to_string(),
            NOBODY_ID => "nogroup".to_string(),
            _ => lookup(host_group, gid)
                .filter(|n| usable(n, &["root", "nogroup", "nobody"]))
                .map_or_else(|| format!("group{gid}"), str::to_string),
        };
        let home = Path::new("/home").join(&user);
        Identity {
            uid,
            gid,
            user,
            group,
            home,
        }
    }
}

/// Whether `name` is safe as a user or group name in `/etc/passwd`,
/// `/etc/group` and as a path component: 1 to [`MAX_NAME_LEN`] bytes of
/// ASCII letters, digits, `_`, `-`, `.`, `@` (sssd's `user@domain`) and a
/// trailing `$` (Samba machine accounts), starting with a letter, digit
/// or `_` (`+`/`-` lines are NIS compat entries, `.` makes hidden or `..`
/// paths) and not only digits (tools take a numeric name for an id).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if bytes.len() > MAX_NAME_LEN || !(first.is_ascii_alphanumeric() || first == b'_') {
        return false;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let last = bytes.len() - 1;
    bytes.iter().enumerate().all(|(i, &b)| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'-' | b'.' | b'@')
            || (b == b'$' && i == last)
    })
}

/// Whether `name` can be the hostname: 1 to 64 bytes (the kernel's
/// limit), dot-separated labels of letters, digits and `-` that neither
/// start nor end with `-` (RFC 1123).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `/etc/passwd`: root, the user (when neither root nor nobody) and
/// nobody. The user's line carries its home; root's and nobody's lines
/// become the user's when it is one of them.
pub fn passwd(id: &Identity) -> String {
    let home = safe_home(&id.home).unwrap_or("/");
    let mut out = String::new();
    if id.uid == 0 {
        out += &format!("root:x:0:{}:root:{home}:/bin/bash\n", id.gid);
    } else {
        out += "root:x:0:0:root:/root:/bin/bash\n";
    }
    if id.uid != 0 && id.uid != NOBODY_ID {
        let user = name_or_fallback(&id.user, &["root", "nobody"], || format!("user{}", id.uid));
        out += &format!("{user}:x:{}:{}:{user}:{home}:/bin/bash\n", id.uid, id.gid);
    }
    if id.uid == NOBODY_ID {
        out += &format!("nobody:x:{NOBODY_ID}:{}:nobody:{home}:/bin/false\n", id.gid);
    } else {
        out += &format!("nobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:/:/bin/false\n");
    }
    out
}

/// `/etc/group`: root, the user's group (when neither 0 nor 65534) and
/// nogroup, without members.
pub fn group(id: &Identity) -> String {
    let mut out = String::from("root:x:0:\n");
    if id.gid != 0 && id.gid != NOBODY_ID {
        let group = name_or_fallback(&id.group, &["root", "nogroup", "nobody"], || {
            format!("group{}", id.gid)
        });
        out += &format!("{group}:x:{}:\n", id.gid);
    }
    out += &format!("nogroup:x:{NOBODY_ID}:\n");
    out
}

/// `/etc/hosts`: localhost and `hostname` on 127.0.0.1, the usual IPv6
/// names (as BenchExec's). An invalid hostname is replaced by
/// [`FALLBACK_HOSTNAME`], as in [`hostname_file`], so that both agree.
pub fn hosts(hostname: &str) -> String {
    let hostname = hostname_or_default(hostname);
    let names = if hostname == "localhost" {
        "localhost".to_string()
    } else {
        format!("localhost {hostname}")
    };
    format!(
        "127.0.0.1\t{names}\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
    )
}

/// `/etc/nsswitch.conf`: every database from local files only (BenchExec's
/// list; its `db files` for protocols, services, ethers and rpc is plain
/// `files` here: no Berkeley DB lookups either).
pub fn nsswitch() -> String {
    [
        "passwd",
        "group",
        "shadow",
        "gshadow",
        "hosts",
        "networks",
        "protocols",
        "services",
        "ethers",
        "rpc",
        "netgroup",
        "automount",
    ]
    .iter()
    .map(|db| format!("{:<12}files\n", format!("{db}:")))
    .collect()
}

/// `/etc/hostname`: the name and a newline. An invalid hostname is
/// replaced by [`FALLBACK_HOSTNAME`] (callers check with
/// [`valid_hostname`] before `sethostname`).
pub fn hostname_file(hostname: &str) -> String {
    format!("{}\n", hostname_or_default(hostname))
}

/// One generated file, `/etc/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFile {
    pub name: &'static str,
    pub contents: String,
    pub mode: u32,
}

/// Every generated file, in BenchExec's order, mode 0644.
pub fn etc_files(id: &Identity, hostname: &str) -> Vec<EtcFile> {
    let file = |name, contents| EtcFile {
        name,
        contents,
        mode: 0o644,
    };
    vec![
        file("nsswitch.conf", nsswitch()),
        file("passwd", passwd(id)),
        file("group", group(id)),
        file("hostname", hostname_file(hostname)),
        file("hosts", hosts(hostname)),
    ]
}

/// The first name of `id` in a passwd- or group-format file.
fn lookup(file: &str, id: u32) -> Option<&str> {
    file.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == id).then_some(name)
    })
}

fn usable(name: &str, reserved: &[&str]) -> bool {
    valid_name(name) && !reserved.contains(&name)
}

fn name_or_fallback(name: &str, reserved: &[&str], fallback: impl FnOnce() -> String) -> String {
    if usable(name, reserved) {
        name.to_string()
    } else {
        fallback()
    }
}

fn check_name(what: &str, name: &str, reserved: &[&str]) -> Result<()> {
    if reserved.contains(&name) {
        return Err(Error::Other(format!(
            "{what} name {name:?}: reserved for another id in the generated /etc files"
        )));
    }
    if !valid_name(name) {
        return Err(Error::Other(format!(
            "{what} name {name:?}: only ASCII letters, digits, `_`, `-`, `.`, `@` and a trailing `$` \
             (starting with a letter, digit or `_`, not only digits, at most {MAX_NAME_LEN} bytes)"
        )));
    }
    Ok(())
}

/// `home` as a string fit for the sixth field of `/etc/passwd`: absolute,
/// UTF-8, no `.`/`..` components, no `:` and no control characters.
fn safe_home(home: &Path) -> Option<&str> {
    let s = home.to_str()?;
    let normal = s.starts_with('/')
        && !s.split('/').any(|c| c == "." || c == "..")
        && !s.chars().any(|c| c == ':' || c.is_control());
    normal.then_some(s)
}

fn hostname_or_default(hostname: &str) -> &str {
    if valid_hostname(hostname) {
        hostname
    } else {
        FALLBACK_HOSTNAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, name: &str) -> Identity {
        Identity {
            uid,
            gid,
            user: name.into(),
            group: name.into(),
            home: Path::new("/home").join(name),
        }
    }

    /// Each line of a passwd file has 7 fields, group 4; names are unique
    /// and so are ids.
    fn assert_well_formed(text: &str, fields: usize) {
        assert!(text.ends_with('\n'), "{text:?}");
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split(':').collect();
            assert_eq!(parts.len(), fields, "{line:?}");
            assert!(valid_name(parts[0]), "{line:?}");
            assert!(names.insert(parts[0]), "duplicate name in {text:?}");
            assert!(ids.insert(parts[2]), "duplicate id in {text:?}");
        }
    }

    #[test]
    fn passwd_has_root_the_user_and_nobody() {
        let id = user(1000, 1000, "alice");
        let text = passwd(&id);
        assert_eq!(
            text,
            "root:x:0:0:root:/root:/bin/bash\n\
             alice:x:1000:1000:alice:/home/alice:/bin/bash\n\
             nobody:x:65534:65534:nobody:/:/bin/false\n"
        );
        assert_well_formed(&text, 7);
        assert_eq!(group(&id), "root:x:0:\nalice:x:1000:\nnogroup:x:65534:\n");
        assert_well_formed(&group(&id), 4);
    }

    #[test]
    fn root_and_nobody_are_not_listed_twice() {
        let root = Identity::from_host(0, 0, "", "");
        assert_eq!(root.home, Path::new("/home/root"));
        assert_eq!(
            passwd(&root),
            "root:x:0:0:root:/home/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        );
        assert_eq!(group(&root), "root:x:0:\nnogroup:x:65534:\n");

        let nobody = Identity::from_host(NOBODY_ID, NOBODY_ID, "", "");
        assert_eq!(nobody.home, Path::new("/home/nobody"));
        let text = passwd(&nobody);
        assert_eq!(
            text,
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/home/nobody:/bin/false\n"
        );
        assert_eq!(group(&nobody), "root:x:0:\nnogroup:x:65534:\n");

        // Root with another primary group keeps it.
        let mixed = user(0, 1000, "root");
        assert_eq!(
            passwd(&mixed).lines().next(),
            Some("root:x:0:1000:root:/home/root:/bin/bash")
        );
        assert_well_formed(&passwd(&mixed), 7);
        assert_well_formed(&group(&mixed), 4);
    }

    #[test]
    fn names_come_from_the_host_files() {
        let host_passwd = "root:x:0:0:root:/root:/bin/bash\n\
                           daemon:x:1:1::/:/usr/sbin/nologin\n\
                           cloudsdk:x:1000:1000:,,,:/home/cloudsdk:/bin/bash\n";
        let host_group = "root:x:0:\nstaff:x:50:\ncloudsdk:x:1000:\n";
        let id = Identity::from_host(1000, 50, host_passwd, host_group);
        assert_eq!(id.user, "cloudsdk");
        assert_eq!(id.group, "staff");
        assert_eq!(id.home, Path::new("/home/cloudsdk"));
        assert!(passwd(&id).contains("\ncloudsdk:x:1000:50:cloudsdk:/home/cloudsdk:/bin/bash\n"));
        assert!(group(&id).contains("\nstaff:x:50:\n"));

        // Unknown ids: named after the id.
        let id = Identity::from_host(4242, 4243, host_passwd, host_group);
        assert_eq!(
            (id.user.as_str(), id.group.as_str()),
            ("user4242", "group4243")
        );
        assert_eq!(id.home, Path::new("/home/user4242"));
        assert!(passwd(&id).contains("\nuser4242:x:4242:4243:user4242:/home/user4242:/bin/bash\n"));
    }

    #[test]
    fn unsafe_host_names_are_replaced() {
        // A name that would break the format, a path component or clash
        // with root/nobody is never written.
        for bad in [
            "", "a b", "a,b", "-x", "+", ".hidden", "..", "a/b", "1234", "root", "nobody",
        ] {
            let host_passwd = format!("{bad}:x:1000:1000::/home/x:/bin/sh\n");
            let host_group = format!("{bad}:x:1000:\n");
            let id = Identity::from_host(1000, 1000, &host_passwd, &host_group);
            assert_eq!(id.user, "user1000", "{bad:?}");
            assert_eq!(id.group, "group1000", "{bad:?}");
            assert_well_formed(&passwd(&id), 7);
            assert_well_formed(&group(&id), 4);
        }
        // A name with `:` cannot even be found (it splits the line).
        let id = Identity::from_host(1000, 1000, "a:b:x:1000:1000::/:/bin/sh\n", "");
        assert_eq!(id.user, "user1000");
    }

    #[test]
    fn formats_stay_intact_whatever_the_fields_hold() {
        // Fields are public: the formatters never trust them.
        let id = Identity {
            uid: 1000,
            gid: 1001,
            user: "evil:x:0:0::/:/bin/sh\nroot2".into(),
            group: "g,root\nwheel:x:10:".into(),
            home: PathBuf::from("/home/x:0:0\n"),
        };
        let p = passwd(&id);
        assert_eq!(p.lines().count(), 3, "{p:?}");
        assert_well_formed(&p, 7);
        assert!(
            p.contains("\nuser1000:x:1000:1001:user1000:/:/bin/bash\n"),
            "{p:?}"
        );
        let g = group(&id);
        assert_eq!(g.lines().count(), 3, "{g:?}");
        assert_well_formed(&g, 4);

        for home in [
            "relative",
            "/home/../etc",
            "/home/./x",
            "/a:b",
            "/tab\there",
        ] {
            let id = Identity {
                home: PathBuf::from(home),
                ..user(1000, 1000, "u")
            };
            assert!(
                passwd(&id).contains("\nu:x:1000:1000:u:/:/bin/bash\n"),
                "{home:?}"
            );
        }
    }

    #[test]
    fn new_refuses_what_from_host_would_replace() {
        assert!(Identity::new(1000, 1000, "alice", "users", "/home/alice").is_ok());
        assert!(Identity::new(0, 0, "anything", "anything", "/root").is_ok());
        for (user, group, home) in [
            ("a:b", "g", "/home/a"),
            ("a\n", "g", "/home/a"),
            ("root", "g", "/home/a"),
            ("u", "nogroup", "/home/u"),
            ("u", "a,b", "/home/u"),
            ("u", "g", "home/u"),
            ("u", "g", "/home/u:x"),
            ("u", "g", "/home/../root"),
        ] {
            let err = Identity::new(1000, 1000, user, group, home)
                .unwrap_err()
                .to_string();
            assert!(!err.is_empty(), "{user:?} {group:?} {home:?}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(Identity::new(1000, 1000, long, "g", "/home/a").is_err());
    }

    #[test]
    fn valid_names() {
        for ok in [
            "a",
            "alice",
            "a_b-c.d",
            "user@example.org",
            "host$",
            "_apt",
            "u1",
        ] {
            assert!(valid_name(ok), "{ok:?}");
        }
        for bad in [
            "", "a$b", "$", "ä", "a b", "a\tb", "a:b", "a,b", "a/b", "-a", "+a", ".a", "007",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn hosts_names_localhost_and_the_hostname() {
        let text = hosts("sandbox");
        assert_eq!(text.lines().next(), Some("127.0.0.1\tlocalhost sandbox"));
        assert!(text.contains("\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        // Every line: an address and names, no comment that a name could
        // have started.
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() >= 2 && !line.contains('#'), "{line:?}");
        }
        assert_eq!(
            hosts("localhost").lines().next(),
            Some("127.0.0.1\tlocalhost")
        );
        assert_eq!(hostname_file("box-1.example"), "box-1.example\n");
        assert_eq!(
            hosts("box-1.example").lines().next(),
            Some("127.0.0.1\tlocalhost box-1.example")
        );
    }

    #[test]
    fn invalid_hostnames_fall_back_to_sandbox() {
        for bad in [
            "",
            "a b",
            "a\n127.0.0.2 evil",
            "#x",
            "-a",
            "a-",
            "a..b",
            "a_b",
            &"a".repeat(65),
        ] {
            assert!(!valid_hostname(bad), "{bad:?}");
            assert_eq!(hostname_file(bad), "sandbox\n", "{bad:?}");
            assert_eq!(
                hosts(bad).lines().next(),
                Some("127.0.0.1\tlocalhost sandbox")
            );
        }
        assert!(valid_hostname(&"a".repeat(64)));
    }

    #[test]
    fn nsswitch_uses_files_only() {
        let text = nsswitch();
        let mut dbs = Vec::new();
        for line in text.lines() {
            let (db, sources) = line.split_once(':').expect("db: sources");
            assert_eq!(sources.trim(), "files", "{line:?}");
            dbs.push(db);
        }
        for db in [
            "passwd",
            "group",
            "shadow",
            "hosts",
            "networks",
            "services",
            "protocols",
        ] {
            assert!(dbs.contains(&db), "{db} missing from {text:?}");
        }
    }

    #[test]
    fn etc_files_lists_the_five_files() {
        let files = etc_files(&user(1000, 1000, "alice"), FALLBACK_HOSTNAME);
        let names: Vec<&str> = files.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["nsswitch.conf", "passwd", "group", "hostname", "hosts"]
        );
        assert!(files
            .iter()
            .all(|f| f.mode == 0o644 && f.contents.ends_with('\n')));
    }
}
