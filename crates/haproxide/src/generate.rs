//! The files a package installs that are made from the declarations rather
//! than written by hand: man pages and shell completions from the command
//! lines' clap definitions, and the commented configuration file from the
//! sections' declarations ([`crate::config::docs::commented_file`]). So none
//! of them can drift from what the binary takes.

use std::path::Path;

use anyhow::Context;
use clap::Command;
use clap_complete::Shell;

/// Writes `NAME.1` for `command` (called NAME) and, for each subcommand,
/// `NAME-SUB.1`, down the tree, into `dir`.
pub fn man_pages(command: Command, dir: &Path) -> anyhow::Result<()> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let name = command.get_name().to_owned();
    write_pages(command, &name, dir)
}

fn write_pages(command: Command, page: &str, dir: &Path) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub.clone(), &format!("{page}-{}", sub.get_name()), dir)?;
    }
    let path = dir.join(format!("{page}.1"));
    let mut file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    clap_mangen::Man::new(command.display_name(page.to_owned()))
        .render(&mut file)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `command`'s completions for bash, zsh and fish into `dir`, each
/// under the name its shell looks for (`haproxide`, `_haproxide`,
/// `haproxide.fish`).
pub fn completions(mut command: Command, dir: &Path) -> anyhow::Result<()> {
    let name = command.get_name().to_owned();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut command, &name, dir)
            .with_context(|| format!("cannot write the {shell} completions into {}", dir.display()))?;
        if shell == Shell::Bash {
            // bash-completion finds a command's file by the command's name.
            std::fs::rename(&path, dir.join(&name)).with_context(|| format!("cannot rename {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_gets_a_page_named_after_its_path() {
        let command = Command::new("tool")
            .version("1.2")
            .subcommand(Command::new("pull").about("Pulls.").display_name("tool"))
            .subcommand(Command::new("check").subcommand(Command::new("spool").about("Spools.")))
            .subcommand(Command::new("secret").hide(true));
        let dir = tempfile::tempdir().unwrap();
        man_pages(command, dir.path()).unwrap();
        let mut pages: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        pages.sort();
        assert_eq!(pages, ["tool-check-spool.1", "tool-check.1", "tool-pull.1", "tool.1"]);
        let pull = std::fs::read_to_string(dir.path().join("tool-pull.1")).unwrap();
        assert!(
            pull.starts_with(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH tool-pull 1"),
            "{pull}"
        );
        assert!(pull.contains("tool\\-pull \\- Pulls."), "{pull}");
    }
}
