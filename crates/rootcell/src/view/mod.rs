//! Filesystem views of a container: reading and writing its files from
//! the outside, every path resolved inside its root.

pub mod archive;
