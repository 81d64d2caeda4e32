//! Exit codes that scripts can trust. Documented in the README; never renumber.

/// Success.
pub const OK: u8 = 0;
/// A check ran and found a failure (e.g. an alias with no working deployment).
pub const FAILED: u8 = 1;
/// The command line itself was wrong (clap's own convention).
pub const USAGE: u8 = 2;
/// `status`: the gateway is not running.
pub const NOT_RUNNING: u8 = 3;
/// The configuration is invalid.
pub const BAD_CONFIG: u8 = 64;
/// `claude`, `codex`: the tool to start is not installed (a shell's "command not found").
pub const TOOL_MISSING: u8 = 127;
/// Could not start serving: address in use, refused to listen unauthenticated, I/O.
pub const CANNOT_SERVE: u8 = 69;
