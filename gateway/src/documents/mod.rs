//! Document writes: payload parsing and hash routing.

pub mod edit;
pub mod payload;
pub mod route;
