//! Command output. Results go to stdout, messages for the person to stderr; a closed pipe
//! (`switchyard config check | head`) is not an error worth crashing over.

use std::io::Write;

pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub fn stderr(text: &str) {
    // After the log lines before it, which a thread of their own writes.
    crate::logging::flush();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
