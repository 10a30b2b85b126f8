//! The README's option tables, made from the sections' declarations, so the
//! docs cannot drift from what the code reads. A test checks that README.md
//! holds, between `<!-- options: NAME -->` and `<!-- end options -->`,
//! exactly the table of each section; when it fails it prints the block.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SECTIONS;

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
