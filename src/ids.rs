//! Identifier types shared by every part of the model.

/// A Meilisearch node, as named by the operator (`miroirctl node add ID`).
pub type NodeId = String;
/// A replica group: a set of nodes that together hold one full copy of every index.
pub type GroupId = String;
/// An index uid, as the Meilisearch API names it.
pub type IndexUid = String;
/// A shard number in `0..shards` of its index.
pub type ShardId = u32;
/// A Miroir task uid: cluster-wide and monotonic.
pub type TaskUid = u64;
/// A migration id: assigned by `apply`, monotonic.
pub type MigrationId = u64;
/// A gateway instance id.
pub type GatewayId = String;
/// Milliseconds since the Unix epoch. Time enters the state only inside commands.
pub use miroir_meili::Millis;
