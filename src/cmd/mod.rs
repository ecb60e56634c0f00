//! One module per subcommand.

pub mod bench;
pub mod certify;
mod chaos;
pub mod env;
pub mod eval;
pub mod inspect;
pub mod render;
pub mod report;
pub mod solve;
pub mod sweep;
pub mod train;
pub mod worker;
