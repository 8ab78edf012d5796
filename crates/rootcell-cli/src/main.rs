//! `rootcell`: the command line. Parsing only; all logic is in the library.

mod cli;
mod commands;
mod logging;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
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
