//! `rootcell ps`: the container's pids as JSON, or the lines of the host's
//! `ps` for them, as runc prints them.

use std::process::Command;

use anyhow::{bail, Context, Result};
use rootcell::container::Runtime;

use crate::cli::ListFormat;

pub fn print(runtime: &Runtime, format: ListFormat, args: &[String]) -> Result<()> {
    let (id, ps_args) = args.split_first().context("ps needs a container id")?;
    let pids = runtime.ps(id)?;
    if format == ListFormat::Json {
        return super::emit(&(serde_json::to_string(&pids)? + "\n"));
    }
    let ps_args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}{}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    super::emit(&filter(&String::from_utf8_lossy(&out.stdout), &pids)?)
}

/// The header and the lines whose PID column (found from the header) is
/// one of `pids`.
fn filter(table: &str, pids: &[i32]) -> Result<String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|t| t == "PID") else {
        bail!("ps: no PID column in its output (header {header:?})");
    };
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let pid: i32 = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("ps: no pid in column {} of {line:?}", column + 1))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_containers_lines() {
        let table = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 1\nuser  420    42 sh\n";
        assert_eq!(
            filter(table, &[42]).unwrap(),
            "UID   PID  PPID CMD\nroot   42     1 sleep 1\n"
        );
        assert_eq!(filter(table, &[]).unwrap(), "UID   PID  PPID CMD\n");
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
