//! Which parameters Meilisearch's routes accept, in the order its structs declare them (the order
//! deserr lists them in for an unknown one).

/// `SimilarQuery`: the body of `POST /indexes/{uid}/similar` and the query of its GET.
pub const SIMILAR_PARAMS: &[&str] = &[
    "id",
    "offset",
    "limit",
    "filter",
    "embedder",
    "attributesToRetrieve",
    "retrieveVectors",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
    "rankingScoreThreshold",
];
