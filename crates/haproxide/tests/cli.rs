//! The binary's configuration commands: `check-config`, and `-p`/`-P` under
//! haproxystats' program names (symlinks to the same binary).

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use std::process::Output;
use testkit::TestCommand;

fn haproxide() -> &'static str {
    env!("CARGO_BIN_EXE_haproxide")
}

fn run(program: impl AsRef<Path>, args: &[&str]) -> Output {
    TestCommand::new(program.as_ref()).args(args).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A directory holding `haproxystats-pull` and `haproxystats-process` symlinks.
fn symlinks() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pull = dir.path().join("haproxystats-pull");
    let process = dir.path().join("haproxystats-process");
    std::os::unix::fs::symlink(haproxide(), &pull).unwrap();
    std::os::unix::fs::symlink(haproxide(), &process).unwrap();
    (dir, pull, process)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn old_program_names_print_haproxystats_defaults_exactly() {
    let (_dir, pull, process) = symlinks();
    let printed = run(&pull, &["-p"]);
    assert!(printed.status.success());
    assert_eq!(text(&printed.stdout), include_str!("data/haproxystats-pull-p.txt"));
    let printed = run(&process, &["--print"]);
    assert!(printed.status.success());
    assert_eq!(text(&printed.stdout), include_str!("data/haproxystats-process-p.txt"));
    let same = run(haproxide(), &["process", "-p"]);
    assert_eq!(text(&same.stdout), include_str!("data/haproxystats-process-p.txt"));
    let both = run(&pull, &["-p", "-P"]);
    assert_eq!(both.status.code(), Some(2), "-p and -P are mutually exclusive");
}

#[test]
fn print_conf_interpolates_base_dir() {
    let (dir, pull, process) = symlinks();
    let conf = write(
        dir.path(),
        "hs.conf",
        "[paths]\nbase-dir = /srv/hs\n[pull]\ndst-dir = ${paths:base-dir}/incoming\n\
         tmp-dst-dir = ${paths:base-dir}/incoming.tmp\n[process]\nsrc-dir = ${paths:base-dir}/incoming\n",
    );
    let conf = conf.to_str().unwrap();
    let printed = run(&pull, &["-f", conf, "-P"]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let expected_pull = "[DEFAULT]\ninterval = 2\nloglevel = info\nretries = 2\ntimeout = 1\n\n[pull]\n\
        buffer-limit = 6291456\ndst-dir = /srv/hs/incoming\ninterval = 0.5\nloglevel = info\npull-interval = 10\n\
        pull-timeout = 2\nqueue-size = 360\nretries = 1\ntimeout = 0.1\ntmp-dst-dir = /srv/hs/incoming.tmp\nworkers = 8\n\n";
    assert_eq!(text(&printed.stdout), expected_pull);
    let printed = text(&run(&process, &["-f", conf, "--print-conf"]).stdout);
    assert!(
        printed.contains("[paths]\nbase-dir = /srv/hs\ninterval = 2\nloglevel = info\nretries = 2\ntimeout = 1\n\n")
    );
    assert!(printed.contains("\nsrc-dir = /srv/hs/incoming\n"), "{printed}");
    assert!(!printed.contains("[pull]"));
}

#[test]
fn check_config_names_file_section_and_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.conf", "[process]\nworkers = x\n");
    let checked = run(haproxide(), &["check-config", "-f", bad.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    let stderr = text(&checked.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {}:2: [process] workers = \"x\": expected an integer\n",
            bad.display()
        )),
        "{stderr}"
    );

    let good = write(
        dir.path(),
        "good.conf",
        "[pull]\nsocket-dir = /run/haproxy\n[graphite]\nprefix_hostname = no\n",
    );
    let checked = run(haproxide(), &["check-config", "-f", good.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
    assert_eq!(
        text(&checked.stdout),
        format!("configuration is valid ({})\n", good.display())
    );
    assert!(text(&checked.stderr).contains("prefix_hostname: unknown key, ignored (did you mean `prefix-hostname`?)"));

    let missing = dir.path().join("missing.conf");
    let checked = run(haproxide(), &["check-config", "-f", missing.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(text(&checked.stderr).contains(&missing.display().to_string()));

    let broken = write(dir.path(), "broken.conf", "[pull]\nsocket-dir\n");
    let checked = run(haproxide(), &["check-config", "-f", broken.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(text(&checked.stderr).contains(&format!("{}:2: expected `key = value`", broken.display())));
}

#[test]
fn file_errors_are_said_once_with_the_line_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "plain.conf", "[pull]\n");
    let latin1 = dir.path().join("latin1.conf");
    std::fs::write(&latin1, b"[pull]\nsocket-dir = /run/caf\xe9\n").unwrap();
    let missing = dir.path().join("missing.conf");
    let cases = [
        (
            vec!["-f", missing.to_str().unwrap()],
            format!("{}: No such file or directory", missing.display()),
        ),
        (
            vec!["-f", dir.path().to_str().unwrap()],
            format!("{}: Is a directory", dir.path().display()),
        ),
        (
            vec!["-f", file.to_str().unwrap(), "-d", file.to_str().unwrap()],
            format!("{}: Not a directory", file.display()),
        ),
        (
            vec!["-f", latin1.to_str().unwrap()],
            format!("{}:2: not UTF-8 text", latin1.display()),
        ),
    ];
    for (args, message) in cases {
        let checked = run(haproxide(), &[&["check-config"], &args[..]].concat());
        assert_eq!(checked.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&checked.stderr), format!("haproxide: {message}\n"), "{args:?}");
    }
}

#[test]
fn help_says_what_each_program_reads_and_how_it_stops() {
    use haproxide::config::Program;
    for (name, program) in [
        ("pull", Program::Pull),
        ("process", Program::Process),
        ("agent", Program::Agent),
        ("reload", Program::Reload),
        ("backends", Program::Backends),
    ] {
        let sections: Vec<String> = program
            .sections()
            .iter()
            .map(|section| {
                if section.is_family() {
                    format!("every [{}NAME]", section.name)
                } else {
                    format!("[{}]", section.name)
                }
            })
            .collect();
        let (last, rest) = sections.split_last().unwrap();
        let reads = format!("Reads the sections {} and {last}.", rest.join(", "));
        let help = text(&run(haproxide(), &[name, "--help"]).stdout);
        assert!(help.contains(&reads), "{name} --help lacks {reads:?}:\n{help}");
        assert!(help.contains("SIGTERM, SIGHUP or SIGINT"), "{help}");
        assert!(
            help.contains("[default: /etc/haproxystats.conf, ignored when missing]"),
            "{help}"
        );
    }
    let once = |name: &str| {
        let help = text(&run(haproxide(), &[name, "--help"]).stdout);
        help.lines().find(|line| line.contains("--once")).unwrap().to_owned()
    };
    assert!(once("pull").ends_with("Run one round and exit: 0 when every socket answered, 1 otherwise"));
    assert!(once("process").ends_with("Process the rounds present and exit: 0 when all were delivered, 1 otherwise"));
    assert!(text(&run(haproxide(), &["query", "--help"]).stdout).contains("/run/haproxy/admin.sock"));
    for name in ["query", "pull", "agent", "reload", "backends"] {
        assert_eq!(
            text(&run(haproxide(), &[name, "--version"]).stdout),
            "haproxide 0.1.0\n",
            "{name}"
        );
    }
}
