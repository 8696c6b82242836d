//! Document routes of the dev node: additions (JSON, NDJSON, CSV), deletions, get and browse.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::routes::{ct, enqueue, object, ok, query, query_to_body, Body, Res, St};
use super::{json_body, now, Shared};
use crate::engine::payload::{self, Format};
use crate::engine::{check_index_uid, edit, search, Op};
use crate::error::{Code, DevResult, MeiliError};

/// `UpdateDocumentsQuery` (`crates/meilisearch/src/routes/indexes/documents.rs`): unknown parameters
/// are refused; a CSV delimiter is one ASCII character and only goes with `text/csv`.
async fn add_documents(s: &Shared, uid: &str, q: &Option<String>, h: &HeaderMap, b: &[u8], replace: bool) -> Res {
    check_index_uid(uid)?;
    let params = query(q);
    let mut primary_key = None;
    let mut delimiter = None;
    let mut metadata = None;
    for (k, v) in &params {
        match k.as_str() {
            "primaryKey" => primary_key = Some(v.clone()),
            "csvDelimiter" => delimiter = Some(csv_delimiter(v)?),
            "customMetadata" => metadata = Some(v.clone()),
            "skipCreation" => {
                return Err(MeiliError::bad_request(format!("The dev node does not support the `{k}` parameter.")))
            }
            other => {
                return Err(MeiliError::bad_request(format!(
                    "Unknown parameter `{other}`: expected one of `primaryKey`, `csvDelimiter`, `customMetadata`, `skipCreation`"
                )))
            }
        }
    }
    let format = Format::from_content_type(ct(h))?;
    if delimiter.is_some() && format != Format::Csv {
        let mime = ct(h).unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
        return Err(MeiliError::new(Code::INVALID_CONTENT_TYPE, format!("The Content-Type `{mime}` does not support the use of a csv delimiter. The csv delimiter can only be used with the Content-Type `text/csv`.")));
    }
    let docs = payload::parse(b, format, delimiter.unwrap_or(b','))?;
    let summary =
        s.engine().enqueue_with_metadata(uid, Op::AddDocuments { docs, primary_key, replace }, metadata, now());
    s.work.notify_one();
    ok(StatusCode::ACCEPTED, summary)
}

/// deserr's `char` (exactly one character), then `from_char_csv_delimiter` (ASCII).
fn csv_delimiter(d: &str) -> DevResult<u8> {
    let mut chars = d.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c as u8),
        (Some(c), None) => Err(MeiliError::new(
            Code::INVALID_DOCUMENT_CSV_DELIMITER,
            format!("csv delimiter must be an ascii character. Found: `{c}`"),
        )),
        _ => Err(MeiliError::new(
            Code::INVALID_DOCUMENT_CSV_DELIMITER,
            format!(
                "Invalid value in parameter `csvDelimiter`: expected a string of one character, but found the following string of {} characters: `{d}`",
                d.chars().count()
            ),
        )),
    }
}

pub(super) async fn add_replace(
    State(s): St,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    Body(b): Body,
) -> Res {
    add_documents(&s, &uid, &q, &h, &b, true).await
}

pub(super) async fn add_update(
    State(s): St,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    Body(b): Body,
) -> Res {
    add_documents(&s, &uid, &q, &h, &b, false).await
}

pub(super) async fn clear(State(s): St, Path(uid): Path<String>) -> Res {
    check_index_uid(&uid)?;
    enqueue(&s, &uid, Op::Clear)
}

pub(super) async fn delete_batch(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    match json_body(ct(&h), &b)? {
        Value::Array(ids) => enqueue(&s, &uid, Op::DeleteIds(ids)),
        other => Err(MeiliError::bad_request(format!(
            "Json deserialize error: invalid type: {other}, expected a sequence at line 1 column 0"
        ))),
    }
}

pub(super) async fn delete_filter(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let m = object(json_body(ct(&h), &b)?)?;
    let Some(filter) = m.get("filter").cloned() else {
        return Err(MeiliError::new(Code::MISSING_DOCUMENT_FILTER, "Missing field `filter`"));
    };
    // Syntax is checked at once (400); filterability is checked by the task, as in Meilisearch.
    crate::engine::filter::parse(&filter, Code::INVALID_DOCUMENT_FILTER)?;
    enqueue(&s, &uid, Op::DeleteFilter(filter))
}

/// `POST /indexes/{uid}/documents/edit`: the body is read first (actix's extractor), then the
/// feature flag, the index uid, the function, the filter and the context are checked.
pub(super) async fn edit(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    let (filter, context, function) = edit::parse_body(&json_body(ct(&h), &b)?)?;
    if !s.engine().features.get("editDocumentsByFunction").copied().unwrap_or(false) {
        return Err(MeiliError::new(
            Code::FEATURE_NOT_ENABLED,
            "Using the documents edit route requires enabling the `edit documents by function` experimental feature. See https://github.com/orgs/meilisearch/discussions/762",
        ));
    }
    check_index_uid(&uid)?;
    let edition = edit::check_request(&uid, filter, context, function)?;
    enqueue(&s, &uid, Op::EditDocuments(edition))
}

pub(super) async fn delete_document(State(s): St, Path((uid, id)): Path<(String, String)>) -> Res {
    check_index_uid(&uid)?;
    enqueue(&s, &uid, Op::DeleteIds(vec![Value::String(id)]))
}

pub(super) async fn get_document(State(s): St, Path((uid, id)): Path<(String, String)>, RawQuery(q): RawQuery) -> Res {
    check_index_uid(&uid)?;
    let params = query(&q);
    // `GetDocument` (`fields`, `retrieveVectors`, `useNetwork`) is parsed before the index is read.
    if let Some((k, _)) =
        params.iter().find(|(k, _)| !["fields", "retrieveVectors", "useNetwork"].contains(&k.as_str()))
    {
        return Err(MeiliError::bad_request(format!(
            "Unknown parameter `{k}`: expected one of `fields`, `retrieveVectors`, `useNetwork`"
        )));
    }
    let e = s.engine();
    let idx = e.index(&uid)?;
    let doc =
        idx.get(&id).ok_or_else(|| MeiliError::new(Code::DOCUMENT_NOT_FOUND, format!("Document `{id}` not found.")))?;
    let retrieve = match params.iter().find(|(k, _)| k == "retrieveVectors").map(|(_, v)| v.as_str()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(MeiliError::new(
                Code::INVALID_DOCUMENT_RETRIEVE_VECTORS,
                format!("Invalid value in parameter `retrieveVectors`: could not parse `{v}` as a boolean, expected either `true` or `false`"),
            ))
        }
    };
    let fields: Option<Vec<String>> = params
        .into_iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut out = search::document_fields(doc, fields.as_deref());
    crate::engine::vectors::present(&mut out, doc, retrieve);
    ok(StatusCode::OK, Value::Object(out))
}

pub(super) async fn browse_get(State(s): St, Path(uid): Path<String>, RawQuery(q): RawQuery) -> Res {
    check_index_uid(&uid)?;
    let body = query_to_body(query(&q), &["fields", "ids"], &["offset", "limit"], &["retrieveVectors"], "document")?;
    let e = s.engine();
    ok(StatusCode::OK, search::browse(e.index(&uid)?, &body)?)
}

pub(super) async fn browse_post(State(s): St, Path(uid): Path<String>, h: HeaderMap, Body(b): Body) -> Res {
    check_index_uid(&uid)?;
    let body = object(json_body(ct(&h), &b)?)?;
    let e = s.engine();
    ok(StatusCode::OK, search::browse(e.index(&uid)?, &body)?)
}
