//! The dev node's errors are Meilisearch's own (`miroir_meili::MeiliError`): the engine says which
//! code and message, the HTTP layer turns it into a response in one place (`http::mod`).

pub use miroir_meili::{Code, MeiliError};

pub type DevResult<T> = Result<T, MeiliError>;
