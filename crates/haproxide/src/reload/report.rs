//! How a reload tells what it did: one line per step as it happens, in text
//! for people or as JSON lines for programs (`--format json`), ending with
//! a `result` line.
//!
//! Text: `validate: ok (31 ms): configuration is valid`, then HAProxy's own
//! lines indented. JSON: `{"step":"validate","ok":true,"ms":31,
//! "message":"…","lines":[…]}` with the step's own fields (`pid`,
//! `old_pids`, …).

use std::io::Write;
use std::time::Instant;

use serde_json::{Map, Value};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per step, for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct Step {
    name: &'static str,
    ok: bool,
    started: Instant,
    message: String,
    lines: Vec<String>,
    fields: Map<String, Value>,
}

impl Step {
    /// A step called `name` that began at `started`.
    pub fn new(name: &'static str, started: Instant, ok: bool, message: impl Into<String>) -> Step {
        Step {
            name,
            ok,
            started,
            message: message.into(),
            lines: Vec::new(),
            fields: Map::new(),
        }
    }

    /// Lines of another program's output (HAProxy's errors) that go with it.
    pub fn lines(mut self, lines: Vec<String>) -> Step {
        self.lines = lines;
        self
    }

    /// A field of the JSON line.
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Step {
        self.fields.insert(name.to_owned(), value.into());
        self
    }
}

/// Where steps are written.
pub struct Report {
    format: Format,
    out: Box<dyn Write + Send>,
}

impl Report {
    /// Steps in `format` to standard output.
    pub fn stdout(format: Format) -> Report {
        Report::new(format, Box::new(std::io::stdout()))
    }

    /// Steps in `format` to `out`.
    pub fn new(format: Format, out: Box<dyn Write + Send>) -> Report {
        Report { format, out }
    }

    /// Writes `step` now. Output that cannot be written (a closed pipe) does
    /// not stop a reload half-way.
    pub fn step(&mut self, step: Step) {
        let ms = u64::try_from(step.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let text = match self.format {
            Format::Text => {
                let verdict = if step.ok { "ok" } else { "FAILED" };
                let mut text = format!("{}: {verdict} ({ms} ms): {}\n", step.name, step.message);
                for line in &step.lines {
                    text.push_str("    ");
                    text.push_str(line);
                    text.push('\n');
                }
                text
            }
            Format::Json => {
                let mut object = Map::new();
                object.insert("step".into(), step.name.into());
                object.insert("ok".into(), step.ok.into());
                object.insert("ms".into(), ms.into());
                object.insert("message".into(), step.message.into());
                if !step.lines.is_empty() {
                    object.insert("lines".into(), step.lines.into());
                }
                object.extend(step.fields);
                format!("{}\n", Value::Object(object))
            }
        };
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written(format: Format, step: Step) -> String {
        let shared = Shared::default();
        Report::new(format, Box::new(shared.clone())).step(step);
        let bytes = shared.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_step_is_one_line_in_either_format_with_haproxys_lines() {
        let step = || {
            Step::new("validate", Instant::now(), false, "HAProxy rejects the configuration")
                .lines(vec!["[ALERT] parsing [x.cfg:3]: unknown keyword 'bogus'".into()])
                .field("exit_code", 1)
        };
        let text = written(Format::Text, step());
        let (first, rest) = text.split_once('\n').unwrap();
        assert!(first.starts_with("validate: FAILED ("), "{text}");
        assert!(first.ends_with(" ms): HAProxy rejects the configuration"), "{text}");
        assert_eq!(rest, "    [ALERT] parsing [x.cfg:3]: unknown keyword 'bogus'\n");
        let json: Value = serde_json::from_str(written(Format::Json, step()).trim_end()).unwrap();
        assert_eq!(json["step"], "validate");
        assert_eq!(json["ok"], false);
        assert_eq!(json["exit_code"], 1);
        assert_eq!(json["lines"][0], "[ALERT] parsing [x.cfg:3]: unknown keyword 'bogus'");
    }
}
