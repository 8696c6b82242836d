//! `/keys` and authorisation by API key, answered like Meilisearch: fields, validation, errors,
//! default keys, and a matrix of keys × routes. In-process with a `LocalCluster` and no nodes:
//! every request here is answered from the routing map.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use miroir::command::Command;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::local::LocalCluster;
use miroir_gateway::http::auth::token::key_value;
use miroir_gateway::write::tasks::now_millis;
use miroir_meili::keys::ApiKey;
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::{json, Value};
use tower::ServiceExt;

const MASTER: &str = "api-keys-test-master-key";

struct Gw {
    router: axum::Router,
    cluster: Arc<LocalCluster>,
}

async fn gateway(master: Option<&str>) -> Gw {
    let cluster = LocalCluster::new();
    for cmd in [
        Command::AddGroup { id: "g".into() },
        Command::AddNode { id: "n1".into(), url: "http://127.0.0.1:9".into(), group: "g".into() },
        Command::CreateIndex { uid: "movies".into(), primary_key: Some("id".into()), shards: Some(2), rf: None, at: 0 },
        Command::CreateIndex { uid: "movies_fr".into(), primary_key: None, shards: Some(2), rf: None, at: 0 },
        Command::CreateIndex { uid: "books".into(), primary_key: None, shards: Some(2), rf: None, at: 0 },
    ] {
        cluster.apply(cmd).unwrap();
    }
    let nodes = NodeClient::new(Arc::new(HttpTransport::new(None, Duration::from_millis(200))));
    let app = AppState::new(cluster.clone(), nodes);
    app.install(Arc::new(cluster.read(|s| s.routing_map())));
    app.disable_fencing();
    tokio::spawn(miroir_gateway::cluster::sync::follow_map(app.clone()));
    if let Some(k) = master {
        app.require_master_key(k.into());
    }
    miroir_gateway::http::auth::ensure_default_keys(&app).await.unwrap();
    Gw { router: router(app), cluster }
}

impl Gw {
    async fn call(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn create(&self, body: Value) -> Value {
        let (s, k) = self.call("POST", "/keys", Some(MASTER), Some(body)).await;
        assert_eq!(s, 201, "{k}");
        k
    }

    fn default_key(&self, name: &str) -> String {
        let uid = self
            .cluster
            .read(|s| s.api_keys.values().find(|k| k.name.as_deref() == Some(name)).map(|k| k.uid.clone()).unwrap());
        key_value(MASTER, &uid)
    }
}

fn assert_error(got: &(u16, Value), status: u16, code: &str, message: &str) {
    assert_eq!((got.0, got.1["code"].as_str()), (status, Some(code)), "{}", got.1);
    assert_eq!(got.1["message"], message, "{}", got.1);
    assert_eq!(got.1["link"], format!("https://docs.meilisearch.com/errors#{code}"));
}

#[tokio::test]
async fn default_keys_exist_like_on_a_fresh_meilisearch() {
    let gw = gateway(Some(MASTER)).await;
    let (s, list) = gw.call("GET", "/keys", Some(MASTER), None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!((list["total"].clone(), list["offset"].clone(), list["limit"].clone()), (json!(4), json!(0), json!(20)));
    let names: Vec<&str> = list["results"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Default Search API Key", "Default Admin API Key", "Default Read-Only Admin API Key", "Default Chat API Key"]
    );
    for k in list["results"].as_array().unwrap() {
        // The value is HMAC-SHA256(master key, uid), as Meilisearch derives it.
        assert_eq!(k["key"], key_value(MASTER, k["uid"].as_str().unwrap()));
        let fields: Vec<&String> = k.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["name", "description", "key", "uid", "actions", "indexes", "expiresAt", "createdAt", "updatedAt"]
        );
        assert_eq!((k["indexes"].clone(), k["expiresAt"].clone()), (json!(["*"]), Value::Null));
    }
    assert_eq!(list["results"][0]["actions"], json!(["search"]));
    assert_eq!(list["results"][1]["actions"], json!(["*"]));
    assert_eq!(list["results"][2]["actions"], json!(["*.get", "keys.get"]));
    // A second gateway (or a restart) does not create them again.
    let again = gw.cluster.read(|s| s.api_keys.len());
    assert_eq!(again, 4);
    let (_, page) = gw.call("GET", "/keys?offset=1&limit=2", Some(MASTER), None).await;
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert_eq!((page["total"].clone(), page["results"][0]["name"].clone()), (json!(4), json!("Default Admin API Key")));
}

#[tokio::test]
async fn create_get_patch_delete_by_uid_or_key() {
    let gw = gateway(Some(MASTER)).await;
    let uid = "01b4bc42-eb33-4041-b481-254d00cce834";
    let created = gw
        .create(json!({"uid": uid.to_uppercase(), "name": "Indexing", "actions": ["documents.add"], "indexes": ["products"], "expiresAt": "2999-11-13"}))
        .await;
    assert_eq!(created["uid"], uid, "uids are stored hyphenated and lowercase");
    assert_eq!(created["key"], key_value(MASTER, uid));
    assert_eq!(created["description"], Value::Null);
    assert_eq!(created["expiresAt"], "2999-11-13T00:00:00Z");
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let value = created["key"].as_str().unwrap().to_string();
    for param in [uid, value.as_str()] {
        let (s, got) = gw.call("GET", &format!("/keys/{param}"), Some(MASTER), None).await;
        assert_eq!((s, got["uid"].as_str()), (200, Some(uid)), "{got}");
    }
    let (s, patched) = gw
        .call("PATCH", &format!("/keys/{value}"), Some(MASTER), Some(json!({"description": "d", "name": null})))
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!((patched["name"].clone(), patched["description"].clone()), (Value::Null, json!("d")));
    assert_eq!(patched["actions"], json!(["documents.add"]));
    let (s, _) = gw.call("DELETE", &format!("/keys/{uid}"), Some(MASTER), None).await;
    assert_eq!(s, 204);
    let gone = gw.call("GET", &format!("/keys/{uid}"), Some(MASTER), None).await;
    assert_error(&gone, 404, "api_key_not_found", &format!("API key `{uid}` not found."));
    let gone = gw.call("DELETE", &format!("/keys/{value}"), Some(MASTER), None).await;
    assert_error(&gone, 404, "api_key_not_found", &format!("API key `{value}` not found."));
    let dup = json!({"uid": uid, "actions": ["search"], "indexes": ["*"], "expiresAt": null});
    gw.create(dup.clone()).await;
    let again = gw.call("POST", "/keys", Some(MASTER), Some(dup)).await;
    assert_error(
        &again,
        409,
        "api_key_already_exists",
        &format!("`uid` field value `{uid}` is already an existing API key."),
    );
}

#[tokio::test]
async fn bad_key_bodies_are_refused_like_meilisearch() {
    let gw = gateway(Some(MASTER)).await;
    let before = gw.cluster.read(|s| s.api_keys.clone());
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"description": ["doggo"]}), "invalid_api_key_description", "Invalid value type at `.description`: expected a string, but found an array: `[\"doggo\"]`"),
        (json!({"name": {"name": "products"}}), "invalid_api_key_name", "Invalid value type at `.name`: expected a string, but found an object: `{\"name\":\"products\"}`"),
        // Meilisearch's own tests (auth/api_keys.rs) name a number's kind as deserr does.
        (json!({"name": 13}), "invalid_api_key_name", "Invalid value type at `.name`: expected a string, but found a positive integer: `13`"),
        (json!({"description": -1.5}), "invalid_api_key_description", "Invalid value type at `.description`: expected a string, but found a number: `-1.5`"),
        (json!({"uid": ["doggo"]}), "invalid_api_key_uid", "Invalid value type at `.uid`: expected a string, but found an array: `[\"doggo\"]`"),
        (json!({"actions": "doggo"}), "invalid_api_key_actions", "Invalid value type at `.actions`: expected an array, but found a string: `\"doggo\"`"),
        (json!({"indexes": "doggo"}), "invalid_api_key_indexes", "Invalid value type at `.indexes`: expected an array, but found a string: `\"doggo\"`"),
        (json!({"indexes": ["good doggo"]}), "invalid_api_key_indexes", "Invalid value at `.indexes[0]`: `good doggo` is not a valid index uid pattern. Index uid patterns can be an integer or a string containing only alphanumeric characters, hyphens (-), underscores (_), and optionally end with a star (*)."),
        (json!({"expiresAt": {"name": "products"}}), "invalid_api_key_expires_at", "Invalid value type at `.expiresAt`: expected a string, but found an object: `{\"name\":\"products\"}`"),
        (json!({"expiresAt": "2010-11-13T00:00:00Z"}), "invalid_api_key_expires_at", "Invalid value at `.expiresAt`: `2010-11-13T00:00:00Z` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.\n"),
        (json!({"expires_at": "doggo"}), "bad_request", "Unknown field `expires_at`: did you mean `expiresAt`? expected one of `description`, `name`, `uid`, `actions`, `indexes`, `expiresAt`"),
        (json!({"indexes": ["doggo"], "expiresAt": null}), "missing_api_key_actions", "Missing field `actions`"),
        (json!({"actions": ["*"], "expiresAt": null}), "missing_api_key_indexes", "Missing field `indexes`"),
        (json!({"actions": ["*"], "indexes": ["doggo"]}), "missing_api_key_expires_at", "Missing field `expiresAt`"),
        (json!({"actions": ["*"], "indexes": ["doggo"], "expiresAt": null, "doggo": "bork"}), "bad_request", "Unknown field `doggo`: expected one of `description`, `name`, `uid`, `actions`, `indexes`, `expiresAt`"),
        (json!({"actions": ["version"], "indexes": ["products"], "expiresAt": null}), "index_scoped_api_key_with_global_action", "cannot create index-scoped API key with global action `\"version\"`\n  - Hint: remove action `\"version\"` from the action list, or remove `indexes` to make the key global"),
    ];
    for (body, code, message) in cases {
        let got = gw.call("POST", "/keys", Some(MASTER), Some(body.clone())).await;
        assert_error(&got, 400, code, message);
    }
    let unknown = gw.call("POST", "/keys", Some(MASTER), Some(json!({"actions": ["doc.add"]}))).await;
    assert_eq!(unknown.1["code"], "invalid_api_key_actions");
    let m = unknown.1["message"].as_str().unwrap();
    assert!(
        m.starts_with("Unknown value `doc.add` at `.actions[0]`: expected one of `*`, `search`, `documents.*`,"),
        "{m}"
    );
    assert!(m.ends_with("`dynamicSearchRules.delete`, `dynamicSearchRules.*`"), "{m}");
    let bad_uid = gw.call("POST", "/keys", Some(MASTER), Some(json!({"uid": "doggo"}))).await;
    assert_eq!((bad_uid.0, bad_uid.1["code"].as_str()), (400, Some("invalid_api_key_uid")));

    let uid = gw.cluster.read(|s| s.api_keys.keys().next().unwrap().clone());
    let patches: Vec<(Value, &str, &str)> = vec![
        (
            json!({"description": ["doggo"]}),
            "invalid_api_key_description",
            "Invalid value type at `.description`: expected a string, but found an array: `[\"doggo\"]`",
        ),
        (
            json!({"uid": "doggo"}),
            "immutable_api_key_uid",
            "Immutable field `uid`: expected one of `description`, `name`",
        ),
        (
            json!({"actions": "doggo"}),
            "immutable_api_key_actions",
            "Immutable field `actions`: expected one of `description`, `name`",
        ),
        (
            json!({"indexes": "doggo"}),
            "immutable_api_key_indexes",
            "Immutable field `indexes`: expected one of `description`, `name`",
        ),
        (
            json!({"expiresAt": "doggo"}),
            "immutable_api_key_expires_at",
            "Immutable field `expiresAt`: expected one of `description`, `name`",
        ),
        (
            json!({"createdAt": "doggo"}),
            "immutable_api_key_created_at",
            "Immutable field `createdAt`: expected one of `description`, `name`",
        ),
        (
            json!({"updatedAt": "doggo"}),
            "immutable_api_key_updated_at",
            "Immutable field `updatedAt`: expected one of `description`, `name`",
        ),
        (json!({"doggo": "bork"}), "bad_request", "Unknown field `doggo`: expected one of `description`, `name`"),
    ];
    for (body, code, message) in patches {
        let got = gw.call("PATCH", &format!("/keys/{uid}"), Some(MASTER), Some(body)).await;
        assert_error(&got, 400, code, message);
    }
    for (q, code, message) in [
        (
            "offset=doggo",
            "invalid_api_key_offset",
            "Invalid value in parameter `offset`: could not parse `doggo` as a positive integer",
        ),
        (
            "limit=doggo",
            "invalid_api_key_limit",
            "Invalid value in parameter `limit`: could not parse `doggo` as a positive integer",
        ),
        ("doggo=1", "bad_request", "Unknown parameter `doggo`: expected one of `offset`, `limit`"),
    ] {
        let got = gw.call("GET", &format!("/keys?{q}"), Some(MASTER), None).await;
        assert_error(&got, 400, code, message);
    }
    assert_eq!(gw.cluster.read(|s| s.api_keys.clone()), before, "nothing refused was written");
}

#[tokio::test]
async fn keys_routes_need_a_master_key_to_exist() {
    let gw = gateway(None).await;
    let msg = "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.";
    for (m, uri) in [("GET", "/keys"), ("POST", "/keys"), ("GET", "/keys/abc"), ("DELETE", "/keys/abc")] {
        let got = gw.call(m, uri, None, None).await;
        assert_eq!(
            (got.0, got.1["code"].as_str(), got.1["message"].as_str()),
            (401, Some("missing_master_key"), Some(msg))
        );
        let got = gw.call(m, uri, Some("anything"), None).await;
        assert_eq!(got.1["code"], "missing_master_key");
    }
    // Everything else is open.
    assert_eq!(gw.call("GET", "/indexes", None, None).await.0, 200);
}

fn expired_key(gw: &Gw) -> String {
    let uid = "0000000e-0000-4000-8000-000000000000".to_string();
    let now = now_millis();
    let key = ApiKey {
        uid: uid.clone(),
        name: None,
        description: None,
        actions: vec!["*".into()],
        indexes: vec!["*".into()],
        expires_at: Some(now + 1),
        created_at: now,
        updated_at: now,
    };
    gw.cluster.apply(Command::CreateApiKey { key }).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    key_value(MASTER, &uid)
}

/// Every kind of key against routes answered from the map: Meilisearch's status and code.
#[tokio::test]
async fn matrix_of_keys_and_routes() {
    let gw = gateway(Some(MASTER)).await;
    let admin = gw.default_key("Default Admin API Key");
    let search = gw.default_key("Default Search API Key");
    let read_only = gw.default_key("Default Read-Only Admin API Key");
    let movies = gw
        .create(json!({"actions": ["search", "indexes.get", "documents.add", "indexes.create", "tasks.get"], "indexes": ["movies*"], "expiresAt": null}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = gw.create(json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null})).await;
    gw.call("DELETE", &format!("/keys/{}", deleted["uid"].as_str().unwrap()), Some(MASTER), None).await;
    let deleted = deleted["key"].as_str().unwrap().to_string();
    let expired = expired_key(&gw);

    // 200/202/400/404 = let through (404: the route ran and found no such index, 400 inside a
    // multi-search, as Meilisearch 1.50 answers; 202: an existing index is a failed task, as in
    // Meilisearch); 401/403 = refused.
    let routes: [(&str, &str, Option<Value>); 9] = [
        ("GET", "/indexes/movies", None),
        ("GET", "/indexes/books", None),
        ("GET", "/indexes/movies_x/search", None),
        ("POST", "/multi-search", Some(json!({"queries": [{"indexUid": "books_x"}]}))),
        ("GET", "/keys", None),
        ("GET", "/webhooks", None),
        ("POST", "/indexes", Some(json!({"uid": "books"}))),
        ("GET", "/_miroir/ready", None),
        ("GET", "/tasks/999", None),
    ];
    let table: Vec<(&str, Option<&str>, [u16; 9])> = vec![
        ("master", Some(MASTER), [200, 200, 404, 400, 200, 200, 202, 200, 404]),
        ("admin", Some(&admin), [200, 200, 404, 400, 200, 200, 202, 403, 404]),
        ("read-only admin", Some(&read_only), [200, 200, 404, 400, 200, 200, 403, 403, 404]),
        ("search", Some(&search), [403, 403, 404, 400, 403, 403, 403, 403, 403]),
        ("movies*", Some(&movies), [200, 403, 404, 403, 403, 403, 403, 403, 404]),
        ("expired", Some(&expired), [403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("deleted", Some(&deleted), [403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("garbage", Some("not-a-key"), [403, 403, 403, 403, 403, 403, 403, 403, 403]),
        ("none", None, [401, 401, 401, 401, 401, 401, 401, 401, 401]),
    ];
    for (who, key, expected) in table {
        for ((m, uri, body), want) in routes.iter().zip(expected) {
            let (s, e) = gw.call(m, uri, key, body.clone()).await;
            assert_eq!(s, want, "{who}: {m} {uri}: {e}");
            match want {
                401 => assert_eq!(e["code"], "missing_authorization_header", "{who} {uri}"),
                403 => assert_eq!(e["code"], "invalid_api_key", "{who} {uri}"),
                _ => {}
            }
        }
    }
    // Meilisearch's messages for an index the key does not cover.
    let (_, e) = gw.call("GET", "/indexes/books", Some(&movies), None).await;
    assert_eq!(e["message"], "The API key cannot acces the index `books`, authorized indexes are [\"movies*\"].");
    let (_, e) =
        gw.call("POST", "/multi-search", Some(&movies), Some(json!({"queries": [{"indexUid": "books"}]}))).await;
    assert_eq!(e["message"], "Inside `.queries[0]`: The provided API key is invalid.");
    // The index list shows only what the key may see.
    let (_, list) = gw.call("GET", "/indexes", Some(&movies), None).await;
    let uids: Vec<&str> = list["results"].as_array().unwrap().iter().map(|i| i["uid"].as_str().unwrap()).collect();
    assert_eq!((uids, list["total"].clone()), (vec!["movies", "movies_fr"], json!(2)));
    // A key may create only indexes its patterns cover.
    let (s, e) = gw.call("POST", "/indexes", Some(&movies), Some(json!({"uid": "books2"}))).await;
    assert_eq!((s, e["message"].as_str()), (403, Some("The provided API key is invalid.")));
    // Tasks: a restricted key sees only its indexes' tasks, never index-less ones.
    let tasks = ["movies", "books", "movies_fr"]
        .iter()
        .map(|i| miroir::task::NewTask {
            index_uid: Some(i.to_string()),
            kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
            details: json!({}),
            node_tasks: vec![],
            finished: None,
            shares: vec![],
        })
        .chain(std::iter::once(miroir::task::NewTask {
            index_uid: None,
            kind: miroir_meili::TaskKind::TaskDeletion,
            details: json!({}),
            node_tasks: vec![],
            finished: None,
            shares: vec![],
        }))
        .collect();
    let (resp, _) = gw.cluster.apply(Command::RegisterTasks { tasks, at: 1 }).unwrap();
    let miroir::Response::Tasks(uids) = resp else { panic!("{resp:?}") };
    let (_, page) = gw.call("GET", "/tasks", Some(&movies), None).await;
    let seen: Vec<&str> = page["results"].as_array().unwrap().iter().map(|t| t["indexUid"].as_str().unwrap()).collect();
    assert_eq!(seen, ["movies_fr", "movies"], "{page}");
    // The master key sees them all, with the two failed creations of `books` in the matrix above.
    let (_, page) = gw.call("GET", "/tasks", Some(MASTER), None).await;
    assert_eq!(page["results"].as_array().unwrap().len(), 6);
    let (s, e) = gw.call("GET", &format!("/tasks/{}", uids[1]), Some(&movies), None).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("task_not_found")));
    let (s, _) = gw.call("GET", &format!("/tasks/{}", uids[0]), Some(&movies), None).await;
    assert_eq!(s, 200);
    // Header forms, as Meilisearch reads them.
    let raw = |h: &'static str| {
        let req = Request::builder().uri("/indexes").header("authorization", h).body(Body::empty()).unwrap();
        let r = gw.router.clone();
        async move { r.oneshot(req).await.unwrap().status().as_u16() }
    };
    assert_eq!(raw("Basic abc").await, 401);
    assert_eq!(raw("Bearer").await, 403);
    assert_eq!(raw("Bearer ").await, 403);
    assert_eq!(raw("bearer x").await, 401);
    // Keys are hex: Meilisearch matches them in either case.
    let (s, _) = gw.call("GET", "/indexes", Some(&admin.to_uppercase()), None).await;
    assert_eq!(s, 200);
    assert_eq!(gw.call("GET", "/health", None, None).await.0, 200);
}
