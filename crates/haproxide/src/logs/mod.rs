//! `haproxide logs` (and `haproxykafka`): HAProxy's request logs from a unix
//! datagram socket to Kafka as JSON, the successor of Wikimedia's
//! HAProxyKafka.
//!
//! Stages, each a thread with a bounded queue in front and a counter of
//! what it had to drop ([`metrics`]): the [`receiver`] reads batches of
//! datagrams; `workers` parser threads turn each datagram into a JSON
//! object ([`fields`], dates by [`time`]) or a rejection for the dead-letter
//! topic; the producer ([`kafka`]) hands both to librdkafka. The main thread
//! serves `/metrics` and `/healthz`, tells systemd when the socket is bound
//! and pings its watchdog only while every stage beats. What Kafka does not
//! take waits in the disk [`buffer`].
//!
//! Sections: [`config`]; HAProxyKafka's YAML lands in the same ones
//! ([`haproxykafka`]).

pub mod buffer;
pub mod config;
pub mod fields;
pub mod haproxykafka;
pub mod kafka;
pub mod metrics;
pub mod receiver;
pub mod time;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::Config;
use crate::runtime::http::{Response, serve};
use crate::runtime::notify::Supervisor;

use self::config::Settings;
use self::fields::Mapping;
use self::kafka::{Encoded, Kafka};
use self::metrics::{Metrics, Stage};
use self::receiver::Batch;

/// Turns each batch of datagrams into JSON messages and rejections, until
/// the receiver is gone; a result that finds the producer's queue full is
/// dropped and counted.
fn parse(batches: &Receiver<Batch>, producer: &Sender<Encoded>, mapping: &Mapping, metrics: &Metrics) {
    // A failpoint for the watchdog test: the parsers stop beating as a
    // wedged pipeline would.
    let hang = crate::runtime::failpoint("logs-parser-hang");
    loop {
        if hang && metrics.received.load(Ordering::Relaxed) > 0 {
            std::thread::park();
            continue;
        }
        metrics.beat(Stage::Parser);
        let batch = match batches.recv_timeout(Duration::from_millis(100)) {
            Ok(batch) => batch,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let mut encoded = Encoded {
            json: Vec::with_capacity(batch.len() * 768),
            ends: Vec::with_capacity(batch.len()),
            rejected: Vec::new(),
            received: batch.received,
        };
        for (datagram, cut) in batch.datagrams() {
            let started = Instant::now();
            let outcome = match cut {
                true => Err(fields::Rejection(format!(
                    "the datagram was longer than max-datagram and was cut at {} bytes",
                    datagram.len()
                ))),
                false => mapping.encode(datagram, &mut encoded.json),
            };
            metrics.parsing.observe(started.elapsed());
            match outcome {
                Ok(()) => encoded.ends.push(encoded.json.len()),
                Err(rejection) => {
                    if cut {
                        metrics.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    encoded.rejected.push((datagram.to_vec(), rejection.0));
                }
            }
        }
        metrics.parsed.fetch_add(encoded.ends.len() as u64, Ordering::Relaxed);
        metrics
            .rejected
            .fetch_add(encoded.rejected.len() as u64, Ordering::Relaxed);
        let count = (encoded.ends.len() + encoded.rejected.len()) as u64;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = producer.try_send(encoded) {
            metrics.saturated(Stage::Producer, count);
        }
    }
}

/// What `/metrics` and `/healthz` answer.
fn route(path: &str, metrics: &Metrics, kafka: &Kafka) -> Response {
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: vec![std::sync::Arc::new(metrics.render(kafka.queued()).into_bytes())],
        },
        "/healthz" => match metrics.stalled() {
            stalled if stalled.is_empty() => Response::text(200, "ok\n"),
            stalled => Response::text(503, format!("stalled: {}\n", stalled.join(", "))),
        },
        _ => Response::text(404, "try /metrics or /healthz\n"),
    }
}

/// Runs `logs` until SIGTERM, SIGHUP or SIGINT: then it stops reading,
/// drains the queues, gives Kafka `flush-timeout`, and exits 0.
pub fn main(config: &Config) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    crate::runtime::run_daemon(config, &config::SECTION, run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let mut shutdown = crate::runtime::shutdown::Shutdown::listen()?;
    let metrics = Arc::new(Metrics::new(
        &settings.monitoring.parsing_buckets,
        &settings.monitoring.processing_buckets,
    ));
    for stage in [Stage::Receiver, Stage::Parser, Stage::Producer] {
        metrics.beat(stage);
    }
    let kafka = Arc::new(Kafka::start(&settings.kafka, &settings.mapping.hostname, &metrics)?);
    let listener = match settings.monitoring.enabled {
        true => {
            let bind = settings.monitoring.bind;
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("[logs-monitoring] server-bind: cannot listen on {bind}"))?;
            tracing::info!(
                "metrics on http://{}/metrics, health on /healthz",
                listener.local_addr()?
            );
            Some(listener)
        }
        false => None,
    };
    let socket = receiver::bind(&settings.socket)?;
    let (batch_sender, batch_receiver) = crossbeam_channel::bounded::<Batch>(settings.queue_batches);
    let (encoded_sender, encoded_receiver) = crossbeam_channel::bounded::<Encoded>(settings.queue_batches);
    let mut threads = Vec::new();
    let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(work)
            .with_context(|| format!("cannot start the {name} thread"))
    };
    {
        let (metrics, socket_settings) = (Arc::clone(&metrics), settings.socket.clone());
        threads.push(spawn(
            "logs-receiver",
            Box::new(move || receiver::read(&socket, &socket_settings, &batch_sender, &metrics)),
        )?);
    }
    let mapping = Arc::new(settings.mapping.clone());
    for _ in 0..settings.workers {
        let (batches, producer) = (batch_receiver.clone(), encoded_sender.clone());
        let (mapping, metrics) = (Arc::clone(&mapping), Arc::clone(&metrics));
        threads.push(spawn(
            "logs-parser",
            Box::new(move || parse(&batches, &producer, &mapping, &metrics)),
        )?);
    }
    drop((batch_receiver, encoded_sender));
    let producer = {
        let kafka = Arc::clone(&kafka);
        spawn("logs-producer", Box::new(move || kafka.run(&encoded_receiver)))?
    };
    let server = listener.map(|listener| {
        let (metrics, kafka) = (Arc::clone(&metrics), Arc::clone(&kafka));
        tokio::spawn(serve(listener, move |request| route(request.path, &metrics, &kafka)))
    });
    // Ready as soon as the socket is bound and the stages run.
    let supervisor = {
        let metrics = Arc::clone(&metrics);
        Supervisor::start(
            || true,
            move || metrics.stalled().into_iter().map(str::to_owned).collect(),
        )
    };
    let signal = shutdown.requested().await;
    tracing::info!("{signal}: no more reading; draining the queues and flushing to Kafka");
    supervisor.stopping();
    let stop_started = Instant::now();
    // The file first: HAProxy's next datagrams fail at once rather than
    // queue where no one reads; then the reader drains what the kernel holds.
    let _ = std::fs::remove_file(&settings.socket.path);
    metrics.stopping.store(true, Ordering::Relaxed);
    // A plain thread waits for the stages: one that hangs must not hold up
    // the exit (a runtime waits for its blocking tasks).
    let (drained, joined) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        for thread in threads {
            let _ = thread.join();
        }
        let _ = producer.join();
        let _ = drained.send(());
    });
    if tokio::time::timeout(settings.kafka.flush_timeout, joined)
        .await
        .is_err()
    {
        tracing::warn!("the stages did not drain within flush-timeout");
    }
    let left = settings.kafka.flush_timeout.saturating_sub(stop_started.elapsed());
    let taken_back = kafka.flush_within(left);
    if let Some(server) = server {
        server.abort();
    }
    let counted = |value: &std::sync::atomic::AtomicU64| value.load(Ordering::Relaxed);
    tracing::info!(
        "stopped: {} datagrams read, {} messages and {} dead letters confirmed by Kafka, {} taken back from \
         librdkafka, {} bytes in the disk buffer, {} dropped",
        counted(&metrics.received),
        counted(&metrics.delivered),
        counted(&metrics.dlq_delivered),
        taken_back,
        kafka.buffer_bytes(),
        [Stage::Parser, Stage::Producer, Stage::DiskBuffer]
            .iter()
            .map(|stage| metrics.saturated_at(*stage))
            .sum::<u64>()
    );
    // Everything librdkafka held is in Kafka or in the disk buffer (synced):
    // exit without its teardown, which waits seconds for its broker threads
    // when a broker is down, past flush-timeout.
    std::process::exit(0)
}
