//! Switchyard's load benchmark as a library: the load generator ([`load`]), the processes
//! under test ([`procs`]) and the report ([`report`]). `main.rs` runs the rounds.
//!
//! Never part of CI (it needs quiet cores and minutes); `cargo run -p bench --release`.

pub mod load;
pub mod nginx;
pub mod procs;
pub mod report;
