//! Formatting for people, and the one way text reaches the terminal.
//!
//! Much of what the command line prints was chosen by someone else: names of files, folders
//! and workspaces and link targets (another member's), people's names, the server's sentences
//! and links (a hostile server's). Printed raw, such text drives the terminal (escape sequences
//! set its title, clear or rewrite the screen, a carriage return or a newline fakes a line) or
//! reads as other text (bidirectional overrides). So every line is printed through [`Escaped`],
//! by [`say!`] (standard output) and [`tell!`] (standard error), and log lines by
//! [`log_fields`]. What the program writes itself holds none of these characters: only the
//! untrusted parts change. `clippy.toml` forbids `println!` and its kin in this crate.

use std::fmt::{self, Write as _};

use strongroom_protocol::time::Timestamp;

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

/// Prints one line on standard output, escaped: `say!("Stored {path}")`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::say_line(format_args!($($arg)*))
    };
}

/// Prints one line on standard error, escaped: `tell!("Waiting for {name}...")`.
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::output::tell_line(format_args!($($arg)*))
    };
}

pub(crate) use {say, tell};

/// What [`say!`] does.
#[allow(clippy::disallowed_macros)] // the one place that prints to standard output
pub fn say_line(line: fmt::Arguments<'_>) {
    println!("{}", Escaped(line));
}

/// What [`tell!`] does.
#[allow(clippy::disallowed_macros)] // the one place that prints to standard error
pub fn tell_line(line: fmt::Arguments<'_>) {
    eprintln!("{}", Escaped(line));
}

/// The fields of log lines (messages included), escaped like everything else: the
/// tracing-subscriber of `Cargo.lock` (0.3.23) escapes a few controls in messages but writes
/// `%` fields as they are, and engine logs carry names and the server's sentences in them.
pub fn log_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let value = Escaped(format_args!("{value:?}"));
        match field.name() {
            "message" => write!(writer, "{value}"),
            name => write!(writer, "{name}={value}"),
        }
    })
    .delimited(" ")
}

/// A timestamp as local-independent RFC 3339 (UTC, seconds).
pub fn time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_micros(t.as_micros())
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Prints rows as aligned columns, each cell escaped (so that widths count what is shown).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(escaped).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in &rows {
        line(row);
    }
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

    #[test]
    fn log_lines_show_fields_and_messages_escaped() {
        use std::sync::{Arc, Mutex};
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(log_fields())
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let name = "clear\x1b[2J\u{202e}";
            tracing::warn!(file = %name, debug = ?name, "a message \x1b]0;pwned\x07 about {name}");
        });
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let line = text.strip_suffix('\n').expect("one line");
        assert!(!line.chars().any(must_escape), "{line:?}");
        assert!(
            line.contains("a message \\u{1b}]0;pwned\\u{7} about clear\\u{1b}[2J\\u{202e}"),
            "{line}"
        );
        assert!(line.contains("file=clear\\u{1b}[2J\\u{202e}"), "{line}");
        // `?` fields were Debug-escaped already: escaping again keeps them as they were.
        assert!(
            line.contains("debug=\"clear\\u{1b}[2J\\u{202e}\""),
            "{line}"
        );
    }

    /// A log writer into shared memory.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
