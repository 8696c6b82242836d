//! `POST /swap-indexes`'s body and Meilisearch's checks of it: the shape, then the indexes named
//! twice (refused before a task exists), then the indexes that must exist or must not (a failed
//! task). What a committed swap changes in the cluster is the kernel's `swap` module.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Code, MeiliError};
use crate::json::found;
use crate::listed;

/// One pair of `POST /swap-indexes`, in Meilisearch's task details shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSwap {
    pub indexes: (String, String),
    /// The first index takes the second's name, which must be free.
    #[serde(default)]
    pub rename: bool,
}

/// An index named twice in one request: refused before a task exists (HTTP 400), as Meilisearch
/// does when it registers the task.
pub fn check_duplicates(swaps: &[IndexSwap]) -> Result<(), MeiliError> {
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
        _ => format!("Indexes must be declared only once during a swap. {} were specified several times.", listed(dup)),
    };
    Err(MeiliError::new(Code::INVALID_SWAP_DUPLICATE_INDEX_FOUND, message))
}

/// What Meilisearch checks when it processes the swap (a failed task): every index to swap or
/// rename exists, and no rename target does.
pub fn check_exist(exists: impl Fn(&str) -> bool, swaps: &[IndexSwap]) -> Result<(), MeiliError> {
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
            _ => format!("Indexes {} not found.", listed(missing)),
        };
        return Err(MeiliError::new(Code::INDEX_NOT_FOUND, message));
    }
    let message = match taken.as_slice() {
        [] => return Ok(()),
        [(lhs, rhs)] => format!(
            "Cannot rename `{lhs}` to `{rhs}` as the index already exists. Hint: You can remove `{rhs}` first and then do your remove."
        ),
        many => format!(
            "The following indexes are being renamed but cannot because their new name conflicts with an already existing index: {}. Renaming doesn't overwrite the other index name.",
            listed(many.iter().map(|(_, rhs)| *rhs))
        ),
    };
    Err(MeiliError::new(Code::INDEX_ALREADY_EXISTS, message))
}

/// Parses a `POST /swap-indexes` body with Meilisearch 1.50's checks, in its order: shapes field
/// by field (`bad_request`, `invalid_swap_indexes`, `missing_swap_indexes`, `invalid_swap_rename`),
/// then two indexes per swap, then no index twice.
pub fn parse(body: &serde_json::Value) -> Result<Vec<IndexSwap>, MeiliError> {
    let err = MeiliError::new;
    let items = body.as_array().ok_or_else(|| {
        err(Code::BAD_REQUEST, format!("Invalid value type: expected an array, but found {}", found(body)))
    })?;
    let mut swaps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = item.as_object().ok_or_else(|| {
            err(
                Code::BAD_REQUEST,
                format!("Invalid value type at `[{i}]`: expected an object, but found {}", found(item)),
            )
        })?;
        let mut indexes = None;
        let mut rename = false;
        for (k, v) in obj {
            match k.as_str() {
                "indexes" => {
                    let list = v.as_array().ok_or_else(|| {
                        err(
                            Code::INVALID_SWAP_INDEXES,
                            format!("Invalid value type at `[{i}].indexes`: expected an array, but found {}", found(v)),
                        )
                    })?;
                    let mut uids = Vec::with_capacity(list.len());
                    for (j, u) in list.iter().enumerate() {
                        let s = u.as_str().ok_or_else(|| {
                            err(
                                Code::INVALID_SWAP_INDEXES,
                                format!(
                                    "Invalid value type at `[{i}].indexes[{j}]`: expected a string, but found {}",
                                    found(u)
                                ),
                            )
                        })?;
                        if !crate::is_valid_index_uid(s) {
                            return Err(err(Code::INVALID_SWAP_INDEXES, format!("Invalid value at `[{i}].indexes[{j}]`: `{s}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.")));
                        }
                        uids.push(s.to_string());
                    }
                    indexes = Some(uids);
                }
                "rename" => {
                    rename = v.as_bool().ok_or_else(|| {
                        err(
                            Code::INVALID_SWAP_RENAME,
                            format!("Invalid value type at `[{i}].rename`: expected a boolean, but found {}", found(v)),
                        )
                    })?;
                }
                other => {
                    return Err(err(
                        Code::BAD_REQUEST,
                        format!("Unknown field `{other}` inside `[{i}]`: expected one of `indexes`, `rename`"),
                    ))
                }
            }
        }
        let indexes = indexes
            .ok_or_else(|| err(Code::MISSING_SWAP_INDEXES, format!("Missing field `indexes` inside `[{i}]`")))?;
        swaps.push((indexes, rename));
    }
    let swaps = swaps
        .into_iter()
        .map(|(indexes, rename)| match <[String; 2]>::try_from(indexes) {
            Ok([a, b]) => Ok(IndexSwap { indexes: (a, b), rename }),
            Err(list) => Err(err(
                Code::INVALID_SWAP_INDEXES,
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
