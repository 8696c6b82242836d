//! Edit documents by function through the cluster: what the task log needs to know about the
//! function the gateway sends the nodes (`gateway/src/documents/edit.rs`). It runs the client's
//! code one line below where the client wrote it (after a line hiding the shard field), sometimes
//! inside Rhai's `eval`, whose failure adds a frame naming the wrapper's call on the line after
//! the client's code: `…\nin call to function 'eval' (line L, position P)`. The Miroir task shows
//! the error one Meilisearch would give for the client's code: that frame dropped, lines given
//! back, and Miroir's shard field out of the filterable attributes a filter error lists.

use serde_json::Value;

use crate::settings::SHARD_FIELD;

/// How Rhai's error display starts the frame of a failed call to `eval`.
const EVAL_FRAME: &str = "\nin call to function 'eval' (line ";

/// How milli introduces the filterable attributes in the error of a filter on another attribute.
const FILTERABLE: &str = "Available filterable attribute patterns are: `";

/// A node task's error as one Meilisearch would give it for the client's `function`.
pub fn unwrap_error(error: &mut Value, function: &str) {
    let Some(message) = error.get("message").and_then(Value::as_str) else { return };
    // The wrapper's own line follows the client's code, which starts on line 2.
    let wrapper_line = function.matches('\n').count() + 3;
    let message = without_shard_field(message);
    let message = without_eval_frame(&message, wrapper_line);
    error["message"] = Value::from(lines_back(&message));
}

/// The filterable attributes a node lists include Miroir's shard field; the client's do not.
/// Meilisearch writes the list as `` `a`, `b` `` (the dev node as `` `a, b` ``): both are handled.
pub fn without_shard_field(message: &str) -> String {
    let quoted = format!("`{SHARD_FIELD}`");
    if message.contains(&quoted) {
        return message.replace(&format!("{quoted}, "), "").replace(&format!(", {quoted}"), "");
    }
    let Some(start) = message.find(FILTERABLE).map(|i| i + FILTERABLE.len()) else { return message.into() };
    let Some(len) = message[start..].find('`') else { return message.into() };
    let kept: Vec<&str> = message[start..start + len].split(", ").filter(|a| *a != SHARD_FIELD).collect();
    format!("{}{}{}", &message[..start], kept.join(", "), &message[start + len..])
}

/// Drops the wrapper's `eval` frame (on `line`) from the end of a message, if it is there.
fn without_eval_frame(message: &str, line: usize) -> String {
    let frame = format!("{EVAL_FRAME}{line}, position ");
    if let Some(at) = message.rfind(&frame) {
        let position = message[at + frame.len()..].strip_suffix(')');
        if position.is_some_and(|p| p.parse::<u64>().is_ok()) {
            return message[..at].to_string();
        }
    }
    message.into()
}

/// Every Rhai position `(line N, …)` / `(line N)` moved one line up, where the client wrote it.
fn lines_back(message: &str) -> String {
    const LINE: &str = "(line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(LINE) {
        out.push_str(&rest[..at + LINE.len()]);
        let after = &rest[at + LINE.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let next = &after[digits..];
        match after[..digits].parse::<u64>() {
            Ok(n) if n >= 2 && (next.starts_with(',') || next.starts_with(')')) => out.push_str(&(n - 1).to_string()),
            _ => out.push_str(&after[..digits]),
        }
        rest = next;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_field_leaves_both_list_formats() {
        let real = "Attribute `t` is not filterable. Available filterable attribute patterns are: `_miroir_shard`, `genre`, `n`.";
        assert_eq!(
            without_shard_field(real),
            "Attribute `t` is not filterable. Available filterable attribute patterns are: `genre`, `n`."
        );
        let last = "patterns are: `genre`, `_miroir_shard`.";
        assert_eq!(without_shard_field(last), "patterns are: `genre`.");
    }
    use serde_json::json;

    fn unwrapped(message: &str, function: &str) -> Value {
        let mut e = json!({"message": message, "code": "edit_documents_by_function_error"});
        unwrap_error(&mut e, function);
        e["message"].clone()
    }

    #[test]
    fn lines_come_back_and_only_the_wrappers_eval_frame_is_dropped() {
        let f = "doc.a = 1;\nreturn;";
        assert_eq!(
            unwrapped("Index `m`: …: Function not found: f (line 2, position 9)\nin call to function 'eval' (line 4, position 41)", f),
            "Index `m`: …: Function not found: f (line 1, position 9)"
        );
        // The client's own eval keeps its frame; a frame on another line is not the wrapper's.
        assert_eq!(
            unwrapped("x (line 1, position 1)\nin call to function 'eval' (line 3, position 2)\nin call to function 'eval' (line 4, position 41)", f),
            "x (line 1, position 1)\nin call to function 'eval' (line 2, position 2)"
        );
        assert_eq!(
            unwrapped("x (line 2)\nin call to function 'eval' (line 3, position 2)", "a\nb\nc"),
            "x (line 1)\nin call to function 'eval' (line 2, position 2)"
        );
        assert_eq!(
            unwrapped("Index `m`: Document editions must keep documents as objects", f),
            "Index `m`: Document editions must keep documents as objects"
        );
        assert_eq!(
            unwrapped("Index `m`: Attribute `t` is not filterable. Available filterable attribute patterns are: `genre, n, _miroir_shard`.\n1:2 t = x", f),
            "Index `m`: Attribute `t` is not filterable. Available filterable attribute patterns are: `genre, n`.\n1:2 t = x"
        );
        let mut e = json!({"code": "x"});
        unwrap_error(&mut e, f);
        assert_eq!(e, json!({"code": "x"}));
    }
}
