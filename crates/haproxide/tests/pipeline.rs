//! The `process` pipeline in-process, with sinks of the test's own behind the
//! `Sink` trait: what each sink receives is the typed batch, with HAProxy's
//! own names, and a sink that fails holds back neither the others nor the
//! spool's rounds it lacks.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use haproxide::config::{Config, Program, load_checked};
use haproxide::stats::metrics::Entity;
use haproxide::stats::pipeline::{Settings, run};
use haproxide::stats::sinks::{Delivery, Sink, Snapshot};
use haproxy::ShowStat;
use testkit::Workspace;

/// Records what it is given; fails every delivery when `failing`.
struct RecordingSink {
    failing: bool,
    received: Arc<Mutex<Vec<Arc<Snapshot>>>>,
}

impl Sink for RecordingSink {
    fn name(&self) -> &'static str {
        if self.failing { "failing" } else { "recording" }
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        Box::pin(async move {
            if self.failing {
                anyhow::bail!("this sink is down");
            }
            self.received.lock().unwrap().push(snapshot);
            Ok(())
        })
    }
}

fn synthetic() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/haproxystats/synthetic-1700000000"
    ))
}

/// A config for a spool in `space` and two rounds of the synthetic fixture in it.
fn spool_with_two_rounds() -> (Workspace, Config) {
    let space = Workspace::new("haproxystats.conf", |dir| {
        format!(
            "[process]\nsrc-dir = {0}/incoming\nworkers = 2\n[local-store]\ndir = {0}/local-store\n",
            dir.display()
        )
    });
    for round in ["1700000000", "1700000001"] {
        let target = space.path().join("incoming").join(round);
        fs::create_dir_all(&target).unwrap();
        for entry in fs::read_dir(synthetic()).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    let config = load_checked(Some(space.config()), None, Program::Process).unwrap();
    (space, config)
}

fn run_once(settings: Settings) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(settings, true)).unwrap()
}

/// `stot` of frontend `fe.dotted.name`, summed over the fixture's processes.
fn dotted_frontend_sessions() -> f64 {
    ["admin1.sock_stat", "admin2.sock_stat"]
        .iter()
        .map(|file| {
            let stat = ShowStat::parse(fs::read_to_string(synthetic().join(file)).unwrap()).unwrap();
            let row = stat
                .rows()
                .find(|row| row.pxname() == "fe.dotted.name" && row.svname() == "FRONTEND")
                .unwrap();
            row.int("stot").unwrap().unwrap() as f64
        })
        .sum()
}

#[test]
fn every_sink_gets_each_round_in_order_as_a_typed_batch_with_haproxy_names() {
    let (space, config) = spool_with_two_rounds();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = RecordingSink {
        failing: false,
        received: Arc::clone(&received),
    };
    let settings = Settings::from_config(&config).unwrap().with_sinks(vec![Box::new(sink)]);
    assert_eq!(run_once(settings), ExitCode::SUCCESS);
    let received = received.lock().unwrap();
    let rounds: Vec<&str> = received.iter().map(|snapshot| snapshot.round.as_str()).collect();
    assert_eq!(rounds, ["1700000000", "1700000001"]);
    for snapshot in received.iter() {
        assert_eq!(
            snapshot.batch.timestamp().to_string(),
            snapshot.round,
            "stamped with the round's epoch"
        );
        let sessions: Vec<f64> = snapshot
            .batch
            .metrics()
            .filter(|(member, field, _)| member.entity == Entity::Frontend("fe.dotted.name".into()) && *field == "stot")
            .map(|(_, _, value)| value)
            .collect();
        assert_eq!(
            sessions,
            [dotted_frontend_sessions()],
            "one value, the sum, under the name HAProxy gave"
        );
    }
    assert_eq!(
        fs::read_dir(space.path().join("incoming")).unwrap().count(),
        0,
        "both rounds removed"
    );
    assert!(
        !space.path().join("local-store").exists(),
        "only the sinks given were used"
    );
}

#[test]
fn a_failing_sink_keeps_the_rounds_in_the_spool_while_the_other_gets_them_all() {
    let (space, config) = spool_with_two_rounds();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(RecordingSink {
            failing: true,
            received: Arc::new(Mutex::new(Vec::new())),
        }),
        Box::new(RecordingSink {
            failing: false,
            received: Arc::clone(&received),
        }),
    ];
    let settings = Settings::from_config(&config).unwrap().with_sinks(sinks);
    assert_eq!(run_once(settings), ExitCode::FAILURE);
    let rounds: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|snapshot| snapshot.round.clone())
        .collect();
    assert_eq!(rounds, ["1700000000", "1700000001"]);
    let mut left: Vec<String> = fs::read_dir(space.path().join("incoming"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["1700000000", "1700000001"],
        "the failing sink lacks them: they stay"
    );
}
