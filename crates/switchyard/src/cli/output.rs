//! Command output. Results go to stdout, messages for the person to stderr; a closed pipe
//! (`switchyard config check | head`) is not an error worth crashing over.

use std::io::Write;

pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
