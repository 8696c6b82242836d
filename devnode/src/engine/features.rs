//! `/experimental-features`, as Meilisearch 1.x answers it: every flag, `false` until set; a PATCH
//! sets the flags it names (`null` leaves one as it is) and refuses unknown names and non-booleans
//! before changing anything.

use serde_json::{Map, Value};

use super::settings::type_name;
use super::Engine;
use crate::error::{DevResult, MeiliError};

/// Meilisearch's runtime-togglable features, in its order.
pub const FEATURES: &[&str] = &[
    "metrics",
    "logsRoute",
    "editDocumentsByFunction",
    "containsFilter",
    "dynamicSearchRules",
    "network",
    "getTaskDocumentsRoute",
    "taskQueueCompactionRoute",
    "compositeEmbedders",
    "chatCompletions",
    "multimodal",
    "foreignKeys",
    "disableDocumentsFetchQueue",
    "legacySearch",
    "renderRoute",
];

impl Engine {
    /// The rules searches apply: none while `dynamicSearchRules` is off (Meilisearch stops
    /// applying them, and keeps them).
    pub fn active_search_rules(&self) -> Option<&miroir_meili::search_rules::SearchRules> {
        self.features.get("dynamicSearchRules").copied().unwrap_or(false).then_some(&self.search_rules)
    }

    pub fn features_view(&self) -> Value {
        let flags =
            FEATURES.iter().map(|f| (f.to_string(), Value::Bool(self.features.get(*f).copied().unwrap_or(false))));
        Value::Object(flags.collect())
    }

    pub fn patch_features(&mut self, patch: &Map<String, Value>) -> DevResult<Value> {
        for (k, v) in patch {
            if !FEATURES.contains(&k.as_str()) {
                let expected = miroir_meili::listed(FEATURES);
                return Err(MeiliError::bad_request(format!("Unknown field `{k}`: expected one of {expected}")));
            }
            if !v.is_boolean() && !v.is_null() {
                return Err(MeiliError::bad_request(format!(
                    "Invalid value type at `.{k}`: expected a boolean, but found {}: `{v}`",
                    type_name(v)
                )));
            }
        }
        for (k, v) in patch {
            if let Some(b) = v.as_bool() {
                self.features.insert(k.clone(), b);
            }
        }
        Ok(self.features_view())
    }
}
