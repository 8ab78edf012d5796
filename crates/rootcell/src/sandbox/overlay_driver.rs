//! Which overlay implementation the sandbox's overlays use: the kernel's
//! overlayfs, or `fuse-overlayfs` (the Debian package) as the last
//! fallback of a rootless run where the kernel refuses an overlay.
//!
//! The choice is plain data in the plan (`MountKind::Overlay::driver`), so
//! `rootcell sandbox --plan` shows it:
//! - as root: the kernel's overlayfs;
//! - rootless: `KernelThenFuse` when `fuse-overlayfs` is in `PATH` and
//!   `/dev/fuse` opens read-write, else the kernel's;
//! - `ROOTCELL_SANDBOX_OVERLAY=kernel|fuse|auto` forces one (`fuse` fails
//!   with a usage error where `fuse-overlayfs` or `/dev/fuse` is missing).
//!
//! The OCI face never gets here: its overlays are `MountKind::Fresh`.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::{MountKind, OverlayDriver, Step};

/// The environment variable that forces a driver.
pub const ENV: &str = "ROOTCELL_SANDBOX_OVERLAY";
/// The program searched in `PATH`.
pub const PROGRAM: &str = "fuse-overlayfs";

/// What the user asked for (`ROOTCELL_SANDBOX_OVERLAY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlayRequest {
    /// Kernel overlayfs, `fuse-overlayfs` where a rootless run needs it.
    #[default]
    Auto,
    Kernel,
    Fuse,
}

impl OverlayRequest {
    /// Parses the variable's value (unset or empty: `Auto`).
    pub fn parse(value: Option<&str>) -> Result<OverlayRequest> {
        match value.map(str::trim) {
            None | Some("") | Some("auto") => Ok(OverlayRequest::Auto),
            Some("kernel") => Ok(OverlayRequest::Kernel),
            Some("fuse") => Ok(OverlayRequest::Fuse),
            Some(other) => Err(Error::usage(
                ENV,
                format!("{other:?}: expected kernel, fuse or auto"),
            )),
        }
    }

    /// From the environment of the runtime.
    pub fn from_env() -> Result<OverlayRequest> {
        let value = std::env::var_os(ENV);
        OverlayRequest::parse(value.as_ref().map(|v| v.to_str().unwrap_or("?")))
    }
}

/// What the host offers for `fuse-overlayfs` (gathered by
/// `HostFacts::gather`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FuseFacts {
    pub request: OverlayRequest,
    /// `fuse-overlayfs` found in `PATH` (an executable regular file).
    pub program: Option<PathBuf>,
    /// Why `/dev/fuse` does not open read-write for the caller (`None`:
    /// it does).
    pub dev_fuse_error: Option<String>,
}

impl FuseFacts {
    /// `rootless`: the runtime is not root. As root without a forced
    /// driver nothing is looked up (the kernel's overlayfs is used).
    pub fn gather(rootless: bool) -> Result<FuseFacts> {
        let request = OverlayRequest::from_env()?;
        if request == OverlayRequest::Kernel || (request == OverlayRequest::Auto && !rootless) {
            return Ok(FuseFacts {
                request,
                ..FuseFacts::default()
            });
        }
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        Ok(FuseFacts {
            request,
            program: find_in_path(&path),
            dev_fuse_error: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/fuse")
                .err()
                .map(|e| format!("/dev/fuse: {e}")),
        })
    }
}

/// The first `fuse-overlayfs` in `path` that is an executable file.
fn find_in_path(path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(PROGRAM))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Pure: the driver of every overlay of a run.
pub fn choose(facts: &FuseFacts, rootless: bool) -> Result<OverlayDriver> {
    let usable = |program: &Option<PathBuf>| -> std::result::Result<PathBuf, String> {
        let program = program
            .clone()
            .ok_or_else(|| format!("{PROGRAM} was not found in PATH"))?;
        if let Some(why) = &facts.dev_fuse_error {
            return Err(why.clone());
        }
        Ok(program)
    };
    match facts.request {
        OverlayRequest::Kernel => Ok(OverlayDriver::Kernel),
        OverlayRequest::Fuse => usable(&facts.program)
            .map(|program| OverlayDriver::Fuse { program })
            .map_err(|reason| Error::usage(ENV, format!("fuse: {reason}"))),
        OverlayRequest::Auto if rootless => Ok(match usable(&facts.program) {
            Ok(program) => OverlayDriver::KernelThenFuse { program },
            Err(_) => OverlayDriver::Kernel,
        }),
        OverlayRequest::Auto => Ok(OverlayDriver::Kernel),
    }
}

/// Sets `driver` on every overlay step.
pub fn assign(steps: &mut [Step], driver: &OverlayDriver) {
    for step in steps {
        if let Step::Mount(m) = step {
            if let MountKind::Overlay { driver: d, .. } = &mut m.kind {
                *d = driver.clone();
            }
        }
    }
}

/// Whether any step may start `fuse-overlayfs` (init then keeps a handle
/// on `/dev/fuse` before the staging may cover it).
pub fn any_fuse<'a>(steps: impl IntoIterator<Item = &'a Step>) -> bool {
    steps.into_iter().any(|step| {
        matches!(step, Step::Mount(m) if matches!(&m.kind,
            MountKind::Overlay { driver, .. } if driver.fuse_program().is_some()))
    })
}

/// For messages: the driver's short name.
pub fn short_name(driver: &OverlayDriver) -> &'static str {
    match driver {
        OverlayDriver::Kernel => "kernel overlayfs",
        OverlayDriver::Fuse { .. } => "fuse-overlayfs",
        OverlayDriver::KernelThenFuse { .. } => "kernel overlayfs, then fuse-overlayfs",
    }
}

/// A program path for tests.
#[cfg(test)]
fn prog() -> Option<PathBuf> {
    Some(std::path::Path::new("/usr/bin").join(PROGRAM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(request: OverlayRequest, program: bool, dev: bool) -> FuseFacts {
        FuseFacts {
            request,
            program: if program { prog() } else { None },
            dev_fuse_error: (!dev).then(|| "/dev/fuse: Permission denied".into()),
        }
    }

    fn fuse() -> PathBuf {
        prog().unwrap()
    }

    #[test]
    fn root_uses_the_kernel_rootless_falls_back_to_fuse() {
        let auto = facts(OverlayRequest::Auto, true, true);
        assert_eq!(choose(&auto, false).unwrap(), OverlayDriver::Kernel);
        assert_eq!(
            choose(&auto, true).unwrap(),
            OverlayDriver::KernelThenFuse { program: fuse() }
        );
        // Rootless without fuse-overlayfs or without /dev/fuse: the kernel
        // only (a refused overlay fails the run, as before).
        for (program, dev) in [(false, true), (true, false), (false, false)] {
            let f = facts(OverlayRequest::Auto, program, dev);
            assert_eq!(choose(&f, true).unwrap(), OverlayDriver::Kernel);
        }
    }

    #[test]
    fn forced_drivers() {
        for rootless in [false, true] {
            let f = facts(OverlayRequest::Fuse, true, true);
            assert_eq!(
                choose(&f, rootless).unwrap(),
                OverlayDriver::Fuse { program: fuse() }
            );
            let k = facts(OverlayRequest::Kernel, true, true);
            assert_eq!(choose(&k, rootless).unwrap(), OverlayDriver::Kernel);
        }
        let missing = choose(&facts(OverlayRequest::Fuse, false, true), true).unwrap_err();
        assert!(matches!(&missing, Error::Usage { .. }), "{missing:?}");
        let text = missing.to_string();
        assert!(
            text.contains(ENV) && text.contains("fuse-overlayfs"),
            "{text}"
        );
        let no_dev = choose(&facts(OverlayRequest::Fuse, true, false), false)
            .unwrap_err()
            .to_string();
        assert!(no_dev.contains("/dev/fuse"), "{no_dev}");
    }

    #[test]
    fn the_variable_is_parsed() {
        assert_eq!(OverlayRequest::parse(None).unwrap(), OverlayRequest::Auto);
        assert_eq!(
            OverlayRequest::parse(Some("fuse")).unwrap(),
            OverlayRequest::Fuse
        );
        assert_eq!(
            OverlayRequest::parse(Some("kernel")).unwrap(),
            OverlayRequest::Kernel
        );
        let bad = OverlayRequest::parse(Some("fusee"))
            .unwrap_err()
            .to_string();
        assert!(bad.contains(ENV), "{bad}");
    }

    #[test]
    fn search_in_path() {
        let dir = std::env::temp_dir().join(format!("rootcell-fuse-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(find_in_path(dir.as_os_str()), None);
        let file = dir.join(PROGRAM);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        // Not executable: not found.
        assert_eq!(find_in_path(dir.as_os_str()), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["relative/dir".into(), dir.clone()]).unwrap();
        assert_eq!(find_in_path(&path), Some(file));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
