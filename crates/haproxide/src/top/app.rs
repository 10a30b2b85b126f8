//! `top`'s interaction, without a terminal: the view options the keys
//! change, the selected line, the prompts (filter, weight, confirmation),
//! and the server actions they lead to. [`App::key`] takes a key and says
//! what the loop must do.

use super::model::{Column, Level, Line, RowKey, ViewOptions};

/// A server action, as hatop had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `set server B/S state drain`.
    Drain,
    /// `set server B/S state maint`.
    Maint,
    /// `set server B/S state ready`.
    Ready,
    /// `set weight B/S N`.
    Weight(u32),
}

impl Action {
    /// The runtime-API command for `backend`'s `server`.
    pub fn command(&self, backend: &str, server: &str) -> String {
        match self {
            Action::Drain => format!("set server {backend}/{server} state drain"),
            Action::Maint => format!("set server {backend}/{server} state maint"),
            Action::Ready => format!("set server {backend}/{server} state ready"),
            Action::Weight(weight) => format!("set weight {backend}/{server} {weight}"),
        }
    }
}

/// What the keyboard is typing into, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prompt {
    /// Keys move and act.
    #[default]
    None,
    /// The filter being typed.
    Filter(String),
    /// A weight being typed for the selected server.
    Weight(String),
    /// `y` runs the action on the server, anything else cancels.
    Confirm(Action, RowKey),
    /// The help screen; any key closes it.
    Help,
}

/// A key, as the app reads it (the terminal layer translates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Escape.
    Escape,
    /// Backspace.
    Backspace,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
}

/// What the loop does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Redraw.
    Redraw,
    /// Leave `top`.
    Quit,
    /// Send `action` for the server `key` to every socket.
    Run(Action, RowKey),
}

/// The interactive state.
#[derive(Debug, Default)]
pub struct App {
    /// What the table shows.
    pub options: ViewOptions,
    /// The selected line's key and socket, kept across refreshes.
    pub selected: Option<(RowKey, Option<usize>)>,
    /// The first line shown.
    pub scroll: usize,
    /// The prompt, if any.
    pub prompt: Prompt,
    /// Whether the detail pane of the selected server is open.
    pub detail: bool,
    /// What the last action got from each socket.
    pub messages: Vec<String>,
}

/// Lines a page moves.
const PAGE: usize = 10;

impl App {
    /// The selected line's index in `lines` (the first, when the selection is gone).
    pub fn selected_index(&self, lines: &[Line]) -> usize {
        self.selected
            .as_ref()
            .and_then(|(key, socket)| lines.iter().position(|line| line.key == *key && line.socket == *socket))
            .unwrap_or(0)
    }

    /// Handles `key`; `lines` are the table's lines now, which it moves over.
    pub fn key(&mut self, key: Key, lines: &[Line]) -> Effect {
        match std::mem::take(&mut self.prompt) {
            Prompt::Help => Effect::Redraw,
            Prompt::Filter(mut text) => {
                match key {
                    Key::Enter => self.options.filter = text,
                    Key::Escape => self.options.filter.clear(),
                    Key::Backspace => {
                        text.pop();
                        self.prompt = Prompt::Filter(text);
                    }
                    Key::Char(typed) => {
                        text.push(typed);
                        self.prompt = Prompt::Filter(text);
                    }
                    _ => self.prompt = Prompt::Filter(text),
                }
                Effect::Redraw
            }
            Prompt::Weight(mut text) => match key {
                Key::Enter => match (text.parse::<u32>(), self.server(lines)) {
                    (Ok(weight), Some(server)) if weight <= 256 => {
                        self.prompt = Prompt::Confirm(Action::Weight(weight), server);
                        Effect::Redraw
                    }
                    _ => {
                        self.messages = vec![format!("weight {text:?}: a number from 0 to 256")];
                        Effect::Redraw
                    }
                },
                Key::Escape => Effect::Redraw,
                Key::Backspace => {
                    text.pop();
                    self.prompt = Prompt::Weight(text);
                    Effect::Redraw
                }
                Key::Char(typed) if typed.is_ascii_digit() => {
                    text.push(typed);
                    self.prompt = Prompt::Weight(text);
                    Effect::Redraw
                }
                _ => {
                    self.prompt = Prompt::Weight(text);
                    Effect::Redraw
                }
            },
            Prompt::Confirm(action, server) => match key {
                Key::Char('y' | 'Y') => Effect::Run(action, server),
                _ => {
                    self.messages = vec!["cancelled".to_owned()];
                    Effect::Redraw
                }
            },
            Prompt::None => self.command(key, lines),
        }
    }

    /// A key outside any prompt.
    fn command(&mut self, key: Key, lines: &[Line]) -> Effect {
        let at = self.selected_index(lines);
        let last = lines.len().saturating_sub(1);
        let select = |app: &mut App, index: usize| {
            app.selected = lines.get(index).map(|line| (line.key.clone(), line.socket));
        };
        match key {
            Key::Char('q') => return Effect::Quit,
            Key::Up => select(self, at.saturating_sub(1)),
            Key::Down => select(self, (at + 1).min(last)),
            Key::PageUp => select(self, at.saturating_sub(PAGE)),
            Key::PageDown => select(self, (at + PAGE).min(last)),
            Key::Home => select(self, 0),
            Key::End => select(self, last),
            Key::Enter => self.detail = !self.detail,
            Key::Char('?') => self.prompt = Prompt::Help,
            Key::Char('1') => self.options.level = Level::Frontends,
            Key::Char('2') => self.options.level = Level::Backends,
            Key::Char('3') => self.options.level = Level::Servers,
            Key::Char('t') => self.options.tree = !self.options.tree,
            Key::Char('p') => self.options.split = !self.options.split,
            Key::Char('s') => self.options.sort = next_column(self.options.sort, 1),
            Key::Char('S') => self.options.sort = next_column(self.options.sort, Column::ALL.len() - 1),
            Key::Char('i') => self.options.descending = !self.options.descending,
            Key::Char('/') => self.prompt = Prompt::Filter(self.options.filter.clone()),
            Key::Char(letter @ ('D' | 'M' | 'R' | 'W')) => match self.server(lines) {
                Some(server) => {
                    self.prompt = match letter {
                        'D' => Prompt::Confirm(Action::Drain, server),
                        'M' => Prompt::Confirm(Action::Maint, server),
                        'R' => Prompt::Confirm(Action::Ready, server),
                        _ => Prompt::Weight(String::new()),
                    }
                }
                None => self.messages = vec!["choose a server first (3: the servers view)".to_owned()],
            },
            _ => {}
        }
        Effect::Redraw
    }

    /// The selected line's server, if it is one.
    fn server(&self, lines: &[Line]) -> Option<RowKey> {
        let line = lines.get(self.selected_index(lines))?;
        (line.key.0 == Level::Servers).then(|| line.key.clone())
    }

    /// Keeps the selection on screen: the scroll for a table of `height` lines.
    pub fn scroll_to_selection(&mut self, lines: &[Line], height: usize) {
        let at = self.selected_index(lines);
        if at < self.scroll {
            self.scroll = at;
        } else if height > 0 && at >= self.scroll + height {
            self.scroll = at + 1 - height;
        }
        self.scroll = self.scroll.min(lines.len().saturating_sub(height.max(1)));
    }
}

/// The column `steps` after `column`, around.
fn next_column(column: Column, steps: usize) -> Column {
    let at = Column::ALL.iter().position(|known| *known == column).unwrap_or(0);
    Column::ALL[(at + steps) % Column::ALL.len()]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::top::model::{Model, Row, Sample};

    /// One socket with be_app's backend line and servers s1 and s2.
    fn model() -> Model {
        let row = |level: Level, name: &str| Row {
            level,
            proxy: Arc::from("be_app"),
            name: Arc::from(name),
            status: Arc::from("UP"),
            weight: Some(1),
            current: 0,
            counters: [0; 6],
            health: Arc::default(),
            last_change: None,
            pid: Some(1),
            rates: [None; 6],
        };
        let mut model = Model::default();
        model.follow(&["a.sock".to_owned()]);
        let rows = vec![
            row(Level::Backends, "BACKEND"),
            row(Level::Servers, "s1"),
            row(Level::Servers, "s2"),
        ];
        model.record(0, Ok(Sample::of(None, Instant::now(), &rows)));
        model
    }

    /// Presses `key` on the lines `model` shows with `app`'s options.
    fn press(app: &mut App, model: &Model, key: Key) -> Effect {
        let lines = model.lines(&app.options, &mut Vec::new());
        app.key(key, &lines)
    }

    /// Presses the key of each character of `text` in turn.
    fn type_text(app: &mut App, model: &Model, text: &str) {
        for character in text.chars() {
            press(app, model, Key::Char(character));
        }
    }

    fn s2() -> RowKey {
        (Level::Servers, Arc::from("be_app"), Arc::from("s2"))
    }

    #[test]
    fn an_action_needs_a_server_and_a_y() {
        let model = model();
        let mut app = App::default();
        // The first line is be_app's backend line: no action on it.
        assert_eq!(press(&mut app, &model, Key::Char('D')), Effect::Redraw);
        assert_eq!(app.prompt, Prompt::None);
        assert_eq!(app.messages, ["choose a server first (3: the servers view)"]);
        press(&mut app, &model, Key::Down);
        press(&mut app, &model, Key::Down);
        press(&mut app, &model, Key::Char('D'));
        assert_eq!(app.prompt, Prompt::Confirm(Action::Drain, s2()));
        assert_eq!(
            press(&mut app, &model, Key::Char('y')),
            Effect::Run(Action::Drain, s2())
        );
        press(&mut app, &model, Key::Char('M'));
        assert_eq!(press(&mut app, &model, Key::Char('n')), Effect::Redraw);
        assert_eq!(app.messages, ["cancelled"]);
        assert_eq!(Action::Weight(5).command("be_app", "s2"), "set weight be_app/s2 5");
        assert_eq!(
            Action::Maint.command("be_app", "s2"),
            "set server be_app/s2 state maint"
        );
    }

    #[test]
    fn a_weight_is_typed_then_confirmed_and_one_past_256_is_refused() {
        let model = model();
        let mut app = App::default();
        press(&mut app, &model, Key::End);
        type_text(&mut app, &model, "W2x5");
        press(&mut app, &model, Key::Enter);
        assert_eq!(app.prompt, Prompt::Confirm(Action::Weight(25), s2()));
        press(&mut app, &model, Key::Escape);
        type_text(&mut app, &model, "W300");
        press(&mut app, &model, Key::Enter);
        assert_eq!(app.prompt, Prompt::None);
        assert_eq!(app.messages, ["weight \"300\": a number from 0 to 256"]);
    }

    #[test]
    fn the_filter_is_typed_applied_and_cleared_and_keys_change_the_view() {
        let model = model();
        let mut app = App::default();
        type_text(&mut app, &model, "/sx");
        press(&mut app, &model, Key::Backspace);
        type_text(&mut app, &model, "2");
        assert_eq!(app.prompt, Prompt::Filter("s2".to_owned()));
        assert_eq!(app.options.filter, "", "applied on Enter only");
        press(&mut app, &model, Key::Enter);
        assert_eq!(app.options.filter, "s2");
        press(&mut app, &model, Key::Char('/'));
        press(&mut app, &model, Key::Escape);
        assert_eq!(app.options.filter, "");
        type_text(&mut app, &model, "1tpSi");
        assert_eq!(
            app.options,
            ViewOptions {
                level: Level::Frontends,
                tree: false,
                split: true,
                sort: Column::Total(crate::top::model::Counter::Sessions),
                descending: true,
                filter: String::new(),
            }
        );
        assert_eq!(press(&mut app, &model, Key::Char('?')), Effect::Redraw);
        assert_eq!(app.prompt, Prompt::Help);
        press(&mut app, &model, Key::Char('x'));
        assert_eq!(app.prompt, Prompt::None);
        assert_eq!(press(&mut app, &model, Key::Char('q')), Effect::Quit);
    }
}
