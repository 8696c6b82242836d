//! The read path: which copies may serve a shard and the fewest nodes covering an index
//! (`replicas`), the choice among copies by load (`load`), asking them all at once with failover
//! (`scatter`), and putting their answers together as one Meilisearch would have given it
//! (`search`). `stats` sums the nodes' document counts.

use miroir_node_client::NodeClient;

pub mod load;
pub mod replicas;
pub mod scatter;
pub mod search;
pub mod stats;

/// What a scatter-gather read needs of the gateway: the node client, and each node's observed load
/// to choose among copies.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    pub nodes: &'a NodeClient,
    pub load: &'a load::NodeLoad,
}
