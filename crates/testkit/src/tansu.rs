//! A real Kafka-protocol broker for the logs tests: tansu 0.6.0 (built once
//! into the cache by `scripts/tansu.sh`, or `$TANSU_BIN`), keeping topics in
//! SQLite in a directory of its own, on a loopback port outside the
//! ephemeral range, so that it can be stopped and started again on the same
//! address with its records. Its quirks (tansu 0.6.0):
//! topics must be created before producing; with SQLite storage it cannot
//! hand back snappy-compressed batches (`UnexpectedType("Snappy")`: zstd,
//! which the tests use, works); and its high watermark is wrong
//! for batches of more than one record, so [`Tansu::consume`] counts the
//! records it reads instead of trusting offsets.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The tansu binary: `$TANSU_BIN`, or where `scripts/tansu.sh` builds it.
pub fn tansu_binary() -> PathBuf {
    crate::cached_binary("TANSU_BIN", "tansu-0.6.0-dynostore-libsql/bin/tansu")
}

/// One record read back: its value and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// Its headers, in order (`None`: a header without a value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The value of the first header called `key`, as text.
    pub fn header(&self, key: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, value)| value.as_ref())
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }
}

/// A running broker.
pub struct Tansu {
    port: u16,
    /// Its database and log.
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        let mut tansu = Tansu {
            port: crate::port_outside_ephemeral_range(),
            dir: tempfile::Builder::new()
                .prefix("haproxide-tansu-")
                .tempdir()
                .expect("tansu dir"),
            child: None,
        };
        tansu.spawn();
        tansu
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        // tansu reads the database path relative to its working directory.
        let child = crate::spawn_peer(
            Command::new(tansu_binary())
                .current_dir(self.dir.path())
                .arg("broker")
                .args(["--listener-url", &self.url(), "--advertised-listener-url", &self.url()])
                .args(["--storage-engine", "sqlite://tansu.db"]),
            &self.dir.path().join("tansu.log"),
            "scripts/tansu.sh",
        );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tansu did not listen within 20 s:\n{}", self.log_text());
    }

    /// What the broker logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// Creates `topic` with one partition (tansu creates none on produce).
    pub fn create_topic(&self, topic: &str) {
        self.create_topic_with_partitions(topic, 1);
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic_with_partitions(&self, topic: &str, partitions: u32) {
        let output = Command::new(tansu_binary())
            .args(["topic", "create", topic, "--partitions", &partitions.to_string()])
            .args(["--broker", &self.url()])
            .output()
            .expect("tansu topic create");
        assert!(
            output.status.success(),
            "tansu topic create {topic}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the broker (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::process::stop_and_wait(child);
        }
    }

    /// Starts it again on the same port, with the topics and records it had.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Reads `topic` (partition 0) from the beginning until `expected`
    /// records arrived and then `settle` passed without another, or `limit`
    /// ran out; returns every record read, so a test sees duplicates and
    /// strays as well as what is missing.
    pub fn consume(&self, topic: &str, expected: usize, settle: Duration, limit: Duration) -> Vec<Record> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("group.id", "haproxide-tests")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        partitions
            .add_partition_offset(topic, 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&partitions).expect("assign");
        let mut records = Vec::new();
        let started = Instant::now();
        let mut last = Instant::now();
        while started.elapsed() < limit && (records.len() < expected || last.elapsed() < settle) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let headers = message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(Record {
                        value: message.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                    last = Instant::now();
                }
                Some(Err(error)) => panic!("consuming {topic}: {error}\n{}", self.log_text()),
                None => {}
            }
        }
        records
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}
