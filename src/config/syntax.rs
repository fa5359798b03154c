//! A YAML syntax error in words a person acts on: what is wrong, where it starts (the
//! parser often notices a line later — an unclosed `{` is found at the next key), and the
//! fix for that mistake rather than a generic one. The parser's own words follow in
//! parentheses, so the message can still be searched for. Pure: text in, diagnostic parts out.

use super::tree::Pos;

/// What to print for a syntax error the parser reported as `message` at `at`: the message,
/// the position to point at, and the hint.
pub fn explain(text: &str, message: &str, at: Pos) -> (String, Pos, String) {
    // The parser appends its position; ours is printed beside the snippet.
    let words = message.split(" at line ").next().unwrap_or(message);
    let raw = format!("(the parser: {words})");
    let line_text = text.lines().nth(at.line.saturating_sub(1) as usize).unwrap_or_default();
    // An unclosed `{` or `[` swallows the lines after it: the parser trips over one of them.
    let flow = ["did not find expected ',' or", "is only valid inside a block", "while parsing a flow"];
    if flow.iter().any(|f| message.contains(f))
        && let Some((open, c)) = unclosed(text, at)
    {
        let close = if c == '{' { '}' } else { ']' };
        return (
            format!("the `{c}` opened at line {}, column {} is never closed {raw}", open.line, open.column),
            open,
            format!(
                "add the `{close}` at the end of that line (items inside are separated by `,`), or write it in block style, one `key: value` per line"
            ),
        );
    }
    if message.contains("tabs disallowed") || message.contains("found a tab character") {
        return (
            format!("a tab in the indentation of line {} {raw}", at.line),
            Pos { line: at.line, column: 1 },
            "YAML indents with spaces only: replace the tab with spaces, aligned with the keys beside it".into(),
        );
    }
    if message.contains("mapping values are not allowed") {
        let prev = previous_key(text, at.line);
        let hint = match prev {
            Some((key, col)) => format!(
                "if it belongs beside `{key}:`, start it at column {col} like `{key}:`; if it is part of a value, quote that value (a value may not contain `: ` unquoted)"
            ),
            None => "quote a value that contains `: `, or indent the key like its siblings".into(),
        };
        return (format!("a `key:` where a value was expected, in `{}` {raw}", line_text.trim()), at, hint);
    }
    if message.contains("did not find expected key") || message.contains("did not find expected '-'") {
        return (
            format!("the indentation of `{}` matches no key above it {raw}", line_text.trim()),
            at,
            "indent it exactly like its siblings (spaces only): a key one space off starts nothing".into(),
        );
    }
    if message.contains("found character that cannot start any token") {
        return (
            format!("a value starts with a character YAML reserves (`@`, `` ` ``, `%`, …) {raw}"),
            at,
            "put the value in quotes: `key: \"@value\"`".into(),
        );
    }
    if message.contains("found unknown escape character") {
        return (
            format!("a backslash in a double-quoted value starts an escape YAML does not know {raw}"),
            at,
            "use single quotes for text with backslashes ('C:\\path'), or double the backslash".into(),
        );
    }
    if message.contains("did not find expected node content") || message.contains("found unexpected end of stream") {
        return (
            format!("the file ends, or a line is cut, where a value was expected {raw}"),
            at,
            "finish the value (a closing quote or bracket may be missing), or remove the dangling `-` or `key:`".into(),
        );
    }
    (
        format!("invalid YAML: {message}"),
        at,
        "fix the YAML syntax; indentation uses spaces and `key: value` needs the space after the colon".into(),
    )
}

/// The last `{` or `[` before `at` that is not closed, outside quotes and comments.
fn unclosed(text: &str, at: Pos) -> Option<(Pos, char)> {
    let mut stack: Vec<(Pos, char)> = Vec::new();
    for (i, line) in text.lines().enumerate().take(at.line as usize) {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (j, ch) in line.chars().enumerate() {
            let pos = Pos { line: i as u32 + 1, column: j as u32 + 1 };
            if pos.line == at.line && pos.column >= at.column {
                break;
            }
            let before = std::mem::replace(&mut prev, ch);
            match (quote, ch) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(ch),
                (None, '#') if before.is_whitespace() => break,
                (None, '{' | '[') => stack.push((pos, ch)),
                (None, '}' | ']') => {
                    stack.pop();
                }
                _ => {}
            }
        }
    }
    stack.pop()
}

/// The nearest key above `line` (its name and column), skipping blank and comment lines.
fn previous_key(text: &str, line: u32) -> Option<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = (line as usize).checked_sub(2)?;
    loop {
        let l = lines.get(i)?;
        let t = l.trim_start();
        if !t.is_empty() && !t.starts_with('#') {
            let t = t.trim_start_matches("- ");
            if let Some((k, _)) = t.split_once(':') {
                let col = l.len() - l.trim_start().len() + 1;
                return Some((k.trim().to_owned(), col));
            }
        }
        i = i.checked_sub(1)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn an_unclosed_brace_is_pointed_at_where_it_opens() {
        let text = "kind: Cluster\nmetadata: {name: x\nmachines: []\n";
        let (m, p, h) = explain(text, "while parsing a flow mapping, did not find expected ',' or '}'", at(3, 9));
        assert_eq!(p, at(2, 11), "{m}");
        assert!(m.contains("never closed") && m.contains("the parser:"), "{m}");
        assert!(h.contains("add the `}`"), "{h}");
        // A closed brace earlier, and one inside quotes, do not count.
        let text = "a: {b: 1}\nc: \"{\"\nd: [1, 2\ne: 1\n";
        let (_, p, _) = explain(text, "did not find expected ',' or ']'", at(4, 2));
        assert_eq!(p, at(3, 4));
    }

    #[test]
    fn a_key_indented_too_deep_names_its_sibling() {
        let text = "metadata:\n  name: x\n   bad: 1\n";
        let (m, _, h) = explain(text, "mapping values are not allowed in this context", at(3, 7));
        assert!(m.contains("`bad: 1`"), "{m}");
        assert!(h.contains("column 3 like `name:`"), "{h}");
        let (m, p, h) = explain("a:\n\tb: 1\n", "tabs disallowed within this context (block indentation)", at(2, 2));
        assert!(m.contains("tab") && p == at(2, 1) && h.contains("spaces"), "{m} {h}");
    }
}
