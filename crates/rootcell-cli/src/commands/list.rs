//! `rootcell list`: runc's table, JSON, or bare ids.

use anyhow::Result;
use rootcell::container::Runtime;

use super::emit;
use crate::cli::ListFormat;

pub fn print(runtime: &Runtime, format: ListFormat, quiet: bool) -> Result<()> {
    let containers = runtime.list()?;
    // Printed at once, and a reader that stops early (`| head`) is not an
    // error (`emit`).
    let mut out = String::new();
    if quiet {
        for (st, _) in &containers {
            out += &format!("{}\n", st.id);
        }
        return emit(&out);
    }
    match format {
        ListFormat::Json => {
            let items: Vec<_> = containers
                .iter()
                .map(|(st, status)| st.oci_json(*status))
                .collect();
            out = serde_json::to_string(&items)? + "\n";
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|(st, status)| {
                    let pid = if *status == rootcell::state::Status::Stopped {
                        0
                    } else {
                        st.pid
                    };
                    [
                        st.id.clone(),
                        pid.to_string(),
                        status.to_string(),
                        st.bundle.display().to_string(),
                        st.created.clone(),
                        st.owner.clone(),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = header.clone().map(|h| h.len());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                out += line.join("   ").trim_end();
                out.push('\n');
            }
        }
    }
    emit(&out)
}
