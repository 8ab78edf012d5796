//! The sandbox's system configuration: `lo` brought up in a fresh network
//! namespace (`rootcell::process::sys::loopback_up`), and the generated
//! `/etc` files (`rootcell::sandbox::system_config`) as glibc reads them.
//!
//! These call the library directly; the whole-sandbox checks (`ip link`
//! inside `rootcell sandbox`, `/etc/passwd` naming the user) live with the
//! sandbox's own tests. Nothing here touches the host's network namespace
//! or its mounts: the network test works in a namespace of its own (checked
//! before anything is changed), the `/etc` test in `unshare --mount`.

mod common;

use common::*;
use rootcell::sandbox::layout::SANDBOX_HOSTNAME;
use rootcell::sandbox::system_config::{self, Identity};
use std::fs;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

/// `ip -o link show lo` in the calling thread's network namespace.
fn ip_link_lo() -> String {
    let out = exec(
        Command::new("ip").args(["-o", "link", "show", "lo"]),
        CMD_TIMEOUT,
    );
    out.assert_ok("ip link show lo");
    out.stdout
}

/// The `<FLAG,FLAG>` list of an `ip -o link` line.
fn link_flags(line: &str) -> Vec<String> {
    let start = line.find('<').expect("flags in ip link output") + 1;
    let end = line[start..].find('>').expect("end of flags") + start;
    line[start..end].split(',').map(str::to_owned).collect()
}

/// A datagram sent to 127.0.0.1 comes back: what a program in the
/// sandbox needs lo for.
fn udp_loopback_round_trip() -> std::io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    a.send_to(b"rootcell", b.local_addr()?)?;
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf)?;
    assert_eq!(&buf[..n], b"rootcell");
    assert_eq!(from, a.local_addr()?);
    Ok(())
}

#[test]
fn loopback_up_brings_lo_up_in_a_new_network_namespace() {
    skip_unless!(command_exists("ip"), "ip (iproute2) is not installed");
    let host_net = host_ns("net");
    let host_net_in_thread = host_net.clone();
    // A thread of our own: unshare(CLONE_NEWNET) moves only the calling
    // thread, and the commands it spawns inherit its namespace. The test
    // harness's other threads stay in the host's namespace.
    let outcome = std::thread::spawn(move || -> Result<(), String> {
        if let Err(e) = rootcell::process::sys::unshare(libc::CLONE_NEWNET) {
            return Err(format!("unshare(CLONE_NEWNET): {e}"));
        }
        let mine = readlink("/proc/thread-self/ns/net");
        // Never change the host's lo: stop unless we really are elsewhere.
        assert_ne!(
            mine, host_net_in_thread,
            "still in the host's network namespace"
        );

        let before = ip_link_lo();
        assert!(
            !link_flags(&before).iter().any(|f| f == "UP"),
            "lo of a new namespace should start down: {before}"
        );
        let err = udp_loopback_round_trip().expect_err("127.0.0.1 reachable while lo is down");
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");

        rootcell::process::sys::loopback_up().expect("loopback_up");
        let after = ip_link_lo();
        let flags = link_flags(&after);
        assert!(
            flags.iter().any(|f| f == "UP") && flags.iter().any(|f| f == "LOWER_UP"),
            "lo should be up: {after}"
        );
        udp_loopback_round_trip().expect("UDP over 127.0.0.1 once lo is up");

        // Again: lo is up already, nothing to do, no error.
        rootcell::process::sys::loopback_up().expect("second loopback_up");
        assert_eq!(link_flags(&ip_link_lo()), flags);
        Ok(())
    })
    .join()
    .expect("network namespace thread panicked");
    if let Err(why) = outcome {
        skip(&why);
        return;
    }
    // The test process (its main thread: `/proc/self`) is still where it was.
    assert_eq!(host_ns("net"), host_net);
}

#[test]
fn generated_etc_files_answer_glibc_lookups() {
    skip_unless!(
        command_exists("getent"),
        "getent (libc-bin) is not installed"
    );
    let dir = TempDir::new("sysconf-etc");
    let id = Identity::new(4242, 4343, "sandboxer", "sandboxers", "/home/sandboxer")
        .expect("valid identity");
    let files = system_config::etc_files(&id, SANDBOX_HOSTNAME);
    // A bind needs its target: the host must have each file.
    let missing: Vec<&str> = files
        .iter()
        .map(|f| f.name)
        .filter(|name| !std::path::Path::new("/etc").join(name).is_file())
        .collect();
    skip_unless!(
        missing.is_empty(),
        "the host lacks /etc/{}",
        missing.join(", /etc/")
    );
    let mut binds = String::new();
    for f in &files {
        let path = dir.path().join(f.name);
        fs::write(&path, &f.contents).expect("write generated file");
        binds += &format!("mount --bind {} /etc/{} && ", path.display(), f.name);
    }
    let mounts_before = host_mount_points();
    // glibc reads the files at their fixed paths: bind them over /etc in a
    // mount namespace of the shell's own, then ask glibc's NSS.
    let out = sh_in_private_mount_ns(&format!(
        "{binds} echo '## passwd' && getent passwd && echo '## group' && getent group && \
         echo '## user' && getent passwd 4242 && getent passwd sandboxer && getent group 4343 && \
         echo '## hosts' && getent hosts {SANDBOX_HOSTNAME} && getent hosts localhost && \
         echo '## missing' && ! getent passwd {uid} && ! getent hosts example.org && echo done",
        uid = UNPRIV_UID,
    ));
    out.assert_ok("getent with the generated files");
    assert_eq!(
        mounts_before,
        host_mount_points(),
        "the test's mounts changed"
    );
    let section = |name: &str| -> Vec<String> {
        let text = out
            .stdout
            .split(&format!("## {name}\n"))
            .nth(1)
            .unwrap_or("");
        text.split("\n##")
            .next()
            .unwrap_or("")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    // Exactly root, the user and nobody: files only (no systemd, no LDAP,
    // not the host's users).
    let users: Vec<String> = section("passwd")
        .iter()
        .map(|l| l.split(':').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(users, ["root", "sandboxer", "nobody"], "{}", out.stdout);
    let groups: Vec<String> = section("group")
        .iter()
        .map(|l| l.split(':').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(groups, ["root", "sandboxers", "nogroup"], "{}", out.stdout);
    let user = section("user");
    assert_eq!(
        user,
        [
            "sandboxer:x:4242:4343:sandboxer:/home/sandboxer:/bin/bash",
            "sandboxer:x:4242:4343:sandboxer:/home/sandboxer:/bin/bash",
            "sandboxers:x:4343:",
        ],
        "{}",
        out.stdout
    );
    let hosts = section("hosts");
    assert_eq!(hosts.len(), 2, "{}", out.stdout);
    assert!(
        hosts[0].starts_with("127.0.0.1") && hosts[0].contains(SANDBOX_HOSTNAME),
        "{hosts:?}"
    );
    assert!(hosts[1].contains("localhost"), "{hosts:?}");
    assert!(out.stdout.trim_end().ends_with("done"), "{}", out.stdout);
}
