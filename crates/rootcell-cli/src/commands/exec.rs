//! `rootcell exec`: flags to `ExecOptions`.

use rootcell::container::{ExecOptions, Runtime};
use rootcell::spec::ProcessOverrides;

use super::Failure;
use crate::cli::ExecArgs;

/// runc's exit code when `exec` itself fails (not the process).
const EXEC_FAILED: i32 = 255;

pub fn exec(runtime: &Runtime, args: ExecArgs) -> Result<i32, Failure> {
    let mut rest = args.args.into_iter();
    // clap requires at least the id.
    let id = rest.next().unwrap_or_default();
    let process = ProcessOverrides {
        args: rest.collect(),
        cwd: args.cwd,
        env: args.env,
        tty: args.tty,
        user: args.user,
        additional_gids: args.additional_gids,
        caps: args.cap,
        no_new_privs: args.no_new_privs,
        apparmor: args.apparmor,
        process_label: args.process_label,
    };
    if args.process.is_some() {
        let ignored = process.given();
        if !ignored.is_empty() {
            let msg = format!(
                "{} ignored with --process, as runc does: the file describes the whole process",
                ignored.join(", ")
            );
            tracing::warn!("{msg}");
            eprintln!("rootcell: warning: {msg}");
        }
    }
    let opts = ExecOptions {
        process_file: args.process,
        process,
        console_socket: args.console_socket,
        detach: args.detach,
        pid_file: args.pid_file,
        preserve_fds: args.preserve_fds,
        cgroups: args.cgroup,
        ignore_paused: args.ignore_paused,
    };
    runtime.exec(&id, &opts).map_err(|e| Failure {
        code: EXEC_FAILED,
        error: e.into(),
    })
}
