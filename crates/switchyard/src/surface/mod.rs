//! Client-facing wire formats. A surface decodes a client request into canonical types
//! and encodes canonical responses, streams and errors back in the client's own shape.
//!
//! **Invariant:** surfaces never import `provider`; they see only `canonical` and
//! `classify`.

pub mod anthropic;
pub mod bedrock;
pub mod openai;
pub mod responses;
