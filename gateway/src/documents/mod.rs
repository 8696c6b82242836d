//! Document writes: payload parsing and hash routing.

pub mod payload;
pub mod route;
