//! How Meilisearch's deserialiser (deserr) names a JSON value in "Invalid value type" messages.

use serde_json::Value;

/// deserr's name of a value's kind: `a positive integer`, `a negative integer`, `a number` (a
/// float), `a string`, …
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a positive integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What deserr prints after "but found": the kind, then the value itself (`null` alone).
pub fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        v => format!("{}: `{v}`", kind(v)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_as_deserr_names_them() {
        assert_eq!(kind(&json!(3)), "a positive integer");
        assert_eq!(kind(&json!(-3)), "a negative integer");
        assert_eq!(kind(&json!(1.5)), "a number");
        assert_eq!(found(&json!("x")), "a string: `\"x\"`");
        assert_eq!(found(&json!(null)), "null");
    }
}
