//! Meilisearch's pagination vocabulary: the default page size and a federated search's window
//! (`limit`/`offset` or `page`/`hitsPerPage`), shared by the gateway and the dev node.

use serde_json::{json, Map, Value};

/// Meilisearch's default `limit` and `hitsPerPage` (`DEFAULT_SEARCH_LIMIT`).
pub const DEFAULT_LIMIT: usize = 20;

/// How many hits and which window a federation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: usize,
    pub offset: usize,
    pub page: Option<usize>,
    pub hits_per_page: Option<usize>,
}

impl Window {
    /// Hits each index must rank (Meilisearch's `required_hit_count`).
    pub fn required(&self) -> usize {
        match (self.page, self.hits_per_page) {
            (None, None) => self.limit + self.offset,
            (None, Some(h)) => h,
            (Some(0), _) => 0,
            (Some(p), None) => DEFAULT_LIMIT * p,
            (Some(p), Some(h)) => h * p,
        }
    }

    /// Hits skipped, then shown, of the merged list.
    pub fn skip_take(&self) -> (usize, usize) {
        match (self.page, self.hits_per_page) {
            (None, None) => (self.offset, self.limit),
            (None, Some(h)) => (0, h),
            (Some(0), _) => (0, 0),
            (Some(p), None) => ((p - 1) * DEFAULT_LIMIT, DEFAULT_LIMIT),
            (Some(p), Some(h)) => ((p - 1) * h, h),
        }
    }

    /// The answer's pagination fields; `total` is not clamped to `maxTotalHits`, as in Meilisearch.
    pub fn info(&self, total: usize) -> Map<String, Value> {
        let mut out = Map::new();
        match (self.page, self.hits_per_page) {
            (None, None) => {
                out.insert("limit".into(), json!(self.limit));
                out.insert("offset".into(), json!(self.offset));
                out.insert("estimatedTotalHits".into(), json!(total));
            }
            (page, h) => {
                let h = h.unwrap_or(DEFAULT_LIMIT);
                out.insert("hitsPerPage".into(), json!(h));
                out.insert("page".into(), json!(page.unwrap_or(1)));
                out.insert("totalPages".into(), json!(if h == 0 { 0 } else { total.div_ceil(h) }));
                out.insert("totalHits".into(), json!(total));
            }
        }
        out
    }
}
