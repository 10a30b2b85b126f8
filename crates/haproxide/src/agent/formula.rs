//! The weight formula of Datawave's HAProxy agent 1.0.0, bit for bit, and
//! the health report it reads (Datawave's `HealthBean` JSON).
//!
//! ```text
//! w = 1.0
//! w -= min(1.0, ConnectionUsagePercent / 100.0) * connection-usage-reduction
//! w -= SystemLoad * os-load-reduction
//! w -= swap-usage-reduction if SwapBytesUsed > 0
//! Status "drain": w = 0; otherwise w = max(0.01, w)
//! reply: trunc(w * 100)% <Status>, with " up" after "ready" and "drain"
//! (status words match without case)
//! ```
//!
//! The arithmetic is IEEE double as in Python, so `0.24000000000000005`
//! gives `24%` and `0.57` gives `56%`. Options close Datawave's gaps without
//! changing its default output: `clamp-negative-load` (its JVM reports -1
//! when it cannot measure, which raises the weight to 140%), `maxconn`, and
//! `absolute-weight` (HAProxy 3.1's `weight:N` instead of a percentage).

use haproxy::{AdminState, AgentReply, Health, Weight};
use serde_json::Value;

/// What a health endpoint reports.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// `Status`: `ready`, `drain`, or any word.
    pub status: String,
    /// `ConnectionUsagePercent` (may exceed 100).
    pub connection_usage_percent: f64,
    /// `SystemLoad`: 0 to 1, negative when unknown.
    pub system_load: f64,
    /// `SwapBytesUsed`.
    pub swap_bytes_used: f64,
}

impl HealthReport {
    /// Reads a `HealthBean` JSON object; numbers may be integers or floats.
    pub fn from_json(body: &[u8]) -> Result<HealthReport, String> {
        let value: Value = serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
        let object = value.as_object().ok_or("not a JSON object")?;
        let number = |key: &str| -> Result<f64, String> {
            match object.get(key) {
                Some(Value::Number(number)) => number.as_f64().ok_or_else(|| format!("{key}: not a number")),
                Some(other) => Err(format!("{key}: {other} is not a number")),
                None => Err(format!("{key} is missing")),
            }
        };
        let status = match object.get("Status") {
            Some(Value::String(status)) => status.clone(),
            Some(other) => return Err(format!("Status: {other} is not a string")),
            None => return Err("Status is missing".into()),
        };
        Ok(HealthReport {
            status,
            connection_usage_percent: number("ConnectionUsagePercent")?,
            system_load: number("SystemLoad")?,
            swap_bytes_used: number("SwapBytesUsed")?,
        })
    }
}

/// The formula's settings (`[agent]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    /// `connection-usage-reduction` (0.7).
    pub connection_usage_reduction: f64,
    /// `os-load-reduction` (0.4).
    pub os_load_reduction: f64,
    /// `swap-usage-reduction` (0.3).
    pub swap_usage_reduction: f64,
    /// `clamp-negative-load` (false): a negative load counts as 0.
    pub clamp_negative_load: bool,
    /// `maxconn`: adds `maxconn:N` to every computed reply.
    pub maxconn: Option<u32>,
    /// `absolute-weight`: replies `weight:trunc(w × N)` (at most 256) instead of a percentage.
    pub absolute_weight: Option<u32>,
}

impl Default for Formula {
    fn default() -> Formula {
        Formula {
            connection_usage_reduction: 0.7,
            os_load_reduction: 0.4,
            swap_usage_reduction: 0.3,
            clamp_negative_load: false,
            maxconn: None,
            absolute_weight: None,
        }
    }
}

impl Formula {
    /// The weight fraction for `report`, before the status is applied.
    pub fn weight(&self, report: &HealthReport) -> f64 {
        let load = if self.clamp_negative_load {
            report.system_load.max(0.0)
        } else {
            report.system_load
        };
        let mut weight = 1.0;
        weight -= f64::min(1.0, report.connection_usage_percent / 100.0) * self.connection_usage_reduction;
        weight -= load * self.os_load_reduction;
        weight -= if report.swap_bytes_used > 0.0 {
            self.swap_usage_reduction
        } else {
            0.0
        };
        weight
    }

    /// The reply for `report`.
    pub fn reply(&self, report: &HealthReport) -> AgentReply {
        let computed = self.weight(report);
        let status = report.status.to_ascii_lowercase();
        let drain = status == "drain";
        let weight = if drain { 0.0 } else { computed.max(0.01) };
        // The status is read as reply words (an unknown word stays a word);
        // the weight and maxconn are the agent's own.
        let mut reply: AgentReply = report.status.parse().unwrap_or_else(|_| AgentReply {
            other: vec!["invalid-status".into()],
            ..AgentReply::default()
        });
        if matches!(status.as_str(), "ready" | "drain") {
            reply.health = Some(Health::Up);
        }
        if drain {
            reply.admin = Some(AdminState::Drain);
        }
        reply.weight = Some(match self.absolute_weight {
            Some(base) => Weight::Absolute(truncate(weight * f64::from(base)).min(256)),
            None => Weight::Percent(truncate(weight * 100.0)),
        });
        reply.maxconn = self.maxconn;
        reply
    }
}

/// Python's `int()` of a non-negative float: truncation toward zero.
fn truncate(value: f64) -> u32 {
    // Saturating float-to-int conversion; the weight is never negative.
    value.trunc() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: &str, usage: f64, load: f64, swap: f64) -> HealthReport {
        HealthReport {
            status: status.into(),
            connection_usage_percent: usage,
            system_load: load,
            swap_bytes_used: swap,
        }
    }

    fn reply(report: &HealthReport) -> String {
        Formula::default().reply(report).to_string()
    }

    /// Every example of the Datawave agent specification, §5.
    #[test]
    fn the_datawave_examples_give_the_same_replies() {
        assert_eq!(reply(&report("ready", 0.0, 0.0, 0.0)), "100% ready up");
        let busy = report("ready", 80.0, 0.5, 0.0);
        assert_eq!(Formula::default().weight(&busy), 0.24000000000000005);
        assert_eq!(reply(&busy), "24% ready up");
        assert_eq!(reply(&report("ready", 30.0, 0.1, 0.0)), "75% ready up");
        assert_eq!(reply(&report("ready", 0.0, -1.0, 0.0)), "140% ready up");
        assert_eq!(reply(&report("ready", 150.0, 1.0, 4096.0)), "1% ready up");
        assert_eq!(reply(&report("drain", 10.0, 0.2, 0.0)), "0% drain up");
        assert_eq!(reply(&report("drain", 0.0, -1.0, 1.0)), "0% drain up");
    }

    #[test]
    fn truncation_follows_binary_floats() {
        // 1 - 0.43 = 0.5700000000000001 → 57; 0.57 × 100 = 56.99999999999999 → 56.
        assert_eq!(reply(&report("ready", 0.0, 1.075, 0.0)), "57% ready up");
        let formula = Formula {
            connection_usage_reduction: 0.43,
            ..Formula::default()
        };
        assert_eq!(formula.weight(&report("ready", 100.0, 0.0, 0.0)), 0.5700000000000001);
        assert_eq!(truncate(0.57 * 100.0), 56);
    }

    #[test]
    fn other_statuses_pass_as_reply_words() {
        assert_eq!(reply(&report("maint", 0.0, 0.0, 0.0)), "100% maint");
        assert_eq!(reply(&report("down", 0.0, 0.0, 0.0)), "100% down");
        assert_eq!(
            reply(&report("Ready", 0.0, 0.0, 0.0)),
            "100% ready up",
            "status words match without case"
        );
        assert_eq!(reply(&report("DRAIN", 0.0, 0.0, 0.0)), "0% drain up");
        assert_eq!(reply(&report("warming", 50.0, 0.0, 0.0)), "65% warming");
        assert_eq!(
            reply(&report("ready\nup 50% maxconn:1", 0.0, 0.0, 0.0)),
            "100% ready",
            "the status cannot add lines or override the agent's weight"
        );
    }

    #[test]
    fn options_clamp_the_load_and_add_maxconn_or_an_absolute_weight() {
        let unknown_load = report("ready", 0.0, -1.0, 0.0);
        let clamped = Formula {
            clamp_negative_load: true,
            ..Formula::default()
        };
        assert_eq!(clamped.reply(&unknown_load).to_string(), "100% ready up");
        let absolute = Formula {
            absolute_weight: Some(200),
            maxconn: Some(50),
            ..Formula::default()
        };
        assert_eq!(
            absolute.reply(&report("ready", 80.0, 0.5, 0.0)).to_string(),
            "weight:48 ready up maxconn:50"
        );
        assert_eq!(
            absolute.reply(&unknown_load).to_string(),
            "weight:256 ready up maxconn:50"
        );
    }

    #[test]
    fn health_json_takes_integers_or_floats_and_names_what_is_wrong() {
        let body = br#"{"ConnectionUsagePercent": 80, "Status": "ready", "SystemLoad": 0.5, "SwapBytesUsed": 0}"#;
        assert_eq!(HealthReport::from_json(body), Ok(report("ready", 80.0, 0.5, 0.0)));
        let floats = br#"{"ConnectionUsagePercent": 80.0, "Status": "drain", "SystemLoad": 1, "SwapBytesUsed": 1.5}"#;
        assert_eq!(HealthReport::from_json(floats), Ok(report("drain", 80.0, 1.0, 1.5)));
        assert_eq!(
            HealthReport::from_json(br#"{"Status": "ready", "SystemLoad": 0, "SwapBytesUsed": 0}"#),
            Err("ConnectionUsagePercent is missing".into())
        );
        assert_eq!(
            HealthReport::from_json(
                br#"{"ConnectionUsagePercent": "80", "Status": "ready", "SystemLoad": 0, "SwapBytesUsed": 0}"#
            ),
            Err("ConnectionUsagePercent: \"80\" is not a number".into())
        );
        assert!(
            HealthReport::from_json(b"<html>")
                .unwrap_err()
                .starts_with("not JSON: ")
        );
    }
}
