//! INI files read the way Python's `configparser` reads haproxystats' files:
//! `[DEFAULT]` inherited by every section, `key = value` or `key: value`,
//! case-insensitive keys, full-line `#`/`;` comments (no inline comments),
//! indented continuation lines, duplicate sections or keys within one file
//! rejected, later files overriding earlier ones, and `${key}` /
//! `${section:key}` interpolation with `$$` for a literal `$`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The name of the section every other section inherits from.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// haproxide's built-in default.
    BuiltIn,
    /// A flag of the command line (`--method`).
    Flag(&'static str),
    /// A line of a configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line of the `key = value` line.
        line: usize,
        /// The key as another program's file writes it, when it is not
        /// the section's (`dw_health_poller.interval` for `[agent] interval`).
        written_as: Option<String>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in default"),
            Origin::Flag(name) => write!(f, "command line --{name}"),
            Origin::File {
                path,
                line,
                written_as: None,
            } => write!(f, "{}:{line}", path.display()),
            Origin::File {
                path,
                line,
                written_as: Some(key),
            } => write!(f, "{}:{line}: {key}", path.display()),
        }
    }
}

/// One `key = value` with where it came from; the value is raw (not interpolated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowercased key.
    pub key: String,
    /// Raw value, continuation lines joined with `\n`.
    pub value: String,
    /// Where it was set last.
    pub origin: Origin,
}

/// A section's entries in first-definition order (group patterns depend on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Where the section was first declared (`None` for built-in sections).
    pub origin: Option<Origin>,
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The entry for `key` (already lowercased).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    fn set(&mut self, key: String, value: String, origin: Origin) {
        match self.entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) => {
                entry.value = value;
                entry.origin = origin;
            }
            None => self.entries.push(Entry { key, value, origin }),
        }
    }
}

/// A syntax error in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct SyntaxError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// An interpolation that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InterpolationError {
    /// What is wrong, naming the reference.
    pub message: String,
}

/// A set of sections, `[DEFAULT]` kept apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Section,
    sections: Vec<(String, Section)>,
}

impl Ini {
    /// The named section; `DEFAULT` gives [`Ini::defaults`].
    pub fn section(&self, name: &str) -> Option<&Section> {
        if name == DEFAULT_SECTION {
            return Some(&self.defaults);
        }
        self.sections
            .iter()
            .find(|(section, _)| section == name)
            .map(|(_, section)| section)
    }

    /// Names of the sections other than `DEFAULT`, in first-definition order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(name, _)| name.as_str())
    }

    fn section_mut(&mut self, name: &str, origin: Option<Origin>) -> &mut Section {
        if name == DEFAULT_SECTION {
            return &mut self.defaults;
        }
        let index = match self.sections.iter().position(|(section, _)| section == name) {
            Some(index) => {
                let known = &mut self.sections[index].1.origin;
                if known.is_none() {
                    *known = origin;
                }
                index
            }
            None => {
                self.sections.push((
                    name.to_owned(),
                    Section {
                        origin,
                        entries: Vec::new(),
                    },
                ));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index].1
    }

    /// Sets a built-in value.
    pub fn set_builtin(&mut self, section: &str, key: &str, value: &str) {
        self.section_mut(section, None)
            .set(key.to_ascii_lowercase(), value.to_owned(), Origin::BuiltIn);
    }

    /// Sets a value given by the command-line flag `--key`, over the files'
    /// (stored escaped, so a `$` in it is not interpolated).
    pub fn set_flag(&mut self, section: &str, key: &'static str, value: &str) {
        self.section_mut(section, None)
            .set(key.to_ascii_lowercase(), value.replace('$', "$$"), Origin::Flag(key));
    }

    /// Sets a value read from line `line` of `path` by another reader than
    /// INI's (YAML), where its key is `written_as`; stored escaped so a `$`
    /// in it is not interpolated.
    pub fn set_from_file(
        &mut self,
        section: &str,
        key: &str,
        value: &str,
        (path, line): (&Path, usize),
        written_as: &str,
    ) {
        let at = |written_as: Option<String>| Origin::File {
            path: path.to_owned(),
            line,
            written_as,
        };
        self.section_mut(section, Some(at(None))).set(
            key.to_ascii_lowercase(),
            value.replace('$', "$$"),
            at(Some(written_as.to_owned())),
        );
    }

    /// Forgets the values of `section` that are empty (EP2 reads an empty
    /// value as unset).
    pub fn remove_empty(&mut self, section: &str) {
        if let Some((_, own)) = self.sections.iter_mut().find(|(name, _)| name == section) {
            own.entries.retain(|entry| !entry.value.trim().is_empty());
        }
    }

    /// Reads `text` (the contents of `path`) over what is already loaded.
    pub fn read(&mut self, path: &Path, text: &str) -> Result<(), SyntaxError> {
        let error = |line, message: String| SyntaxError {
            path: path.to_owned(),
            line,
            message,
        };
        let mut seen_sections: Vec<String> = Vec::new();
        let mut seen_keys: Vec<(String, String)> = Vec::new();
        let mut current: Option<String> = None;
        // The option being read: (section, key, line, indent, value lines).
        let mut open: Option<(String, String, usize, usize, Vec<String>)> = None;

        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim_end_matches('\r');
            let stripped = line.trim();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                if let Some((.., values)) = open.as_mut() {
                    values.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let Some((.., option_indent, values)) = open.as_mut()
                && indent > *option_indent
            {
                values.push(stripped.to_owned());
                continue;
            }
            if let Some(finished) = open.take() {
                self.store(path, finished);
            }
            if let Some(header) = stripped.strip_prefix('[') {
                let Some(close) = header.rfind(']') else {
                    return Err(error(number, format!("section header without `]`: {stripped:?}")));
                };
                let name = &header[..close];
                if name.is_empty() {
                    return Err(error(number, "empty section name `[]`".into()));
                }
                if seen_sections.iter().any(|seen| seen == name) {
                    return Err(error(number, format!("section [{name}] appears twice in this file")));
                }
                seen_sections.push(name.to_owned());
                self.section_mut(
                    name,
                    Some(Origin::File {
                        path: path.to_owned(),
                        line: number,
                        written_as: None,
                    }),
                );
                current = Some(name.to_owned());
                continue;
            }
            let Some(section) = current.clone() else {
                return Err(error(number, format!("`{stripped}` comes before any [section] header")));
            };
            let Some(split) = stripped.find(['=', ':']) else {
                return Err(error(number, format!("expected `key = value`, found {stripped:?}")));
            };
            let key = stripped[..split].trim_end().to_ascii_lowercase();
            if key.is_empty() {
                return Err(error(
                    number,
                    format!("missing key before `{}`", &stripped[split..split + 1]),
                ));
            }
            if seen_keys
                .iter()
                .any(|(seen_section, seen_key)| *seen_section == section && *seen_key == key)
            {
                return Err(error(
                    number,
                    format!("key `{key}` appears twice in [{section}] in this file"),
                ));
            }
            seen_keys.push((section.clone(), key.clone()));
            let value = stripped[split + 1..].trim().to_owned();
            open = Some((section, key, number, indent, vec![value]));
        }
        if let Some(finished) = open.take() {
            self.store(path, finished);
        }
        Ok(())
    }

    fn store(&mut self, path: &Path, (section, key, line, _, values): (String, String, usize, usize, Vec<String>)) {
        let value = values.join("\n").trim_end().to_owned();
        let origin = Origin::File {
            path: path.to_owned(),
            line,
            written_as: None,
        };
        self.section_mut(&section, None).set(key, value, origin);
    }

    /// The raw entry for `key` as seen from `section`: its own, else `[DEFAULT]`'s.
    pub fn lookup(&self, section: &str, key: &str) -> Option<&Entry> {
        let key = key.to_ascii_lowercase();
        self.section(section)
            .and_then(|own| own.entry(&key))
            .or_else(|| self.defaults.entry(&key))
    }

    /// Keys visible from `section` (its own and inherited ones), sorted.
    pub fn visible_keys(&self, section: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = self.defaults.entries.iter().map(|entry| entry.key.as_str()).collect();
        if section != DEFAULT_SECTION
            && let Some(own) = self.section(section)
        {
            keys.extend(own.entries.iter().map(|entry| entry.key.as_str()));
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The value of `key` as seen from `section`, interpolated.
    pub fn interpolate(&self, section: &str, raw: &str) -> Result<String, InterpolationError> {
        let mut out = String::with_capacity(raw.len());
        self.interpolate_into(section, raw, &mut out, 1)?;
        Ok(out)
    }

    fn interpolate_into(
        &self,
        section: &str,
        raw: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), InterpolationError> {
        const MAX_DEPTH: usize = 10;
        if depth > MAX_DEPTH {
            return Err(InterpolationError {
                message: format!("references nested more than {MAX_DEPTH} deep (a reference loop?) in {raw:?}"),
            });
        }
        let mut rest = raw;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar..];
            if let Some(after) = rest.strip_prefix("$$") {
                out.push('$');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                let Some(close) = after.find('}').filter(|close| *close > 0) else {
                    return Err(InterpolationError {
                        message: format!("bad reference {rest:?}: expected ${{key}} or ${{section:key}}"),
                    });
                };
                let reference = &after[..close];
                rest = &after[close + 1..];
                let (target_section, key) = match reference.split(':').collect::<Vec<_>>()[..] {
                    [key] => (section, key),
                    [target, key] => (target, key),
                    _ => {
                        return Err(InterpolationError {
                            message: format!("bad reference ${{{reference}}}: more than one `:`"),
                        });
                    }
                };
                let entry = self
                    .lookup(target_section, key)
                    .filter(|_| self.section(target_section).is_some());
                let Some(entry) = entry else {
                    return Err(InterpolationError {
                        message: format!("${{{reference}}} refers to a key that is not set"),
                    });
                };
                self.interpolate_into(target_section, &entry.value, out, depth + 1)?;
            } else {
                return Err(InterpolationError {
                    message: format!(
                        "`$` must be followed by `$` or `{{` (write `$$` for a literal `$`), found {rest:?}"
                    ),
                });
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Ini, SyntaxError> {
        let mut ini = Ini::default();
        ini.read(Path::new("t.conf"), text)?;
        Ok(ini)
    }

    #[test]
    fn reads_keys_case_insensitively_with_both_delimiters_and_continuations() {
        let ini = read(
            "# comment\n[DEFAULT]\nLogLevel = debug\n[pull]\nservers: unix:///a.sock,\n  tcp://h:1\n\n  unix:///b\n; c\nx=1 # not a comment\n",
        )
        .unwrap();
        assert_eq!(ini.lookup("pull", "loglevel").unwrap().value, "debug");
        assert_eq!(
            ini.lookup("pull", "SERVERS").unwrap().value,
            "unix:///a.sock,\ntcp://h:1\n\nunix:///b"
        );
        let x = ini.lookup("pull", "x").unwrap();
        assert_eq!(x.value, "1 # not a comment");
        assert_eq!(
            x.origin,
            Origin::File {
                path: "t.conf".into(),
                line: 10,
                written_as: None,
            }
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let twice = read("[a]\nk = 1\n[a]\n").unwrap_err();
        assert_eq!(twice.to_string(), "t.conf:3: section [a] appears twice in this file");
        let key_twice = read("[a]\nk = 1\nK = 2\n").unwrap_err();
        assert_eq!(
            key_twice.to_string(),
            "t.conf:3: key `k` appears twice in [a] in this file"
        );
        assert_eq!(read("k = 1\n").unwrap_err().line, 1);
        assert_eq!(read("[a]\njust words\n").unwrap_err().line, 2);
        assert_eq!(read("[a\n").unwrap_err().line, 1);
    }

    #[test]
    fn later_files_override_and_keep_first_position() {
        let mut ini = read("[g]\none = a\ntwo = b\n").unwrap();
        ini.read(Path::new("u.conf"), "[g]\none = z\n").unwrap();
        let section = ini.section("g").unwrap();
        assert_eq!(
            section.entries.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(),
            ["z", "b"]
        );
    }

    #[test]
    fn interpolation_follows_extended_interpolation() {
        let ini = read("[paths]\nbase-dir = /srv\n[pull]\ndst = ${paths:base-dir}/in\nown = ${dst}/x\nmoney = 5$$\n")
            .unwrap();
        let get = |key: &str| ini.interpolate("pull", &ini.lookup("pull", key).unwrap().value);
        assert_eq!(get("dst").unwrap(), "/srv/in");
        assert_eq!(get("own").unwrap(), "/srv/in/x");
        assert_eq!(get("money").unwrap(), "5$");
        for bad in ["two$", "${missing}", "${a:b:c}", "${}", "${nosuch:key}"] {
            assert!(ini.interpolate("pull", bad).is_err(), "{bad}");
        }
        let looped = read("[a]\nx = ${y}\ny = ${x}\n").unwrap();
        assert!(looped.interpolate("a", "${x}").unwrap_err().message.contains("nested"));
    }
}
