//! Running the binary under test, one way for every test file: a
//! [`Workspace`] (a temporary directory with a configuration file in it) and
//! a [`TestCommand`], which on failure prints the command line, the
//! configuration it was given, a listing of the workspace and the output.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Whether tests run as root, whom file permissions do not stop.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

/// A temporary directory holding a configuration file; removed on drop.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workspace {
    /// A new directory with a configuration `file_name` in it, whose text
    /// `text` makes from the directory's path.
    pub fn new(file_name: &str, text: impl FnOnce(&Path) -> String) -> Workspace {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let config = dir.path().join(file_name);
        fs::write(&config, text(dir.path())).expect("write the configuration");
        Workspace { dir, config }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// `program ARGS -f CONFIG`, reporting this workspace on failure.
    pub fn command(&self, program: &str, args: &[&str]) -> TestCommand {
        TestCommand::new(program)
            .args(args)
            .config(&self.config)
            .listing(self.path())
    }

    /// Appends `text` to the configuration file.
    pub fn append_config(&self, text: &str) {
        let mut config = fs::read_to_string(&self.config).expect("the configuration");
        config.push_str(text);
        fs::write(&self.config, config).expect("the configuration written");
    }

    /// The text of `name` in the workspace (a daemon's log), empty when missing.
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }
}

/// A command line of the binary under test.
#[derive(Debug, Clone)]
pub struct TestCommand {
    program: PathBuf,
    args: Vec<OsString>,
    config: Option<PathBuf>,
    listing: Option<PathBuf>,
    uid: Option<u32>,
    env: Vec<(OsString, OsString)>,
}

impl TestCommand {
    /// `program` with no arguments yet.
    pub fn new(program: impl Into<PathBuf>) -> TestCommand {
        TestCommand {
            program: program.into(),
            args: Vec::new(),
            config: None,
            listing: None,
            uid: None,
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for it.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> TestCommand {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds arguments.
    pub fn args<S: Into<OsString> + Clone>(mut self, args: &[S]) -> TestCommand {
        self.args.extend(args.iter().cloned().map(Into::into));
        self
    }

    /// Adds `-f path`; a failure report shows the file.
    pub fn config(mut self, path: &Path) -> TestCommand {
        self.args.push("-f".into());
        self.args.push(path.into());
        self.config = Some(path.to_owned());
        self
    }

    /// A failure report lists the files under `dir`.
    pub fn listing(mut self, dir: &Path) -> TestCommand {
        self.listing = Some(dir.to_owned());
        self
    }

    /// Runs it as user `uid` (and that user's group of the same number) when
    /// given: for tests of permissions, which root is not subject to.
    pub fn user(mut self, uid: Option<u32>) -> TestCommand {
        self.uid = uid;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null());
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        command
    }

    /// Runs it to the end.
    pub fn output(&self) -> Output {
        self.command()
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.program.display()))
    }

    /// Runs it; fails the test, with a report, unless it exits 0.
    pub fn expect_success(&self) -> Output {
        let output = self.output();
        assert!(output.status.success(), "{}", self.report(Some(&output)));
        output
    }

    /// Runs it; fails the test, with a report, unless it exits with `code`.
    pub fn expect_exit(&self, code: i32) -> Output {
        let output = self.output();
        assert_eq!(output.status.code(), Some(code), "{}", self.report(Some(&output)));
        output
    }

    /// Starts it with standard error going to `log` (and standard output nowhere).
    pub fn spawn(&self, log: &Path) -> Child {
        self.command()
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).expect("create the log file"))
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.program.display()))
    }

    /// Starts it with standard output and error piped, for `wait_with_output`.
    pub fn spawn_piped(&self) -> Child {
        self.command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.program.display()))
    }

    /// What went wrong, for a failure message: the command line, the
    /// configuration, the workspace's files and, if it ran, its output.
    pub fn report(&self, output: Option<&Output>) -> String {
        let mut report = match self.uid {
            Some(uid) => format!("command (as uid {uid}): {}", self.program.display()),
            None => format!("command: {}", self.program.display()),
        };
        for arg in &self.args {
            let _ = write!(report, " {}", arg.to_string_lossy());
        }
        report.push('\n');
        if let Some(config) = &self.config {
            let text = fs::read_to_string(config).unwrap_or_else(|error| format!("(cannot read: {error})\n"));
            let _ = write!(report, "--- {}\n{text}", config.display());
        }
        if let Some(dir) = &self.listing {
            let _ = writeln!(report, "--- files under {}", dir.display());
            for path in files_under(dir) {
                let _ = writeln!(report, "{}", path.strip_prefix(dir).unwrap_or(&path).display());
            }
        }
        if let Some(output) = output {
            let _ = write!(
                report,
                "--- {}\n--- stdout\n{}--- stderr\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        report
    }
}

/// Every file and directory under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = fs::read_dir(&next) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_report_says_what_ran_with_what() {
        let space = Workspace::new("c.conf", |_| "[pull]\nworkers = 2\n".into());
        fs::create_dir(space.path().join("incoming")).unwrap();
        let command = space.command("/bin/sh", &["-c", "echo out; echo err >&2; exit 3"]);
        // sh reads the script from -c; the -f CONFIG that follows is only its $0 and $1.
        let output = command.expect_exit(3);
        let report = command.report(Some(&output));
        let config = space.config().display().to_string();
        assert!(
            report.starts_with(&format!(
                "command: /bin/sh -c echo out; echo err >&2; exit 3 -f {config}\n"
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("--- {config}\n[pull]\nworkers = 2\n")),
            "{report}"
        );
        assert!(report.contains("\nc.conf\nincoming\n"), "{report}");
        assert!(report.ends_with("--- stdout\nout\n--- stderr\nerr\n"), "{report}");
    }
}
