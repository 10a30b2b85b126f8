//! The typed metrics of one round: what `process` aggregates into and what
//! every sink takes, to encode its own way (Graphite plaintext, JSON, …).
//!
//! A [`Batch`] is a sequence of [`Section`]s in emission order. A section is
//! a table: field names (HAProxy's own, `scur`, `CurrConns`, or haproxide's,
//! `TotalServers`) as columns and one row per [`Member`], the entity the
//! values describe (a frontend, a server of a backend, the daemon, …) with
//! the group it belongs to. Names are kept as HAProxy reported them; making
//! them fit a sink's syntax is that sink's job. A `NaN` value means the
//! metric has no value this round (a mean over no row): sinks leave it out.

use std::sync::Arc;

/// What a row of metrics describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// haproxide's own pipeline (its self-metrics, `haproxystats.*` in Graphite).
    Pipeline,
    /// Every HAProxy process of the round together (`show info`).
    Daemon,
    /// One HAProxy process: its `Process_num`, or its socket name when the
    /// numbers are missing or not distinct.
    Process(String),
    /// A frontend, by proxy name.
    Frontend(String),
    /// A backend, by proxy name.
    Backend(String),
    /// A server of a backend.
    Server {
        /// The backend's proxy name.
        backend: String,
        /// The server's name.
        server: String,
    },
    /// A server name summed across every backend (`aggr-server-metrics`).
    ServerAcrossBackends(String),
}

/// One row's entity and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// What the values describe.
    pub entity: Entity,
    /// The group (a key of `[frontend-groups]`, `[backend-groups]` or
    /// `[server-groups]`) whose pattern the entity's name matched, if any.
    pub group: Option<Arc<str>>,
}

impl Member {
    /// An entity in no group.
    pub fn ungrouped(entity: Entity) -> Member {
        Member { entity, group: None }
    }
}

/// A table of metrics: the same fields for every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    fields: Vec<String>,
    members: Vec<Member>,
    /// Row-major: `members.len() × fields.len()` values.
    values: Vec<f64>,
}

impl Section {
    /// The field names, in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no row.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The rows: each member with its values, one per field.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (&Member, &[f64])> + Clone {
        self.rows_between(0, self.len())
    }

    /// The rows from `start` to `end`, for encoding a large section in parts.
    pub fn rows_between(&self, start: usize, end: usize) -> impl ExactSizeIterator<Item = (&Member, &[f64])> + Clone {
        let width = self.fields.len();
        self.members[start..end]
            .iter()
            .enumerate()
            .map(move |(offset, member)| {
                let row = start + offset;
                (member, &self.values[row * width..(row + 1) * width])
            })
    }

    /// Makes room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.members.reserve(rows);
        self.values.reserve(rows.saturating_mul(self.fields.len()));
    }

    /// Adds a row; `values` gives one value per field.
    pub fn push(&mut self, member: Member, values: impl IntoIterator<Item = f64>) {
        self.members.push(member);
        let before = self.values.len();
        self.values.extend(values);
        debug_assert_eq!(self.values.len() - before, self.fields.len(), "one value per field");
    }
}

/// The metrics of one round, stamped with its timestamp.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    timestamp: u64,
    /// The load balancer the round's manifest names, when it names one.
    host: Option<String>,
    sections: Vec<Section>,
    /// Fields beyond haproxystats' (HAProxy's exporter's, and states
    /// counted as `status=UP`), for the sinks that ask for them: apart, so
    /// that the others never see them.
    extended: Vec<Section>,
}

impl Batch {
    /// An empty batch for the round of `timestamp` (epoch seconds).
    pub fn new(timestamp: u64) -> Batch {
        Batch {
            timestamp,
            host: None,
            sections: Vec::new(),
            extended: Vec::new(),
        }
    }

    /// The round's timestamp.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The load balancer whose round this is (its manifest's `host`).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Names the load balancer whose round this is.
    pub fn set_host(&mut self, host: String) {
        self.host = Some(host);
    }

    /// The sections, in emission order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Starts a section with these fields; rows are pushed into it.
    pub fn section(&mut self, fields: Vec<String>) -> &mut Section {
        start(&mut self.sections, fields)
    }

    /// The extended sections (see [`crate::stats::metric_names::FRONTEND_EXTENDED`]).
    pub fn extended_sections(&self) -> &[Section] {
        &self.extended
    }

    /// Starts an extended section; rows are pushed into it.
    pub fn extended_section(&mut self, fields: Vec<String>) -> &mut Section {
        start(&mut self.extended, fields)
    }

    /// Adds one metric of haproxide's own pipeline.
    pub fn pipeline(&mut self, field: &str, value: f64) {
        self.section(vec![field.to_owned()])
            .push(Member::ungrouped(Entity::Pipeline), [value]);
    }

    /// Adds the sections of `other` after this batch's own.
    pub fn append(&mut self, other: Batch) {
        self.sections.extend(other.sections);
        self.extended.extend(other.extended);
    }

    /// How many metrics have a value (`NaN`s left out).
    pub fn len(&self) -> usize {
        self.sections
            .iter()
            .map(|section| section.values.iter().filter(|value| !value.is_nan()).count())
            .sum()
    }

    /// Whether no metric has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every metric with a value: member, field name and value, in order.
    pub fn metrics(&self) -> impl Iterator<Item = (&Member, &str, f64)> {
        self.sections.iter().flat_map(|section| {
            section.rows().flat_map(move |(member, values)| {
                section
                    .fields
                    .iter()
                    .zip(values)
                    .filter(|(_, value)| !value.is_nan())
                    .map(move |(field, value)| (member, field.as_str(), *value))
            })
        })
    }
}

/// A new empty section with `fields` at the end of `sections`.
fn start(sections: &mut Vec<Section>, fields: Vec<String>) -> &mut Section {
    sections.push(Section {
        fields,
        members: Vec::new(),
        values: Vec::new(),
    });
    let last = sections.len() - 1;
    &mut sections[last]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_come_out_in_order_without_missing_values() {
        let mut batch = Batch::new(1_700_000_000);
        batch.pipeline("MetricsHAProxy", 3.0);
        let servers = batch.section(vec!["scur".into(), "rtime".into()]);
        let server = |name: &str| Entity::Server {
            backend: "be.app".into(),
            server: name.into(),
        };
        servers.push(
            Member {
                entity: server("s 1"),
                group: Some(Arc::from("web")),
            },
            [4.0, f64::NAN],
        );
        servers.push(Member::ungrouped(server("s2")), [5.0, 12.5]);
        assert_eq!(batch.len(), 4);
        let listed: Vec<(Entity, &str, f64)> = batch
            .metrics()
            .map(|(member, field, value)| (member.entity.clone(), field, value))
            .collect();
        assert_eq!(
            listed,
            [
                (Entity::Pipeline, "MetricsHAProxy", 3.0),
                (server("s 1"), "scur", 4.0),
                (server("s2"), "scur", 5.0),
                (server("s2"), "rtime", 12.5),
            ]
        );
        let section = &batch.sections()[1];
        assert_eq!(
            section
                .rows_between(1, 2)
                .map(|(_, values)| values.to_vec())
                .collect::<Vec<_>>(),
            [vec![5.0, 12.5]]
        );
    }
}
