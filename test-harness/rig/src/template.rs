//! `${NAME}` substitution in Envoy config templates.
//!
//! Rules (the same for every template in `envoy-config/`):
//! - A placeholder is `${NAME}` with `NAME` made of `A-Z`, `0-9` and `_`. Other `$` text is left
//!   alone.
//! - A placeholder that is a whole quoted YAML scalar, `'${NAME}'` or `"${NAME}"`, is replaced,
//!   quotes included, by a YAML double-quoted scalar holding exactly the value (JSON string
//!   escaping, which YAML's double-quoted style accepts). So a JSON policy with quotes,
//!   apostrophes, backslashes or line breaks arrives in the plugin configuration byte for
//!   byte: write `value: '${ALLOWLIST_CONFIG}'` and pass any JSON text to `.var()`.
//! - Anywhere else the value is inserted verbatim (ports, paths).
//! - Comment lines (first non-blank character `#`) are copied as they are: a template may
//!   mention `${NAME}` in its comments.
//! - A placeholder with no value is an error naming every such variable: a template never
//!   reaches Envoy half-rendered.

use std::collections::{BTreeMap, BTreeSet};

/// Renders `template`, or returns the sorted names of placeholders that have no value.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut missing = BTreeSet::new();
    for line in template.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            render_line(line, vars, &mut out, &mut missing);
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing.into_iter().collect())
    }
}

fn render_line(
    line: &str,
    vars: &BTreeMap<String, String>,
    out: &mut String,
    missing: &mut BTreeSet<String>,
) {
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            // Not a placeholder: copy the `$` and go on.
            out.push_str(&rest[..start + 1]);
            rest = &rest[start + 1..];
            continue;
        }
        let name = &after[..name_len];
        let end = start + 2 + name_len + 1;
        let before = &rest[..start];
        let quote = before.chars().last().filter(|q| *q == '\'' || *q == '"');
        let quoted = quote.is_some_and(|q| rest[end..].starts_with(q));
        match vars.get(name) {
            Some(value) if quoted => {
                out.push_str(&before[..before.len() - 1]);
                out.push_str(&yaml_double_quoted(value));
                rest = &rest[end + 1..];
            }
            Some(value) => {
                out.push_str(before);
                out.push_str(value);
                rest = &rest[end..];
            }
            None => {
                missing.insert(name.to_string());
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    out.push_str(rest);
}

/// `value` as a YAML double-quoted scalar (a JSON string literal is one).
fn yaml_double_quoted(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bare_placeholders_are_inserted_verbatim() {
        let out = render(
            "port: ${PORT}\npath: ${DIR}/x.wasm",
            &vars(&[("PORT", "1234"), ("DIR", "/tmp/a")]),
        );
        assert_eq!(out.as_deref(), Ok("port: 1234\npath: /tmp/a/x.wasm"));
    }

    #[test]
    fn quoted_placeholders_become_exact_double_quoted_scalars() {
        let json = "{\"a\": \"it's\\n\\\"q\\\"\",\n \"b\": [1]}";
        let out = render("value: '${P}'\nother: \"${P}\"", &vars(&[("P", json)])).unwrap();
        let expected = serde_json::Value::String(json.to_string()).to_string();
        assert_eq!(out, format!("value: {expected}\nother: {expected}"));
    }

    #[test]
    fn unknown_placeholders_are_all_reported() {
        let out = render("${B} ${A} ${KNOWN} ${B}", &vars(&[("KNOWN", "x")]));
        assert_eq!(out, Err(vec!["A".to_string(), "B".to_string()]));
    }

    #[test]
    fn comment_lines_are_left_alone() {
        let input = "# uses ${UNSET} and ${P}\n  # ${P}\nkey: ${P} # ${P}\n";
        let out = render(input, &vars(&[("P", "v")]));
        assert_eq!(
            out.as_deref(),
            Ok("# uses ${UNSET} and ${P}\n  # ${P}\nkey: v # v\n")
        );
    }

    #[test]
    fn other_dollar_text_is_left_alone() {
        let input = "regex: '^/a$' cost: $5 ${lower} ${} $";
        assert_eq!(render(input, &BTreeMap::new()).as_deref(), Ok(input));
    }
}
