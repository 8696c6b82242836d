//! `POST`/`GET /indexes/{uid}/search`: one request per node of a covering set (scoped to the shards
//! that node answers for), each asking for the best `offset + limit` hits with their ranking-score
//! details, merged in `merge` into the answer one node holding everything would give.

pub mod distinct;
pub mod facet_search;
pub mod federated;
pub mod federated_facets;
pub mod get;
pub mod hybrid;
pub mod merge;
pub mod pins;
pub mod raw;
pub mod similar;

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::error::{AppError, AppResult, Code};
use crate::read::replicas::scoped_filter;
use crate::read::scatter::{scatter, MissingPolicy};
use distinct::Distinct;
use merge::MergeSpec;

fn invalid(code: Code, param: &str, v: &Value) -> AppError {
    AppError::new(code, format!("Invalid value type at `.{param}`: expected a positive integer, but found {v}"))
}

fn usize_param(body: &Map<String, Value>, key: &str, code: Code) -> AppResult<Option<usize>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| invalid(code, key, v)),
    }
}

fn setting<'a>(settings: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(settings, |v, k| v.get(k))
}

/// The page a search asks for (`offset`/`limit`, or `page`/`hitsPerPage` when either is given)
/// and the hits it spans of the whole ranking.
struct Page {
    offset_mode: bool,
    offset: usize,
    limit: usize,
    page: usize,
    hits_per_page: usize,
    start: usize,
    count: usize,
}

impl Page {
    fn of(body: &Map<String, Value>) -> AppResult<Page> {
        let offset_mode = !body.contains_key("page") && !body.contains_key("hitsPerPage");
        let offset = usize_param(body, "offset", Code::INVALID_SEARCH_OFFSET)?.unwrap_or(0);
        let limit = usize_param(body, "limit", Code::INVALID_SEARCH_LIMIT)?.unwrap_or(20);
        let page = usize_param(body, "page", Code::INVALID_SEARCH_PAGE)?.unwrap_or(1);
        let hits_per_page = usize_param(body, "hitsPerPage", Code::INVALID_SEARCH_HITS_PER_PAGE)?.unwrap_or(20);
        let (start, count) = if offset_mode {
            (offset, limit)
        } else if page == 0 {
            (0, 0)
        } else {
            ((page - 1) * hits_per_page, hits_per_page)
        };
        Ok(Page { offset_mode, offset, limit, page, hits_per_page, start, count })
    }
}

/// Meilisearch's `add_search_rules`: a tenant token's filter is ANDed with the query's own (both
/// as lists of conditions), so every shard query carries it.
pub fn add_search_rules(body: &mut Map<String, Value>, rule: Option<Value>) {
    let Some(rule) = rule else { return };
    let fused = match body.remove("filter") {
        None | Some(Value::Null) => rule,
        Some(left) => {
            let as_list = |v: Value| match v {
                Value::Array(parts) => parts,
                other => vec![other],
            };
            Value::Array([as_list(left), as_list(rule)].concat())
        }
    };
    body.insert("filter".into(), fused);
}

/// A request's uid as Meilisearch shows it in `requestUid`: one per HTTP request, shared by every
/// result of a multi-search.
pub fn new_request_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `POST /multi-search` without federation: each query (index uid, body) answered as its own
/// search, in order, every result naming its index; and the shards no copy answered for.
pub async fn multi_search(
    app: &AppState,
    queries: Vec<(String, Map<String, Value>)>,
    policy: MissingPolicy,
) -> AppResult<(Value, Vec<u32>)> {
    let mut results = Vec::with_capacity(queries.len());
    let mut missing_all = Vec::new();
    // Meilisearch shows the same requestUid in every result of a multi-search.
    let request_uid = new_request_uid();
    for (i, (uid, q)) in queries.into_iter().enumerate() {
        let (answer, missing) = search_value(app, &uid, q, policy, &request_uid).await.map_err(|e| {
            let e = e.inside(&format!("Inside `.queries[{i}]`: "));
            // An unknown index is the request's fault here, not the URL's: 400, as in
            // Meilisearch 1.50 (checked against a real node).
            if e.body()["code"] == Code::INDEX_NOT_FOUND.name {
                AppError::forwarded(400, e.body())
            } else {
                e
            }
        })?;
        missing_all.extend(missing);
        let mut rest = Map::new();
        rest.insert("indexUid".into(), Value::from(uid));
        rest.extend(answer.rest);
        results.push(raw::Answer { hits: answer.hits, rest });
    }
    missing_all.sort_unstable();
    missing_all.dedup();
    let results = serde_json::to_value(&results).map_err(AppError::internal)?;
    Ok((json!({ "results": results }), missing_all))
}

/// One search's answer, and the shards no copy answered for: a keyword or semantic search merged
/// from the shards' answers, a hybrid one from both sides' (see `hybrid`).
pub async fn search_value(
    app: &AppState,
    uid: &str,
    body: Map<String, Value>,
    policy: MissingPolicy,
    request_uid: &str,
) -> AppResult<(raw::Answer, Vec<u32>)> {
    search_resolved(app, uid, body, policy, request_uid).await.map(|(a, m, _)| (a, m))
}

/// `search_value`, also saying which search's candidates the answer counts: a hybrid search
/// counts the semantic side's (the whole filtered index), or the keyword side's when that side
/// answered alone. A federated total needs it to count the same documents on every node.
async fn search_resolved(
    app: &AppState,
    uid: &str,
    body: Map<String, Value>,
    policy: MissingPolicy,
    request_uid: &str,
) -> AppResult<(raw::Answer, Vec<u32>, hybrid::Kind)> {
    match hybrid::kind(&body) {
        hybrid::Kind::Keyword => {
            merged_search(app, uid, body, policy, request_uid, true).await.map(|(a, m)| (a, m, hybrid::Kind::Keyword))
        }
        hybrid::Kind::Semantic => {
            let (answer, missing) = merged_search(app, uid, body, policy, request_uid, true).await?;
            Ok((answer, missing, hybrid::Kind::Semantic))
        }
        hybrid::Kind::Hybrid { ratio } => {
            let (answer, missing, keyword_alone) = hybrid_search(app, uid, body, ratio, policy, request_uid).await?;
            let resolved = if keyword_alone { hybrid::Kind::Keyword } else { hybrid::Kind::Semantic };
            Ok((raw::Answer::from_value(answer), missing, resolved))
        }
    }
}

/// Both sides of a hybrid search, each merged over the shards for the best `offset + limit`
/// hits, then interleaved as milli's `execute_hybrid` does; `true` when the keyword side
/// answered alone.
async fn hybrid_search(
    app: &AppState,
    uid: &str,
    mut body: Map<String, Value>,
    ratio: f64,
    policy: MissingPolicy,
    request_uid: &str,
) -> AppResult<(Value, Vec<u32>, bool)> {
    let started = Instant::now();
    let map = app.map();
    let index = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let primary_key = index.primary_key.clone().unwrap_or_else(|| "id".into());
    // Dynamic search rules: the pins are looked up as for a keyword search (which of them the
    // keyword query matches is what the total needs when the keyword side answers alone).
    let candidates = pins::candidates(&map, uid, &body);
    let pinned = if candidates.is_empty() {
        None
    } else {
        let mut keyword_body = body.clone();
        keyword_body.remove("hybrid");
        keyword_body.remove("vector");
        Some(pins::resolve(app, &map, uid, &keyword_body, &primary_key, candidates, policy).await?)
            .filter(|p| !p.ids.is_empty())
    };
    let max_total_hits =
        setting(&index.settings, &["pagination", "maxTotalHits"]).and_then(Value::as_u64).unwrap_or(1000) as usize;
    let distinct = body
        .get("distinct")
        .and_then(Value::as_str)
        .or_else(|| setting(&index.settings, &["distinctAttribute"]).and_then(Value::as_str))
        .map(str::to_string);
    let Page { offset_mode, offset, limit, page, hits_per_page, start, count } = Page::of(&body)?;
    let wanted = start + count;
    let flag = |b: &Map<String, Value>, k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (show_score, show_details) = (flag(&body, "showRankingScore"), flag(&body, "showRankingScoreDetails"));
    // The merge needs every hit's key, distinct value and scores; what the client did not ask
    // for is removed at the end.
    let mut added = Vec::new();
    if let Some(Value::Array(attrs)) = body.get_mut("attributesToRetrieve") {
        for extra in std::iter::once(&primary_key).chain(distinct.as_ref()) {
            if !attrs.iter().any(|a| a == "*" || a.as_str() == Some(extra.as_str())) {
                attrs.push(Value::from(extra.clone()));
                added.push(extra.clone());
            }
        }
    }
    for k in ["offset", "limit", "page", "hitsPerPage"] {
        body.remove(k);
    }
    if offset_mode {
        body.insert("offset".into(), Value::from(0));
        body.insert("limit".into(), Value::from(wanted));
    } else {
        body.insert("page".into(), Value::from(1));
        body.insert("hitsPerPage".into(), Value::from(wanted));
    }
    body.insert("showRankingScore".into(), Value::Bool(true));
    body.insert("showRankingScoreDetails".into(), Value::Bool(true));
    let mut keyword = body.clone();
    keyword.remove("hybrid");
    keyword.remove("vector");
    let mut semantic = body;
    if let Some(h) = semantic.get_mut("hybrid").and_then(Value::as_object_mut) {
        h.insert("semanticRatio".into(), Value::from(1.0));
    }
    let (kw, sem) = tokio::join!(
        merged_search(app, uid, keyword, policy, request_uid, false),
        merged_search(app, uid, semantic, policy, request_uid, false)
    );
    let ((kw, mut missing), (sem, sem_missing)) = (kw?, sem?);
    let (mut kw, mut sem) = (kw.into_value(), sem.into_value());
    missing.extend(sem_missing);
    missing.sort_unstable();
    missing.dedup();
    let take_hits = |v: &mut Value| match v.get_mut("hits").map(Value::take) {
        Some(Value::Array(h)) => h,
        _ => vec![],
    };
    let kw_hits = take_hits(&mut kw);
    let kw_seen: std::collections::BTreeSet<String> =
        kw_hits.iter().filter_map(|h| pins::id_of(h, &primary_key)).collect();
    let keyword_alone = hybrid::good_enough(&kw_hits, wanted, ratio);
    let (mut answer, ranked): (Value, Vec<(Value, bool)>) = if keyword_alone {
        (kw, kw_hits.into_iter().map(|h| (h, false)).collect())
    } else {
        let sem_hits = take_hits(&mut sem);
        (sem, hybrid::merge(sem_hits, kw_hits, ratio, &primary_key, distinct.as_deref()))
    };
    let (start, count) =
        (start.min(max_total_hits), count.min(max_total_hits.saturating_sub(start.min(max_total_hits))));
    let window: Vec<(Value, bool)> = match &pinned {
        None => ranked.into_iter().skip(start).take(count).collect(),
        Some(p) => {
            // Pinned documents leave the organic list and are placed at their positions, sorted
            // by position as milli's hybrid merge does.
            let organic: Vec<(Value, bool)> = ranked
                .into_iter()
                .filter(|(h, _)| pins::id_of(h, &primary_key).is_none_or(|id| !p.ids.contains(&id)))
                .take(start + count)
                .collect();
            let mut placed: Vec<(u32, (Value, bool))> =
                p.hits.iter().map(|(pos, h)| (*pos, (h.clone(), false))).collect();
            placed.sort_by_key(|(pos, _)| *pos);
            miroir_meili::search_rules::pins::merge_into_page(placed, start, count, organic)
        }
    };
    if let (Some(p), Some(obj)) = (&pinned, answer.as_object_mut()) {
        pins::count_in_hybrid(obj, p, keyword_alone, &kw_seen, offset_mode);
    }
    let semantic_hits = window.iter().filter(|(_, s)| *s).count();
    let strip = raw::Strip { show_score, show_details, pk: None, distinct: None };
    let mut hits: Vec<Value> = Vec::with_capacity(window.len());
    for (h, _) in window {
        if pins::is_pinned(&h) {
            let rendered =
                pins::render(&h, &strip).map_err(|e| AppError::internal(format!("re-writing a hit: {e}")))?;
            hits.push(serde_json::from_str(rendered.get()).unwrap_or(h));
        } else {
            hits.push(h);
        }
    }
    for h in hits.iter_mut().filter_map(Value::as_object_mut) {
        for a in &added {
            h.remove(a);
        }
        if !show_details {
            h.remove("_rankingScoreDetails");
        }
        if !show_score {
            h.remove("_rankingScore");
        }
    }
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("hits".into(), Value::Array(hits));
        obj.insert("semanticHitCount".into(), Value::from(semantic_hits));
        if offset_mode {
            obj.insert("offset".into(), Value::from(offset));
            obj.insert("limit".into(), Value::from(limit));
        } else {
            let total = obj.get("totalHits").and_then(Value::as_u64).unwrap_or(0) as usize;
            obj.insert("page".into(), Value::from(page));
            obj.insert("hitsPerPage".into(), Value::from(hits_per_page));
            let pages = if hits_per_page == 0 { 0 } else { total.div_ceil(hits_per_page) };
            obj.insert("totalPages".into(), Value::from(pages));
        }
        obj.insert("processingTimeMs".into(), Value::from(started.elapsed().as_millis() as u64));
    }
    Ok((answer, missing, keyword_alone))
}

/// One keyword or semantic search merged from the shards' answers; `rules`: with the pins of the
/// dynamic search rules it triggers (not for the sides of a hybrid search, nor `/similar`).
async fn merged_search(
    app: &AppState,
    uid: &str,
    mut body: Map<String, Value>,
    policy: MissingPolicy,
    request_uid: &str,
    rules: bool,
) -> AppResult<(raw::Answer, Vec<u32>)> {
    let started = Instant::now();
    let map = app.map();
    let index = map.indexes.get(uid).ok_or_else(|| AppError::index_not_found(uid))?;
    let settings = &index.settings;
    let Page { offset_mode, page, hits_per_page, start, count, .. } = Page::of(&body)?;
    let primary_key = index.primary_key.clone().unwrap_or_else(|| "id".into());
    let mut spec = MergeSpec {
        primary_key: primary_key.clone(),
        start,
        count,
        max_total_hits: setting(settings, &["pagination", "maxTotalHits"]).and_then(Value::as_u64).unwrap_or(1000)
            as usize,
        max_values_per_facet: setting(settings, &["faceting", "maxValuesPerFacet"])
            .and_then(Value::as_u64)
            .unwrap_or(100) as usize,
        offset_mode,
        page,
        hits_per_page,
        facet_orders: setting(settings, &["faceting", "sortFacetValuesBy"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        total_override: None,
    };
    let show_score = body.get("showRankingScore").and_then(Value::as_bool).unwrap_or(false);
    let show_details = body.get("showRankingScoreDetails").and_then(Value::as_bool).unwrap_or(false);
    // The merge breaks final ties by primary key, so nodes must return it.
    let strip_pk = match body.get("attributesToRetrieve").and_then(Value::as_array) {
        Some(attrs) => !attrs.iter().any(|a| a == "*" || a.as_str() == Some(primary_key.as_str())),
        None => false,
    };
    let distinct = body
        .get("distinct")
        .and_then(Value::as_str)
        .or_else(|| setting(settings, &["distinctAttribute"]).and_then(Value::as_str))
        .map(str::to_string);
    // Dynamic search rules: their pins are looked up before the organic search, which then asks
    // every node for that many more hits (see `pins`).
    let candidates = if rules { pins::candidates(&map, uid, &body) } else { vec![] };
    let pinned = if candidates.is_empty() {
        None
    } else {
        Some(pins::resolve(app, &map, uid, &body, &primary_key, candidates, policy).await?)
            .filter(|p| !p.ids.is_empty())
    };
    let window = pins::Window { start, count, max_total_hits: spec.max_total_hits, offset_mode, page, hits_per_page };
    let extra = pinned.as_ref().map_or(0, |p| p.ids.len());
    if pinned.is_some() {
        spec.start = 0;
        spec.count = start + count + extra;
        spec.max_total_hits = usize::MAX;
    }
    let distinct = distinct.map(|attr| Distinct::prepare(attr, &mut body, settings));

    let build = |shards: &[u32]| {
        let mut b = body.clone();
        let filter = scoped_filter(shards, b.get("filter"));
        b.insert("filter".into(), filter);
        for k in ["offset", "limit", "page", "hitsPerPage"] {
            b.remove(k);
        }
        if offset_mode {
            b.insert("offset".into(), Value::from(0));
            b.insert("limit".into(), Value::from(start + count + extra));
        } else {
            b.insert("page".into(), Value::from(1));
            b.insert("hitsPerPage".into(), Value::from(start + count + extra));
        }
        b.insert("showRankingScoreDetails".into(), Value::Bool(true));
        b.insert("showRankingScore".into(), Value::Bool(true));
        if strip_pk {
            if let Some(Value::Array(attrs)) = b.get_mut("attributesToRetrieve") {
                attrs.push(Value::from(primary_key.clone()));
            }
        }
        Value::Object(b)
    };
    let path = format!("/indexes/{uid}/search");
    let gathered = scatter(app.reads(), &map, uid, &path, build, app.read_deadline(), policy).await?;
    let mut parsed = raw::parse(
        gathered.answers.iter().map(|a| a.body.as_ref()),
        &primary_key,
        distinct.as_ref().map(|d| d.attr.as_str()),
    )
    .map_err(|e| AppError::new(Code::MIROIR_UNAVAILABLE, format!("A node answered an unreadable search: {e}")))?;
    // The merge consumes the keys; rendering reads the raw hits, not these.
    let mut answers = std::mem::take(&mut parsed.answers);
    if let Some(d) = &distinct {
        spec.total_override = d.total(&answers, offset_mode);
    }
    if let Some(f) = pinned.as_ref().and_then(|p| p.extra_facets.clone()) {
        answers.push(f);
    }
    let mut merged = merge::merge(answers, &spec, distinct.as_ref().map(|d| d.attr.as_str()));
    if let Some(d) = &distinct {
        d.clean(&mut merged);
    }
    let mut missing = gathered.missing;
    if let Some(p) = pinned {
        missing.extend(p.missing.iter().copied());
        missing.sort_unstable();
        missing.dedup();
        pins::finish(&mut merged, p, &window, &primary_key);
    }
    let strip = raw::Strip {
        show_score,
        show_details,
        pk: strip_pk.then_some(primary_key.as_str()),
        distinct: distinct.as_ref().and_then(Distinct::stripped),
    };
    let Value::Object(mut rest) = merged else { return Err(AppError::internal("a merged search is an object")) };
    // `facets: ["*"]` names Miroir's shard field too, on the nodes.
    for k in ["facetDistribution", "facetStats"] {
        if let Some(f) = rest.get_mut(k).and_then(Value::as_object_mut) {
            f.shift_remove(crate::write::settings::SHARD_FIELD);
        }
    }
    let keys = match rest.shift_remove("hits") {
        Some(Value::Array(keys)) => keys,
        _ => vec![],
    };
    // A semantic search counts its page's hits, pins apart (they were found by no search).
    if hybrid::kind(&body) == hybrid::Kind::Semantic {
        let organic = keys.iter().filter(|k| !pins::is_pinned(k)).count();
        rest.insert("semanticHitCount".into(), Value::from(organic));
    }
    // A pinned hit is a whole document (`pins`), the others keys of the nodes' raw hits.
    let hits = keys
        .iter()
        .map(|k| if pins::is_pinned(k) { pins::render(k, &strip) } else { parsed.render(k, &strip) })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::internal(format!("re-writing a hit: {e}")))?;
    rest.insert("processingTimeMs".into(), Value::from(started.elapsed().as_millis() as u64));
    // The nodes' own uids name their sub-requests, not the client's request.
    rest.insert("requestUid".into(), Value::from(request_uid));
    Ok((raw::Answer { hits, rest }, missing))
}
