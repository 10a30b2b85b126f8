//! Graphite's plaintext encoding of a [`Batch`], shared by the `graphite` and
//! `local-store` sinks: `<prefix>.[<group-namespace>.<group>.]<path>.<field> <value> <timestamp>\n`.
//!
//! - `<prefix>` is `namespace[.host].haproxy`, from `[graphite] namespace`,
//!   `prefix-hostname` and `fqdn`, as haproxystats builds it.
//! - `<path>` names the entity: `daemon`, `daemon.process.<key>`,
//!   `frontend.<name>`, `backend.<name>`, `backend.<name>.server.<name>`,
//!   `server.<name>`, and `haproxystats` for the pipeline's own metrics.
//!   Names are [`sanitize`]d, so no name can add a path level or break the
//!   line protocol.
//! - A grouped entity goes under `<group-namespace>.<group>.`, and also under
//!   its plain path with `group-namespace-double-writes`.
//! - Integral values print as integers (`40`), others in their shortest exact
//!   form; values without a value (`NaN`) are left out.
//!
//! Two threads encode alternate blocks of rows while the caller's writer
//! takes them in order ([`Plaintext::write_to`]).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::mpsc;

use super::graphite::SECTION;
use crate::config::Config;
use crate::config::declare::{self, DefaultValue, Key};
use crate::stats::metrics::{Batch, Entity, Member, Section};

/// Rows encoded at a time by [`Plaintext::write_to`].
const STREAMED_ROWS: usize = 256;

/// Replaces every byte outside `[A-Za-z0-9_:-]` with `_`, so a name can neither
/// add a path level (`.`) nor break the line protocol (spaces, newlines).
pub fn sanitize(name: &str) -> Cow<'_, str> {
    let clean = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-');
    if name.chars().all(clean) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.chars().map(|c| if clean(c) { c } else { '_' }).collect())
}

/// `[graphite] namespace`.
pub const NAMESPACE: Key<String> = Key::new(
    "namespace",
    declare::GRAPHITE_PATH,
    DefaultValue::Builtin("loadbalancers"),
    "the first level of every metric name",
);
/// `[graphite] prefix-hostname`.
pub const PREFIX_HOSTNAME: Key<bool> = Key::new(
    "prefix-hostname",
    declare::BOOL,
    DefaultValue::Builtin("true"),
    "put the host's name after `namespace`: the one the round's manifest records (`[pull] hostname`), else this host's",
);
/// `[graphite] fqdn`.
pub const FQDN: Key<bool> = Key::new(
    "fqdn",
    declare::BOOL,
    DefaultValue::Builtin("true"),
    "the whole host name, its dots as `_`; `false`: only its first label",
);
/// `[graphite] group-namespace`.
pub const GROUP_NAMESPACE: Key<String> = Key::new(
    "group-namespace",
    declare::GRAPHITE_PATH,
    DefaultValue::Unset("no grouping"),
    "grouped entities (see `[frontend-groups]`) go under `<prefix>.<group-namespace>.<group>.`",
);
/// `[graphite] group-namespace-double-writes`.
pub const GROUP_NAMESPACE_DOUBLE_WRITES: Key<bool> = Key::new(
    "group-namespace-double-writes",
    declare::BOOL,
    DefaultValue::Unset("required with `group-namespace`"),
    "also write grouped entities under their plain names",
);

/// How batches are written as Graphite lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plaintext {
    /// `namespace[.host].haproxy`.
    pub prefix: String,
    /// `group-namespace`: grouped entities go under `<it>.<group>.`; no
    /// grouping when unset.
    pub group_namespace: Option<String>,
    /// `group-namespace-double-writes`: grouped entities also go under their plain path.
    pub double_writes: bool,
    /// With `prefix-hostname`: `namespace` and `fqdn`, to name a round
    /// after the host its manifest records instead of this one.
    pub per_round_host: Option<(String, bool)>,
}

impl Plaintext {
    /// The encoding `[graphite]` describes.
    pub fn from_config(config: &Config) -> anyhow::Result<Plaintext> {
        let namespace = config.get(&SECTION, &NAMESPACE)?;
        let fqdn = config.get(&SECTION, &FQDN)?;
        let host = if config.get(&SECTION, &PREFIX_HOSTNAME)? {
            Some(nix::unistd::gethostname()?.to_string_lossy().into_owned())
        } else {
            None
        };
        Ok(Plaintext {
            prefix: prefix(&namespace, host.as_deref(), fqdn),
            group_namespace: config.get_opt(&SECTION, &GROUP_NAMESPACE)?,
            double_writes: config
                .get_opt(&SECTION, &GROUP_NAMESPACE_DOUBLE_WRITES)?
                .unwrap_or(false),
            per_round_host: host.is_some().then_some((namespace, fqdn)),
        })
    }

    /// Writes the lines of `batch` to `out` as they are encoded, a few
    /// hundred rows at a time: the whole text is never held in memory. Two
    /// threads encode alternate blocks while this one writes them in order,
    /// each thread a couple of blocks ahead at most.
    pub fn write_to(&self, batch: &Batch, out: &mut impl std::io::Write) -> std::io::Result<usize> {
        let blocks: Vec<(&Section, usize, usize)> = batch
            .sections()
            .iter()
            .flat_map(|section| {
                (0..section.len())
                    .step_by(STREAMED_ROWS)
                    .map(move |start| (section, start, section.len().min(start + STREAMED_ROWS)))
            })
            .collect();
        // The host the round's manifest names (`[pull] hostname`), else this one.
        let prefix = match (&self.per_round_host, batch.host()) {
            (Some((namespace, fqdn)), Some(host)) => prefix(namespace, Some(host), *fqdn),
            _ => self.prefix.clone(),
        };
        let empty = Lines::new(&prefix, batch.timestamp());
        let encode = |lines: &mut Lines, (section, start, end): (&Section, usize, usize)| {
            self.write_rows(lines, section, section.rows_between(start, end));
        };
        if blocks.len() < 4 {
            let mut lines = empty;
            for block in blocks {
                encode(&mut lines, block);
            }
            out.write_all(lines.text.as_bytes())?;
            return Ok(lines.count);
        }
        std::thread::scope(|scope| {
            let mut encoded = Vec::new();
            let mut spares = Vec::new();
            for lane in 0..2 {
                let (full, from_lane) = mpsc::sync_channel::<Lines>(2);
                let (to_lane, spare) = mpsc::channel::<Lines>();
                let (blocks, empty, encode) = (&blocks, &empty, &encode);
                scope.spawn(move || {
                    for block in blocks.iter().skip(lane).step_by(2) {
                        let mut lines = spare.try_recv().unwrap_or_else(|_| empty.sibling());
                        encode(&mut lines, *block);
                        if full.send(lines).is_err() {
                            return; // the writer gave up
                        }
                    }
                });
                encoded.push(from_lane);
                spares.push(to_lane);
            }
            let mut count = 0;
            for index in 0..blocks.len() {
                let lane = index % 2;
                let mut lines = encoded[lane]
                    .recv()
                    .map_err(|_| std::io::Error::other("an encoding thread stopped"))?;
                out.write_all(lines.text.as_bytes())?;
                count += lines.count;
                lines.text.clear();
                lines.count = 0;
                let _ = spares[lane].send(lines);
            }
            Ok(count)
        })
    }

    fn write_rows<'a>(
        &self,
        lines: &mut Lines,
        section: &Section,
        rows: impl Iterator<Item = (&'a Member, &'a [f64])>,
    ) {
        // Each field with the space after it, and each member's paths with
        // the prefix before and the dot after them: a line is then three
        // copies and its value.
        let fields: Vec<String> = section.fields().iter().map(|field| format!("{field} ")).collect();
        let mut bases = [String::new(), String::new()];
        for (member, values) in rows {
            lines.start_base(&mut bases[0]);
            let grouped = match (&self.group_namespace, &member.group) {
                (Some(namespace), Some(group)) => {
                    bases[0].push_str(namespace);
                    bases[0].push('.');
                    bases[0].push_str(group);
                    bases[0].push('.');
                    true
                }
                _ => false,
            };
            push_path(&mut bases[0], &member.entity);
            // The ungrouped path too, when a grouped one is double-written.
            let count = if grouped && self.double_writes {
                lines.start_base(&mut bases[1]);
                push_path(&mut bases[1], &member.entity);
                2
            } else {
                1
            };
            for (field, value) in fields.iter().zip(values) {
                for base in &bases[..count] {
                    lines.push(base, field, *value);
                }
            }
        }
    }
}

/// `namespace[.host].haproxy`; the host with its dots as `_` (`fqdn`), or
/// only its first label.
pub fn prefix(namespace: &str, host: Option<&str>, fqdn: bool) -> String {
    let Some(host) = host else {
        return format!("{namespace}.haproxy");
    };
    let host = if fqdn {
        host.replace('.', "_")
    } else {
        host.split('.').next().unwrap_or_default().to_owned()
    };
    format!("{namespace}.{}.haproxy", sanitize(&host))
}

/// Appends the path of an entity, its names sanitised, and a dot.
fn push_path(out: &mut String, entity: &Entity) {
    let (kind, name) = match entity {
        Entity::Pipeline => ("haproxystats.", None),
        Entity::Daemon => ("daemon.", None),
        Entity::Process(key) => ("daemon.process.", Some(key)),
        Entity::Frontend(name) => ("frontend.", Some(name)),
        Entity::Backend(name) => ("backend.", Some(name)),
        Entity::Server { backend, server } => {
            out.push_str("backend.");
            out.push_str(&sanitize(backend));
            out.push('.');
            ("server.", Some(server))
        }
        Entity::ServerAcrossBackends(name) => ("server.", Some(name)),
    };
    out.push_str(kind);
    if let Some(name) = name {
        out.push_str(&sanitize(name));
        out.push('.');
    }
}

/// A block of Graphite lines being encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Lines {
    /// `<prefix>.`
    head: String,
    /// ` <timestamp>\n`
    tail: String,
    text: String,
    count: usize,
}

impl Lines {
    fn new(prefix: &str, timestamp: u64) -> Lines {
        Lines {
            head: format!("{prefix}."),
            tail: format!(" {timestamp}\n"),
            ..Lines::default()
        }
    }

    /// Empties `base` and starts it with `<prefix>.`, for [`Lines::push`].
    fn start_base(&self, base: &mut String) {
        base.clear();
        base.push_str(&self.head);
    }

    /// Appends `<base><field> <value> <timestamp>` unless the value is not
    /// finite: `base` is `<prefix>.<path>.` ([`Lines::start_base`]) and
    /// `field` ends with its space.
    fn push(&mut self, base: &str, field: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.text.push_str(base);
        self.text.push_str(field);
        if value.fract() == 0.0 && value.abs() < 1e15 {
            self.text.push_str(itoa::Buffer::new().format(value as i64));
        } else {
            let _ = write!(self.text, "{value}");
        }
        self.text.push_str(&self.tail);
        self.count += 1;
    }

    /// Empty lines with the same prefix and timestamp, to be appended later.
    fn sibling(&self) -> Lines {
        Lines {
            head: self.head.clone(),
            tail: self.tail.clone(),
            ..Lines::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The lines of `batch`, and how many.
    fn encode(plaintext: &Plaintext, batch: &Batch) -> (String, usize) {
        let mut written = Vec::new();
        let count = plaintext.write_to(batch, &mut written).unwrap();
        (String::from_utf8(written).unwrap(), count)
    }

    #[test]
    fn sanitising_keeps_only_path_safe_bytes() {
        assert_eq!(sanitize("fe.dotted.name"), "fe_dotted_name");
        assert_eq!(sanitize("be app\nx 1700000000\nevil"), "be_app_x_1700000000_evil");
        assert!(matches!(sanitize("Ulimit-n:ok_9"), Cow::Borrowed("Ulimit-n:ok_9")));
        assert_eq!(sanitize("é/ü"), "___");
    }

    #[test]
    fn the_prefix_follows_namespace_hostname_and_fqdn() {
        assert_eq!(
            prefix("loadbalancers", Some("lb1.example.com"), true),
            "loadbalancers.lb1_example_com.haproxy"
        );
        assert_eq!(
            prefix("loadbalancers", Some("lb1.example.com"), false),
            "loadbalancers.lb1.haproxy"
        );
        assert_eq!(prefix("lbs", None, true), "lbs.haproxy");
        assert_eq!(prefix("lbs", Some("odd host"), true), "lbs.odd_host.haproxy");
    }

    #[test]
    fn every_entity_has_its_path_with_names_sanitised_and_missing_values_left_out() {
        let mut batch = Batch::new(1_700_000_000);
        batch
            .section(vec!["CurrConns".into(), "Idle_pct".into()])
            .push(Member::ungrouped(Entity::Daemon), [40.0, 10.606601717798213]);
        batch
            .section(vec!["CpuUsagePct".into()])
            .push(Member::ungrouped(Entity::Process("admin 1.sock".into())), [-3.0]);
        batch
            .section(vec!["scur".into()])
            .push(Member::ungrouped(Entity::Frontend("fe.x".into())), [1.0]);
        let servers = batch.section(vec!["stot".into(), "rtime".into()]);
        servers.push(
            Member::ungrouped(Entity::Server {
                backend: "be app".into(),
                server: "s\n1".into(),
            }),
            [2.0, f64::NAN],
        );
        batch
            .section(vec!["stot".into()])
            .push(Member::ungrouped(Entity::ServerAcrossBackends("s.1".into())), [7.0]);
        batch.pipeline("FailedSockets", 0.0);
        let plaintext = Plaintext {
            prefix: "lb.haproxy".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        };
        let (text, count) = encode(&plaintext, &batch);
        assert_eq!(
            text,
            "lb.haproxy.daemon.CurrConns 40 1700000000\n\
             lb.haproxy.daemon.Idle_pct 10.606601717798213 1700000000\n\
             lb.haproxy.daemon.process.admin_1_sock.CpuUsagePct -3 1700000000\n\
             lb.haproxy.frontend.fe_x.scur 1 1700000000\n\
             lb.haproxy.backend.be_app.server.s_1.stot 2 1700000000\n\
             lb.haproxy.server.s_1.stot 7 1700000000\n\
             lb.haproxy.haproxystats.FailedSockets 0 1700000000\n"
        );
        assert_eq!(count, 7);
    }

    #[test]
    fn grouped_entities_go_under_the_group_namespace_and_also_plain_with_double_writes() {
        let mut batch = Batch::new(5);
        let backends = batch.section(vec!["bin".into(), "bout".into()]);
        backends.push(
            Member {
                entity: Entity::Backend("be_web".into()),
                group: Some(Arc::from("web")),
            },
            [1.0, 2.0],
        );
        backends.push(Member::ungrouped(Entity::Backend("be_other".into())), [3.0, 4.0]);
        let mut plaintext = Plaintext {
            prefix: "p".into(),
            group_namespace: Some("grp".into()),
            double_writes: true,
            per_round_host: None,
        };
        assert_eq!(
            encode(&plaintext, &batch).0,
            "p.grp.web.backend.be_web.bin 1 5\np.backend.be_web.bin 1 5\n\
             p.grp.web.backend.be_web.bout 2 5\np.backend.be_web.bout 2 5\n\
             p.backend.be_other.bin 3 5\np.backend.be_other.bout 4 5\n"
        );
        plaintext.double_writes = false;
        assert_eq!(
            encode(&plaintext, &batch).0,
            "p.grp.web.backend.be_web.bin 1 5\np.grp.web.backend.be_web.bout 2 5\n\
             p.backend.be_other.bin 3 5\np.backend.be_other.bout 4 5\n"
        );
        plaintext.group_namespace = None;
        assert!(
            encode(&plaintext, &batch)
                .0
                .starts_with("p.backend.be_web.bin 1 5\np.backend.be_web.bout 2 5\n")
        );
    }

    #[test]
    fn blocks_and_sections_come_out_in_order_and_are_counted() {
        let mut batch = Batch::new(9);
        let section = batch.section(vec!["a".into(), "b".into()]);
        for row in 0..STREAMED_ROWS * 3 + 7 {
            section.push(Member::ungrouped(Entity::Backend(format!("b{row}"))), [row as f64, 0.5]);
        }
        batch.section(Vec::new());
        batch.pipeline("X", 1.0);
        let plaintext = Plaintext {
            prefix: "p".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        };
        let (text, count) = encode(&plaintext, &batch);
        let mut expected: String = (0..STREAMED_ROWS * 3 + 7)
            .map(|row| format!("p.backend.b{row}.a {row} 9\np.backend.b{row}.b 0.5 9\n"))
            .collect();
        expected.push_str("p.haproxystats.X 1 9\n");
        assert_eq!(text, expected);
        assert_eq!(count, (STREAMED_ROWS * 3 + 7) * 2 + 1);
    }

    #[test]
    fn a_writer_that_fails_stops_the_encoding_threads_and_says_why() {
        struct Full(usize);
        impl std::io::Write for Full {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if self.0 < bytes.len() {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut batch = Batch::new(1);
        let section = batch.section(vec!["v".into()]);
        for row in 0..STREAMED_ROWS * 20 {
            section.push(Member::ungrouped(Entity::Frontend(format!("f{row}"))), [1.0]);
        }
        let plaintext = Plaintext {
            prefix: "p".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        };
        let error = plaintext.write_to(&batch, &mut Full(10_000)).unwrap_err();
        assert_eq!(error.to_string(), "disk full");
    }

    #[test]
    fn a_large_section_encoded_on_two_threads_keeps_its_order() {
        let mut batch = Batch::new(1);
        let rows = STREAMED_ROWS * 8 + 1;
        let section = batch.section(vec!["v".into()]);
        for row in 0..rows {
            section.push(Member::ungrouped(Entity::Frontend(format!("f{row}"))), [row as f64]);
        }
        let plaintext = Plaintext {
            prefix: "p".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        };
        let (text, count) = encode(&plaintext, &batch);
        let expected: String = (0..rows).map(|row| format!("p.frontend.f{row}.v {row} 1\n")).collect();
        assert_eq!(text, expected);
        assert_eq!(count, rows);
    }
}
