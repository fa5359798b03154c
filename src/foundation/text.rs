//! Text from remote systems (MAAS status messages and events, command output, error bodies)
//! made safe for a terminal: control characters are removed so a crafted answer cannot move
//! the cursor, recolour the screen or forge a line of homelab's own output. Newlines and tabs
//! stay; a carriage return that ends a line is dropped with it.

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `s` without control characters other than newline and tab.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().filter(|c| !unsafe_char(*c)).collect())
}

/// One line of remote text: control characters removed and every line break folded into a
/// space, for places where one value must stay one line (a status message, a table cell).
pub fn one_line(s: &str) -> String {
    let t: String = printable(s).chars().map(|c| if c == '\n' || c == '\t' { ' ' } else { c }).collect();
    t.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_go_newlines_stay() {
        assert!(matches!(printable("plain text\n"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[2Jb\r\nc\u{9b}d\x07"), "a[2Jb\ncd");
        assert_eq!(one_line("Deploying\n10.0.0.9 evil\x1b]0;x\x07"), "Deploying 10.0.0.9 evil]0;x");
    }
}
