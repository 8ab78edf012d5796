//! Helpers for the `rootcell cp` tests (`view_cp.rs`, `view_hostile.rs`):
//! hand-made tar entries (no checks on names, types or sizes), `tar -t`
//! listings, `cp` with a stream on stdin, mtimes.

use super::{exec_input, write_file, Bundle, Ctx, Out};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Sets the mtime of `path` (not following a symlink) to `secs`.
pub fn touch(path: &Path, secs: i64) {
    let out = Command::new("touch")
        .args(["-h", "-m", "-d", &format!("@{secs}")])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "touch: {out:?}");
}

/// GNU tar with `args`, reading the stream `input` on its stdin.
pub fn tar_with_input<S: AsRef<OsStr>>(args: &[S], input: &[u8]) -> Output {
    let mut child = Command::new("tar")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The names `tar -t` lists in a stream (without `./` and a trailing `/`).
pub fn list_tar(bytes: &[u8]) -> Vec<String> {
    let out = tar_with_input(&["-tf", "-"], bytes);
    assert!(out.status.success(), "tar -t: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect()
}

/// Runs `rootcell cp ARGS` with `input` on stdin.
pub fn cp_stdin(ctx: &Ctx, args: &[&str], input: &[u8]) -> Out {
    let mut c = ctx.cmd();
    c.arg("cp").args(args);
    exec_input(&mut c, Some(input), std::time::Duration::from_secs(60))
}

/// A tar stream with one entry named `name` (no checks on the name).
pub fn raw_tar(name: &str, body: &[u8]) -> Vec<u8> {
    end_tar(raw_entry(name, b'0', "", body))
}

/// `entries` followed by the end-of-archive blocks.
pub fn end_tar(mut entries: Vec<u8>) -> Vec<u8> {
    entries.resize(entries.len() + 1024, 0);
    entries
}

/// One tar entry (header and padded data) of type `kind`.
pub fn raw_entry(name: &str, kind: u8, link: &str, body: &[u8]) -> Vec<u8> {
    raw_entry_sized(name, kind, link, body, body.len() as u64, (0, 0))
}

/// A device entry (`b'3'` char, `b'4'` block) for `major:minor`.
pub fn raw_dev(name: &str, kind: u8, major: u32, minor: u32) -> Vec<u8> {
    raw_entry_sized(name, kind, "", b"", 0, (major, minor))
}

/// One tar entry whose header claims `size` bytes (the data written is
/// `body`, padded: a `size` larger than `body` makes a truncated stream).
pub fn raw_entry_sized(
    name: &str,
    kind: u8,
    link: &str,
    body: &[u8],
    size: u64,
    dev: (u32, u32),
) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = format!("{size:011o}");
    h[124..135].copy_from_slice(size.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..336].copy_from_slice(format!("{:07o}", dev.0).as_bytes());
    h[337..344].copy_from_slice(format!("{:07o}", dev.1).as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// The names in a directory (empty when it does not exist).
pub fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `rootcell cp SRC -`: the tar stream on stdout (the copy must succeed).
pub fn cp_out_stream(ctx: &Ctx, src: &str) -> Vec<u8> {
    let out = ctx.cmd().args(["cp", src, "-"]).output().unwrap();
    assert!(out.status.success(), "cp {src} -: {out:?}");
    out.stdout
}

/// GNU tar's verbose listing of a stream, owners as numbers
/// (`… 7/8 …`).
pub fn tar_listing(tar: &[u8]) -> String {
    let out = tar_with_input(&["--numeric-owner", "-tvf", "-"], tar);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The two volumes the cp tests copy through: `ro-vol` (holding
/// `vol.txt`) bound read-only on `/data` and `rw-vol` read-write on `/rw`.
/// Returns their host directories (ro, rw).
pub fn with_volumes(ctx: &Ctx, b: &mut Bundle) -> (PathBuf, PathBuf) {
    let root = b.rootfs();
    fs::create_dir_all(root.join("data")).unwrap();
    fs::create_dir_all(root.join("rw")).unwrap();
    let ro_vol = ctx.dir.join("ro-vol");
    let rw_vol = ctx.dir.join("rw-vol");
    fs::create_dir_all(&ro_vol).unwrap();
    fs::create_dir_all(&rw_vol).unwrap();
    write_file(&ro_vol.join("vol.txt"), "ro\n");
    b.bind_mount(&ro_vol, "/data", true);
    b.bind_mount(&rw_vol, "/rw", false);
    (ro_vol, rw_vol)
}
