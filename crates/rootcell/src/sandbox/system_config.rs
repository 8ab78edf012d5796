//! Placeholder until the sysconf branch lands (it replaces this file).

use std::path::PathBuf;

pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub home: PathBuf,
}

pub fn passwd(id: &Identity) -> String {
    format!(
        "root:x:0:0:root:/root:/bin/sh\n{}:x:{}:{}:{}:{}:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        id.user,
        id.uid,
        id.gid,
        id.user,
        id.home.display()
    )
}

pub fn group(id: &Identity) -> String {
    format!("root:x:0:\n{}:x:{}:\nnogroup:x:65534:\n", id.group, id.gid)
}

pub fn hosts(hostname: &str) -> String {
    format!("127.0.0.1 localhost {hostname}\n::1 localhost ip6-localhost ip6-loopback\n")
}

pub fn nsswitch() -> String {
    "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\n".to_string()
}

pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}
