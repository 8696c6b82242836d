//! Swapping and renaming indexes (`POST /swap-indexes`, `PATCH /indexes/{uid}` with `uid`): one
//! committed command exchanges (or moves) everything the cluster keeps under an index uid, so every
//! gateway switches at the map version that carries it.
//!
//! What moves, as on one Meilisearch: the index (primary key, dates, settings), its placements and
//! their migrations, and the index uid of every task registered before the swap. API keys keep
//! their index patterns, as Meilisearch's do. Each index keeps the key its shards were placed by
//! (`Index::placement_key`), so the rebalancer does not move every shard after a swap.

pub use miroir_meili::swap::IndexSwap;

use crate::ids::IndexUid;
use crate::state::ClusterState;

/// Indexes of `swaps` with a shard migration in flight: their copier and ack barrier name the
/// index by uid, so a swap waits for them instead of pulling the name from under them.
pub fn migrating<'a>(state: &ClusterState, swaps: &'a [IndexSwap]) -> Vec<&'a IndexUid> {
    swaps
        .iter()
        .flat_map(|s| [&s.indexes.0, &s.indexes.1])
        .filter(|uid| state.migrations.values().any(|m| &m.index == *uid))
        .collect()
}

/// Applies checked swaps in order.
pub(crate) fn apply(state: &mut ClusterState, swaps: &[IndexSwap]) {
    for IndexSwap { indexes: (lhs, rhs), rename } in swaps {
        // The shards stay where they are: each index keeps the key they were placed by.
        for (uid, idx) in state.indexes.iter_mut().filter(|(u, _)| *u == lhs || *u == rhs) {
            idx.placement_key.get_or_insert_with(|| uid.clone());
        }
        exchange(&mut state.indexes, lhs, rhs);
        exchange(&mut state.placements, lhs, rhs);
        for m in state.migrations.values_mut() {
            m.index = swapped(&m.index, lhs, rhs);
        }
        for t in state.tasks.tasks.values_mut() {
            if let Some(uid) = &t.index_uid {
                t.index_uid = Some(swapped(uid, lhs, rhs));
            }
        }
        debug_assert!(!rename || !state.indexes.contains_key(lhs));
    }
}

fn swapped(uid: &str, lhs: &str, rhs: &str) -> IndexUid {
    if uid == lhs {
        rhs.into()
    } else if uid == rhs {
        lhs.into()
    } else {
        uid.into()
    }
}

/// Exchanges the entries under `a` and `b`; an absent one makes it a move.
fn exchange<V>(map: &mut std::collections::BTreeMap<IndexUid, V>, a: &str, b: &str) {
    let va = map.remove(a);
    let vb = map.remove(b);
    if let Some(v) = va {
        map.insert(b.into(), v);
    }
    if let Some(v) = vb {
        map.insert(a.into(), v);
    }
}
