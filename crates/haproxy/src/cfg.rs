//! Reading HAProxy's own configuration files, as far as the companion tools
//! need: which files `-f` loads (a directory means its `*.cfg` files in name
//! order, as HAProxy reads them) and the `global` section's
//! `server-state-file`, where a reload saves the servers' runtime state.
//!
//! This is no HAProxy configuration parser: `haproxy -c` is the judge of a
//! file. Lines are split into words the way HAProxy does for the keywords
//! read here (`#` starts a comment, `"…"` and `'…'` quote, `\` escapes).

use std::io;
use std::path::{Path, PathBuf};

/// The files HAProxy reads for these `-f` arguments: files as given,
/// directories as their `*.cfg` files sorted by name.
pub fn config_files(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|file| file.extension().is_some_and(|ext| ext == "cfg") && file.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Where a keyword was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

/// Keywords that start a section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "program",
    "http-errors",
    "ring",
    "cache",
    "mailers",
    "log-forward",
    "crt-store",
    "traces",
];

/// The last `keyword` line of the `global` sections of `files`.
pub fn global_setting(files: &[PathBuf], keyword: &str) -> io::Result<Option<Setting>> {
    let mut found = None;
    for file in files {
        let text = std::fs::read_to_string(file)?;
        let mut in_global = false;
        for (index, line) in text.lines().enumerate() {
            let words = words(line);
            let Some(first) = words.first() else { continue };
            if SECTIONS.contains(&first.as_str()) {
                in_global = first == "global";
                continue;
            }
            if in_global && first == keyword {
                found = Some(Setting {
                    args: words[1..].to_vec(),
                    file: file.clone(),
                    line: index + 1,
                });
            }
        }
    }
    Ok(found)
}

/// The global `server-state-file` of `files`, made absolute with
/// `server-state-base` as HAProxy does (a relative name without a base is
/// relative to the directory HAProxy runs in, which is returned as found).
pub fn server_state_file(files: &[PathBuf]) -> io::Result<Option<PathBuf>> {
    let Some(setting) = global_setting(files, "server-state-file")? else {
        return Ok(None);
    };
    let Some(name) = setting.args.first() else {
        return Ok(None);
    };
    let name = Path::new(name);
    if name.is_absolute() {
        return Ok(Some(name.to_owned()));
    }
    let base = global_setting(files, "server-state-base")?.and_then(|base| base.args.into_iter().next());
    Ok(Some(match base {
        Some(base) => Path::new(&base).join(name),
        None => name.to_owned(),
    }))
}

/// A line's words: `#` outside quotes ends it, quotes group, `\` escapes.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(char) = chars.next() {
        match (char, quote) {
            ('\\', _) => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (c, Some(open)) if c == open => quote = None,
            (c, Some(_)) => word.push(c),
            ('"' | '\'', None) => {
                quote = Some(char);
                in_word = true;
            }
            ('#', None) => break,
            (c, None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (c, None) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_as_haproxy_does() {
        assert_eq!(words("  server-state-file /x/y # note"), ["server-state-file", "/x/y"]);
        assert_eq!(
            words(r#"server-state-file "/a b/s" x\ y"#),
            ["server-state-file", "/a b/s", "x y"]
        );
        assert_eq!(words("log 'x#y'"), ["log", "x#y"]);
        assert_eq!(words("   # only a comment"), Vec::<String>::new());
    }

    #[test]
    fn finds_the_state_file_in_global_only() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("haproxy.cfg");
        std::fs::write(
            &main,
            "global\n    server-state-base /var/state\n    server-state-file first\n\
             backend be\n    server-state-file ignored\n",
        )
        .unwrap();
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        std::fs::write(conf_d.join("20-later.cfg"), "global\n  server-state-file last # wins\n").unwrap();
        std::fs::write(conf_d.join("10-early.cfg"), "defaults\n  server-state-file nope\n").unwrap();
        std::fs::write(conf_d.join("notes.txt"), "global\n  server-state-file never\n").unwrap();
        let files = config_files(&[main.clone(), conf_d.clone()]).unwrap();
        assert_eq!(
            files,
            [main.clone(), conf_d.join("10-early.cfg"), conf_d.join("20-later.cfg")]
        );
        let setting = global_setting(&files, "server-state-file").unwrap().unwrap();
        assert_eq!((setting.args, setting.line), (vec!["last".to_owned()], 2));
        assert_eq!(
            server_state_file(&files).unwrap(),
            Some(PathBuf::from("/var/state/last"))
        );
        assert_eq!(server_state_file(&[conf_d.join("10-early.cfg")]).unwrap(), None);
    }
}
