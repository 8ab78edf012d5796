//! systemd as the cgroup manager (`--systemd-cgroup`, cgroupsPath
//! `slice:prefix:name`) is not supported: both are refused with an error
//! naming the flag or the field, before anything is created.

use std::path::Path;

use crate::error::{Error, Result};

/// Whether systemd runs as the init system (what runc checks as well).
pub fn is_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The error for `--systemd-cgroup` on `create` and `run`.
pub fn refuse_manager() -> Error {
    let why = if is_running() {
        "managing cgroups through systemd is not supported; drop the flag to use cgroupfs paths"
    } else {
        "systemd is not running on this host (no /run/systemd/system), so it cannot manage the container's cgroups; drop the flag to use cgroupfs paths"
    };
    Error::spec("--systemd-cgroup", why)
}

/// Refuses a cgroupsPath in systemd's `slice:prefix:name` form, which only
/// a systemd manager understands (runc with cgroupfs would make a
/// directory literally named so).
pub fn check_path(cgroups_path: Option<&Path>) -> Result<()> {
    let Some(text) = cgroups_path.and_then(Path::to_str) else {
        return Ok(());
    };
    if !text.starts_with('/') && text.split(':').count() == 3 {
        return Err(Error::spec(
            "linux.cgroupsPath",
            format!(
                "{text:?} is systemd's slice:prefix:name form, which needs --systemd-cgroup and a running systemd; use a path such as \"/{}\"",
                text.rsplit(':').next().unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_form_is_refused() {
        let check = |p: &str| check_path(Some(Path::new(p)));
        assert!(check("system.slice:docker:abc").is_err());
        assert!(check(":runc:abc").is_err());
        assert!(check("/a:b:c").is_ok());
        assert!(check("a/b").is_ok());
        assert!(check("a:b").is_ok());
        assert!(check_path(None).is_ok());
    }
}
