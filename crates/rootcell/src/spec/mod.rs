//! Stage 1: load and validate a bundle's `config.json`.
//!
//! Deserialisation goes through `serde_path_to_error` so that a type error
//! names the JSON path (`mounts[3].options`), and `validate` checks what the
//! types cannot express. Nothing here touches the system besides reading the
//! config file and checking that the root path exists.

mod default;
mod process;
mod validate;

use std::fs;
use std::path::{Path, PathBuf};

pub use default::default_spec;
pub use oci_spec::runtime::Spec;
pub use process::{load_process, ProcessOverrides};
pub use validate::{
    check_id_mapping, device_path, user_namespace_mappings, validate, validate_namespace_needs,
    validate_process, validate_sysctl_key,
};

use crate::error::{Error, IoContext, Result};

pub const CONFIG_FILE: &str = "config.json";

/// A validated bundle: its absolute directory and its parsed config.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Reads `<dir>/config.json` and validates it.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = fs::canonicalize(dir).ctx(|| format!("bundle {}", dir.display()))?;
        let spec = read_config(&dir)?;
        validate(&spec, &dir)?;
        Ok(Bundle { dir, spec })
    }

    /// The rootfs as an absolute host path (`root.path` may be relative to
    /// the bundle).
    pub fn rootfs(&self) -> PathBuf {
        let path = self
            .spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        self.dir.join(path)
    }
}

/// Reads and parses `<dir>/config.json`, without validating it (`exec`
/// only takes its `process`). Errors name the file and the JSON path.
pub fn read_config(dir: &Path) -> Result<Spec> {
    let config = dir.join(CONFIG_FILE);
    let text = fs::read(&config).ctx(|| format!("{}", config.display()))?;
    parse(&text).map_err(|e| match e {
        Error::InvalidSpec { field, reason } => {
            Error::spec(format!("{}: {field}", config.display()), reason)
        }
        other => other,
    })
}

/// Parses config JSON, naming the JSON path of the first offending field.
pub fn parse(text: &[u8]) -> Result<Spec> {
    let named = |e: serde_path_to_error::Error<serde_json::Error>| {
        let path = e.path().to_string();
        let field = if path == "." {
            "config".to_string()
        } else {
            path
        };
        Error::spec(field, e.into_inner().to_string())
    };
    if SCHED_FLAG_SPELLINGS
        .iter()
        .any(|(spec, _)| contains(text, spec.as_bytes()))
    {
        return parse_with_sched_flags(text, named);
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(named)
}

/// Parses an OCI `LinuxResources` (`update -r`) read from `source` (a
/// file name, or `-` for stdin); a type error names the source and the
/// JSON path (`res.json: memory.limit: invalid type…`).
pub fn parse_resources(text: &[u8], source: &str) -> Result<oci_spec::runtime::LinuxResources> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." {
            source.to_string()
        } else {
            format!("{source}: {at}")
        };
        Error::spec(field, e.into_inner().to_string())
    })
}

/// `process.scheduler.flags` as the runtime spec spells them, and as
/// oci-spec 0.10 (wrongly) expects them.
const SCHED_FLAG_SPELLINGS: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The slow path for configs with scheduler flags oci-spec misspells:
/// parse to a JSON value, respell those flags, then deserialise.
fn parse_with_sched_flags(
    text: &[u8],
    named: impl Fn(serde_path_to_error::Error<serde_json::Error>) -> Error,
) -> Result<Spec> {
    let mut value: serde_json::Value = {
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de).map_err(&named)?
    };
    if let Some(flags) = value
        .pointer_mut("/process/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    {
        for flag in flags {
            if let Some((_, theirs)) = SCHED_FLAG_SPELLINGS
                .iter()
                .find(|(spec, _)| flag.as_str() == Some(spec))
            {
                *flag = serde_json::Value::from(*theirs);
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::spec(path, e.into_inner().to_string())
    })
}
