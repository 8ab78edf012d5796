//! `--log`, `--log-format` and `--debug`: runc's logging flags, with runc's
//! record format (logrus): engines such as containerd read `level` and
//! `msg` from the JSON log file to report a runtime's errors.

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{Global, LogFormat};

/// Records go to the `--log` file only. Without one (or when it cannot be
/// opened) no subscriber is installed at all: records would go nowhere, and
/// tracing's default (no subscriber) drops them without formatting them or
/// running (and faulting in) the subscriber's code.
pub fn init(global: &Global) {
    let level = if global.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    // Logging is best effort: a log file we cannot open must not stop the
    // container; errors are printed on stderr regardless.
    let Some(file) = global
        .log
        .as_ref()
        .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok())
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .event_format(RuncFormat {
            json: global.log_format == LogFormat::Json,
        })
        .with_writer(Mutex::new(file))
        .try_init();
}

/// `rootcell sandbox`: as `init`, but `--debug` records go to stderr when
/// there is no `--log` file.
pub fn init_sandbox(global: &Global, debug: bool) {
    if global.log.is_some() || !debug {
        return init(&Global {
            debug,
            log: global.log.clone(),
            log_format: global.log_format,
            root: None,
            rootless: None,
            systemd_cgroup: false,
            isolation: None,
        });
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::DEBUG)
        .with_ansi(false)
        .event_format(RuncFormat {
            json: global.log_format == LogFormat::Json,
        })
        .with_writer(std::io::stderr)
        .try_init();
}

/// logrus' text (`time="…" level=error msg="…"`) or JSON
/// (`{"level":"error","msg":"…","time":"…"}`) records.
struct RuncFormat {
    json: bool,
}

impl<S, N> FormatEvent<S, N> for RuncFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut msg = Message(String::new());
        event.record(&mut msg);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = rootcell::state::rfc3339_now();
        if self.json {
            let record = serde_json::json!({ "level": level, "msg": msg.0, "time": time });
            writeln!(w, "{record}")
        } else {
            writeln!(w, "time={time:?} level={level} msg={:?}", msg.0)
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}
