//! Log output of the daemons: `tracing` lines on stderr, at the level the
//! configuration's `loglevel` names (Python logging names, as haproxystats).

use tracing::Level;

/// Maps a `loglevel` value to a tracing level (`critical`/`fatal` are errors).
pub fn level(name: &str) -> Level {
    match name.trim().to_ascii_lowercase().as_str() {
        "debug" | "notset" => Level::DEBUG,
        "warning" | "warn" => Level::WARN,
        "error" | "critical" | "fatal" => Level::ERROR,
        _ => Level::INFO,
    }
}

/// Starts logging to stderr at `level`.
pub fn init(level: Level) {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_names_map_to_tracing_levels() {
        assert_eq!(level("DEBUG"), Level::DEBUG);
        assert_eq!(level("info"), Level::INFO);
        assert_eq!(level("warn"), Level::WARN);
        assert_eq!(level("critical"), Level::ERROR);
    }
}
