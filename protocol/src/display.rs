//! Showing untrusted text to people: names another member chose, sentences a server wrote.
//!
//! Printed raw, such text drives a terminal (escape sequences set its title, clear or rewrite
//! the screen, a carriage return or a newline fakes a line) or reads as other text
//! (bidirectional overrides). [`Escaped`] shows it safely; the command line prints every line
//! through it, and both binaries format their log fields with it.

use std::fmt::{self, Write as _};

/// Whether `c` must not reach the terminal as itself: every control character (C0, the newline
/// and tab among them, DEL and C1), the bidirectional controls, with which a name reads as
/// another, and the line and paragraph separators, at which some terminals break lines.
pub fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' // embeddings, overrides, pop
                | '\u{2066}'..='\u{2069}' // isolates
                | '\u{200e}' // left-to-right mark
                | '\u{200f}' // right-to-left mark
                | '\u{061c}' // Arabic letter mark
                | '\u{2028}' // line separator
                | '\u{2029}' // paragraph separator
        )
}

/// Shows text safely: each character of [`must_escape`] as `\u{hex}` (the newline, carriage
/// return and tab as `\n`, `\r`, `\t`), everything else as itself. Escaping twice changes
/// nothing more: the escapes are plain ASCII.
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// Escapes what is written through it on its way to the inner writer.
struct EscapingWriter<W>(W);

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| must_escape(c)) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// `text`, escaped.
pub fn escaped(text: impl fmt::Display) -> String {
    Escaped(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidirectional_characters_are_shown_escaped() {
        for (raw, shown) in [
            ("plain name.txt", "plain name.txt"),
            ("Été, 日本語, emoji 👩‍💻", "Été, 日本語, emoji 👩‍💻"),
            ("title\x1b]0;pwned\x07", "title\\u{1b}]0;pwned\\u{7}"),
            ("clear\x1b[2J", "clear\\u{1b}[2J"),
            ("cr\rnew\nline\ttab", "cr\\rnew\\nline\\ttab"),
            ("nul\0del\x7f", "nul\\u{0}del\\u{7f}"),
            ("c1 \u{9b}31m \u{85}", "c1 \\u{9b}31m \\u{85}"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{61c}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
            ),
            ("line\u{2028}para\u{2029}", "line\\u{2028}para\\u{2029}"),
            // Backslashes stay: a Windows path in an error reads as itself.
            ("C:\\Users\\me", "C:\\Users\\me"),
        ] {
            assert_eq!(escaped(raw), shown, "{raw:?}");
            assert_eq!(escaped(escaped(raw)), shown, "escaping twice: {raw:?}");
            assert!(!escaped(raw).chars().any(must_escape), "{raw:?}");
        }
    }

    #[test]
    fn every_character_that_must_be_escaped_is() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let shown = escaped(c);
            if must_escape(c) {
                // Rust's own escape for a character outside printable ASCII: `\u{hex}`.
                assert_eq!(shown, c.escape_default().to_string(), "{c:?}");
            } else {
                assert_eq!(shown, c.to_string());
            }
        }
    }
}
