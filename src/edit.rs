//! Edit documents by function through the cluster: what the task log needs to know about the
//! function the gateway sends the nodes. The gateway runs the client's code inside Rhai's `eval`
//! (so a top-level `return` still lets the shard field be restored, see docs/api-compatibility.md),
//! and a failing `eval` adds one frame to the error message, naming the wrapper's call:
//! `…\nin call to function 'eval' (line L, position P)`. The Miroir task shows the error one
//! Meilisearch would give for the client's code, without that last frame, and without Miroir's
//! shard field in the filterable attributes a filter error lists.

use serde_json::Value;

use crate::settings::SHARD_FIELD;

/// Meilisearch's task type of an edition.
pub const KIND: &str = "documentEdition";

/// How Rhai's error display starts the frame of a failed call to `eval`.
const EVAL_FRAME: &str = "\nin call to function 'eval' (line ";

/// How milli introduces the filterable attributes in the error of a filter on another attribute.
const FILTERABLE: &str = "Available filterable attribute patterns are: `";

/// The error of a node task as one Meilisearch would give it (see the module's comment).
pub fn unwrap_error(error: &mut Value) {
    let Some(message) = error.get("message").and_then(Value::as_str) else { return };
    let message = without_shard_field(message);
    let message = without_eval_frame(&message);
    error["message"] = Value::from(message);
}

/// The filterable attributes a node lists include Miroir's shard field; the client's do not.
fn without_shard_field(message: &str) -> String {
    let Some(start) = message.find(FILTERABLE).map(|i| i + FILTERABLE.len()) else { return message.into() };
    let Some(len) = message[start..].find('`') else { return message.into() };
    let kept: Vec<&str> = message[start..start + len].split(", ").filter(|a| *a != SHARD_FIELD).collect();
    format!("{}{}{}", &message[..start], kept.join(", "), &message[start + len..])
}

/// Drops the wrapper's `eval` frame from the end of a message, if it is there (an error in the
/// client's own function definitions, say, has none).
fn without_eval_frame(message: &str) -> String {
    let Some(at) = message.rfind(EVAL_FRAME) else { return message.into() };
    let rest = &message[at + EVAL_FRAME.len()..];
    let Some((line, position)) = rest.strip_suffix(')').and_then(|r| r.split_once(", position ")) else {
        return message.into();
    };
    if line.parse::<u64>().is_err() || position.parse::<u64>().is_err() {
        return message.into();
    }
    message[..at].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_last_eval_frame_is_dropped() {
        let mut e = json!({"message": "Index `m`: Document edition runtime error encountered while running the function: Function not found: f (line 1, position 9)\nin call to function 'eval' (line 2, position 31)", "code": "edit_documents_by_function_error"});
        unwrap_error(&mut e);
        assert_eq!(e["message"], "Index `m`: Document edition runtime error encountered while running the function: Function not found: f (line 1, position 9)");
        // The client's own eval keeps its frame.
        let mut e = json!({"message": "x (line 1, position 1)\nin call to function 'eval' (line 3, position 2)\nin call to function 'eval' (line 4, position 31)"});
        unwrap_error(&mut e);
        assert_eq!(e["message"], "x (line 1, position 1)\nin call to function 'eval' (line 3, position 2)");
        let mut e = json!({"message": "Index `m`: Attribute `t` is not filterable. Available filterable attribute patterns are: `genre, n, _miroir_shard`.\n1:2 t = x"});
        unwrap_error(&mut e);
        assert_eq!(e["message"], "Index `m`: Attribute `t` is not filterable. Available filterable attribute patterns are: `genre, n`.\n1:2 t = x");
        for untouched in [
            json!({"message": "Index `m`: Document editions must keep documents as objects"}),
            json!({"message": "a\nin call to function 'eval' (line 3, position 2) and more"}),
            json!({"code": "x"}),
        ] {
            let mut e = untouched.clone();
            unwrap_error(&mut e);
            assert_eq!(e, untouched);
        }
    }
}
