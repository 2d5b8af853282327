//! YAML that comes in from outside (pipeline jobs, components, environments, MLmodel files),
//! with its size and nesting bounded before the parser sees it. libyaml's parser slows down
//! with the square of the nesting depth (400 KB of `[[[…` took over a minute), and no file
//! Azure ML or MLflow writes comes near these bounds.

use serde::de::DeserializeOwned;

/// The largest YAML document read, in bytes.
pub const MAX_BYTES: usize = 4 << 20;
/// The deepest nesting read: flow collections (`[`, `{`) plus block levels (indentation and
/// compact `- - ` sequences) on the way to any value.
pub const MAX_DEPTH: usize = 64;

/// A YAML scalar as text (`3`, `true`, `north`); other values as compact YAML.
pub fn text(value: &serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value;
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_owned(),
    }
}

/// Parses `text` after checking its bounds; the error says which bound and where.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    check_bounds(text)?;
    serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))
}

/// Refuses a document over [`MAX_BYTES`] or nested deeper than [`MAX_DEPTH`], in one linear
/// pass. Brackets inside quoted scalars and comments are not counted.
pub fn check_bounds(text: &str) -> Result<(), String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the YAML is {} bytes; at most {} MiB is read",
            text.len(),
            MAX_BYTES >> 20
        ));
    }
    let too_deep = |line: usize| {
        Err(format!(
            "the YAML nests deeper than {MAX_DEPTH} levels (line {line})"
        ))
    };
    let mut flow = 0usize;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let mut rest = &line[indent..];
        let mut dashes = 0usize;
        while let Some(after) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
            dashes += 1;
            rest = after.trim_start_matches(' ');
        }
        // Block levels: every level indents by at least one column, plus compact sequences.
        if flow == 0 && indent + dashes > MAX_DEPTH * 4 {
            return too_deep(number);
        }
        if dashes > MAX_DEPTH {
            return too_deep(number);
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in rest.chars() {
            match (quote, c) {
                (Some('\''), '\'') | (Some('"'), '"') if previous != '\\' => quote = None,
                (Some(_), _) => {}
                (None, '#') if previous == ' ' || previous == '\t' => break,
                (None, '\'' | '"') if matches!(previous, ' ' | '[' | '{' | ',' | ':') => {
                    quote = Some(c);
                }
                (None, '[' | '{') => {
                    flow += 1;
                    if flow + dashes > MAX_DEPTH {
                        return too_deep(number);
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                (None, _) => {}
            }
            previous = c;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_large_documents_are_refused_quickly() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let started = std::time::Instant::now();
        let e = from_str::<serde_yaml_ng::Value>(&deep).unwrap_err();
        assert!(e.contains("deeper than 64 levels (line 1)"), "{e}");
        assert!(started.elapsed().as_secs_f64() < 1.0);
        let compact = format!("{}x\n", "- ".repeat(100));
        assert!(check_bounds(&compact).unwrap_err().contains("deeper"));
        let mut indented = String::new();
        for level in 0..300 {
            indented.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        assert!(check_bounds(&indented).unwrap_err().contains("line 258"));
        let big = "a: b\n".repeat(1 << 20);
        assert!(check_bounds(&big).unwrap_err().contains("at most 4 MiB"));
    }

    #[test]
    fn ordinary_documents_pass_with_brackets_in_strings() {
        let text = "command: >-\n  python x.py $[[--n ${{inputs.n}}]]\nlist: [a, {b: [c]}]\n\
                    quoted: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n\
                    # a comment [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n";
        let value: serde_yaml_ng::Value = from_str(text).unwrap();
        assert_eq!(value["list"][1]["b"][0], "c");
        let nested = format!("{}{}", "[".repeat(60), "]".repeat(60));
        assert!(from_str::<serde_yaml_ng::Value>(&nested).is_ok());
    }
}
