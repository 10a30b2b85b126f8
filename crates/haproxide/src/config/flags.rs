//! Every key of a section as a command-line flag: `--KEY VALUE` sets
//! `[section] KEY` over what the files say, with the key's declared doc as
//! the flag's help. A value given by flag is checked like one from a file,
//! and an error names the flag (`command line --method`).
//!
//! A key of paths ([`declare::PATH_LIST`]) takes its flag several times
//! (`--config a.cfg --config conf.d`); every other flag takes one value.

use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Config, DefaultValue, Section, declare};

/// A section whose keys a command takes as flags.
pub trait FlagSection {
    /// The section.
    const SECTION: &'static Section;
}

/// The flags of section `S`, for `#[command(flatten)]` in a clap command.
#[derive(Debug, Clone)]
pub struct SectionFlags<S> {
    given: Given,
    section: PhantomData<S>,
}

impl<S> SectionFlags<S> {
    /// The values given.
    pub fn given(&self) -> &Given {
        &self.given
    }
}

impl<S: FlagSection> clap::FromArgMatches for SectionFlags<S> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(SectionFlags {
            given: given(matches, S::SECTION),
            section: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.given = given(matches, S::SECTION);
        Ok(())
    }
}

impl<S: FlagSection> clap::Args for SectionFlags<S> {
    fn augment_args(command: Command) -> Command {
        augment(command, S::SECTION)
    }

    fn augment_args_for_update(command: Command) -> Command {
        augment(command, S::SECTION)
    }
}

/// Values given on the command line for a section's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(Vec<(&'static str, String)>);

/// Adds a `--KEY` flag for every key of `section` to `command`.
pub fn augment(mut command: Command, section: &'static Section) -> Command {
    for key in section.keys {
        let default = match key.default() {
            DefaultValue::Builtin(text) | DefaultValue::Fallback(text) => format!("default: {text}"),
            DefaultValue::Unset(meaning) => format!("unset: {meaning}"),
        };
        let list = key.kind() == declare::PATH_LIST.kind;
        command = command.arg(
            Arg::new(key.name())
                .long(key.name())
                .value_name("VALUE")
                .action(if list { ArgAction::Append } else { ArgAction::Set })
                .help(format!("[{}] {}: {} ({default})", section.name, key.name(), key.doc())),
        );
    }
    command
}

/// The values the flags of `section` were given.
pub fn given(matches: &ArgMatches, section: &'static Section) -> Given {
    let mut given = Vec::new();
    for key in section.keys {
        let Ok(Some(values)) = matches.try_get_many::<String>(key.name()) else {
            continue;
        };
        let values: Vec<&str> = values.map(String::as_str).collect();
        let value = match values[..] {
            [one] if key.kind() != declare::PATH_LIST.kind => one.to_owned(),
            _ => declare::quote_paths(values),
        };
        given.push((key.name(), value));
    }
    Given(given)
}

impl Config {
    /// Sets what the flags of `section` were given, over the files.
    pub fn apply_flags(&mut self, section: &Section, given: &Given) {
        for (key, value) in &given.0 {
            self.ini.set_flag(section.name, key, value);
        }
    }

    /// Sets `key` of `section` from the flag `--key`, over the files.
    pub fn set_flag(&mut self, section: &str, key: &'static str, value: &str) {
        self.ini.set_flag(section, key, value);
    }

    /// Sets `key` of `section` from the flag `--key` unless a file sets it:
    /// for programs whose files win over their flags.
    pub fn set_flag_unless_in_file(&mut self, section: &str, key: &'static str, value: &str) {
        if self.ini.lookup(section, key).is_none() {
            self.ini.set_flag(section, key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Key, Origin};

    const SECONDS: Key<std::time::Duration> = Key::new(
        "timeout",
        declare::POSITIVE_SECONDS,
        DefaultValue::Builtin("10"),
        "how long to wait",
    );
    const FILES: Key<Vec<std::path::PathBuf>> = Key::new(
        "config",
        declare::PATH_LIST,
        DefaultValue::Builtin("/etc/haproxy/haproxy.cfg"),
        "HAProxy's files",
    );
    const TEST: Section = Section::of("test", "a section for this test", &[&SECONDS, &FILES]);

    fn parse(args: &[&str]) -> Given {
        let command = augment(Command::new("t"), &TEST);
        given(&command.try_get_matches_from(args).unwrap(), &TEST)
    }

    #[test]
    fn flags_set_keys_over_the_files_and_say_so_in_errors() {
        let mut config = Config::builtin();
        config.apply_flags(
            &TEST,
            &parse(&["t", "--timeout", "2.5", "--config", "/a b.cfg", "--config", "$d"]),
        );
        assert_eq!(
            config.get(&TEST, &SECONDS).unwrap(),
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(
            config.get(&TEST, &FILES).unwrap(),
            [std::path::PathBuf::from("/a b.cfg"), std::path::PathBuf::from("$d")]
        );
        let mut bad = Config::builtin();
        bad.apply_flags(&TEST, &parse(&["t", "--timeout", "0"]));
        let error = bad.get(&TEST, &SECONDS).unwrap_err().to_string();
        assert_eq!(
            error,
            "command line --timeout: [test] timeout = \"0\": must be more than 0"
        );
        assert_eq!(
            bad.ini().lookup("test", "timeout").map(|entry| entry.origin.clone()),
            Some(Origin::Flag("timeout"))
        );
    }

    #[test]
    fn single_value_flags_refuse_a_second_value() {
        let command = augment(Command::new("t"), &TEST);
        assert!(
            command
                .try_get_matches_from(["t", "--timeout", "1", "--timeout", "2"])
                .is_err()
        );
    }
}
