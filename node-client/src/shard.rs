//! Reading and writing one shard of an index on one node, for migrations and `verify`: paging
//! it out by `_miroir_shard`, fingerprinting it, writing and deleting documents, and waiting for
//! a node's task queue.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::{Method, NodeClient, NodeError, NodeRequest};
use miroir::ids::ShardId;
use miroir::placement::canonical_doc_id;
use miroir::settings::SHARD_FIELD;
use miroir::task::TaskStatus;
use serde_json::{json, Value};

/// Documents per snapshot page. Offset paging over a set that changes underneath can skip a
/// document, so snapshots take large pages (one page for most shards).
pub const SNAPSHOT_PAGE: usize = 10_000;

/// Id → content hash of every document of one shard on one node.
pub type Fingerprint = BTreeMap<String, u64>;

pub fn shard_filter(shard: ShardId) -> String {
    format!("{SHARD_FIELD} = {shard}")
}

/// Hash of a document independent of its field order (Meilisearch returns fields in its own
/// index-wide order, which differs between two nodes that saw fields in another order).
pub fn content_hash(doc: &Value) -> u64 {
    fn feed(v: &Value, h: &mut DefaultHasher) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                h.write_u8(b'{');
                for k in keys {
                    k.hash(h);
                    feed(&m[k], h);
                }
                h.write_u8(b'}');
            }
            Value::Array(a) => {
                h.write_u8(b'[');
                a.iter().for_each(|x| feed(x, h));
                h.write_u8(b']');
            }
            other => other.to_string().hash(h),
        }
    }
    let mut h = DefaultHasher::new();
    feed(doc, &mut h);
    h.finish()
}

/// The canonical id of a document under a (possibly dotted) primary key.
pub fn doc_id(doc: &Value, pk: &str) -> Option<String> {
    let v = doc.get(pk).or_else(|| {
        let (head, rest) = pk.split_once('.')?;
        let inner = doc.get(head)?;
        doc_id_value(inner, rest)
    })?;
    canonical_doc_id(v).ok()
}

fn doc_id_value<'a>(doc: &'a Value, pk: &str) -> Option<&'a Value> {
    doc.get(pk).or_else(|| {
        let (head, rest) = pk.split_once('.')?;
        doc_id_value(doc.get(head)?, rest)
    })
}

fn is_missing_index(e: &NodeError) -> bool {
    matches!(e, NodeError::Status { status: 404, body } if body["code"] == "index_not_found")
}

/// One page of the shard (`ids`: only those documents); answers the page and the shard's total.
/// A node without the index holds nothing of it.
pub async fn fetch_page(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    shard: ShardId,
    offset: usize,
    limit: usize,
    ids: Option<&[String]>,
) -> Result<(Vec<Value>, u64), NodeError> {
    // `retrieveVectors`: a copy must carry the documents' embeddings, which Meilisearch leaves out
    // of documents unless asked (user-provided ones exist nowhere else).
    let mut body = json!({"filter": shard_filter(shard), "offset": offset, "limit": limit, "retrieveVectors": true});
    if let Some(ids) = ids {
        body["ids"] = json!(ids);
    }
    match nodes.json(url, NodeRequest::json(Method::Post, format!("/indexes/{index}/documents/fetch"), &body)).await {
        Ok(v) => {
            let total = v["total"].as_u64().unwrap_or(0);
            match v.get("results").and_then(Value::as_array) {
                Some(r) => Ok((r.clone(), total)),
                None => Err(NodeError::Decode(format!("documents fetch without results: {v}"))),
            }
        }
        Err(e) if is_missing_index(&e) => Ok((vec![], 0)),
        Err(e) => Err(e),
    }
}

/// Id → content hash of every document of the shard on the node.
pub async fn fingerprint(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    shard: ShardId,
    pk: &str,
) -> Result<Fingerprint, NodeError> {
    let mut out = Fingerprint::new();
    let mut offset = 0;
    loop {
        let (page, _) = fetch_page(nodes, url, index, shard, offset, SNAPSHOT_PAGE, None).await?;
        for d in &page {
            let id = doc_id(d, pk).ok_or_else(|| NodeError::Decode(format!("document without a valid `{pk}`")))?;
            out.insert(id, content_hash(d));
        }
        if page.len() < SNAPSHOT_PAGE {
            return Ok(out);
        }
        offset += page.len();
    }
}

/// Id → content hash of the given documents of the shard on the node (absent ones are absent).
pub async fn fingerprint_ids(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    shard: ShardId,
    pk: &str,
    ids: &[String],
) -> Result<Fingerprint, NodeError> {
    let mut out = Fingerprint::new();
    for chunk in ids.chunks(1000) {
        let (page, _) = fetch_page(nodes, url, index, shard, 0, chunk.len(), Some(chunk)).await?;
        for d in &page {
            let id = doc_id(d, pk).ok_or_else(|| NodeError::Decode(format!("document without a valid `{pk}`")))?;
            out.insert(id, content_hash(d));
        }
    }
    Ok(out)
}

/// Adds or replaces documents (whole documents: the source's version wins).
pub async fn write_docs(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    pk: &str,
    docs: &[Value],
) -> Result<u64, NodeError> {
    let req = NodeRequest::json(Method::Post, format!("/indexes/{index}/documents?primaryKey={pk}"), &docs);
    nodes.enqueue(url, req).await
}

pub async fn delete_ids(nodes: &NodeClient, url: &str, index: &str, ids: &[String]) -> Result<u64, NodeError> {
    let req = NodeRequest::json(Method::Post, format!("/indexes/{index}/documents/delete-batch"), &ids);
    nodes.enqueue(url, req).await
}

/// Deletes the whole shard; `None` when the node has no such index (nothing to delete).
pub async fn delete_shard(
    nodes: &NodeClient,
    url: &str,
    index: &str,
    shard: ShardId,
) -> Result<Option<u64>, NodeError> {
    let req = NodeRequest::json(
        Method::Post,
        format!("/indexes/{index}/documents/delete"),
        &json!({"filter": shard_filter(shard)}),
    );
    match nodes.enqueue(url, req).await {
        Ok(uid) => Ok(Some(uid)),
        Err(e) if is_missing_index(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until node task `uid` is finished; answers its final status.
pub async fn wait_task(nodes: &NodeClient, url: &str, uid: u64, timeout: Duration) -> Result<TaskStatus, NodeError> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(t) = nodes.tasks(url, &[uid]).await?.into_iter().next() {
            if t.status.is_finished() {
                return Ok(t.status);
            }
        }
        if Instant::now() >= end {
            return Err(NodeError::Decode(format!("task {uid} not finished after {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every task the node had enqueued for `index` when called is finished. Writes keep
/// arriving during a migration, so "the queue is empty" may never hold; "what was there is done"
/// does, since a node processes an index's tasks in order.
pub async fn wait_idle(nodes: &NodeClient, url: &str, index: &str, timeout: Duration) -> Result<(), NodeError> {
    let page = nodes.json(url, NodeRequest::get(format!("/tasks?indexUids={index}&limit=1"))).await?;
    match page["results"].get(0).and_then(|t| t["uid"].as_u64()) {
        Some(uid) => wait_task(nodes, url, uid, timeout).await.map(drop),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_ignores_field_order_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"id":1,"t":"x","n":{"a":1,"b":[1,2]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"n":{"b":[1,2],"a":1},"t":"x","id":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"n":{"b":[2,1],"a":1},"t":"x","id":1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        assert_ne!(content_hash(&json!({"a": "1"})), content_hash(&json!({"a": 1})));
    }

    #[test]
    fn ids_follow_dotted_keys_and_integers() {
        assert_eq!(doc_id(&json!({"id": 7}), "id").as_deref(), Some("7"));
        assert_eq!(doc_id(&json!({"a": {"b": "x"}}), "a.b").as_deref(), Some("x"));
        assert_eq!(doc_id(&json!({"id": 1.5}), "id"), None);
    }
}
