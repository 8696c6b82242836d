//! Webhooks (`/webhooks`): where the leader sends finished tasks, as Meilisearch does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Meilisearch's limits.
pub const MAX_WEBHOOKS: usize = 20;
pub const MAX_HEADERS: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

impl Webhook {
    /// The webhook as shown to clients: `Authorization` values hidden as Meilisearch hides them.
    pub fn redacted(&self) -> Webhook {
        let mut w = self.clone();
        for (name, value) in w.headers.iter_mut() {
            if name.eq_ignore_ascii_case("authorization") {
                let offset = if value.starts_with("Bearer ") { "Bearer ".len() } else { 0 };
                hide_secret(value, offset);
            }
        }
        w
    }
}

/// Meilisearch's `hide_secret`: keeps a prefix that grows with the secret's length.
fn hide_secret(secret: &mut String, offset: usize) {
    let Some(len) = secret.len().checked_sub(offset) else { return };
    let (keep, mask) = match len {
        0..10 => (0, "XXX..."),
        10..20 => (2, "XXXX..."),
        20..30 => (3, "XXXXX..."),
        _ => (5, "XXXXXX..."),
    };
    let mut at = (offset + keep).min(secret.len());
    while !secret.is_char_boundary(at) {
        at += 1;
    }
    secret.replace_range(at.., mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_is_redacted_like_meilisearch() {
        let w = Webhook {
            url: "https://example.com".into(),
            headers: [
                ("Authorization".to_string(), "Bearer a-very-long-secret-token-value".to_string()),
                ("x-other".to_string(), "visible".to_string()),
            ]
            .into(),
        };
        let r = w.redacted();
        assert_eq!(r.headers["Authorization"], "Bearer a-verXXXXXX...");
        assert_eq!(r.headers["x-other"], "visible");
        let short = Webhook { url: String::new(), headers: [("authorization".to_string(), "abc".to_string())].into() };
        assert_eq!(short.redacted().headers["authorization"], "XXX...");
    }
}
