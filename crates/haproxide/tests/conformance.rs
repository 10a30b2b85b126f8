//! Conformance with haproxystats: `process --once` on the synthetic round, with
//! each golden's own configuration, emits every path haproxystats emitted with
//! a numerically equal value, except the documented differences:
//! - `nan` lines are not emitted;
//! - a custom list's `X_x` (sum of an averaged metric) is not emitted and
//!   `X_y` is emitted as `X`; so `MetricsBackend`/`MetricsServer`, which count
//!   those cells, differ there;
//! - `WallClockTime*`/`TotalWallClockTime` measure this run;
//! - the Graphite sink's own counters (`haproxystats.Graphite*`) are new;
//! - against PyPI 0.5.1, the time averages `rtime ctime qtime ttime` follow
//!   git HEAD (over processes with `lbtot > 0`).
//!
//! Each run also sends to a real carbon-c-relay on the port the golden's
//! `[graphite]` names (moved to a free one): the relay must receive exactly
//! the lines local-store wrote, in the same order.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{CarbonRelay, TestCommand};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/haproxystats")
}

/// `path below the prefix -> value`, from Graphite lines.
fn parse_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            assert_eq!(fields[2], "1700000000", "{line:?}");
            let (_, path) = fields[0].split_once(".haproxy.").unwrap();
            (path.to_owned(), fields[1].to_owned())
        })
        .collect()
}

/// Runs `process --once` on the synthetic round with a golden's config (its
/// paths moved into a temporary directory); returns our lines.
fn run_golden(name: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let golden = fixtures().join("golden");
    let lab = tempfile::tempdir().unwrap();
    let root = lab.path().display().to_string();
    let relay = CarbonRelay::start();
    let relocate = |text: String| {
        text.replace("/var/tmp/lab", &root)
            .replace("port = 39991", &format!("port = {}", relay.port()))
    };
    let conf_text = relocate(fs::read_to_string(golden.join(format!("{name}.conf"))).unwrap());
    let config = lab.path().join("haproxystats.conf");
    fs::write(&config, conf_text).unwrap();
    for list in ["excl_fe.txt", "excl_be.txt"] {
        fs::copy(golden.join(list), lab.path().join(list)).unwrap();
    }
    let mut command = TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
        .args(&["process", "--once"])
        .config(&config)
        .listing(lab.path());
    let extra = golden.join(format!("{name}.conf.d-groups.conf"));
    if extra.exists() {
        let conf_dir = lab.path().join("conf.d");
        fs::create_dir(&conf_dir).unwrap();
        fs::write(
            conf_dir.join("groups.conf"),
            relocate(fs::read_to_string(extra).unwrap()),
        )
        .unwrap();
        command = command.args(&[OsString::from("-d"), conf_dir.into()]);
    }
    let config_text = fs::read_to_string(&config).unwrap();
    let src_dir = config_text
        .lines()
        .find_map(|line| line.strip_prefix("src-dir = "))
        .unwrap()
        .to_owned();
    let store = config_text
        .lines()
        .find_map(|line| line.strip_prefix("dir = "))
        .unwrap()
        .to_owned();
    let round = Path::new(&src_dir).join("1700000000");
    fs::create_dir_all(&round).unwrap();
    for entry in fs::read_dir(fixtures().join("synthetic-1700000000")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), round.join(entry.file_name())).unwrap();
    }
    command.expect_success();
    assert!(!round.exists(), "{name}: the round is removed once delivered");
    let stored = fs::read_to_string(Path::new(&store).join("1700000000/stats")).unwrap();
    let stored_lines: Vec<String> = stored.lines().map(str::to_owned).collect();
    let relayed = relay.wait_for_lines(stored_lines.len(), Duration::from_secs(10));
    assert_eq!(
        relayed, stored_lines,
        "{name}: the relay received what local-store holds"
    );
    let ours = parse_lines(&stored);
    let theirs = parse_lines(&fs::read_to_string(golden.join(format!("{name}.graphite.txt"))).unwrap());
    (ours, theirs)
}

fn run_measures(path: &str) -> bool {
    path.starts_with("haproxystats.WallClockTime") || path == "haproxystats.TotalWallClockTime"
}

fn is_time_average(path: &str) -> bool {
    (path.starts_with("backend.") || path.starts_with("server."))
        && ["rtime", "ctime", "qtime", "ttime"]
            .iter()
            .any(|name| path.ends_with(&format!(".{name}")))
}

/// Asserts conformance; `skip` names golden paths whose difference is documented.
fn assert_conforms(
    name: &str,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    skip: impl Fn(&str) -> bool,
) {
    let mut compared = 0;
    for (path, value) in theirs {
        if run_measures(path) || skip(path) {
            continue;
        }
        if value == "nan" {
            assert!(
                !ours.contains_key(path),
                "{name}: {path} is NaN in haproxystats and must not be emitted"
            );
            continue;
        }
        let expected: f64 = value.parse().unwrap();
        let got = ours
            .get(path)
            .unwrap_or_else(|| panic!("{name}: {path} missing (haproxystats: {value})"));
        let got: f64 = got.parse().unwrap();
        assert!(
            (expected - got).abs() < 1e-9,
            "{name}: {path}: haproxystats {expected}, haproxide {got}"
        );
        compared += 1;
    }
    for path in ours.keys() {
        assert!(
            theirs.contains_key(path)
                || skip(path)
                || SINK_COUNTERS
                    .iter()
                    .any(|counter| path == &format!("haproxystats.{counter}")),
            "{name}: {path} emitted but not by haproxystats"
        );
    }
    assert!(compared > 40, "{name}: only {compared} paths compared");
    for value in ours.values() {
        assert!(
            value.parse::<f64>().unwrap().is_finite(),
            "{name}: non-finite value {value}"
        );
        if value.contains('.') {
            assert!(
                value.parse::<f64>().unwrap().fract() != 0.0,
                "{name}: integral value printed as {value}"
            );
        }
    }
}

/// Self-metrics of the sinks, which haproxystats did not have.
const SINK_COUNTERS: [&str; 8] = [
    "LocalStoreQueuedLines",
    "LocalStoreLinesDeferred",
    "GraphiteLinesSent",
    "GraphiteBytesSent",
    "GraphiteReconnects",
    "GraphiteLinesDropped",
    "GraphiteQueuedLines",
    "GraphiteLinesDeferred",
];

#[test]
fn git_head_with_every_option() {
    let (ours, theirs) = run_golden("git-head_allopts");
    assert_conforms("allopts", &ours, &theirs, |_| false);
    assert_eq!(ours["haproxystats.MetricsHAProxy"], "138");
    // The first snapshot: nothing was sent or queued before it.
    for counter in SINK_COUNTERS {
        assert_eq!(ours[&format!("haproxystats.{counter}")], "0", "{counter}");
    }
    assert_eq!(ours["haproxystats.MetricsServer"], "195");
    assert_eq!(ours["daemon.StdCpuUsagePct"], "10.606601717798213");
    assert_eq!(
        ours.len(),
        theirs.len() - theirs.values().filter(|value| *value == "nan").count() + SINK_COUNTERS.len(),
        "every path but the NaN ones, and the sinks' counters"
    );
}

#[test]
fn git_head_with_groups_from_a_config_directory() {
    let (ours, theirs) = run_golden("git-head_groups");
    assert_conforms("groups", &ours, &theirs, |_| false);
    assert_eq!(ours["flavor.two.server.srv_two.stot"], "40");
    assert_eq!(ours["flavor.apps.backend.be_app.TotalServers"], "2");
}

#[test]
fn git_head_with_custom_metric_lists_without_x_and_y_names() {
    let (ours, theirs) = run_golden("git-head_custom-metric-lists");
    let suffixed = |path: &str| path.ends_with("_x") || path.ends_with("_y");
    let counts = |path: &str| path == "haproxystats.MetricsBackend" || path == "haproxystats.MetricsServer";
    let unsuffixed_averages =
        |path: &str| theirs.contains_key(&format!("{path}_y")) || theirs.contains_key(&format!("{path}_x"));
    assert_conforms("custom lists", &ours, &theirs, |path| {
        suffixed(path) || counts(path) || unsuffixed_averages(path)
    });
    for (path, value) in &theirs {
        if let Some(base) = path.strip_suffix("_y") {
            match value.as_str() {
                "nan" => assert!(!ours.contains_key(base), "{base}"),
                value => assert_eq!(
                    ours[base].parse::<f64>().unwrap(),
                    value.parse::<f64>().unwrap(),
                    "{base}: the average"
                ),
            }
        }
    }
    assert!(ours.keys().all(|path| !suffixed(path)), "no _x/_y names");
    assert_eq!(ours["haproxystats.MetricsBackend"], "25", "1 + 3 backends x 8 columns");
}

#[test]
fn pypi_0_5_1_with_defaults_apart_from_time_averages() {
    let (ours, theirs) = run_golden("pypi-0.5.1_defaults");
    assert_conforms("pypi 0.5.1", &ours, &theirs, is_time_average);
    // HEAD's rule: be_app's servers answered in both processes, srv1 in neither.
    assert_eq!(ours["backend.be_app.ttime"], "2.5");
    assert!(!ours.contains_key("backend.be_app.server.srv1.ttime"));
    assert_eq!(theirs["backend.be_app.server.srv1.ttime"], "0.0");
}
