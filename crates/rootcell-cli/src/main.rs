//! `rootcell`: the command line. Parsing only; all logic is in the library.

mod cli;
mod commands;
mod logging;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    // Before anything of a container exists: commands that start processes
    // in a container run from an image the container cannot overwrite
    // (CVE-2019-5736). This may re-execute rootcell.
    if args.command.enters_container() {
        if let Err(e) = rootcell::exe::ensure_protected() {
            eprintln!("rootcell: {e:#}");
            std::process::exit(1);
        }
    }
    logging::init(&args.global);
    let code = match commands::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rootcell: {e:#}");
            e.downcast_ref::<commands::Failure>().map_or(1, |f| f.code)
        }
    };
    std::process::exit(code);
}
