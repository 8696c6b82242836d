//! Edit documents by function (`POST /indexes/{uid}/documents/edit`), as Meilisearch 1.50 does it:
//! the request checks (`routes/indexes/documents.rs`), then the task (`process_index_operation.rs`)
//! runs a Rhai script per matching document with milli's engine (`update_by_function.rs`): `doc` is
//! the document, `context` the request's context (a constant), `doc = ()` deletes the document.

use rhai::{Dynamic, Engine as Rhai, OptimizationLevel, Scope};
use serde_json::{json, Map, Value};

use super::{fields, filter, payload, search, settings, Doc, Index};
use crate::error::{Code, DevResult, MeiliError};

/// A validated `documents/edit` request body.
#[derive(Debug, Clone)]
pub struct Edition {
    pub filter: Option<Value>,
    pub context: Option<Map<String, Value>>,
    pub function: String,
}

/// The body as deserr reads `DocumentEditionByFunction`: an object of `filter`, `context` and a
/// required string `function`, unknown fields refused, in the order the fields come.
pub fn parse_body(body: &Value) -> DevResult<(Option<Value>, Option<Value>, String)> {
    let Value::Object(m) = body else {
        return Err(MeiliError::bad_request(format!(
            "Invalid value type: expected an object, but found {}",
            miroir_meili::json::found(body)
        )));
    };
    let (mut filter, mut context, mut function) = (None, None, None);
    for (k, v) in m {
        match k.as_str() {
            "filter" => filter = Some(v.clone()).filter(|v| !v.is_null()),
            "context" => context = Some(v.clone()).filter(|v| !v.is_null()),
            "function" => match v {
                Value::String(s) => function = Some(s.clone()),
                other => {
                    return Err(MeiliError::new(
                        Code::INVALID_DOCUMENT_EDITION_FUNCTION_FILTER,
                        format!(
                            "Invalid value type at `.function`: expected a string, but found {}",
                            miroir_meili::json::found(other)
                        ),
                    ))
                }
            },
            other => {
                return Err(MeiliError::bad_request(format!(
                    "Unknown field `{other}`: expected one of `filter`, `context`, `function`"
                )))
            }
        }
    }
    let function =
        function.ok_or_else(|| MeiliError::new(Code::MISSING_DOCUMENT_EDITION_FUNCTION, "Missing field `function`"))?;
    Ok((filter, context, function))
}

/// The checks the route makes before enqueueing, in its order: the function compiles (with a
/// default engine), the filter parses and is not empty, the context is an object.
pub fn check_request(uid: &str, filter: Option<Value>, context: Option<Value>, function: String) -> DevResult<Edition> {
    if let Err(e) = Rhai::new().compile(&function) {
        return Err(MeiliError::bad_request(e.to_string()));
    }
    if let Some(f) = &filter {
        // Parse errors of a filter string (or of its type) name the index; those of an array's
        // items do not (`parse_filter_array` in `index-scheduler/src/filter.rs`).
        let parsed = filter::parse(f, Code::INVALID_DOCUMENT_FILTER).map_err(|mut e| {
            if !f.is_array() || e.message.starts_with("Invalid syntax for the filter parameter") {
                e.message = format!("Index `{uid}`: {}", e.message);
            }
            e
        })?;
        if parsed.is_none_or(|p| p == filter::Filter::And(vec![])) {
            return Err(MeiliError::new(Code::INVALID_DOCUMENT_FILTER, "Sending an empty filter is forbidden."));
        }
    }
    let context = match context {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(MeiliError::new(Code::INVALID_DOCUMENT_EDITION_CONTEXT, "The context must be an object"))
        }
    };
    Ok(Edition { filter, context, function })
}

/// Details while the task waits (`KindWithContent::default_details`).
pub fn details(e: &Edition) -> Value {
    json!({
        "editedDocuments": null,
        "deletedDocuments": null,
        "originalFilter": e.filter.as_ref().map(Value::to_string),
        "context": e.context,
        "function": e.function,
    })
}

/// milli's engine for document editions, with its limits.
fn engine() -> Rhai {
    let mut engine = Rhai::new();
    engine.set_optimization_level(OptimizationLevel::Full);
    engine.set_max_call_levels(1000);
    engine.set_max_operations(1_000_000);
    engine.set_max_variables(1000);
    engine.set_max_functions(30);
    engine.set_max_expr_depths(100, 1000);
    engine.set_max_string_size(1024 * 1024 * 1024);
    engine.set_max_array_size(10_000);
    engine.set_max_map_size(10_000);
    engine
}

fn edition_error(uid: &str, message: String) -> MeiliError {
    MeiliError::new(Code::EDIT_DOCUMENTS_BY_FUNCTION_ERROR, format!("Index `{uid}`: {message}"))
}

/// Runs the edition on `idx`: every change is computed first and applied only if every document
/// passed, as one Meilisearch task is one transaction. Fills the counts in `details`.
pub fn apply(idx: &mut Index, e: &Edition, details: &mut Value) -> DevResult<()> {
    let uid = idx.uid.clone();
    let view = settings::View::from_full(&idx.settings());
    let cond = search::checked_filter(e.filter.as_ref().unwrap_or(&Value::Null), &view, Code::INVALID_DOCUMENT_FILTER)
        .map_err(|mut err| {
            err.message = format!("Index `{uid}`: {}", err.message);
            err
        })?;
    let candidates: Vec<u64> =
        idx.docs.iter().filter(|(_, d)| cond.as_ref().is_none_or(|f| f.matches(d))).map(|(i, _)| *i).collect();
    // Meilisearch 1.50 reports every candidate as both edited and deleted.
    let count = candidates.len();
    if candidates.is_empty() {
        details["editedDocuments"] = json!(0);
        details["deletedDocuments"] = json!(0);
        return Ok(());
    }
    let pk = idx.primary_key.clone().unwrap_or_default();
    let engine = engine();
    let ast = engine.compile(&e.function).map_err(|err| {
        edition_error(&uid, format!("Document edition runtime error encountered while compiling the function: {err}"))
    })?;
    let context: Option<Dynamic> = match &e.context {
        Some(c) => Some(
            serde_json::from_value(Value::Object(c.clone()))
                .map_err(|err| MeiliError::new(Code::INTERNAL, err.to_string()))?,
        ),
        None => None,
    };
    let mut changes: Vec<(u64, Option<Doc>)> = Vec::new();
    for internal in candidates {
        let old = &idx.docs[&internal];
        let rhai_doc: rhai::Map = old
            .iter()
            .map(|(k, v)| Ok((k.as_str().into(), serde_json::from_value::<Dynamic>(v.clone())?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|err| MeiliError::new(Code::INTERNAL, err.to_string()))?;
        let mut scope = Scope::new();
        if let Some(c) = &context {
            scope.push_constant_dynamic("context", c.clone());
        }
        scope.push("doc", rhai_doc);
        // The script's value is ignored: only what it left in `doc` counts.
        let _ = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast).map_err(|err| {
            edition_error(&uid, format!("Document edition runtime error encountered while running the function: {err}"))
        })?;
        let new = scope.remove::<Dynamic>("doc").expect("doc stays in the scope");
        if new.is_unit() {
            changes.push((internal, None));
            continue;
        }
        let Some(map) = new.try_cast::<rhai::Map>() else {
            return Err(edition_error(&uid, "Document editions must keep documents as objects".into()));
        };
        let new: Map<String, Value> = map
            .into_iter()
            .map(|(k, v)| Ok((k.to_string(), serde_json::to_value(&v)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|err| MeiliError::new(Code::INTERNAL, err.to_string()))?;
        if &new == old {
            continue;
        }
        let old_id = filter::lookup(old, &pk).and_then(payload::document_id);
        let new_id = filter::lookup(&new, &pk).ok_or_else(|| {
            MeiliError::new(
                Code::MISSING_DOCUMENT_ID,
                format!("Index `{uid}`: Document doesn't have a `{pk}` attribute: `{}`.", Value::Object(new.clone())),
            )
        })?;
        let new_id = payload::document_id(new_id).ok_or_else(|| payload::invalid_id(new_id))?;
        if old_id.as_deref() != Some(new_id.as_str()) {
            return Err(edition_error(&uid, "Document editions cannot modify a document's primary key".into()));
        }
        changes.push((internal, Some(in_old_order(old, new))));
    }
    for (internal, doc) in changes {
        match doc {
            Some(d) => {
                fields::record(&mut idx.fields, &d);
                idx.docs.insert(internal, d);
            }
            None => {
                idx.docs.remove(&internal);
                idx.ids.retain(|_, i| *i != internal);
            }
        }
    }
    details["editedDocuments"] = json!(count);
    details["deletedDocuments"] = json!(count);
    Ok(())
}

/// The edited document with the fields it kept in their old order, new ones after (a Rhai map is
/// sorted by key; milli orders fields by their id, first seen first).
fn in_old_order(old: &Doc, mut new: Doc) -> Doc {
    let mut out = Doc::new();
    for k in old.keys() {
        if let Some(v) = new.shift_remove(k) {
            out.insert(k.clone(), v);
        }
    }
    out.extend(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(docs: Value) -> Index {
        let mut idx = Index::new("books", Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
        for (i, d) in docs.as_array().unwrap().iter().enumerate() {
            let d = d.as_object().unwrap().clone();
            idx.ids.insert(payload::document_id(&d["id"]).unwrap(), i as u64);
            idx.docs.insert(i as u64, d);
        }
        idx
    }

    fn run(idx: &mut Index, function: &str, context: Option<Value>) -> DevResult<Value> {
        let e = check_request("books", None, context, function.into())?;
        let mut d = details(&e);
        apply(idx, &e, &mut d).map(|()| d)
    }

    #[test]
    fn edits_deletes_and_counts_every_candidate() {
        let mut idx = index(json!([{"id": 1, "n": 1}, {"id": 2, "n": 2}, {"id": 3, "n": 3}]));
        let d =
            run(&mut idx, "if doc.n == 2 { doc = () } else { doc.n += context.k }", Some(json!({"k": 10}))).unwrap();
        assert_eq!((d["editedDocuments"].clone(), d["deletedDocuments"].clone()), (json!(3), json!(3)));
        let docs: Vec<Value> = idx.docs.values().cloned().map(Value::Object).collect();
        assert_eq!(docs, vec![json!({"id": 1, "n": 11}), json!({"id": 3, "n": 13})]);
        assert!(idx.get("2").is_none());
    }

    #[test]
    fn a_top_level_return_stops_the_script_and_keeps_doc() {
        let mut idx = index(json!([{"id": 1, "n": 1}]));
        run(&mut idx, "doc.a = 1; return 5; doc.b = 2", None).unwrap();
        assert_eq!(Value::Object(idx.docs[&0].clone()), json!({"id": 1, "n": 1, "a": 1}));
    }

    #[test]
    fn failures_change_nothing() {
        let mut idx = index(json!([{"id": 1, "n": 1}, {"id": 2, "n": 2}]));
        let before = idx.docs.clone();
        let e = run(&mut idx, "doc.id = 7", None).unwrap_err();
        assert_eq!(e.message, "Index `books`: Document editions cannot modify a document's primary key");
        assert_eq!(e.code, Code::EDIT_DOCUMENTS_BY_FUNCTION_ERROR);
        let e = run(&mut idx, "doc.n = 0; if doc.id == 2 { doc = 5 }", None).unwrap_err();
        assert_eq!(e.message, "Index `books`: Document editions must keep documents as objects");
        let e = run(&mut idx, "doc.n = nope(1)", None).unwrap_err();
        assert!(
            e.message.starts_with(
                "Index `books`: Document edition runtime error encountered while running the function: Function not found: nope"
            ),
            "{}",
            e.message
        );
        assert_eq!(idx.docs, before);
    }

    #[test]
    fn the_request_is_checked_in_meilisearchs_order() {
        let e = parse_body(&json!({"filter": "a = 1"})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (Code::MISSING_DOCUMENT_EDITION_FUNCTION, "Missing field `function`"));
        let e = parse_body(&json!({"function": 1})).unwrap_err();
        assert_eq!(e.code, Code::INVALID_DOCUMENT_EDITION_FUNCTION_FILTER);
        let e = parse_body(&json!({"function": "x", "nope": 1})).unwrap_err();
        assert_eq!(e.message, "Unknown field `nope`: expected one of `filter`, `context`, `function`");
        let e = check_request("books", None, None, "doc.a = ".into()).unwrap_err();
        assert_eq!(e.code, Code::BAD_REQUEST);
        let e = check_request("books", Some(json!("  ")), None, "1".into()).unwrap_err();
        assert_eq!(e.message, "Sending an empty filter is forbidden.");
        let e = check_request("books", None, Some(json!([1])), "1".into()).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::INVALID_DOCUMENT_EDITION_CONTEXT, "The context must be an object")
        );
    }
}
