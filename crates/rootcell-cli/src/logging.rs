//! `--log`, `--log-format` and `--debug`: runc's logging flags. Engines such
//! as containerd read the JSON log file for error messages.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::cli::{Global, LogFormat};

pub fn init(global: &Global) {
    let level = if global.debug { "debug" } else { "warn" };
    let filter = EnvFilter::new(level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let file = global
        .log
        .as_ref()
        .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok());
    // Logging is best effort: a failure to set it up must not stop the
    // container.
    match (file, global.log_format) {
        (Some(f), LogFormat::Json) => {
            let _ = builder.json().with_writer(Mutex::new(f)).try_init();
        }
        (Some(f), LogFormat::Text) => {
            let _ = builder.with_writer(Mutex::new(f)).try_init();
        }
        (None, LogFormat::Json) => {
            let _ = builder.json().with_writer(std::io::sink).try_init();
        }
        (None, LogFormat::Text) => {
            let _ = builder.with_writer(std::io::sink).try_init();
        }
    }
}
