//! `rootcell sandbox [OPTIONS] [--] CMD [ARGS...]`: BenchExec's
//! `containerexec`/`runexec` flags, parsed into a `SandboxConfig`.
//!
//! Its flags are not runc's (`--root` is BenchExec's "uid 0 inside", not
//! the state directory), so `main` hands everything after the word
//! `sandbox` to this parser instead of the runc-style one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use rootcell::sandbox::{self, units, DirMode, DirRule, Input, SandboxConfig};
use rootcell::Error;

/// Run a command in a container made from the host's own tree, with
/// captured results, limits and measurements (BenchExec's containerexec
/// and runexec flags).
#[derive(Parser, Debug)]
#[command(name = "rootcell sandbox", version)]
pub struct SandboxArgs {
    /// Working directory inside (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Run as root (uid and gid 0) inside.
    #[arg(long)]
    pub root: bool,
    /// User id inside (default: your own).
    #[arg(long, allow_hyphen_values = true)]
    pub uid: Option<String>,
    /// Group id inside (default: your own).
    #[arg(long, allow_hyphen_values = true)]
    pub gid: Option<String>,
    /// Keep the host's network (else only a loopback interface).
    #[arg(long)]
    pub network_access: bool,
    /// Put upper layers and hidden directories in a temporary directory on
    /// disk instead of a tmpfs.
    #[arg(long)]
    pub no_tmpfs: bool,
    /// Keep the host's /etc/passwd, /etc/hosts... (no generated ones).
    #[arg(long)]
    pub keep_system_config: bool,
    /// Give full access to /tmp instead of hiding it.
    #[arg(long)]
    pub keep_tmp: bool,
    /// An empty writable directory inside; repeatable.
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub hidden_dir: Vec<PathBuf>,
    /// Read-only inside; repeatable.
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub read_only_dir: Vec<PathBuf>,
    /// Writable inside, writes kept out of the host (the default for /);
    /// repeatable.
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub overlay_dir: Vec<PathBuf>,
    /// The host's directory itself, writable; repeatable.
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub full_access_dir: Vec<PathBuf>,
    /// Where result files are copied to.
    #[arg(long, value_name = "DIR", default_value = "output.files")]
    pub output_directory: PathBuf,
    /// Result files to copy out (globs, `**` allowed; relative to --dir);
    /// repeatable (default: `.`, everything).
    #[arg(long, value_name = "PATTERN", action = ArgAction::Append)]
    pub result_files: Vec<String>,
    /// Let the command make sub-cgroups of its own.
    #[arg(long)]
    pub cgroup_access: bool,
    /// Memory limit (bytes, or with a unit: 2GB, 512MiB).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memlimit: Option<String>,
    /// CPU-time limit (seconds, or 90s, 15min, 1h), then SIGKILL.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub timelimit: Option<String>,
    /// Soft CPU-time limit, then SIGTERM.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub softtimelimit: Option<String>,
    /// Wall-time limit.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub walltimelimit: Option<String>,
    /// CPU cores to use (0,2-3).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub cores: Option<String>,
    /// Memory nodes to use (0,1).
    #[arg(long = "memoryNodes", value_name = "LIST", allow_hyphen_values = true)]
    pub memory_nodes: Option<String>,
    /// Standard input: a file, or `-` for rootcell's own (default:
    /// /dev/null).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write stdout and stderr to this file (default: rootcell's own).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep at most this much of the --output file.
    #[arg(
        long = "maxOutputSize",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub max_output_size: Option<String>,
    /// Stop the command when it has written more than this many files.
    #[arg(long = "filesCountLimit", value_name = "N", allow_hyphen_values = true)]
    pub files_count_limit: Option<String>,
    /// Stop the command when it has written more than this many bytes.
    #[arg(
        long = "filesSizeLimit",
        value_name = "BYTES",
        allow_hyphen_values = true
    )]
    pub files_size_limit: Option<String>,
    /// Write the report as JSON to FILE (`-`, or no value before another
    /// flag or `--`: stdout, instead of the key=value lines).
    #[arg(long, value_name = "FILE|-", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Print the plan (mounts, namespaces, process) and exit; as JSON
    /// with --json.
    #[arg(long)]
    pub plan: bool,
    /// No notes on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Log what rootcell does on stderr.
    #[arg(long)]
    pub debug: bool,
    /// The command and its arguments.
    #[arg(required = true, value_name = "CMD [ARGS...]", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// Where `sandbox` is among rootcell's arguments: after nothing but
/// runc's global flags (`rootcell --debug sandbox ...`).
pub fn position(argv: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].to_str()?;
        match arg {
            "sandbox" => return Some(i),
            "--debug" | "--systemd-cgroup" => i += 1,
            "--root" | "--log" | "--log-format" => i += 2,
            "--rootless" => {
                let next = argv.get(i + 1).and_then(|a| a.to_str());
                i += if matches!(next, Some("true" | "false" | "auto")) {
                    2
                } else {
                    1
                };
            }
            a if a.starts_with("--root=")
                || a.starts_with("--log=")
                || a.starts_with("--log-format=")
                || a.starts_with("--rootless=") =>
            {
                i += 1
            }
            _ => return None,
        }
    }
    None
}

/// `rootcell [GLOBAL] sandbox ARGS...`; returns the exit code.
pub fn main(global_args: &[OsString], args: &[OsString]) -> i32 {
    let global = match crate::cli::GlobalOnly::try_parse_from(global_args) {
        Ok(g) => g.global,
        Err(e) => e.exit(),
    };
    let argv: Vec<OsString> = std::iter::once(OsString::from("rootcell sandbox"))
        .chain(args.iter().cloned())
        .collect();
    let matches = match SandboxArgs::command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let parsed = match SandboxArgs::from_arg_matches(&matches) {
        Ok(p) => p,
        Err(e) => e.exit(),
    };
    crate::logging::init_sandbox(&global, parsed.debug || global.debug);
    rootcell::phase::mark("arguments");
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return fail(&Error::Other(format!("the current directory: {e}"))),
    };
    let cfg = match config(&parsed, &matches, &cwd) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if parsed.plan {
        return match sandbox::plan(&cfg) {
            Ok(plan) => {
                let text = if parsed.json.is_some() {
                    serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n"
                } else {
                    plan.to_string()
                };
                let _ = super::emit(&text);
                0
            }
            Err(e) => fail(&e),
        };
    }
    let report = match sandbox::run(&cfg) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if !parsed.quiet {
        for note in &report.notes {
            eprintln!("rootcell: note: {note}");
        }
    }
    let json = || serde_json::to_string_pretty(&report.to_json()).unwrap_or_default() + "\n";
    match parsed.json.as_deref() {
        Some(p) if p == Path::new("-") => {
            let _ = super::emit(&json());
        }
        Some(path) => {
            if let Err(e) = std::fs::write(path, json()) {
                eprintln!("rootcell: error: --json {}: {e}", path.display());
            }
            let _ = super::emit(&report.runexec_lines());
        }
        None => {
            let _ = super::emit(&report.runexec_lines());
        }
    }
    report.status.shell_code()
}

/// Prints the error as every rootcell command does; a usage error (a flag
/// that cannot be used) exits 2, anything else 1.
fn fail(e: &Error) -> i32 {
    tracing::error!("{e}");
    eprintln!("rootcell: error: {e}");
    match e {
        Error::Usage { .. } => 2,
        _ => 1,
    }
}

/// The flags as a `SandboxConfig`: units parsed, relative paths made
/// absolute against `cwd`, directory rules in the order given.
fn config(a: &SandboxArgs, matches: &clap::ArgMatches, cwd: &Path) -> Result<SandboxConfig, Error> {
    let abs = |p: &Path| sandbox::absolute(cwd, p);
    // Hyphen values are allowed so that `--uid -1` is refused here,
    // naming the flag, instead of being taken for another flag.
    let id = |flag: &str, what: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| units::parse_id(t).map_err(|r| Error::usage(flag, format!("{r} {what} id"))))
            .transpose()
    };
    let mut cfg = SandboxConfig::new(a.command.clone());
    cfg.working_dir = a.dir.as_deref().map(abs);
    cfg.root = a.root;
    cfg.uid = id("--uid", "user", &a.uid)?;
    cfg.gid = id("--gid", "group", &a.gid)?;
    cfg.network_access = a.network_access;
    cfg.use_tmpfs = !a.no_tmpfs;
    cfg.keep_system_config = a.keep_system_config;
    cfg.keep_tmp = a.keep_tmp;
    let mut rules: Vec<(usize, DirRule)> = Vec::new();
    for (id, mode, values) in [
        ("hidden_dir", DirMode::Hidden, &a.hidden_dir),
        ("read_only_dir", DirMode::ReadOnly, &a.read_only_dir),
        ("overlay_dir", DirMode::Overlay, &a.overlay_dir),
        ("full_access_dir", DirMode::FullAccess, &a.full_access_dir),
    ] {
        let indices: Vec<usize> = matches
            .indices_of(id)
            .map(|i| i.collect())
            .unwrap_or_default();
        for (n, path) in values.iter().enumerate() {
            if path.as_os_str().is_empty() {
                return Err(Error::usage(mode.flag(), "empty path"));
            }
            let at = indices.get(n).copied().unwrap_or(usize::MAX);
            rules.push((
                at,
                DirRule {
                    path: abs(path),
                    mode,
                },
            ));
        }
    }
    rules.sort_by_key(|(at, _)| *at);
    cfg.dir_rules = rules.into_iter().map(|(_, r)| r).collect();
    cfg.output_directory = abs(&a.output_directory);
    if !a.result_files.is_empty() {
        cfg.result_files = a.result_files.clone();
    }
    cfg.cgroup_access = a.cgroup_access;
    let size = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| units::parse_size(t).map_err(|r| Error::usage(flag, r)))
            .transpose()
    };
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| units::parse_duration(t).map_err(|r| Error::usage(flag, r)))
            .transpose()
    };
    let list = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| units::parse_number_list(t).map_err(|r| Error::usage(flag, r)))
            .transpose()
    };
    cfg.limits.memory = size("--memlimit", &a.memlimit)?;
    cfg.limits.cputime = time("--timelimit", &a.timelimit)?;
    cfg.limits.soft_cputime = time("--softtimelimit", &a.softtimelimit)?;
    cfg.limits.walltime = time("--walltimelimit", &a.walltimelimit)?;
    cfg.limits.cores = list("--cores", &a.cores)?;
    cfg.limits.memory_nodes = list("--memoryNodes", &a.memory_nodes)?;
    cfg.limits.output_size = size("--maxOutputSize", &a.max_output_size)?;
    cfg.limits.files_size = size("--filesSizeLimit", &a.files_size_limit)?;
    cfg.limits.files_count = a
        .files_count_limit
        .as_deref()
        .map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                Error::usage(
                    "--filesCountLimit",
                    format!("{t:?} is not a number of files"),
                )
            })
        })
        .transpose()?;
    for (flag, zero) in [
        ("--memlimit", cfg.limits.memory == Some(0)),
        (
            "--timelimit",
            cfg.limits.cputime.is_some_and(|t| t.is_zero()),
        ),
        (
            "--softtimelimit",
            cfg.limits.soft_cputime.is_some_and(|t| t.is_zero()),
        ),
        (
            "--walltimelimit",
            cfg.limits.walltime.is_some_and(|t| t.is_zero()),
        ),
    ] {
        if zero {
            return Err(Error::usage(flag, "must be greater than 0"));
        }
    }
    cfg.input = match a.input.as_deref() {
        None => Input::DevNull,
        Some(p) if p == Path::new("-") => Input::Inherit,
        Some(p) => Input::File(abs(p)),
    };
    cfg.output = a.output.as_deref().map(abs);
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn sandbox_is_found_after_global_flags_only() {
        assert_eq!(position(&os(&["rootcell", "sandbox", "true"])), Some(1));
        assert_eq!(
            position(&os(&["rootcell", "--root", "/x", "--debug", "sandbox"])),
            Some(4)
        );
        assert_eq!(position(&os(&["rootcell", "run", "sandbox"])), None);
        assert_eq!(position(&os(&["rootcell", "--log=/l", "sandbox"])), Some(2));
    }

    fn parse(args: &[&str]) -> Result<SandboxConfig, Error> {
        let argv = os(&[&["rootcell sandbox"], args].concat());
        let matches = SandboxArgs::command().try_get_matches_from(&argv).unwrap();
        let parsed = SandboxArgs::from_arg_matches(&matches).unwrap();
        config(&parsed, &matches, Path::new("/work"))
    }

    #[test]
    fn flags_become_a_config() {
        let cfg = parse(&[
            "--root",
            "--memlimit",
            "512MiB",
            "--timelimit",
            "90s",
            "--overlay-dir",
            "b",
            "--hidden-dir",
            "/a",
            "--input",
            "-",
            "--dir",
            "sub",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert!(cfg.root);
        assert_eq!(cfg.limits.memory, Some(512 << 20));
        assert_eq!(cfg.limits.cputime, Some(std::time::Duration::from_secs(90)));
        assert_eq!(cfg.command, os(&["ls", "-l"]));
        assert_eq!(cfg.working_dir, Some(PathBuf::from("/work/sub")));
        assert_eq!(cfg.input, Input::Inherit);
        assert_eq!(cfg.output_directory, PathBuf::from("/work/output.files"));
        // In the order given, relative ones made absolute.
        assert_eq!(
            cfg.dir_rules,
            vec![
                DirRule {
                    path: "/work/b".into(),
                    mode: DirMode::Overlay
                },
                DirRule {
                    path: "/a".into(),
                    mode: DirMode::Hidden
                },
            ]
        );
    }

    #[test]
    fn json_without_a_value_is_stdout() {
        let argv = os(&["rootcell sandbox", "--plan", "--json", "--", "true"]);
        let m = SandboxArgs::command().try_get_matches_from(&argv).unwrap();
        let a = SandboxArgs::from_arg_matches(&m).unwrap();
        assert_eq!(a.json, Some(PathBuf::from("-")));
        assert_eq!(a.command, os(&["true"]));
    }

    #[test]
    fn the_command_keeps_its_own_dashes() {
        let cfg = parse(&["ls", "-l", "--dir", "x"]).unwrap();
        assert_eq!(cfg.command, os(&["ls", "-l", "--dir", "x"]));
        assert_eq!(cfg.working_dir, None);
        let argv = os(&["rootcell sandbox", "--no-such-flag", "true"]);
        assert!(SandboxArgs::command().try_get_matches_from(&argv).is_err());
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["--memlimit", "12 parsecs", "true"][..], "--memlimit"),
            (&["--walltimelimit", "soon", "true"][..], "--walltimelimit"),
            (&["--cores", "3-1", "true"][..], "--cores"),
            (
                &["--filesCountLimit", "many", "true"][..],
                "--filesCountLimit",
            ),
            (&["--timelimit", "0", "true"][..], "--timelimit"),
        ] {
            match parse(args) {
                Err(Error::Usage { flag: f, .. }) => assert_eq!(f, flag),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
