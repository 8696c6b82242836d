//! API keys, as Meilisearch (1.x) defines them: which actions a key grants, on which indexes,
//! until when. The state holds no secret: a key's value is HMAC-SHA256(master key, uid), which
//! only gateways (they have the master key) compute. Everything here is pure.

use serde::{Deserialize, Serialize};

use crate::is_valid_index_uid;
use crate::Millis;

/// One API key. `actions` and `indexes` keep the order and spelling the client gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Lowercase hyphenated UUID: the form the key value is derived from.
    pub uid: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub actions: Vec<String>,
    pub indexes: Vec<String>,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A change to a key's `name` or `description` (`PATCH /keys/{key}`): kept, or set (`None` clears).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldChange {
    #[default]
    Keep,
    Set(Option<String>),
}

/// Who may create a key for which indexes (Meilisearch's `IndexScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Global only: an index-restricted key may not hold it.
    Global,
    /// Global, but the route checks the index itself (search, multi-search, index listing...).
    RouteChecksIndex,
    /// Always used on one index: the index in the path is checked.
    Index,
    /// A wildcard standing for actions of several scopes.
    Multiple,
}

/// Every action Meilisearch knows, in its order (the order its error message lists them in),
/// whether `*.get` includes it, and its scope.
pub const ACTIONS: &[(&str, bool, Scope)] = {
    use Scope::*;
    &[
        ("*", false, Multiple),
        ("search", true, RouteChecksIndex),
        ("documents.*", false, Multiple),
        ("documents.add", false, Index),
        ("documents.get", true, RouteChecksIndex),
        ("documents.delete", false, Index),
        ("indexes.*", false, Multiple),
        ("indexes.create", false, RouteChecksIndex),
        ("indexes.get", true, RouteChecksIndex),
        ("indexes.update", false, Index),
        ("indexes.delete", false, Index),
        ("indexes.swap", false, RouteChecksIndex),
        ("tasks.*", false, Multiple),
        ("tasks.cancel", false, RouteChecksIndex),
        ("tasks.delete", false, RouteChecksIndex),
        ("tasks.get", true, RouteChecksIndex),
        ("settings.*", false, Multiple),
        ("settings.get", true, RouteChecksIndex),
        ("settings.update", false, Index),
        ("stats.*", false, RouteChecksIndex),
        ("stats.get", true, RouteChecksIndex),
        ("metrics.*", false, Global),
        ("metrics.get", true, Global),
        ("dumps.*", false, Global),
        ("dumps.create", false, Global),
        ("snapshots.*", false, Global),
        ("snapshots.create", false, Global),
        ("version", true, Global),
        ("keys.create", false, Global),
        // Not in `*.get`: reading keys would reveal every other key's value.
        ("keys.get", false, Global),
        ("keys.update", false, Global),
        ("keys.delete", false, Global),
        ("experimental.get", true, Global),
        ("experimental.update", false, Global),
        ("export", true, Global),
        ("network.get", true, Global),
        ("network.update", false, Global),
        ("chatCompletions", false, RouteChecksIndex),
        ("chats.*", false, Global),
        ("chats.get", true, Global),
        ("chats.delete", false, Global),
        ("chatsSettings.*", false, Global),
        ("chatsSettings.get", true, Global),
        ("chatsSettings.update", false, Global),
        ("*.get", false, Multiple),
        ("webhooks.get", true, Global),
        ("webhooks.update", false, Global),
        ("webhooks.delete", false, Global),
        ("webhooks.create", false, Global),
        ("webhooks.*", false, Global),
        ("indexes.compact", false, Index),
        ("fields.post", true, Index),
        ("tasks.compact", false, Global),
        ("dynamicSearchRules.get", true, Global),
        ("dynamicSearchRules.create", false, Global),
        ("dynamicSearchRules.update", false, Global),
        ("dynamicSearchRules.delete", false, Global),
        ("dynamicSearchRules.*", false, Global),
    ]
};

/// The concrete actions a wildcard grants (Meilisearch's expansion when it stores a key).
fn expansion(action: &str) -> &'static [&'static str] {
    match action {
        "documents.*" => &["documents.get", "documents.delete", "documents.add"],
        "indexes.*" => {
            &["indexes.create", "indexes.delete", "indexes.get", "indexes.update", "indexes.swap", "indexes.compact"]
        }
        "settings.*" => &["settings.get", "settings.update"],
        "dumps.*" => &["dumps.create"],
        "snapshots.*" => &["snapshots.create"],
        "tasks.*" => &["tasks.get", "tasks.delete", "tasks.cancel", "tasks.compact"],
        "stats.*" => &["stats.get"],
        "metrics.*" => &["metrics.get"],
        "chats.*" => &["chats.get", "chats.delete"],
        "chatsSettings.*" => &["chatsSettings.get", "chatsSettings.update"],
        "webhooks.*" => &["webhooks.get", "webhooks.update", "webhooks.delete", "webhooks.create"],
        "dynamicSearchRules.*" => &[
            "dynamicSearchRules.get",
            "dynamicSearchRules.create",
            "dynamicSearchRules.update",
            "dynamicSearchRules.delete",
        ],
        _ => &[],
    }
}

pub fn is_known_action(action: &str) -> bool {
    ACTIONS.iter().any(|(a, _, _)| *a == action)
}

pub fn scope(action: &str) -> Option<Scope> {
    ACTIONS.iter().find(|(a, _, _)| *a == action).map(|(_, _, s)| *s)
}

/// Whether a key holding `granted` may perform the concrete action `wanted`.
pub fn grants(granted: &str, wanted: &str) -> bool {
    match granted {
        "*" => wanted != "*.get",
        "*.get" => ACTIONS.iter().any(|(a, read, _)| *a == wanted && *read),
        g => g == wanted || expansion(g).contains(&wanted),
    }
}

/// `*`, an index uid, or an index uid prefix followed by `*`.
pub fn is_valid_index_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => is_valid_index_uid(prefix),
        None => is_valid_index_uid(pattern),
    }
}

pub fn pattern_matches(pattern: &str, index: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => index.starts_with(prefix),
        None => pattern == index,
    }
}

/// A UUID in the one form key values are derived from: lowercase, hyphenated.
pub fn is_canonical_uid(uid: &str) -> bool {
    uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

impl ApiKey {
    /// Whether the key's indexes cover every index (`*`).
    pub fn all_indexes(&self) -> bool {
        self.indexes.iter().any(|p| p == "*")
    }

    pub fn index_authorized(&self, index: &str) -> bool {
        self.indexes.iter().any(|p| pattern_matches(p, index))
    }

    pub fn expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|exp| now >= exp)
    }

    /// Meilisearch's `is_key_authorized`: the key grants `action` on `index` (or, without an index,
    /// on some index when the route itself checks which), and has not expired at `now`.
    pub fn authorizes(&self, action: &str, index: Option<&str>, now: Millis) -> bool {
        if self.expired(now) || !self.actions.iter().any(|a| grants(a, action)) {
            return false;
        }
        if self.all_indexes() {
            return true;
        }
        match index {
            Some(index) => self.index_authorized(index),
            None => scope(action) == Some(Scope::RouteChecksIndex) && !self.indexes.is_empty(),
        }
    }

    /// Why this key cannot be created, if it cannot (checked before the uid is looked up).
    pub fn check(&self) -> Result<(), KeyProblem> {
        if !is_canonical_uid(&self.uid) {
            return Err(KeyProblem::Uid);
        }
        if let Some(a) = self.actions.iter().find(|a| !is_known_action(a)) {
            return Err(KeyProblem::Action(a.clone()));
        }
        if let Some(p) = self.indexes.iter().find(|p| !is_valid_index_pattern(p)) {
            return Err(KeyProblem::Index(p.clone()));
        }
        if self.expires_at.is_some_and(|exp| exp <= self.created_at) {
            return Err(KeyProblem::ExpiresAt);
        }
        let all = self.indexes.is_empty() || self.all_indexes();
        if let Some(a) = self.actions.iter().find(|a| !all && scope(a) == Some(Scope::Global)) {
            return Err(KeyProblem::GlobalActionOnIndexScopedKey(a.clone()));
        }
        Ok(())
    }
}

/// What makes a key invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Uid,
    Action(String),
    Index(String),
    ExpiresAt,
    GlobalActionOnIndexScopedKey(String),
}

/// The keys a fresh Meilisearch creates, in its creation order: (name, description, actions).
pub const DEFAULT_KEYS: [(&str, &str, &[&str]); 4] = [
    ("Default Chat API Key", "Use it to chat and search from the frontend", &["chatCompletions", "search"]),
    (
        "Default Read-Only Admin API Key",
        "Use it to read information across the whole database. Caution! Do not expose this key on a public frontend",
        &["*.get", "keys.get"],
    ),
    (
        "Default Admin API Key",
        "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend",
        &["*"],
    ),
    ("Default Search API Key", "Use it to search from the frontend", &["search"]),
];

/// The default keys with the given uids, created at `at`. Each is stamped one millisecond after
/// the previous, so the newest-first listing shows them in Meilisearch's order.
pub fn default_keys(uids: &[String], at: Millis) -> Vec<ApiKey> {
    DEFAULT_KEYS
        .iter()
        .zip(uids)
        .enumerate()
        .map(|(i, ((name, description, actions), uid))| ApiKey {
            uid: uid.clone(),
            name: Some(name.to_string()),
            description: Some(description.to_string()),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            indexes: vec!["*".into()],
            expires_at: None,
            created_at: at + i as Millis,
            updated_at: at + i as Millis,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(actions: &[&str], indexes: &[&str], expires_at: Option<Millis>) -> ApiKey {
        ApiKey {
            uid: "01b4bc42-eb33-4041-b481-254d00cce834".into(),
            name: None,
            description: None,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            indexes: indexes.iter().map(|a| a.to_string()).collect(),
            expires_at,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn wildcards_expand_like_meilisearch() {
        assert!(grants("*", "keys.delete") && grants("*", "search") && !grants("*", "*.get"));
        assert!(grants("*.get", "search") && grants("*.get", "version") && grants("*.get", "fields.post"));
        assert!(
            !grants("*.get", "keys.get") && !grants("*.get", "documents.add") && !grants("*.get", "chatCompletions")
        );
        assert!(grants("documents.*", "documents.add") && !grants("documents.*", "search"));
        assert!(grants("indexes.*", "indexes.compact") && grants("tasks.*", "tasks.compact"));
        assert!(!grants("settings.get", "settings.update"));
        for (a, _, _) in ACTIONS {
            assert!(is_known_action(a));
        }
        assert!(!is_known_action("doc.add"));
    }

    #[test]
    fn index_patterns() {
        assert!(is_valid_index_pattern("*") && is_valid_index_pattern("movies*") && is_valid_index_pattern("movies"));
        assert!(
            !is_valid_index_pattern("mov ies") && !is_valid_index_pattern("*movies") && !is_valid_index_pattern("")
        );
        assert!(pattern_matches("movies*", "movies_fr") && pattern_matches("movies*", "movies"));
        assert!(!pattern_matches("movies*", "books") && !pattern_matches("movies", "movies_fr"));
    }

    #[test]
    fn authorization_by_action_index_and_expiry() {
        let k = key(&["search", "documents.*"], &["movies*"], Some(1000));
        assert!(k.authorizes("search", Some("movies_fr"), 999));
        assert!(!k.authorizes("search", Some("movies_fr"), 1000), "expired at its expiry instant");
        assert!(!k.authorizes("search", Some("books"), 0));
        assert!(k.authorizes("documents.add", Some("movies"), 0));
        assert!(!k.authorizes("settings.get", Some("movies"), 0));
        // Index-less routes: allowed when the route checks indexes itself, not otherwise.
        assert!(k.authorizes("search", None, 0));
        assert!(!k.authorizes("documents.add", None, 0));
        let admin = key(&["*"], &["*"], None);
        assert!(admin.authorizes("keys.create", None, u64::MAX));
        assert!(!key(&["search"], &[], None).authorizes("search", Some("movies"), 0));
    }

    #[test]
    fn creation_checks() {
        assert_eq!(key(&["search"], &["movies"], None).check(), Ok(()));
        assert_eq!(
            key(&["version"], &["movies"], None).check(),
            Err(KeyProblem::GlobalActionOnIndexScopedKey("version".into()))
        );
        assert_eq!(key(&["version"], &["*"], None).check(), Ok(()));
        assert_eq!(key(&["nope"], &["*"], None).check(), Err(KeyProblem::Action("nope".into())));
        assert_eq!(key(&["*"], &["a b"], None).check(), Err(KeyProblem::Index("a b".into())));
        assert_eq!(key(&["*"], &["*"], Some(0)).check(), Err(KeyProblem::ExpiresAt));
        let mut k = key(&["*"], &["*"], None);
        k.uid = "01B4BC42-EB33-4041-B481-254D00CCE834".into();
        assert_eq!(k.check(), Err(KeyProblem::Uid));
    }

    #[test]
    fn default_keys_list_newest_first_in_meilisearch_order() {
        let uids: Vec<String> = (0..4).map(|i| format!("00000000-0000-4000-8000-00000000000{i}")).collect();
        let mut keys = default_keys(&uids, 10);
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        let names: Vec<_> = keys.iter().map(|k| k.name.clone().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Default Search API Key",
                "Default Admin API Key",
                "Default Read-Only Admin API Key",
                "Default Chat API Key"
            ]
        );
    }
}
