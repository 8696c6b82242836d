//! Which action each Meilisearch route needs (its `ActionPolicy<{ actions::... }>` in Meilisearch's
//! source), and which index it acts on (the `{index_uid}` of its path).

use axum::http::Method;

/// What a request must be authorised for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone (`/health`), and paths Meilisearch does not know (they answer 404 unauthenticated).
    Open,
    /// Miroir's own routes: the master key only.
    MasterKey,
    /// One or more actions (`/render-template` needs two), on the path's index if it has one.
    Actions { actions: &'static [&'static str], index: Option<String> },
}

fn act(actions: &'static [&'static str], index: Option<&str>) -> Requirement {
    Requirement::Actions { actions, index: index.map(str::to_string) }
}

/// The requirement of `method path`. A method a route does not serve is `Open`: the router answers
/// 405 or 404 before any handler runs, as Meilisearch does without checking the key.
pub fn requirement(method: &Method, path: &str) -> Requirement {
    use Method as M;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = method.clone();
    let a = |actions: &'static [&'static str]| act(actions, None);
    match (segs.as_slice(), m) {
        (["health"], _) => Requirement::Open,
        (["_miroir", ..], _) => Requirement::MasterKey,
        (["version"], M::GET) => a(&["version"]),
        (["stats"], M::GET) => a(&["stats.get"]),
        (["metrics"], M::GET) => a(&["metrics.get"]),
        (["logs", "stream" | "stderr"], M::POST | M::DELETE) => a(&["metrics.get"]),
        (["indexes"], M::GET) => a(&["indexes.get"]),
        (["indexes"], M::POST) => a(&["indexes.create"]),
        (["indexes", uid, rest @ ..], m) => index_route(uid, rest, m),
        (["multi-search"], M::POST) => a(&["search"]),
        (["tasks"], M::GET) => a(&["tasks.get"]),
        (["tasks"], M::DELETE) => a(&["tasks.delete"]),
        (["tasks", "cancel"], M::POST) => a(&["tasks.cancel"]),
        (["tasks", "compact"], M::POST) => a(&["tasks.compact"]),
        (["tasks", _], M::GET) | (["tasks", _, "documents"], M::GET) => a(&["tasks.get"]),
        (["batches"] | ["batches", _], M::GET) => a(&["tasks.get"]),
        (["keys"], M::POST) => a(&["keys.create"]),
        (["keys"] | ["keys", _], M::GET) => a(&["keys.get"]),
        (["keys", _], M::PATCH) => a(&["keys.update"]),
        (["keys", _], M::DELETE) => a(&["keys.delete"]),
        (["experimental-features"], M::GET) => a(&["experimental.get"]),
        (["experimental-features"], M::PATCH) => a(&["experimental.update"]),
        (["webhooks"] | ["webhooks", _], M::GET) => a(&["webhooks.get"]),
        (["webhooks"], M::POST) => a(&["webhooks.create"]),
        (["webhooks", _], M::PATCH) => a(&["webhooks.update"]),
        (["webhooks", _], M::DELETE) => a(&["webhooks.delete"]),
        (["dumps"], M::POST) => a(&["dumps.create"]),
        (["snapshots"], M::POST) => a(&["snapshots.create"]),
        (["swap-indexes"], M::POST) => a(&["indexes.swap"]),
        (["export"], M::POST) => a(&["export"]),
        (["network"], M::GET) => a(&["network.get"]),
        (["network"], M::PATCH) => a(&["network.update"]),
        (["render-template"], M::POST) => a(&["settings.get", "documents.get"]),
        (["chats"], M::GET) => a(&["chats.get"]),
        (["chats", _], M::GET) => a(&["chats.get"]),
        (["chats", _], M::DELETE) => a(&["chats.delete"]),
        (["chats", _, "settings"], M::GET) => a(&["chatsSettings.get"]),
        (["chats", _, "settings"], M::PATCH | M::DELETE) => a(&["chatsSettings.update"]),
        (["chats", _, "chat", "completions"], M::POST) => a(&["chatCompletions"]),
        // Meilisearch lists rules with `POST /dynamic-search-rules` and clears them all with its DELETE.
        (["dynamic-search-rules"], M::POST) | (["dynamic-search-rules", _], M::GET) => a(&["dynamicSearchRules.get"]),
        (["dynamic-search-rules", _], M::PATCH) => a(&["dynamicSearchRules.update"]),
        (["dynamic-search-rules"] | ["dynamic-search-rules", _], M::DELETE) => a(&["dynamicSearchRules.delete"]),
        _ => Requirement::Open,
    }
}

fn index_route(uid: &str, rest: &[&str], m: Method) -> Requirement {
    use Method as M;
    let i = |actions: &'static [&'static str]| act(actions, Some(uid));
    match (rest, m) {
        ([], M::GET) => i(&["indexes.get"]),
        ([], M::PATCH) => i(&["indexes.update"]),
        ([], M::DELETE) => i(&["indexes.delete"]),
        (["documents"], M::GET) => i(&["documents.get"]),
        (["documents"], M::POST | M::PUT) => i(&["documents.add"]),
        (["documents"], M::DELETE) => i(&["documents.delete"]),
        (["documents", "fetch"], M::POST) => i(&["documents.get"]),
        (["documents", "delete-batch" | "delete"], M::POST) => i(&["documents.delete"]),
        (["documents", "edit"], M::POST) => i(&["documents.*"]),
        (["documents", _], M::GET) => i(&["documents.get"]),
        (["documents", _], M::DELETE) => i(&["documents.delete"]),
        (["settings"] | ["settings", _], M::GET) => i(&["settings.get"]),
        (["settings"], M::PATCH | M::DELETE) => i(&["settings.update"]),
        (["settings", _], M::PUT | M::PATCH | M::DELETE) => i(&["settings.update"]),
        (["stats"], M::GET) => i(&["stats.get"]),
        (["search"], M::GET | M::POST) => i(&["search"]),
        (["facet-search"], M::POST) => i(&["search"]),
        (["similar"], M::GET | M::POST) => i(&["search"]),
        (["compact"], M::POST) => i(&["indexes.compact"]),
        (["fields"], M::POST) => i(&["fields.post"]),
        _ => Requirement::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acts(m: Method, p: &str) -> (Vec<&'static str>, Option<String>) {
        match requirement(&m, p) {
            Requirement::Actions { actions, index } => (actions.to_vec(), index),
            other => panic!("{m} {p}: {other:?}"),
        }
    }

    #[test]
    fn routes_need_meilisearch_actions() {
        assert_eq!(acts(Method::POST, "/indexes/movies/search"), (vec!["search"], Some("movies".into())));
        assert_eq!(acts(Method::GET, "/indexes/movies/documents/12"), (vec!["documents.get"], Some("movies".into())));
        assert_eq!(acts(Method::PUT, "/indexes/movies/settings/synonyms").0, ["settings.update"]);
        assert_eq!(acts(Method::GET, "/indexes"), (vec!["indexes.get"], None));
        assert_eq!(acts(Method::POST, "/multi-search"), (vec!["search"], None));
        assert_eq!(acts(Method::GET, "/keys/abc").0, ["keys.get"]);
        assert_eq!(acts(Method::POST, "/tasks/cancel").0, ["tasks.cancel"]);
        assert_eq!(acts(Method::GET, "/batches/3").0, ["tasks.get"]);
        assert_eq!(acts(Method::POST, "/render-template").0, ["settings.get", "documents.get"]);
        // Meilisearch lists rules by POST and clears them with DELETE on the collection.
        assert_eq!(acts(Method::POST, "/dynamic-search-rules").0, ["dynamicSearchRules.get"]);
        assert_eq!(acts(Method::GET, "/dynamic-search-rules/r").0, ["dynamicSearchRules.get"]);
        assert_eq!(acts(Method::PATCH, "/dynamic-search-rules/r").0, ["dynamicSearchRules.update"]);
        assert_eq!(acts(Method::DELETE, "/dynamic-search-rules").0, ["dynamicSearchRules.delete"]);
        assert_eq!(requirement(&Method::GET, "/health"), Requirement::Open);
        assert_eq!(requirement(&Method::GET, "/_miroir/ready"), Requirement::MasterKey);
        assert_eq!(requirement(&Method::GET, "/no-such-route"), Requirement::Open);
        assert_eq!(requirement(&Method::PUT, "/indexes"), Requirement::Open, "405 before auth");
    }
}
