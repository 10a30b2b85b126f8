//! What the master CLI (`haproxy -W -S sock`) answers about processes and
//! reloads: `show proc` as typed rows ([`ShowProc`]) and the answer to
//! `reload` ([`ReloadAnswer`]).
//!
//! `show proc` is a table with a `#<PID> <type> …` header, the master's row,
//! then `# workers`, `# old workers` (only while some are leaving),
//! `# programs` and `# old programs` sections:
//!
//! ```text
//! #<PID>          <type>          <reloads>       <uptime>        <version>
//! 12782           master          7 [failed: 0]   0d00h05m23s     2.6.12-1+deb12u4
//! # workers
//! 18989           worker          0               0d00h03m29s     2.6.12-1+deb12u4
//! # old workers
//! 18001           worker          1               0d00h04m02s     2.6.12-1+deb12u4
//! # programs
//! ```
//!
//! Columns are found by the header's `<name>`s, so the `<relative PID>`
//! column of HAProxy 1.9–2.4 is read too. The master's `<reloads>` cell holds
//! spaces (`7 [failed: 0]`, 2.6+); other cells are single words.

use std::time::Duration;

use crate::excerpt;

/// What a row of `show proc` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcKind {
    /// The master process.
    Master,
    /// A worker: the current one, or one leaving after a reload.
    Worker,
    /// A `program` section's process, by its name.
    Program(String),
}

/// One process of `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRow {
    /// Its PID.
    pub pid: u32,
    /// Master, worker or program.
    pub kind: ProcKind,
    /// Listed under `# old workers` / `# old programs`: it was replaced by a
    /// reload and finishes its connections before it exits.
    pub leaving: bool,
    /// The `<relative PID>` column of HAProxy 1.9–2.4 (`None` where absent or `-`).
    pub relative: Option<u32>,
    /// For the master, how many reloads it has done; for a worker, how many
    /// reloads it has lived through (0 for one forked by the latest reload).
    pub reloads: u32,
    /// For the master of 2.6+, how many of its reloads failed.
    pub failed_reloads: Option<u32>,
    /// How long it has run, to the second.
    pub uptime: Duration,
    /// Its HAProxy version (`-` for programs).
    pub version: String,
}

/// A parsed `show proc` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowProc {
    rows: Vec<ProcRow>,
    master: usize,
}

/// Why a `show proc` answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show proc, line {line}: {message}")]
pub struct ShowProcError {
    /// 1-based line of the answer.
    pub line: usize,
    /// What is wrong, quoting the input.
    pub message: String,
}

/// The header's columns haproxide reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Pid,
    Kind,
    Relative,
    Reloads,
    Uptime,
    Version,
    Other,
}

impl ShowProc {
    /// Parses the text of a `show proc` answer.
    pub fn parse(text: &str) -> Result<ShowProc, ShowProcError> {
        let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line));
        let (_, header) = lines
            .by_ref()
            .find(|(_, line)| !line.trim().is_empty())
            .ok_or_else(|| ShowProcError {
                line: 1,
                message: "empty answer".into(),
            })?;
        let columns = header_columns(header).map_err(|message| ShowProcError { line: 1, message })?;
        let mut rows = Vec::new();
        let mut section: Option<(bool, bool)> = None; // (workers?, leaving?)
        for (number, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(title) = line.strip_prefix('#') {
                section = Some(match title.trim() {
                    "workers" => (true, false),
                    "old workers" => (true, true),
                    "programs" => (false, false),
                    "old programs" => (false, true),
                    other => {
                        return Err(ShowProcError {
                            line: number,
                            message: format!("unknown section {:?}", excerpt(other)),
                        });
                    }
                });
                continue;
            }
            let row = parse_row(line, &columns, section).map_err(|message| ShowProcError { line: number, message })?;
            rows.push(row);
        }
        let masters: Vec<usize> = (0..rows.len())
            .filter(|index| rows[*index].kind == ProcKind::Master)
            .collect();
        let [master] = masters[..] else {
            return Err(ShowProcError {
                line: 1,
                message: format!("expected one master row, found {}", masters.len()),
            });
        };
        Ok(ShowProc { rows, master })
    }

    /// Every row, in the order HAProxy listed them.
    pub fn rows(&self) -> &[ProcRow] {
        &self.rows
    }

    /// The master's row.
    pub fn master(&self) -> &ProcRow {
        &self.rows[self.master]
    }

    /// The current workers (not leaving).
    pub fn workers(&self) -> impl Iterator<Item = &ProcRow> {
        self.rows
            .iter()
            .filter(|row| row.kind == ProcKind::Worker && !row.leaving)
    }

    /// The workers still finishing their connections after a reload.
    pub fn old_workers(&self) -> impl Iterator<Item = &ProcRow> {
        self.rows
            .iter()
            .filter(|row| row.kind == ProcKind::Worker && row.leaving)
    }
}

fn header_columns(header: &str) -> Result<Vec<Column>, String> {
    let Some(rest) = header.trim().strip_prefix('#') else {
        return Err(format!(
            "expected the `#<PID> <type> …` header, found {:?}",
            excerpt(header)
        ));
    };
    let mut columns = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(after) = rest.strip_prefix('<') {
        let Some((name, tail)) = after.split_once('>') else {
            return Err(format!("unclosed column name in {:?}", excerpt(header)));
        };
        columns.push(match name {
            "PID" => Column::Pid,
            "type" => Column::Kind,
            "relative PID" => Column::Relative,
            "reloads" => Column::Reloads,
            "uptime" => Column::Uptime,
            "version" => Column::Version,
            _ => Column::Other,
        });
        rest = tail.trim_start();
    }
    if !rest.is_empty() || !columns.contains(&Column::Pid) || !columns.contains(&Column::Kind) {
        return Err(format!(
            "expected the `#<PID> <type> …` header, found {:?}",
            excerpt(header)
        ));
    }
    Ok(columns)
}

/// Splits a row into cells: words, except that a `[…]` group joins the cell before it.
fn cells(line: &str) -> Vec<String> {
    let mut cells: Vec<String> = Vec::new();
    let mut in_group = false;
    for word in line.split_whitespace() {
        match cells.last_mut() {
            Some(last) if in_group || word.starts_with('[') => {
                last.push(' ');
                last.push_str(word);
            }
            _ => cells.push(word.to_owned()),
        }
        if word.starts_with('[') {
            in_group = true;
        }
        if word.ends_with(']') {
            in_group = false;
        }
    }
    cells
}

fn parse_row(line: &str, columns: &[Column], section: Option<(bool, bool)>) -> Result<ProcRow, String> {
    let cells = cells(line);
    // The version is the last column; a build may leave it empty.
    let wanted = columns.len();
    if cells.len() != wanted && !(cells.len() + 1 == wanted && columns.last() == Some(&Column::Version)) {
        return Err(format!(
            "expected {wanted} columns, found {} in {:?}",
            cells.len(),
            excerpt(line)
        ));
    }
    let mut row = ProcRow {
        pid: 0,
        kind: ProcKind::Worker,
        leaving: false,
        relative: None,
        reloads: 0,
        failed_reloads: None,
        uptime: Duration::ZERO,
        version: String::new(),
    };
    for (column, cell) in columns.iter().zip(&cells) {
        match column {
            Column::Pid => row.pid = number(cell, "PID")?,
            Column::Kind => {
                row.kind = match (cell.as_str(), section) {
                    ("master", None) => ProcKind::Master,
                    (_, None) => {
                        return Err(format!(
                            "a row before `# workers` must be the master, found {:?}",
                            excerpt(cell)
                        ));
                    }
                    ("worker", Some((true, _))) => ProcKind::Worker,
                    (_, Some((true, _))) => return Err(format!("unknown worker type {:?}", excerpt(cell))),
                    (name, Some((false, _))) => ProcKind::Program(name.to_owned()),
                }
            }
            Column::Relative => row.relative = (cell != "-").then(|| number(cell, "relative PID")).transpose()?,
            Column::Reloads => {
                let (count, failed) = reloads(cell)?;
                row.reloads = count;
                row.failed_reloads = failed;
            }
            Column::Uptime => row.uptime = uptime(cell)?,
            Column::Version => row.version.clone_from(cell),
            Column::Other => {}
        }
    }
    row.leaving = section.is_some_and(|(_, leaving)| leaving);
    Ok(row)
}

fn number(cell: &str, what: &str) -> Result<u32, String> {
    cell.parse()
        .map_err(|_| format!("{what} {:?} is not a number", excerpt(cell)))
}

/// `7` or `7 [failed: 0]`.
fn reloads(cell: &str) -> Result<(u32, Option<u32>), String> {
    let Some((count, rest)) = cell.split_once(' ') else {
        return Ok((number(cell, "reloads")?, None));
    };
    let failed = rest
        .strip_prefix("[failed:")
        .and_then(|tail| tail.strip_suffix(']'))
        .ok_or_else(|| format!("reloads {:?} is not `N [failed: M]`", excerpt(cell)))?;
    Ok((
        number(count, "reloads")?,
        Some(number(failed.trim(), "failed reloads")?),
    ))
}

/// `0d00h05m23s`.
fn uptime(cell: &str) -> Result<Duration, String> {
    let bad = || format!("uptime {:?} is not like 0d00h05m23s", excerpt(cell));
    let mut seconds: u64 = 0;
    let mut rest = cell;
    for (unit, scale) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
        let (digits, tail) = rest.split_once(unit).ok_or_else(bad)?;
        let value: u64 = digits.parse().map_err(|_| bad())?;
        seconds = value
            .checked_mul(scale)
            .and_then(|part| seconds.checked_add(part))
            .ok_or_else(bad)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

/// The master CLI's answer to `reload`.
///
/// HAProxy 2.7+ answers once the reload is over: `Success=1` or `Success=0`,
/// then `--` and the start-up log of the new configuration. HAProxy 1.9–2.6
/// answer nothing and close the connection; whether the reload worked is then
/// only seen in `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadAnswer {
    /// `Some` with what 2.7+ said; `None` for the empty answer of older versions.
    pub success: Option<bool>,
    /// The start-up log lines after `--` (2.7+), without the `--`.
    pub startup_log: Vec<String>,
}

/// An answer to `reload` that is neither empty nor `Success=…`: a refusal
/// such as `Permission denied`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the master CLI did not reload: {answer:?}")]
pub struct ReloadRefused {
    /// The answer's first line, quoted.
    pub answer: String,
}

impl ReloadAnswer {
    /// Reads the text the master CLI answered to `reload`.
    pub fn parse(text: &str) -> Result<ReloadAnswer, ReloadRefused> {
        let mut lines = text.lines().skip_while(|line| line.trim().is_empty());
        let Some(first) = lines.next() else {
            return Ok(ReloadAnswer {
                success: None,
                startup_log: Vec::new(),
            });
        };
        let success = match first.trim() {
            "Success=1" => true,
            "Success=0" => false,
            other => {
                return Err(ReloadRefused { answer: excerpt(other) });
            }
        };
        let startup_log = lines
            .filter(|line| *line != "--" && !line.trim().is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ReloadAnswer {
            success: Some(success),
            startup_log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_WORKERS: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
        3273            master          2 [failed: 0]   0d01h02m03s     3.0.11-9e587df \n\
        # workers\n\
        3282            worker          0               0d00h00m02s     3.0.11-9e587df \n\
        # old workers\n\
        3276            worker          1               1d00h00m09s     3.0.11-9e587df \n\
        # programs\n\
        4001            dataplane       0               0d00h00m09s     -              \n\n";

    #[test]
    fn reads_master_current_and_old_workers() {
        let proc = ShowProc::parse(OLD_WORKERS).unwrap();
        let master = proc.master();
        assert_eq!((master.pid, master.reloads, master.failed_reloads), (3273, 2, Some(0)));
        assert_eq!(master.uptime, Duration::from_secs(3723));
        assert_eq!(master.version, "3.0.11-9e587df");
        let workers: Vec<u32> = proc.workers().map(|row| row.pid).collect();
        assert_eq!(workers, [3282]);
        let old: Vec<(u32, u32, Duration)> = proc
            .old_workers()
            .map(|row| (row.pid, row.reloads, row.uptime))
            .collect();
        assert_eq!(old, [(3276, 1, Duration::from_secs(86_409))]);
        let program = &proc.rows()[3];
        assert_eq!(
            (program.pid, &program.kind),
            (4001, &ProcKind::Program("dataplane".into()))
        );
    }

    #[test]
    fn reads_the_relative_pid_column_of_older_versions() {
        let text = "#<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>\n\
                    100             master          0               3               0d00h00m10s     2.2.9\n\
                    # workers\n\
                    101             worker          1               0               0d00h00m05s     2.2.9\n";
        let proc = ShowProc::parse(text).unwrap();
        assert_eq!(proc.master().failed_reloads, None);
        let worker = proc.workers().next().unwrap();
        assert_eq!((worker.pid, worker.relative, worker.reloads), (101, Some(1), 0));
    }

    #[test]
    fn says_which_line_is_wrong() {
        let no_header = ShowProc::parse("Unknown command\n").unwrap_err();
        assert_eq!(no_header.line, 1);
        assert!(
            no_header.message.contains("expected the `#<PID> <type> …` header"),
            "{no_header}"
        );
        let bad_uptime = OLD_WORKERS.replace("0d00h00m02s", "2 seconds");
        let error = ShowProc::parse(&bad_uptime).unwrap_err();
        assert_eq!(error.line, 4);
        let bad_failed = OLD_WORKERS.replace("[failed: 0]", "[failed: x]");
        assert_eq!(
            ShowProc::parse(&bad_failed).unwrap_err().to_string(),
            "show proc, line 2: failed reloads \"x\" is not a number"
        );
        let no_master = "#<PID> <type> <reloads> <uptime> <version>\n# workers\n1 worker 0 0d00h00m01s 2.6\n";
        assert_eq!(
            ShowProc::parse(no_master).unwrap_err().message,
            "expected one master row, found 0"
        );
    }

    #[test]
    fn reads_the_answers_to_reload() {
        let done = ReloadAnswer::parse("Success=1\n--\n[NOTICE]   (1) : Loading success.\n\n").unwrap();
        assert_eq!(done.success, Some(true));
        assert_eq!(done.startup_log, ["[NOTICE]   (1) : Loading success."]);
        let failed = ReloadAnswer::parse("Success=0\n--\n[ALERT]    (1) : cannot bind\n").unwrap();
        assert_eq!(failed.success, Some(false));
        assert_eq!(ReloadAnswer::parse("").unwrap().success, None);
        assert_eq!(
            ReloadAnswer::parse("Permission denied\n").unwrap_err().to_string(),
            "the master CLI did not reload: \"Permission denied\""
        );
    }
}
