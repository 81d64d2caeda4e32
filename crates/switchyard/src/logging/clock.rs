//! Log timestamps (`2026-12-05T00:20:35.888244Z`, as `tracing-subscriber`'s `SystemTime`
//! writes them) with the date and time of day formatted once a second per thread: the
//! general formatter's `write!` of seven zero-padded numbers was a fifth of an access line.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// `YYYY-MM-DDTHH:MM:SS.`: the part of a timestamp that changes once a second.
const PREFIX: usize = 20;

thread_local! {
    /// The second since the epoch last formatted on this thread, and its prefix.
    static LAST: Cell<(u64, [u8; PREFIX])> = const { Cell::new((u64::MAX, [0; PREFIX])) };
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => write_at(w, since),
            // Before 1970: the general formatter knows how.
            Err(_) => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// The timestamp of `since` the epoch.
fn write_at(w: &mut impl fmt::Write, since: Duration) -> fmt::Result {
    let secs = since.as_secs();
    let (last, mut prefix) = LAST.get();
    if last != secs {
        let Some(prefix_text) = prefix_of(secs) else {
            // Past year 9999, or out of chrono's range: the whole stamp the slow way.
            let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + since;
            return write!(w, "{}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        };
        prefix = prefix_text;
        LAST.set((secs, prefix));
    }
    let mut micros = since.subsec_micros();
    let mut digits = [b'0'; 7];
    digits[6] = b'Z';
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    // Both are ASCII by construction.
    w.write_str(std::str::from_utf8(&prefix).map_err(|_| fmt::Error)?)?;
    w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

fn prefix_of(secs: u64) -> Option<[u8; PREFIX]> {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(i64::try_from(secs).ok()?, 0)?;
    let text = at.format("%Y-%m-%dT%H:%M:%S.").to_string();
    text.as_bytes().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_the_general_formatters() {
        // The general formatter's shape: the same length, separators in the same places.
        let (mut ours, mut general) = (String::new(), String::new());
        Clock.format_time(&mut Writer::new(&mut ours)).unwrap();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut general))
            .unwrap();
        let shape = |s: &str| {
            s.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect::<String>()
        };
        assert_eq!(shape(&ours), shape(&general), "{ours} / {general}");
        assert_eq!(shape(&ours), "9999-99-99T99:99:99.999999Z");
        // And the value: every microsecond case and second boundary, against chrono.
        for (secs, nanos) in [
            (0, 0),
            (1_733_356_835, 888_244_123),
            (1_733_356_835, 999_999_999),
            (1_733_356_836, 0),
            (1_733_356_836, 1_000),
            (1_733_356_835, 5_000),
            (951_782_400, 123_456_000),     // 2000-02-29
            (253_402_300_799, 999_999_000), // 9999-12-31T23:59:59
            (253_402_300_800, 0),           // year 10000: the slow way
        ] {
            let since = Duration::new(secs, nanos);
            let mut ours = String::new();
            write_at(&mut ours, since).unwrap();
            let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + since;
            assert_eq!(ours, at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "{secs}.{nanos}");
        }
    }
}
