//! The README's option tables and the packaged configuration file, made
//! from the sections' declarations, so the docs cannot drift from what the
//! code reads. A test checks that README.md holds, between
//! `<!-- options: NAME -->` and `<!-- end options -->`, exactly the table
//! of each section; when it fails it prints the block.

use std::fmt::Write as _;

use super::declare::{DefaultValue, Effect, Section};

/// The markdown table of `section`'s keys.
pub fn table(section: &Section) -> String {
    let mut out = String::from("| option | value | default | meaning |\n|---|---|---|---|\n");
    if let Some(entries) = &section.entries {
        let _ = writeln!(out, "| *any name* | | | {} |", entries.doc);
    }
    for key in section.keys {
        let default = match key.default() {
            DefaultValue::Builtin("") | DefaultValue::Fallback("") => "empty".to_owned(),
            DefaultValue::Builtin(value) | DefaultValue::Fallback(value) => format!("`{value}`"),
            DefaultValue::Unset(meaning) => meaning.to_owned(),
        };
        let meaning = match key.effect() {
            Effect::Active => key.doc().to_owned(),
            Effect::Ignored(why) => format!("{}; accepted and checked, but it has no effect: {why}", key.doc()),
        };
        let _ = writeln!(out, "| `{}` | {} | {default} | {meaning} |", key.name(), key.kind());
    }
    out
}

/// The README block of `section`: markers around its table.
pub fn readme_block(section: &Section) -> String {
    format!(
        "<!-- options: {} -->\n{}<!-- end options -->\n",
        section.name,
        table(section)
    )
}

/// How wide the comments of [`commented_file`] are.
const COMMENT_WIDTH: usize = 78;

/// A configuration file of `sections` with every key commented out at its
/// default, under its meaning: what the package installs, for the operator
/// to uncomment what changes.
pub fn commented_file(intro: &str, sections: &[&Section]) -> String {
    let mut out = String::new();
    comment(&mut out, intro);
    for section in sections {
        let name = if section.is_family() {
            format!("{}NAME", section.name)
        } else {
            section.name.to_owned()
        };
        out.push('\n');
        comment(&mut out, &format!("[{name}]: {}.", section.doc));
        let _ = writeln!(out, "#[{name}]");
        if let Some(entries) = &section.entries {
            comment(&mut out, &format!("Any name: {}.", entries.doc));
        }
        for key in section.keys {
            let (value, meaning) = match key.default() {
                DefaultValue::Builtin(value) | DefaultValue::Fallback(value) => (value, key.doc().to_owned()),
                DefaultValue::Unset(unset) => ("", format!("{} (unset: {unset})", key.doc())),
            };
            let meaning = match key.effect() {
                Effect::Active => meaning,
                Effect::Ignored(why) => format!("{meaning}; accepted, but it has no effect: {why}"),
            };
            comment(&mut out, &format!("{} ({}).", meaning, key.kind()));
            let _ = writeln!(out, "{}", format!("#{} = {value}", key.name()).trim_end());
        }
    }
    out
}

/// `text` as `# ` lines of at most [`COMMENT_WIDTH`] characters, broken
/// between words.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.chars().count() + 1 + word.chars().count() > COMMENT_WIDTH {
            let _ = writeln!(out, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SECTIONS;

    #[test]
    fn the_commented_file_shows_every_key_at_its_default_under_its_meaning() {
        let text = commented_file(
            "haproxide's configuration.",
            &[&crate::stats::collect::SECTION, &crate::stats::cluster::SECTIONS],
        );
        assert!(text.starts_with("# haproxide's configuration.\n\n# [pull]: "), "{text}");
        assert!(
            text.contains(
                "# seconds from the start of a round to the start of the next (seconds > 0).\n#pull-interval = 10\n"
            ),
            "{text}"
        );
        assert!(text.contains("(unset: none) (path).\n#socket-dir =\n"), "{text}");
        assert!(text.contains("#[cluster:NAME]\n"), "{text}");
        for line in text.lines() {
            assert!(line.is_empty() || line.starts_with('#'), "{line}");
            assert!(
                line.chars().count() <= COMMENT_WIDTH || !line[2..].contains(' '),
                "{line}"
            );
        }
    }

    #[test]
    fn the_readme_tables_are_the_declared_ones() {
        let readme = include_str!("../../../../README.md");
        let stale: Vec<String> = SECTIONS
            .iter()
            .map(|section| readme_block(section))
            .filter(|block| !readme.contains(block.as_str()))
            .collect();
        assert!(
            stale.is_empty(),
            "README.md lacks these blocks (or has other text in their place):\n\n{}",
            stale.join("\n")
        );
    }

    #[test]
    fn keys_without_effect_say_so() {
        let pull = table(&crate::stats::collect::SECTION);
        assert!(pull.contains("| `buffer-limit` | integer ≥ 1 | `6291456` |"), "{pull}");
        assert!(pull.contains("accepted and checked, but it has no effect"), "{pull}");
    }
}
