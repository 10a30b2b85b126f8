//! Other programs' YAML configuration files, read into the same sections
//! as haproxide's INI: the file is flattened into dotted keys
//! (`socket.batch_size`) with their lines, and the program's own table says
//! which section and key each one is ([`super::Config::load_yaml`]). So a
//! YAML file gets the same checks, typed values and `file:line` errors.

use std::path::Path;

use marked_yaml::{LoaderOptions, Node};

use super::ini::SyntaxError;

/// One scalar of the file (a sequence of scalars is one value, its items
/// separated by spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlValue {
    /// The mapping keys down to it, joined with `.` (`kafka.rdkafka.acks`).
    pub key: String,
    /// Its text (`~`, `null` and nothing are the empty text).
    pub value: String,
    /// The 1-based line of its key.
    pub line: usize,
}

/// Reads `text` (the contents of `path`): a mapping at the top, mappings
/// within, and scalars or sequences of scalars as values.
pub fn flatten(path: &Path, text: &str) -> Result<Vec<YamlValue>, SyntaxError> {
    let error = |line: usize, message: String| SyntaxError {
        path: path.to_owned(),
        line,
        message,
    };
    if text.trim().is_empty() {
        return Err(error(1, "the file is empty: expected a YAML mapping of keys".into()));
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    let root = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|problem| {
        use marked_yaml::loader::LoadError;
        let line = match &problem {
            LoadError::TopLevelMustBeMapping(marker)
            | LoadError::TopLevelMustBeSequence(marker)
            | LoadError::UnexpectedAnchor(marker)
            | LoadError::MappingKeyMustBeScalar(marker)
            | LoadError::UnexpectedTag(marker)
            | LoadError::ScanError(marker, _) => marker.line(),
            LoadError::DuplicateKey(inner) => inner.key.span().start().map_or(1, |marker| marker.line()),
        };
        let message = match &problem {
            LoadError::ScanError(_, scan) => format!("not YAML: {}", scan.info()),
            LoadError::TopLevelMustBeMapping(_) => "expected a YAML mapping of keys at the top".into(),
            LoadError::DuplicateKey(inner) => format!("the key {:?} is given twice", inner.key.as_str()),
            other => format!("not supported here: {other}"),
        };
        error(line.max(1), message)
    })?;
    let mut values = Vec::new();
    walk(&root, "", 1, &mut values).map_err(|(line, message)| error(line, message))?;
    Ok(values)
}

fn line_of(node: &Node) -> Option<usize> {
    node.span().start().map(|marker| marker.line())
}

fn walk(node: &Node, key: &str, line: usize, values: &mut Vec<YamlValue>) -> Result<(), (usize, String)> {
    match node {
        Node::Mapping(mapping) => {
            for (name, value) in mapping.iter() {
                let line = name.span().start().map_or(line, |marker| marker.line());
                let key = if key.is_empty() {
                    name.as_str().to_owned()
                } else {
                    format!("{key}.{}", name.as_str())
                };
                walk(value, &key, line, values)?;
            }
        }
        Node::Scalar(scalar) => values.push(YamlValue {
            key: key.to_owned(),
            value: scalar_text(scalar.as_str()),
            line,
        }),
        Node::Sequence(items) => {
            let mut texts = Vec::new();
            for item in items.iter() {
                let Node::Scalar(scalar) = item else {
                    let at = line_of(item).unwrap_or(line);
                    return Err((at, format!("{key}: expected a list of plain values")));
                };
                texts.push(scalar_text(scalar.as_str()));
            }
            values.push(YamlValue {
                key: key.to_owned(),
                value: texts.join(" "),
                line,
            });
        }
    }
    Ok(())
}

/// YAML's nulls are the empty text.
fn scalar_text(text: &str) -> String {
    match text {
        "~" | "null" | "Null" | "NULL" => String::new(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn read(text: &str) -> Result<Vec<(String, String, usize)>, String> {
        flatten(Path::new("c.yaml"), text)
            .map(|values| {
                values
                    .into_iter()
                    .map(|value| (value.key, value.value, value.line))
                    .collect()
            })
            .map_err(|error| error.to_string())
    }

    #[test]
    fn nested_mappings_become_dotted_keys_with_their_lines() {
        let text = "workers: 2\nsocket:\n  path: /run/x.sock\n  mode: \"0622\"\nkafka:\n  rdkafka:\n    client.id: cp1\n    bootstrap.servers:\nbuckets: [5e-6, 1e-5]\n";
        assert_eq!(
            read(text).unwrap(),
            vec![
                ("workers".into(), "2".into(), 1),
                ("socket.path".into(), "/run/x.sock".into(), 3),
                ("socket.mode".into(), "0622".into(), 4),
                ("kafka.rdkafka.client.id".into(), "cp1".into(), 7),
                ("kafka.rdkafka.bootstrap.servers".into(), "".into(), 8),
                ("buckets".into(), "5e-6 1e-5".into(), 9),
            ]
        );
    }

    #[test]
    fn what_is_not_a_configuration_says_where() {
        assert_eq!(
            read("").unwrap_err(),
            "c.yaml:1: the file is empty: expected a YAML mapping of keys"
        );
        assert_eq!(
            read("- a\n- b\n").unwrap_err(),
            "c.yaml:1: expected a YAML mapping of keys at the top"
        );
        assert_eq!(
            read("a: 1\na: 2\n").unwrap_err(),
            "c.yaml:2: the key \"a\" is given twice"
        );
        assert!(
            read("a: [1\nb: 2\n").unwrap_err().starts_with("c.yaml:"),
            "{:?}",
            read("a: [1\n")
        );
        assert_eq!(
            read("a:\n  - b: 1\n").unwrap_err(),
            "c.yaml:2: a: expected a list of plain values"
        );
    }
}
