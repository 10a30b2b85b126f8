//! `manifest.json`, the record `pull` leaves in every round it delivers: which
//! targets it asked, which answered, which failed and why. `process` reads it
//! to know when a round is partial.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A round's manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The round's name (`1700000000`, `1700000000.1`).
    #[serde(default)]
    pub round: String,
    /// The load balancer's host name (`[pull] hostname`, else the
    /// system's); empty in the manifests of pulls before it was recorded.
    #[serde(default)]
    pub host: String,
    /// The epoch second the round started.
    #[serde(default)]
    pub epoch: u64,
    /// Every target asked, in the order asked.
    #[serde(default)]
    pub targets: Vec<TargetOutcome>,
    /// The file names (see [`super::info_file`]) of the targets that failed.
    pub failed: Vec<String>,
    /// How long the round took.
    #[serde(default)]
    pub wall_clock_seconds: f64,
    /// A cluster's round ([`crate::stats::cluster`]): the hosts whose
    /// rounds it adds up; empty in a load balancer's round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// A cluster's round: the hosts it waited for in vain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// What became of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetOutcome {
    /// The name its files carry.
    pub name: String,
    /// The socket address (`/run/haproxy/admin.sock`, `tcp://127.0.0.1:9999`).
    pub endpoint: String,
    /// Whether both replies arrived whole.
    pub ok: bool,
    /// Why not, when not.
    pub error: Option<String>,
}

impl Manifest {
    /// The manifest as pull writes it: pretty JSON and a final newline.
    pub fn to_text(&self) -> String {
        // A struct of strings, numbers and lists always serialises.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a manifest; the error says why the file is not one.
    pub fn read(path: &Path) -> Result<Manifest, String> {
        let bytes = std::fs::read(path).map_err(|error| format!("cannot read: {error}"))?;
        Manifest::parse(&bytes)
    }

    /// Reads a manifest's bytes; the error says why they are not one.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|error| format!("not a pull manifest: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_before_and_read_back() {
        let manifest = Manifest {
            round: "1700000000.1".into(),
            host: "lb1.example".into(),
            epoch: 1_700_000_000,
            targets: vec![
                TargetOutcome {
                    name: "a.sock".into(),
                    endpoint: "/run/a.sock".into(),
                    ok: true,
                    error: None,
                },
                TargetOutcome {
                    name: "b.sock".into(),
                    endpoint: "/run/b.sock".into(),
                    ok: false,
                    error: Some("show stat: connection refused".into()),
                },
            ],
            failed: vec!["b.sock".into()],
            wall_clock_seconds: 0.25,
            ..Manifest::default()
        };
        let text = manifest.to_text();
        assert_eq!(
            text,
            r#"{
  "round": "1700000000.1",
  "host": "lb1.example",
  "epoch": 1700000000,
  "targets": [
    {
      "name": "a.sock",
      "endpoint": "/run/a.sock",
      "ok": true,
      "error": null
    },
    {
      "name": "b.sock",
      "endpoint": "/run/b.sock",
      "ok": false,
      "error": "show stat: connection refused"
    }
  ],
  "failed": [
    "b.sock"
  ],
  "wall_clock_seconds": 0.25
}
"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), manifest);
        // Found by the manifest fuzz target: floats must read back exactly.
        let large = Manifest {
            wall_clock_seconds: 9e26,
            ..Manifest::default()
        };
        std::fs::write(&path, large.to_text()).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), large);
        // A manifest of a pull that did not record the host reads with none.
        std::fs::write(&path, r#"{"round": "1700000000", "failed": []}"#).unwrap();
        assert_eq!(Manifest::read(&path).unwrap().host, "");
        std::fs::write(&path, r#"{"round": 3}"#).unwrap();
        assert!(Manifest::read(&path).unwrap_err().starts_with("not a pull manifest: "));
    }
}
