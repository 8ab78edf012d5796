//! The sandbox face: run a command in a container made from the host's own
//! tree (BenchExec's `containerexec`/`runexec`). Each directory of the host
//! is hidden, read-only, overlaid (writes captured) or fully accessible;
//! limits are enforced and the run is measured.
//!
//! Flow, as for the OCI face: `SandboxConfig` (flags) → plan (pure, from
//! the config and the host's mountinfo) → execute (the same mount
//! primitives and root switch as containers) → report and result files.

pub mod capture;
pub mod cgroups;
pub mod config;
pub mod layout;
pub mod report;
pub mod supervise;
pub mod system_config;
pub mod units;

pub use config::{DirMode, DirRule, Input, Limits, SandboxConfig};
pub use report::{ExitStatus, Report, TerminationReason};
