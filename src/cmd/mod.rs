//! One module per subcommand.

pub mod env;
pub mod certify;
pub mod solve;
