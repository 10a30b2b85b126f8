//! The systemd units of `dist/systemd`, checked by systemd's own tools:
//! `systemd-analyze verify` (with `ExecStart=` pointing at the binary under
//! test and its man pages generated, so that every reference resolves as it
//! does once the package is installed) and the offline security review,
//! whose exposure must stay low.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::copy_dir;

const BINARY: &str = env!("CARGO_BIN_EXE_haproxide");

/// Every unit, the template as one of its instances too.
const UNITS: [&str; 7] = [
    "haproxide-pull.service",
    "haproxide-process.service",
    "haproxide-agent.service",
    "haproxide-agent@.service",
    "haproxide-agent@web.service",
    "haproxide-backends.service",
    "haproxide-logs.service",
];

/// The units and their drop-in in a directory of their own, `ExecStart=`
/// on the binary under test, and `man/man1` with the man pages.
fn staged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/systemd");
    copy_dir(&units, dir.path());
    for path in files(dir.path()) {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("/usr/bin/haproxide", BINARY)).unwrap();
    }
    let status = Command::new(BINARY)
        .args(["generate", "man"])
        .arg(dir.path().join("man/man1"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn analyze(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .env("MANPATH", dir.join("man"))
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn systemd_analyze_verify_finds_nothing_to_say_about_any_unit() {
    let dir = staged();
    let (success, said) = analyze(dir.path(), &[&["verify"][..], &UNITS].concat());
    assert!(success, "{said}");
    assert_eq!(said, "");
    // The check sees the drop-in every unit shares: a bad key there is named.
    let drop_in = dir.path().join("haproxide-.service.d/hardening.conf");
    let text = std::fs::read_to_string(&drop_in).unwrap();
    std::fs::write(&drop_in, format!("{text}Bogus=1\n")).unwrap();
    let (_, said) = analyze(dir.path(), &["verify", "haproxide-pull.service"]);
    assert!(said.contains("hardening.conf:"), "{said}");
    assert!(said.contains("Unknown key 'Bogus' in section [Service]"), "{said}");
}

#[test]
fn every_unit_s_security_exposure_stays_at_2_or_below() {
    let dir = staged();
    for unit in UNITS.iter().filter(|unit| !unit.ends_with("@.service")) {
        let (success, said) = analyze(dir.path(), &["security", "--offline=true", unit]);
        assert!(success, "{said}");
        let exposure: f64 = said
            .lines()
            .find_map(|line| line.split(&format!("Overall exposure level for {unit}: ")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no overall exposure in\n{said}"))
            .parse()
            .unwrap();
        eprintln!("{unit}: exposure {exposure}");
        assert!(exposure <= 2.0, "{unit}: {exposure}\n{said}");
    }
}
