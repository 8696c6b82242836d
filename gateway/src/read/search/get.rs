//! `GET /indexes/{uid}/search`: the query string turned into the POST body Meilisearch builds from
//! it (`SearchQueryGet` and its `TryFrom` into `SearchQuery` in Meilisearch's
//! `routes/indexes/search.rs`), refused with Meilisearch's codes before any node is asked.

use serde_json::{json, Map, Value};

use crate::error::{AppError, AppResult, Code};

/// `SearchQueryGet`'s fields in declaration order (the order of deserr's "expected one of").
const PARAMS: &[&str] = &[
    "q",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "attributesToCrop",
    "cropLength",
    "cropMarker",
    "attributesToHighlight",
    "highlightPreTag",
    "highlightPostTag",
    "showMatchesPosition",
    "filter",
    "sort",
    "distinct",
    "facets",
    "matchingStrategy",
    "attributesToSearchOn",
    "rankingScoreThreshold",
    "locales",
    "hybridEmbedder",
    "hybridSemanticRatio",
    "vector",
    "retrieveVectors",
    "personalizeUserContext",
    "useNetwork",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
];

const NUMBERS: &[&str] = &["offset", "limit", "page", "hitsPerPage", "cropLength"];
const BOOLS: &[&str] = &[
    "showMatchesPosition",
    "retrieveVectors",
    "useNetwork",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
];
/// Comma-separated lists (`CS<String>`).
const LISTS: &[&str] =
    &["attributesToRetrieve", "attributesToCrop", "attributesToHighlight", "facets", "attributesToSearchOn", "locales"];

/// A parameter's value that does not parse: `invalid_search_<parameter>`.
fn invalid(param: &str, why: String) -> AppError {
    let code = match param {
        "hybridEmbedder" => Code::INVALID_SEARCH_EMBEDDER,
        "hybridSemanticRatio" => Code::INVALID_SEARCH_SEMANTIC_RATIO,
        "personalizeUserContext" => Code::INVALID_SEARCH_PERSONALIZE_USER_CONTEXT,
        p => Code::for_param("invalid_search", p),
    };
    AppError::new(code, format!("Invalid value in parameter `{param}`: {why}"))
}

/// Meilisearch's `fix_sort_query_parameters`: commas split criteria, except inside `_geoPoint(..)`.
fn sort_list(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut merge = false;
    for current in raw.trim_matches('"').split(',').map(str::trim) {
        if current.starts_with("_geoPoint(") {
            out.push(current.to_string());
            merge = true;
        } else if merge && !out.is_empty() {
            let last = out.last_mut().expect("not empty");
            last.push(',');
            last.push_str(current);
            if current.ends_with("):desc") || current.ends_with("):asc") {
                merge = false;
            }
        } else {
            out.push(current.to_string());
            merge = false;
        }
    }
    out
}

/// The POST body a GET search stands for.
pub fn query_to_body(raw: &str) -> AppResult<Map<String, Value>> {
    let mut body = Map::new();
    let (mut embedder, mut ratio) = (None, None);
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if !PARAMS.contains(&k.as_str()) {
            let expected = miroir_meili::listed(PARAMS);
            return Err(AppError::new(
                Code::BAD_REQUEST,
                format!("Unknown parameter `{k}`: expected one of {expected}"),
            ));
        }
        let value = if NUMBERS.contains(&k.as_str()) {
            let n =
                v.parse::<u64>().map_err(|_| invalid(&k, format!("could not parse `{v}` as a positive integer")))?;
            Value::from(n)
        } else if BOOLS.contains(&k.as_str()) {
            match v.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(invalid(
                        &k,
                        format!("could not parse `{v}` as a boolean, expected either `true` or `false`"),
                    ))
                }
            }
        } else if LISTS.contains(&k.as_str()) {
            Value::from(v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>())
        } else {
            match k.as_str() {
                "sort" => Value::from(sort_list(&v)),
                // A JSON filter (an array of conditions) is taken as JSON, anything else as a string.
                "filter" => serde_json::from_str(&v).unwrap_or(Value::String(v)),
                "rankingScoreThreshold" => match v.parse::<f64>() {
                    Ok(f) if (0.0..=1.0).contains(&f) => Value::from(f),
                    _ => return Err(invalid(
                        &k,
                        "the value of `rankingScoreThreshold` is invalid, expected a float between `0.0` and `1.0`."
                            .into(),
                    )),
                },
                "vector" => {
                    // Checked as Meilisearch's f32s, sent as written.
                    let mut out = Vec::new();
                    for x in v.split(',').map(str::trim) {
                        let f = x.parse::<f32>().map_err(|e| invalid(&k, e.to_string()))?;
                        out.push(x.parse::<f64>().unwrap_or(f64::from(f)));
                    }
                    Value::from(out)
                }
                "hybridEmbedder" => {
                    embedder = Some(v);
                    continue;
                }
                "hybridSemanticRatio" => {
                    match v.parse::<f32>() {
                        // Checked as Meilisearch's f32, sent as written.
                        Ok(f) if (0.0..=1.0).contains(&f) => ratio = v.parse::<f64>().ok(),
                        _ => {
                            return Err(invalid(
                                &k,
                                "the value of `semanticRatio` is invalid, expected a float between `0.0` and `1.0`."
                                    .into(),
                            ))
                        }
                    }
                    continue;
                }
                "personalizeUserContext" => {
                    body.insert("personalize".into(), json!({ "userContext": v }));
                    continue;
                }
                _ => Value::String(v),
            }
        };
        body.insert(k, value);
    }
    match (embedder, ratio) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(AppError::new(
                Code::INVALID_SEARCH_HYBRID_QUERY,
                "`hybridEmbedder` is mandatory when `hybridSemanticRatio` is present",
            ))
        }
        (Some(embedder), ratio) => {
            body.insert("hybrid".into(), json!({ "embedder": embedder, "semanticRatio": ratio.unwrap_or(0.5) }));
        }
    }
    if body.contains_key("vector") && !body.contains_key("hybrid") {
        return Err(AppError::new(
            Code::MISSING_SEARCH_HYBRID,
            "`hybridEmbedder` is mandatory when `vector` is present",
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> String {
        match query_to_body(raw) {
            Ok(b) => panic!("{raw} accepted: {b:?}"),
            Err(e) => e.body()["code"].as_str().unwrap_or_default().to_string(),
        }
    }

    #[test]
    fn parameters_become_the_post_body() {
        let b = query_to_body(
            "q=a&limit=3&showRankingScore=true&retrieveVectors=false&facets=genre,year&locales=fra,eng\
             &sort=_geoPoint(1.0,%202.0):asc,price:desc&filter=%5B%22a%20%3D%201%22%5D\
             &hybridEmbedder=default&hybridSemanticRatio=0.8&rankingScoreThreshold=0.5&personalizeUserContext=u",
        )
        .unwrap();
        assert_eq!(
            Value::Object(b),
            json!({
                "q": "a", "limit": 3, "showRankingScore": true, "retrieveVectors": false,
                "facets": ["genre", "year"], "locales": ["fra", "eng"],
                "sort": ["_geoPoint(1.0,2.0):asc", "price:desc"], "filter": ["a = 1"],
                "rankingScoreThreshold": 0.5, "personalize": {"userContext": "u"},
                "hybrid": {"embedder": "default", "semanticRatio": 0.8},
            })
        );
        assert_eq!(
            query_to_body("hybridEmbedder=e").unwrap()["hybrid"],
            json!({"embedder": "e", "semanticRatio": 0.5})
        );
        assert_eq!(query_to_body("filter=genre%20%3D%20drama").unwrap()["filter"], "genre = drama");
    }

    #[test]
    fn bad_values_get_meilisearchs_codes() {
        assert_eq!(code("showRankingScore=yes"), Code::INVALID_SEARCH_SHOW_RANKING_SCORE);
        assert_eq!(code("retrieveVectors=1"), Code::INVALID_SEARCH_RETRIEVE_VECTORS);
        assert_eq!(code("showMatchesPosition=TRUE"), Code::INVALID_SEARCH_SHOW_MATCHES_POSITION);
        assert_eq!(code("limit=-1"), Code::INVALID_SEARCH_LIMIT);
        assert_eq!(code("hitsPerPage=x"), Code::INVALID_SEARCH_HITS_PER_PAGE);
        assert_eq!(code("hybridSemanticRatio=0.5"), Code::INVALID_SEARCH_HYBRID_QUERY);
        assert_eq!(code("hybridEmbedder=e&hybridSemanticRatio=2"), Code::INVALID_SEARCH_SEMANTIC_RATIO);
        assert_eq!(code("vector=1,2"), Code::MISSING_SEARCH_HYBRID);
        assert_eq!(code("hybridEmbedder=e&vector=1,x"), Code::INVALID_SEARCH_VECTOR);
        assert_eq!(code("rankingScoreThreshold=1.5"), Code::INVALID_SEARCH_RANKING_SCORE_THRESHOLD);
        assert_eq!(code("doggo=1"), Code::BAD_REQUEST);
        let e = query_to_body("showRankingScore=yes").unwrap_err();
        assert_eq!(
            e.body()["message"],
            "Invalid value in parameter `showRankingScore`: could not parse `yes` as a boolean, expected either `true` or `false`"
        );
    }
}
