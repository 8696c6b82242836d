//! The function the gateway sends the nodes for an edition (`miroir_gateway::write::edit`),
//! run by the dev node's real Rhai engine next to the client's own function on a node without
//! Miroir: same documents (each keeping its shard), same counts, same errors, whatever the
//! function does (`return` at top level, `fn` definitions, a new `doc`, deletions, `let doc`).

use miroir_devnode::engine::edit::{check_request, Edition};
use miroir_devnode::engine::tasks::Status;
use miroir_devnode::engine::{Engine, Op};
use miroir_gateway::write::edit::wrap;
use serde_json::{json, Value};
use time::OffsetDateTime;

const SHARD: u32 = 3;

fn corpus() -> Vec<Value> {
    (1..=6).map(|n| json!({"id": n, "n": n, "title": format!("t{n}"), "tags": ["a", n.to_string()]})).collect()
}

struct Outcome {
    docs: Vec<Value>,
    status: Status,
    details: Value,
    error: Option<Value>,
}

/// Runs `edition` on one dev node engine holding `docs`; with `shard`, the documents carry
/// Miroir's shard field and the function is wrapped as the gateway wraps it.
fn run(docs: &[Value], edition: &Edition, shard: Option<u32>) -> Outcome {
    let now = OffsetDateTime::UNIX_EPOCH;
    let mut engine = Engine::default();
    let mut docs: Vec<_> = docs.iter().map(|d| d.as_object().unwrap().clone()).collect();
    let mut edition = edition.clone();
    let function = edition.function.clone();
    if let Some(s) = shard {
        docs.iter_mut().for_each(|d| drop(d.insert("_miroir_shard".into(), json!(s))));
        edition.function = wrap(&edition.function).unwrap().for_shard(s);
    }
    engine.enqueue("m", Op::AddDocuments { docs, primary_key: Some("id".into()), replace: true }, now);
    engine.enqueue("m", Op::EditDocuments(edition), now);
    engine.process_all(now);
    let task = engine.tasks.last().unwrap();
    let docs = engine.indexes["m"]
        .docs
        .values()
        .map(|d| {
            let mut d = d.clone();
            if let Some(s) = shard {
                assert_eq!(d.shift_remove("_miroir_shard"), Some(json!(s)), "an edited document lost its shard: {d:?}");
            }
            Value::Object(d)
        })
        .collect();
    let mut error = task.error.as_ref().map(|e| e.to_json());
    if let Some(e) = error.as_mut().filter(|_| shard.is_some()) {
        miroir::edit::unwrap_error(e, &function);
    }
    let mut details = task.details.clone();
    details["function"] = Value::Null;
    Outcome { docs, status: task.status, details, error }
}

fn same(function: &str, context: Option<Value>) -> Outcome {
    let edition = check_request("m", None, context, function.into()).unwrap();
    let single = run(&corpus(), &edition, None);
    let cluster = run(&corpus(), &edition, Some(SHARD));
    assert_eq!(cluster.docs, single.docs, "documents differ for {function:?}");
    assert_eq!(cluster.status, single.status, "{function:?}");
    assert_eq!(cluster.details, single.details, "{function:?}");
    assert_eq!(cluster.error, single.error, "{function:?}");
    single
}

#[test]
fn edits_keep_their_shard_and_do_what_they_do_on_one_node() {
    let edited = same("doc.n += 1; doc.title = `${doc.title}!`; doc.fields = doc.keys().len();", None);
    assert_eq!(edited.docs[0], json!({"id": 1, "n": 2, "title": "t1!", "tags": ["a", "1"], "fields": 4}));
    assert_eq!(
        (edited.details["editedDocuments"].clone(), edited.details["deletedDocuments"].clone()),
        (json!(6), json!(6))
    );

    let deleted = same("if doc.n % 2 == 0 { doc = () }", None);
    assert_eq!(deleted.docs.len(), 3);

    let replaced = same("doc = #{id: doc.id, only: true}", None);
    assert_eq!(replaced.docs[5], json!({"id": 6, "only": true}));

    let with_context = same(
        "doc.k = context.k * doc.n; doc.label = context.labels[doc.n % 2]",
        Some(json!({"k": 10, "labels": ["even", "odd"]})),
    );
    assert_eq!(with_context.docs[1]["k"], 20);

    let returned = same("doc.a = 1;\nif doc.n > 2 { return 7; }\ndoc.b = 2", None);
    assert_eq!((returned.docs[0].get("b"), returned.docs[3].get("b")), (Some(&json!(2)), None));
    let returned = same("doc = #{id: doc.id}; return", None);
    assert_eq!(returned.docs[0], json!({"id": 1}));
    let returned = same("doc = #{id: doc.id, last: true};\nreturn;", None);
    assert_eq!(returned.docs[0], json!({"id": 1, "last": true}));
    // A closure's `return` ends the closure only.
    let filtered = same("doc.tags = doc.tags.filter(|t| { return t != \"a\"; });", None);
    assert_eq!(filtered.docs[0]["tags"], json!(["1"]));
    assert!(wrap("doc.a = [1].map(|x| x + 1);\nreturn;").is_err(), "a closure cannot run in eval");

    let closures = same("doc.tags = doc.tags.map(|t| t + \"!\"); let k = 2; doc.m = [1, 2].map(|x| x * k);", None);
    assert_eq!(closures.docs[0]["tags"], json!(["a!", "1!"]));

    let shadowed = same("let doc = #{id: doc.id, shadow: true};", None);
    assert_eq!(shadowed.docs[0], json!({"id": 1, "shadow": true}));
}

#[test]
fn function_definitions_stay_callable_and_at_their_place() {
    let code = "fn twice(x) { x * 2 }\n  doc.n = twice(doc.n);\n  doc.s = `${show(doc.n)} }`;\nprivate fn show(v) { `<${v}>` } doc.t = 1";
    let out = same(code, None);
    assert_eq!(out.docs[0]["s"], "<2> }");
    // A definition after the code that calls it, and one calling another.
    same("doc.n = f(doc.n);\nfn f(x) { g(x) + 1 }\nfn g(x) { x * 10 }", None);
    // With a top-level `return` (the code then runs in `eval`, the definitions outside it).
    let out = same("fn twice(x) { x * 2 }\nif doc.n > 4 { return; }\n doc.s = `${show(twice(doc.n))} }`;\nprivate fn show(v) { `<${v}>` }", None);
    assert_eq!((out.docs[0]["s"].clone(), out.docs[5].get("s")), (json!("<2> }"), None));
}

#[test]
fn errors_read_as_on_one_node() {
    for code in [
        "doc.n = nope(doc.n)",
        "\n\n   doc.x = 1;\n   doc.y = undefined_var + 1",
        "  doc.a = 1 + missing()",
        "fn f(x) { x.nope() }\ndoc.a = f(1)",
        "doc.a = eval(\"1 + nope()\")",
        "doc.id = 99",
        "if doc.n == 4 { doc = 5 }",
        "doc.t = `${doc.title.nope()}`",
        // With a top-level `return`, the code runs in `eval`.
        "if doc.n > 3 { return; }\n  doc.x = nope(1)",
        "fn f(x) { x.nope() }\nif doc.n > 9 { return }\ndoc.a = f(1)",
        "if doc.n > 9 { return }\ndoc.a = eval(\"1 + nope()\")",
        "if doc.n > 9 { return } doc.id = 99",
    ] {
        let out = same(code, None);
        assert_eq!(out.status, Status::Failed, "{code}");
        assert_eq!(out.details["editedDocuments"], 0);
        assert_eq!(out.details["deletedDocuments"], Value::Null);
        assert_eq!(out.docs, corpus(), "a failed edition changed documents: {code}");
    }
}

/// Rhai's limits hold in the wrapper too (it adds a few operations of its own), but the error of
/// a limit reached carries a position one Meilisearch does not show.
#[test]
fn limits_hold_with_a_position_in_their_message() {
    let edition = check_request("m", None, None, "loop { doc.n += 1 }".into()).unwrap();
    let single = run(&corpus(), &edition, None);
    let cluster = run(&corpus(), &edition, Some(SHARD));
    assert_eq!((single.status, cluster.status), (Status::Failed, Status::Failed));
    let message = |o: &Outcome| o.error.as_ref().unwrap()["message"].as_str().unwrap().to_string();
    let expected =
        "Index `m`: Document edition runtime error encountered while running the function: Too many operations";
    assert_eq!(message(&single), expected);
    assert!(message(&cluster).starts_with(&format!("{expected} (line 1, position ")), "{}", message(&cluster));
    assert_eq!(cluster.docs, corpus());
}

/// Why the gateway refuses a function defining its own `remove`: a script function replaces the
/// map method for `doc.remove(..)` calls, the wrapper's included.
#[test]
fn a_script_fn_remove_replaces_the_map_method() {
    let edition = check_request("m", None, None, "fn remove(k) { this.hit = k }\ndoc.remove(\"n\");".into()).unwrap();
    let single = run(&corpus(), &edition, None);
    assert_eq!(single.docs[0], json!({"id": 1, "n": 1, "title": "t1", "tags": ["a", "1"], "hit": "n"}));
    assert!(wrap(&edition.function).is_err());
}
