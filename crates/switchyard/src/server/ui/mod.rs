//! The dashboard under `/ui`: its JSON API under `/ui/api/`.

pub(crate) mod data;
