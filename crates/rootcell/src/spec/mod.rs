//! Stage 1: load and validate a bundle's `config.json`.
//!
//! Deserialisation is plain `serde_json`; only when that fails is the text
//! parsed again through `serde_path_to_error`, so that the error names the
//! JSON path (`mounts[3].options`) while a valid config never runs (nor
//! faults in) the path-tracking code (`deserialize_named`). `validate`
//! checks what the types cannot express. Nothing here touches the system
//! besides reading the config file and checking that the root path exists.

mod default;
mod process;
mod validate;

use std::fs;
use std::path::{Path, PathBuf};

pub use default::default_spec;
pub use oci_spec::runtime::Spec;
pub use process::{load_process, ProcessOverrides};
pub use validate::{
    check_id_mapping, device_path, is_ipc_sysctl, user_namespace_mappings, validate,
    validate_namespace_needs, validate_process, validate_sysctl_key,
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
        crate::phase::mark("runtime: config parsed");
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
    let named = |path: String, e: serde_json::Error| {
        let field = if path == "." {
            "config".to_string()
        } else {
            path
        };
        Error::spec(field, e.to_string())
    };
    if SCHED_FLAG_SPELLINGS
        .iter()
        .any(|(spec, _)| contains(text, spec.as_bytes()))
    {
        return parse_with_sched_flags(text, named);
    }
    deserialize_named(text, named)
}

/// Deserialises `text` with plain `serde_json` (the fast path: no path
/// tracking, about half the code to run and fault in); when that fails,
/// parses it again through `serde_path_to_error`, which fails at the same
/// place with the same `serde_json` error, and returns `named` of the
/// JSON path of the offending field (`.` for the document itself) and
/// that error. Used for every user-supplied JSON document (config,
/// process, resources).
pub(crate) fn deserialize_named<T: serde::de::DeserializeOwned>(
    text: &[u8],
    named: impl Fn(String, serde_json::Error) -> Error,
) -> Result<T> {
    // Like the path-tracking parse below (and as before), no check for
    // trailing characters after the document (`serde_json::from_slice`
    // would add one).
    let first = match T::deserialize(&mut serde_json::Deserializer::from_slice(text)) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let de = &mut serde_json::Deserializer::from_slice(text);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Err(e) => Err(named(e.path().to_string(), e.into_inner())),
        // Both deserialise the same text into the same type, so this does
        // not happen; if it did, the plain error names the document.
        Ok(_) => Err(named(".".to_string(), first)),
    }
}

/// Parses an OCI `LinuxResources` (`update -r`) read from `source` (a
/// file name, or `-` for stdin); a type error names the source and the
/// JSON path (`res.json: memory.limit: invalid type…`).
pub fn parse_resources(text: &[u8], source: &str) -> Result<oci_spec::runtime::LinuxResources> {
    deserialize_named(text, |at, e| {
        let field = if at == "." {
            source.to_string()
        } else {
            format!("{source}: {at}")
        };
        Error::spec(field, e.to_string())
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
    named: impl Fn(String, serde_json::Error) -> Error,
) -> Result<Spec> {
    let mut value: serde_json::Value = deserialize_named(text, &named)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse` reported before it tried plain `serde_json` first:
    /// every document through `serde_path_to_error`.
    fn path_tracked(text: &[u8]) -> std::result::Result<Spec, String> {
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de).map_err(|e: serde_path_to_error::Error<_>| {
            let path = e.path().to_string();
            let field = if path == "." { "config".into() } else { path };
            Error::spec(field, e.into_inner().to_string()).to_string()
        })
    }

    #[test]
    fn errors_are_those_of_the_path_tracking_parse() {
        let base = serde_json::to_string(&default_spec(None)).unwrap();
        let cases = [
            "",
            "not json",
            "{\"ociVersion\": \"1.0.2\", \"process\": {",
            "{\"ociVersion\": \"1.0.2\", \"process\": 5, \"root\": {\"path\": \"rootfs\"}}",
            "[1, 2]",
            "{\"ociVersion\": 1}",
            "{\"ociVersion\": \"1.0.2\", \"mounts\": [{\"destination\": \"/x\"}, {\"destination\": 7}]}",
            "{\"ociVersion\": \"1.0.2\", \"process\": {\"cwd\": \"/\", \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": \"x\", \"soft\": 1}]}}",
            "{\"ociVersion\": \"1.0.2\", \"linux\": {\"namespaces\": [{\"type\": \"nope\"}]}}",
            "{\"ociVersion\": \"1.0.2\", \"linux\": {\"resources\": {\"memory\": {\"limit\": true}}}}",
            "{\"ociVersion\": \"1.0.2\", \"process\": {\"cwd\": \"/\", \"scheduler\": {\"policy\": \"SCHED_OTHER\", \"flags\": [\"SCHED_FLAG_RESET_ON_FORK\", 3]}}}",
        ];
        for text in cases {
            let ours = parse(text.as_bytes()).map_err(|e| e.to_string());
            let theirs = path_tracked(text.as_bytes());
            let ours = ours.err().unwrap_or_else(|| panic!("{text:?} parsed"));
            // The scheduler-flag case is respelt before the typed parse,
            // so only its position may differ; the path and message stay.
            if text.contains("SCHED_FLAG") {
                assert!(ours.starts_with("process.scheduler.flags[1]"), "{ours}");
                continue;
            }
            assert_eq!(Err(ours), theirs.map(|_| ()), "{text:?}");
        }
        // Valid documents parse the same, and trailing text after the
        // document is still ignored, as serde_path_to_error did.
        let spec = parse(base.as_bytes()).unwrap();
        assert_eq!(spec, path_tracked(base.as_bytes()).unwrap());
        assert!(parse(format!("{base} trailing").as_bytes()).is_ok());
        assert!(path_tracked(format!("{base} trailing").as_bytes()).is_ok());
    }

    #[test]
    fn resources_errors_name_the_source_and_path() {
        let err = parse_resources(br#"{"memory": {"limit": "x"}}"#, "res.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("res.json: memory.limit: invalid type: string \"x\""),
            "{err}"
        );
        let err = parse_resources(b"[", "-").unwrap_err().to_string();
        assert!(err.starts_with("-: "), "{err}");
    }
}
