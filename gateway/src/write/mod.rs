//! The write path: a client's documents parsed and checked whole (`payload`), stamped with their
//! shard and split per shard (`shard`), sent to every write target of each shard (`fanout`), and
//! registered as one Miroir task (`tasks`). `edit` wraps an edit-by-function so documents keep
//! their shard field; `settings` is what nodes receive of an index's settings; `node_tasks`
//! cancels or deletes tasks on the nodes.

pub mod edit;
pub mod fanout;
pub mod fence;
pub mod node_tasks;
pub mod payload;
pub mod settings;
pub mod shard;
pub mod tasks;
