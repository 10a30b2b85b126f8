//! Prometheus' own checker of the text exposition: `promtool check metrics`
//! (Debian 12's, fetched once into the cache by `scripts/promtool.sh`, or
//! `$PROMTOOL_BIN`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// promtool: `$PROMTOOL_BIN`, or where `scripts/promtool.sh` puts it.
pub fn promtool_binary() -> PathBuf {
    crate::cached_binary("PROMTOOL_BIN", "prometheus-2.42/usr/bin/promtool")
}

/// Runs `promtool check metrics` over `exposition`: its exit status is
/// success, and what it printed (its lint findings).
pub fn promtool_check_metrics(exposition: &str) -> (bool, String) {
    let mut child = Command::new(promtool_binary())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error} (bash scripts/promtool.sh fetches it)",
                promtool_binary().display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool's stdin");
    let output = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}
