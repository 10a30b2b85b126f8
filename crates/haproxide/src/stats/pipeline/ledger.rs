//! The delivery ledger of `process`: which rounds wait to be read, which are
//! being read, where each round stands with each sink (in its lane, confirmed,
//! owed), and when a round's directory may be removed.
//!
//! It is plain synchronous state with no I/O and no tokio in it: the pipeline
//! holds it behind one lock, calls it, and wakes tasks by what it returns.
//! The rules it keeps:
//! - Rounds are taken oldest first, and a name is never waiting or being read
//!   twice. Each taken round gets a ticket; rounds are handed to the sinks in
//!   ticket order, whatever order the workers finish in.
//! - Each sink has a lane: rounds handed to it and not yet confirmed, in
//!   round order, holding at most its `queue-size` lines (one larger round may
//!   go alone). A sink that is down, that owes an older round, or whose lane
//!   is full does not get a round now: the round is *owed* to it and waits in
//!   the spool. Later rounds never overtake an owed one.
//! - A failed delivery empties the sink's lane into what it owes and marks
//!   it down; once it recovers, its oldest owed rounds are queued again, a
//!   few at a time (`refill`), to be read anew.
//! - A round may be removed only once every sink confirmed it.
//!
//! There is no cap on the number of sinks.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::stats::spool::{RoundKey, round_order};

/// A set of sinks, by index: as many as there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SinkSet(Vec<bool>);

impl SinkSet {
    fn insert(&mut self, sink: usize) {
        if self.0.len() <= sink {
            self.0.resize(sink + 1, false);
        }
        self.0[sink] = true;
    }

    fn remove(&mut self, sink: usize) {
        if let Some(member) = self.0.get_mut(sink) {
            *member = false;
        }
    }

    fn contains(&self, sink: usize) -> bool {
        self.0.get(sink).copied().unwrap_or(false)
    }

    fn len(&self) -> usize {
        self.0.iter().filter(|member| **member).count()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A round in a lane: its key, its size in lines and what the sink delivers.
#[derive(Debug, Clone)]
struct Queued<T> {
    key: RoundKey,
    lines: usize,
    round: T,
}

/// Where one sink stands.
#[derive(Debug)]
struct SinkState<T> {
    /// Rounds handed to it and not confirmed, in round order.
    lane: VecDeque<Queued<T>>,
    /// Lines in `lane`.
    lines: usize,
    /// Its `queue-size`: lines its lane may hold.
    queue_size: usize,
    /// Lines of rounds that found the lane full, since start.
    deferred: u64,
    /// Rounds it lacks that are not in its lane, oldest first.
    owed: BTreeSet<RoundKey>,
    /// Down since a failed delivery, until it recovered.
    down: bool,
}

/// What [`Ledger::dispatch`] did with a round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Sinks whose lane took the round: their delivery tasks are to be woken.
    pub lanes: Vec<usize>,
    /// Sinks whose lane was full, with the lines it held: the round waits in
    /// the spool for them (worth a log line).
    pub full: Vec<(usize, usize)>,
}

/// What [`Ledger::settle`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled<T> {
    /// The round every sink has now confirmed: its directory may be removed;
    /// [`Ledger::removed`] says when that is over.
    pub removable: Option<T>,
    /// The sink failed and was up until now: watch for its recovery.
    pub went_down: bool,
}

/// The ledger; `T` is what a lane hands its sink (shared, cheap to clone).
#[derive(Debug)]
pub struct Ledger<T> {
    sinks: Vec<SinkState<T>>,
    /// Rounds waiting to be read, oldest first.
    pending: BTreeSet<RoundKey>,
    /// Rounds being read and aggregated.
    busy: HashSet<String>,
    /// Rounds some sinks confirmed, until all have.
    confirmed: HashMap<String, SinkSet>,
    /// Rounds in lanes: the sinks whose lane holds each.
    held: HashMap<String, SinkSet>,
    /// Rounds every sink confirmed, while their directory is removed.
    removing: HashSet<String>,
    next_ticket: u64,
    /// Tickets below this were handed over (or given up).
    serving: u64,
    finished_early: BTreeSet<u64>,
    /// How many rounds of a sink's backlog are replayed at a time.
    refill: usize,
}

impl<T: Clone> Ledger<T> {
    /// A ledger for sinks with these `queue-size`s, replaying backlogs
    /// `refill` rounds at a time.
    pub fn new(queue_sizes: &[usize], refill: usize) -> Ledger<T> {
        Ledger {
            sinks: queue_sizes
                .iter()
                .map(|&queue_size| SinkState {
                    lane: VecDeque::new(),
                    lines: 0,
                    queue_size,
                    deferred: 0,
                    owed: BTreeSet::new(),
                    down: false,
                })
                .collect(),
            pending: BTreeSet::new(),
            busy: HashSet::new(),
            confirmed: HashMap::new(),
            held: HashMap::new(),
            removing: HashSet::new(),
            next_ticket: 0,
            serving: 0,
            finished_early: BTreeSet::new(),
            refill: refill.max(1),
        }
    }

    /// A round seen in the spool; `true` when it is newly waiting (a worker
    /// is to be woken). Hidden names and rounds already known are ignored.
    pub fn offer(&mut self, name: &str) -> bool {
        if name.starts_with('.')
            || self.busy.contains(name)
            || self.held.contains_key(name)
            || self.removing.contains(name)
        {
            return false;
        }
        self.pending.insert(round_order(name))
    }

    /// The oldest waiting round and its ticket, now being read.
    pub fn take(&mut self) -> Option<(String, u64)> {
        let (_, _, name) = self.pending.pop_first()?;
        self.busy.insert(name.clone());
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        Some((name, ticket))
    }

    /// Nothing is being read, in a lane or being removed: with nothing
    /// waiting either, a `--once` run is over.
    pub fn idle(&self) -> bool {
        self.busy.is_empty() && self.held.is_empty() && self.removing.is_empty()
    }

    /// Whether every round taken before `ticket` was handed over or given up.
    pub fn is_turn_of(&self, ticket: u64) -> bool {
        self.serving >= ticket
    }

    /// The worker is done with the round of `ticket` (handed over or given up).
    pub fn finished(&mut self, name: &str, ticket: u64) {
        self.busy.remove(name);
        self.finished_early.insert(ticket);
        while self.finished_early.remove(&self.serving) {
            self.serving += 1;
        }
    }

    /// Hands a round of `lines` lines to the lanes of the sinks that lack it.
    pub fn dispatch(&mut self, name: &str, lines: usize, round: &T) -> Dispatched {
        let key = round_order(name);
        let confirmed = self.confirmed.get(name).cloned().unwrap_or_default();
        let mut held = self.held.get(name).cloned().unwrap_or_default();
        let mut outcome = Dispatched::default();
        for (index, sink) in self.sinks.iter_mut().enumerate() {
            if confirmed.contains(index) || held.contains(index) {
                continue;
            }
            let waits = sink.down || sink.owed.range(..&key).next().is_some();
            let room = sink.lane.is_empty() || sink.lines + lines <= sink.queue_size;
            if !waits && !room {
                sink.deferred += lines as u64;
                outcome.full.push((index, sink.lines));
            }
            if waits || !room {
                sink.owed.insert(key.clone());
                continue;
            }
            sink.lines += lines;
            sink.lane.push_back(Queued {
                key: key.clone(),
                lines,
                round: round.clone(),
            });
            sink.owed.remove(&key);
            held.insert(index);
            outcome.lanes.push(index);
        }
        if !held.is_empty() {
            self.held.insert(name.to_owned(), held);
        }
        outcome
    }

    /// The round at the front of `sink`'s lane: the next one it delivers.
    pub fn front(&self, sink: usize) -> Option<T> {
        self.sinks.get(sink)?.lane.front().map(|queued| queued.round.clone())
    }

    /// `sink` delivered the front of its lane (`ok`) or failed it; failing
    /// also gives back the rest of its lane.
    pub fn settle(&mut self, sink: usize, ok: bool) -> Settled<T> {
        let mut settled = Settled {
            removable: None,
            went_down: false,
        };
        let Some(state) = self.sinks.get_mut(sink) else {
            return settled;
        };
        let Some(front) = state.lane.pop_front() else {
            return settled;
        };
        state.lines -= front.lines;
        let mut released = vec![front];
        if !ok {
            released.extend(state.lane.drain(..));
            state.lines = 0;
            state.owed.extend(released.iter().map(|queued| queued.key.clone()));
            settled.went_down = !state.down;
            state.down = true;
        }
        let sinks = self.sinks.len();
        for queued in released {
            let name = &queued.key.2;
            let still_held = self.held.get_mut(name).is_some_and(|held| {
                held.remove(sink);
                !held.is_empty()
            });
            if !still_held {
                self.held.remove(name);
            }
            if !ok {
                continue;
            }
            let confirmed = self.confirmed.entry(name.clone()).or_default();
            confirmed.insert(sink);
            if confirmed.len() == sinks {
                self.confirmed.remove(name);
                self.held.remove(name);
                self.removing.insert(name.clone());
                settled.removable = Some(queued.round);
            }
        }
        if ok && !self.sinks[sink].down {
            self.top_up(sink);
        }
        settled
    }

    /// `sink` recovered: its oldest owed rounds are queued to be read again.
    /// Returns how many rounds it owes.
    pub fn recovered(&mut self, sink: usize) -> usize {
        let Some(state) = self.sinks.get_mut(sink) else {
            return 0;
        };
        state.down = false;
        self.top_up(sink);
        self.sinks[sink].owed.len()
    }

    /// A round that is gone (quarantined or no longer in the spool): later
    /// rounds no longer wait for it.
    pub fn forget(&mut self, name: &str) {
        let key = round_order(name);
        self.confirmed.remove(name);
        for sink in 0..self.sinks.len() {
            if self.sinks[sink].owed.remove(&key) && !self.sinks[sink].down {
                self.top_up(sink);
            }
        }
    }

    /// The removal of a round every sink confirmed is over.
    pub fn removed(&mut self, name: &str) {
        self.removing.remove(name);
    }

    /// Rounds some sink has not confirmed yet.
    pub fn undelivered(&self) -> usize {
        self.sinks
            .iter()
            .flat_map(|sink| sink.owed.iter().map(|key| &key.2))
            .chain(self.held.keys())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Per sink: lines in its lane now, and lines it deferred since start.
    pub fn lane_metrics(&self) -> Vec<(usize, u64)> {
        self.sinks.iter().map(|sink| (sink.lines, sink.deferred)).collect()
    }

    /// Queues again the oldest rounds `sink` owes, enough to keep `refill`
    /// of them on their way to its lane: a whole backlog queued at once would
    /// be read and aggregated only to find the lane full.
    fn top_up(&mut self, sink: usize) {
        let state = &self.sinks[sink];
        let room = self.refill.saturating_sub(state.lane.len());
        for key in state.owed.iter().take(room) {
            if !self.busy.contains(&key.2) {
                self.pending.insert(key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of a scenario, as the pipeline would drive the ledger; the
    /// rounds' payload is their name, and every round has `lines` lines.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A round appears in the spool.
        Offer(&'static str),
        /// A worker takes the oldest waiting round; the name expected.
        Take(&'static str),
        /// The worker of that round finishes it and, in its turn, hands it to
        /// the lanes (of `lines` lines); the lanes expected to take it.
        Hand(&'static str, usize, &'static [usize]),
        /// A sink delivers the front of its lane (`true`) or fails it; the
        /// round expected to become removable.
        Deliver(usize, bool, Option<&'static str>),
        /// A sink recovers; the count of owed rounds expected.
        Recover(usize, usize),
        /// The removal of a round is over.
        Removed(&'static str),
    }

    use Step::*;

    /// Runs `steps` against a ledger of `sinks` sinks (queue-size 100 each)
    /// and a refill of 2; asserts each step's expected outcome; returns the
    /// ledger for final checks.
    fn run(sinks: usize, steps: &[Step]) -> Ledger<&'static str> {
        let mut ledger = Ledger::new(&vec![100; sinks], 2);
        let mut tickets: HashMap<&'static str, u64> = HashMap::new();
        for (index, step) in steps.iter().enumerate() {
            match *step {
                Offer(name) => {
                    ledger.offer(name);
                }
                Take(expected) => {
                    let (name, ticket) = ledger.take().unwrap_or_else(|| panic!("step {index}: nothing to take"));
                    assert_eq!(name, expected, "step {index}");
                    tickets.insert(expected, ticket);
                }
                Hand(name, lines, lanes) => {
                    let ticket = tickets[name];
                    assert!(ledger.is_turn_of(ticket), "step {index}: {name} handed out of turn");
                    assert_eq!(ledger.dispatch(name, lines, &name).lanes, lanes, "step {index}");
                    ledger.finished(name, ticket);
                }
                Deliver(sink, ok, removable) => {
                    assert_eq!(ledger.settle(sink, ok).removable, removable, "step {index}");
                }
                Recover(sink, owed) => assert_eq!(ledger.recovered(sink), owed, "step {index}"),
                Removed(name) => ledger.removed(name),
            }
        }
        ledger
    }

    #[test]
    fn scenarios() {
        struct Case {
            what: &'static str,
            sinks: usize,
            steps: &'static [Step],
            undelivered: usize,
            idle: bool,
        }
        let cases = [
            Case {
                what: "one sink: each round removable once confirmed",
                sinks: 1,
                steps: &[
                    Offer("2"),
                    Offer("1"),
                    Take("1"),
                    Take("2"),
                    Hand("1", 10, &[0]),
                    Hand("2", 10, &[0]),
                    Deliver(0, true, Some("1")),
                    Removed("1"),
                    Deliver(0, true, Some("2")),
                    Removed("2"),
                ],
                undelivered: 0,
                idle: true,
            },
            Case {
                what: "confirmations out of order across sinks: removal only after the last",
                sinks: 3,
                steps: &[
                    Offer("1"),
                    Offer("2"),
                    Take("1"),
                    Hand("1", 10, &[0, 1, 2]),
                    Take("2"),
                    Hand("2", 10, &[0, 1, 2]),
                    Deliver(2, true, None),
                    Deliver(2, true, None),
                    Deliver(0, true, None),
                    Deliver(1, true, Some("1")),
                    Deliver(1, true, None),
                    Deliver(0, true, Some("2")),
                ],
                undelivered: 0,
                idle: false,
            },
            Case {
                what: "a sink down while the other delivers; replay after recovery, oldest first",
                sinks: 2,
                steps: &[
                    Offer("1"),
                    Offer("2"),
                    Offer("3"),
                    Take("1"),
                    Hand("1", 10, &[0, 1]),
                    Deliver(1, false, None),
                    Take("2"),
                    Hand("2", 10, &[0]),
                    Take("3"),
                    Hand("3", 10, &[0]),
                    Deliver(0, true, None),
                    Deliver(0, true, None),
                    Deliver(0, true, None),
                    Recover(1, 3),
                    // Two of the three (the refill) are read again, oldest first.
                    Take("1"),
                    Take("2"),
                    Hand("1", 10, &[1]),
                    Hand("2", 10, &[1]),
                    Deliver(1, true, Some("1")),
                    Removed("1"),
                    Take("3"),
                    Deliver(1, true, Some("2")),
                    Removed("2"),
                    Hand("3", 10, &[1]),
                    Deliver(1, true, Some("3")),
                    Removed("3"),
                ],
                undelivered: 0,
                idle: true,
            },
            Case {
                what: "a full lane defers a round; later rounds do not overtake it",
                sinks: 1,
                steps: &[
                    Offer("1"),
                    Offer("2"),
                    Offer("3"),
                    Take("1"),
                    Hand("1", 60, &[0]),
                    Take("2"),
                    Hand("2", 60, &[]),
                    Take("3"),
                    Hand("3", 10, &[]),
                    Deliver(0, true, Some("1")),
                    Removed("1"),
                    Take("2"),
                    Take("3"),
                    Hand("2", 60, &[0]),
                    Hand("3", 10, &[0]),
                ],
                undelivered: 2,
                idle: false,
            },
        ];
        for case in cases {
            let ledger = run(case.sinks, case.steps);
            assert_eq!(ledger.undelivered(), case.undelivered, "{}", case.what);
            assert_eq!(ledger.idle(), case.idle, "{}", case.what);
        }
    }

    #[test]
    fn rounds_are_handed_over_in_the_order_taken_whatever_order_workers_finish() {
        let mut ledger: Ledger<&str> = Ledger::new(&[100], 2);
        for name in ["1", "2", "3"] {
            assert!(ledger.offer(name));
        }
        assert!(!ledger.offer("2"), "a waiting round is not queued twice");
        assert!(!ledger.offer(".removing-1"), "hidden names are not rounds");
        let taken: Vec<(String, u64)> = std::iter::from_fn(|| ledger.take()).collect();
        assert_eq!(taken.iter().map(|(_, ticket)| *ticket).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(!ledger.offer("1"), "a round being read is not queued again");
        assert!(!ledger.is_turn_of(2));
        ledger.finished("3", 2);
        assert!(!ledger.is_turn_of(2), "round 3 waits for 1 and 2");
        ledger.finished("1", 0);
        assert!(ledger.is_turn_of(1) && !ledger.is_turn_of(2));
        ledger.finished("2", 1);
        assert!(ledger.is_turn_of(3));
    }

    #[test]
    fn more_than_64_sinks_each_must_confirm() {
        let sinks = 70;
        let mut ledger: Ledger<&str> = Ledger::new(&vec![100; sinks], 2);
        ledger.offer("1");
        let (name, ticket) = ledger.take().unwrap();
        assert_eq!(ledger.dispatch(&name, 5, &"1").lanes, (0..sinks).collect::<Vec<_>>());
        ledger.finished(&name, ticket);
        for sink in 0..sinks - 1 {
            assert_eq!(ledger.settle(sink, true).removable, None, "sink {sink}");
        }
        assert_eq!(ledger.undelivered(), 1);
        assert_eq!(ledger.settle(sinks - 1, true).removable, Some("1"));
        assert!(!ledger.offer("1"), "a round being removed is not read again");
        ledger.removed("1");
        assert!(ledger.idle());
    }

    #[test]
    fn a_failure_gives_back_the_whole_lane_and_forgetting_releases_later_rounds() {
        let mut ledger: Ledger<&str> = Ledger::new(&[100, 100], 2);
        for name in ["1", "2"] {
            ledger.offer(name);
            let (name, ticket) = ledger.take().unwrap();
            ledger.dispatch(&name, 10, &"x");
            ledger.finished(&name, ticket);
        }
        let failed = ledger.settle(1, false);
        assert!(failed.went_down);
        assert_eq!(ledger.lane_metrics(), [(20, 0), (0, 0)]);
        assert!(!ledger.settle(1, false).went_down, "an empty lane settles nothing");
        assert_eq!(ledger.undelivered(), 2);
        // Sink 0 confirms both: they stay, sink 1 lacks them.
        assert_eq!(ledger.settle(0, true).removable, None);
        assert_eq!(ledger.settle(0, true).removable, None);
        assert!(ledger.idle(), "nothing in lanes; the rounds wait in the spool");
        // Round 1 vanishes from the spool: sink 1 no longer owes it, only round 2.
        ledger.forget("1");
        ledger.recovered(1);
        assert_eq!(ledger.take().map(|(name, _)| name).as_deref(), Some("2"));
    }

    #[test]
    fn a_round_larger_than_the_queue_goes_alone_and_deferrals_are_counted() {
        let mut ledger: Ledger<&str> = Ledger::new(&[50], 4);
        for name in ["1", "2"] {
            ledger.offer(name);
        }
        let (first, ticket) = ledger.take().unwrap();
        assert_eq!(
            ledger.dispatch(&first, 80, &"big").lanes,
            [0],
            "an empty lane takes any round"
        );
        ledger.finished(&first, ticket);
        let (second, ticket) = ledger.take().unwrap();
        let outcome = ledger.dispatch(&second, 10, &"small");
        assert_eq!(
            outcome,
            Dispatched {
                lanes: vec![],
                full: vec![(0, 80)]
            }
        );
        ledger.finished(&second, ticket);
        assert_eq!(ledger.lane_metrics(), [(80, 10)]);
    }
}
