//! The access line (one per request, `server/request_id.rs`) written straight to the log
//! buffer. `tracing-subscriber`'s general formatter spent ~11,000 instructions on it, a
//! twelfth of a relayed request (each field through `Debug` and `fmt::write`); this writes the
//! same bytes in both formats (a test formats the real call site both ways and compares) for a
//! fraction of that. Every other event, and the access line whenever the general formatter
//! would add something (colours on a terminal, a span around it), goes to the general one.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The access line's target: its module, as `tracing` would name it anyway.
pub const TARGET: &str = "switchyard::server::request_id";

/// The access line's fields, in order; their types are fixed at its one call site (strings,
/// a `Display`, integers), which is all the visitors below handle.
const FIELDS: [&str; 7] = ["message", "request_id", "method", "path", "status", "deployment", "us"];

/// The general formatter `inner`, with the access line written by hand in its format.
pub struct Fast<E, T> {
    inner: E,
    timer: T,
    json: bool,
}

impl<E, T> Fast<E, T> {
    /// `inner` formats compact text (`with_target(false)`) with `timer`.
    pub fn text(inner: E, timer: T) -> Self {
        Self { inner, timer, json: false }
    }

    /// `inner` formats flattened JSON (`flatten_event(true)`) with `timer`.
    pub fn json(inner: E, timer: T) -> Self {
        Self { inner, timer, json: true }
    }
}

impl<S, N, E, T> FormatEvent<S, N> for Fast<E, T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let plain = meta.target() == TARGET
            && *meta.level() == Level::INFO
            && meta.fields().iter().map(|f| f.name()).eq(FIELDS)
            && !writer.has_ansi_escapes()
            && event.parent().is_none()
            && ctx.lookup_current().is_none();
        #[cfg(test)]
        tests::FAST.with(|n| n.set(n.get() + usize::from(plain)));
        match (plain, self.json) {
            (false, _) => self.inner.format_event(ctx, writer, event),
            (true, false) => text(&self.timer, writer, event),
            (true, true) => json(&self.timer, writer, event),
        }
    }
}

/// `<time>  INFO request request_id="…" method=POST …`, as the compact format writes it.
fn text(timer: &impl FormatTime, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
    if timer.format_time(&mut w).is_err() {
        w.write_str("<unknown time>")?;
    }
    w.write_str("  INFO ")?;
    let mut fields = Text { w: &mut w, first: true, result: Ok(()) };
    event.record(&mut fields);
    fields.result?;
    w.write_char('\n')
}

struct Text<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Text<'_, '_> {
    /// The separator, then `name=` (nothing for the message).
    fn start(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.w.write_char(' ')?;
        }
        match field.name() {
            "message" => Ok(()),
            name => {
                self.w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.w.write_char('=')
            }
        }
    }
}

impl Visit for Text<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.start(field).and_then(|()| {
            if field.name() == "message" {
                self.w.write_str(value)
            } else if value.bytes().all(plain) {
                // `Debug` of a string with nothing to escape: the string in quotes.
                self.w.write_char('"')?;
                self.w.write_str(value)?;
                self.w.write_char('"')
            } else {
                write!(self.w, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_err() {
            return;
        }
        self.result = self.start(field).and_then(|()| write!(self.w, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.start(field).and_then(|()| write!(self.w, "{value:?}"));
    }
}

/// `{"timestamp":…,"level":"INFO","message":"request",…,"target":…}`, as the flattened JSON
/// format writes it.
fn json(timer: &impl FormatTime, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
    w.write_str(r#"{"timestamp":""#)?;
    timer.format_time(&mut w)?;
    w.write_str(r#"","level":"INFO""#)?;
    let mut fields = Json { w: &mut w, result: Ok(()) };
    event.record(&mut fields);
    fields.result?;
    w.write_str(r#","target":""#)?;
    w.write_str(TARGET)?;
    w.write_str("\"}\n")
}

struct Json<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Json<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.w.write_char(',')?;
        string(self.w, field.name())?;
        self.w.write_char(':')
    }
}

impl Visit for Json<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.key(field).and_then(|()| string(self.w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_err() {
            return;
        }
        self.result = self.key(field).and_then(|()| write!(self.w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_err() {
            return;
        }
        self.result = self.key(field).and_then(|()| write!(self.w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_err() {
            return;
        }
        self.result = self.key(field).and_then(|()| write!(self.w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_err() {
            return;
        }
        let number = serde_json::to_string(&value).map_err(|_| fmt::Error);
        self.result = self.key(field).and_then(|()| self.w.write_str(&number?));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.key(field).and_then(|()| string(self.w, &format!("{value:?}")));
    }
}

/// A JSON string as serde_json writes it.
fn string(w: &mut Writer<'_>, text: &str) -> fmt::Result {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        w.write_char('"')?;
        w.write_str(text)?;
        return w.write_char('"');
    }
    w.write_str(&serde_json::to_string(text).map_err(|_| fmt::Error)?)
}

/// A byte `Debug` of a string leaves as it is.
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    thread_local! {
        /// Lines this thread's fast path wrote.
        pub(super) static FAST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    #[derive(Clone, Copy)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-05T00:20:35.888244Z")
        }
    }

    /// Access lines of every shape the call site makes (and some it cannot: ids and paths
    /// that need escaping), then an ordinary event.
    fn lines() {
        use crate::server::request_id::access_line;
        let method = http::Method::POST;
        access_line(
            "req_18ee339988ea019b00000000",
            &method,
            "/v1/messages",
            200,
            Some("fb16"),
            788,
        );
        access_line("r", &http::Method::GET, "/v1/mod%22els", 404, None, 47);
        access_line("a\"b\\c", &method, "/caf\u{e9}/\"x\"/\\y\u{1}\n\u{7f}", 502, Some("d\te"), 0);
        access_line("", &http::Method::OPTIONS, "", u16::MAX, Some(""), u64::MAX);
        tracing::info!(target: TARGET, answer = 42, "not an access line");
        tracing::info!(target: TARGET, request_id = 1.5, method = true, path = -1, status = 2, deployment = "x", us = f64::NAN, "request");
        tracing::warn!(code = "GW-14", "connection refused");
    }

    #[test]
    fn the_access_line_is_the_general_formatters_byte_for_byte() {
        for json in [false, true] {
            let (general, fast) = (Captured::default(), Captured::default());
            let reference =
                super::super::subscriber_with(json, false, general.clone(), Fixed, false);
            tracing::subscriber::with_default(reference, lines);
            assert_eq!(FAST.get(), 0, "the general formatter never takes the fast path");
            let ours = super::super::subscriber_with(json, false, fast.clone(), Fixed, true);
            tracing::subscriber::with_default(ours, lines);
            // The four access lines and the one with their fields; not the other two.
            assert_eq!(FAST.replace(0), 5, "json: {json}");
            let (general, fast) = (general.text(), fast.text());
            assert_eq!(fast, general, "json: {json}");
            assert_eq!(general.lines().count(), 7, "{general}");
            assert!(general.contains("req_18ee339988ea019b00000000"), "{general}");
        }
    }

    #[test]
    fn colours_on_a_terminal_are_left_to_the_general_formatter() {
        let (general, fast) = (Captured::default(), Captured::default());
        let reference = super::super::subscriber_with(false, true, general.clone(), Fixed, false);
        tracing::subscriber::with_default(reference, lines);
        let ours = super::super::subscriber_with(false, true, fast.clone(), Fixed, true);
        tracing::subscriber::with_default(ours, lines);
        assert_eq!(FAST.replace(0), 0);
        assert_eq!(fast.text(), general.text());
        assert!(general.text().contains('\x1b'), "{}", general.text());
    }
}
