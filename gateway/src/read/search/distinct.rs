//! `distinct` across shards. Each node deduplicates its own hits; a value can have documents in
//! several shards, and the merge keeps the best ranked. One round is enough for the window: every
//! node returns its best `offset + limit` hits, all of distinct values, so the merged, deduplicated
//! order has at least `offset + limit` values ranked no lower than any node's last hit, and a hit
//! a node did not return cannot enter the window (it ranks after that node's last hit, behind as
//! many distinct values as the window holds). What the merge needs is the attribute on every hit,
//! even when `attributesToRetrieve` leaves it out or it is nested, and an exact total, made from
//! the attribute's facet values of every node (`merge::distinct_total`).

use serde_json::{Map, Value};

use super::merge::distinct_total;

/// How distinct is served for one search.
#[derive(Debug, Clone)]
pub struct Distinct {
    pub attr: String,
    /// The attribute was added to `attributesToRetrieve` for the merge and must be removed.
    strip_attr: bool,
    /// Nodes return the attribute's facet values, so the total can be made exact.
    has_facet: bool,
    /// Facets the client did not ask for, to remove from the answer: `Some(true)` the whole
    /// `facetDistribution`/`facetStats`, `Some(false)` only the attribute's entries.
    added_facet: Option<bool>,
}

/// Meilisearch's attribute patterns: exact, `*`, `prefix*`, `*suffix`, or a parent object.
fn matches(pattern: &str, attr: &str) -> bool {
    pattern == "*"
        || pattern == attr
        || attr.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('.'))
        || pattern.strip_suffix('*').is_some_and(|p| attr.starts_with(p))
        || pattern.strip_prefix('*').is_some_and(|p| attr.ends_with(p))
}

fn filterable(settings: &Value, attr: &str) -> bool {
    let rules = settings.get("filterableAttributes").and_then(Value::as_array).cloned().unwrap_or_default();
    rules.iter().any(|r| match r {
        Value::String(p) => matches(p, attr),
        rule => rule
            .get("attributePatterns")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().filter_map(Value::as_str).any(|p| matches(p, attr))),
    })
}

impl Distinct {
    /// Adjusts what every node is asked: the attribute retrieved (the merge deduplicates on it),
    /// and its facet values when it is filterable (the `distinct` parameter requires it; the
    /// setting does not, and then the total stays the sum of the shards' own).
    pub fn prepare(attr: String, body: &mut Map<String, Value>, settings: &Value) -> Distinct {
        let mut strip_attr = false;
        if let Some(Value::Array(attrs)) = body.get_mut("attributesToRetrieve") {
            if !attrs.iter().any(|a| a.as_str().is_some_and(|p| matches(p, &attr))) {
                attrs.push(Value::from(attr.clone()));
                strip_attr = true;
            }
        }
        let (mut has_facet, mut added_facet) = (false, None);
        if filterable(settings, &attr) {
            match body.get_mut("facets") {
                None | Some(Value::Null) => {
                    body.insert("facets".into(), Value::from(vec![attr.clone()]));
                    (has_facet, added_facet) = (true, Some(true));
                }
                Some(Value::Array(facets)) => {
                    has_facet = true;
                    if !facets.iter().any(|f| f == "*" || f.as_str() == Some(attr.as_str())) {
                        facets.push(Value::from(attr.clone()));
                        added_facet = Some(false);
                    }
                }
                Some(_) => {}
            }
        }
        Distinct { attr, strip_attr, has_facet, added_facet }
    }

    /// The exact distinct total from every answer's facet values of the attribute, if they all
    /// have them.
    pub fn total(&self, answers: &[Value], offset_mode: bool) -> Option<usize> {
        if !self.has_facet {
            return None;
        }
        let key = if offset_mode { "estimatedTotalHits" } else { "totalHits" };
        let per_shard: Option<Vec<(usize, Vec<&str>)>> = answers
            .iter()
            .map(|a| {
                let total = a.get(key)?.as_u64()? as usize;
                let values = a.get("facetDistribution")?.get(&self.attr)?.as_object()?;
                Some((total, values.keys().map(String::as_str).collect()))
            })
            .collect();
        per_shard.map(distinct_total)
    }

    /// The attribute, when it was only retrieved for the merge and must leave the hits.
    pub fn stripped(&self) -> Option<&str> {
        self.strip_attr.then_some(self.attr.as_str())
    }

    /// Removes from the client's answer what was only asked for the merge.
    pub fn clean(&self, merged: &mut Value) {
        let Some(obj) = merged.as_object_mut() else { return };
        match self.added_facet {
            Some(true) => {
                obj.remove("facetDistribution");
                obj.remove("facetStats");
            }
            Some(false) => {
                for k in ["facetDistribution", "facetStats"] {
                    if let Some(m) = obj.get_mut(k).and_then(Value::as_object_mut) {
                        m.remove(&self.attr);
                    }
                }
            }
            None => {}
        }
        if self.strip_attr {
            for h in obj.get_mut("hits").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(h) = h.as_object_mut() {
                    remove_path(h, &self.attr);
                    if let Some(f) = h.get_mut("_formatted").and_then(Value::as_object_mut) {
                        remove_path(f, &self.attr);
                    }
                }
            }
        }
    }
}

/// Removes a (possibly nested, dotted) attribute from a hit, and the parent objects it leaves
/// empty, which were only there for it.
pub fn remove_path(obj: &mut Map<String, Value>, path: &str) {
    if obj.remove(path).is_some() {
        return;
    }
    for (i, _) in path.char_indices().filter(|(_, c)| *c == '.') {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        if let Some(Value::Object(child)) = obj.get_mut(head) {
            remove_path(child, rest);
            if child.is_empty() {
                obj.remove(head);
            }
            return;
        }
    }
}
