//! The stats pipeline, the haproxystats successor: [`collect`] (`pull`) asks
//! every HAProxy for `show info`/`show stat` and drops each round into the
//! [`spool`]; [`pipeline`] (`process`) reads each round ([`round`]),
//! aggregates it across processes into a typed [`metrics::Batch`]
//! ([`aggregate`]) and hands it to its [`sinks`], each of which encodes it
//! its own way. One round is the unit of work from end to end, also when
//! load balancers ship their rounds through Kafka to be processed
//! centrally ([`central`]); a [`cluster`] adds several load balancers'
//! rounds up into one round of its own.

pub mod aggregate;
pub mod central;
pub mod cluster;
pub mod collect;
pub mod metric_names;
pub mod metrics;
pub mod pipeline;
pub mod round;
pub mod sinks;
pub mod spool;
