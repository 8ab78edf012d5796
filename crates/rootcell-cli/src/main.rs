//! `rootcell`: the command line. Parsing only; all logic is in the library.

mod cli;
mod commands;
mod logging;

use clap::Parser;

fn main() {
    rootcell::phase::mark("main");
    // `rootcell sandbox` has BenchExec's flags (its `--root` is not the
    // state directory's): its own parser takes everything after the word.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(at) = commands::sandbox::position(&argv) {
        std::process::exit(commands::sandbox::main(&argv[..at], &argv[at + 1..]));
    }
    let args = cli::Cli::parse();
    logging::init(&args.global);
    // Before anything of a container exists: commands that start processes
    // in a container run from an image the container cannot overwrite
    // (CVE-2019-5736). This may re-execute rootcell; an immutable binary is
    // kept or not per container (`plan::binary`).
    let binary = if args.command.enters_container() {
        match rootcell::exe::ensure_protected() {
            Ok(found) => Some(found),
            Err(e) => {
                fail(&e);
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let code = match commands::dispatch(args, binary) {
        Ok(code) => code,
        Err(e) => {
            fail(&e);
            e.downcast_ref::<commands::Failure>().map_or(1, |f| f.code)
        }
    };
    rootcell::phase::report_runtime_rss("runtime");
    std::process::exit(code);
}

/// An error, as runc reports it: an `error`-level record in the `--log`
/// file (`{"level":"error","msg":…}` with `--log-format json`, which
/// containerd reads back) and `rootcell: error: …` on stderr.
fn fail(e: &dyn std::fmt::Display) {
    tracing::error!("{e:#}");
    eprintln!("rootcell: error: {e:#}");
}
