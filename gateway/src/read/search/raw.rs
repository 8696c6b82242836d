//! Shard answers whose hits stay raw JSON. The merge reads only what it orders and deduplicates
//! by (`_rankingScore`, `_rankingScoreDetails`, the primary key, the distinct attribute); every
//! other field of a hit is kept as the node wrote it and copied into the answer, so a page of large
//! documents costs a scan, not a parse and a re-serialisation. Pure: no I/O.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::distinct::remove_path;
use crate::write::settings::SHARD_FIELD;

/// Where the merge finds a hit's place in the raw table.
const RAW_INDEX: &str = "__miroir_raw";

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, default)]
    hits: Vec<&'a RawValue>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// A hit's top-level fields in order, their values unparsed.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a search hit object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether the merge needs field `k` to order or deduplicate by `path` (a dotted path reads a
/// nested value inside its top-level field).
fn under(k: &str, path: &str) -> bool {
    path == k || path.strip_prefix(k).is_some_and(|rest| rest.starts_with('.'))
}

/// Node answers as the merge sees them (each hit reduced to what it orders by), and the raw hits.
pub struct Parsed<'a> {
    pub answers: Vec<Value>,
    hits: Vec<Fields<'a>>,
}

/// Parses node answers, keeping of each hit only the fields the merge reads.
pub fn parse<'a>(
    bodies: impl IntoIterator<Item = &'a [u8]>,
    pk: &str,
    distinct: Option<&str>,
) -> Result<Parsed<'a>, serde_json::Error> {
    let mut parsed = Parsed { answers: Vec::new(), hits: Vec::new() };
    for body in bodies {
        let top: Top<'a> = serde_json::from_slice(body)?;
        let mut keys = Vec::with_capacity(top.hits.len());
        for raw in top.hits {
            let fields: Fields<'a> = serde_json::from_str(raw.get())?;
            let mut key = Map::new();
            for (k, v) in &fields.0 {
                if k == "_rankingScore"
                    || k == "_rankingScoreDetails"
                    || under(k, pk)
                    || distinct.is_some_and(|d| under(k, d))
                {
                    key.insert(k.clone(), serde_json::from_str(v.get())?);
                }
            }
            key.insert(RAW_INDEX.into(), Value::from(parsed.hits.len()));
            parsed.hits.push(fields);
            keys.push(Value::Object(key));
        }
        let mut answer = top.rest;
        answer.insert("hits".into(), Value::Array(keys));
        parsed.answers.push(Value::Object(answer));
    }
    Ok(parsed)
}

/// What a page's hits must not show: Miroir's shard field always, and what was only asked of the
/// nodes for the merge.
pub struct Strip<'s> {
    pub show_score: bool,
    pub show_details: bool,
    /// The primary key, when the client's `attributesToRetrieve` left it out.
    pub pk: Option<&'s str>,
    /// The distinct attribute, likewise.
    pub distinct: Option<&'s str>,
}

impl Parsed<'_> {
    /// The raw hit a merged key stands for, without what `strip` removes.
    pub fn render(&self, key: &Value, strip: &Strip) -> Result<Box<RawValue>, serde_json::Error> {
        let i = key.get(RAW_INDEX).and_then(Value::as_u64).unwrap_or(0) as usize;
        let mut out = String::from("{");
        for (k, v) in self.hits.get(i).map(|f| f.0.as_slice()).unwrap_or(&[]) {
            let k = k.as_str();
            if k == SHARD_FIELD
                || (k == "_rankingScore" && !strip.show_score)
                || (k == "_rankingScoreDetails" && !strip.show_details)
                || strip.pk == Some(k)
                || strip.distinct == Some(k)
            {
                continue;
            }
            let nested = strip.distinct.and_then(|d| d.strip_prefix(k)).and_then(|r| r.strip_prefix('.'));
            let rewritten = if k == "_formatted" || nested.is_some() {
                let mut value: Value = serde_json::from_str(v.get())?;
                if let Some(o) = value.as_object_mut() {
                    if k == "_formatted" {
                        o.remove(SHARD_FIELD);
                        if let Some(d) = strip.distinct {
                            remove_path(o, d);
                        }
                    } else if let Some(rest) = nested {
                        remove_path(o, rest);
                        if o.is_empty() {
                            continue;
                        }
                    }
                }
                Some(serde_json::to_string(&value)?)
            } else {
                None
            };
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k)?);
            out.push(':');
            out.push_str(rewritten.as_deref().unwrap_or(v.get()));
        }
        out.push('}');
        RawValue::from_string(out)
    }
}

/// A search answer with raw hits: `hits` first, then the other fields in order.
#[derive(Debug)]
pub struct Answer {
    pub hits: Vec<Box<RawValue>>,
    pub rest: Map<String, Value>,
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.rest.len() + 1))?;
        m.serialize_entry("hits", &self.hits)?;
        for (k, v) in &self.rest {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Answer {
    /// The answer as one JSON value (for the paths that reorder hits again: hybrid, federated,
    /// similar); only the page's hits are parsed.
    pub fn into_value(self) -> Value {
        let hits: Vec<Value> = self.hits.iter().filter_map(|h| serde_json::from_str(h.get()).ok()).collect();
        let mut out = Map::new();
        out.insert("hits".into(), Value::Array(hits));
        out.extend(self.rest);
        Value::Object(out)
    }

    pub fn from_value(v: Value) -> Answer {
        let Value::Object(mut rest) = v else { return Answer { hits: vec![], rest: Map::new() } };
        let hits = match rest.shift_remove("hits") {
            Some(Value::Array(h)) => h.iter().filter_map(|h| serde_json::value::to_raw_value(h).ok()).collect(),
            _ => vec![],
        };
        Answer { hits, rest }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_merge_sees_only_what_it_orders_by_and_the_page_gets_the_rest_untouched() {
        let body = br#"{"hits":[{"id":7,"title":"A \"quoted\" title","_miroir_shard":3,"meta":{"family":"f","x":1},
            "_formatted":{"title":"<em>A</em>","_miroir_shard":"3"},"_rankingScore":0.5,
            "_rankingScoreDetails":{"words":{"order":0,"score":0.5}}}],"query":"a","estimatedTotalHits":1}"#;
        let parsed = parse([&body[..]], "id", Some("meta.family")).unwrap();
        let key = &parsed.answers[0]["hits"][0];
        assert_eq!(key["id"], 7);
        assert_eq!(key["meta"]["family"], "f");
        assert!(key.get("title").is_none(), "fields the merge does not read stay raw");
        assert_eq!(parsed.answers[0]["estimatedTotalHits"], 1);

        let strip = Strip { show_score: false, show_details: false, pk: None, distinct: None };
        let hit: Value = serde_json::from_str(parsed.render(key, &strip).unwrap().get()).unwrap();
        assert_eq!(
            hit,
            json!({"id": 7, "title": "A \"quoted\" title", "meta": {"family": "f", "x": 1}, "_formatted": {"title": "<em>A</em>"}})
        );
        let strip = Strip { show_score: true, show_details: true, pk: Some("id"), distinct: Some("meta.family") };
        let raw = parsed.render(key, &strip).unwrap();
        assert!(raw.get().starts_with(r#"{"title":"A \"quoted\" title","meta":{"x":1}"#), "{}", raw.get());
        let hit: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(hit["_rankingScore"], 0.5);
        assert!(hit.get("id").is_none());
    }

    #[test]
    fn an_answer_serialises_hits_first_and_round_trips() {
        let v = json!({"hits": [{"id": 1}], "query": "", "limit": 20});
        let a = Answer::from_value(v.clone());
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"hits":[{"id":1}],"query":"","limit":20}"#);
        assert_eq!(a.into_value(), v);
    }
}
