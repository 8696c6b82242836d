//! Miroir gateway: the Meilisearch HTTP API over a sharded cluster (not built yet).
