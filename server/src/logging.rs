//! The server's log lines, with every field shown through [`Escaped`]: what clients send reaches
//! the log (names in certificates, mail errors quoting addresses, refusals), and a log read in
//! a terminal must not be driven by it.

use strongroom_protocol::display::Escaped;

/// Formats log fields (messages included) escaped: tracing-subscriber writes `%` fields as they
/// are.
pub fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static
{
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_a_client_chose_are_escaped() {
        let sink = Sink(Default::default());
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(super::escaped_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let reason = "mail to bob\u{202e}@example.com failed\x1b[2J";
            tracing::warn!(error = %reason, "invitation email not sent");
        });
        let line = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            line.contains("error=mail to bob\\u{202e}@example.com failed\\u{1b}[2J"),
            "{line}"
        );
        assert!(
            !line.contains('\x1b') && !line.contains('\u{202e}'),
            "{line:?}"
        );
    }
}
