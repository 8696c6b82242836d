//! A federated multi-search's request (`federation` and each query's `federationOptions`), checked
//! as Meilisearch 1.50 checks it, in its order. What a side does not serve (Miroir refuses some
//! federation features rather than approximate them; the dev node others) is its own decision:
//! the parser asks `refuse` at each such point, and an answer `Some(error)` stops it there.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Code, MeiliError};
use crate::json::found as kind;
use crate::listed;
use crate::pagination::{Window, DEFAULT_LIMIT};

/// A federation feature a side may not serve, met while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unserved<'a> {
    /// `federation.distinct`.
    FederationDistinct,
    /// A search parameter of query `query` (`sort` or `distinct`).
    QueryParameter { query: usize, name: &'a str },
    /// A `federationOptions` field of query `query` other than `weight` (`remote`, `queryPosition`).
    FederationOption { query: usize, name: &'a str },
}

/// One query of a federated search: its position, index, search parameters and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub position: usize,
    pub index_uid: String,
    pub body: Map<String, Value>,
    pub weight: f64,
}

const FEDERATION_FIELDS: [&str; 7] =
    ["limit", "offset", "page", "hitsPerPage", "facetsByIndex", "mergeFacets", "distinct"];

fn count(v: Option<&Value>, at: &str, code: Code) -> Result<Option<usize>, MeiliError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            MeiliError::new(
                code,
                format!("Invalid value type at `{at}`: expected a positive integer, but found {}", kind(v)),
            )
        }),
    }
}

/// Parses `federation`: its fields, the page it asks for, and its facets.
pub fn parse_federation(
    f: &Value,
    refuse: impl Fn(Unserved) -> Option<MeiliError>,
) -> Result<(Window, FacetRequest), MeiliError> {
    let Some(f) = f.as_object() else {
        return Err(MeiliError::bad_request(format!(
            "Invalid value type at `.federation`: expected an object, but found {f}"
        )));
    };
    if let Some(k) = f.keys().find(|k| !FEDERATION_FIELDS.contains(&k.as_str())) {
        return Err(MeiliError::bad_request(format!(
            "Unknown field `{k}` inside `.federation`: expected one of {}",
            listed(FEDERATION_FIELDS)
        )));
    }
    if f.get("distinct").is_some_and(|v| !v.is_null()) {
        if let Some(e) = refuse(Unserved::FederationDistinct) {
            return Err(e);
        }
    }
    let window = Window {
        limit: count(f.get("limit"), ".federation.limit", Code::INVALID_SEARCH_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
        offset: count(f.get("offset"), ".federation.offset", Code::INVALID_SEARCH_OFFSET)?.unwrap_or(0),
        page: count(f.get("page"), ".federation.page", Code::INVALID_SEARCH_PAGE)?,
        hits_per_page: count(f.get("hitsPerPage"), ".federation.hitsPerPage", Code::INVALID_SEARCH_HITS_PER_PAGE)?,
    };
    Ok((window, parse_facets(f)?))
}

/// Checks query `i` as Meilisearch's `PartitionedQueries::partition` does (pagination and facets
/// belong to the federation) and takes its `federationOptions` out.
pub fn parse_query(i: usize, q: &Value, refuse: impl Fn(Unserved) -> Option<MeiliError>) -> Result<Query, MeiliError> {
    let mut body = q.as_object().cloned().unwrap_or_default();
    let Some(index_uid) = body.remove("indexUid").and_then(|v| v.as_str().map(str::to_string)) else {
        return Err(MeiliError::new(
            Code::MISSING_INDEX_UID,
            format!("Missing field `indexUid` inside `.queries[{i}]`"),
        ));
    };
    let paging = ["offset", "limit", "page", "hitsPerPage"];
    if let Some(field) = paging.into_iter().find(|k| body.get(*k).is_some_and(|v| !v.is_null())) {
        return Err(MeiliError::new(Code::INVALID_MULTI_SEARCH_QUERY_PAGINATION, format!("Inside `.queries[{i}]`: Using pagination options is not allowed in federated queries.\n - Hint: remove `{field}` from the query or remove `federation` from the request\n - Hint: pass `federation.limit` and `federation.offset` for pagination in federated search")));
    }
    if let Some(Value::Array(facets)) = body.get("facets") {
        if !facets.is_empty() {
            let names: Vec<String> =
                facets.iter().map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_string)).collect();
            return Err(MeiliError::new(Code::INVALID_MULTI_SEARCH_QUERY_FACETS, format!("Inside `.queries[{i}]`: Using facet options is not allowed in federated queries.\n - Hint: remove `facets` from the query or remove `federation` from the request\n - Hint: pass `federation.facetsByIndex.{index_uid}: {names:?}` for facets in federated search")));
        }
    }
    for name in ["sort", "distinct"] {
        if body.get(name).is_some_and(|s| !s.is_null()) {
            if let Some(e) = refuse(Unserved::QueryParameter { query: i, name }) {
                return Err(e);
            }
        }
    }
    let mut weight = 1.0;
    match body.remove("federationOptions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            if let Some(name) = o.keys().find(|k| *k != "weight") {
                if let Some(e) = refuse(Unserved::FederationOption { query: i, name }) {
                    return Err(e);
                }
            }
            match o.get("weight") {
                None | Some(Value::Null) => {}
                Some(w) => match w.as_f64() {
                    Some(w) if w >= 0.0 => weight = w,
                    _ => return Err(MeiliError::new(Code::INVALID_MULTI_SEARCH_WEIGHT, format!("Invalid value at `.queries[{i}].federationOptions.weight`: the value of `weight` is invalid, expected a positive float (>= 0.0)."))),
                },
            }
        }
        Some(other) => {
            return Err(MeiliError::new(
                Code::INVALID_MULTI_SEARCH_FEDERATION_OPTIONS,
                format!(
                    "Invalid value type at `.queries[{i}].federationOptions`: expected an object, but found {other}"
                ),
            ));
        }
    }
    Ok(Query { position: i, index_uid, body, weight })
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FacetRequest {
    /// Index uid → facet names (`None`: the index is listed without facets).
    pub by_index: BTreeMap<String, Option<Vec<String>>>,
    /// `mergeFacets`, with its `maxValuesPerFacet`.
    pub merge: Option<Option<usize>>,
}

/// `federation.facetsByIndex` and `federation.mergeFacets`, checked as Meilisearch checks them.
pub fn parse_facets(f: &Map<String, Value>) -> Result<FacetRequest, MeiliError> {
    let mut out = FacetRequest::default();
    let by_index = Code::INVALID_MULTI_SEARCH_FACETS_BY_INDEX;
    match f.get("facetsByIndex") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (uid, facets) in m {
                let names = match facets {
                    Value::Null => None,
                    Value::Array(a) => Some(a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().ok_or_else(
                        || MeiliError::new(by_index, format!("Invalid value type at `.federation.facetsByIndex.{uid}`: expected an array of strings, but found {}", kind(facets))),
                    )?),
                    other => {
                        return Err(MeiliError::new(
                            by_index,
                            format!("Invalid value type at `.federation.facetsByIndex.{uid}`: expected an array, but found {}", kind(other)),
                        ))
                    }
                };
                out.by_index.insert(uid.clone(), names);
            }
        }
        Some(other) => {
            return Err(MeiliError::new(
                by_index,
                format!(
                    "Invalid value type at `.federation.facetsByIndex`: expected an object, but found {}",
                    kind(other)
                ),
            ))
        }
    }
    match f.get("mergeFacets") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| *k != "maxValuesPerFacet") {
                return Err(MeiliError::new(
                    Code::INVALID_MULTI_SEARCH_MERGE_FACETS,
                    format!(
                        "Unknown field `{k}` inside `.federation.mergeFacets`: expected one of `maxValuesPerFacet`"
                    ),
                ));
            }
            let max = match m.get("maxValuesPerFacet") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    MeiliError::new(
                        Code::INVALID_MULTI_SEARCH_MAX_VALUES_PER_FACET,
                        format!("Invalid value type at `.federation.mergeFacets.maxValuesPerFacet`: expected a positive integer, but found {}", kind(v)),
                    )
                })? as usize),
            };
            out.merge = Some(max);
        }
        Some(other) => {
            return Err(MeiliError::new(
                Code::INVALID_MULTI_SEARCH_MERGE_FACETS,
                format!(
                    "Invalid value type at `.federation.mergeFacets`: expected an object, but found {}",
                    kind(other)
                ),
            ))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refuse_all(u: Unserved) -> Option<MeiliError> {
        Some(MeiliError::bad_request(format!("{u:?}")))
    }

    #[test]
    fn facets_are_checked_for_shape() {
        let f = json!({"facetsByIndex": {"a": ["g"], "b": null}, "mergeFacets": {"maxValuesPerFacet": 3}});
        let r = parse_facets(f.as_object().unwrap()).unwrap();
        assert_eq!(r.by_index["a"], Some(vec!["g".to_string()]));
        assert_eq!(r.by_index["b"], None);
        assert_eq!(r.merge, Some(Some(3)));
        let bad = json!({"mergeFacets": {"maxValuesPerFacet": "x"}});
        assert_eq!(
            parse_facets(bad.as_object().unwrap()).unwrap_err().code,
            Code::INVALID_MULTI_SEARCH_MAX_VALUES_PER_FACET
        );
    }

    #[test]
    fn each_side_decides_what_it_serves() {
        let f = json!({"distinct": "genre", "limit": 5});
        assert!(parse_federation(&f, refuse_all).is_err());
        let (window, _) = parse_federation(&f, |_| None).unwrap();
        assert_eq!((window.limit, window.offset), (5, 0));
        let q = json!({"indexUid": "a", "sort": ["p:asc"], "distinct": "g", "federationOptions": {"remote": "x"}});
        let seen = std::cell::RefCell::new(vec![]);
        let parsed = parse_query(3, &q, |u| {
            seen.borrow_mut().push(format!("{u:?}"));
            None
        })
        .unwrap();
        assert_eq!((parsed.position, parsed.index_uid.as_str(), parsed.weight), (3, "a", 1.0));
        assert_eq!(seen.borrow().len(), 3, "sort, distinct and the remote option are each asked about");
        let e = parse_query(0, &json!({"indexUid": "a", "limit": 3}), refuse_all).unwrap_err();
        assert_eq!(e.code, Code::INVALID_MULTI_SEARCH_QUERY_PAGINATION);
        let e = parse_query(0, &json!({"indexUid": "a", "federationOptions": {"weight": -1}}), refuse_all).unwrap_err();
        assert_eq!(e.code, Code::INVALID_MULTI_SEARCH_WEIGHT);
    }
}
