//! Mount options of the OCI config, sorted into what the kernel wants:
//! mount attributes (for `fsmount`/`mount_setattr`), propagation, bind-ness,
//! rootcell's own extensions, and filesystem data passed to `fsconfig`.

use serde::Serialize;

/// `MOUNT_ATTR_*` bits (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const IDMAP: u64 = 0x0010_0000;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// A change of mount attributes: bits to set and bits to clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttrChange {
    pub set: u64,
    pub clear: u64,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    fn apply(&mut self, bit: u64, on: bool) {
        if on {
            self.set |= bit;
            self.clear &= !bit;
        } else {
            self.clear |= bit;
            self.set &= !bit;
        }
    }

    fn atime(&mut self, value: u64) {
        self.clear |= attr::ATIME_MASK;
        self.set = (self.set & !attr::ATIME_MASK) | value;
    }

    /// Human names of the change, for `rootcell plan`.
    pub fn describe(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, on, off) in [
            (attr::RDONLY, "ro", "rw"),
            (attr::NOSUID, "nosuid", "suid"),
            (attr::NODEV, "nodev", "dev"),
            (attr::NOEXEC, "noexec", "exec"),
            (attr::NODIRATIME, "nodiratime", "diratime"),
            (attr::NOSYMFOLLOW, "nosymfollow", "symfollow"),
        ] {
            if self.set & bit != 0 {
                out.push(on);
            } else if self.clear & bit != 0 {
                out.push(off);
            }
        }
        if self.clear & attr::ATIME_MASK != 0 {
            out.push(match self.set & attr::ATIME_MASK {
                attr::NOATIME => "noatime",
                attr::STRICTATIME => "strictatime",
                _ => "relatime",
            });
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Shared,
    Slave,
    Unbindable,
}

impl Propagation {
    /// The `MS_*` value `mount_setattr` expects in `mount_attr.propagation`.
    pub fn ms_flag(self) -> u64 {
        match self {
            Propagation::Private => libc::MS_PRIVATE,
            Propagation::Shared => libc::MS_SHARED,
            Propagation::Slave => libc::MS_SLAVE,
            Propagation::Unbindable => libc::MS_UNBINDABLE,
        }
    }
}

/// Propagation to apply, and whether to the whole tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PropagationChange {
    pub kind: Propagation,
    pub recursive: bool,
}

/// Filesystem data, one `fsconfig` call each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FsOption {
    Flag(String),
    Value(String, String),
}

impl std::fmt::Display for FsOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsOption::Flag(k) => f.write_str(k),
            FsOption::Value(k, v) => write!(f, "{k}={v}"),
        }
    }
}

/// All mount options of one config mount, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MountOptions {
    /// Attributes of the mount itself.
    pub attrs: AttrChange,
    /// Attributes of the mount and every mount below it (`rro`, `rnosuid`...).
    pub recursive_attrs: AttrChange,
    pub propagation: Option<PropagationChange>,
    pub bind: bool,
    pub recursive_bind: bool,
    /// rootcell/runc extension: copy the directory's content into a new tmpfs.
    pub tmpcopyup: bool,
    pub idmap: Option<bool>,
    pub data: Vec<FsOption>,
}

/// Sorts option strings. Unknown options are filesystem data, as in runc.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for option in options {
        let o = option.as_str();
        if !parse_attr(o, &mut out.attrs) {
            let recursive = o
                .strip_prefix('r')
                .is_some_and(|rest| parse_attr(rest, &mut out.recursive_attrs));
            if !recursive && !parse_other(o, &mut out) {
                out.data.push(match o.split_once('=') {
                    Some((k, v)) => FsOption::Value(k.to_string(), v.to_string()),
                    None => FsOption::Flag(o.to_string()),
                });
            }
        }
    }
    out
}

fn parse_attr(o: &str, attrs: &mut AttrChange) -> bool {
    match o {
        "ro" => attrs.apply(attr::RDONLY, true),
        "rw" => attrs.apply(attr::RDONLY, false),
        "nosuid" => attrs.apply(attr::NOSUID, true),
        "suid" => attrs.apply(attr::NOSUID, false),
        "nodev" => attrs.apply(attr::NODEV, true),
        "dev" => attrs.apply(attr::NODEV, false),
        "noexec" => attrs.apply(attr::NOEXEC, true),
        "exec" => attrs.apply(attr::NOEXEC, false),
        "nodiratime" => attrs.apply(attr::NODIRATIME, true),
        "diratime" => attrs.apply(attr::NODIRATIME, false),
        "nosymfollow" => attrs.apply(attr::NOSYMFOLLOW, true),
        "symfollow" => attrs.apply(attr::NOSYMFOLLOW, false),
        "noatime" => attrs.atime(attr::NOATIME),
        "relatime" | "atime" | "norelatime" | "nostrictatime" => attrs.atime(attr::RELATIME),
        "strictatime" => attrs.atime(attr::STRICTATIME),
        _ => return false,
    }
    true
}

fn parse_other(o: &str, out: &mut MountOptions) -> bool {
    let propagation = |kind, recursive| Some(PropagationChange { kind, recursive });
    match o {
        "defaults" => {}
        "bind" => out.bind = true,
        "rbind" => {
            out.bind = true;
            out.recursive_bind = true;
        }
        "private" => out.propagation = propagation(Propagation::Private, false),
        "rprivate" => out.propagation = propagation(Propagation::Private, true),
        "shared" => out.propagation = propagation(Propagation::Shared, false),
        "rshared" => out.propagation = propagation(Propagation::Shared, true),
        "slave" => out.propagation = propagation(Propagation::Slave, false),
        "rslave" => out.propagation = propagation(Propagation::Slave, true),
        "unbindable" => out.propagation = propagation(Propagation::Unbindable, false),
        "runbindable" => out.propagation = propagation(Propagation::Unbindable, true),
        "tmpcopyup" => out.tmpcopyup = true,
        "idmap" => out.idmap = Some(false),
        "ridmap" => out.idmap = Some(true),
        _ => return false,
    }
    true
}

/// Escapes a path for an overlayfs layer option: overlayfs splits
/// `lowerdir` on `:` and mount data on `,`, and takes `\\` as the escape.
pub fn escape_overlay_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits an overlayfs layer list on the `:` that are not escaped, keeping
/// the escapes in each part.
pub fn split_overlay_layers(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ':' => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_become_attributes() {
        let o = p(&["nosuid", "noexec", "nodev", "ro", "strictatime"]);
        assert_eq!(
            o.attrs.set,
            attr::NOSUID | attr::NOEXEC | attr::NODEV | attr::RDONLY | attr::STRICTATIME
        );
        assert_eq!(o.attrs.clear, attr::ATIME_MASK);
        assert!(o.data.is_empty());
    }

    #[test]
    fn later_options_win() {
        let o = p(&["ro", "rw"]);
        assert_eq!(o.attrs.set & attr::RDONLY, 0);
        assert_ne!(o.attrs.clear & attr::RDONLY, 0);
    }

    #[test]
    fn recursive_attributes_are_separate() {
        let o = p(&["rbind", "rro", "rnosuid"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.recursive_attrs.set, attr::RDONLY | attr::NOSUID);
        assert!(o.attrs.is_empty());
    }

    #[test]
    fn propagation_and_extensions() {
        let o = p(&["rslave", "tmpcopyup", "ridmap"]);
        assert_eq!(
            o.propagation,
            Some(PropagationChange {
                kind: Propagation::Slave,
                recursive: true
            })
        );
        assert!(o.tmpcopyup);
        assert_eq!(o.idmap, Some(true));
    }

    #[test]
    fn every_attribute_option_and_its_recursive_form() {
        let table: &[(&str, u64, bool)] = &[
            ("ro", attr::RDONLY, true),
            ("rw", attr::RDONLY, false),
            ("nosuid", attr::NOSUID, true),
            ("suid", attr::NOSUID, false),
            ("nodev", attr::NODEV, true),
            ("dev", attr::NODEV, false),
            ("noexec", attr::NOEXEC, true),
            ("exec", attr::NOEXEC, false),
            ("nodiratime", attr::NODIRATIME, true),
            ("diratime", attr::NODIRATIME, false),
            ("nosymfollow", attr::NOSYMFOLLOW, true),
            ("symfollow", attr::NOSYMFOLLOW, false),
            ("noatime", attr::NOATIME, true),
            ("strictatime", attr::STRICTATIME, true),
            ("relatime", attr::ATIME_MASK, false),
            ("atime", attr::ATIME_MASK, false),
            ("norelatime", attr::ATIME_MASK, false),
            ("nostrictatime", attr::ATIME_MASK, false),
        ];
        for &(name, bit, set) in table {
            for (option, recursive) in [(name.to_string(), false), (format!("r{name}"), true)] {
                let o = p(&[option.as_str()]);
                let (change, other) = if recursive {
                    (o.recursive_attrs, o.attrs)
                } else {
                    (o.attrs, o.recursive_attrs)
                };
                assert!(other.is_empty() && o.data.is_empty(), "{option}");
                if bit & attr::ATIME_MASK != 0 && bit != attr::NODIRATIME {
                    // The atime family clears the whole field and sets one value.
                    assert_eq!(change.clear, attr::ATIME_MASK, "{option}");
                    assert_eq!(change.set, if set { bit } else { 0 }, "{option}");
                } else if set {
                    assert_eq!((change.set, change.clear), (bit, 0), "{option}");
                } else {
                    assert_eq!((change.set, change.clear), (0, bit), "{option}");
                }
            }
        }
    }

    #[test]
    fn every_propagation_option() {
        for (name, kind) in [
            ("private", Propagation::Private),
            ("shared", Propagation::Shared),
            ("slave", Propagation::Slave),
            ("unbindable", Propagation::Unbindable),
        ] {
            for (option, recursive) in [(name.to_string(), false), (format!("r{name}"), true)] {
                let o = p(&[option.as_str()]);
                assert_eq!(
                    o.propagation,
                    Some(PropagationChange { kind, recursive }),
                    "{option}"
                );
                assert!(o.attrs.is_empty() && o.recursive_attrs.is_empty() && o.data.is_empty());
            }
        }
        let o = p(&["bind", "defaults"]);
        assert!(o.bind && !o.recursive_bind && o.data.is_empty());
        assert_eq!(p(&["idmap"]).idmap, Some(false));
    }

    #[test]
    fn overlay_paths_are_escaped_and_split() {
        assert_eq!(escape_overlay_path(r"/a:b,c\d"), r"/a\:b\,c\\d");
        assert_eq!(
            split_overlay_layers(r"/a\:b:/c:d"),
            vec![r"/a\:b", "/c", "d"]
        );
        assert_eq!(split_overlay_layers("/only"), vec!["/only"]);
        assert_eq!(split_overlay_layers(r"/x\\:/y"), vec![r"/x\\", "/y"]);
    }

    #[test]
    fn unknown_options_are_data() {
        let o = p(&["mode=755", "size=65536k", "newinstance", "rdonly_thing"]);
        assert_eq!(
            o.data,
            vec![
                FsOption::Value("mode".into(), "755".into()),
                FsOption::Value("size".into(), "65536k".into()),
                FsOption::Flag("newinstance".into()),
                FsOption::Flag("rdonly_thing".into()),
            ]
        );
    }
}
