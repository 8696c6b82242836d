//! The HTTP surface: every Meilisearch route (`routes`), request extractors whose rejections are
//! Meilisearch errors, API keys and tenant tokens (`auth`), experimental-feature gates, and the
//! answer to routes Miroir does not serve.

pub mod auth;
pub mod extract;
pub mod feature_gate;
pub mod routes;
pub mod unsupported;
