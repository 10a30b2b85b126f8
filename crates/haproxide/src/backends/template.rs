//! The template path: backends with `mode = template` have no spare slots
//! and no runtime changes; every change of their servers is written into
//! HAProxy's configuration from a Jinja template (minijinja), and HAProxy
//! is reloaded with [`crate::reload`].
//!
//! One writer serves every template backend of the controller, so a burst
//! of changes (to one backend or several) waits until the sources have
//! been quiet for `settle`, and gives one render and one reload. Each
//! render goes to a temporary file beside the target, is validated with
//! `haproxy -c` as the reload would run it (the target replaced by the
//! temporary file), and only then renamed into place; the reload validates,
//! saves the servers' state, reloads and verifies. When the reload fails,
//! the previous file is put back. A failure is said once, naming the
//! template and HAProxy's line (quoted from the rendered text), and tried
//! again on the next change or after `retry`.
//!
//! The template sees:
//! - `nodes`: EP2's variable, the `server` lines as EP2 wrote them
//!   (`    server NAME ADDRESS:PORT check inter X maxconn Y`), so an EP2
//!   template works unchanged;
//! - `servers`: a list of `{name, address, port, weight, options, backend}`;
//! - `backends`: each HAProxy backend's own list of the same, by name.
//!
//! Server names come from the address and port (`srv_10.0.0.1_8080`, as
//! dynamic mode names them): a server keeps its name across renders, so
//! its stats, stick tables and `show servers state` survive the reload
//! (EP2 renumbered its servers on every render). With `runtime-first`, the
//! backends are changed at run time by the controller (dynamic mode, the
//! same names) and the file is written without a reload, so the next
//! reload keeps the same servers.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::Run;
use super::plan::{server_name, settle_ports};
use super::sources::Found;
use crate::reload::{self, Format, Outcome, Report};
use crate::runtime::notify::Heartbeat;
use crate::runtime::{ProblemChange, note_problem};

/// The writer's settings (`[template]` and `[reload]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSettings {
    /// The Jinja template.
    pub template: PathBuf,
    /// The HAProxy configuration file written from it.
    pub target: PathBuf,
    /// How long the sources must be quiet before a render.
    pub settle: Duration,
    /// When a failed render or reload is tried again without a change.
    pub retry: Duration,
    /// Changed at run time first; the file is written without a reload.
    pub runtime_first: bool,
    /// How HAProxy is validated and reloaded.
    pub reload: reload::Settings,
}

/// One template backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateBackend {
    /// Its section, for the log.
    pub section: String,
    /// The HAProxy backend.
    pub backend: String,
    /// Server names' prefix.
    pub prefix: String,
    /// A fixed port.
    pub port: Option<u16>,
    /// Fewer servers than this: the last rendered list stays.
    pub min_servers: usize,
    /// `options` of each server (the backend's `server-options`).
    pub options: String,
    /// What follows `ADDRESS:PORT` in a `nodes` line.
    pub nodes_options: String,
}

/// A server as the template sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    /// Its stable name.
    pub name: String,
    /// Its IP address.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Its weight, when the source gives one.
    pub weight: Option<u32>,
    /// The backend's `server-options`.
    pub options: String,
    /// The HAProxy backend it belongs to.
    pub backend: String,
}

impl TemplateBackend {
    /// The servers for `found`, sorted by address and port; a problem for
    /// each one without a port.
    pub fn servers(&self, found: &[Found], problems: &mut Vec<String>) -> Vec<Server> {
        settle_ports(found, self.port, &self.section, problems)
            .into_iter()
            .map(|target| Server {
                name: server_name(&self.prefix, &target),
                address: target.address.to_string(),
                port: target.port,
                weight: target.weight,
                options: self.options.clone(),
                backend: self.backend.clone(),
            })
            .collect()
    }

    /// EP2's `server` line of `server`: four spaces, then
    /// `server NAME ADDRESS:PORT ` and the options (EP2's `check inter X
    /// maxconn Y`, trailing spaces kept).
    fn nodes_line(&self, server: &Server) -> String {
        let address = match server.address.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("ipv6@{v6}"),
            _ => server.address.clone(),
        };
        let mut line = format!(
            "    server {} {address}:{} {}",
            server.name, server.port, self.nodes_options
        );
        if let Some(weight) = server.weight {
            line.push_str(&format!(" weight {weight}"));
        }
        line.push('\n');
        line
    }
}

/// Renders `source` (the template file `name`) with every backend's servers.
pub fn render(name: &str, source: &str, backends: &[(&TemplateBackend, &[Server])]) -> Result<String, String> {
    let mut environment = Environment::new();
    // As Jinja2 renders EP2's template: no escaping. Unlike Jinja2, the
    // template's last newline is kept: HAProxy refuses a file whose last
    // line has none.
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.set_keep_trailing_newline(true);
    let template = environment
        .template_from_named_str(name, source)
        .map_err(|error| describe_template_error(name, &error))?;
    let mut nodes = String::new();
    let mut servers = Vec::new();
    let mut by_backend: BTreeMap<&str, &[Server]> = BTreeMap::new();
    for (backend, list) in backends {
        for server in *list {
            nodes.push_str(&backend.nodes_line(server));
        }
        servers.extend(list.iter().cloned());
        by_backend.insert(&backend.backend, list);
    }
    let mut text = template
        .render(minijinja::context! { nodes => nodes, servers => servers, backends => by_backend })
        .map_err(|error| describe_template_error(name, &error))?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn describe_template_error(name: &str, error: &minijinja::Error) -> String {
    let line = error.line().map(|line| format!(":{line}")).unwrap_or_default();
    match error.detail() {
        Some(detail) => format!("template {name}{line}: {}: {detail}", error.kind()),
        None => format!("template {name}{line}: {}", error.kind()),
    }
}

/// A writer the reload's report goes into, read afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        crate::runtime::unpoisoned(self.0.lock(), "a reload report").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&crate::runtime::unpoisoned(self.0.lock(), "a reload report")).into_owned()
    }
}

/// The temporary file a render is written to: beside the target, hidden,
/// and without `.cfg`, so a configuration directory never loads it.
fn temporary_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.haproxide-render"))
}

/// Writes `text` to `path` durably.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let mut file = std::fs::File::create(path).map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Puts `text` at `target` by a rename of a durable temporary file.
fn replace_file(target: &Path, text: &str) -> Result<(), String> {
    let temporary = temporary_path(target);
    write_file(&temporary, text)?;
    std::fs::rename(&temporary, target)
        .map_err(|error| format!("cannot rename {} to {}: {error}", temporary.display(), target.display()))
}

/// HAProxy's lines about the temporary file, said of the target, each
/// followed by the rendered line it names (`parsing [FILE:N]`).
fn explain_haproxy_lines(report: &str, temporary: &Path, target: &Path, rendered: &str) -> Vec<String> {
    let temporary = temporary.display().to_string();
    let target = target.display().to_string();
    let rendered: Vec<&str> = rendered.lines().collect();
    let mut lines = Vec::new();
    for line in report
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("[ALERT]") || line.contains("[WARNING]"))
    {
        lines.push(without_pid(&line.replace(&temporary, &target)));
        let number = line
            .split_once(&format!("{temporary}:"))
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse::<usize>().ok());
        if let Some(number) = number
            && let Some(text) = number.checked_sub(1).and_then(|index| rendered.get(index))
        {
            lines.push(format!("rendered line {number}: {}", text.trim_end()));
        }
    }
    lines
}

/// `[ALERT]    (4242) : config : …` without the PID, which differs at each
/// try: the same error is then the same message, logged once.
fn without_pid(line: &str) -> String {
    match line.split_once(" (") {
        Some((level, rest)) => match rest.split_once(") : ") {
            Some((pid, rest)) if pid.bytes().all(|byte| byte.is_ascii_digit()) => {
                format!("{} : {rest}", level.trim_end())
            }
            _ => line.to_owned(),
        },
        None => line.to_owned(),
    }
}

/// The writer of one target.
struct Writer {
    settings: TemplateSettings,
    /// The lists last written, by backend: what stays when a list is too short.
    written: HashMap<String, Vec<Server>>,
    problem: Option<String>,
}

/// How a pass without a problem ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passed {
    /// A backend's source has not answered yet: nothing was rendered.
    Waiting,
    /// Rendered: the target holds it (written now or already), or a dry run printed it.
    Rendered,
}

impl Writer {
    /// Renders every backend's latest list and applies it when the text
    /// changed.
    async fn pass(
        &mut self,
        backends: &[(TemplateBackend, watch::Receiver<Option<Vec<Found>>>)],
        run: Run,
    ) -> Result<Passed, String> {
        let mut problems = Vec::new();
        let mut lists: Vec<(&TemplateBackend, Vec<Server>)> = Vec::new();
        for (backend, found) in backends {
            let Some(found) = found.borrow().clone() else {
                return Ok(Passed::Waiting);
            };
            let servers = backend.servers(&found, &mut problems);
            if servers.len() < backend.min_servers {
                let Some(last) = self.written.get(&backend.backend) else {
                    return Err(format!(
                        "{}: discovery names {} servers, fewer than min-servers = {}: nothing is rendered yet",
                        backend.section,
                        servers.len(),
                        backend.min_servers
                    ));
                };
                problems.push(format!(
                    "{}: discovery names {} servers, fewer than min-servers = {}: the {} written stay",
                    backend.section,
                    servers.len(),
                    backend.min_servers,
                    last.len()
                ));
                lists.push((backend, last.clone()));
            } else {
                lists.push((backend, servers));
            }
        }
        let template = &self.settings.template;
        let source =
            std::fs::read_to_string(template).map_err(|error| format!("template {}: {error}", template.display()))?;
        let parts: Vec<(&TemplateBackend, &[Server])> = lists
            .iter()
            .map(|(backend, list)| (*backend, list.as_slice()))
            .collect();
        let text = render(&template.display().to_string(), &source, &parts)?;
        let old = match std::fs::read_to_string(&self.settings.target) {
            Ok(old) => Some(old),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(format!("{}: {error}", self.settings.target.display())),
        };
        for problem in &problems {
            tracing::warn!("{problem}");
        }
        let written = |writer: &mut Writer| {
            for (backend, list) in &lists {
                writer.written.insert(backend.backend.clone(), list.clone());
            }
        };
        if old.as_deref() == Some(text.as_str()) {
            written(self);
            return Ok(Passed::Rendered);
        }
        if run == Run::DryRun {
            print!("{text}");
            return Ok(Passed::Rendered);
        }
        self.apply(&text, old.as_deref()).await?;
        written(self);
        Ok(Passed::Rendered)
    }

    /// Validates `text` as the new target, puts it in place and reloads;
    /// puts `old` back when the reload fails.
    async fn apply(&self, text: &str, old: Option<&str>) -> Result<(), String> {
        let settings = &self.settings;
        let template = settings.template.display();
        let target = &settings.target;
        let temporary = temporary_path(target);
        write_file(&temporary, text)?;
        let mut checked = settings.reload.clone();
        for file in &mut checked.config {
            if file == target {
                file.clone_from(&temporary);
            }
        }
        let captured = Captured::default();
        let mut report = Report::new(Format::Text, Box::new(captured.clone()));
        let outcome = reload::reload(&checked, true, &mut report).await;
        if outcome != Outcome::Valid {
            let _ = std::fs::remove_file(&temporary);
            let lines = explain_haproxy_lines(&captured.text(), &temporary, target, text);
            return Err(format!(
                "template {template} renders a configuration HAProxy refuses; {} is unchanged:\n{}",
                target.display(),
                if lines.is_empty() {
                    captured.text()
                } else {
                    lines.join("\n")
                }
            ));
        }
        std::fs::rename(&temporary, target)
            .map_err(|error| format!("cannot rename {} to {}: {error}", temporary.display(), target.display()))?;
        if settings.runtime_first {
            tracing::info!(
                "template {template} rendered into {} (applied at run time; no reload)",
                target.display()
            );
            return Ok(());
        }
        let captured = Captured::default();
        let mut report = Report::new(Format::Text, Box::new(captured.clone()));
        let outcome = reload::reload(&settings.reload, false, &mut report).await;
        match outcome {
            Outcome::Reloaded { .. } | Outcome::Coalesced { .. } => {
                tracing::info!(
                    "template {template} rendered into {}; {}",
                    target.display(),
                    outcome.summary()
                );
                Ok(())
            }
            failed => {
                let restored = match old {
                    Some(old) => {
                        replace_file(target, old).map(|()| format!("the previous {} is back", target.display()))
                    }
                    None => std::fs::remove_file(target)
                        .map(|()| format!("{} is removed again", target.display()))
                        .map_err(|error| format!("cannot remove {}: {error}", target.display())),
                };
                let restored =
                    restored.unwrap_or_else(|error| format!("and the previous file could not be put back: {error}"));
                Err(format!(
                    "template {template} rendered into {}, but {}; {restored}:\n{}",
                    target.display(),
                    failed.summary(),
                    captured.text().trim_end()
                ))
            }
        }
    }
}

/// Keeps `settings.target` rendered from the template with every
/// backend's servers until stopped (daemon), or once; `true` when it ended
/// without a problem. `heartbeat` beats after each pass that did not wait
/// for a source.
pub async fn run(
    settings: TemplateSettings,
    backends: Vec<(TemplateBackend, watch::Receiver<Option<Vec<Found>>>)>,
    run: Run,
    heartbeat: Arc<Heartbeat>,
) -> bool {
    let changed = Arc::new(Notify::new());
    for (_, found) in &backends {
        let mut found = found.clone();
        let changed = Arc::clone(&changed);
        tokio::spawn(async move {
            while found.changed().await.is_ok() {
                changed.notify_one();
            }
        });
    }
    let settle = settings.settle;
    let retry = settings.retry;
    let mut writer = Writer {
        settings,
        written: HashMap::new(),
        problem: None,
    };
    loop {
        let outcome = writer.pass(&backends, run).await;
        let waiting = outcome == Ok(Passed::Waiting);
        if !waiting {
            heartbeat.beat();
        }
        let problem = outcome.err();
        match note_problem(&mut writer.problem, problem.clone()) {
            ProblemChange::Began => tracing::error!("{}", problem.as_deref().unwrap_or_default()),
            ProblemChange::Ended => tracing::info!("template {}: rendered again", writer.settings.template.display()),
            ProblemChange::Unchanged => {}
        }
        let retry_at = problem.is_some().then(|| tokio::time::Instant::now() + retry);
        if !waiting && run != Run::Daemon {
            return writer.problem.is_none();
        }
        // The next change, then quiet for `settle` (at most four times
        // that in all, so a flapping source still gets rendered).
        let woken = async {
            match retry_at {
                Some(at) => tokio::select! {
                    () = changed.notified() => true,
                    () = tokio::time::sleep_until(at) => false,
                },
                None => {
                    changed.notified().await;
                    true
                }
            }
        };
        if woken.await {
            let started = Instant::now();
            while started.elapsed() < settle * 4 {
                tokio::select! {
                    () = changed.notified() => {}
                    () = tokio::time::sleep(settle) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(nodes_options: &str) -> TemplateBackend {
        TemplateBackend {
            section: "haproxy".into(),
            backend: "haproxynode".into(),
            prefix: "node_".into(),
            port: Some(5555),
            min_servers: 1,
            options: "check".into(),
            nodes_options: nodes_options.into(),
        }
    }

    fn found(address: &str) -> Found {
        Found {
            address: address.parse().unwrap(),
            port: None,
            weight: None,
        }
    }

    #[test]
    fn nodes_are_ep2_s_server_lines_with_stable_names() {
        let ep2 = backend("check inter 2000 maxconn 50");
        let servers = ep2.servers(&[found("5.5.5.5"), found("1.1.1.1")], &mut Vec::new());
        let text = render("ep2.template", "listen haproxynode\n{{nodes}}", &[(&ep2, &servers)]).unwrap();
        assert_eq!(
            text,
            "listen haproxynode\n    server node_1.1.1.1_5555 1.1.1.1:5555 check inter 2000 maxconn 50\n    server node_5.5.5.5_5555 5.5.5.5:5555 check inter 2000 maxconn 50\n"
        );
        // EP2 without check_interval and backend_maxconn: `check ` + "" + ` ` + "".
        let bare = backend("check  ");
        let servers = bare.servers(&[found("1.1.1.1")], &mut Vec::new());
        assert_eq!(
            render("t", "{{nodes}}", &[(&bare, &servers)]).unwrap(),
            "    server node_1.1.1.1_5555 1.1.1.1:5555 check  \n"
        );
    }

    #[test]
    fn new_templates_get_structured_servers_by_backend() {
        let web = backend("");
        let mut api = backend("");
        api.backend = "be_api".into();
        api.prefix = "api_".into();
        let web_servers = web.servers(&[found("10.0.0.2"), found("::1")], &mut Vec::new());
        let api_servers = api.servers(&[found("10.0.0.9")], &mut Vec::new());
        let source = "{% for name, list in backends|items %}backend {{ name }}\n{% for s in list %}    server {{ s.name }} {{ s.address }}:{{ s.port }} {{ s.options }}\n{% endfor %}{% endfor %}{{ servers|length }}";
        assert_eq!(
            render("t", source, &[(&web, &web_servers), (&api, &api_servers)]).unwrap(),
            "backend be_api\n    server api_10.0.0.9_5555 10.0.0.9:5555 check\nbackend haproxynode\n    server node_10.0.0.2_5555 10.0.0.2:5555 check\n    server node_--1_5555 ::1:5555 check\n3\n"
        );
    }

    #[test]
    fn template_errors_name_the_file_and_line() {
        let error = render("/etc/haproxide/haproxy.cfg.j2", "global\n{% for x in %}\n", &[]).unwrap_err();
        assert!(
            error.starts_with("template /etc/haproxide/haproxy.cfg.j2:2: syntax error: "),
            "{error}"
        );
    }

    #[test]
    fn haproxy_s_lines_name_the_target_and_quote_the_rendered_line() {
        let temporary = Path::new("/etc/haproxy/.haproxy.cfg.haproxide-render");
        let report = "validate: failed (12 ms): the configuration is invalid\n    [ALERT]    (4242) : config : parsing [/etc/haproxy/.haproxy.cfg.haproxide-render:3] : unknown keyword 'sever' in 'backend' section\n    [ALERT]    (4242) : config : Fatal errors found in configuration.\n";
        let rendered = "global\nbackend be\n    sever s1 10.0.0.1:80\n";
        assert_eq!(
            explain_haproxy_lines(report, temporary, Path::new("/etc/haproxy/haproxy.cfg"), rendered),
            [
                "[ALERT] : config : parsing [/etc/haproxy/haproxy.cfg:3] : unknown keyword 'sever' in 'backend' section",
                "rendered line 3:     sever s1 10.0.0.1:80",
                "[ALERT] : config : Fatal errors found in configuration."
            ]
        );
    }
}
