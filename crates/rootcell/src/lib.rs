//! rootcell: a Linux container runtime and sandbox engine.
//!
//! Data flows one way: [`spec`] (load, validate) → [`plan`] (pure) →
//! execute ([`rootfs`], [`process`]) → [`state`].

pub mod cgroup;
pub mod container;
pub mod error;
pub mod exe;
pub mod fs;
pub mod hooks;
pub mod phase;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod view;

pub use error::{Error, Result};
