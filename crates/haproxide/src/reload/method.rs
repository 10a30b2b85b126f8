//! The four ways to make HAProxy reload, the command lines they run, and
//! running a program the way a reload must: an argument vector (no shell
//! anywhere), a time limit, and its output kept even when it leaves a
//! daemon behind that holds its pipes open.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// How a reload is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `reload` on the master CLI (`haproxy -W -S sock`).
    Master,
    /// `systemctl reload UNIT`.
    Systemd,
    /// A new standalone process: `haproxy -f … -p PID -D -x SOCK -sf OLD…`.
    Binary,
    /// SIGUSR2 to the master, whose PID is in the pid file.
    Signal,
}

impl Method {
    /// The names the `method` key takes, in [`Method::ALL`]'s order.
    pub const NAMES: &'static [&'static str] = &["master", "systemd", "binary", "signal"];
    const ALL: [Method; 4] = [Method::Master, Method::Systemd, Method::Binary, Method::Signal];

    /// The method called `name`.
    pub fn from_name(name: &str) -> Result<Method, String> {
        crate::config::declare::choice(name, Method::NAMES).map(|index| Method::ALL[index])
    }

    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        Method::NAMES[Method::ALL.iter().position(|method| *method == self).unwrap_or(0)]
    }
}

/// `haproxy -c -f …`: checks the files without touching what runs.
pub fn validate_argv(haproxy: &Path, config: &[PathBuf]) -> Vec<OsString> {
    let mut argv = vec![haproxy.as_os_str().to_owned(), "-c".into()];
    push_files(&mut argv, config);
    argv
}

/// `systemctl reload UNIT`: the unit's `ExecReload` does the rest.
pub fn systemctl_argv(unit: &str) -> Vec<OsString> {
    vec!["systemctl".into(), "reload".into(), unit.into()]
}

/// A standalone HAProxy taking over from `old` processes: it fetches their
/// listening sockets over `stats_socket` (`-x`, needs `expose-fd
/// listeners`) and tells them to finish (`-sf`, which must come last: it
/// takes every argument after it).
pub fn binary_argv(
    haproxy: &Path,
    config: &[PathBuf],
    pid_file: &Path,
    stats_socket: Option<&Path>,
    old: &[u32],
) -> Vec<OsString> {
    let mut argv = vec![haproxy.as_os_str().to_owned()];
    push_files(&mut argv, config);
    argv.extend(["-p".into(), pid_file.as_os_str().to_owned(), "-D".into()]);
    if let Some(socket) = stats_socket {
        argv.extend(["-x".into(), socket.as_os_str().to_owned()]);
    }
    if !old.is_empty() {
        argv.push("-sf".into());
        argv.extend(old.iter().map(|pid| OsString::from(pid.to_string())));
    }
    argv
}

fn push_files(argv: &mut Vec<OsString>, config: &[PathBuf]) {
    for path in config {
        argv.push("-f".into());
        argv.push(path.as_os_str().to_owned());
    }
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its non-empty output lines, standard error and output together.
    pub lines: Vec<String>,
}

impl Finished {
    /// Whether it exited 0.
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }
}

/// How long output is still read once the program has exited: a daemon it
/// forked may hold the pipes open for ever, but what the program itself
/// wrote is in the pipe by then.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// Runs `argv` with no input, for at most `limit` (then it is killed).
pub async fn run_program(argv: &[OsString], limit: Duration) -> Result<Finished, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no program to run".into());
    };
    let shown = Path::new(program).display().to_string();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot run {shown}: {error}"))?;
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(collect(stderr, Arc::clone(&output))));
    }
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(collect(stdout, Arc::clone(&output))));
    }
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.map_err(|error| format!("{shown}: {error}"))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!("{shown} did not finish within {limit:?}; it was killed"));
        }
    };
    let _ = tokio::time::timeout(OUTPUT_GRACE, async {
        for reader in &mut readers {
            let _ = reader.await;
        }
    })
    .await;
    for reader in readers {
        reader.abort();
    }
    let bytes = crate::runtime::unpoisoned(output.lock(), "a program's output").clone();
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Finished {
        code: status.code(),
        lines,
    })
}

async fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin, output: Arc<Mutex<Vec<u8>>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        crate::runtime::unpoisoned(output.lock(), "a program's output").extend_from_slice(&buffer[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(argv: &[OsString]) -> Vec<&str> {
        argv.iter().map(|arg| arg.to_str().unwrap()).collect()
    }

    #[test]
    fn methods_have_their_configuration_names() {
        for name in Method::NAMES {
            assert_eq!(Method::from_name(name).unwrap().name(), *name);
        }
        assert_eq!(
            Method::from_name("kill"),
            Err("must be one of: master, systemd, binary, signal".to_owned())
        );
    }

    #[test]
    fn command_lines_are_argument_vectors() {
        let config = [
            PathBuf::from("/etc/haproxy/haproxy.cfg"),
            PathBuf::from("/etc/haproxy/with space.d"),
        ];
        assert_eq!(
            strings(&validate_argv(Path::new("/usr/sbin/haproxy"), &config)),
            [
                "/usr/sbin/haproxy",
                "-c",
                "-f",
                "/etc/haproxy/haproxy.cfg",
                "-f",
                "/etc/haproxy/with space.d"
            ]
        );
        // systemd cannot run on this project's test machines (no systemd as
        // PID 1), so the exact vector `method = systemd` runs is checked here.
        assert_eq!(
            strings(&systemctl_argv("haproxy.service")),
            ["systemctl", "reload", "haproxy.service"]
        );
        assert_eq!(
            strings(&binary_argv(
                Path::new("/usr/sbin/haproxy"),
                &config[..1],
                Path::new("/run/haproxy.pid"),
                Some(Path::new("/run/haproxy/admin.sock")),
                &[41, 42],
            )),
            [
                "/usr/sbin/haproxy",
                "-f",
                "/etc/haproxy/haproxy.cfg",
                "-p",
                "/run/haproxy.pid",
                "-D",
                "-x",
                "/run/haproxy/admin.sock",
                "-sf",
                "41",
                "42"
            ]
        );
    }

    #[tokio::test]
    async fn a_program_is_run_without_a_shell_and_bounded() {
        let echo = run_program(&["/bin/echo".into(), "$HOME; rm -rf /".into()], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            echo,
            Finished {
                code: Some(0),
                lines: vec!["$HOME; rm -rf /".into()]
            }
        );
        let failing = run_program(
            &["/bin/sh".into(), "-c".into(), "echo bad >&2; exit 3".into()],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            failing,
            Finished {
                code: Some(3),
                lines: vec!["bad".into()]
            }
        );
        let slow = run_program(&["/bin/sleep".into(), "5".into()], Duration::from_millis(100)).await;
        assert_eq!(
            slow,
            Err("/bin/sleep did not finish within 100ms; it was killed".to_owned())
        );
        let missing = run_program(&["/nonexistent/haproxy".into()], Duration::from_secs(1)).await;
        assert!(missing.unwrap_err().starts_with("cannot run /nonexistent/haproxy: "));
    }
}
