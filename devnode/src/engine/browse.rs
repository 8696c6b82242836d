//! Document browsing: `GET /documents` and `POST /documents/fetch`.

use serde_json::{json, Map, Value};

use super::search::{checked_filter, document_fields, num_param, string_list};
use super::settings::View;
use super::{Doc, Index};
use crate::error::{Code, DevResult, MeiliError};

/// Browse (`GET /documents` and `POST /documents/fetch`): insertion order, optional filter/ids.
pub fn browse(idx: &Index, body: &Map<String, Value>) -> DevResult<Value> {
    // `BrowseQuery`/`BrowseQueryGet` in Meilisearch's documents routes deny unknown fields.
    const PARAMS: &[&str] = &["offset", "limit", "fields", "retrieveVectors", "ids", "filter", "sort", "useNetwork"];
    if let Some(k) = body.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        let all = miroir_meili::listed(PARAMS);
        return Err(MeiliError::bad_request(format!("Unknown field `{k}`: expected one of {all}")));
    }
    // Refused rather than silently ignored: the answer would not be Meilisearch's.
    if let Some(k) = ["sort", "useNetwork"].into_iter().find(|k| body.get(*k).is_some_and(|v| !v.is_null())) {
        return Err(MeiliError::bad_request(format!("The dev node does not support `{k}` on the documents routes.")));
    }
    let view = View::from_full(&idx.settings());
    let offset = num_param(body, "offset", Code::INVALID_DOCUMENT_OFFSET)?.unwrap_or(0);
    let limit = num_param(body, "limit", Code::INVALID_DOCUMENT_LIMIT)?.unwrap_or(20);
    let fields = string_list(body, "fields", Code::INVALID_DOCUMENT_FIELDS)?;
    let retrieve = match body.get("retrieveVectors") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_DOCUMENT_RETRIEVE_VECTORS,
                format!("Invalid value type at `.retrieveVectors`: expected a boolean, but found `{v}`"),
            ))
        }
    };
    let filter = checked_filter(body.get("filter").unwrap_or(&Value::Null), &view, Code::INVALID_DOCUMENT_FILTER)?;
    let ids: Option<Vec<String>> = match body.get("ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            Some(a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect())
        }
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_DOCUMENT_IDS,
                format!("Invalid value type at `.ids`: expected an array, but found `{v}`"),
            ))
        }
    };
    let selected: Vec<&Doc> = match &ids {
        Some(ids) => {
            let mut internals: Vec<u64> = ids.iter().filter_map(|i| idx.ids.get(i).copied()).collect();
            internals.sort_unstable();
            internals.dedup();
            internals.iter().filter_map(|i| idx.docs.get(i)).collect()
        }
        None => idx.docs.values().collect(),
    };
    let matching: Vec<&Doc> = selected.into_iter().filter(|d| filter.as_ref().is_none_or(|f| f.matches(d))).collect();
    let results: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| {
            let mut out = document_fields(d, fields.as_deref());
            super::vectors::present(&mut out, d, retrieve);
            Value::Object(out)
        })
        .collect();
    Ok(json!({"results": results, "offset": offset, "limit": limit, "total": matching.len()}))
}
