//! Unit tests of `pack` and `unpack` against scratch roots.

use super::*;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::*;
use rustix::process::{Gid, Uid};
use tar::{Archive, Builder, EntryType, Header};

use super::pack::*;
use super::unpack::*;
use crate::fs::RootDir;
use crate::plan::IdMapping;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

/// A scratch directory: `outer/` holds a sentinel file and `outer/root/`
/// is the container root. Removed on drop.
struct Scratch {
    outer: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let outer =
            std::env::temp_dir().join(format!("rootcell-archive-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&outer);
        fs::create_dir_all(outer.join("root")).unwrap();
        fs::write(outer.join("sentinel"), b"host").unwrap();
        Scratch { outer }
    }
    fn root_path(&self) -> PathBuf {
        self.outer.join("root")
    }
    fn root(&self) -> RootDir {
        RootDir::open(&self.root_path()).unwrap()
    }
    fn sentinel_unchanged(&self) {
        assert_eq!(fs::read(self.outer.join("sentinel")).unwrap(), b"host");
        let names: Vec<_> = fs::read_dir(&self.outer)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "something appeared outside the root: {names:?}"
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.outer);
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    utimensat(
        rustix::fs::CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn names(tar: &[u8]) -> Vec<(String, EntryType)> {
    let mut a = Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type(),
            )
        })
        .collect()
}

fn pack_vec(root: &RootDir, src: &str, opts: &PackOptions) -> Vec<u8> {
    let mut out = Vec::new();
    pack(root, Path::new(src), opts, &mut out).unwrap();
    out
}

/// A tree with every kind pack and unpack handle without privileges.
fn make_tree(root: &Path) {
    let d = root.join("d");
    fs::create_dir_all(d.join("sub/deeper")).unwrap();
    fs::write(d.join("f"), b"hello bytes").unwrap();
    fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(d.join("f"), d.join("hard")).unwrap();
    std::os::unix::fs::symlink("../outside/target", d.join("link")).unwrap();
    fs::write(d.join("sub/deeper/x"), b"x").unwrap();
    fs::set_permissions(d.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
    set_mtime(&d.join("f"), 1_000_000_000);
    set_mtime(&d.join("link"), 1_100_000_000);
    set_mtime(&d.join("sub/deeper/x"), 1_200_000_000);
    set_mtime(&d.join("sub/deeper"), 1_300_000_000);
    set_mtime(&d.join("sub"), 1_400_000_000);
    set_mtime(&d, 1_500_000_000);
}

#[test]
fn round_trip_keeps_bytes_modes_mtimes_links() {
    let src = Scratch::new("rt-src");
    let dst = Scratch::new("rt-dst");
    make_tree(&src.root_path());
    fs::create_dir(dst.root_path().join("out")).unwrap();
    let tar = pack_vec(&src.root(), "/d", &PackOptions::default());
    unpack(
        &dst.root(),
        Path::new("/out"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    let d = dst.root_path().join("out/d");
    assert_eq!(fs::read(d.join("f")).unwrap(), b"hello bytes");
    let f = fs::metadata(d.join("f")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert_eq!(f.mtime(), 1_000_000_000);
    let h = fs::metadata(d.join("hard")).unwrap();
    assert_eq!((h.ino(), h.nlink()), (f.ino(), 2), "hardlink kept");
    assert_eq!(
        fs::read_link(d.join("link")).unwrap(),
        Path::new("../outside/target")
    );
    assert_eq!(
        fs::symlink_metadata(d.join("link")).unwrap().mtime(),
        1_100_000_000
    );
    assert_eq!(fs::read(d.join("sub/deeper/x")).unwrap(), b"x");
    let sub = fs::metadata(d.join("sub")).unwrap();
    assert_eq!(sub.mode() & 0o7777, 0o750);
    assert_eq!(sub.mtime(), 1_400_000_000);
    assert_eq!(
        fs::metadata(d.join("sub/deeper")).unwrap().mtime(),
        1_300_000_000
    );
    assert_eq!(fs::metadata(&d).unwrap().mtime(), 1_500_000_000);
    src.sentinel_unchanged();
    dst.sentinel_unchanged();
}

#[test]
fn directory_source_names_base_or_contents() {
    let s = Scratch::new("names");
    make_tree(&s.root_path());
    let root = s.root();
    let base = names(&pack_vec(&root, "/d", &PackOptions::default()));
    assert_eq!(base[0], ("d".into(), EntryType::Directory));
    assert!(
        base.iter().all(|(n, _)| n == "d" || n.starts_with("d/")),
        "{base:?}"
    );
    assert!(base.contains(&("d/f".into(), EntryType::Regular)));
    // `/.`: the contents, not the directory.
    let contents = names(&pack_vec(&root, "/d/.", &PackOptions::default()));
    assert!(
        contents.contains(&("f".into(), EntryType::Regular)),
        "{contents:?}"
    );
    assert!(contents.contains(&("sub/deeper/x".into(), EntryType::Regular)));
    assert!(!contents
        .iter()
        .any(|(n, _)| n.starts_with("d/") || n == "d"));
    // A file source: one entry under its base name.
    let file = names(&pack_vec(&root, "d/sub/deeper/x", &PackOptions::default()));
    assert_eq!(file, vec![("x".into(), EntryType::Regular)]);
    // `/.` on a file is an error naming the path.
    let err = pack(
        &root,
        Path::new("/d/f/."),
        &PackOptions::default(),
        Vec::new(),
    );
    assert!(err.unwrap_err().to_string().contains("/d/f/."));
}

#[test]
fn rename_names_the_source_and_its_contents() {
    let s = Scratch::new("rename");
    make_tree(&s.root_path());
    let root = s.root();
    let opts = PackOptions {
        rename: Some("new".into()),
        ..Default::default()
    };
    let dir = names(&pack_vec(&root, "/d", &opts));
    assert_eq!(dir[0], ("new".into(), EntryType::Directory));
    assert!(
        dir.iter().all(|(n, _)| n == "new" || n.starts_with("new/")),
        "{dir:?}"
    );
    // `/.` renamed: the directory's own entry under the new name too.
    let contents = names(&pack_vec(&root, "/d/.", &opts));
    assert_eq!(contents, dir);
    let file = names(&pack_vec(&root, "/d/f", &opts));
    assert_eq!(file, vec![("new".into(), EntryType::Regular)]);
}

#[test]
fn follow_link_follows_only_the_source_and_stays_in_the_root() {
    let s = Scratch::new("follow");
    make_tree(&s.root_path());
    let r = s.root_path();
    std::os::unix::fs::symlink("/d/f", r.join("abs")).unwrap();
    // A link that lexically leaves the root: inside it, `/..` is `/`.
    std::os::unix::fs::symlink("../../sentinel", r.join("escape")).unwrap();
    let root = s.root();
    let plain = pack_vec(&root, "/abs", &PackOptions::default());
    assert_eq!(names(&plain), vec![("abs".into(), EntryType::Symlink)]);
    let opts = PackOptions {
        follow_link: true,
        ..Default::default()
    };
    let followed = pack_vec(&root, "/abs", &opts);
    let mut a = Archive::new(&followed[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(&*e.path_bytes(), b"abs");
    let mut body = Vec::new();
    e.read_to_end(&mut body).unwrap();
    assert_eq!(body, b"hello bytes");
    // A followed link to a directory names its entries after the link.
    std::os::unix::fs::symlink("d", r.join("ld")).unwrap();
    let ld = names(&pack_vec(&root, "/ld", &opts));
    assert!(ld.contains(&("ld/f".into(), EntryType::Regular)), "{ld:?}");
    assert_eq!(
        names(&pack_vec(&root, "/ld", &PackOptions::default())),
        vec![("ld".into(), EntryType::Symlink)]
    );
    // Links below the source are never followed, even with -L.
    let dir = names(&pack_vec(&root, "/d", &opts));
    assert!(dir.contains(&("d/link".into(), EntryType::Symlink)));
    // The escaping link resolves inside the root: no such file there.
    let err = pack(&root, Path::new("/escape"), &opts, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("/escape"), "{err}");
    s.sentinel_unchanged();
}

#[test]
fn fifo_at_the_source_is_a_header_only() {
    let s = Scratch::new("fifo");
    fs::create_dir(s.root_path().join("d")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.root_path().join("d/p"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let root = s.root();
    let start = std::time::Instant::now();
    let tar = pack_vec(&root, "/d", &PackOptions::default());
    assert!(names(&tar).contains(&("d/p".into(), EntryType::Fifo)));
    let tar = pack_vec(&root, "/d/p", &PackOptions::default());
    assert_eq!(names(&tar), vec![("p".into(), EntryType::Fifo)]);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // And it unpacks to a fifo.
    let dst = Scratch::new("fifo-dst");
    unpack(
        &dst.root(),
        Path::new("/"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert!(fs::metadata(dst.root_path().join("p"))
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Counts what is written, keeps nothing.
struct Count(u64, Vec<u8>);
impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        // Keep the last bytes written: the data before the padding.
        self.1.extend_from_slice(b);
        let keep = self.1.len().saturating_sub(4096);
        self.1.drain(..keep);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn large_sparse_file_travels_as_its_data_only() {
    let s = Scratch::new("sparse");
    let path = s.root_path().join("big");
    let size: u64 = 10 << 30;
    {
        let f = fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        rustix::io::pwrite(&f, b"HEAD", 0).unwrap();
        rustix::io::pwrite(&f, b"TAIL", size - 4).unwrap();
    }
    let start = std::time::Instant::now();
    let mut out = Count(0, Vec::new());
    pack(
        &s.root(),
        Path::new("/big"),
        &PackOptions::default(),
        &mut out,
    )
    .unwrap();
    // Headers and two data blocks, not 10 GiB.
    assert!(out.0 < 1 << 20, "{} bytes", out.0);
    let tar = pack_vec(&s.root(), "/big", &PackOptions::default());
    assert_eq!(names(&tar), vec![("big".into(), EntryType::GNUSparse)]);
    let mut a = Archive::new(&tar[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.size(), size);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn sparse_file_with_many_segments_round_trips() {
    let s = Scratch::new("sparse-many");
    let path = s.root_path().join("holes");
    let step: u64 = 1 << 20;
    let mut expect = vec![0u8; (step * 30) as usize];
    {
        let f = fs::File::create(&path).unwrap();
        f.set_len(step * 30).unwrap();
        // 28 data segments, the last hole at the end: more than the main header and one extension
        // header hold.
        for i in 0..28u64 {
            let data = format!("segment {i}");
            let off = i * step + 4096 * (i % 3);
            rustix::io::pwrite(&f, data.as_bytes(), off).unwrap();
            expect[off as usize..off as usize + data.len()].copy_from_slice(data.as_bytes());
        }
    }
    let tar = pack_vec(&s.root(), "/holes", &PackOptions::default());
    assert!(tar.len() < (step * 2) as usize, "{} bytes", tar.len());
    fs::create_dir(s.root_path().join("dst")).unwrap();
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(fs::read(s.root_path().join("dst/holes")).unwrap(), expect);
    // A fully sparse file too.
    let empty = s.root_path().join("empty");
    fs::File::create(&empty).unwrap().set_len(step).unwrap();
    let tar = pack_vec(&s.root(), "/empty", &PackOptions::default());
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read(s.root_path().join("dst/empty")).unwrap(),
        vec![0; step as usize]
    );
}

#[test]
fn the_header_guard_skips_sparse_extension_blocks_before_the_data() {
    // A GNU sparse entry with extension blocks (6 segments: more than
    // the main header's 4) whose last data block looks like a tar
    // header with a 1 KiB body, followed by a 2 MiB long-name header.
    // The guard must skip exactly the extension blocks, then the data,
    // and so see (and refuse) the long-name header: counting the
    // extension blocks as data would misread the last data block as a
    // header and skip over the long name.
    let s = Scratch::new("sparse-guard");
    let path = s.root_path().join("holes");
    let step: u64 = 1 << 20;
    let decoy = raw(b"decoy", EntryType::Regular, b"", &[b'd'; 1024]);
    {
        let f = fs::File::create(&path).unwrap();
        f.set_len(step * 7).unwrap();
        for i in 0..6u64 {
            let mut block = vec![b's'; 4096];
            if i == 5 {
                block[4096 - 512..].copy_from_slice(&decoy[..512]);
            }
            rustix::io::pwrite(&f, &block, i * step).unwrap();
        }
    }
    let mut tar = pack_vec(&s.root(), "/holes", &PackOptions::default());
    tar.truncate(tar.len() - 1024);
    let long = vec![b'n'; 2 << 20];
    tar.extend(stream(&[raw(
        b"././@LongLink",
        EntryType::GNULongName,
        b"",
        &long,
    )]));
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("exceeds"), "{err}");
}

/// A raw header: the tar crate's setters refuse hostile names, so the
/// bytes are written directly.
fn raw(name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_000_000_000);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn stream(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

fn unpack_err(s: &Scratch, tar: &[u8], opts: &UnpackOptions) -> String {
    fs::create_dir_all(s.root_path().join("dst")).unwrap();
    let err = unpack(&s.root(), Path::new("/dst"), tar, opts).unwrap_err();
    s.sentinel_unchanged();
    err.to_string()
}

#[test]
fn dotdot_names_are_refused_naming_the_entry() {
    let s = Scratch::new("dotdot");
    for name in [&b"../../sentinel"[..], b"a/../../sentinel", b"../x"] {
        let tar = stream(&[raw(name, EntryType::Regular, b"", b"pwned")]);
        let err = unpack_err(&s, &tar, &UnpackOptions::default());
        let shown = String::from_utf8_lossy(name);
        assert!(err.contains(&*shown), "{err}");
    }
    // The same names carried by a pax `path` record and a GNU long name.
    let record = |v: &str| {
        let body = format!(" path={v}\n");
        let mut len = body.len() + 2;
        if format!("{len}{body}").len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    };
    let pax = stream(&[
        raw(
            b"PaxHeader",
            EntryType::XHeader,
            b"",
            &record("../../sentinel"),
        ),
        raw(b"innocent", EntryType::Regular, b"", b"pwned"),
    ]);
    let err = unpack_err(&s, &pax, &UnpackOptions::default());
    assert!(err.contains("../../sentinel"), "{err}");
    let gnu = stream(&[
        raw(
            b"././@LongLink",
            EntryType::GNULongName,
            b"",
            b"../../sentinel\0",
        ),
        raw(b"innocent", EntryType::Regular, b"", b"pwned"),
    ]);
    let err = unpack_err(&s, &gnu, &UnpackOptions::default());
    assert!(err.contains("../../sentinel"), "{err}");
    // `a/../b` stays inside: allowed, as docker's Clean allows it.
    let tar = stream(&[raw(b"a/../b", EntryType::Regular, b"", b"ok")]);
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(fs::read(s.root_path().join("dst/b")).unwrap(), b"ok");
}

#[test]
fn absolute_names_are_contained_in_the_destination() {
    let s = Scratch::new("abs");
    let outer = s.outer.join("sentinel");
    let tar = stream(&[raw(
        outer.as_os_str().as_bytes(),
        EntryType::Regular,
        b"",
        b"pwned",
    )]);
    fs::create_dir(s.root_path().join("dst")).unwrap();
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    let inside = s
        .root_path()
        .join("dst")
        .join(outer.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"pwned");
    s.sentinel_unchanged();
}

#[test]
fn writes_through_a_symlink_entry_stay_in_the_root() {
    let s = Scratch::new("symwrite");
    let outer = s.outer.as_os_str().as_bytes().to_vec();
    for (i, target) in [outer.as_slice(), b"../../..", b"/.."].iter().enumerate() {
        let link = format!("l{i}");
        let tar = stream(&[
            raw(link.as_bytes(), EntryType::Symlink, target, b""),
            raw(
                format!("{link}/sentinel").as_bytes(),
                EntryType::Regular,
                b"",
                b"pwned",
            ),
        ]);
        fs::create_dir_all(s.root_path().join("dst")).unwrap();
        unpack(
            &s.root(),
            Path::new("/dst"),
            &tar[..],
            &UnpackOptions::default(),
        )
        .unwrap();
        s.sentinel_unchanged();
    }
    // `../../..` and `/..` are the root itself inside the root.
    assert_eq!(fs::read(s.root_path().join("sentinel")).unwrap(), b"pwned");
}

#[test]
fn hardlinks_outside_or_through_symlinks_are_refused() {
    let s = Scratch::new("hardlink");
    fs::create_dir_all(s.root_path().join("dst/sub")).unwrap();
    fs::write(s.root_path().join("dst/sub/f"), b"in").unwrap();
    let cases: [Vec<Vec<u8>>; 4] = [
        vec![raw(b"h", EntryType::Link, b"../../sentinel", b"")],
        vec![
            raw(b"s", EntryType::Symlink, b"/..", b""),
            raw(b"h", EntryType::Link, b"s/sentinel", b""),
        ],
        vec![
            raw(
                b"s2",
                EntryType::Symlink,
                s.outer.as_os_str().as_bytes(),
                b"",
            ),
            raw(b"h2", EntryType::Link, b"s2/sentinel", b""),
        ],
        // Even a symlink that stays inside is not a way to a target.
        vec![
            raw(b"s3", EntryType::Symlink, b"sub", b""),
            raw(b"h3", EntryType::Link, b"s3/f", b""),
        ],
    ];
    for case in cases {
        let err = unpack_err(&s, &stream(&case), &UnpackOptions::default());
        assert!(err.contains("\"h"), "{err}");
        assert_eq!(fs::metadata(s.outer.join("sentinel")).unwrap().nlink(), 1);
    }
    // A hardlink to an earlier entry works.
    let tar = stream(&[
        raw(b"f", EntryType::Regular, b"", b"data"),
        raw(b"g", EntryType::Link, b"f", b""),
    ]);
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(
        fs::metadata(s.root_path().join("dst/g")).unwrap().nlink(),
        2
    );
}

#[test]
fn device_nodes_are_refused_unless_allowed() {
    let s = Scratch::new("dev");
    let mut h = Header::new_gnu();
    h.set_path("null").unwrap();
    h.set_entry_type(EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_size(0);
    h.set_mode(0o666);
    h.set_cksum();
    let tar = stream(&[h.as_bytes().to_vec()]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("\"null\"") && err.contains("device"), "{err}");
    assert!(!s.root_path().join("dst/null").exists());
    // Skipped: the stream goes on, the node is not made.
    let skip = UnpackOptions {
        devices: DeviceNodes::Skip,
        ..Default::default()
    };
    let mut tail = h.clone();
    tail.set_path("after").unwrap();
    tail.set_entry_type(EntryType::Regular);
    tail.set_cksum();
    let both = stream(&[h.as_bytes().to_vec(), tail.as_bytes().to_vec()]);
    unpack(&s.root(), Path::new("/dst"), &both[..], &skip).unwrap();
    assert!(!s.root_path().join("dst/null").exists());
    assert!(s.root_path().join("dst/after").is_file());
    if rustix::process::geteuid().is_root() {
        let opts = UnpackOptions {
            devices: DeviceNodes::Create,
            ..Default::default()
        };
        unpack(&s.root(), Path::new("/dst"), &tar[..], &opts).unwrap();
        let m = fs::metadata(s.root_path().join("dst/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.mode() & 0o7777, 0o666);
    }
}

#[test]
fn malformed_and_huge_headers_are_errors() {
    let s = Scratch::new("malformed");
    // Bad checksum.
    let mut bad = raw(b"f", EntryType::Regular, b"", b"abc");
    bad[148] ^= 0x11;
    let err = unpack_err(&s, &stream(&[bad]), &UnpackOptions::default());
    assert!(!err.is_empty());
    // A size far larger than the stream: an error, not a panic or an
    // allocation of that size.
    let mut h = Header::new_gnu();
    h.set_path("huge").unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_size(u64::MAX / 2);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[7; 4096]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("huge"), "{err}");
    // A GNU long name claiming 1 TiB: refused before it is read.
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(1 << 40);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[b'a'; 8192]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("extension header"), "{err}");
    // Long names within bounds still work.
    let long = "d/".repeat(60) + "file";
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"ok"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read(s.root_path().join("dst").join(&long)).unwrap(),
        b"ok"
    );
    // Garbage.
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _ = unpack_err(&s, &junk, &UnpackOptions::default());
}

#[test]
fn directory_and_non_directory_never_replace_each_other() {
    let s = Scratch::new("dirnondir");
    let dst = s.root_path().join("dst");
    fs::create_dir_all(dst.join("isdir")).unwrap();
    fs::write(dst.join("isfile"), b"keep").unwrap();
    let err = unpack_err(
        &s,
        &stream(&[raw(b"isdir", EntryType::Regular, b"", b"x")]),
        &UnpackOptions::default(),
    );
    assert!(err.contains("isdir") && err.contains("directory"), "{err}");
    let err = unpack_err(
        &s,
        &stream(&[raw(b"isfile", EntryType::Directory, b"", b"")]),
        &UnpackOptions::default(),
    );
    assert!(err.contains("isfile"), "{err}");
    assert_eq!(fs::read(dst.join("isfile")).unwrap(), b"keep");
    // A file replaces a file; a directory over a directory is merged.
    let tar = stream(&[
        raw(b"isfile", EntryType::Regular, b"", b"new"),
        raw(b"isdir/", EntryType::Directory, b"", b""),
    ]);
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(fs::read(dst.join("isfile")).unwrap(), b"new");
    assert!(dst.join("isdir").is_dir());
}

#[test]
fn owners_are_mapped_both_ways() {
    let ids = IdMap {
        uids: vec![IdMapping {
            container_id: 0,
            host_id: 100_000,
            size: 65_536,
        }],
        gids: vec![IdMapping {
            container_id: 0,
            host_id: 200_000,
            size: 65_536,
        }],
    };
    assert_eq!(ids.host_to_container(100_005, 200_007), (5, 7));
    assert_eq!(ids.host_to_container(0, 0), (OVERFLOW_ID, OVERFLOW_ID));
    assert_eq!(ids.container_to_host(5, 7), Some((100_005, 200_007)));
    assert_eq!(ids.container_to_host(70_000, 0), None);
    assert_eq!(IdMap::default().container_to_host(3, 4), Some((3, 4)));
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let s = Scratch::new("owners");
    let f = s.root_path().join("f");
    fs::write(&f, b"x").unwrap();
    rustix::fs::chown(
        &f,
        Some(Uid::from_raw(100_005)),
        Some(Gid::from_raw(200_007)),
    )
    .unwrap();
    let opts = PackOptions {
        ids: ids.clone(),
        ..Default::default()
    };
    let tar = pack_vec(&s.root(), "/f", &opts);
    let mut a = Archive::new(&tar[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (e.header().uid().unwrap(), e.header().gid().unwrap()),
        (5, 7)
    );
    // Back in with -a: host ids again.
    fs::create_dir(s.root_path().join("dst")).unwrap();
    let uopts = UnpackOptions {
        ownership: Ownership::Archive,
        ids: ids.clone(),
        devices: DeviceNodes::Refuse,
    };
    unpack(&s.root(), Path::new("/dst"), &tar[..], &uopts).unwrap();
    let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100_005, 200_007));
    // Fixed: the container's user, mapped.
    let uopts = UnpackOptions {
        ownership: Ownership::Fixed { uid: 1, gid: 2 },
        ids,
        devices: DeviceNodes::Refuse,
    };
    unpack(&s.root(), Path::new("/dst"), &tar[..], &uopts).unwrap();
    let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100_001, 200_002));
    // Caller: no chown at all.
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    let m = fs::metadata(s.root_path().join("dst/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn a_stream_cut_short_names_the_entry_and_leaves_no_partial_file() {
    let s = Scratch::new("cut");
    let mut h = Header::new_gnu();
    h.set_path("partial").unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(10_000);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[b'p'; 512]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(
        err.contains("\"partial\"") && err.contains("512 of 10000"),
        "{err}"
    );
    assert!(!s.root_path().join("dst/partial").exists());
}

#[test]
fn names_longer_than_path_max_are_refused_and_shown_short() {
    let s = Scratch::new("longname");
    let long = [b"dir/".repeat(2000), b"tail".to_vec()].concat();
    let mut l = Header::new_gnu();
    l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    l.set_entry_type(EntryType::GNULongName);
    l.set_size(long.len() as u64);
    l.set_cksum();
    let mut ext = l.as_bytes().to_vec();
    ext.extend_from_slice(&long);
    ext.resize(ext.len().div_ceil(512) * 512, 0);
    let tar = stream(&[ext, raw(b"short", EntryType::Regular, b"", b"x")]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("PATH_MAX"), "{err}");
    assert!(err.contains("dir/dir/") && err.contains("tail\"") && err.contains("8004 bytes"));
    assert!(err.len() < 1024, "{err}");
    assert!(!s.root_path().join("dst/dir").exists());
    // A hardlink target is held to the same rule, its message short.
    let mut k = l.clone();
    k.set_entry_type(EntryType::GNULongLink);
    k.set_cksum();
    let mut ext = k.as_bytes().to_vec();
    ext.extend_from_slice(&long);
    ext.resize(ext.len().div_ceil(512) * 512, 0);
    let tar = stream(&[ext, raw(b"hl", EntryType::Link, b"x", b"")]);
    let err = unpack_err(&s, &tar, &UnpackOptions::default());
    assert!(err.contains("\"hl\"") && err.contains("PATH_MAX"), "{err}");
    assert!(err.len() < 1024, "{err}");
}

// ---------------------------------------------------------------- xattrs

use super::xattr::{acl_from_stream, cap_from_stream, cap_to_stream, decide, parse_pax, Decision};

#[test]
fn pax_records_are_parsed_by_length_with_binary_values() {
    let data = b"29 SCHILY.xattr.user.a=x\ny\0z\n12 path=abc\n";
    assert_eq!(
        parse_pax(data).unwrap(),
        vec![
            (&b"SCHILY.xattr.user.a"[..], &b"x\ny\0z"[..]),
            (&b"path"[..], &b"abc"[..])
        ]
    );
    assert_eq!(parse_pax(b"").unwrap(), vec![]);
    for bad in [
        &b"99 path=abc\n"[..],
        b"11 path=abc\n",
        b"x path=abc\n",
        b"11 pathabc\n",
        b"3 \n",
    ] {
        assert!(
            parse_pax(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// A `security.capability` value: v2 (`rootid` None) or v3, with
/// CAP_DAC_OVERRIDE, CAP_FOWNER (a byte 0x0a: a newline inside the pax
/// record) and CAP_NET_RAW permitted and effective.
fn cap(rootid: Option<u32>) -> Vec<u8> {
    let rev: u32 = if rootid.is_some() {
        0x0300_0000
    } else {
        0x0200_0000
    };
    let mut v = (rev | 1).to_le_bytes().to_vec();
    v.extend_from_slice(&((1u32 << 13) | 0x0a).to_le_bytes());
    v.extend_from_slice(&[0; 12]);
    if let Some(r) = rootid {
        v.extend_from_slice(&r.to_le_bytes());
    }
    v
}

fn userns_ids() -> IdMap {
    let m = |host_id| {
        vec![IdMapping {
            container_id: 0,
            host_id,
            size: 65_536,
        }]
    };
    IdMap {
        uids: m(100_000),
        gids: m(200_000),
    }
}

#[test]
fn capabilities_are_written_for_the_stream_as_docker_does() {
    let ids = userns_ids();
    // v2 travels as it is.
    assert_eq!(cap_to_stream(&cap(None), &ids), Some(cap(None)));
    // v3 of the container's root: v2 (docker's conversion).
    assert_eq!(cap_to_stream(&cap(Some(100_000)), &ids), Some(cap(None)));
    // v3 of another container id: v3 with the container id.
    assert_eq!(cap_to_stream(&cap(Some(100_007)), &ids), Some(cap(Some(7))));
    // v3 of an id the container does not map: left out.
    assert_eq!(cap_to_stream(&cap(Some(5)), &ids), None);
    // Without a user namespace ids are host ids: root's v3 is v2.
    assert_eq!(
        cap_to_stream(&cap(Some(0)), &IdMap::default()),
        Some(cap(None))
    );
    assert_eq!(
        cap_to_stream(&cap(Some(1000)), &IdMap::default()),
        Some(cap(Some(1000)))
    );
}

#[test]
fn capabilities_into_a_user_namespace_belong_to_its_root() {
    let ids = userns_ids();
    // v2 (any root) → v3 owned by the container's root on the host, as
    // the kernel stores one the container's root writes.
    assert_eq!(cap_from_stream(&cap(None), &ids), Ok(cap(Some(100_000))));
    assert_eq!(cap_from_stream(&cap(Some(7)), &ids), Ok(cap(Some(100_007))));
    let err = cap_from_stream(&cap(Some(70_000)), &ids).unwrap_err();
    assert!(err.contains("not mapped"), "{err}");
    assert!(cap_from_stream(b"junk", &ids).is_err());
    // No user namespace: as it is.
    assert_eq!(
        cap_from_stream(&cap(None), &IdMap::default()),
        Ok(cap(None))
    );
}

#[test]
fn acls_and_trusted_xattrs_into_a_user_namespace() {
    let ids = userns_ids();
    // version 2; USER_OBJ; USER 5; GROUP 6; MASK; OTHER.
    let entry = |tag: u16, id: u32| {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend_from_slice(&7u16.to_le_bytes());
        e.extend_from_slice(&id.to_le_bytes());
        e
    };
    let acl = |u: u32, g: u32| {
        let mut v = 2u32.to_le_bytes().to_vec();
        for e in [
            entry(0x01, u32::MAX),
            entry(0x02, u),
            entry(0x08, g),
            entry(0x10, u32::MAX),
            entry(0x20, u32::MAX),
        ] {
            v.extend(e);
        }
        v
    };
    assert_eq!(acl_from_stream(&acl(5, 6), &ids), Ok(acl(100_005, 200_006)));
    assert!(acl_from_stream(&acl(70_000, 6), &ids).is_err());
    assert!(acl_from_stream(&acl(5, 6)[..10], &ids).is_err());
    assert_eq!(
        acl_from_stream(&acl(5, 6), &IdMap::default()),
        Ok(acl(5, 6))
    );
    assert_eq!(
        decide(b"system.posix_acl_access", &acl(5, 6), &ids),
        Ok(Decision::Set(acl(100_005, 200_006)))
    );
    // trusted.*: skipped into a user namespace, set otherwise.
    assert!(matches!(
        decide(b"trusted.x", b"v", &ids),
        Ok(Decision::Skip(_))
    ));
    assert_eq!(
        decide(b"trusted.x", b"v", &IdMap::default()),
        Ok(Decision::Set(b"v".to_vec()))
    );
    assert_eq!(
        decide(b"user.x", b"v", &ids),
        Ok(Decision::Set(b"v".to_vec()))
    );
}

/// Whether the scratch filesystem takes `user.*` xattrs.
fn user_xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let ok = rustix::fs::setxattr(&probe, "user.probe", b"1", XattrFlags::empty()).is_ok();
    fs::remove_file(&probe).unwrap();
    ok
}

/// A stream of one regular file and one directory, each with PAX xattr
/// records.
fn xattr_stream(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, kind) in [("d", EntryType::Directory), ("d/f", EntryType::Regular)] {
        let keys: Vec<(String, &[u8])> = records
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000_000);
        let body: &[u8] = if kind == EntryType::Regular {
            b"data"
        } else {
            b""
        };
        h.set_size(body.len() as u64);
        b.append_data(&mut h, name, body).unwrap();
    }
    b.into_inner().unwrap()
}

fn get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn unpack_sets_xattr_records_on_files_and_directories() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let s = Scratch::new("xattrs-in");
    if !user_xattrs_supported(&s.root_path()) {
        eprintln!("skipped: no user.* xattrs on {}", s.root_path().display());
        return;
    }
    fs::create_dir(s.root_path().join("dst")).unwrap();
    let tar = xattr_stream(&[
        ("user.note", b"hello\0binary\n"),
        ("security.capability", &cap(None)),
        ("trusted.t", b"t"),
    ]);
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    for p in ["dst/d", "dst/d/f"] {
        let p = s.root_path().join(p);
        assert_eq!(
            get(&p, "user.note").as_deref(),
            Some(&b"hello\0binary\n"[..])
        );
        assert_eq!(get(&p, "trusted.t").as_deref(), Some(&b"t"[..]));
    }
    // The capability survived the chown and the data: set after both.
    let f = s.root_path().join("dst/d/f");
    assert_eq!(get(&f, "security.capability"), Some(cap(None)));
    assert_eq!(fs::read(&f).unwrap(), b"data");
    // Into a user namespace: the capability belongs to its root, trusted.*
    // is left out, owners mapped (with -a).
    fs::create_dir(s.root_path().join("ns")).unwrap();
    let opts = UnpackOptions {
        ownership: Ownership::Archive,
        ids: userns_ids(),
        devices: DeviceNodes::Refuse,
    };
    unpack(&s.root(), Path::new("/ns"), &tar[..], &opts).unwrap();
    let f = s.root_path().join("ns/d/f");
    assert_eq!(get(&f, "security.capability"), Some(cap(Some(100_000))));
    assert_eq!(get(&f, "trusted.t"), None);
    assert_eq!(
        get(&f, "user.note").as_deref(),
        Some(&b"hello\0binary\n"[..])
    );
    // A namespace the filesystem does not know: an error naming the entry
    // and the attribute (docker's cp does not ignore ENOTSUP).
    fs::create_dir(s.root_path().join("bad")).unwrap();
    let bad = xattr_stream(&[("bogus.x", b"1")]);
    let err = unpack_err(&s, &bad, &UnpackOptions::default());
    assert!(err.contains("bogus.x") && err.contains("\"d\""), "{err}");
    s.sentinel_unchanged();
}

#[test]
fn pack_writes_the_capability_as_a_pax_record() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let s = Scratch::new("xattrs-out");
    let f = s.root_path().join("ping");
    fs::write(&f, b"#!x").unwrap();
    // The container's root wrote it: the kernel keeps v3 with rootid
    // 100000 (written here from the host as that value).
    rustix::fs::setxattr(
        &f,
        "security.capability",
        &cap(Some(100_000)),
        XattrFlags::empty(),
    )
    .unwrap();
    if user_xattrs_supported(&s.root_path()) {
        rustix::fs::setxattr(&f, "user.other", b"x", XattrFlags::empty()).unwrap();
    }
    let opts = PackOptions {
        ids: userns_ids(),
        ..Default::default()
    };
    let tar = pack_vec(&s.root(), "/ping", &opts);
    // Raw entries: the pax header, then the file (the tar crate's own pax
    // iterator splits binary values at newlines).
    let mut a = Archive::new(&tar[..]);
    let mut raw = a.entries().unwrap().raw(true);
    let mut x = raw.next().unwrap().unwrap();
    assert_eq!(x.header().entry_type(), EntryType::XHeader);
    let mut data = Vec::new();
    x.read_to_end(&mut data).unwrap();
    let recs: Vec<(String, Vec<u8>)> = parse_pax(&data)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), v.to_vec()))
        .collect();
    let mut e = raw.next().unwrap().unwrap();
    assert_eq!(e.path().unwrap(), Path::new("ping"));
    // Only the capability (docker's rule), as v2 for the container's root.
    assert_eq!(
        recs,
        vec![("SCHILY.xattr.security.capability".to_string(), cap(None))]
    );
    let mut body = Vec::new();
    e.read_to_end(&mut body).unwrap();
    assert_eq!(body, b"#!x");
    // Without a capability there is no PAX header at all.
    let g = s.root_path().join("plain");
    fs::write(&g, b"p").unwrap();
    let tar = pack_vec(&s.root(), "/plain", &opts);
    assert_eq!(names(&tar), vec![("plain".to_string(), EntryType::Regular)]);
    let mut a = Archive::new(&tar[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    assert!(e.pax_extensions().unwrap().is_none());
    s.sentinel_unchanged();
}

/// Bytes that differ at every offset modulo 251, so a chunk that lands at
/// the wrong place shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_add((i / 4096) as u8))
        .collect()
}

/// Files of several sizes around the buffers' (CHUNK) and the tar blocks'
/// boundaries, in interleaved directories.
fn make_sized_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let sizes = [
        0,
        1,
        100,
        511,
        512,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK + 77,
    ];
    let mut files = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let dir = root.join(format!("d/{}", ["a", "b/c", "b"][i % 3]));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("f{i}"));
        let data = pattern(*size, i as u8);
        fs::write(&path, &data).unwrap();
        files.push((path.strip_prefix(root).unwrap().to_path_buf(), data));
    }
    files
}

#[test]
fn pack_into_a_file_writes_the_same_stream_as_pack() {
    let src = Scratch::new("into-file");
    make_sized_tree(&src.root_path());
    let expected = pack_vec(&src.root(), "/d", &PackOptions::default());
    // Big files go with sendfile into a file here (into a pipe in cp).
    let out_path = src.outer.join("stream.tar");
    let out = fs::File::create(&out_path).unwrap();
    pack_into(&src.root(), Path::new("/d"), &PackOptions::default(), &out).unwrap();
    drop(out);
    let got = fs::read(&out_path).unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "pack_into's stream differs from pack's");
    fs::remove_file(&out_path).unwrap();
}

#[test]
fn pack_into_a_pipe_and_unpack_copy_every_byte() {
    let src = Scratch::new("into-pipe-src");
    let dst = Scratch::new("into-pipe-dst");
    let files = make_sized_tree(&src.root_path());
    fs::create_dir(dst.root_path().join("out")).unwrap();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let (r, w) = (fs::File::from(r), fs::File::from(w));
    let src_root = src.root();
    std::thread::scope(|scope| {
        let packer =
            scope.spawn(move || pack_into(&src_root, Path::new("/d"), &PackOptions::default(), &w));
        unpack(
            &dst.root(),
            Path::new("/out"),
            &r,
            &UnpackOptions::default(),
        )
        .unwrap();
        // The end-of-archive blocks, as cp drains them.
        io::copy(&mut &r, &mut io::sink()).unwrap();
        packer.join().unwrap().unwrap();
    });
    for (rel, data) in &files {
        let got = fs::read(dst.root_path().join("out").join(rel)).unwrap();
        assert_eq!(got.len(), data.len(), "{}", rel.display());
        assert!(&got == data, "{} differs", rel.display());
    }
    src.sentinel_unchanged();
    dst.sentinel_unchanged();
}

#[test]
fn entries_of_a_directory_met_again_later_land_in_it() {
    // The unpacker keeps the last parent's fd: a parent left and met again
    // (a/x, b/y, a/z), and a parent made by a symlink entry (l -> a), must
    // still name the right directories, inside the root.
    let s = Scratch::new("parents");
    fs::create_dir(s.root_path().join("dst")).unwrap();
    let tar = stream(&[
        raw(b"a/x", EntryType::Regular, b"", b"x"),
        raw(b"b/y", EntryType::Regular, b"", b"y"),
        raw(b"a/z", EntryType::Regular, b"", b"z"),
        raw(b"l", EntryType::Symlink, b"/a", b""),
        raw(b"l/w", EntryType::Regular, b"", b"w"),
        raw(b"b/v", EntryType::Regular, b"", b"v"),
    ]);
    unpack(
        &s.root(),
        Path::new("/dst"),
        &tar[..],
        &UnpackOptions::default(),
    )
    .unwrap();
    let read = |p: &str| fs::read(s.root_path().join(p)).unwrap();
    assert_eq!(read("dst/a/x"), b"x");
    assert_eq!(read("dst/b/y"), b"y");
    assert_eq!(read("dst/a/z"), b"z");
    assert_eq!(read("dst/b/v"), b"v");
    // `/a` is resolved inside the root: the root's own /a, not the host's.
    assert_eq!(read("a/w"), b"w");
    s.sentinel_unchanged();
}
