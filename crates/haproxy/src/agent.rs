//! Agent-check replies: the one line an agent answers HAProxy's
//! `agent-check` with (weight, admin state, health, `maxconn:`), parsed and
//! rendered as HAProxy reads it.
//!
//! HAProxy splits the line on spaces, tabs and commas and reads the words in
//! any order, case-insensitively; the last word of a kind wins. A reply is
//! rendered in one fixed order, `<weight> <admin> <health> <maxconn> <other…>
//! #<description>`, so `24% ready up` renders as Datawave's agent wrote it.

use std::fmt;
use std::str::FromStr;

/// Administrative state an agent can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// `ready`: clears DRAIN and MAINT.
    Ready,
    /// `drain`: no new non-persistent traffic.
    Drain,
    /// `maint`: no traffic at all.
    Maint,
}

/// Operational health an agent can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// `up` (effective only if the regular check passes too).
    Up,
    /// `down`.
    Down,
    /// `fail`.
    Fail,
    /// `stopped`.
    Stopped,
}

/// A weight an agent can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// `<n>%`: relative to the server's configured weight.
    Percent(u32),
    /// `weight:<n>`: absolute, 0 to 256 (HAProxy 3.1 and later).
    Absolute(u32),
}

/// One agent-check reply. The empty reply (an empty line) changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentReply {
    /// The weight word, if any.
    pub weight: Option<Weight>,
    /// The admin-state word, if any.
    pub admin: Option<AdminState>,
    /// The health word, if any.
    pub health: Option<Health>,
    /// `maxconn:<n>`, if any.
    pub maxconn: Option<u32>,
    /// Words HAProxy does not know: it reports each as an agent error.
    /// Every character but letters, digits, `_`, `-` and `.` becomes `_`.
    pub other: Vec<String>,
    /// Text after `#`, shown with a health word.
    pub description: Option<String>,
}

/// A reply word HAProxy would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?}: {reason}")]
pub struct ReplyError {
    /// The word.
    pub word: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AgentReply {
    /// Whether it has no word at all (it is then an empty line).
    pub fn is_empty(&self) -> bool {
        *self == AgentReply::default()
    }
}

impl FromStr for AgentReply {
    type Err = ReplyError;

    /// Reads a reply as HAProxy does; a weight HAProxy would reject (`0.5%`,
    /// `weight:300`) or a bad `maxconn:` is an error. Unknown words are kept
    /// (sanitised) in [`AgentReply::other`].
    fn from_str(text: &str) -> Result<AgentReply, ReplyError> {
        let line = text.split(['\r', '\n']).next().unwrap_or_default();
        // The description is one line of text: control characters go.
        let (words, description) = match line.split_once('#') {
            Some((words, description)) => {
                let flat: String = description.chars().filter(|c| !c.is_control()).collect();
                (words, Some(flat.trim().to_owned()))
            }
            None => (line, None),
        };
        let mut reply = AgentReply {
            description: description.filter(|text| !text.is_empty()),
            ..AgentReply::default()
        };
        for word in words.split([' ', '\t', ',']).filter(|word| !word.is_empty()) {
            let lower = word.to_ascii_lowercase();
            let bad = |reason| ReplyError {
                word: word.to_owned(),
                reason,
            };
            match lower.as_str() {
                "ready" => reply.admin = Some(AdminState::Ready),
                "drain" => reply.admin = Some(AdminState::Drain),
                "maint" => reply.admin = Some(AdminState::Maint),
                "up" => reply.health = Some(Health::Up),
                "down" => reply.health = Some(Health::Down),
                "fail" => reply.health = Some(Health::Fail),
                "stopped" => reply.health = Some(Health::Stopped),
                _ => {
                    if let Some(number) = lower.strip_suffix('%')
                        && number.bytes().next().is_some_and(|byte| byte.is_ascii_digit())
                    {
                        let percent = number.parse().map_err(|_| bad("a weight is whole digits then %"))?;
                        reply.weight = Some(Weight::Percent(percent));
                    } else if let Some(number) = lower.strip_prefix("weight:") {
                        reply.weight = Some(match number.strip_suffix('%') {
                            Some(percent) => {
                                Weight::Percent(percent.parse().map_err(|_| bad("a weight is whole digits"))?)
                            }
                            None => {
                                let weight = number.parse().map_err(|_| bad("a weight is whole digits"))?;
                                if weight > 256 {
                                    return Err(bad("an absolute weight is 0 to 256"));
                                }
                                Weight::Absolute(weight)
                            }
                        });
                    } else if let Some(number) = lower.strip_prefix("maxconn:") {
                        reply.maxconn = Some(number.parse().map_err(|_| bad("maxconn is whole digits"))?);
                    } else {
                        // Replaced, not dropped: `U\u{7}P` must not come out as `UP`.
                        let safe: String = word
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                                    c
                                } else {
                                    '_'
                                }
                            })
                            .collect();
                        reply.other.push(safe);
                    }
                }
            }
        }
        Ok(reply)
    }
}

impl fmt::Display for AgentReply {
    /// The reply line, without its line end.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        match self.weight {
            Some(Weight::Percent(percent)) => words.push(format!("{percent}%")),
            Some(Weight::Absolute(weight)) => words.push(format!("weight:{weight}")),
            None => {}
        }
        if let Some(admin) = self.admin {
            words.push(
                match admin {
                    AdminState::Ready => "ready",
                    AdminState::Drain => "drain",
                    AdminState::Maint => "maint",
                }
                .into(),
            );
        }
        if let Some(health) = self.health {
            words.push(
                match health {
                    Health::Up => "up",
                    Health::Down => "down",
                    Health::Fail => "fail",
                    Health::Stopped => "stopped",
                }
                .into(),
            );
        }
        if let Some(maxconn) = self.maxconn {
            words.push(format!("maxconn:{maxconn}"));
        }
        words.extend(self.other.iter().cloned());
        if let Some(description) = &self.description {
            let flat: String = description.chars().filter(|c| !c.is_control()).collect();
            words.push(format!("#{flat}"));
        }
        out.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AgentReply {
        text.parse().unwrap()
    }

    #[test]
    fn an_unknown_word_sanitised_never_turns_into_a_known_one() {
        // Found by the agent_reply fuzz target.
        let reply = parse("U\u{7}P dr\u{e9}ain");
        assert_eq!(reply.health, None);
        assert_eq!(reply.other, ["U_P", "dr_ain"]);
        assert_eq!(parse(&reply.to_string()), reply);
    }

    #[test]
    fn a_description_keeps_no_control_character_so_it_reads_back_the_same() {
        // Found by the agent_reply fuzz target.
        let reply = parse("# comment \u{7}line \u{1b}[31m");
        assert_eq!(reply.description.as_deref(), Some("comment line [31m"));
        assert_eq!(parse(&reply.to_string()), reply);
        assert_eq!(parse("50% #\u{7}").description, None, "nothing left of it");
    }

    #[test]
    fn reads_words_in_any_order_and_case_and_renders_them_in_one() {
        let reply = parse("UP,ready\t24%  maxconn:10 # slow disk\n");
        assert_eq!(reply.weight, Some(Weight::Percent(24)));
        assert_eq!(reply.admin, Some(AdminState::Ready));
        assert_eq!(reply.health, Some(Health::Up));
        assert_eq!(reply.maxconn, Some(10));
        assert_eq!(reply.description.as_deref(), Some("slow disk"));
        assert_eq!(reply.to_string(), "24% ready up maxconn:10 #slow disk");
        assert_eq!(parse("0% drain").to_string(), "0% drain");
        assert_eq!(parse("down").to_string(), "down");
        assert_eq!(parse("weight:200 up").to_string(), "weight:200 up");
        assert_eq!(parse("weight:50%").weight, Some(Weight::Percent(50)));
    }

    #[test]
    fn the_last_word_of_a_kind_wins_and_unknown_words_are_kept_safely() {
        let reply = parse("ready drain 10% 20% bogus!\u{7}word");
        assert_eq!(reply.admin, Some(AdminState::Drain));
        assert_eq!(reply.weight, Some(Weight::Percent(20)));
        // Characters are replaced, not dropped (see the sanitised-keyword test).
        assert_eq!(reply.other, ["bogus__word"]);
        assert_eq!(reply.to_string(), "20% drain bogus__word");
    }

    #[test]
    fn an_empty_line_is_the_empty_reply() {
        assert!(parse("").is_empty());
        assert!(parse("\n").is_empty());
        assert!(parse(" ,\t").is_empty());
        assert_eq!(AgentReply::default().to_string(), "");
    }

    #[test]
    fn weights_haproxy_rejects_are_errors() {
        for (text, reason) in [
            ("0.5%", "a weight is whole digits then %"),
            ("weight:300", "an absolute weight is 0 to 256"),
            ("weight:x", "a weight is whole digits"),
            ("maxconn:-1", "maxconn is whole digits"),
        ] {
            let error = text.parse::<AgentReply>().unwrap_err();
            assert_eq!(error.reason, reason, "{text}");
            assert_eq!(error.word, text);
        }
    }
}
