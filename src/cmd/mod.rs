//! One module per subcommand.

pub mod bench;
mod chaos;
pub mod env;
pub mod eval;
pub mod render;
pub mod train;
pub mod inspect;
pub mod certify;
pub mod report;
pub mod solve;
pub mod sweep;
pub mod worker;
