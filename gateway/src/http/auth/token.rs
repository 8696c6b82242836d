//! Key values and tenant tokens, computed exactly as Meilisearch does: a key's value is the
//! lowercase hex HMAC-SHA256 of its hyphenated lowercase uid under the master key; a tenant token
//! is an HS256/384/512 JWT signed with that value, carrying `searchRules`, `apiKeyUid` and `exp`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// The value of the key `uid` (its `key` field) under `master_key`.
pub fn key_value(master_key: &str, uid: &str) -> String {
    key_bytes(master_key, uid).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn key_bytes(master_key: &str, uid: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(master_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(uid.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The bytes a presented API key stands for: Meilisearch hex-decodes it (either case) before
/// comparing, so anything that is not hex matches no key.
pub fn decode_hex(token: &str) -> Option<Vec<u8>> {
    if token.len() % 2 != 0 {
        return None;
    }
    (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect()
}

/// Which indexes a tenant token opens, with an optional filter for each (Meilisearch's
/// `SearchRules`: a list of index patterns, or a map from pattern to `null` or `{ "filter": ... }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SearchRules {
    Set(Vec<String>),
    Map(BTreeMap<String, Option<IndexRules>>),
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IndexRules {
    #[serde(default)]
    pub filter: Option<Value>,
}

fn matches(pattern: &str, index: &str) -> bool {
    miroir_meili::keys::pattern_matches(pattern, index)
}

impl SearchRules {
    fn patterns(&self) -> Vec<&String> {
        match self {
            Self::Set(s) => s.iter().collect(),
            Self::Map(m) => m.keys().collect(),
        }
    }

    pub fn index_authorized(&self, index: &str) -> bool {
        self.patterns().iter().any(|p| matches(p, index))
    }

    pub fn all_indexes(&self) -> bool {
        self.patterns().iter().any(|p| *p == "*")
    }

    /// The patterns, sorted: what Meilisearch lists in its "allowed indexes" error.
    pub fn listed(&self) -> Vec<String> {
        let mut v: Vec<String> = self.patterns().into_iter().cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// The filter for `index`: from the most specific matching pattern (an exact uid before any
    /// prefix, a longer prefix before a shorter one), as Meilisearch picks it.
    pub fn filter(&self, index: &str) -> Option<Value> {
        let Self::Map(map) = self else { return None };
        map.iter()
            .filter(|(p, _)| matches(p, index))
            .max_by_key(|(p, _)| (!p.ends_with('*'), p.len()))
            .and_then(|(_, r)| r.as_ref())
            .and_then(|r| r.filter.clone())
            .filter(|f| !f.is_null())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    search_rules: SearchRules,
    exp: Option<i64>,
    api_key_uid: uuid::Uuid,
}

/// A tenant token's claims once its signature is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Hyphenated lowercase uid of the key that signed it.
    pub key_uid: String,
    pub rules: SearchRules,
    pub exp: Option<i64>,
}

/// Why a bearer token is not a valid tenant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not shaped like a JWT at all: Meilisearch then tries it as an API key.
    NotAToken,
    /// Shaped like one but unreadable, of another algorithm, or badly signed.
    Undecodable(String),
}

fn segment(s: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|e| TokenError::Undecodable(format!("Base64 error: {e}")))
}

/// Verifies a tenant token: `secret_for(uid)` gives the value of the key `uid` (whether that key
/// exists is checked afterwards). Expiry is left to the caller, which knows the time.
pub fn verify(token: &str, secret_for: impl Fn(&str) -> String) -> Result<Tenant, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else { return Err(TokenError::NotAToken) };
    let json_err = |e: serde_json::Error| TokenError::Undecodable(format!("JSON error: {e}"));
    let head: Value = serde_json::from_slice(&segment(header)?).map_err(json_err)?;
    let alg = head.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !["HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
        .contains(&alg)
    {
        return Err(TokenError::Undecodable(format!("JSON error: unknown variant `{alg}`")));
    }
    // The claims are read before the signature is checked: they name the key that signed.
    let claims: Claims = serde_json::from_slice(&segment(payload)?).map_err(json_err)?;
    let key_uid = claims.api_key_uid.hyphenated().to_string();
    let secret = secret_for(&key_uid);
    let signed = format!("{header}.{payload}");
    let sig = segment(signature)?;
    let ok = match alg {
        "HS256" => check::<Hmac<Sha256>>(&secret, &signed, &sig),
        "HS384" => check::<Hmac<Sha384>>(&secret, &signed, &sig),
        "HS512" => check::<Hmac<Sha512>>(&secret, &signed, &sig),
        _ => return Err(TokenError::Undecodable("InvalidAlgorithm".into())),
    };
    if !ok {
        return Err(TokenError::Undecodable("InvalidSignature".into()));
    }
    Ok(Tenant { key_uid, rules: claims.search_rules, exp: claims.exp })
}

fn check<M: Mac + hmac::digest::KeyInit>(secret: &str, signed: &str, sig: &[u8]) -> bool {
    let mut mac = <M as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    // Constant time.
    mac.verify_slice(sig).is_ok()
}

/// Signs a tenant token (HS256/384/512), as SDKs do: for tests and tools.
pub fn sign(alg: &str, secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let sig = match alg {
        "HS384" => mac::<Hmac<Sha384>>(secret, &signed),
        "HS512" => mac::<Hmac<Sha512>>(secret, &signed),
        _ => mac::<Hmac<Sha256>>(secret, &signed),
    };
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &str, signed: &str) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const UID: &str = "01b4bc42-eb33-4041-b481-254d00cce834";

    #[test]
    fn key_value_is_hmac_sha256_hex_of_the_uid() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            key_value("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(key_value("master", UID).len(), 64);
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
    }

    #[test]
    fn tokens_of_each_hs_algorithm_verify_and_others_do_not() {
        let secret = key_value("master", UID);
        let claims = json!({"searchRules": {"movies": {"filter": "tenant = 1"}}, "apiKeyUid": UID, "exp": 99});
        for alg in ["HS256", "HS384", "HS512"] {
            let t = verify(&sign(alg, &secret, &claims), |_| secret.clone()).unwrap();
            assert_eq!((t.key_uid.as_str(), t.exp), (UID, Some(99)));
            assert_eq!(t.rules.filter("movies"), Some(json!("tenant = 1")));
        }
        let wrong = verify(&sign("HS256", "other", &claims), |_| secret.clone());
        assert_eq!(wrong, Err(TokenError::Undecodable("InvalidSignature".into())));
        // alg none: no signature at all.
        let none =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
        assert!(matches!(verify(&none, |_| secret.clone()), Err(TokenError::Undecodable(_))));
        let rs = sign("HS256", &secret, &claims).replacen(
            &URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            1,
        );
        assert_eq!(verify(&rs, |_| secret.clone()), Err(TokenError::Undecodable("InvalidAlgorithm".into())));
        assert_eq!(verify(&secret, |_| secret.clone()), Err(TokenError::NotAToken));
        let missing = sign("HS256", &secret, &json!({"apiKeyUid": UID}));
        match verify(&missing, |_| secret.clone()) {
            Err(TokenError::Undecodable(m)) => assert!(m.contains("missing field `searchRules`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn most_specific_rule_gives_the_filter() {
        let rules: SearchRules = serde_json::from_value(json!({
            "*": {"filter": "a = 1"}, "mov*": {"filter": "b = 2"}, "movies": null, "books": {"filter": "c = 3"}
        }))
        .unwrap();
        assert_eq!(rules.filter("movies"), None, "exact `movies` rule has no filter");
        assert_eq!(rules.filter("movies_fr"), Some(json!("b = 2")));
        assert_eq!(rules.filter("songs"), Some(json!("a = 1")));
        assert_eq!(rules.filter("books"), Some(json!("c = 3")));
        let set: SearchRules = serde_json::from_value(json!(["movies"])).unwrap();
        assert!(set.index_authorized("movies") && !set.index_authorized("books"));
        assert_eq!(set.filter("movies"), None);
    }
}
