//! Links the functions a container's start runs next to each other, and a
//! static-pie binary with packed relocations.
//!
//! The kernel maps a binary's code in 64 KiB fault-around windows, so the
//! resident size of every rootcell process (runtime, stage 1, init) follows
//! how scattered the code it runs is, not how much of it there is: with the
//! linker's default order a `run` touches about 1.2 MB of functions spread
//! over nearly all of the 6.9 MB of `.text`, and maps ~5 MB. `hot-symbols.txt`
//! lists the functions a container's start executes, then those the other
//! commands run (made by `scripts/hot-symbols`, which records them with
//! uprobes); lld's `--symbol-ordering-file` places them first, together, in
//! that order. Names it does not find (code changed since the list
//! was made, or a build whose symbol names differ) are ignored: the binary
//! is then only as scattered as before, never wrong. The release profile
//! uses fat LTO because ThinLTO's `.llvm.<hash>` suffixes on promoted local
//! functions change with every edit and made most of the list miss.
//!
//! The ordering is lld's option: it is passed only where rustc links with
//! lld by default (x86_64-unknown-linux-gnu since Rust 1.90), since GNU ld
//! refuses it; `ROOTCELL_SYMBOL_ORDER=0` leaves the linker's order alone
//! (for a linker chosen otherwise).

fn main() {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=ROOTCELL_SYMBOL_ORDER");
    let off = std::env::var_os("ROOTCELL_SYMBOL_ORDER").is_some_and(|v| v == "0");
    if !off && links_with_lld() {
        order_symbols();
    }
    packed_relocations();
}

/// Whether this build links with lld, which the ordering needs: rustc's
/// default for x86_64-unknown-linux-gnu (since 1.90); for
/// x86_64-unknown-linux-musl, whose default is the C compiler's GNU ld, the
/// toolchain's own lld is chosen here (`use_toolchain_lld`).
fn links_with_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            // "rustc 1.95.0 (…)"
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let version = text.split_whitespace().nth(1)?.to_owned();
            version.split('.').nth(1)?.parse::<u32>().ok()
        });
    let lld = match target.as_str() {
        "x86_64-unknown-linux-gnu" => minor.is_some_and(|m| m >= 90),
        "x86_64-unknown-linux-musl" => use_toolchain_lld(&rustc),
        _ => false,
    };
    if !lld {
        println!(
            "cargo:warning=hot-symbols.txt not used: rustc does not link {target} with lld (the binary only uses more memory)"
        );
    }
    lld
}

/// Makes the C compiler that links the musl target use the toolchain's
/// lld (`rust-lld` behind the `gcc-ld/ld.lld` shim, as rustc itself does
/// for the gnu target), when the toolchain has it.
fn use_toolchain_lld(rustc: &std::ffi::OsStr) -> bool {
    let host = std::env::var("HOST").unwrap_or_default();
    let sysroot = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let Some(sysroot) = sysroot else {
        return false;
    };
    let shim_dir = std::path::Path::new(&sysroot)
        .join("lib/rustlib")
        .join(host)
        .join("bin/gcc-ld");
    if !shim_dir.join("ld.lld").exists() {
        return false;
    }
    println!("cargo:rustc-link-arg-bins=-B{}", shim_dir.display());
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    true
}

fn order_symbols() {
    let list = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("hot-symbols.txt");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

fn packed_relocations() {
    // A static-pie binary relocates itself at every start: with RELA
    // relocations that reads all of `.rela.dyn` (400 KB, nearly all of it
    // relative relocations), which stays resident. RELR packs them into a
    // bitmap of a few KB; the static-pie start code linked in applies them
    // (musl's since 1.2.4, glibc's since 2.36; the host's libc does not
    // matter). Dynamic builds keep RELA: there RELR would need glibc 2.36
    // on the host.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
