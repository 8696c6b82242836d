//! Conformance of the dev node with Meilisearch.
//!
//! `tests/conformance/script.json` is a list of requests, each with the answer Meilisearch gives
//! (status, error code, deterministic values, top-level keys, and for writes the final task),
//! established from Meilisearch's source and documentation. The dev node must give those answers.
//! When `MEILI_BIN` names a Meilisearch binary, the script also runs against a real Meilisearch
//! started here, which must give the same answers, and both answers must have the same structure
//! (same keys, same JSON types) at every step.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use miroir_devnode::{self as devnode, DevNodeConfig};
use serde_json::{Map, Value};

const KEY: &str = "conformance-master-key-0123456789";

/// Keys whose values differ between runs or implementations; compared by type only (and may be
/// null on one side, since they depend on timing).
const VOLATILE: &[&str] = &[
    "enqueuedAt",
    "startedAt",
    "finishedAt",
    "duration",
    "processingTimeMs",
    "requestUid",
    "createdAt",
    "updatedAt",
    "batchUid",
    "message",
];

struct Target {
    name: &'static str,
    base: String,
    client: reqwest::Client,
}

#[derive(Debug)]
struct Outcome {
    status: u16,
    body: Value,
    task: Option<Value>,
}

/// A Meilisearch process started for this test, killed when dropped.
struct Meili {
    child: Child,
    /// Deleted after the process is gone.
    _dir: tempfile::TempDir,
}

impl Drop for Meili {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn start_meili(bin: &str) -> (Meili, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new(bin)
        .args(["--db-path", &dir.path().join("db").to_string_lossy()])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(["--master-key", KEY, "--no-analytics", "--env", "development"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start MEILI_BIN");
    let guard = Meili { child, _dir: dir };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            return (guard, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Meilisearch did not become healthy at {base}");
}

async fn send(t: &Target, step: &Map<String, Value>) -> Outcome {
    let method: reqwest::Method = step["method"].as_str().unwrap_or("GET").parse().expect("method");
    let mut req = t.client.request(method, format!("{}{}", t.base, step["path"].as_str().expect("path")));
    match step.get("auth").and_then(Value::as_str).unwrap_or("master") {
        "none" => {}
        "bad" => req = req.header("Authorization", "Bearer wrong-key"),
        _ => req = req.header("Authorization", format!("Bearer {KEY}")),
    }
    let body: Option<Vec<u8>> = match (step.get("raw"), step.get("body")) {
        (Some(Value::String(raw)), _) => Some(raw.clone().into_bytes()),
        (_, Some(b)) => Some(serde_json::to_vec(b).expect("body")),
        _ => None,
    };
    if let Some(b) = body {
        match step.get("contentType").and_then(Value::as_str) {
            Some("none") => {}
            Some(ct) => req = req.header("Content-Type", ct),
            None => req = req.header("Content-Type", "application/json"),
        }
        req = req.body(b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{}: {e}", t.name));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let body: Value =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    let mut task = None;
    if step.get("wait").and_then(Value::as_bool) == Some(true) {
        let uid = body["taskUid"].as_u64().unwrap_or_else(|| panic!("{}: no taskUid in {body}", t.name));
        for _ in 0..500 {
            let r = t
                .client
                .get(format!("{}/tasks/{uid}", t.base))
                .header("Authorization", format!("Bearer {KEY}"))
                .send()
                .await
                .expect("task");
            let v: Value = r.json().await.expect("task json");
            if matches!(v["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
                task = Some(v);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(task.is_some(), "{}: task {uid} never finished", t.name);
    }
    Outcome { status, body, task }
}

/// `expected` is contained in `actual`: objects by their listed keys, arrays element by element
/// with the same length, numbers by value (1 == 1.0).
fn contains(expected: &Value, actual: &Value, path: &str, errs: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match a.get(k) {
                    Some(av) => contains(v, av, &format!("{path}.{k}"), errs),
                    None => errs.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                errs.push(format!("{path}: expected {} items, got {}: {actual}", e.len(), a.len()));
                return;
            }
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                contains(x, y, &format!("{path}[{i}]"), errs);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        (x, y) if x == y => {}
        (x, y) => errs.push(format!("{path}: expected {x}, got {y}")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same keys and JSON types everywhere; volatile keys may be null on one side.
fn same_shape(a: &Value, b: &Value, path: &str, errs: &mut Vec<String>) {
    let last = path.rsplit('.').next().unwrap_or("");
    if VOLATILE.contains(&last) && (a.is_null() || b.is_null()) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            let mut sx = kx.clone();
            let mut sy = ky.clone();
            sx.sort();
            sy.sort();
            if sx != sy {
                errs.push(format!("{path}: keys differ: dev {kx:?} vs meilisearch {ky:?}"));
            }
            for (k, v) in x {
                if let Some(w) = y.get(k) {
                    same_shape(v, w, &format!("{path}.{k}"), errs);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                errs.push(format!("{path}: {} items vs {}", x.len(), y.len()));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same_shape(v, w, &format!("{path}[{i}]"), errs);
            }
        }
        (x, y) if kind(x) != kind(y) => errs.push(format!("{path}: {} vs {}", kind(x), kind(y))),
        _ => {}
    }
}

fn check(step: &Map<String, Value>, o: &Outcome, errs: &mut Vec<String>) {
    let exp = step["expect"].as_object().expect("expect");
    let status = exp["status"].as_u64().expect("expect.status") as u16;
    if o.status != status {
        errs.push(format!("status: expected {status}, got {} ({})", o.status, o.body));
    }
    if let Some(code) = exp.get("code") {
        contains(code, &o.body["code"], "code", errs);
        for k in ["message", "code", "type", "link"] {
            if !o.body[k].is_string() {
                errs.push(format!("error object lacks `{k}`: {}", o.body));
            }
        }
        if let Some(ty) = exp.get("type") {
            contains(ty, &o.body["type"], "type", errs);
        }
    }
    if let Some(body) = exp.get("body") {
        contains(body, &o.body, "body", errs);
    }
    // The keys of every hit (or multi-search result), when a step shows which keys each may carry.
    for (exp_key, field) in [("hitKeys", "hits"), ("resultKeys", "results")] {
        let Some(hit_keys) = exp.get(exp_key).and_then(Value::as_array) else { continue };
        let hits = o.body[field].as_array().cloned().unwrap_or_default();
        if hits.len() != hit_keys.len() {
            errs.push(format!("{exp_key}: expected {} items, got {}", hit_keys.len(), hits.len()));
        }
        for (i, (want, hit)) in hit_keys.iter().zip(&hits).enumerate() {
            let mut want: Vec<&str> = want.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let mut got: Vec<&str> =
                hit.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                errs.push(format!("{field}[{i}] keys: expected {want:?}, got {got:?}"));
            }
        }
    }
    if let Some(keys) = exp.get("keys").and_then(Value::as_array) {
        let mut want: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        let mut got: Vec<&str> = o.body.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            errs.push(format!("keys: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(task) = exp.get("task") {
        match &o.task {
            Some(t) => {
                contains(task, t, "task", errs);
                let mut got: Vec<&str> =
                    t.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
                got.sort_unstable();
                let mut want = vec![
                    "uid",
                    "batchUid",
                    "indexUid",
                    "status",
                    "type",
                    "canceledBy",
                    "details",
                    "error",
                    "duration",
                    "enqueuedAt",
                    "startedAt",
                    "finishedAt",
                ];
                // Shown only when the write carried one (`skip_serializing_if = "Option::is_none"`).
                if task.get("customMetadata").is_some() {
                    want.push("customMetadata");
                }
                want.sort_unstable();
                if got != want {
                    errs.push(format!("task keys: {got:?}"));
                }
            }
            None => errs.push("no task awaited".into()),
        }
    }
    if o.status == 202 {
        contains(&serde_json::json!({"status": "enqueued"}), &o.body, "body", errs);
        for k in ["taskUid", "indexUid", "status", "type", "enqueuedAt"] {
            if o.body.get(k).is_none() {
                errs.push(format!("summarized task lacks `{k}`"));
            }
        }
    }
}

fn load_script() -> Vec<Map<String, Value>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/script.json");
    let text = std::fs::read_to_string(path).expect("script.json");
    let v: Value = serde_json::from_str(&text).expect("script.json is JSON");
    v.as_array().expect("array of steps").iter().map(|s| s.as_object().cloned().expect("step object")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_node_conforms_to_meilisearch() {
    let script = load_script();
    assert!(script.len() >= 60, "the script must have at least 60 steps, has {}", script.len());

    let node = devnode::start(DevNodeConfig { listen: None, master_key: Some(KEY.into()) }).await.expect("dev node");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let dev = Target { name: "dev node", base: node.url(), client: client.clone() };
    let meili = match std::env::var("MEILI_BIN") {
        Ok(bin) if !bin.is_empty() => {
            let (guard, base) = start_meili(&bin).await;
            Some((guard, Target { name: "meilisearch", base, client }))
        }
        _ => None,
    };

    let mut failures = Vec::new();
    for (i, step) in script.iter().enumerate() {
        let name = step.get("name").and_then(Value::as_str).unwrap_or("?");
        let mut errs = Vec::new();
        let d = send(&dev, step).await;
        check(step, &d, &mut errs);
        if let Some((_, real)) = &meili {
            let r = send(real, step).await;
            let mut real_errs = Vec::new();
            check(step, &r, &mut real_errs);
            errs.extend(real_errs.into_iter().map(|e| format!("meilisearch: {e}")));
            if d.status != r.status {
                errs.push(format!("status dev {} vs meilisearch {}", d.status, r.status));
            }
            same_shape(&d.body, &r.body, "body", &mut errs);
            if let (Some(a), Some(b)) = (&d.task, &r.task) {
                same_shape(a, b, "task", &mut errs);
            }
        }
        for e in errs {
            failures.push(format!("step {i} `{name}` {} {}: {e}", step["method"], step["path"]));
        }
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}
