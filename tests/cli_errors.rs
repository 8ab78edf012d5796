//! Error cases of the CLI: every one must exit non-zero, print a useful
//! message and leave nothing behind.

mod common;

use common::*;
use serde_json::json;
use std::fs;

/// Assert an error message mentions one of `needles` (rootcell only: runc's
/// wording is its own).
#[track_caller]
fn assert_mentions(out: &Out, needles: &[&str]) {
    if runtime_is_runc() {
        return;
    }
    let all = out.all();
    assert!(
        needles.iter().any(|n| all.contains(n)),
        "error message should mention one of {needles:?}, got:\n{all}"
    );
}

#[test]
fn missing_id_is_an_error() {
    let ctx = Ctx::new("noid");
    for cmd in ["create", "start", "state", "kill", "delete", "run"] {
        let out = ctx.rt(&[cmd]);
        out.assert_fail(&format!("{cmd} without id"));
        assert!(!out.stderr.trim().is_empty(), "{cmd}: no error message");
    }
    ctx.assert_clean();
}

#[test]
fn unknown_id_is_an_error() {
    let ctx = Ctx::new("unknown");
    let id = "does-not-exist";
    for args in [
        vec!["start", id],
        vec!["state", id],
        vec!["kill", id],
        vec!["kill", id, "KILL"],
        vec!["delete", id],
    ] {
        let out = ctx.rt(&args);
        out.assert_fail(&format!("{args:?}"));
        assert!(
            out.stdout.trim().is_empty(),
            "{args:?} printed on stdout: {}",
            out.stdout
        );
        assert_mentions(&out, &[id]);
    }
    ctx.assert_clean();
}

#[test]
fn duplicate_id_on_create_fails_and_keeps_original() {
    let ctx = Ctx::new("dup");
    let mut b = ctx.bundle();
    b.args(&["sleep", "100"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("first create");
    let pid = ctx.pid(&id);
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("second create with the same id");
    assert_mentions(&out, &[&id]);
    // The original container is untouched.
    let st = ctx.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert!(pid_alive(pid));
    // And run with the same id fails too.
    ctx.run(&id, &b).assert_fail("run with a duplicate id");
    assert_eq!(ctx.list_ids(), vec![id.clone()]);
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn invalid_ids_are_rejected() {
    let ctx = Ctx::new("badid");
    let b = ctx.bundle();
    for bad in ["a/b", "..", ".", "", "a b", "../escape", "/abs"] {
        let out = ctx.create(bad, &b, &[]);
        out.assert_fail(&format!("create {bad:?}"));
        let out = ctx.run(bad, &b);
        out.assert_fail(&format!("run {bad:?}"));
    }
    // Nothing was created anywhere, in particular not outside the state dir.
    assert!(!ctx.dir.join("escape").exists());
    assert!(!ctx.dir.join("b").exists());
    ctx.assert_clean();
}

#[test]
fn missing_bundle_is_an_error() {
    let ctx = Ctx::new("nobundle");
    let id = ctx.id("c");
    let missing = ctx.dir.join("no-such-bundle");
    let mut c = ctx.cmd();
    c.arg("create").arg("--bundle").arg(&missing).arg(&id);
    let out = ctx.exec_detached(&mut c, &id, None);
    out.assert_fail("create with missing bundle");
    assert_mentions(&out, &["no-such-bundle"]);
    ctx.assert_clean();
}

#[test]
fn missing_config_json_is_an_error() {
    let ctx = Ctx::new("noconfig");
    let b = ctx.bundle();
    let id = ctx.id("c");
    let mut c = ctx.create_cmd(&id, &b, &[]);
    fs::remove_file(b.config_path()).unwrap();
    let out = ctx.exec_detached(&mut c, &id, None);
    out.assert_fail("create without config.json");
    assert_mentions(&out, &["config.json"]);
    ctx.assert_clean();
}

#[test]
fn malformed_config_json_is_an_error() {
    let ctx = Ctx::new("badjson");
    let b = ctx.bundle();
    for (name, text) in [
        ("trunc", "{\"ociVersion\": \"1.0.2\", \"process\": {"),
        ("notjson", "this is not json"),
        (
            "wrongtype",
            "{\"ociVersion\": \"1.0.2\", \"process\": 5, \"root\": {\"path\": \"rootfs\"}}",
        ),
    ] {
        let id = ctx.id(name);
        let mut c = ctx.create_cmd(&id, &b, &[]);
        fs::write(b.config_path(), text).unwrap();
        let out = ctx.exec_detached(&mut c, &id, None);
        out.assert_fail(&format!("create with malformed config ({name})"));
        assert_mentions(&out, &["config.json"]);
    }
    ctx.assert_clean();
}

/// A type error deep in config.json names the file, the JSON path and
/// serde_json's message with its position (rootcell parses with plain
/// serde_json first and names the path only on failure: the message must
/// be the one the path-tracking parse gives).
#[test]
fn config_type_errors_name_the_json_path() {
    if runtime_is_runc() {
        return skip("rootcell's wording");
    }
    let ctx = Ctx::new("typeerr");
    let mut b = ctx.bundle();
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": "lots", "soft": 1}]);
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a string rlimit");
    let want = format!(
        "{}: process.rlimits[0].hard: invalid type: string \"lots\", expected u64 at line ",
        b.config_path().display()
    );
    assert!(
        out.stderr.contains(&want),
        "want {want:?} in:\n{}",
        out.stderr
    );
    ctx.assert_clean();
}

#[test]
fn relative_mount_destination_is_rejected() {
    if runtime_is_runc() {
        // runc 1.1 only warns ("mount destination relative/dir is not
        // absolute") and mounts it relative to the rootfs.
        return skip("relative mount destination");
    }
    let ctx = Ctx::new("relmount");
    let mut b = ctx.bundle();
    b.add_mount(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with a relative mount destination");
    assert_mentions(&out, &["mounts[", "relative/dir"]);
    assert!(!b.rootfs().join("relative").exists());
    ctx.assert_clean();
}

#[test]
fn nonexistent_root_path_is_an_error() {
    let ctx = Ctx::new("noroot");
    let mut b = ctx.bundle();
    b.config["root"]["path"] = json!("no-such-rootfs");
    let id = ctx.id("c");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create with missing root.path");
    assert_mentions(&out, &["no-such-rootfs", "root.path"]);
    assert!(
        !b.path.join("no-such-rootfs").exists(),
        "runtime created root.path"
    );
    ctx.assert_clean();

    let id = ctx.id("run");
    ctx.run(&id, &b).assert_fail("run with missing root.path");
    ctx.assert_clean();
}

#[test]
fn missing_executable_fails_run_or_start() {
    let ctx = Ctx::new("noexe");
    let mut b = ctx.bundle();
    b.args(&["/no/such/binary"]);
    let id = ctx.id("run");
    let out = ctx.run(&id, &b);
    out.assert_fail("run of a missing executable");
    assert_mentions(&out, &["/no/such/binary"]);
    ctx.assert_clean();

    // With create + start the error may surface at either step, but the
    // container must never be reported running and delete cleans up.
    let id = ctx.id("cs");
    let created = ctx.create(&id, &b, &[]);
    if created.ok() {
        ctx.rt(&["start", &id])
            .assert_fail("start of a missing executable");
        if let Some(st) = ctx.try_state(&id) {
            assert_ne!(st["status"], "running", "{st}");
        }
        ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    }
    ctx.assert_clean();
}

#[test]
fn unknown_signal_is_an_error_and_container_survives() {
    let ctx = Ctx::new("badsig");
    let mut b = ctx.bundle();
    b.args(&["sleep", "100"]);
    let id = ctx.id("c");
    let pid = ctx.create_start(&id, &b);
    for sig in ["SIGFOO", "FOO", "999", "-1", "SIGKILLX"] {
        let out = ctx.rt(&["kill", &id, sig]);
        out.assert_fail(&format!("kill with signal {sig:?}"));
        assert_mentions(&out, &[sig]);
    }
    assert!(pid_alive(pid), "container died from an invalid kill");
    assert_eq!(ctx.status(&id), "running");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn start_twice_fails_and_container_keeps_running() {
    let ctx = Ctx::new("start2");
    let mut b = ctx.bundle();
    b.sh("echo once >> /tmp/count; exec sleep 100");
    let id = ctx.id("c");
    let pid = ctx.create_start(&id, &b);
    wait_for_file(&b.rootfs().join("tmp/count"));
    ctx.rt(&["start", &id]).assert_fail("second start");
    assert!(pid_alive(pid));
    assert_eq!(ctx.status(&id), "running");
    assert_eq!(read_file(&b.rootfs().join("tmp/count")), "once\n");
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
    ctx.assert_clean();
}

#[test]
fn unknown_command_and_flag_are_errors() {
    let ctx = Ctx::new("badcmd");
    ctx.rt(&["frobnicate"]).assert_fail("unknown command");
    ctx.rt(&["state", "--no-such-flag", "x"])
        .assert_fail("unknown flag");
    ctx.rt(&["list", "--format", "yaml"])
        .assert_fail("unknown list format");
    ctx.assert_clean();
}

/// `ociVersion` must be a semantic version with major version 1: what
/// runc, podman, containerd and old Docker configs send runs; anything
/// else fails naming the field, with nothing left behind.
#[test]
fn oci_version_must_be_a_1_x_semantic_version() {
    let ctx = Ctx::new("ociversion");
    let mut b = ctx.bundle();
    for (n, version) in ["1.0.2-dev", "1.1.0", "1.0.0-rc5", "1.2.0"]
        .iter()
        .enumerate()
    {
        b.config["ociVersion"] = json!(version);
        let id = ctx.id(&format!("ok{n}"));
        ctx.run(&id, &b)
            .assert_ok(&format!("run with ociVersion {version:?}"));
    }
    if runtime_is_runc() {
        // runc 1.1 does not check ociVersion.
        return skip("invalid ociVersion");
    }
    for (n, version) in ["", "2.0.0", "banana", "1.0"].iter().enumerate() {
        b.config["ociVersion"] = json!(version);
        let id = ctx.id(&format!("bad{n}"));
        let out = ctx.create(&id, &b, &[]);
        out.assert_fail(&format!("create with ociVersion {version:?}"));
        assert!(
            out.stderr.contains(&format!("ociVersion: {version:?}")),
            "{}",
            out.stderr
        );
        assert!(ctx.try_state(&id).is_none(), "{version:?}: state left");
    }
    // A config without the field at all.
    b.config.as_object_mut().unwrap().remove("ociVersion");
    let id = ctx.id("none");
    let out = ctx.create(&id, &b, &[]);
    out.assert_fail("create without ociVersion");
    assert_mentions(&out, &["ociVersion"]);
    ctx.assert_clean();
}

/// Errors as engines read them: `rootcell: error: …` on stderr and, with
/// `--log FILE`, an error-level record in the file: logrus' JSON
/// (`{"level":"error","msg":…,"time":…}`, which containerd reads back)
/// with `--log-format json`, its text form (`level=error msg=…`) otherwise.
#[test]
fn errors_go_to_stderr_and_to_the_log_at_level_error() {
    let ctx = Ctx::new("errlog");
    let empty = ctx.dir.join("empty-bundle");
    fs::create_dir_all(&empty).unwrap();
    let json_log = ctx.dir.join("log.json");
    let text_log = ctx.dir.join("log.txt");
    let create = |log: &std::path::Path, format: &str| {
        ctx.rt(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "create",
            "--bundle",
            empty.to_str().unwrap(),
            "errlog-c",
        ])
    };
    let out = create(&json_log, "json");
    out.assert_fail("create from a bundle without config.json");
    if !runtime_is_runc() {
        // runc prints "runc create failed: …".
        assert!(
            out.stderr.starts_with("rootcell: error: "),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("config.json"), "{}", out.stderr);
    }
    let records: Vec<serde_json::Value> = lines(&read_file(&json_log))
        .iter()
        .map(|l| parse_json(l, "JSON log record"))
        .collect();
    let error = records
        .iter()
        .find(|r| r["level"] == "error")
        .unwrap_or_else(|| panic!("no error record in {records:?}"));
    assert!(
        error["msg"].as_str().unwrap_or("").contains("config.json"),
        "{error}"
    );
    assert!(error["time"].is_string(), "{error}");

    create(&text_log, "text").assert_fail("create, text log");
    let text = read_file(&text_log);
    let line = lines(&text)
        .into_iter()
        .find(|l| l.contains("level=error"))
        .unwrap_or_else(|| panic!("no level=error line in {text}"));
    assert!(line.contains("msg=\""), "{line}");
    assert!(line.contains("config.json"), "{line}");

    // Without --log, the error is still on stderr (with the id).
    let out = ctx.rt(&["delete", "errlog-nothere"]);
    out.assert_fail("delete of a missing container");
    if !runtime_is_runc() {
        assert!(
            out.stderr.starts_with("rootcell: error: ") && out.stderr.contains("errlog-nothere"),
            "{}",
            out.stderr
        );
    }
    ctx.assert_clean();
}

/// `delete --force` of a container that does not exist succeeds and says
/// nothing, as runc does (the containerd shim deletes this way on every
/// cleanup); without `--force` it fails naming the id.
#[test]
fn forced_delete_of_a_missing_container_succeeds_silently() {
    let ctx = Ctx::new("delforce");
    let id = "delforce-nothere";
    let out = ctx.rt(&["delete", "--force", id]);
    out.assert_ok("delete --force of a missing container");
    assert_eq!(out.stdout, "", "stdout");
    assert_eq!(out.stderr, "", "stderr");
    let out = ctx.rt(&["delete", id]);
    out.assert_fail("delete of a missing container");
    assert_mentions(&out, &[id]);
    // A container deleted twice: the second, forced, is a no-op too.
    let b = ctx.bundle();
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    ctx.rt(&["delete", "--force", &id])
        .assert_ok("delete --force");
    let out = ctx.rt(&["delete", "--force", &id]);
    out.assert_ok("second delete --force");
    assert_eq!(out.stderr, "", "stderr");
    ctx.assert_clean();
}

/// A reader that stops early (`rootcell state ID | head -c 1`, as a
/// script polling for a status does) is not an error: state, list, ps and
/// features print what fits and exit 0, without a panic.
#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    let ctx = Ctx::new("epipe");
    let mut b = ctx.bundle();
    b.args(&["sleep", "30"]);
    let id = ctx.id("c");
    ctx.create(&id, &b, &[]).assert_ok("create");
    let bin = ctx.bin.to_string_lossy().into_owned();
    let root = ctx.state_dir().to_string_lossy().into_owned();
    for args in [
        format!("state {id}"),
        "list".to_owned(),
        "list --format json".to_owned(),
        format!("ps --format json {id}"),
        "features".to_owned(),
    ] {
        // The reader exits at once; `sleep` lets it go before the write.
        let script = format!(
            "exec 3>&1; {{ sleep 0.2; '{bin}' --root '{root}' {args} 2>&3; echo \"rc=$?\" >&3; }} | true"
        );
        let out = exec(
            std::process::Command::new("sh").arg("-c").arg(&script),
            std::time::Duration::from_secs(20),
        );
        assert!(out.stdout.contains("rc=0"), "{args}: {}", out.all());
        assert!(!out.all().contains("panicked"), "{args}: {}", out.all());
    }
    ctx.rt(&["delete", "--force", &id]).assert_ok("delete");
}
