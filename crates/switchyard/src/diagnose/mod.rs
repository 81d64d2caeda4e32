//! Diagnostics beyond one request: `doctor` (config, credentials and identity, a live probe
//! per deployment, which aliases are served, the next steps), `policy` (the minimal IAM
//! policy for the configured Bedrock models) and `verify` (the "Say: WORKS" test through a
//! running gateway). `/health` probes with [`probe`] too.
//!
//! Nothing here classifies an upstream answer: probes go through the real providers, whose
//! errors `classify` already named. Nothing here prints a secret beyond its safe prefix.

pub mod doctor;
pub mod grant;
pub mod identity;
pub mod ledger;
pub mod policy;
pub mod probe;
pub mod redis;
pub mod regions;
pub mod render;
mod steps;
pub mod verify;

pub use doctor::{Options as DoctorOptions, Report as DoctorReport};
pub use steps::Step;
