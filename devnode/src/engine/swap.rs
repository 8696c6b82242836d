//! Index swaps and renames as Meilisearch 1.50 processes them: every index checked first (a
//! failed task names the missing ones, or the rename targets that exist), then the indexes change
//! names and the tasks enqueued before the swap follow them.

use serde_json::json;
use time::OffsetDateTime;

use super::Engine;
use crate::error::{Code, DevResult, MeiliError};

/// `(lhs, rhs, rename)`, as `POST /swap-indexes` gives them.
pub type Swap = (String, String, bool);

pub fn details(swaps: &[Swap]) -> serde_json::Value {
    let swaps: Vec<_> = swaps.iter().map(|(a, b, rename)| json!({"indexes": [a, b], "rename": rename})).collect();
    json!({ "swaps": swaps })
}

impl Engine {
    /// Applies `swaps` for task `task` (tasks before it follow the indexes' new names).
    pub(super) fn apply_swaps(&mut self, swaps: &[Swap], task: u64, now: OffsetDateTime) -> DevResult<()> {
        let mut missing = std::collections::BTreeSet::new();
        let mut taken = Vec::new();
        for (lhs, rhs, rename) in swaps {
            if !self.indexes.contains_key(lhs) {
                missing.insert(lhs);
            }
            match (self.indexes.contains_key(rhs), rename) {
                (true, true) => taken.push((lhs, rhs)),
                (false, false) => {
                    missing.insert(rhs);
                }
                _ => {}
            }
        }
        match missing.len() {
            0 => {}
            1 => return Err(MeiliError::index_not_found(missing.first().expect("one"))),
            _ => {
                return Err(MeiliError::new(
                    Code::INDEX_NOT_FOUND,
                    format!("Indexes {} not found.", miroir_meili::listed(missing)),
                ))
            }
        }
        match taken.as_slice() {
            [] => {}
            [(lhs, rhs)] => return Err(MeiliError::new(
                Code::INDEX_ALREADY_EXISTS,
                format!("Cannot rename `{lhs}` to `{rhs}` as the index already exists. Hint: You can remove `{rhs}` first and then do your remove."),
            )),
            many => return Err(MeiliError::new(
                Code::INDEX_ALREADY_EXISTS,
                format!("The following indexes are being renamed but cannot because their new name conflicts with an already existing index: {}. Renaming doesn't overwrite the other index name.", miroir_meili::listed(many.iter().map(|(_, r)| *r))),
            )),
        }
        for (lhs, rhs, _) in swaps {
            self.swap_names(lhs, rhs, task);
        }
        let _ = now;
        Ok(())
    }

    /// Exchanges (or moves, when one is absent) the indexes named `lhs` and `rhs`.
    pub(super) fn swap_names(&mut self, lhs: &str, rhs: &str, task: u64) {
        let a = self.indexes.remove(lhs);
        let b = self.indexes.remove(rhs);
        for (name, idx) in [(rhs, a), (lhs, b)] {
            if let Some(mut idx) = idx {
                idx.uid = name.to_string();
                self.indexes.insert(name.to_string(), idx);
            }
        }
        for t in self.tasks.iter_mut().filter(|t| t.uid < task) {
            match t.index_uid.as_deref() {
                Some(u) if u == lhs => t.index_uid = Some(rhs.to_string()),
                Some(u) if u == rhs => t.index_uid = Some(lhs.to_string()),
                _ => {}
            }
        }
    }
}
