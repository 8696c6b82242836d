//! Swapping and renaming indexes (`POST /swap-indexes`, `PATCH /indexes/{uid}` with `uid`): one
//! committed command exchanges (or moves) everything the cluster keeps under an index uid, so every
//! gateway switches at the map version that carries it.
//!
//! What moves, as on one Meilisearch: the index (primary key, dates, settings), its placements and
//! their migrations, and the index uid of every task registered before the swap. API keys keep
//! their index patterns, as Meilisearch's do. Each index keeps the key its shards were placed by
//! (`Index::placement_key`), so the rebalancer does not move every shard after a swap.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::IndexUid;
use crate::state::ClusterState;

/// One pair of `POST /swap-indexes`, in Meilisearch's task details shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSwap {
    pub indexes: (IndexUid, IndexUid),
    /// The first index takes the second's name, which must be free.
    #[serde(default)]
    pub rename: bool,
}

/// Why Meilisearch refuses a swap: its error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapRefusal {
    pub code: &'static str,
    pub message: String,
}

fn backticked<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names.into_iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// An index named twice in one request: refused before a task exists (HTTP 400), as Meilisearch
/// does when it registers the task.
pub fn check_duplicates(swaps: &[IndexSwap]) -> Result<(), SwapRefusal> {
    let mut seen = BTreeSet::new();
    let mut dup = BTreeSet::new();
    for s in swaps {
        for name in [&s.indexes.0, &s.indexes.1] {
            if !seen.insert(name) {
                dup.insert(name);
            }
        }
    }
    let message = match dup.len() {
        0 => return Ok(()),
        1 => format!(
            "Indexes must be declared only once during a swap. `{}` was specified several times.",
            dup.first().expect("one")
        ),
        _ => format!(
            "Indexes must be declared only once during a swap. {} were specified several times.",
            backticked(dup)
        ),
    };
    Err(SwapRefusal { code: "invalid_swap_duplicate_index_found", message })
}

/// What Meilisearch checks when it processes the swap (a failed task): every index to swap or
/// rename exists, and no rename target does.
pub fn check_exist(exists: impl Fn(&str) -> bool, swaps: &[IndexSwap]) -> Result<(), SwapRefusal> {
    let mut missing = BTreeSet::new();
    let mut taken = Vec::new();
    for IndexSwap { indexes: (lhs, rhs), rename } in swaps {
        if !exists(lhs) {
            missing.insert(lhs);
        }
        match (exists(rhs.as_str()), rename) {
            (true, true) => taken.push((lhs, rhs)),
            (false, false) => {
                missing.insert(rhs);
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        let message = match missing.len() {
            1 => format!("Index `{}` not found.", missing.first().expect("one")),
            _ => format!("Indexes {} not found.", backticked(missing)),
        };
        return Err(SwapRefusal { code: "index_not_found", message });
    }
    let message = match taken.as_slice() {
        [] => return Ok(()),
        [(lhs, rhs)] => format!(
            "Cannot rename `{lhs}` to `{rhs}` as the index already exists. Hint: You can remove `{rhs}` first and then do your remove."
        ),
        many => format!(
            "The following indexes are being renamed but cannot because their new name conflicts with an already existing index: {}. Renaming doesn't overwrite the other index name.",
            backticked(many.iter().map(|(_, rhs)| *rhs))
        ),
    };
    Err(SwapRefusal { code: "index_already_exists", message })
}

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

/// The JSON type names Meilisearch's deserialiser prints.
fn kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value::*;
    match v {
        Null => "null",
        Bool(_) => "a boolean",
        Number(n) if n.is_f64() => "a number",
        Number(n) if n.is_i64() && n.as_i64().is_some_and(|i| i < 0) => "a negative integer",
        Number(_) => "a positive integer",
        String(_) => "a string",
        Array(_) => "an array",
        Object(_) => "an object",
    }
}

/// Parses a `POST /swap-indexes` body with Meilisearch 1.50's checks, in its order: shapes field
/// by field (`bad_request`, `invalid_swap_indexes`, `missing_swap_indexes`, `invalid_swap_rename`),
/// then two indexes per swap, then no index twice.
pub fn parse(body: &serde_json::Value) -> Result<Vec<IndexSwap>, SwapRefusal> {
    let err = |code, message| SwapRefusal { code, message };
    let items = body.as_array().ok_or_else(|| {
        err("bad_request", format!("Invalid value type: expected an array, but found {}: `{body}`", kind(body)))
    })?;
    let mut swaps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = item.as_object().ok_or_else(|| {
            err(
                "bad_request",
                format!("Invalid value type at `[{i}]`: expected an object, but found {}: `{item}`", kind(item)),
            )
        })?;
        let mut indexes = None;
        let mut rename = false;
        for (k, v) in obj {
            match k.as_str() {
                "indexes" => {
                    let list = v.as_array().ok_or_else(|| {
                        err(
                            "invalid_swap_indexes",
                            format!(
                                "Invalid value type at `[{i}].indexes`: expected an array, but found {}: `{v}`",
                                kind(v)
                            ),
                        )
                    })?;
                    let mut uids = Vec::with_capacity(list.len());
                    for (j, u) in list.iter().enumerate() {
                        let s = u.as_str().ok_or_else(|| {
                            err("invalid_swap_indexes", format!("Invalid value type at `[{i}].indexes[{j}]`: expected a string, but found {}: `{u}`", kind(u)))
                        })?;
                        if !crate::placement::is_valid_index_uid(s) {
                            return Err(err("invalid_swap_indexes", format!("Invalid value at `[{i}].indexes[{j}]`: `{s}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.")));
                        }
                        uids.push(s.to_string());
                    }
                    indexes = Some(uids);
                }
                "rename" => {
                    rename = v.as_bool().ok_or_else(|| {
                        err(
                            "invalid_swap_rename",
                            format!(
                                "Invalid value type at `[{i}].rename`: expected a boolean, but found {}: `{v}`",
                                kind(v)
                            ),
                        )
                    })?;
                }
                other => {
                    return Err(err(
                        "bad_request",
                        format!("Unknown field `{other}` inside `[{i}]`: expected one of `indexes`, `rename`"),
                    ))
                }
            }
        }
        let indexes =
            indexes.ok_or_else(|| err("missing_swap_indexes", format!("Missing field `indexes` inside `[{i}]`")))?;
        swaps.push((indexes, rename));
    }
    let swaps = swaps
        .into_iter()
        .map(|(indexes, rename)| match <[String; 2]>::try_from(indexes) {
            Ok([a, b]) => Ok(IndexSwap { indexes: (a, b), rename }),
            Err(list) => Err(err(
                "invalid_swap_indexes",
                format!(
                    "Two indexes must be given for each swap. The list `[{}]` contains {} indexes.",
                    list.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "),
                    list.len()
                ),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_duplicates(&swaps)?;
    Ok(swaps)
}
