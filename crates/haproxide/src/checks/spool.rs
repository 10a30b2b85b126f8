//! `haproxide check spool`: how many rounds wait in `process`'s `src-dir`,
//! and how old the oldest is, against thresholds. haproxystats' queue check
//! counted directories: OK up to 60, WARNING up to 120, else CRITICAL;
//! those are the defaults. A round's age comes from its name (the epoch
//! second `pull` started it).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Outcome, Perfdata, State};
use crate::stats::spool::round_epoch;

/// The check's name in its status line.
pub const NAME: &str = "SPOOL";

/// Thresholds: each crossed when the figure is above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Rounds waiting: WARNING above.
    pub warning: f64,
    /// Rounds waiting: CRITICAL above.
    pub critical: f64,
    /// The oldest round's age in seconds: WARNING above.
    pub age_warning: f64,
    /// The oldest round's age in seconds: CRITICAL above.
    pub age_critical: f64,
}

/// Checks the spool `src_dir` at `now`.
pub fn check(src_dir: &Path, thresholds: Thresholds, now: SystemTime) -> Outcome {
    let entries = match std::fs::read_dir(src_dir) {
        Ok(entries) => entries,
        Err(error) => return Outcome::unknown(NAME, format!("cannot read {}: {error}", src_dir.display())),
    };
    let mut epochs = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => return Outcome::unknown(NAME, format!("cannot read {}: {error}", src_dir.display())),
        };
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if let (true, Some(epoch)) = (is_dir, entry.file_name().to_str().and_then(round_epoch)) {
            epochs.push(epoch);
        }
    }
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let age = epochs.iter().min().map(|oldest| now.saturating_sub(*oldest) as f64);
    let rounds = epochs.len() as f64;
    let state =
        State::of(rounds, Some(thresholds.warning), Some(thresholds.critical)).max(age.map_or(State::Ok, |age| {
            State::of(age, Some(thresholds.age_warning), Some(thresholds.age_critical))
        }));
    let mut summary = format!(
        "{} round{} waiting in {}",
        epochs.len(),
        if epochs.len() == 1 { "" } else { "s" },
        src_dir.display()
    );
    if let Some(age) = age {
        summary.push_str(&format!(", the oldest {age} s old"));
    }
    Outcome {
        name: NAME,
        state,
        summary,
        perfdata: vec![
            Perfdata {
                label: "rounds",
                value: rounds,
                unit: "",
                warning: Some(thresholds.warning),
                critical: Some(thresholds.critical),
            },
            Perfdata {
                label: "oldest_age",
                value: age.unwrap_or(0.0),
                unit: "s",
                warning: Some(thresholds.age_warning),
                critical: Some(thresholds.age_critical),
            },
        ],
    }
}

/// `src-dir`: `given`, else `[process] src-dir` of the configuration files.
pub fn src_dir(given: Option<PathBuf>, file: Option<&Path>, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(given) = given {
        return Ok(given);
    }
    let config = crate::config::load_checked(file, dir, crate::config::Program::Process)?;
    Ok(crate::stats::pipeline::configured_src_dir(&config)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const THRESHOLDS: Thresholds = Thresholds {
        warning: 1.0,
        critical: 2.0,
        age_warning: 60.0,
        age_critical: 300.0,
    };

    #[test]
    fn rounds_and_the_oldest_age_set_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let at = |seconds: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let outcome = check(dir.path(), THRESHOLDS, at(1_700_000_100));
        assert_eq!(outcome.state, State::Ok);
        assert!(
            outcome.to_string().ends_with("| rounds=0;1;2;0 oldest_age=0s;60;300;0"),
            "{outcome}"
        );
        std::fs::create_dir(dir.path().join("1700000000")).unwrap();
        std::fs::create_dir(dir.path().join(".removing-1699999000")).unwrap();
        std::fs::write(dir.path().join("1600000000"), "a file, not a round").unwrap();
        assert_eq!(check(dir.path(), THRESHOLDS, at(1_700_000_010)).state, State::Ok);
        assert_eq!(check(dir.path(), THRESHOLDS, at(1_700_000_061)).state, State::Warning);
        std::fs::create_dir(dir.path().join("1700000000.1")).unwrap();
        let two = check(dir.path(), THRESHOLDS, at(1_700_000_010));
        assert_eq!(two.state, State::Warning);
        assert!(two.summary.starts_with("2 rounds waiting in "), "{two}");
        assert!(two.summary.ends_with(", the oldest 10 s old"), "{two}");
        std::fs::create_dir(dir.path().join("1700000005")).unwrap();
        assert_eq!(check(dir.path(), THRESHOLDS, at(1_700_000_010)).state, State::Critical);
        let missing = check(&dir.path().join("nowhere"), THRESHOLDS, at(0));
        assert_eq!(missing.state, State::Unknown);
        assert!(missing.summary.starts_with("cannot read "), "{missing}");
    }
}
