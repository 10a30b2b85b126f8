//! `top`'s screen, drawn with ratatui from the model and the app state: a
//! title line, the table, the detail pane of the selected server, and a
//! status line (prompts, action replies, sockets that did not answer). The
//! columns that do not fit the width are left out, least useful first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row as TableRow, Table, TableState};

use super::app::{Action, App, Prompt};
use super::model::{Column, Counter, Level, Line, Model};

/// The table's columns, most useful first, with their widths; NAME takes
/// what is left, at least [`NAME_MIN`].
const PRIORITY: [(Column, u16); 11] = [
    (Column::Name, 0),
    (Column::Status, 9),
    (Column::Rate(Counter::Sessions), 7),
    (Column::Rate(Counter::Requests), 7),
    (Column::Current, 6),
    (Column::Weight, 4),
    (Column::Rate(Counter::BytesIn), 7),
    (Column::Rate(Counter::BytesOut), 7),
    (Column::Rate(Counter::Http5xx), 6),
    (Column::Rate(Counter::Errors), 6),
    (Column::Total(Counter::Sessions), 10),
];
/// The narrowest NAME column.
const NAME_MIN: u16 = 16;
/// The socket column's width, in the split view.
const SOCKET_WIDTH: u16 = 12;

/// The columns shown at `width`, in table order, with their widths.
fn columns(width: u16, split: bool) -> Vec<(Column, u16)> {
    let mut left = width.saturating_sub(NAME_MIN + if split { SOCKET_WIDTH + 1 } else { 0 });
    let mut chosen: Vec<Column> = vec![Column::Name];
    for (column, size) in PRIORITY.iter().skip(1) {
        if *size < left {
            left -= size + 1;
            chosen.push(*column);
        }
    }
    Column::ALL
        .iter()
        .filter(|column| chosen.contains(column))
        .map(|column| {
            let size = PRIORITY
                .iter()
                .find(|(known, _)| known == column)
                .map_or(0, |(_, size)| *size);
            (*column, if *column == Column::Name { NAME_MIN + left } else { size })
        })
        .collect()
}

/// A rate or count in at most 6 characters: `-` when unknown.
fn human(value: Option<f64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let (scaled, suffix) = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(unit, _)| value >= unit * 10.0)
        .map_or((value, ""), |(unit, suffix)| (value / unit, suffix));
    if suffix.is_empty() && scaled < 10.0 && scaled.fract() != 0.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.0}{suffix}")
    }
}

/// A status's colour.
fn status_style(status: &str) -> Style {
    let first = status.split('/').next().unwrap_or_default();
    let colour = match first.split_whitespace().next().unwrap_or_default() {
        "UP" | "OPEN" => Color::Green,
        "DOWN" | "NOLB" => Color::Red,
        "DRAIN" => Color::Yellow,
        "MAINT" => Color::Magenta,
        _ => return Style::default(),
    };
    let style = Style::default().fg(colour);
    if status.contains('/') {
        style.add_modifier(Modifier::BOLD)
    } else {
        style
    }
}

/// The text of `line`'s cell in `column`.
fn cell(line: &Line, column: Column, tree: bool) -> String {
    match column {
        Column::Name => match line.key.0 {
            Level::Servers if tree => format!("  {}", line.key.2),
            Level::Servers => format!("{}/{}", line.key.1, line.key.2),
            _ => line.key.1.to_string(),
        },
        Column::Status => line.status.to_string(),
        Column::Weight => line.weight.map_or_else(String::new, |weight| weight.to_string()),
        Column::Current => line.current.to_string(),
        Column::Rate(counter) => human(line.rates[counter as usize]),
        Column::Total(counter) => human(Some(line.totals[counter as usize] as f64)),
    }
}

/// What the title line says about the view.
fn title(model: &Model, app: &App) -> String {
    let options = &app.options;
    let level = match options.level {
        Level::Frontends => "frontends",
        Level::Backends => "backends",
        Level::Servers if options.tree => "servers (tree)",
        Level::Servers => "servers",
    };
    let sockets = model.sockets.len();
    let scope = if options.split { "per socket" } else { "summed" };
    let order = if options.descending { "desc" } else { "asc" };
    let mut text = format!(
        "haproxide top: {sockets} socket{} | {level}, {scope} | sort {} {order}",
        if sockets == 1 { "" } else { "s" },
        options.sort.heading()
    );
    if !options.filter.is_empty() {
        text.push_str(&format!(" | filter {:?}", options.filter));
    }
    text.push_str(" | ? help");
    text
}

/// The status line: a prompt, or the replies of the last action, or the
/// sockets that did not answer, or how many lines there are.
fn status_line(model: &Model, app: &App, lines: usize) -> TextLine<'static> {
    let sockets = model.sockets.len();
    match &app.prompt {
        Prompt::Filter(text) => return TextLine::from(format!("filter (Enter applies, Esc clears): {text}_")),
        Prompt::Weight(text) => return TextLine::from(format!("weight (0-256, Enter): {text}_")),
        Prompt::Confirm(action, key) => {
            let what = match action {
                Action::Drain => "drain".to_owned(),
                Action::Maint => "maint".to_owned(),
                Action::Ready => "ready".to_owned(),
                Action::Weight(weight) => format!("weight {weight}"),
            };
            return TextLine::from(Span::styled(
                format!("{what} {}/{} on {sockets} socket(s)? y/n", key.1, key.2),
                Style::default().add_modifier(Modifier::REVERSED),
            ));
        }
        Prompt::None | Prompt::Help => {}
    }
    let problems = model.problems();
    if !problems.is_empty() {
        let text: Vec<String> = problems
            .iter()
            .map(|(label, error)| format!("{label}: {error}"))
            .collect();
        return TextLine::from(Span::styled(
            format!("no answer: {}", text.join("; ")),
            Style::default().fg(Color::Red),
        ));
    }
    if !app.messages.is_empty() {
        return TextLine::from(app.messages.join("; "));
    }
    TextLine::from(format!("{lines} lines"))
}

/// `text`, or `-` when empty.
fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The detail pane of the selected line: one line per socket.
fn detail(model: &Model, line: &Line) -> Vec<TextLine<'static>> {
    let mut text = vec![TextLine::from(Span::styled(
        format!("{}/{}", line.key.1, line.key.2),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    for (label, row) in model.rows_of(&line.key) {
        let since = row
            .last_change
            .map_or_else(|| "-".to_owned(), |seconds| format!("{seconds}s"));
        text.push(TextLine::from(vec![
            Span::raw(format!("{label}: ")),
            Span::styled(row.status.to_string(), status_style(&row.status)),
            Span::raw(format!(
                " for {since}, weight {}, check {} {}, agent {}",
                row.weight.map_or_else(|| "-".to_owned(), |weight| weight.to_string()),
                or_dash(&row.health.check),
                row.health.last_check,
                or_dash(&row.health.agent)
            )),
        ]));
    }
    text
}

/// Draws the whole screen: `lines` are the model's lines for `app`'s options.
pub fn draw(frame: &mut Frame<'_>, model: &Model, app: &mut App, lines: &[Line]) {
    let selected = app.selected_index(lines);
    let detail_lines = match lines.get(selected) {
        Some(line) if app.detail => detail(model, line),
        _ => Vec::new(),
    };
    let detail_height = if detail_lines.is_empty() {
        0
    } else {
        detail_lines.len() as u16 + 1
    };
    let [title_area, table_area, detail_area, status_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(detail_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(title(model, app)).style(Style::default().add_modifier(Modifier::REVERSED)),
        title_area,
    );
    let split = app.options.split;
    let shown = columns(table_area.width, split);
    let rows_visible = usize::from(table_area.height.saturating_sub(1));
    app.scroll_to_selection(lines, rows_visible);
    let mut headings: Vec<String> = Vec::new();
    let mut widths: Vec<Constraint> = Vec::new();
    if split {
        headings.push("SOCKET".to_owned());
        widths.push(Constraint::Length(SOCKET_WIDTH));
    }
    for (column, width) in &shown {
        let marker = if *column == app.options.sort { "*" } else { "" };
        headings.push(format!("{}{marker}", column.heading()));
        widths.push(Constraint::Length(*width));
    }
    let tree = app.options.tree && app.options.level == Level::Servers;
    let rows = lines.iter().skip(app.scroll).take(rows_visible).map(|line| {
        let mut cells: Vec<ratatui::widgets::Cell<'_>> = Vec::new();
        if split {
            let label = line
                .socket
                .and_then(|index| model.sockets.get(index))
                .map_or("", |socket| socket.label.as_str());
            cells.push(label.to_owned().into());
        }
        for (column, _) in &shown {
            let text = cell(line, *column, tree);
            let style = match column {
                Column::Status => status_style(&line.status),
                Column::Name if line.heading && tree => Style::default().add_modifier(Modifier::BOLD),
                _ => Style::default(),
            };
            cells.push(ratatui::widgets::Cell::from(text).style(style));
        }
        TableRow::new(cells)
    });
    let table = Table::new(rows, widths)
        .header(TableRow::new(headings).style(Style::default().add_modifier(Modifier::BOLD)))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected((!lines.is_empty()).then(|| selected - app.scroll));
    frame.render_stateful_widget(table, table_area, &mut state);
    if !detail_lines.is_empty() {
        frame.render_widget(
            Paragraph::new(detail_lines).block(Block::default().borders(Borders::TOP)),
            detail_area,
        );
    }
    frame.render_widget(Paragraph::new(status_line(model, app, lines.len())), status_area);
    if app.prompt == Prompt::Help {
        help(frame);
    }
}

/// The keys, over the table.
const HELP: &[&str] = &[
    "1 2 3    frontends, backends, servers",
    "t        servers as a tree / flat",
    "p        summed over sockets / per socket",
    "s S      sort by the next / previous column",
    "i        invert the order",
    "/        filter names (Enter, Esc clears)",
    "Up Down PgUp PgDn Home End   choose a line",
    "Enter    details of the chosen line",
    "D M R    drain, maint, ready the server",
    "W        set the server's weight",
    "         (on every socket, after y)",
    "q        quit        any key: close help",
];

fn help(frame: &mut Frame<'_>) {
    let area = frame.area();
    let width = (HELP.iter().map(|line| line.len()).max().unwrap_or(0) as u16 + 4).min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(HELP.iter().map(|line| TextLine::from(*line)).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::top::fetch::read_rows;
    use crate::top::model::Sample;

    /// Two sockets that both answered HAProxy 2.6's saved `show stat` twice,
    /// a second apart, the second time with 10 more sessions, requests and
    /// kB in every row.
    fn model() -> Model {
        let reply = include_bytes!("../../../../fixtures/haproxy-2.6.12-debian/show_stat.out");
        let start = Instant::now();
        let mut model = Model::default();
        model.follow(&["hap0.sock".to_owned(), "hap1.sock".to_owned()]);
        for index in 0..2 {
            let mut sample = Sample::new(start);
            read_rows(&reply[..], &mut sample, start, Vec::new()).0.unwrap();
            let later: Vec<_> = sample
                .rows
                .iter()
                .cloned()
                .map(|mut row| {
                    row.counters[0] += 10;
                    row.counters[1] += 10;
                    row.counters[2] += 10_000;
                    row
                })
                .collect();
            let sample = Sample::of(Some(sample), start + Duration::from_secs(1), &later);
            model.record(index, Ok(sample));
        }
        model
    }

    /// The screen's text at `width`×`height`, a line per row, trailing
    /// spaces cut.
    fn screen(model: &Model, app: &mut App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let lines = model.lines(&app.options, &mut Vec::new());
        terminal.draw(|frame| draw(frame, model, app, &lines)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..height {
            let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// Asserts the screen at `width`×`height`: `height` lines, whose
    /// non-blank ones are `expected`, in order (the table's empty rows and
    /// the detail pane's place are blank).
    fn assert_screen(model: &Model, app: &mut App, width: u16, height: u16, expected: &[&str]) {
        let screen = screen(model, app, width, height);
        assert_eq!(screen.lines().count(), usize::from(height), "\n{screen}");
        let lines: Vec<&str> = screen.lines().filter(|line| !line.is_empty()).collect();
        assert_eq!(lines, expected, "\n{screen}");
    }

    const SERVERS_TREE_80X24: &[&str] = &[
        "haproxide top: 2 sockets | servers (tree), summed | sort NAME asc | ? help",
        "NAME*               STATUS    WT   CUR    SESS/s  REQ/s   IN/s    OUT/s   5XX/s",
        "be_app              UP        242  0      20      20      20k     0       0",
        "  deadsrv           DOWN      2    0      20      20      20k     0       0",
        "  dyn1              no check  40   0      20      20      20k     0       0",
        "  dyn2              MAINT     2    0      20      20      20k     0       0",
        "  dyn3              MAINT     2    0      20      20      20k     0       0",
        "  s1                UP        200  0      20      20      20k     0       0",
        "  s2                DRAIN     2    0      20      20      20k     0       0",
        "  slot1             no check  2    0      20      20      20k     0       0",
        "  slot2             MAINT     2    0      20      20      20k     0       0",
        "be_chash            UP        2    0      20      20      20k     0       0",
        "  h1                no check  2    0      20      20      20k     0       0",
        "be_hash             UP        2    0      20      20      20k     0       0",
        "  h1                no check  2    0      20      20      20k     0       0",
        "be_tcp              UP        2    0      20      20      20k     0       0",
        "  t1                no check  2    0      20      20      20k     0       0",
        "15 lines",
    ];

    const SERVERS_PER_SOCKET_200X50: &[&str] = &[
        "haproxide top: 2 sockets | servers, per socket | sort NAME asc | ? help",
        "SOCKET       NAME*                                                                                                        STATUS    WT   CUR    SESS/s  REQ/s   IN/s    OUT/s   5XX/s  ERR/s  SESSIONS",
        "hap0.sock    be_app/deadsrv                                                                                               DOWN      1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_app/deadsrv                                                                                               DOWN      1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_app/dyn1                                                                                                  no check  20   0      10      10      10k     0       0      0      23",
        "hap1.sock    be_app/dyn1                                                                                                  no check  20   0      10      10      10k     0       0      0      23",
        "hap0.sock    be_app/dyn2                                                                                                  MAINT     1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_app/dyn2                                                                                                  MAINT     1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_app/dyn3                                                                                                  MAINT     1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_app/dyn3                                                                                                  MAINT     1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_app/s1                                                                                                    UP        100  0      10      10      10k     0       0      0      77",
        "hap1.sock    be_app/s1                                                                                                    UP        100  0      10      10      10k     0       0      0      77",
        "hap0.sock    be_app/s2                                                                                                    DRAIN     1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_app/s2                                                                                                    DRAIN     1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_app/slot1                                                                                                 no check  1    0      10      10      10k     0       0      0      14",
        "hap1.sock    be_app/slot1                                                                                                 no check  1    0      10      10      10k     0       0      0      14",
        "hap0.sock    be_app/slot2                                                                                                 MAINT     1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_app/slot2                                                                                                 MAINT     1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_chash/h1                                                                                                  no check  1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_chash/h1                                                                                                  no check  1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_hash/h1                                                                                                   no check  1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_hash/h1                                                                                                   no check  1    0      10      10      10k     0       0      0      10",
        "hap0.sock    be_tcp/t1                                                                                                    no check  1    0      10      10      10k     0       0      0      10",
        "hap1.sock    be_tcp/t1                                                                                                    no check  1    0      10      10      10k     0       0      0      10",
        "────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────",
        "be_app/deadsrv",
        "hap0.sock: DOWN for 9s, weight 1, check L4CON Connection refused, agent -",
        "hap1.sock: DOWN for 9s, weight 1, check L4CON Connection refused, agent -",
        "22 lines",
    ];

    #[test]
    fn the_servers_tree_summed_at_80_by_24() {
        assert_screen(&model(), &mut App::default(), 80, 24, SERVERS_TREE_80X24);
    }

    #[test]
    fn the_servers_per_socket_with_the_detail_pane_at_200_by_50() {
        let mut app = App::default();
        app.options.split = true;
        app.options.tree = false;
        app.detail = true;
        assert_screen(&model(), &mut app, 200, 50, SERVERS_PER_SOCKET_200X50);
    }

    #[test]
    fn frontends_and_backends_and_the_help_at_80_by_24() {
        let model = model();
        let mut app = App::default();
        app.options.level = Level::Frontends;
        let text = screen(&model, &mut app, 80, 24);
        let lines: Vec<&str> = text.lines().take(4).collect();
        assert_eq!(
            lines,
            [
                "haproxide top: 2 sockets | frontends, summed | sort NAME asc | ? help",
                "NAME*               STATUS    WT   CUR    SESS/s  REQ/s   IN/s    OUT/s   5XX/s",
                "fe_main             OPEN           0      20      20      20k     0       0",
                "fe_stats            OPEN           0      20      20      20k     0       0",
            ]
        );
        app.options.level = Level::Backends;
        app.options.sort = Column::Weight;
        app.options.descending = true;
        let text = screen(&model, &mut app, 80, 24);
        let names: Vec<&str> = text
            .lines()
            .skip(2)
            .take(4)
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        assert_eq!(names, ["be_app", "be_chash", "be_hash", "be_tcp"]);
        app.prompt = Prompt::Help;
        let text = screen(&model, &mut app, 80, 24);
        assert!(text.contains("│D M R    drain, maint, ready the server"), "{text}");
    }
}
