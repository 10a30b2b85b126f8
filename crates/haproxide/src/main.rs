//! haproxide: one binary for HAProxy operators.
//!
//! This file only wires command lines to features. Called as
//! `haproxystats-pull` or `haproxystats-process` (symlinks), the binary accepts
//! haproxystats' own flags (`-f`, `-d`, `-p`, `-P`, `-v`) so existing unit files
//! and scripts keep working.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use haproxide::config::Program;
use haproxide::config::flags::SectionFlags;
use haproxide::{agent, backends, checks, config, logs, query, reload, stats, top};

/// One binary for HAProxy operators.
#[derive(Debug, Parser)]
#[command(name = "haproxide", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a runtime-API command to one or many sockets and print the replies.
    #[command(display_name = "haproxide")]
    Query(query::QueryArgs),
    /// Check a configuration file; exit 0 when valid, 1 otherwise.
    #[command(display_name = "haproxide")]
    CheckConfig(ConfigFiles),
    /// Collect `show info`/`show stat` into the spool (haproxystats-pull).
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT] and [pull].\n\
                      SIGTERM, SIGHUP or SIGINT cancels a round in flight and exits 0, with or without --once.",
        mut_arg("once", |arg| arg.help("Run one round and exit: 0 when every socket answered, 1 otherwise"))
    )]
    Pull(StatsArgs),
    /// Aggregate spooled statistics and ship them (haproxystats-process).
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT], [paths], [process], [graphite], [local-store], [kafka], \
                      [kafka-rounds], [prometheus], [frontend-groups], [backend-groups], [server-groups] and \
                      every [cluster:NAME].\n\
                      SIGTERM, SIGHUP or SIGINT starts no new round, gives the sinks shutdown-timeout \
                      to deliver what they hold, and exits 0, with or without --once.",
        mut_arg("once", |arg| arg.help("Process the rounds present and exit: 0 when all were delivered, 1 otherwise"))
    )]
    Process(StatsArgs),
    /// Answer HAProxy's agent checks with a weight and state from a service's health.
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT], [agent] and [agent-urls].\n\
                      SIGTERM, SIGHUP or SIGINT closes the port, lets replies under way finish, and exits 0."
    )]
    Agent(AgentArgs),
    /// Validate HAProxy's configuration, reload HAProxy hitlessly, and verify that the new configuration serves.
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT] and [reload]. Each key of [reload] is also a flag, which wins over the files.\n\
                      Exit status: 0 reloaded (or valid, with --check); 1 nothing was changed (invalid configuration, \
                      HAProxy not reachable); 2 the reload failed and the previous configuration is still serving.\n\
                      SIGTERM, SIGHUP or SIGINT stops waiting and exits 1; a reload already sent to HAProxy is not undone."
    )]
    Reload(ReloadArgs),
    /// Keep HAProxy backends' servers in line with Consul, AWS Auto Scaling or a file, at run time or through a template and a reload.
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT], [backends], every [backend:NAME], [template] and [reload].\n\
                      SIGTERM, SIGHUP or SIGINT stops it at once, between changes (a render being reloaded is not undone); HAProxy keeps its servers."
    )]
    Backends(BackendsArgs),
    /// Send HAProxy's request logs from a unix datagram socket to Kafka as JSON (haproxykafka).
    #[command(
        display_name = "haproxide",
        after_help = "Reads the sections [DEFAULT], [logs], [logs-socket], [logs-parser], [logs-kafka], [logs-rdkafka], \
                      [logs-monitoring], [logs-transform] and [logs-fields]; a FILE ending in .yaml or .yml is \
                      HAProxyKafka's config.yaml.\n\
                      SIGTERM, SIGHUP or SIGINT stops reading, drains the queues, gives Kafka flush-timeout, and exits 0."
    )]
    Logs(ConfigFiles),
    /// Nagios/Icinga checks: one status line with perfdata; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    #[command(display_name = "haproxide", subcommand)]
    Check(CheckCommand),
    /// A live terminal view of every HAProxy socket, with server actions (hatop's successor).
    #[command(
        display_name = "haproxide",
        after_help = "Keys: 1 2 3 frontends/backends/servers, t tree, p per socket, s/S sort, i invert, / filter, \
                      Enter details, D M R drain/maint/ready, W weight (on every socket, after y), ? help, q quit.\n\
                      SIGTERM, SIGHUP or SIGINT restores the terminal and exits 0."
    )]
    Top(top::TopArgs),
    /// Write the files a package installs that are made from the declarations.
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Generated {
    /// A man page per program and subcommand (`haproxide-pull.1`, `ep2.1`, …).
    Man,
    /// bash, zsh and fish completions of `haproxide`.
    Completions,
    /// `haproxide.conf`: every section the daemons read, each key commented out at its default.
    Config,
}

/// Flags of `generate`.
#[derive(Debug, Args)]
struct GenerateArgs {
    /// What to write.
    what: Generated,
    /// The directory to write into (created when missing).
    dir: PathBuf,
}

/// The checks.
#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Rounds waiting in process's src-dir, and the oldest one's age (haproxystats' queue check).
    #[command(display_name = "haproxide")]
    Spool(SpoolCheckArgs),
    /// Ask the agent as HAProxy does; CRITICAL on down, fail, stopped or maint, WARNING on drain or 0%.
    #[command(display_name = "haproxide")]
    Agent(AgentCheckArgs),
    /// Ask logs' /healthz and /metrics: OK while every stage moves, WARNING while Kafka takes nothing or messages wait in the disk buffer, CRITICAL naming the stalled stages.
    #[command(display_name = "haproxide")]
    Logs(LogsCheckArgs),
    /// How long ago pull delivered its last round into the spool.
    #[command(display_name = "haproxide")]
    Pull(FreshnessCheckArgs),
    /// How long ago process had its last round confirmed by every sink.
    #[command(display_name = "haproxide")]
    Process(FreshnessCheckArgs),
}

/// Flags of `check pull` and `check process`.
#[derive(Debug, Args)]
struct FreshnessCheckArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// WARNING when the last round is older than this (seconds).
    #[arg(short, long, default_value_t = 60.0)]
    warning: f64,
    /// CRITICAL when the last round is older than this (seconds).
    #[arg(short, long, default_value_t = 300.0)]
    critical: f64,
}

/// Flags of `check logs`.
#[derive(Debug, Args)]
struct LogsCheckArgs {
    /// logs' configuration: INI, or HAProxyKafka's config.yaml.
    #[command(flatten)]
    files: ConfigFiles,
    /// Where /healthz is served, instead of the configuration's `[logs-monitoring] server-bind`.
    #[arg(long, value_name = "ADDRESS:PORT")]
    address: Option<std::net::SocketAddr>,
    /// Seconds to connect, and as many for the answer.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

/// Flags of `check agent`.
#[derive(Debug, Args)]
struct AgentCheckArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// The agent's address, instead of the configuration's `[agent] bind` (loopback when it binds every address).
    #[arg(long, value_name = "ADDRESS")]
    host: Option<std::net::IpAddr>,
    /// The agent's port, instead of the configuration's `[agent] port`.
    #[arg(long)]
    port: Option<u16>,
    /// Seconds to connect, and as many for the reply.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

/// Flags of `check spool`.
#[derive(Debug, Args)]
struct SpoolCheckArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// The spool to check, instead of the configuration's `[process] src-dir`.
    #[arg(long, value_name = "DIR")]
    src_dir: Option<PathBuf>,
    /// WARNING above this many rounds waiting.
    #[arg(short, long, default_value_t = 60.0)]
    warning: f64,
    /// CRITICAL above this many rounds waiting.
    #[arg(short, long, default_value_t = 120.0)]
    critical: f64,
    /// WARNING when the oldest round waiting is older than this (seconds).
    #[arg(long, default_value_t = 300.0)]
    age_warning: f64,
    /// CRITICAL when the oldest round waiting is older than this (seconds).
    #[arg(long, default_value_t = 900.0)]
    age_critical: f64,
}

/// The command line of `haproxykafka` (Wikimedia's name).
#[derive(Debug, Parser)]
#[command(about = "haproxide, called as Wikimedia's `haproxykafka`: reads its config.yaml")]
struct HaproxykafkaCli {
    /// HAProxyKafka's configuration file.
    #[arg(short = 'c', value_name = "FILE", default_value = logs::haproxykafka::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
}

/// The command line of `datawave-haproxy-agent` (Datawave's name).
#[derive(Debug, Parser)]
#[command(about = "haproxide, called as Datawave's `datawave-haproxy-agent`: reads its config.yml")]
struct DatawaveCli {
    /// Datawave's agent configuration file (YAML).
    #[arg(short = 'c', long = "config", value_name = "PATH", default_value = agent::datawave::DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    /// Ignore the configuration file: the defaults and these flags only.
    #[arg(short = 's', long = "skip-config")]
    skip_config: bool,
    /// The address to listen on where the file sets no `bind` (the file wins, as with Datawave's agent).
    #[arg(short = 'b', long = "bind", value_name = "ADDR", default_value = agent::datawave::DEFAULT_BIND)]
    bind: String,
    /// The port to listen on where the file sets no `port` (the file wins, as with Datawave's agent).
    #[arg(short = 'p', long = "port", value_name = "N", default_value_t = agent::datawave::DEFAULT_PORT)]
    port: u16,
    /// How much to log.
    #[arg(short = 'l', long = "loglevel", value_parser = agent::datawave::LOG_LEVELS, default_value = "info")]
    loglevel: String,
}

/// Flags of `backends` (and of `ep2`).
#[derive(Debug, Args)]
struct BackendsArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// Converge every backend once (drains included) and exit: 0 when nothing is left to do, 1 otherwise.
    #[arg(long, conflicts_with = "dry_run")]
    once: bool,
    /// Print the runtime-API commands the first pass would send, one `SOCKET: COMMAND` per line, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// How `backends` runs, by its flags.
fn backends_run(once: bool, dry_run: bool) -> backends::Run {
    match (once, dry_run) {
        (_, true) => backends::Run::DryRun,
        (true, false) => backends::Run::Once,
        (false, false) => backends::Run::Daemon,
    }
}

/// The command line of `ep2` (ElasticPyProxy's name).
#[derive(Debug, Parser)]
#[command(about = "haproxide, called as ElasticPyProxy's `ep2`: reads its configuration file")]
struct Ep2Cli {
    /// ElasticPyProxy's configuration file.
    #[arg(short = 'f', value_name = "FILE", default_value = backends::ep2::DEFAULT_CONFIG_FILE)]
    file: PathBuf,
    /// Converge once and exit.
    #[arg(long, conflicts_with = "dry_run")]
    once: bool,
    /// Print the commands of the first pass, change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Flags of `reload`.
#[derive(Debug, Args)]
struct ReloadArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// Only validate the configuration (`haproxy -c`): exit 0 when valid, 1 otherwise.
    #[arg(long)]
    check: bool,
    /// How steps are reported: a line of text each, or a JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    format: reload::Format,
    #[command(flatten)]
    keys: SectionFlags<reload::Flags>,
}

/// Flags of `agent`.
#[derive(Debug, Args)]
struct AgentArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// Print the reply the agent would give now (one line per health source) and exit.
    #[arg(long)]
    check: bool,
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
struct ConfigFiles {
    /// Configuration file [default: /etc/haproxystats.conf, ignored when missing].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Directory of further `*.conf` files, read in name order after FILE.
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Flags shared by `pull` and `process`, the same as haproxystats'.
#[derive(Debug, Args)]
struct StatsArgs {
    #[command(flatten)]
    files: ConfigFiles,
    /// Print the built-in defaults and exit.
    #[arg(short = 'p', long = "print", conflicts_with = "print_conf")]
    print: bool,
    /// Print the effective configuration and exit.
    #[arg(short = 'P', long = "print-conf")]
    print_conf: bool,
    /// Run once and exit (the text is each program's own).
    #[arg(long, conflicts_with_all = ["print", "print_conf"])]
    once: bool,
}

/// The command line of `haproxystats-pull` / `haproxystats-process`.
#[derive(Debug, Parser)]
#[command(
    disable_version_flag = true,
    about = "haproxide, called by a haproxystats program name; takes haproxystats' flags"
)]
struct CompatCli {
    #[command(flatten)]
    args: StatsArgs,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let invoked = argv
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let outcome = match invoked.as_str() {
        "haproxystats-pull" => compat(Stats::Pull, argv),
        "haproxystats-process" => compat(Stats::Process, argv),
        "ep2" => ep2(argv),
        "datawave-haproxy-agent" => datawave(argv),
        "haproxykafka" => {
            let cli = HaproxykafkaCli::parse_from(argv);
            logs_program(logs::haproxykafka::load(&cli.config).map_err(anyhow::Error::from))
        }
        _ => match Cli::try_parse_from(&argv) {
            Ok(cli) => run(cli),
            // A check's usage error is UNKNOWN (3), as the plugin conventions say.
            Err(error) if argv.get(1).is_some_and(|word| word == "check") && error.use_stderr() => {
                let _ = error.print();
                return ExitCode::from(checks::State::Unknown.exit_code());
            }
            Err(error) => error.exit(),
        },
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("{invoked}: {error:#}");
        ExitCode::FAILURE
    })
}

fn compat(stats: Stats, argv: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let cli = CompatCli::parse_from(argv);
    if cli.version {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    stats_program(stats, &cli.args)
}

fn ep2(argv: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let cli = Ep2Cli::parse_from(argv);
    let mut config = config::Config::load(Some(&cli.file), None)?;
    for section in [
        backends::ep2::HAPROXY.name,
        backends::ep2::CONSUL.name,
        backends::ep2::AWS.name,
    ] {
        config.forget_empty_values(section);
    }
    let config = config::check_loaded(config, Program::Ep2)?;
    backends::ep2_main(&config, backends_run(cli.once, cli.dry_run))
}

fn datawave(argv: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let cli = DatawaveCli::parse_from(argv);
    let flags = agent::datawave::Flags {
        config: (!cli.skip_config).then_some(cli.config.as_path()),
        bind: &cli.bind,
        port: cli.port,
        loglevel: &cli.loglevel,
    };
    let config = config::check_loaded(agent::datawave::configure(&flags)?, Program::Agent)?;
    agent::main(&config, false)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Query(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(query::run(args))
        }
        Command::CheckConfig(files) => config::check_config(files.file.as_deref(), files.dir.as_deref()),
        Command::Pull(args) => stats_program(Stats::Pull, &args),
        Command::Process(args) => stats_program(Stats::Process, &args),
        Command::Agent(args) => {
            let config = match args.files.file.as_deref() {
                Some(path) if config::is_yaml(path) => agent::datawave::load(path)?,
                _ => config::Config::load(args.files.file.as_deref(), args.files.dir.as_deref())?,
            };
            agent::main(&config::check_loaded(config, Program::Agent)?, args.check)
        }
        Command::Reload(args) => {
            let mut config = config::Config::load(args.files.file.as_deref(), args.files.dir.as_deref())?;
            config.apply_flags(&reload::SECTION, args.keys.given());
            let config = config::check_loaded(config, Program::Reload)?;
            reload::main(&config, args.check, args.format)
        }
        Command::Logs(files) => logs_program(match files.file.as_deref() {
            Some(path) if config::is_yaml(path) => logs::haproxykafka::load(path).map_err(anyhow::Error::from),
            _ => config::Config::load(files.file.as_deref(), files.dir.as_deref()).map_err(anyhow::Error::from),
        }),
        Command::Backends(args) => {
            let config =
                config::load_checked(args.files.file.as_deref(), args.files.dir.as_deref(), Program::Backends)?;
            backends::main(&config, backends_run(args.once, args.dry_run))
        }
        Command::Check(CheckCommand::Spool(args)) => {
            let thresholds = checks::spool::Thresholds {
                warning: args.warning,
                critical: args.critical,
                age_warning: args.age_warning,
                age_critical: args.age_critical,
            };
            let outcome =
                match checks::spool::src_dir(args.src_dir, args.files.file.as_deref(), args.files.dir.as_deref()) {
                    Ok(src_dir) => checks::spool::check(&src_dir, thresholds, std::time::SystemTime::now()),
                    Err(error) => checks::Outcome::unknown(checks::spool::NAME, format!("{error:#}")),
                };
            Ok(outcome.report())
        }
        Command::Check(CheckCommand::Agent(args)) => {
            let address = checks::agent::address(
                args.host,
                args.port,
                args.files.file.as_deref(),
                args.files.dir.as_deref(),
            );
            Ok(ask_check(checks::agent::NAME, address, args.timeout, checks::agent::check).report())
        }
        Command::Check(CheckCommand::Logs(args)) => {
            let address = checks::logs::address(args.address, args.files.file.as_deref(), args.files.dir.as_deref());
            Ok(ask_check(checks::logs::NAME, address, args.timeout, checks::logs::check).report())
        }
        Command::Check(CheckCommand::Pull(args)) => Ok(freshness(Program::Pull, &args).report()),
        Command::Check(CheckCommand::Process(args)) => Ok(freshness(Program::Process, &args).report()),
        Command::Generate(args) => generate(&args),
        Command::Top(args) => top::run(args),
    }
}

/// The introduction of the packaged `haproxide.conf`.
const PACKAGED_CONFIG_INTRO: &str = "haproxide's configuration. Each daemon's unit (haproxide-pull, \
    haproxide-process, haproxide-agent, haproxide-backends, haproxide-logs) runs \
    `haproxide DAEMON -f /etc/haproxide/haproxide.conf`, and each daemon reads only its own sections. \
    Every key is shown commented out at its default, under what it means: uncomment what you change, \
    then check the file with `haproxide check-config -f /etc/haproxide/haproxide.conf`. \
    ElasticPyProxy's [haproxy], [consul] and [aws] belong in ep2's own file, not here.";

fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    std::fs::create_dir_all(&args.dir)?;
    match args.what {
        Generated::Man => {
            haproxide::generate::man_pages(Cli::command(), &args.dir)?;
            for name in ["haproxystats-pull", "haproxystats-process"] {
                haproxide::generate::man_pages(CompatCli::command().name(name), &args.dir)?;
            }
            haproxide::generate::man_pages(Ep2Cli::command().name("ep2"), &args.dir)?;
            haproxide::generate::man_pages(HaproxykafkaCli::command().name("haproxykafka"), &args.dir)?;
            haproxide::generate::man_pages(DatawaveCli::command().name("datawave-haproxy-agent"), &args.dir)?;
        }
        Generated::Completions => haproxide::generate::completions(Cli::command(), &args.dir)?,
        Generated::Config => {
            let sections: Vec<_> = config::SECTIONS
                .iter()
                .copied()
                .filter(|section| section.name == config::DEFAULT_SECTION || !Program::Ep2.reads(section.name))
                .collect();
            let path = args.dir.join("haproxide.conf");
            std::fs::write(&path, config::docs::commented_file(PACKAGED_CONFIG_INTRO, &sections))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `check pull` / `check process`: the record beside the configured spool.
fn freshness(program: Program, args: &FreshnessCheckArgs) -> checks::Outcome {
    let (name, daemon) = match program {
        Program::Pull => ("PULL", "pull"),
        _ => ("PROCESS", "process"),
    };
    let record =
        config::load_checked(args.files.file.as_deref(), args.files.dir.as_deref(), program).and_then(|config| {
            Ok(match program {
                Program::Pull => stats::spool::last_round_file(&stats::collect::configured_dst_dir(&config)?),
                _ => stats::spool::last_delivered_file(&stats::pipeline::configured_src_dir(&config)?),
            })
        });
    match record {
        Ok(record) => checks::freshness::check(
            name,
            daemon,
            &record,
            args.warning,
            args.critical,
            std::time::SystemTime::now(),
        ),
        Err(error) => checks::Outcome::unknown(name, format!("{error:#}")),
    }
}

/// A check that asks a daemon at `address`, waiting `timeout` seconds;
/// UNKNOWN when the address or the timeout cannot be had.
fn ask_check(
    name: &'static str,
    address: anyhow::Result<std::net::SocketAddr>,
    timeout: f64,
    check: fn(std::net::SocketAddr, std::time::Duration) -> checks::Outcome,
) -> checks::Outcome {
    let timeout = std::time::Duration::try_from_secs_f64(timeout)
        .map_err(|_| anyhow::anyhow!("--timeout {timeout}: not a number of seconds"));
    match (address, timeout) {
        (Ok(address), Ok(timeout)) => check(address, timeout),
        (Err(error), _) | (_, Err(error)) => checks::Outcome::unknown(name, format!("{error:#}")),
    }
}

/// `logs`, from its loaded configuration (INI or HAProxyKafka's YAML).
fn logs_program(config: anyhow::Result<config::Config>) -> anyhow::Result<ExitCode> {
    let config = config::check_loaded(config?, Program::Logs)?;
    logs::main(&config)
}

/// The stats programs, which haproxystats' flags drive.
#[derive(Debug, Clone, Copy)]
enum Stats {
    Pull,
    Process,
}

/// `pull` / `process`: `-p` and `-P`, else the daemon (or one `--once` run).
fn stats_program(stats: Stats, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let program = match stats {
        Stats::Pull => Program::Pull,
        Stats::Process => Program::Process,
    };
    let (file, dir) = (args.files.file.as_deref(), args.files.dir.as_deref());
    if args.print {
        print!("{}", config::Config::print_defaults(program));
        return Ok(ExitCode::SUCCESS);
    }
    if args.print_conf {
        print!("{}", config::Config::load(file, dir)?.print_effective(program)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = config::load_checked(file, dir, program)?;
    match stats {
        Stats::Pull => stats::collect::main(&config, args.once),
        Stats::Process => stats::pipeline::main(&config, args.once),
    }
}
