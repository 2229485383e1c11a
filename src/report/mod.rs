//! Human-facing output shared by commands: progress reporting now; the apply pipeline's human
//! and JSON reports will live beside it. Command-specific report types stay with their command's
//! library module (e.g. the store's `SeedReport`).

pub mod progress;
