//! Rounds put back together from their parts, and which offsets may be
//! committed: plain bookkeeping, no Kafka client, so it is tested alone.
//!
//! Every message consumed is *pending* until the round it belongs to is
//! finished with (confirmed by every sink, refused, given up or found to be
//! a duplicate): a partition's commit point is its lowest pending offset,
//! or one past the last offset consumed when none is pending. So a commit
//! never passes a round that is not safe, and a crash costs duplicates,
//! never a gap.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A message's place: partition and offset.
pub type Position = (i32, i64);

/// The most parts a round may announce (9 GB of 900K parts).
const MAX_PARTS: u32 = 10_000;

/// What a part's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHeader {
    /// The load balancer's host name.
    pub host: String,
    /// The round's name in the load balancer's spool.
    pub round: String,
    /// The id of the attempt that sent it.
    pub send: String,
    /// Its index, from 0.
    pub part: u32,
    /// How many parts the round has.
    pub parts: u32,
}

impl PartHeader {
    /// Reads the headers through `header` (a header's value by name); the
    /// error names the header missing or wrong.
    pub fn read<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Result<PartHeader, String> {
        use crate::stats::sinks::kafka_rounds::header::{HOST, PART, PARTS, ROUND, SEND};
        let text = |name: &str| -> Result<String, String> {
            let value = header(name).ok_or(format!("no `{name}` header"))?;
            let value = std::str::from_utf8(value).map_err(|_| format!("the `{name}` header is not UTF-8"))?;
            if value.is_empty() {
                return Err(format!("the `{name}` header is empty"));
            }
            Ok(value.to_owned())
        };
        let number = |name: &str| -> Result<u32, String> {
            text(name)?
                .parse()
                .map_err(|_| format!("the `{name}` header is not a number"))
        };
        let header = PartHeader {
            host: text(HOST)?,
            round: text(ROUND)?,
            send: text(SEND)?,
            part: number(PART)?,
            parts: number(PARTS)?,
        };
        if header.parts == 0 || header.parts > MAX_PARTS {
            return Err(format!("`parts` is {}, not 1 to {MAX_PARTS}", header.parts));
        }
        if header.part >= header.parts {
            return Err(format!("part {} of {} parts", header.part, header.parts));
        }
        Ok(header)
    }
}

/// A round whose parts all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// The load balancer's host name.
    pub host: String,
    /// The round's name there.
    pub round: String,
    /// The compressed round, parts joined in order.
    pub bytes: Vec<u8>,
    /// How many parts it came in.
    pub parts: u32,
    /// Its messages.
    pub positions: Vec<Position>,
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// A part of a round still missing others.
    Waiting,
    /// The last part of a round.
    Complete(Assembled),
}

/// A round some of whose parts arrived.
#[derive(Debug)]
struct Partial {
    parts: Vec<Option<Vec<u8>>>,
    received: u32,
    positions: Vec<Position>,
    since: Instant,
}

/// A round given up on: parts missing after `part-timeout`, or superseded
/// by a later attempt at sending it that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenUp {
    /// The load balancer's host name.
    pub host: String,
    /// The round's name there.
    pub round: String,
    /// Parts that arrived, of how many.
    pub received: u32,
    /// How many it announced.
    pub parts: u32,
}

/// The offsets of one assigned partition.
#[derive(Debug, Default)]
struct Offsets {
    pending: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: Option<i64>,
    /// The last commit point handed out.
    committed: Option<i64>,
}

impl Offsets {
    fn commit_point(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }
}

/// Partial rounds and offsets of the partitions assigned.
#[derive(Debug, Default)]
pub struct Assembler {
    /// By partition, host, round and send id.
    partial: HashMap<(i32, String, String, String), Partial>,
    offsets: HashMap<i32, Offsets>,
}

impl Assembler {
    /// Takes a consumed message: its part (or why it is not one) and payload.
    /// A message that is no part is finished with at once: the error is
    /// returned for the caller to count and log.
    pub fn add(
        &mut self,
        position: Position,
        header: Result<PartHeader, String>,
        payload: &[u8],
        now: Instant,
    ) -> Result<Added, String> {
        let (partition, offset) = position;
        let offsets = self.offsets.entry(partition).or_default();
        offsets.next = Some(offsets.next.map_or(offset + 1, |next| next.max(offset + 1)));
        let header = header?;
        offsets.pending.insert(offset);
        let key = (partition, header.host, header.round, header.send);
        let partial = self.partial.entry(key.clone()).or_insert_with(|| Partial {
            parts: vec![None; header.parts as usize],
            received: 0,
            positions: Vec::new(),
            since: now,
        });
        partial.positions.push(position);
        if partial.parts.len() != header.parts as usize {
            // The same attempt cannot announce two counts: the round is broken.
            let announced = partial.parts.len();
            let positions = self
                .partial
                .remove(&key)
                .map(|partial| partial.positions)
                .unwrap_or_default();
            self.release(&positions);
            return Err(format!(
                "round {}/{}: parts of one send announce {announced} and {} parts",
                key.1, key.2, header.parts
            ));
        }
        let slot = &mut partial.parts[header.part as usize];
        if slot.is_none() {
            *slot = Some(payload.to_vec());
            partial.received += 1;
        }
        if partial.received < header.parts {
            return Ok(Added::Waiting);
        }
        let Some(partial) = self.partial.remove(&key) else {
            return Ok(Added::Waiting);
        };
        let (_, host, round, _) = key;
        let bytes = partial.parts.into_iter().flatten().flatten().collect();
        Ok(Added::Complete(Assembled {
            host,
            round,
            bytes,
            parts: header.parts,
            positions: partial.positions,
        }))
    }

    /// Gives up the other attempts at sending `host`'s `round`, now that
    /// one completed: their messages are finished with.
    pub fn supersede(&mut self, host: &str, round: &str) -> Vec<GivenUp> {
        self.give_up(|(_, other_host, other_round, _), _| other_host == host && other_round == round)
    }

    /// Gives up rounds whose first part came more than `timeout` before `now`.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<GivenUp> {
        self.give_up(|_, partial| now.duration_since(partial.since) > timeout)
    }

    fn give_up(&mut self, doomed: impl Fn(&(i32, String, String, String), &Partial) -> bool) -> Vec<GivenUp> {
        let keys: Vec<_> = self
            .partial
            .iter()
            .filter(|(key, partial)| doomed(key, partial))
            .map(|(key, _)| key.clone())
            .collect();
        let mut given_up = Vec::new();
        for key in keys {
            if let Some(partial) = self.partial.remove(&key) {
                self.release(&partial.positions);
                given_up.push(GivenUp {
                    host: key.1,
                    round: key.2,
                    received: partial.received,
                    parts: partial.parts.len() as u32,
                });
            }
        }
        given_up.sort_by(|a, b| (&a.host, &a.round).cmp(&(&b.host, &b.round)));
        given_up
    }

    /// Messages finished with: no longer holding their partitions' commit points back.
    pub fn release(&mut self, positions: &[Position]) {
        for (partition, offset) in positions {
            if let Some(offsets) = self.offsets.get_mut(partition) {
                offsets.pending.remove(offset);
            }
        }
    }

    /// The partitions whose commit point moved since the last call, and
    /// where to: the offset of the next message to read.
    pub fn commit_points(&mut self) -> Vec<Position> {
        let mut points: Vec<Position> = self
            .offsets
            .iter_mut()
            .filter_map(|(partition, offsets)| {
                let point = offsets.commit_point()?;
                (offsets.committed < Some(point)).then(|| {
                    offsets.committed = Some(point);
                    (*partition, point)
                })
            })
            .collect();
        points.sort_unstable();
        points
    }

    /// Partitions taken away by a rebalance: their commit points (for a
    /// last commit) and everything held for them is dropped; whoever gets
    /// them reads on from the last commit.
    pub fn revoke(&mut self, partitions: &[i32]) -> Vec<Position> {
        let points = partitions
            .iter()
            .filter_map(|partition| {
                let offsets = self.offsets.remove(partition)?;
                let point = offsets.commit_point()?;
                (offsets.committed < Some(point)).then_some((*partition, point))
            })
            .collect();
        self.partial
            .retain(|(partition, ..), _| !partitions.contains(partition));
        points
    }

    /// Rounds waiting for parts.
    pub fn partial_rounds(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(host: &str, round: &str, send: &str, part: u32, parts: u32) -> Result<PartHeader, String> {
        Ok(PartHeader {
            host: host.into(),
            round: round.into(),
            send: send.into(),
            part,
            parts,
        })
    }

    #[test]
    fn headers_are_read_and_checked() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.as_bytes())
            }
        };
        assert_eq!(
            PartHeader::read(headers(&[
                ("host", "lb1"),
                ("round", "1700000000.1"),
                ("send", "7-a-0"),
                ("part", "2"),
                ("parts", "3")
            ])),
            header("lb1", "1700000000.1", "7-a-0", 2, 3)
        );
        let refused = |pairs| PartHeader::read(headers(pairs)).unwrap_err();
        assert_eq!(refused(&[("host", "lb1")]), "no `round` header");
        assert_eq!(
            refused(&[
                ("host", ""),
                ("round", "1"),
                ("send", "s"),
                ("part", "0"),
                ("parts", "1")
            ]),
            "the `host` header is empty"
        );
        assert_eq!(
            refused(&[
                ("host", "h"),
                ("round", "1"),
                ("send", "s"),
                ("part", "x"),
                ("parts", "1")
            ]),
            "the `part` header is not a number"
        );
        assert_eq!(
            refused(&[
                ("host", "h"),
                ("round", "1"),
                ("send", "s"),
                ("part", "3"),
                ("parts", "3")
            ]),
            "part 3 of 3 parts"
        );
        assert_eq!(
            refused(&[
                ("host", "h"),
                ("round", "1"),
                ("send", "s"),
                ("part", "0"),
                ("parts", "0")
            ]),
            "`parts` is 0, not 1 to 10000"
        );
    }

    #[test]
    fn interleaved_rounds_complete_in_any_order_and_commits_wait_for_them() {
        let mut assembler = Assembler::default();
        let now = Instant::now();
        // lb1's round 100 in 2 parts (offsets 0 and 2), lb2's in 1 (offset 1),
        // parts of lb1's arriving last first.
        assert_eq!(
            assembler.add((0, 0), header("lb1", "100", "a", 1, 2), b"world", now),
            Ok(Added::Waiting)
        );
        let Ok(Added::Complete(lb2)) = assembler.add((0, 1), header("lb2", "100", "b", 0, 1), b"x", now) else {
            panic!("lb2's round is complete");
        };
        assert_eq!(lb2.positions, [(0, 1)]);
        assert_eq!(assembler.commit_points(), [(0, 0)], "offset 0 is still pending");
        let Ok(Added::Complete(lb1)) = assembler.add((0, 2), header("lb1", "100", "a", 0, 2), b"hello ", now) else {
            panic!("lb1's round is complete");
        };
        assert_eq!(
            (lb1.host.as_str(), lb1.round.as_str(), lb1.bytes.as_slice(), lb1.parts),
            ("lb1", "100", b"hello world".as_slice(), 2)
        );
        assert_eq!(lb1.positions, [(0, 0), (0, 2)]);
        assembler.release(&lb2.positions);
        assert_eq!(assembler.commit_points(), [], "offset 0 still holds the point at 0");
        assembler.release(&lb1.positions);
        assert_eq!(assembler.commit_points(), [(0, 3)]);
        assert_eq!(assembler.commit_points(), [], "only moves are reported");
    }

    #[test]
    fn a_message_that_is_no_part_is_finished_with_at_once() {
        let mut assembler = Assembler::default();
        let refused = assembler.add((3, 41), Err("no `host` header".into()), b"", Instant::now());
        assert_eq!(refused, Err("no `host` header".into()));
        assert_eq!(assembler.commit_points(), [(3, 42)]);
    }

    #[test]
    fn incomplete_and_superseded_rounds_are_given_up_and_their_offsets_released() {
        let mut assembler = Assembler::default();
        let start = Instant::now();
        // lb1's round 100: a first send with 1 of 3 parts, then a second send, whole.
        assembler
            .add((0, 10), header("lb1", "100", "first", 0, 3), b"a", start)
            .unwrap();
        assembler
            .add((0, 11), header("lb1", "100", "second", 0, 2), b"a", start)
            .unwrap();
        // lb3's round 200 never completes.
        assembler
            .add((1, 5), header("lb3", "200", "s", 1, 2), b"z", start)
            .unwrap();
        let Ok(Added::Complete(round)) = assembler.add((0, 12), header("lb1", "100", "second", 1, 2), b"b", start)
        else {
            panic!("the second send is complete");
        };
        assert_eq!(
            assembler.supersede("lb1", "100"),
            [GivenUp {
                host: "lb1".into(),
                round: "100".into(),
                received: 1,
                parts: 3
            }]
        );
        assembler.release(&round.positions);
        assert_eq!(assembler.commit_points(), [(0, 13), (1, 5)]);
        assert_eq!(
            assembler.expire(start + Duration::from_secs(30), Duration::from_secs(60)),
            []
        );
        assert_eq!(
            assembler.expire(start + Duration::from_secs(61), Duration::from_secs(60)),
            [GivenUp {
                host: "lb3".into(),
                round: "200".into(),
                received: 1,
                parts: 2
            }]
        );
        assert_eq!(assembler.commit_points(), [(1, 6)]);
        assert_eq!(assembler.partial_rounds(), 0);
    }

    #[test]
    fn a_revoked_partition_is_committed_where_it_stands_and_forgotten() {
        let mut assembler = Assembler::default();
        let now = Instant::now();
        assembler.add((0, 0), header("lb1", "1", "s", 0, 1), b"", now).unwrap();
        assembler.add((1, 7), header("lb2", "1", "s", 0, 2), b"", now).unwrap();
        assembler.release(&[(0, 0)]);
        assert_eq!(assembler.revoke(&[0, 1]), [(0, 1), (1, 7)]);
        assert_eq!(assembler.partial_rounds(), 0);
        assert_eq!(assembler.commit_points(), []);
        // Assigned again: read on from the commit, parts of the same send join anew.
        assembler.add((1, 7), header("lb2", "1", "s", 0, 2), b"a", now).unwrap();
        assert!(matches!(
            assembler.add((1, 8), header("lb2", "1", "s", 1, 2), b"b", now),
            Ok(Added::Complete(_))
        ));
    }

    #[test]
    fn a_send_announcing_two_counts_is_refused() {
        let mut assembler = Assembler::default();
        let now = Instant::now();
        assembler.add((0, 0), header("lb1", "1", "s", 0, 3), b"", now).unwrap();
        assert_eq!(
            assembler.add((0, 1), header("lb1", "1", "s", 1, 2), b"", now),
            Err("round lb1/1: parts of one send announce 3 and 2 parts".into())
        );
    }
}
