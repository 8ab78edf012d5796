//! One function per subcommand: turn parsed flags into a library call and
//! print the result.

mod events;
mod exec;
mod features;
mod list;
mod ps;
pub mod sandbox;
mod update;

use std::path::Path;

use anyhow::{bail, Context, Result};
use rootcell::container::{parse_signal, CreateOptions, Runtime};

use crate::cli::{Cli, Command, CreateArgs};

/// `binary`: what protects the running binary, for commands that start a
/// container process (`exe::ensure_protected`).
pub fn dispatch(cli: Cli, binary: Option<rootcell::exe::Protection>) -> Result<i32> {
    tracing::debug!("command: {:?}", cli.command);
    let global = &cli.global;
    // Other commands work on (cgroupfs) containers whatever the flag says:
    // engines pass it to every command.
    if global.systemd_cgroup && matches!(cli.command, Command::Create(_) | Command::Run { .. }) {
        return Err(rootcell::cgroup::systemd::refuse_manager().into());
    }
    let euid_root = rustix::process::geteuid().is_root();
    let rootless = match global.rootless.as_deref() {
        // As runc: root in a user namespace other than the initial one
        // (a nested container) is rootless too; its cgroups are best effort.
        None | Some("auto") => !euid_root || rootcell::process::ids::in_user_namespace(),
        Some("true") => true,
        Some("false") => false,
        Some(other) => bail!("--rootless: {other:?} is not true, false or auto"),
    };
    let runtime = Runtime {
        root: global.root.clone().unwrap_or_else(Runtime::default_root),
        rootless,
        binary,
    };
    match cli.command {
        Command::Spec { bundle, rootless } => spec(&bundle, rootless).map(|()| 0),
        Command::Create(args) => runtime
            .create(&args.id, &create_options(&args, global))
            .map(|()| 0)
            .map_err(Into::into),
        Command::Start { id } => runtime.start(&id).map(|()| 0).map_err(Into::into),
        Command::Run {
            create,
            detach,
            keep,
        } => Ok(runtime.run(&create.id, &create_options(&create, global), detach, keep)?),
        Command::State { id } => {
            let state = runtime.state(&id)?;
            emit(&(serde_json::to_string_pretty(&state)? + "\n")).map(|()| 0)
        }
        Command::Kill { id, signal, all } => {
            let sig = parse_signal(&signal)?;
            runtime.kill(&id, sig, all)?;
            Ok(0)
        }
        Command::Delete { id, force } => runtime.delete(&id, force).map(|()| 0).map_err(Into::into),
        Command::List { format, quiet } => list::print(&runtime, format, quiet).map(|()| 0),
        Command::Exec(args) => Ok(exec::exec(&runtime, args)?),
        Command::Pause { id } => runtime.pause(&id).map(|()| 0).map_err(Into::into),
        Command::Resume { id } => runtime.resume(&id).map(|()| 0).map_err(Into::into),
        Command::Events {
            id,
            stats,
            interval,
        } => events::run(&runtime, &id, stats, &interval).map(|()| 0),
        Command::Update(args) => update::run(&runtime, &args).map(|()| 0),
        Command::Ps { format, args } => ps::print(&runtime, format, &args).map(|()| 0),
        Command::Features => {
            emit(&(serde_json::to_string_pretty(&features::features())? + "\n")).map(|()| 0)
        }
        Command::Stat {
            json,
            container,
            path,
        } => stat(&runtime, &container, &path, json).map(|()| 0),
        Command::Cp {
            archive,
            follow_link,
            quiet,
            src,
            dst,
        } => cp(&runtime, &src, &dst, archive, follow_link, quiet).map(|()| 0),
        Command::Plan {
            bundle,
            json,
            no_pivot,
        } => plan(&runtime, &bundle, json, no_pivot, global.isolation).map(|()| 0),
        // `main` hands `sandbox` to `sandbox::main` before this parser;
        // reached only when global flags it does not know came first.
        Command::Sandbox { args } => {
            let argv = [std::ffi::OsString::from("rootcell")];
            Ok(sandbox::main(&argv, &args))
        }
    }
}

fn create_options(args: &CreateArgs, global: &crate::cli::Global) -> CreateOptions {
    CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        listen_fds: listen_fds(),
        isolation: global.isolation,
    }
}

/// The number of sockets systemd passed to this process (socket
/// activation: `LISTEN_FDS`, valid only when `LISTEN_PID` is our pid).
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `rootcell spec`: refuses to overwrite an existing config, like runc.
fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join(rootcell::spec::CONFIG_FILE);
    if path.exists() {
        bail!("{}: file already exists", path.display());
    }
    let ids = rootless.then(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    });
    let spec = rootcell::spec::default_spec(ids);
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `rootcell plan`: what `create` would do, without doing it.
fn plan(
    runtime: &Runtime,
    bundle: &Path,
    json: bool,
    no_pivot: bool,
    isolation: Option<rootcell::plan::Isolation>,
) -> Result<()> {
    let plan = runtime.plan(bundle, no_pivot, isolation)?;
    let text = if json {
        serde_json::to_string_pretty(&plan)? + "\n"
    } else {
        plan.to_string()
    };
    emit(&text)
}

/// `rootcell stat`: docker's PathStat of a path in a container, one
/// `field: value` line each, or the JSON object.
fn stat(runtime: &Runtime, id: &str, path: &Path, json: bool) -> Result<()> {
    // Single-threaded still: a rootless caller joins a user namespace.
    rootcell::view::userns::enter_for(runtime, id)?;
    let st = rootcell::view::stat(runtime, id, path)?;
    let text = if json {
        serde_json::to_string(&st)? + "\n"
    } else {
        format!(
            "name: {}\nsize: {}\nmode: {}\nmtime: {}\nlinkTarget: {}\n",
            st.name,
            st.size,
            rootcell::view::plan::go_mode_string(st.mode),
            st.mtime,
            st.link_target
        )
    };
    emit(&text)
}

/// `rootcell cp`: docker cp. Unless `-q` (or without a terminal on
/// stderr, as docker), `Successfully copied SIZE to DEST` on stderr.
fn cp(
    runtime: &Runtime,
    src: &str,
    dst: &str,
    archive: bool,
    follow: bool,
    quiet: bool,
) -> Result<()> {
    use rootcell::view::cp::{self, CpOptions, Side};
    use std::io::IsTerminal;
    let copy = cp::parse(src, dst)?;
    // Single-threaded still: a rootless caller joins a user namespace.
    let id = match &copy {
        cp::Copy::From { id, .. } | cp::Copy::To { id, .. } => id,
    };
    rootcell::view::userns::enter_for(runtime, id)?;
    let opts = CpOptions {
        archive,
        follow_link: follow,
    };
    let copied = cp::run(runtime, &copy, opts)?;
    let to_stream = matches!(
        &copy,
        cp::Copy::From {
            dst: Side::Stream,
            ..
        }
    );
    if !quiet && !to_stream && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {dst}", human_size(copied.bytes));
    }
    Ok(())
}

/// docker's `units.HumanSize`: 4 significant digits, decimal units.
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < units.len() {
        size /= 1000.0;
        unit += 1;
    }
    let text = format!("{size:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", units[unit])
}

/// An error that ends the command with `code` instead of 1 (`exec`
/// fails with 255, as runc's does).
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `{:#}` keeps anyhow's chain of causes on one line.
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
