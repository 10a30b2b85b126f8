//! `haproxide check pull` and `check process`: how long ago the daemon last
//! finished a round, from the small file it rewrites each time (`pull`:
//! `<dst-dir>.last-round`, as it delivers a round into the spool;
//! `process`: `<src-dir>.last-delivered`, once every sink confirmed one).
//! WARNING or CRITICAL past the thresholds; UNKNOWN while there is no such
//! file (no round finished yet) or it cannot be read.

use std::path::Path;
use std::time::SystemTime;

use super::{Outcome, Perfdata, State};

/// Checks the record `file` of what `daemon` did, at `now`.
pub fn check(name: &'static str, daemon: &str, file: &Path, warning: f64, critical: f64, now: SystemTime) -> Outcome {
    let (round, modified) =
        match std::fs::read_to_string(file).and_then(|round| Ok((round, std::fs::metadata(file)?.modified()?))) {
            Ok(read) => read,
            Err(error) => {
                return Outcome::unknown(
                    name,
                    format!(
                        "cannot read {} ({daemon} has finished no round yet?): {error}",
                        file.display()
                    ),
                );
            }
        };
    let age = now.duration_since(modified).unwrap_or_default().as_secs_f64().floor();
    Outcome {
        name,
        state: State::of(age, Some(warning), Some(critical)),
        summary: format!("{daemon} finished its last round, {}, {age} s ago", round.trim()),
        perfdata: vec![Perfdata {
            label: "age",
            value: age,
            unit: "s",
            warning: Some(warning),
            critical: Some(critical),
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_record_s_age_sets_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("incoming.last-round");
        let missing = check("PULL", "pull", &file, 60.0, 300.0, SystemTime::now());
        assert_eq!(missing.state, State::Unknown);
        assert!(missing.summary.contains("pull has finished no round yet?"), "{missing}");
        std::fs::write(&file, "1700000000.2\n").unwrap();
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        let at = |seconds| {
            check(
                "PULL",
                "pull",
                &file,
                60.0,
                300.0,
                written + Duration::from_secs(seconds),
            )
        };
        assert_eq!(
            at(10).to_string(),
            "PULL OK - pull finished its last round, 1700000000.2, 10 s ago | age=10s;60;300;0"
        );
        assert_eq!(at(61).state, State::Warning);
        assert_eq!(at(301).state, State::Critical);
    }
}
