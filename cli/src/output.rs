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

use std::fmt;

use strongroom_protocol::time::Timestamp;

pub use strongroom_protocol::display::{Escaped, escaped};

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
    use strongroom_protocol::display::must_escape;

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
