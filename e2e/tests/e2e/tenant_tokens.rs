//! Tenant tokens through the gateway over three dev nodes (S = 8): the token's filter reaches every
//! shard query, so a tenant never sees another tenant's documents in hits, totals or facet counts;
//! expired, badly signed, `alg: none` tokens and tokens of deleted keys are refused as Meilisearch
//! refuses them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use miroir::command::Command;
use miroir_devnode::{start, DevNode, DevNodeConfig};
use miroir_gateway::app::AppState;
use miroir_gateway::cluster::local::LocalCluster;
use miroir_gateway::http::auth::token::{key_value, sign};
use miroir_node_client::{HttpTransport, NodeClient};
use serde_json::{json, Value};

use crate::common;

const MASTER: &str = "tenant-tokens-master-key";
const GENRES: [&str; 4] = ["drama", "comedy", "horror", "western"];
const DOCS: u64 = 600;

struct Setup {
    gateway: String,
    nodes: Vec<DevNode>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

fn doc(i: u64) -> Value {
    json!({"id": i, "title": format!("film {i}"), "tenant": i % 3, "genre": GENRES[(i % 4) as usize]})
}

async fn setup() -> Setup {
    let cluster = LocalCluster::new();
    cluster.apply(Command::AddGroup { id: "main".into() }).unwrap();
    let mut nodes = vec![];
    for i in 0..3 {
        let node = start(DevNodeConfig { listen: None, master_key: Some(MASTER.into()) }).await.unwrap();
        cluster.apply(Command::AddNode { id: format!("n{i}"), url: node.url(), group: "main".into() }).unwrap();
        nodes.push(node);
    }
    cluster
        .apply(Command::SetDefaults { shards: Some(8), rf: Some(1), min_in_sync: None, task_retention: None })
        .unwrap();
    let transport = HttpTransport::new(Some(MASTER.into()), Duration::from_secs(5));
    let app = AppState::new(cluster.clone(), NodeClient::new(Arc::new(transport)));
    app.disable_fencing();
    app.require_master_key(MASTER.into());
    let (gateway, server) = common::serve(app).await;
    let s = Setup { gateway, nodes, http: reqwest::Client::new(), _server: server };
    for (path, body) in [
        ("/indexes", json!({"uid": "movies", "primaryKey": "id"})),
        ("/indexes", json!({"uid": "books", "primaryKey": "id"})),
        ("/indexes/movies/documents", Value::Array((0..DOCS).map(doc).collect())),
        ("/indexes/books/documents", json!([{"id": 1, "tenant": 1}])),
    ] {
        let (status, body) = s.send(reqwest::Method::POST, path, Some(MASTER), &body).await;
        assert_eq!(status, 202, "{path}: {body}");
    }
    let settings = json!({"filterableAttributes": ["tenant", "genre"]});
    let (status, _) = s.send(reqwest::Method::PATCH, "/indexes/movies/settings", Some(MASTER), &settings).await;
    assert_eq!(status, 202);
    for n in &s.nodes {
        n.wait_idle().await;
    }
    s
}

impl Setup {
    async fn send(&self, method: reqwest::Method, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.gateway)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn search(&self, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/indexes/movies/search", Some(token), &body).await
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Facet counts of the documents `keep` selects, as one node holding them all would count them.
fn expected_genres(keep: impl Fn(&Value) -> bool) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for d in (0..DOCS).map(doc).filter(|d| keep(d)) {
        *counts.entry(d["genre"].as_str().unwrap().to_string()).or_default() += 1;
    }
    json!(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_only_its_documents_across_every_shard() {
    let s = setup().await;
    let (status, key) = s
        .send(
            reqwest::Method::POST,
            "/keys",
            Some(MASTER),
            &json!({"actions": ["search"], "indexes": ["movies*", "books"], "expiresAt": null}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let (uid, secret) = (key["uid"].as_str().unwrap().to_string(), key["key"].as_str().unwrap().to_string());
    assert_eq!(secret, key_value(MASTER, &uid));
    let rules = json!({"movies": {"filter": "tenant = 1"}, "books": null});
    let token = sign("HS256", &secret, &json!({"searchRules": rules, "apiKeyUid": uid, "exp": now_s() + 3600}));

    let facets = json!(["genre", "tenant"]);
    let (status, r) = s.search(&token, json!({"q": "", "limit": 1000, "facets": facets})).await;
    assert_eq!(status, 200, "{r}");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len() as u64, DOCS / 3);
    assert!(hits.iter().all(|h| h["tenant"] == 1), "another tenant's document leaked");
    assert_eq!(r["estimatedTotalHits"], DOCS / 3);
    assert_eq!(r["facetDistribution"]["tenant"], json!({"1": DOCS / 3}));
    assert_eq!(r["facetDistribution"]["genre"], expected_genres(|d| d["tenant"] == 1));

    // The query's own filter is ANDed with the tenant's, in both pagination modes and over GET.
    let body = json!({"filter": "genre = drama OR tenant = 2", "hitsPerPage": 5, "page": 2, "facets": facets});
    let (_, r) = s.search(&token, body).await;
    let want = (0..DOCS).map(doc).filter(|d| d["tenant"] == 1 && d["genre"] == "drama").count();
    assert_eq!(r["totalHits"], want, "{r}");
    assert!(r["hits"].as_array().unwrap().iter().all(|h| h["tenant"] == 1 && h["genre"] == "drama"));
    assert_eq!(r["facetDistribution"]["tenant"], json!({"1": want}));
    let url = format!("{}/indexes/movies/search?filter=tenant%20%3D%202&limit=50", s.gateway);
    let r: Value = s.http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["estimatedTotalHits"].clone(), r["hits"].as_array().map(Vec::len)), (json!(0), Some(0)), "{r}");

    // Multi-search applies each index's rule.
    let queries = json!({"queries": [{"indexUid": "movies", "limit": 1000}, {"indexUid": "books"}]});
    let (status, r) = s.send(reqwest::Method::POST, "/multi-search", Some(&token), &queries).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["results"][0]["hits"].as_array().unwrap().iter().all(|h| h["tenant"] == 1));
    assert_eq!(r["results"][0]["estimatedTotalHits"], DOCS / 3);
    assert_eq!(r["results"][1]["estimatedTotalHits"], 1);
    // So does a federated one, in its hits and in the per-node counts of its total.
    let federated = json!({"federation": {"limit": 1000}, "queries": [{"indexUid": "movies"}, {"indexUid": "books"}]});
    let (status, r) = s.send(reqwest::Method::POST, "/multi-search", Some(&token), &federated).await;
    assert_eq!(status, 200, "{r}");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len() as u64, DOCS / 3 + 1, "{r}");
    assert!(hits.iter().filter(|h| h["_federation"]["indexUid"] == "movies").all(|h| h["tenant"] == 1));
    assert_eq!(r["estimatedTotalHits"], DOCS / 3 + 1);

    // A list of indexes has no filter: everything in them.
    let open = sign("HS512", &secret, &json!({"searchRules": ["movies"], "apiKeyUid": uid}));
    let (_, r) = s.search(&open, json!({"limit": 0})).await;
    assert_eq!(r["estimatedTotalHits"], DOCS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tenant_tokens_are_refused() {
    let s = setup().await;
    let (_, key) = s
        .send(
            reqwest::Method::POST,
            "/keys",
            Some(MASTER),
            &json!({"actions": ["search"], "indexes": ["movies"], "expiresAt": null}),
        )
        .await;
    let (uid, secret) = (key["uid"].as_str().unwrap().to_string(), key["key"].as_str().unwrap().to_string());
    let claims = |exp: i64| json!({"searchRules": {"*": {"filter": "tenant = 0"}}, "apiKeyUid": uid, "exp": exp});
    let refused =
        |r: &(u16, Value)| (r.0, r.1["code"].as_str().map(str::to_string), r.1["message"].as_str().map(str::to_string));
    let invalid = |m: &str| (403, Some("invalid_api_key".to_string()), Some(m.to_string()));

    let good = sign("HS384", &secret, &claims(now_s() + 600));
    assert_eq!(s.search(&good, json!({"limit": 0})).await.1["estimatedTotalHits"], DOCS / 3);

    let past = now_s() - 10;
    let r = s.search(&sign("HS256", &secret, &claims(past)), json!({})).await;
    assert_eq!(r.0, 403);
    let m = r.1["message"].as_str().unwrap();
    assert!(m.starts_with(&format!("Tenant token expired. Was valid up to `{past}` and we're now `")), "{m}");

    let forged = sign("HS256", &key_value("another-master-key", &uid), &claims(now_s() + 600));
    assert_eq!(
        refused(&s.search(&forged, json!({})).await),
        invalid("Could not decode tenant token, InvalidSignature.")
    );

    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(now_s() + 600)));
    let r = s.search(&unsigned, json!({})).await;
    assert_eq!(r.0, 403, "{}", r.1);
    assert!(r.1["message"].as_str().unwrap().starts_with("Could not decode tenant token"), "{}", r.1);

    // Rules wider than the key: the key still bounds what the token opens.
    let (status, e) = s.send(reqwest::Method::POST, "/indexes/books/search", Some(&good), &json!({})).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("The API key used to generate this tenant token cannot acces the index `books`."))
    );
    let narrow = sign("HS256", &secret, &json!({"searchRules": ["doggo", "catto"], "apiKeyUid": uid}));
    let (_, e) = s.search(&narrow, json!({})).await;
    assert_eq!(
        e["message"],
        "The provided tenant token cannot acces the index `movies`, allowed indexes are [\"catto\", \"doggo\"]."
    );

    // Tenant tokens open search routes only.
    let url = format!("{}/indexes/movies/documents", s.gateway);
    let resp = s.http.get(url).bearer_auth(&good).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // Once the key is deleted its tokens stop working, on the next request.
    let (status, _) = s.send(reqwest::Method::DELETE, &format!("/keys/{uid}"), Some(MASTER), &json!(null)).await;
    assert_eq!(status, 204);
    assert_eq!(refused(&s.search(&good, json!({})).await), invalid("The provided API key is invalid."));
}
