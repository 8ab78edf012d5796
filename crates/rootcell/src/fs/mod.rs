//! Safe filesystem primitives. Every raw syscall of the mount engine lives
//! here, behind small functions that take file descriptors, never paths
//! inside a container.

pub mod copy;
pub mod dev;
pub mod mount;
pub mod mountinfo;
pub mod procfs;
pub mod root;

pub use root::RootDir;
