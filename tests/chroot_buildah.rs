//! buildah drives the runtime under test as its OCI runtime, the way an
//! image build in CI does: `buildah bud --isolation oci --runtime <runtime>`
//! with and without `--runtime-flag isolation=chroot` (buildah passes it as
//! `--isolation=chroot` before the subcommand). Each build's result — every
//! file of the image (type, owner, mode, content or link target) and the
//! image config (User, WorkingDir, Env) — must equal the same build's with
//! runc (`/usr/sbin/runc`).
//!
//! What buildah 1.28 sends, per `RUN` step: `create --bundle B --pid-file
//! B/pid ID`, `start ID`, `state ID` (until it reports `stopped`), `delete
//! ID`, each with the runtime flags first; no `--log`, no `--log-format`,
//! no `run`. The config (`tests/fixtures/engines/buildah-1.28/`) has all
//! five namespaces but user and cgroup, no `cgroupsPath`, buildah's own
//! seccomp profile, binds for `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` and `/run/.containerenv`, and a cgroup mount.
//!
//! Everything buildah keeps is the test's own: storage (`--root`, vfs) and
//! run root, `TMPDIR` (its bundles, `RUN --mount=type=cache`),
//! `CONTAINERS_CONF`, a storage.conf and registries.conf, an
//! `insecureAcceptAnything` signature policy, the runtimes' `--root`. The
//! test thread runs in a private mount namespace with empty tmpfs over
//! `/var/lib` (containers/image's blob-info cache), `/var/tmp` and `/run`.
//! The base image is the tests' busybox rootfs, `buildah copy`'d into a
//! `scratch` container and committed: no registry is ever asked.
//!
//! Also: `buildah run` (stdio, `-t`, exit status); rootless buildah (uid
//! 1000, only its own id mapped) in both isolations against runc; the
//! default state root of root in a user namespace (`$XDG_RUNTIME_DIR`, as
//! runc); `additionalGids: [gid]` where setgroups is denied.

mod common;

use common::chroot::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A build is a few containers on a busy 2-core machine.
const BUILDAH_TIMEOUT: Duration = Duration::from_secs(180);
const BASE: &str = "localhost/rootcell-busybox";
const RUNC: &str = "/usr/sbin/runc";

/// The runtime buildah is given: records each call's arguments (one line)
/// in `@LOG@/calls` and, before `delete`, the container's `state.json` from
/// the runtime's `--root` (`@STATE@`), then runs the runtime.
const WRAPPER: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>'@LOG@/calls'
case " $* " in
*" delete "*)
    for a; do id=$a; done
    cp '@STATE@'/"$id"/state.json '@LOG@'/"$id".state.json 2>/dev/null
    ;;
esac
exec '@RUNTIME@' "$@"
"#;

/// The build: root steps, then ENV, WORKDIR, USER and steps as uid 1000
/// writing files (a umask-shaped mode, a private directory, a symlink, a
/// fixed mtime) and recording what they see (id, cwd, umask, env).
const CONTAINERFILE: &str = r#"FROM localhost/rootcell-busybox
RUN mkdir -p /app /data && chown 1000:1000 /app && echo root-step > /root-file && chmod 640 /root-file && id -u > /data/root-uid
ENV GREETING="hello world" STEP=two
WORKDIR /app
USER 1000:1000
RUN echo "$GREETING" > greeting && id > id && pwd > cwd && umask > umask && (umask 027; echo masked > masked)
RUN mkdir -m 700 private && echo "$STEP" > private/step && ln -s greeting link && touch -d @86400 stamp && chmod 600 stamp
"#;

/// A private buildah whose containers run under a given runtime.
struct Buildah {
    dir: PathBuf,
    ctx: Ctx,
    /// Run buildah as this uid (and gid) through setpriv: rootless buildah.
    user: Option<u32>,
}

impl Buildah {
    /// `None` (and a skip notice) when buildah or the reference runc is
    /// missing. Makes the base image.
    fn new(name: &str) -> Option<Buildah> {
        Buildah::new_as(name, None)
    }

    /// As [`Buildah::new`], buildah running as `user` when given (its
    /// directories, the runtimes' state dirs and `HOME` are the user's).
    fn new_as(name: &str, user: Option<u32>) -> Option<Buildah> {
        if !command_exists("buildah") {
            skip("buildah is not installed (scripts/setup installs it)");
            return None;
        }
        if !Path::new(RUNC).exists() {
            skip("the reference /usr/sbin/runc is not installed (scripts/setup installs it)");
            return None;
        }
        let held = HeldRuntime::open();
        enter_private_mount_namespace();
        cover_with_tmpfs(&["/var/lib", "/var/tmp", "/run"]);
        let mut ctx = Ctx::new(name);
        ctx.bin = held.install(&ctx.dir);
        let dir = ctx.dir.join("buildah");
        fs::create_dir_all(dir.join("tmp")).unwrap();
        write_file(
            &dir.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        write_file(&dir.join("containers.conf"), "");
        write_file(&dir.join("registries.conf"), "");
        write_file(
            &dir.join("storage.conf"),
            &format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n",
                dir.display()
            ),
        );
        if let Some(uid) = user {
            for d in ["", "tmp", "home", "xdg"] {
                fs::create_dir_all(dir.join(d)).unwrap();
                chown(&dir.join(d), uid, uid);
            }
            fs::set_permissions(dir.join("xdg"), fs::Permissions::from_mode(0o700)).unwrap();
            fs::create_dir_all(ctx.dir.join("state")).unwrap();
            chown(&ctx.dir.join("state"), uid, uid);
        }
        let b = Buildah { dir, ctx, user };
        let rootfs = b.dir.join("rootfs");
        make_rootfs(&rootfs);
        let out = b.run(&["from", "--signature-policy", &b.policy(), "scratch"]);
        out.assert_ok("buildah from scratch");
        let cname = out.stdout.trim().to_owned();
        b.run(&["copy", &cname, &format!("{}/", rootfs.display()), "/"])
            .assert_ok("buildah copy");
        b.run(&["commit", "--signature-policy", &b.policy(), &cname, BASE])
            .assert_ok("buildah commit");
        b.run(&["rm", &cname]).assert_ok("buildah rm");
        Some(b)
    }

    fn policy(&self) -> String {
        self.dir.join("policy.json").to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = match self.user {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg("buildah")
                    .env_clear()
                    .env(
                        "PATH",
                        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    )
                    .env("HOME", self.dir.join("home"))
                    .env("XDG_RUNTIME_DIR", self.dir.join("xdg"));
                c
            }
            None => Command::new("buildah"),
        };
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("BUILDAH_") || k.starts_with("CONTAINERS_") {
                c.env_remove(&*k);
            }
        }
        c.current_dir(&self.dir)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("TMPDIR", self.dir.join("tmp"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        exec(&mut self.command(args), BUILDAH_TIMEOUT)
    }

    /// A recording wrapper around `runtime` whose containers keep their
    /// state in `state`; returns the wrapper's path and its log dir.
    fn wrapper(&self, tag: &str, runtime: &Path, state: &Path) -> (PathBuf, PathBuf) {
        let log = self.dir.join(format!("calls-{tag}"));
        fs::create_dir_all(&log).unwrap();
        if let Some(uid) = self.user {
            chown(&log, uid, uid);
        }
        let path = self.dir.join("bin").join(format!("runtime-{tag}"));
        let text = WRAPPER
            .replace("@LOG@", &log.to_string_lossy())
            .replace("@STATE@", &state.to_string_lossy())
            .replace("@RUNTIME@", &runtime.to_string_lossy());
        write_file(&path, &text);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        (path, log)
    }

    /// `buildah bud --isolation oci --runtime R --runtime-flag root=STATE
    /// [runtime_flags] -t TAG` of `containerfile` (its context is a
    /// directory of its own).
    fn bud(
        &self,
        tag: &str,
        runtime: &Path,
        state: &Path,
        runtime_flags: &[&str],
        containerfile: &str,
    ) -> Out {
        let context = self.dir.join(format!("context-{tag}"));
        write_file(&context.join("Containerfile"), containerfile);
        let mut args: Vec<String> = vec![
            "bud".into(),
            "--signature-policy".into(),
            self.policy(),
            "--pull=never".into(),
            "--isolation".into(),
            "oci".into(),
            "--runtime".into(),
            runtime.to_string_lossy().into_owned(),
            "--runtime-flag".into(),
            format!("root={}", state.display()),
        ];
        if self.user.is_some() {
            // Rootless buildah's default network is a CNI bridge it may
            // not create here (runc fails the same way).
            args.push("--network=host".into());
        }
        for f in runtime_flags {
            args.extend(["--runtime-flag".into(), f.to_string()]);
        }
        args.extend([
            "-t".into(),
            format!("localhost/{tag}"),
            context.to_string_lossy().into_owned(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }

    /// Builds the Containerfile with runc and with the runtime under test
    /// (`runtime_flags` as buildah's `--runtime-flag`s), then checks both
    /// images are alike and what the steps wrote is right. Returns the
    /// calls the runtime under test got.
    fn build_and_compare(&self, runtime_flags: &[&str]) -> Vec<String> {
        let runc_state = self.dir.join("state-runc");
        let (runc, _) = self.wrapper("runc", Path::new(RUNC), &runc_state);
        self.bud("ref-runc", &runc, &runc_state, &[], CONTAINERFILE)
            .assert_ok("buildah bud with runc");
        let state = self.ctx.state_dir();
        let (under_test, log) = self.wrapper("test", &self.ctx.bin, &state);
        let out = self.bud(
            "under-test",
            &under_test,
            &state,
            runtime_flags,
            CONTAINERFILE,
        );
        out.assert_ok("buildah bud with the runtime under test");

        let want = self.image_files("localhost/ref-runc");
        let got = self.image_files("localhost/under-test");
        assert_same_tree(&want, &got);
        // Right, not merely alike.
        let expect = [
            ("root-file", "file 0:0 640 root-step\n"),
            ("data/root-uid", "file 0:0 644 0\n"),
            ("app", "dir 1000:1000 755"),
            ("app/greeting", "file 1000:1000 644 hello world\n"),
            (
                "app/id",
                "file 1000:1000 644 uid=1000(user) gid=1000(user) groups=1000(user)\n",
            ),
            ("app/cwd", "file 1000:1000 644 /app\n"),
            ("app/umask", "file 1000:1000 644 0022\n"),
            ("app/masked", "file 1000:1000 640 masked\n"),
            ("app/private", "dir 1000:1000 700"),
            ("app/private/step", "file 1000:1000 644 two\n"),
            ("app/link", "link 1000:1000 777 -> greeting"),
            ("app/stamp", "file 1000:1000 600 mtime=86400 "),
        ];
        for (path, desc) in expect {
            assert_eq!(
                got.get(path).map(String::as_str),
                Some(desc),
                "{path} in the image built by the runtime under test"
            );
        }
        let want = self.image_config("localhost/ref-runc");
        let got = self.image_config("localhost/under-test");
        for key in ["User", "WorkingDir", "Env"] {
            assert_eq!(got[key], want[key], "image config {key}: {got} vs {want}");
        }
        assert_eq!(got["User"], "1000:1000", "{got}");
        assert_eq!(got["WorkingDir"], "/app", "{got}");
        let env: Vec<&str> = got["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            env.contains(&"GREETING=hello world") && env.contains(&"STEP=two"),
            "{got}"
        );

        let calls = lines(&read_file(&log.join("calls")));
        // Three RUN steps: create, start, state, delete for each.
        let creates = calls.iter().filter(|c| c.contains(" create ")).count();
        assert_eq!(creates, 3, "{calls:#?}");
        for id in deleted_ids(&calls) {
            let left = cgroups_named(&id);
            assert!(left.is_empty(), "cgroups left for {id}: {left:?}");
        }
        self.ctx.assert_clean();
        calls
    }

    /// Every file of `image` (mounted through a `buildah from` container):
    /// relative path → "TYPE UID:GID MODE CONTENT" (regular files' content,
    /// with `mtime=N ` first for files older than 1971; symlinks' target).
    fn image_files(&self, image: &str) -> BTreeMap<String, String> {
        let out = self.run(&[
            "from",
            "--pull=never",
            "--signature-policy",
            &self.policy(),
            image,
        ]);
        out.assert_ok("buildah from");
        let cname = out.stdout.trim().to_owned();
        // Rootless, vfs: the layer's path, read from buildah's namespace.
        let out = match self.user {
            Some(_) => {
                let storage = self.dir.join("storage");
                let run = self.dir.join("run");
                self.run(&[
                    "unshare",
                    "--",
                    "buildah",
                    "--root",
                    &storage.to_string_lossy(),
                    "--runroot",
                    &run.to_string_lossy(),
                    "--storage-driver",
                    "vfs",
                    "mount",
                    &cname,
                ])
            }
            None => self.run(&["mount", &cname]),
        };
        out.assert_ok("buildah mount");
        let root = PathBuf::from(out.stdout.trim());
        let mut files = BTreeMap::new();
        walk(&root, &root, &mut files);
        if self.user.is_none() {
            self.run(&["umount", &cname]).assert_ok("buildah umount");
        }
        self.run(&["rm", &cname]).assert_ok("buildah rm");
        files
    }

    /// The image's OCI config (`OCIv1.config` of `buildah inspect`).
    fn image_config(&self, image: &str) -> Value {
        let out = self.run(&["inspect", "--type", "image", image]);
        out.assert_ok("buildah inspect");
        parse_json(&out.stdout, "buildah inspect")["OCIv1"]["config"].clone()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all"]);
        let _ = self.run(&["rmi", "--all", "--force"]);
        // vfs mounts nothing; whatever buildah left mounted under the
        // test's dir (in this thread's namespace) goes before the dir does.
        let dir = self.ctx.dir.to_string_lossy().into_owned();
        let mut left: Vec<String> = host_mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&dir))
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &left {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        if !std::thread::panicking() {
            assert!(
                left.is_empty(),
                "mounts left under the test's dir: {left:?}"
            );
            assert!(
                self.ctx.leftover_pids().is_empty(),
                "processes left in the test's dir"
            );
        }
    }
}

/// Adds every entry below `dir` to `files` (see `Buildah::image_files`).
fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ft = meta.file_type();
        let owner = format!("{}:{} {:o}", meta.uid(), meta.gid(), meta.mode() & 0o7777);
        let desc = if ft.is_symlink() {
            format!("link {owner} -> {}", readlink(&path))
        } else if ft.is_dir() {
            walk(root, &path, files);
            format!("dir {owner}")
        } else if ft.is_file() {
            let content = fs::read(&path).unwrap();
            let mtime = if meta.mtime() < 365 * 86400 {
                format!("mtime={} ", meta.mtime())
            } else {
                String::new()
            };
            format!("file {owner} {mtime}{}", String::from_utf8_lossy(&content))
        } else {
            format!("other {owner} {:x}", meta.rdev())
        };
        files.insert(rel, desc);
    }
}

/// Asserts two image trees are equal, listing every difference.
#[track_caller]
fn assert_same_tree(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
    let short = |s: Option<&String>| -> String {
        s.map(|s| s.chars().take(120).collect())
            .unwrap_or_else(|| "(missing)".to_owned())
    };
    let diffs: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| {
            format!(
                "{k}: runc {:?}, under test {:?}",
                short(want.get(k)),
                short(got.get(k))
            )
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "the images differ from runc's ({} entries):\n{}",
        want.len(),
        diffs.join("\n")
    );
}

/// The container ids of the `delete` calls in a wrapper's log.
fn deleted_ids(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.split(' ').any(|w| w == "delete"))
        .filter_map(|c| c.split(' ').next_back().map(str::to_owned))
        .collect()
}

/// The isolation each deleted container of `log` recorded in its state.
fn isolations(log: &Path, calls: &[String]) -> Vec<String> {
    deleted_ids(calls)
        .iter()
        .map(|id| {
            let state = read_file(&log.join(format!("{id}.state.json")));
            parse_json(&state, "state.json")["isolation"]
                .as_str()
                .unwrap_or("(none)")
                .to_owned()
        })
        .collect()
}

#[test]
fn bud_with_chroot_isolation_matches_runc() {
    if !rootcell_only() {
        return;
    }
    let Some(b) = Buildah::new("bh-chroot") else {
        return;
    };
    let calls = b.build_and_compare(&["isolation=chroot"]);
    // Each command got the flag before the subcommand, and each container
    // really ran in chroot isolation.
    let lifecycle: Vec<String> = calls
        .iter()
        .map(|c| {
            let mut w = c.split(' ');
            assert!(
                w.any(|x| x == "--isolation=chroot"),
                "a call without the flag: {c}"
            );
            w.next().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        lifecycle[..4],
        ["create", "start", "state", "delete"],
        "{calls:#?}"
    );
    let log = b.dir.join("calls-test");
    assert_eq!(isolations(&log, &calls), ["chroot"; 3], "{calls:#?}");
}

#[test]
fn bud_with_full_isolation_matches_runc() {
    let Some(b) = Buildah::new("bh-full") else {
        return;
    };
    let calls = b.build_and_compare(&[]);
    assert!(
        calls.iter().all(|c| !c.contains("--isolation")),
        "{calls:#?}"
    );
    if !runtime_is_runc() {
        let log = b.dir.join("calls-test");
        assert_eq!(isolations(&log, &calls), ["oci"; 3], "{calls:#?}");
    }
}

#[test]
fn failing_run_step_passes_exit_code_and_output() {
    let Some(b) = Buildah::new("bh-fail") else {
        return;
    };
    let containerfile =
        "FROM localhost/rootcell-busybox\nRUN echo to-stdout; echo to-stderr >&2; exit 3\n";
    let state = b.ctx.state_dir();
    let (rt, _) = b.wrapper("test", &b.ctx.bin, &state);
    let mut modes: Vec<&[&str]> = vec![&[]];
    if !runtime_is_runc() {
        modes.push(&["isolation=chroot"]);
    }
    for flags in modes {
        let out = b.bud("fails", &rt, &state, flags, containerfile);
        out.assert_fail("a RUN step exiting 3");
        assert!(out.stdout.contains("to-stdout"), "{flags:?}: {}", out.all());
        assert!(out.stderr.contains("to-stderr"), "{flags:?}: {}", out.all());
        assert!(
            out.stderr.contains("exit status 3"),
            "{flags:?}: the step's exit status: {}",
            out.all()
        );
        b.ctx.assert_clean();
    }
}

/// `buildah run` on a working container, in full isolation and (rootcell)
/// chroot isolation: stdin reaches the command, stdout and stderr come
/// back apart, the exit status passes through; `-t` gives it a terminal
/// (buildah adds `--console-socket` to `create`).
#[test]
fn buildah_run_stdio_terminal_and_exit_code() {
    let Some(b) = Buildah::new("bh-run") else {
        return;
    };
    let out = b.run(&[
        "from",
        "--pull=never",
        "--signature-policy",
        &b.policy(),
        BASE,
    ]);
    out.assert_ok("buildah from");
    let cname = out.stdout.trim().to_owned();
    let state = b.ctx.state_dir();
    let (rt, log) = b.wrapper("test", &b.ctx.bin, &state);
    let root_flag = format!("root={}", state.display());
    let mut modes: Vec<&[&str]> = vec![&[]];
    if !runtime_is_runc() {
        modes.push(&["--runtime-flag", "isolation=chroot"]);
    }
    for mode in modes {
        let run = |extra: &[&str], script: &str, input: &[u8]| {
            let mut args = vec!["run", "--isolation", "oci", "--runtime"];
            let rt = rt.to_string_lossy();
            args.extend([&*rt, "--runtime-flag", &root_flag]);
            args.extend(mode);
            args.extend(extra);
            args.extend([cname.as_str(), "--", "/bin/sh", "-c", script]);
            exec_input(&mut b.command(&args), Some(input), BUILDAH_TIMEOUT)
        };
        let out = run(&[], "cat; tty; echo to-stderr >&2; exit 4", b"from-stdin\n");
        assert_eq!(out.code(), Some(4), "{mode:?}: {}", out.all());
        assert_eq!(
            out.stdout,
            "from-stdin\nnot a tty\n",
            "{mode:?}: {}",
            out.all()
        );
        assert!(out.stderr.contains("to-stderr"), "{mode:?}: {}", out.all());
        let out = run(&["-t"], "tty; exit 5", b"");
        assert_eq!(out.code(), Some(5), "{mode:?} -t: {}", out.all());
        assert!(
            out.stdout.contains("/dev/pts/0"),
            "{mode:?} -t: {}",
            out.all()
        );
        b.ctx.assert_clean();
    }
    let calls = read_file(&log.join("calls"));
    assert!(calls.contains(" --console-socket "), "{calls}");
}

/// Rootless buildah (and podman) run the runtime as root of their user
/// namespace, with `$XDG_RUNTIME_DIR` set and no `--root`: as runc does,
/// the default state root is then `$XDG_RUNTIME_DIR/<runtime>`, not
/// `/run/<runtime>` (not theirs); with `USER=root` it stays under `/run`.
/// Whether the container itself can run there (cgroups) does not matter
/// here: only where the runtime keeps its state, and that nothing is left.
#[test]
fn default_state_root_of_root_in_a_user_namespace_is_under_xdg_runtime_dir() {
    skip_unless!(
        command_exists("unshare"),
        "unshare (util-linux) is not installed"
    );
    let ctx = Ctx::new("bh-xdg");
    let b = ctx.bundle();
    let name = runtime_name();
    for (user, under_xdg) in [(None, true), (Some("buildah"), true), (Some("root"), false)] {
        let xdg = ctx.dir.join(format!("xdg-{}", user.unwrap_or("unset")));
        fs::create_dir_all(&xdg).unwrap();
        let id = ctx.id(&format!("xdg-{}", user.unwrap_or("unset")));
        // /run is an empty tmpfs of the namespace's own: what lands there
        // is listed after the run, and never reaches the host.
        let script = format!(
            "mount -t tmpfs tmpfs /run && {env} XDG_RUNTIME_DIR='{xdg}' '{rt}' run --bundle '{bundle}' {id} \
             >/dev/null 2>&1; echo run=$?; ls -A /run",
            env = match user {
                None => "env -u USER".to_owned(),
                Some(u) => format!("env USER={u}"),
            },
            xdg = xdg.display(),
            rt = ctx.bin.display(),
            bundle = b.path.display(),
        );
        let out = exec(
            Command::new("unshare")
                .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
                .arg(&script),
            CMD_TIMEOUT,
        );
        out.assert_ok("unshare --user --map-root-user");
        let state = xdg.join(&name);
        let in_run: Vec<String> = lines(&out.stdout)
            .into_iter()
            .filter(|l| !l.starts_with("run="))
            .collect();
        if under_xdg {
            assert!(
                state.is_dir(),
                "USER={user:?}: no {} ({})",
                state.display(),
                out.all()
            );
            assert!(
                in_run.is_empty(),
                "USER={user:?}: state in /run: {in_run:?}"
            );
            let left: Vec<String> = fs::read_dir(&state)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            assert!(left.is_empty(), "USER={user:?}: state left: {left:?}");
        } else {
            assert!(!state.exists(), "USER=root: state under XDG_RUNTIME_DIR");
            assert_eq!(
                in_run,
                std::slice::from_ref(&name),
                "USER=root: {}",
                out.all()
            );
        }
        let _ = remove_cgroups_named(&id);
        ctx.forget(&id);
    }
}

/// Rootless buildah's containers share its user namespace, where
/// `setgroups` is denied, and its configs ask `additionalGids: [gid]`:
/// full isolation runs them (the primary gid is the group asked for), and
/// refuses, naming the field, a group other than the primary one (runc
/// drops every group silently). The runtime runs as root of an
/// `unshare --user --map-root-user` namespace (setgroups denied), with
/// `--rootless=true` (no cgroup it may not write).
#[test]
fn full_isolation_where_setgroups_is_denied_meets_the_primary_gid() {
    skip_unless!(
        command_exists("unshare"),
        "unshare (util-linux) is not installed"
    );
    let ctx = Ctx::new("bh-setgroups");
    let mut b = ctx.bundle();
    b.sh("id -g; grep -E '^Groups:' /proc/self/status");
    b.linux()
        .as_object_mut()
        .expect("linux")
        .remove("resources");
    // devpts' gid=5 is not mapped in that namespace (runc fails on it).
    for m in b.config["mounts"].as_array_mut().into_iter().flatten() {
        if m["type"] == "devpts" {
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("gid=")));
            }
        }
    }
    let mut cases = vec![(vec![0u32], true)];
    if !runtime_is_runc() {
        cases.push((vec![0, 10], false));
    }
    for (groups, runs) in cases {
        b.process()["user"] = serde_json::json!({"uid": 0, "gid": 0, "additionalGids": groups});
        b.save();
        let id = ctx.id(&format!("g{}", groups.len()));
        let script = format!(
            "grep -q deny /proc/self/setgroups || echo setgroups-allowed; \
             exec '{rt}' --rootless=true --root '{root}' run --bundle '{bundle}' {id}",
            rt = ctx.bin.display(),
            root = ctx.dir.join("userns-state").display(),
            bundle = b.path.display(),
        );
        let out = exec(
            Command::new("unshare")
                .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
                .arg(&script),
            CMD_TIMEOUT,
        );
        assert!(
            !out.stdout.contains("setgroups-allowed"),
            "unshare --map-root-user left setgroups allowed"
        );
        if runs {
            out.assert_ok(&format!("additionalGids {groups:?}"));
            assert!(out.stdout.starts_with("0\n"), "{}", out.all());
        } else {
            out.assert_fail(&format!("additionalGids {groups:?}"));
            assert!(
                out.stderr.contains("process.user.additionalGids"),
                "{}",
                out.all()
            );
        }
        let _ = remove_cgroups_named(&id);
        ctx.forget(&id);
    }
    assert!(
        ctx.leftover_pids().is_empty(),
        "processes left in the test's rootfs"
    );
}

/// Rootless buildah (uid 1000, no subordinate ids: only its own id is
/// mapped, to root) builds with rootcell in full and in chroot isolation,
/// and the images equal runc's. buildah runs the runtime as root of its
/// user namespace without `--root` or `--rootless`: as in runc,
/// `--rootless auto` counts root in a non-initial user namespace as
/// rootless (cgroups best effort) and the state goes under
/// `$XDG_RUNTIME_DIR`.
#[test]
fn rootless_bud_in_both_isolations_matches_runc() {
    skip_unless_rootless_possible!();
    if !rootcell_only() {
        return;
    }
    let Some(b) = Buildah::new_as("bh-rootless", Some(UNPRIV_UID)) else {
        return;
    };
    let containerfile = "FROM localhost/rootcell-busybox\n\
        RUN mkdir -p /app && echo root-step > /root-file && chmod 640 /root-file\n\
        ENV GREETING=\"hello world\"\n\
        WORKDIR /app\n\
        RUN echo \"$GREETING\" > greeting && id -u > uid && pwd > cwd && (umask 027; echo m > masked)\n";
    let runc_state = b.dir.join("state-runc");
    let (runc, _) = b.wrapper("runc", Path::new(RUNC), &runc_state);
    b.bud("ref-runc", &runc, &runc_state, &[], containerfile)
        .assert_ok("rootless buildah bud with runc");
    let want = b.image_files("localhost/ref-runc");
    assert_eq!(
        want.get("app/greeting").map(String::as_str),
        Some(format!("file {UNPRIV_UID}:{UNPRIV_UID} 644 hello world\n").as_str()),
        "runc's build (root in buildah's namespace is uid {UNPRIV_UID} on disk)"
    );
    let state = b.ctx.state_dir();
    let (rt, log) = b.wrapper("test", &b.ctx.bin, &state);
    for (tag, flags) in [("full", &[][..]), ("chroot", &["isolation=chroot"][..])] {
        let image = format!("rootless-{tag}");
        let out = b.bud(&image, &rt, &state, flags, containerfile);
        out.assert_ok(&format!("rootless buildah bud, {tag} isolation"));
        assert_same_tree(&want, &b.image_files(&format!("localhost/{image}")));
        let calls = lines(&read_file(&log.join("calls")));
        assert_eq!(
            isolations(&log, &calls),
            [if tag == "full" { "oci" } else { "chroot" }; 2],
            "{calls:#?}"
        );
        fs::remove_file(log.join("calls")).unwrap();
        let left: Vec<_> = fs::read_dir(&state)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "state left: {left:?}");
    }
}

/// Recaptures `tests/fixtures/engines/buildah-1.28/*.json`, the configs
/// buildah sends a runtime for a `RUN` step as root (`bud-run-root.json`)
/// and after `USER 1000:1000` (`bud-run-user.json`), for
/// `tests/foreign_configs.rs`: buildah is given the logging wrapper
/// (`tests/fixtures/engines/capture-runtime.sh`) and each recorded
/// `config.json` is stored with its bundle as `@BUNDLE@`, its random
/// hostname as `@HOSTNAME@` and the test's buildah dir as `@ENGINE@`
/// (`common::capture`). Run it by hand:
///
/// ```sh
/// ROOTCELL_TEST_RUNTIME=$PWD/target/release/rootcell unshare --mount --propagation private -- \
///     cargo test -p rootcell-cli --test chroot_buildah -- --ignored capture_buildah_configs
/// ```
#[test]
#[ignore = "recaptures the buildah fixtures of foreign_configs.rs"]
fn capture_buildah_configs() {
    use common::capture;
    let Some(b) = Buildah::new("bh-capture") else {
        return;
    };
    let version = b.run(&["--version"]).stdout;
    assert!(
        version.contains(" 1.28."),
        "the fixtures are buildah 1.28's: {version}"
    );
    let (wrapper, captured) = capture::install_wrapper(&b.dir, &b.ctx.bin);
    let state = b.ctx.state_dir();
    b.bud("capture", &wrapper, &state, &[], CONTAINERFILE)
        .assert_ok("buildah bud");
    let docs: Vec<Value> = capture::take(&captured)
        .into_iter()
        .filter(|(c, _)| c == "create")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(docs.len(), 3, "one create per RUN step");
    for (name, mut doc) in [
        ("bud-run-root", docs[0].clone()),
        ("bud-run-user", docs[1].clone()),
    ] {
        let root = doc["root"]["path"].as_str().unwrap_or_default().to_owned();
        let bundle = root
            .strip_suffix("/mnt/rootfs")
            .unwrap_or_else(|| panic!("buildah's root.path is <bundle>/mnt/rootfs: {root}"))
            .to_owned();
        let hostname = doc["hostname"].as_str().unwrap_or_default().to_owned();
        let reps = vec![
            (bundle, "@BUNDLE@".to_owned()),
            (hostname, "@HOSTNAME@".to_owned()),
            (b.dir.to_string_lossy().into_owned(), "@ENGINE@".to_owned()),
        ];
        capture::normalize(&mut doc, &reps);
        capture::save(&format!("buildah-1.28/{name}.json"), &doc);
    }
}
