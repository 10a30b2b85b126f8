//! `show servers state`: a format-version line, a `# name name …` header and
//! space-separated rows, one per server. Columns were appended over the years
//! while the version stayed `1`, so cells are read by header name. `-` marks an
//! empty cell (no FQDN, no SRV record, no agent address).

use std::collections::HashMap;

/// Why a reply is not `show servers state` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServersStateError {
    /// Nothing but blank lines.
    #[error("empty input")]
    Empty,
    /// The first line is not a format version number.
    #[error("line {line}: expected the format version (`1`), found {text:?}")]
    NoVersion {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// This reader knows format version 1 only.
    #[error("line {line}: unsupported format version {version}")]
    UnsupportedVersion {
        /// 1-based line number.
        line: usize,
        /// The version found.
        version: u32,
    },
    /// No `# be_id be_name …` line after the version.
    #[error("line {line}: expected the `# be_id be_name ...` header")]
    NoHeader {
        /// 1-based line number.
        line: usize,
    },
}

/// One server's state row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStateRow {
    /// 1-based line number.
    pub line: usize,
    /// Cells in header order (`-` kept verbatim).
    pub cells: Vec<String>,
}

/// A parsed `show servers state` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServersState {
    version: u32,
    columns: Vec<String>,
    by_name: HashMap<String, usize>,
    rows: Vec<ServerStateRow>,
}

impl ServersState {
    /// Parses a reply.
    pub fn parse(text: &str) -> Result<Self, ServersStateError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
            .filter(|(_, line)| !line.trim().is_empty());
        let (version_line, version_text) = lines.next().ok_or(ServersStateError::Empty)?;
        let version = version_text
            .trim()
            .parse::<u32>()
            .map_err(|_| ServersStateError::NoVersion {
                line: version_line,
                text: crate::excerpt(version_text),
            })?;
        if version != 1 {
            return Err(ServersStateError::UnsupportedVersion {
                line: version_line,
                version,
            });
        }
        let header = lines.next().and_then(|(_, line)| line.strip_prefix('#'));
        let Some(header) = header else {
            return Err(ServersStateError::NoHeader { line: version_line + 1 });
        };
        let columns: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(index, name)| (name.clone(), index))
            .collect();
        let rows = lines
            .filter(|(_, line)| !line.starts_with('#'))
            .map(|(line, text)| ServerStateRow {
                line,
                cells: text.split_whitespace().map(str::to_owned).collect(),
            })
            .collect();
        Ok(ServersState {
            version,
            columns,
            by_name,
            rows,
        })
    }

    /// The format version (always 1 so far).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Column names in header order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows in reply order.
    pub fn rows(&self) -> &[ServerStateRow] {
        &self.rows
    }

    /// The cell of `row` in the column called `name`; `None` when the column is
    /// absent, the row is short or the cell is `-`.
    pub fn get<'a>(&self, row: &'a ServerStateRow, name: &str) -> Option<&'a str> {
        let index = *self.by_name.get(name)?;
        row.cells.get(index).map(String::as_str).filter(|cell| *cell != "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_by_column_name() {
        let state = ServersState::parse(
            "1\n# be_id be_name srv_id srv_name srv_addr srv_fqdn\n4 be_app 1 s1 127.0.0.1 -\n# comment\n4 be_app 2 s2 10.0.0.2 db.local\n\n",
        )
        .unwrap();
        assert_eq!(state.version(), 1);
        assert_eq!(state.rows().len(), 2);
        let first = &state.rows()[0];
        assert_eq!(first.line, 3);
        assert_eq!(state.get(first, "srv_name"), Some("s1"));
        assert_eq!(state.get(first, "srv_fqdn"), None);
        assert_eq!(state.get(&state.rows()[1], "srv_fqdn"), Some("db.local"));
        assert_eq!(state.get(first, "srv_port"), None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(ServersState::parse(""), Err(ServersStateError::Empty));
        assert_eq!(
            ServersState::parse("No such backend.\n"),
            Err(ServersStateError::NoVersion {
                line: 1,
                text: "No such backend.".into()
            })
        );
        assert_eq!(
            ServersState::parse("2\n# a b\n"),
            Err(ServersStateError::UnsupportedVersion { line: 1, version: 2 })
        );
        assert_eq!(
            ServersState::parse("1\n4 be 1 s\n"),
            Err(ServersStateError::NoHeader { line: 2 })
        );
    }
}
