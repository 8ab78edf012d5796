//! `rootcell`: the command line. Parsing only; all logic is in the library.

mod cli;
mod commands;
mod fast_args;
mod logging;

use clap::Parser;

/// The release binary links musl (scripts/setup: glibc's start-up costs
/// every process up to 0.9 ms of `cpuid` exits on a VM), whose allocator
/// maps and unmaps memory for most allocations (about 80 `mmap` and 75
/// `munmap` per `run`, each unmapped page faulted in again); dlmalloc
/// takes memory in large blocks and keeps it, as glibc's does.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    rootcell::phase::mark("main");
    // dlmalloc's one lock, taken around fork(2) by libc's atfork handlers
    // (glibc's allocator does the same for itself), so a child forked while
    // another thread allocates does not inherit it held.
    // SAFETY: called once, first thing, before any other thread exists.
    #[cfg(target_env = "musl")]
    unsafe {
        dlmalloc::enable_alloc_after_fork()
    };
    // `rootcell sandbox` has BenchExec's flags (its `--root` is not the
    // state directory's): its own parser takes everything after the word.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(at) = commands::sandbox::position(&argv) {
        std::process::exit(commands::sandbox::main(&argv[..at], &argv[at + 1..]));
    }
    // The forms engines send on every container start without clap (its
    // parser costs 0.2 ms); anything else, and every error, through clap.
    let args = fast_args::parse(&argv).unwrap_or_else(cli::Cli::parse);
    logging::init(&args.global);
    rootcell::phase::mark("runtime: arguments parsed");
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
