//! Every fuzz target over its seeds (the fixtures) and over every input a
//! fuzzer crashed on (`fuzz/regressions/<target>/`): the fuzzers' smoke test
//! and regression tests, on stable, in the ordinary suite.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Files under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn every_target_takes_every_fixture_and_every_past_crash() {
    let fixtures = files(&root().join("fixtures"));
    assert!(
        fixtures.len() > 20,
        "the fixtures are the seeds: {} found",
        fixtures.len()
    );
    for (name, target) in fuzzing::TARGETS {
        let regressions = files(&root().join("fuzz/regressions").join(name));
        for input in fixtures.iter().chain(&regressions) {
            let bytes = fs::read(input).unwrap_or_default();
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}
