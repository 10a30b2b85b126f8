//! haproxide's features, as a library; the binary (`main.rs`) only parses
//! command lines and dispatches to them.
//!
//! - [`query`]: runtime-API commands to one or many sockets, replies rendered.
//! - [`stats`]: the stats pipeline, `pull` → spool → `process` → sinks.
//! - [`agent`]: an agent-check server.
//! - [`reload`]: a validated, verified, hitless HAProxy reload.
//! - [`backends`]: HAProxy's servers follow Consul, AWS or a file, at run time or by template.
//! - [`logs`]: HAProxy's request logs from a unix socket to Kafka as JSON.
//! - [`checks`]: Nagios/Icinga checks of the daemons' work.
//! - [`kafka`]: librdkafka's client properties, for `logs` and `process`'s Kafka sink.
//! - [`config`]: the INI configuration (and other programs' YAML files),
//!   each section declared once by the component that reads it.
//! - [`generate`]: man pages, shell completions and the commented
//!   configuration file, made from the declarations for the package.
//! - [`runtime`]: logging, stop signals, systemd notifications and the
//!   HTTP endpoints the daemons share.
//!
//! Building a component from its configuration starts nothing; its `run`
//! does. See the README's "Code map" for where new pieces go.

pub mod agent;
pub mod backends;
pub mod checks;
pub mod config;
pub mod generate;
pub mod kafka;
pub mod logs;
pub mod query;
pub mod reload;
pub mod runtime;
pub mod sockets;
pub mod stats;
pub mod top;
