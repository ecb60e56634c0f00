//! Durable file writes and plain-worded I/O errors: the binary's name for
//! [`tame_agents::fsutil`], which lives below it so that agents' checkpoints share it.

pub use tame_agents::fsutil::{friendly_io, write_atomic};
