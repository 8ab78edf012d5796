//! `view_ls STATE_ROOT CONTAINER DIR`: lists a directory of a container
//! through `rootcell::view`, with each entry's docker `PathStat`, and
//! prints where every symlink in it leads inside the container.
//!
//! `cargo run --example view_ls -- /run/rootcell c1 /etc` (as root, or as
//! the owner of a rootless container with its `--root`).

use std::io::Read;
use std::path::{Path, PathBuf};

use rootcell::container::Runtime;
use rootcell::view::{self, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, id, dir] = &args[..] else {
        return Err("usage: view_ls STATE_ROOT CONTAINER DIR".into());
    };
    let runtime = Runtime {
        root: PathBuf::from(root),
        rootless: !rustix::process::geteuid().is_root(),
        // A view starts no container process: no binary to protect.
        binary: None,
    };
    // Still single-threaded: a rootless caller joins a user namespace.
    view::userns::enter_for(&runtime, id)?;
    let view = View::open(&runtime, id)?;
    let dir = PathBuf::from(dir);
    let lines = view.run(move |root| -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        for name in root.read_dir(&dir)? {
            let path = dir.join(&name);
            let st = root.path_stat(&path)?;
            let mut line = format!("{:>10} {} {}", st.size, st.mtime, st.name);
            if !st.link_target.is_empty() {
                line += &format!(" -> {}", st.link_target);
            }
            lines.push(line);
        }
        // Files are read through the view, never by a host path.
        if let Ok(mut f) = root.open(Path::new("/etc/hostname")) {
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            lines.push(format!("(hostname file: {})", s.trim()));
        }
        Ok(lines)
    })??;
    view.close()?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
