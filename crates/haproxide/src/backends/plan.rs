//! What must change in one HAProxy backend so that its servers are the ones
//! discovery names: a pure function of the wanted targets and the servers
//! HAProxy reports, so every rule is tested without a HAProxy.
//!
//! Two ways to change a backend ([`Mode`]):
//! - **dynamic** (HAProxy 2.6+, a dynamic balance algorithm): a target gets a
//!   server of its own, `add server`, named from its address; one that left is
//!   drained (`state drain`), and removed (`state maint`, `del server`) once its
//!   sessions are over or `drain-timeout` passed. Only servers whose name starts
//!   with the configured prefix are discovery's: the others are left alone.
//! - **slots**: `server-template` slots; a free slot (in maintenance) gets the
//!   target's address (`set server … addr … port …`, `state ready`); one whose
//!   target left is drained, then put back into maintenance.
//!
//! Safety: when discovery names fewer targets than `min-servers`, nothing is
//! drained; at most `max-leave` of the serving servers start draining in one
//! pass. A server someone else drained is not made ready again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How servers are added and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `add server` / `del server`.
    Dynamic,
    /// `server-template` slots, re-addressed.
    Slots,
}

/// A server discovery wants, with its port settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// Its address.
    pub address: IpAddr,
    /// Its port.
    pub port: u16,
    /// A weight, when the source gives one.
    pub weight: Option<u32>,
}

impl Target {
    /// `address:port`, IPv6 in brackets.
    pub fn endpoint(&self) -> String {
        match self.address {
            IpAddr::V4(v4) => format!("{v4}:{}", self.port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", self.port),
        }
    }
}

/// A server as HAProxy reports it (`show servers state`, `show stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    /// Its name.
    pub name: String,
    /// Its address (`None`: unset or not an IP).
    pub address: Option<IpAddr>,
    /// Its port.
    pub port: u16,
    /// `srv_admin_state`, HAProxy's bit mask.
    pub admin: u32,
    /// Its user weight.
    pub weight: u32,
    /// Sessions on it now (`scur`).
    pub sessions: u64,
}

/// Admin-state bits: forced, inherited and resolution maintenance. The
/// configuration's `disabled` (CMAINT, 0x04) comes with forced maintenance
/// and stays set after `state ready`, so it alone means nothing.
const MAINT: u32 = 0x01 | 0x02 | 0x20;
/// Admin-state bits: forced and inherited drain.
const DRAIN: u32 = 0x08 | 0x10;

impl ServerView {
    /// In maintenance (forced, from the configuration, inherited or by resolution).
    pub fn in_maintenance(&self) -> bool {
        self.admin & MAINT != 0
    }

    /// Draining.
    pub fn draining(&self) -> bool {
        self.admin & DRAIN != 0
    }

    fn serves(&self, target: &Target) -> bool {
        self.address == Some(target.address) && self.port == target.port
    }
}

/// One change to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create a server for `target` (dynamic).
    Add(Target),
    /// Give a free slot `target`'s address (slots).
    Assign(Target),
    /// Make a server this controller drained serve again.
    Ready,
    /// Set the weight the source asks for.
    Weight(u32),
    /// Stop sending new sessions to it.
    Drain,
    /// Take it away: `del server` (dynamic) or back to maintenance (slots).
    Remove,
}

/// A change and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The server it is for.
    pub server: String,
    /// What changes.
    pub change: Change,
    /// Why, for the log.
    pub reason: String,
}

/// What a pass will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, in order: additions first, so capacity comes before it goes.
    pub steps: Vec<Step>,
    /// What cannot be done (no free slot) or is held back (min-servers).
    pub problems: Vec<String>,
}

/// The rules a plan follows.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// Dynamic servers or slots.
    pub mode: Mode,
    /// The name prefix of discovery's servers (dynamic) or of the slots.
    pub prefix: &'a str,
    /// Fewer wanted targets than this: nothing is drained.
    pub min_servers: usize,
    /// The share of serving servers that may start draining in one pass.
    pub max_leave: f64,
    /// How long a drained server may keep sessions before it is removed.
    pub drain_timeout: Duration,
}

/// The targets of what a source `found`, each port settled (the backend's
/// `port`, else the source's); a problem, naming the backend's `section`,
/// for each one without a port.
pub fn settle_ports(
    found: &[crate::backends::sources::Found],
    port: Option<u16>,
    section: &str,
    problems: &mut Vec<String>,
) -> BTreeSet<Target> {
    let mut targets = BTreeSet::new();
    for item in found {
        match port.or(item.port) {
            Some(port) => {
                targets.insert(Target {
                    address: item.address,
                    port,
                    weight: item.weight,
                });
            }
            None => problems.push(format!("{} has no port, and [{section}] sets none", item.address)),
        }
    }
    targets
}

/// The name of the dynamic server for `target`: the prefix, then the
/// address and port (`srv_10.0.0.1_8080`; IPv6 colons become `-`).
pub fn server_name(prefix: &str, target: &Target) -> String {
    let address = target.address.to_string().replace(':', "-");
    format!("{prefix}{address}_{}", target.port)
}

/// The plan for `servers` to become `wanted`; `drained` holds the servers
/// this controller drained, and since when.
pub fn plan(
    rules: &Rules<'_>,
    wanted: &BTreeSet<Target>,
    servers: &[ServerView],
    drained: &HashMap<String, Instant>,
    now: Instant,
) -> Plan {
    let mut plan = Plan::default();
    let ours: Vec<&ServerView> = servers
        .iter()
        .filter(|server| server.name.starts_with(rules.prefix))
        .collect();
    // The server serving each wanted target, if any: for slots, a slot not
    // in maintenance with its address.
    let mut holder: BTreeMap<(IpAddr, u16), &ServerView> = BTreeMap::new();
    for server in &ours {
        let active = match rules.mode {
            Mode::Dynamic => true,
            Mode::Slots => !server.in_maintenance(),
        };
        if let Some(address) = server.address
            && active
        {
            holder.entry((address, server.port)).or_insert(server);
        }
    }
    let mut free: Vec<&ServerView> = match rules.mode {
        Mode::Slots => ours.iter().copied().filter(|server| server.in_maintenance()).collect(),
        Mode::Dynamic => Vec::new(),
    };
    for target in wanted {
        match holder.get(&(target.address, target.port)) {
            Some(server) => {
                if server.draining() && drained.contains_key(&server.name) {
                    plan.steps.push(step(
                        server,
                        Change::Ready,
                        format!("{} is discovered again", target.endpoint()),
                    ));
                }
                if let Some(weight) = target.weight
                    && weight != server.weight
                {
                    plan.steps.push(step(
                        server,
                        Change::Weight(weight),
                        format!("the source gives {} weight {weight}", target.endpoint()),
                    ));
                }
            }
            None => match rules.mode {
                Mode::Dynamic => plan.steps.push(Step {
                    server: server_name(rules.prefix, target),
                    change: Change::Add(*target),
                    reason: format!("{} is discovered", target.endpoint()),
                }),
                Mode::Slots => {
                    if free.is_empty() {
                        plan.problems.push(format!(
                            "no free slot for {}: all {} slots named {}* are in use; add slots to the server-template",
                            target.endpoint(),
                            ours.len(),
                            rules.prefix
                        ));
                    } else {
                        let slot = free.remove(0);
                        plan.steps.push(step(
                            slot,
                            Change::Assign(*target),
                            format!("{} is discovered", target.endpoint()),
                        ));
                    }
                }
            },
        }
    }
    let unwanted: Vec<&ServerView> = ours
        .iter()
        .copied()
        .filter(|server| match rules.mode {
            Mode::Dynamic => true,
            Mode::Slots => !server.in_maintenance(),
        })
        .filter(|server| !wanted.iter().any(|target| server.serves(target)))
        .collect();
    if unwanted.is_empty() {
        return plan;
    }
    if wanted.len() < rules.min_servers {
        plan.problems.push(format!(
            "discovery names {} servers, fewer than min-servers = {}: none of the {} others is removed",
            wanted.len(),
            rules.min_servers,
            unwanted.len()
        ));
        return plan;
    }
    let serving = holder.len().max(unwanted.len());
    let may_leave = leave_limit(rules.max_leave, serving);
    let mut leaving = unwanted.iter().filter(|server| server.draining()).count();
    for server in unwanted {
        let why = match server.address {
            Some(address) => format!("{} is no longer discovered", endpoint(address, server.port)),
            None => "it has no address".to_owned(),
        };
        if server.draining() || server.in_maintenance() {
            let since = drained.get(&server.name).copied();
            let over = server.sessions == 0 || server.in_maintenance();
            let timed_out = since.is_some_and(|since| now.duration_since(since) >= rules.drain_timeout);
            if over || timed_out {
                let reason = if over {
                    format!("{why}; drained")
                } else {
                    format!("{why}; drain-timeout passed with {} sessions", server.sessions)
                };
                plan.steps.push(step(server, Change::Remove, reason));
            }
            continue;
        }
        if leaving >= may_leave {
            plan.problems.push(format!(
                "{} waits: at most {may_leave} of {serving} servers may leave at once (max-leave = {})",
                server.name, rules.max_leave
            ));
            continue;
        }
        leaving += 1;
        plan.steps.push(step(server, Change::Drain, why));
    }
    plan
}

fn step(server: &ServerView, change: Change, reason: String) -> Step {
    Step {
        server: server.name.clone(),
        change,
        reason,
    }
}

fn endpoint(address: IpAddr, port: u16) -> String {
    Target {
        address,
        port,
        weight: None,
    }
    .endpoint()
}

/// How many of `serving` servers may be leaving at once: at least one.
fn leave_limit(max_leave: f64, serving: usize) -> usize {
    let share = (max_leave * serving as f64).floor();
    if share >= serving as f64 {
        serving
    } else {
        (share as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(last: u8, port: u16) -> Target {
        Target {
            address: IpAddr::from([127, 0, 0, last]),
            port,
            weight: None,
        }
    }

    fn server(name: &str, address: Option<Target>, admin: u32, sessions: u64) -> ServerView {
        ServerView {
            name: name.into(),
            address: address.map(|target| target.address),
            port: address.map_or(0, |target| target.port),
            admin,
            weight: 1,
            sessions,
        }
    }

    fn rules(mode: Mode) -> Rules<'static> {
        Rules {
            mode,
            prefix: if mode == Mode::Dynamic { "srv_" } else { "slot" },
            min_servers: 1,
            max_leave: 1.0,
            drain_timeout: Duration::from_secs(30),
        }
    }

    fn changes(plan: &Plan) -> Vec<(String, Change)> {
        plan.steps
            .iter()
            .map(|step| (step.server.clone(), step.change.clone()))
            .collect()
    }

    #[test]
    fn dynamic_servers_come_and_drain_then_go() {
        let (a, b, c) = (target(1, 80), target(2, 80), target(3, 80));
        let servers = [
            server("srv_127.0.0.1_80", Some(a), 0, 4),
            server("srv_127.0.0.2_80", Some(b), 0, 2),
            server("static", Some(target(9, 80)), 0, 0),
        ];
        let wanted = BTreeSet::from([a, c]);
        let now = Instant::now();
        let plan = plan(&rules(Mode::Dynamic), &wanted, &servers, &HashMap::new(), now);
        assert_eq!(
            changes(&plan),
            [
                ("srv_127.0.0.3_80".to_owned(), Change::Add(c)),
                ("srv_127.0.0.2_80".to_owned(), Change::Drain),
            ]
        );
        assert_eq!(plan.steps[1].reason, "127.0.0.2:80 is no longer discovered");

        // Draining with sessions: wait; without: remove; past the timeout: remove.
        let drained = HashMap::from([("srv_127.0.0.2_80".to_owned(), now)]);
        let busy = [server("srv_127.0.0.2_80", Some(b), 0x08, 2)];
        assert!(
            super::plan(&rules(Mode::Dynamic), &wanted, &busy, &drained, now)
                .steps
                .iter()
                .all(|step| step.change != Change::Remove)
        );
        let idle = [server("srv_127.0.0.2_80", Some(b), 0x08, 0)];
        let removed = super::plan(&rules(Mode::Dynamic), &wanted, &idle, &drained, now);
        assert_eq!(removed.steps.last().unwrap().change, Change::Remove);
        assert_eq!(
            removed.steps.last().unwrap().reason,
            "127.0.0.2:80 is no longer discovered; drained"
        );
        let late = super::plan(
            &rules(Mode::Dynamic),
            &wanted,
            &busy,
            &drained,
            now + Duration::from_secs(31),
        );
        assert_eq!(
            late.steps.last().unwrap().reason,
            "127.0.0.2:80 is no longer discovered; drain-timeout passed with 2 sessions"
        );
    }

    #[test]
    fn a_target_back_while_draining_is_made_ready_but_not_one_someone_else_drained() {
        let a = target(1, 80);
        let servers = [server("srv_127.0.0.1_80", Some(a), 0x08, 1)];
        let wanted = BTreeSet::from([a]);
        let now = Instant::now();
        let ours = HashMap::from([("srv_127.0.0.1_80".to_owned(), now)]);
        assert_eq!(
            changes(&plan(&rules(Mode::Dynamic), &wanted, &servers, &ours, now)),
            [("srv_127.0.0.1_80".to_owned(), Change::Ready)]
        );
        assert!(
            plan(&rules(Mode::Dynamic), &wanted, &servers, &HashMap::new(), now)
                .steps
                .is_empty()
        );
    }

    #[test]
    fn slots_are_assigned_released_and_run_out_with_a_clear_problem() {
        let (a, b, c) = (target(1, 80), target(2, 80), target(3, 80));
        // slot1 was brought up from `disabled`: CMAINT (0x04) stays set.
        let servers = [
            server("slot1", Some(a), 0x04, 0),
            server("slot2", None, 0x05, 0),
            server("other", None, 0x05, 0),
        ];
        let wanted = BTreeSet::from([a, b, c]);
        let plan = plan(&rules(Mode::Slots), &wanted, &servers, &HashMap::new(), Instant::now());
        assert_eq!(changes(&plan), [("slot2".to_owned(), Change::Assign(b))]);
        assert_eq!(
            plan.problems,
            ["no free slot for 127.0.0.3:80: all 2 slots named slot* are in use; add slots to the server-template"]
        );
        let gone = super::plan(
            &rules(Mode::Slots),
            &BTreeSet::from([b]),
            &servers,
            &HashMap::new(),
            Instant::now(),
        );
        assert_eq!(
            changes(&gone),
            [
                ("slot2".to_owned(), Change::Assign(b)),
                ("slot1".to_owned(), Change::Drain)
            ]
        );
    }

    #[test]
    fn an_empty_or_small_discovery_drains_nothing_and_max_leave_paces_the_rest() {
        let servers: Vec<ServerView> = (1..=4)
            .map(|last| server(&format!("srv_127.0.0.{last}_80"), Some(target(last, 80)), 0, 0))
            .collect();
        let now = Instant::now();
        let empty = plan(&rules(Mode::Dynamic), &BTreeSet::new(), &servers, &HashMap::new(), now);
        assert!(empty.steps.is_empty());
        assert_eq!(
            empty.problems,
            ["discovery names 0 servers, fewer than min-servers = 1: none of the 4 others is removed"]
        );
        let half = Rules {
            max_leave: 0.5,
            ..rules(Mode::Dynamic)
        };
        let one = BTreeSet::from([target(1, 80)]);
        let paced = plan(&half, &one, &servers, &HashMap::new(), now);
        assert_eq!(
            paced.steps.iter().filter(|step| step.change == Change::Drain).count(),
            2
        );
        assert_eq!(paced.problems.len(), 1);
        assert!(paced.problems[0].ends_with("at most 2 of 4 servers may leave at once (max-leave = 0.5)"));
    }

    #[test]
    fn names_and_weights() {
        let v6 = Target {
            address: "::1".parse().unwrap(),
            port: 8080,
            weight: Some(7),
        };
        assert_eq!(server_name("srv_", &v6), "srv_--1_8080");
        assert_eq!(v6.endpoint(), "[::1]:8080");
        let servers = [server("srv_--1_8080", Some(v6), 0, 0)];
        let plan = plan(
            &rules(Mode::Dynamic),
            &BTreeSet::from([v6]),
            &servers,
            &HashMap::new(),
            Instant::now(),
        );
        assert_eq!(changes(&plan), [("srv_--1_8080".to_owned(), Change::Weight(7))]);
    }
}
