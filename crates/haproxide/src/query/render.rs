//! Turning replies into raw text, tables, JSON or CSV.
//!
//! A reply that cannot be parsed as what its command produces is reported as
//! that source's failure; the other sources are still rendered.

use std::io::Write;

use anyhow::bail;
use haproxy::{InfoValue, ServersState, ShowInfo, ShowStat, is_text_column};
use serde_json::{Map, Value};

use super::{Answer, Format, ReplyKind};

/// `show stat` columns of `--format table` when `--columns` is not given.
const DEFAULT_STAT_COLUMNS: &[&str] = &[
    "pxname",
    "svname",
    "status",
    "weight",
    "scur",
    "smax",
    "slim",
    "stot",
    "rate",
    "bin",
    "bout",
    "ereq",
    "econ",
    "eresp",
    "hrsp_5xx",
    "check_status",
    "lastchg",
];

/// A reply parsed according to its command.
enum Parsed {
    Stat(ShowStat),
    Info(ShowInfo),
    State(ServersState),
    Json(Value),
    Text(String),
}

/// Writes the answers to `out` and returns one message per failed source.
pub(super) fn render(
    out: &mut Vec<u8>,
    kind: ReplyKind,
    format: Format,
    columns: &[String],
    answers: Vec<Answer>,
) -> anyhow::Result<Vec<String>> {
    let mut failures = Vec::new();
    let several = answers.len() > 1;
    let mut parsed: Vec<(String, Parsed)> = Vec::with_capacity(answers.len());
    // Only JSON output embeds HAProxy's own JSON; every other format shows it as text.
    let parse_as = match (format, kind) {
        (Format::Raw, _) => ReplyKind::Text,
        (Format::Json, ReplyKind::Json) => ReplyKind::Json,
        (_, ReplyKind::Json) => ReplyKind::Text,
        (_, kind) => kind,
    };
    for Answer { label, reply } in answers {
        let reply = match reply {
            Ok(reply) => reply,
            Err(message) => {
                failures.push(format!("{label}: {message}"));
                continue;
            }
        };
        let outcome = match parse_as {
            ReplyKind::Stat => ShowStat::from_bytes(reply.into_bytes())
                .map(Parsed::Stat)
                .map_err(|e| ("show stat", e.to_string())),
            ReplyKind::Info => ShowInfo::parse(&reply.text())
                .map(Parsed::Info)
                .map_err(|e| ("show info", e.to_string())),
            ReplyKind::ServersState => ServersState::parse(&reply.text())
                .map(Parsed::State)
                .map_err(|e| ("show servers state", e.to_string())),
            ReplyKind::Json => serde_json::from_slice::<Value>(reply.as_bytes())
                .map(Parsed::Json)
                .map_err(|e| ("JSON", e.to_string())),
            ReplyKind::Text => Ok(Parsed::Text(reply.text().into_owned())),
        };
        match outcome {
            Ok(Parsed::Stat(stat)) => {
                if let Some(line) = stat.truncated_line() {
                    failures.push(format!(
                        "{label}: line {line}: the last row is cut short (truncated reply?)"
                    ));
                }
                parsed.push((label, Parsed::Stat(stat)));
            }
            Ok(other) => parsed.push((label, other)),
            Err((what, message)) => failures.push(format!("{label}: reply is not `{what}` output: {message}")),
        }
    }
    let stats = stat_tables(&parsed);
    let stat_columns = match format {
        Format::Raw => Vec::new(),
        Format::Table => choose_stat_columns(&stats, columns, default_table_columns)?,
        Format::Json | Format::Csv => choose_stat_columns(&stats, columns, all_columns)?,
    };
    match format {
        Format::Raw => write_raw(out, &parsed, several)?,
        Format::Json => write_json(out, &parsed, &stat_columns)?,
        Format::Table => write_tables(out, kind, &parsed, several, &stat_columns)?,
        Format::Csv => write_csv(out, kind, &parsed, &stat_columns)?,
    }
    Ok(failures)
}

fn texts(parsed: &[(String, Parsed)]) -> impl Iterator<Item = (&str, &str)> {
    parsed.iter().filter_map(|(label, parsed)| match parsed {
        Parsed::Text(text) => Some((label.as_str(), text.as_str())),
        _ => None,
    })
}

fn write_raw(out: &mut Vec<u8>, parsed: &[(String, Parsed)], several: bool) -> anyhow::Result<()> {
    for (label, text) in texts(parsed) {
        if several {
            for line in text.trim_end_matches('\n').lines() {
                writeln!(out, "{label}: {line}")?;
            }
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- JSON

/// One JSON object per line inside an array, so that both `jq` and `grep` work.
/// `show stat` rows carry the `stat_columns`; a column a reply lacks is `null`.
fn write_json(out: &mut Vec<u8>, parsed: &[(String, Parsed)], stat_columns: &[String]) -> anyhow::Result<()> {
    let mut first = true;
    out.push(b'[');
    let mut emit = |out: &mut Vec<u8>, object: Map<String, Value>| -> anyhow::Result<()> {
        out.extend_from_slice(if first { b"\n" } else { b",\n" });
        first = false;
        serde_json::to_writer(&mut *out, &Value::Object(object))?;
        Ok(())
    };
    for (label, parsed) in parsed {
        let base = || {
            let mut object = Map::new();
            object.insert("socket".into(), Value::String(label.clone()));
            object
        };
        match parsed {
            Parsed::Stat(stat) => {
                let indexes: Vec<Option<usize>> = stat_columns.iter().map(|name| stat.column(name)).collect();
                for row in stat.rows() {
                    let mut object = base();
                    for (name, index) in stat_columns.iter().zip(&indexes) {
                        let cell = index.and_then(|index| row.cell(index));
                        object.insert(name.clone(), stat_cell_json(name, cell.as_deref()));
                    }
                    emit(out, object)?;
                }
            }
            Parsed::Info(info) => {
                let mut object = base();
                for (key, value) in info.entries() {
                    let json = match value {
                        InfoValue::Int(number) => Value::from(*number),
                        InfoValue::Text(text) => Value::String(text.clone()),
                    };
                    object.insert(key.clone(), json);
                }
                emit(out, object)?;
            }
            Parsed::State(state) => {
                for row in state.rows() {
                    let mut object = base();
                    for name in state.columns() {
                        let value = state.get(row, name).map_or(Value::Null, number_or_text);
                        object.insert(name.clone(), value);
                    }
                    emit(out, object)?;
                }
            }
            Parsed::Json(value) => {
                let mut object = base();
                object.insert("output".into(), value.clone());
                emit(out, object)?;
            }
            Parsed::Text(text) => {
                let mut object = base();
                object.insert("output".into(), Value::String(text.clone()));
                emit(out, object)?;
            }
        }
    }
    out.extend_from_slice(if first { b"]\n" } else { b"\n]\n" });
    Ok(())
}

/// A `show stat` cell as JSON: empty → null, text columns → string, numbers → number.
fn stat_cell_json(column: &str, cell: Option<&str>) -> Value {
    match cell {
        None | Some("") => Value::Null,
        Some(text) if is_text_column(column) => Value::String(text.to_owned()),
        Some(text) => number_or_text(text),
    }
}

fn number_or_text(text: &str) -> Value {
    if let Ok(number) = text.parse::<i64>() {
        return Value::from(number);
    }
    if let Ok(number) = text.parse::<u64>() {
        return Value::from(number);
    }
    match text
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
        .and_then(serde_json::Number::from_f64)
    {
        Some(number)
            if text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || b".-+eE".contains(&byte)) =>
        {
            Value::Number(number)
        }
        _ => Value::String(text.to_owned()),
    }
}

// ---------------------------------------------------------------- tables

fn write_tables(
    out: &mut Vec<u8>,
    kind: ReplyKind,
    parsed: &[(String, Parsed)],
    several: bool,
    chosen: &[String],
) -> anyhow::Result<()> {
    let socket_column = several.then(|| "socket".to_owned());
    match kind {
        ReplyKind::Stat => {
            let stats = stat_tables(parsed);
            let header = socket_column.into_iter().chain(chosen.iter().cloned()).collect();
            let mut rows = Vec::new();
            for (label, stat) in &stats {
                let indexes: Vec<Option<usize>> = chosen.iter().map(|name| stat.column(name)).collect();
                for row in stat.rows() {
                    let cells = indexes.iter().map(|index| {
                        index
                            .and_then(|index| row.cell(index))
                            .map(|c| printable(&c))
                            .unwrap_or_default()
                    });
                    rows.push(several.then(|| label.to_string()).into_iter().chain(cells).collect());
                }
            }
            write_aligned(out, header, rows)
        }
        ReplyKind::Info => {
            let infos: Vec<(&str, &ShowInfo)> = parsed
                .iter()
                .filter_map(|(label, parsed)| match parsed {
                    Parsed::Info(info) => Some((label.as_str(), info)),
                    _ => None,
                })
                .collect();
            let mut keys: Vec<&str> = Vec::new();
            for (_, info) in &infos {
                for (key, _) in info.entries() {
                    if !keys.contains(&key.as_str()) {
                        keys.push(key);
                    }
                }
            }
            let header = std::iter::once("field".to_owned())
                .chain(infos.iter().map(|(label, _)| {
                    if several {
                        (*label).to_owned()
                    } else {
                        "value".to_owned()
                    }
                }))
                .collect();
            let rows = keys
                .iter()
                .map(|key| {
                    std::iter::once((*key).to_owned())
                        .chain(infos.iter().map(|(_, info)| {
                            info.get(key)
                                .map(|value| printable(&value.to_string()))
                                .unwrap_or_default()
                        }))
                        .collect()
                })
                .collect();
            write_aligned(out, header, rows)
        }
        ReplyKind::ServersState => {
            let (columns, rows) = state_rows(parsed, several);
            write_aligned(out, columns, rows)
        }
        ReplyKind::Text | ReplyKind::Json => write_raw(out, parsed, several),
    }
}

fn stat_tables(parsed: &[(String, Parsed)]) -> Vec<(&str, &ShowStat)> {
    parsed
        .iter()
        .filter_map(|(label, parsed)| match parsed {
            Parsed::Stat(stat) => Some((label.as_str(), stat)),
            _ => None,
        })
        .collect()
}

/// The `show stat` columns to print: `--columns` (every name must exist in
/// some reply), else `default`.
fn choose_stat_columns(
    stats: &[(&str, &ShowStat)],
    wanted: &[String],
    default: fn(&[(&str, &ShowStat)]) -> Vec<String>,
) -> anyhow::Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(default(stats));
    }
    let exists = |name: &str| stats.iter().any(|(_, stat)| stat.column(name).is_some());
    let unknown: Vec<&str> = wanted.iter().map(String::as_str).filter(|name| !exists(name)).collect();
    if !unknown.is_empty() && !stats.is_empty() {
        bail!(
            "no such `show stat` column: {} (see `--format csv` for every column)",
            unknown.join(", ")
        );
    }
    Ok(wanted.to_vec())
}

/// The readable subset of `show stat` columns that the replies have.
fn default_table_columns(stats: &[(&str, &ShowStat)]) -> Vec<String> {
    let exists = |name: &str| stats.iter().any(|(_, stat)| stat.column(name).is_some());
    DEFAULT_STAT_COLUMNS
        .iter()
        .filter(|name| exists(name))
        .map(|name| (*name).to_owned())
        .collect()
}

/// Every named column of the replies in first-seen order, without the `-` delimiter.
fn all_columns(stats: &[(&str, &ShowStat)]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for (_, stat) in stats {
        for name in stat.columns() {
            if !name.is_empty() && name != "-" && !columns.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    columns
}

/// Columns (with `socket` first when there are several sources) and rows of
/// `show servers state` replies; `-` cells stay `-` as HAProxy prints them.
fn state_rows(parsed: &[(String, Parsed)], several: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let mut columns: Vec<String> = Vec::new();
    for (_, parsed) in parsed {
        if let Parsed::State(state) = parsed {
            for name in state.columns() {
                if !columns.contains(name) {
                    columns.push(name.clone());
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (label, parsed) in parsed {
        if let Parsed::State(state) = parsed {
            for row in state.rows() {
                let cells = columns
                    .iter()
                    .map(|name| match state.columns().iter().position(|column| column == name) {
                        Some(index) => row.cells.get(index).cloned().unwrap_or_default(),
                        None => String::new(),
                    });
                rows.push(several.then(|| label.clone()).into_iter().chain(cells).collect());
            }
        }
    }
    let header = several
        .then(|| "socket".to_owned())
        .into_iter()
        .chain(columns)
        .collect();
    (header, rows)
}

/// Shows control characters (a newline inside a quoted name) visibly.
fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            control if control.is_control() => shown.push('?'),
            other => shown.push(other),
        }
    }
    shown
}

/// Columns separated by two spaces; numeric columns right-aligned.
fn write_aligned(out: &mut Vec<u8>, header: Vec<String>, rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let count = header.len();
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    let mut numeric = vec![true; count];
    for row in &rows {
        for (index, cell) in row.iter().enumerate().take(count) {
            widths[index] = widths[index].max(cell.chars().count());
            if !cell.is_empty() && cell.parse::<f64>().is_err() {
                numeric[index] = false;
            }
        }
    }
    for (line_number, row) in std::iter::once(&header).chain(rows.iter()).enumerate() {
        let is_header = line_number == 0;
        let mut line = String::new();
        for (index, width) in widths.iter().enumerate() {
            let cell = row.get(index).map_or("", String::as_str);
            if index > 0 {
                line.push_str("  ");
            }
            let pad = width.saturating_sub(cell.chars().count());
            if numeric[index] && !is_header {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// ---------------------------------------------------------------- CSV

fn write_csv(
    out: &mut Vec<u8>,
    kind: ReplyKind,
    parsed: &[(String, Parsed)],
    columns: &[String],
) -> anyhow::Result<()> {
    match kind {
        ReplyKind::Stat => {
            let stats = stat_tables(parsed);
            write_csv_record(out, std::iter::once("socket").chain(columns.iter().map(String::as_str)))?;
            for (label, stat) in &stats {
                let indexes: Vec<Option<usize>> = columns.iter().map(|name| stat.column(name)).collect();
                for row in stat.rows() {
                    let cells: Vec<String> = indexes
                        .iter()
                        .map(|index| {
                            index
                                .and_then(|index| row.cell(index))
                                .map(|cell| cell.into_owned())
                                .unwrap_or_default()
                        })
                        .collect();
                    write_csv_record(out, std::iter::once(*label).chain(cells.iter().map(String::as_str)))?;
                }
            }
        }
        ReplyKind::Info => {
            write_csv_record(out, ["socket", "field", "value"])?;
            for (label, parsed) in parsed {
                if let Parsed::Info(info) = parsed {
                    for (key, value) in info.entries() {
                        write_csv_record(out, [label.as_str(), key, &value.to_string()])?;
                    }
                }
            }
        }
        ReplyKind::ServersState => {
            let (columns, rows) = state_rows(parsed, true);
            write_csv_record(out, columns.iter().map(String::as_str))?;
            for row in &rows {
                write_csv_record(out, row.iter().map(String::as_str))?;
            }
        }
        ReplyKind::Text | ReplyKind::Json => {
            write_csv_record(out, ["socket", "line"])?;
            for (label, text) in texts(parsed) {
                for line in text.trim_end_matches('\n').lines() {
                    write_csv_record(out, [label, line])?;
                }
            }
        }
    }
    Ok(())
}

/// One RFC 4180 record: cells with a comma, quote or line break are quoted.
fn write_csv_record<'a>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = &'a str>) -> anyhow::Result<()> {
    for (index, cell) in cells.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use haproxy::Reply;

    fn answer(label: &str, text: &str) -> Answer {
        Answer {
            label: label.into(),
            reply: Ok(Reply::new(text.as_bytes().to_vec())),
        }
    }

    fn render_text(kind: ReplyKind, format: Format, columns: &[&str], answers: Vec<Answer>) -> (String, Vec<String>) {
        let mut out = Vec::new();
        let columns: Vec<String> = columns.iter().map(|column| (*column).to_owned()).collect();
        let failures = render(&mut out, kind, format, &columns, answers).unwrap();
        (String::from_utf8(out).unwrap(), failures)
    }

    const STAT: &str =
        "# pxname,svname,scur,status,type,-,h1_bytes_in,\n443,FRONTEND,3,OPEN,0,-,10,\nbe,\"s,1\",,UP,2,-,,\n\n";

    #[test]
    fn stat_json_types_cells_and_tags_the_socket() {
        let (json, failures) = render_text(ReplyKind::Stat, Format::Json, &[], vec![answer("a.sock", STAT)]);
        assert!(failures.is_empty());
        assert_eq!(
            json,
            "[\n{\"socket\":\"a.sock\",\"pxname\":\"443\",\"svname\":\"FRONTEND\",\"scur\":3,\"status\":\"OPEN\",\"type\":0,\"h1_bytes_in\":10},\n\
             {\"socket\":\"a.sock\",\"pxname\":\"be\",\"svname\":\"s,1\",\"scur\":null,\"status\":\"UP\",\"type\":2,\"h1_bytes_in\":null}\n]\n"
        );
    }

    #[test]
    fn failures_are_per_source_and_others_still_render() {
        let answers = vec![
            answer("a.sock", STAT),
            Answer {
                label: "b.sock".into(),
                reply: Err("connection refused".into()),
            },
            answer("c.sock", "Permission denied\n"),
        ];
        let (csv, failures) = render_text(ReplyKind::Stat, Format::Csv, &[], answers);
        assert_eq!(
            csv,
            "socket,pxname,svname,scur,status,type,h1_bytes_in\na.sock,443,FRONTEND,3,OPEN,0,10\na.sock,be,\"s,1\",,UP,2,\n"
        );
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0], "b.sock: connection refused");
        assert!(
            failures[1].starts_with("c.sock: reply is not `show stat` output: line 1"),
            "{}",
            failures[1]
        );
    }

    #[test]
    fn tables_align_and_right_align_numbers() {
        let (table, _) = render_text(
            ReplyKind::Stat,
            Format::Table,
            &["pxname", "scur"],
            vec![answer("a", STAT), answer("b", STAT)],
        );
        assert_eq!(
            table,
            "socket  pxname  scur\na       443        3\na       be\nb       443        3\nb       be\n"
        );
    }

    #[test]
    fn columns_select_json_and_csv_fields_too() {
        let (json, _) = render_text(
            ReplyKind::Stat,
            Format::Json,
            &["svname", "scur"],
            vec![answer("a", STAT)],
        );
        assert_eq!(
            json,
            "[\n{\"socket\":\"a\",\"svname\":\"FRONTEND\",\"scur\":3},\n{\"socket\":\"a\",\"svname\":\"s,1\",\"scur\":null}\n]\n"
        );
        let (csv, _) = render_text(
            ReplyKind::Stat,
            Format::Csv,
            &["scur", "pxname"],
            vec![answer("a", STAT)],
        );
        assert_eq!(csv, "socket,scur,pxname\na,3,443\na,,be\n");
    }

    #[test]
    fn unknown_table_column_is_an_error() {
        let mut out = Vec::new();
        let error = render(
            &mut out,
            ReplyKind::Stat,
            Format::Table,
            &["nope".into()],
            vec![answer("a", STAT)],
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("no such `show stat` column: nope"));
    }

    #[test]
    fn info_json_is_one_object_per_socket() {
        let (json, _) = render_text(
            ReplyKind::Info,
            Format::Json,
            &[],
            vec![answer("a", "Name: HAProxy\nCurrConns: 4\n\n")],
        );
        assert_eq!(json, "[\n{\"socket\":\"a\",\"Name\":\"HAProxy\",\"CurrConns\":4}\n]\n");
    }

    #[test]
    fn json_replies_are_embedded_as_json_not_strings() {
        let (json, failures) = render_text(
            ReplyKind::Json,
            Format::Json,
            &[],
            vec![
                answer("a", "[[{\"objType\":\"Frontend\"}]]\n\n"),
                answer("b", "Permission denied\n"),
            ],
        );
        assert_eq!(
            json,
            "[\n{\"socket\":\"a\",\"output\":[[{\"objType\":\"Frontend\"}]]}\n]\n"
        );
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].starts_with("b: reply is not `JSON` output: "),
            "{}",
            failures[0]
        );
        let (raw, _) = render_text(ReplyKind::Json, Format::Table, &[], vec![answer("a", "[1]\n")]);
        assert_eq!(raw, "[1]\n");
    }

    #[test]
    fn raw_output_prefixes_lines_only_with_several_sources() {
        let (one, _) = render_text(ReplyKind::Text, Format::Raw, &[], vec![answer("a", "x\ny\n\n")]);
        assert_eq!(one, "x\ny\n\n");
        let (two, _) = render_text(
            ReplyKind::Text,
            Format::Raw,
            &[],
            vec![answer("a", "x\n\n"), answer("b", "y\n\n")],
        );
        assert_eq!(two, "a: x\nb: y\n");
    }
}
