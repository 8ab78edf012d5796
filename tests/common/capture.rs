//! Recapturing what engines send a runtime (`config.json`, `exec --process`
//! files), for the fixtures of `tests/foreign_configs.rs` under
//! `tests/fixtures/engines/`. The engine is given a logging wrapper
//! (`tests/fixtures/engines/capture-runtime.sh`) as its runtime; what it
//! records is turned into fixtures with the host-specific parts replaced by
//! placeholders that `foreign_configs.rs` fills in:
//!
//! - `@ENGINE@`: the engine's private directory (storage, run root, bundles),
//! - `@ID@`: a 64-hex container id (also inside longer strings),
//! - `@CGROUP_PARENT@`: the cgroup parent the test gave the engine.

use super::*;

const WRAPPER: &str = include_str!("../fixtures/engines/capture-runtime.sh");

/// Where fixtures go: `$ROOTCELL_CAPTURE_DIR`, else the source tree's
/// `tests/fixtures/engines`.
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os("ROOTCELL_CAPTURE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/engines"
        )),
    }
}

/// A logging wrapper around `runtime` in `dir`; returns the wrapper's path
/// and the directory it records into.
pub fn install_wrapper(dir: &Path, runtime: &Path) -> (PathBuf, PathBuf) {
    let captured = dir.join("captured");
    fs::create_dir_all(&captured).unwrap();
    let wrapper = dir.join("bin").join("capture-runtime");
    let text = WRAPPER
        .replace("@CAPTURE_DIR@", &captured.to_string_lossy())
        .replace("@RUNTIME@", &runtime.to_string_lossy());
    write_file(&wrapper, &text);
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, captured)
}

/// The files recorded since the last call, oldest first, as (command,
/// document); they are removed from `captured`.
pub fn take(captured: &Path) -> Vec<(String, Value)> {
    let mut names: Vec<String> = fs::read_dir(captured)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let p = captured.join(&n);
        let cmd = n
            .trim_end_matches(".json")
            .split_once('-')
            .map(|(_, c)| c.to_owned())
            .unwrap_or_default();
        out.push((cmd, parse_json(&read_file(&p), &n)));
        let _ = fs::remove_file(&p);
        let _ = fs::remove_file(p.with_extension("args"));
    }
    out
}

/// The one document recorded for `cmd` since the last `take`.
#[track_caller]
pub fn take_one(captured: &Path, cmd: &str) -> Value {
    let mut docs: Vec<Value> = take(captured)
        .into_iter()
        .filter(|(c, _)| c == cmd)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(docs.len(), 1, "one {cmd} captured");
    docs.remove(0)
}

/// Replace 64-hex runs (container ids) in `s` by `@ID@`.
fn replace_ids(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let run = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        if run == 64 {
            out.push_str("@ID@");
            i += 64;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Turn the host-specific strings of `v` into placeholders: each
/// `(from, to)` of `replacements` (longest first), then container ids.
pub fn normalize(v: &mut Value, replacements: &[(String, String)]) {
    let mut reps = replacements.to_vec();
    reps.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    fn walk(v: &mut Value, reps: &[(String, String)]) {
        match v {
            Value::String(s) => {
                let mut t = s.clone();
                for (from, to) in reps {
                    t = t.replace(from.as_str(), to);
                }
                *s = replace_ids(&t);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, reps)),
            Value::Object(o) => {
                let entries: Vec<(String, Value)> = std::mem::take(o).into_iter().collect();
                for (k, mut x) in entries {
                    walk(&mut x, reps);
                    o.insert(replace_ids(&k), x);
                }
            }
            _ => {}
        }
    }
    walk(v, &reps);
}

/// Write `doc` as `<fixture_dir>/<name>` (pretty JSON, one trailing newline).
pub fn save(name: &str, doc: &Value) {
    let path = fixture_dir().join(name);
    let text = serde_json::to_string_pretty(doc).unwrap() + "\n";
    write_file(&path, &text);
    let _ = std::io::stderr().write_all(format!("captured {}\n", path.display()).as_bytes());
}
