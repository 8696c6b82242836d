//! Edit documents by function (`POST /indexes/{uid}/documents/edit`): the request checks
//! Meilisearch 1.50 makes before enqueueing, and the function the nodes run instead of the
//! client's, so that every edited document keeps its shard field.
//!
//! The nodes run, for each shard `S` (one node task per shard copy), the client's code between a
//! line that hides the shard field and a line that puts it back:
//!
//! ```text
//! doc.remove("_miroir_shard");
//! <the client's code, unchanged>
//! ;if type_of(doc)=="map"{doc._miroir_shard=S;}
//! ```
//!
//! A top-level `return` would skip the last line, so a function with one runs its code in `eval`
//! instead (in the script's scope: it reads and replaces `doc` and sees `context` as at top level,
//! and `return` ends the `eval`, not the script). Rhai refuses `fn` inside `eval`, so the
//! definitions stay outside, where the `eval`'d code calls them:
//!
//! ```text
//! <empty line>
//! <the client's `fn` definitions, at their own lines and columns, everything else blanked>
//! doc.remove("_miroir_shard");eval(";\n<the client's other code, the definitions blanked>");if type_of(doc)=="map"{doc._miroir_shard=S;}
//! ```
//!
//! - The client's code never sees `_miroir_shard`, and whatever `doc` becomes (a new map, a map
//!   without the field, `let doc = …`) gets it back; `()` still deletes the document.
//! - In both forms the client's code sits one line below where it was and keeps its columns, so
//!   the task log (`miroir::edit`) gives errors their lines back and drops the frame `eval` adds.
//! - Closures are functions too: `eval` refuses them, so a function with both a top-level
//!   `return` and a closure is refused.
//! - `exit()` would end the script before the field is restored: a function that calls it is
//!   refused; so is one defining its own `fn remove`, which the wrapper's `doc.remove` would call.

use miroir::ids::ShardId;
use rhai::Token;
use serde_json::{Map, Value};

use super::shard::SHARD_FIELD;
use crate::error::{AppError, AppResult, Code};

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Edition {
    pub filter: Option<Value>,
    pub context: Option<Map<String, Value>>,
    pub function: String,
}

/// The body as deserr reads `DocumentEditionByFunction`: unknown fields refused and field types
/// checked in the order the fields come, then the required `function`. `null` is no value.
pub fn parse_body(body: &Value) -> AppResult<(Option<Value>, Option<Value>, String)> {
    let Value::Object(m) = body else {
        let msg = format!("Invalid value type: expected an object, but found {}", miroir_meili::json::found(body));
        return Err(AppError::new(Code::BAD_REQUEST, msg));
    };
    let (mut filter, mut context, mut function) = (None, None, None);
    for (k, v) in m {
        match (k.as_str(), v) {
            ("filter", v) => filter = Some(v.clone()).filter(|v| !v.is_null()),
            ("context", v) => context = Some(v.clone()).filter(|v| !v.is_null()),
            ("function", Value::String(s)) => function = Some(s.clone()),
            ("function", other) => {
                let msg = format!(
                    "Invalid value type at `.function`: expected a string, but found {}",
                    miroir_meili::json::found(other)
                );
                return Err(AppError::new(Code::INVALID_DOCUMENT_EDITION_FUNCTION_FILTER, msg));
            }
            (other, _) => {
                let msg = format!("Unknown field `{other}`: expected one of `filter`, `context`, `function`");
                return Err(AppError::new(Code::BAD_REQUEST, msg));
            }
        }
    }
    let function =
        function.ok_or_else(|| AppError::new(Code::MISSING_DOCUMENT_EDITION_FUNCTION, "Missing field `function`"))?;
    Ok((filter, context, function))
}

/// The checks Meilisearch's route makes, but the syntax of the filter's conditions, which the
/// first node judges (the gateway has no filter parser): the function compiles, the filter has a
/// filter's shape and is not empty, the context is an object.
pub fn check(uid: &str, filter: Option<Value>, context: Option<Value>, function: String) -> AppResult<Edition> {
    if let Err(e) = rhai::Engine::new().compile(&function) {
        return Err(AppError::new(Code::BAD_REQUEST, e.to_string()));
    }
    if let Some(f) = &filter {
        check_filter_shape(uid, f)?;
    }
    let context = match context {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(AppError::new(Code::INVALID_DOCUMENT_EDITION_CONTEXT, "The context must be an object")),
    };
    Ok(Edition { filter, context, function })
}

/// `parse_filter` and `Filter::from_array`'s type checks, and the empty filter Meilisearch refuses.
fn check_filter_shape(uid: &str, f: &Value) -> AppResult<()> {
    let syntax = |expected: &str, found: &Value| {
        AppError::new(
            Code::INVALID_DOCUMENT_FILTER,
            format!("Index `{uid}`: Invalid syntax for the filter parameter: `expected {expected}, found: {found}`."),
        )
    };
    let blank = |s: &str| s.trim().is_empty();
    let empty = match f {
        Value::String(s) => blank(s),
        Value::Array(items) => {
            let mut all_blank = true;
            for item in items {
                match item {
                    Value::String(s) => all_blank &= blank(s),
                    Value::Array(ors) => {
                        for o in ors {
                            match o {
                                Value::String(s) => all_blank &= blank(s),
                                other => return Err(syntax("String", other)),
                            }
                        }
                    }
                    other => return Err(syntax("String, [String]", other)),
                }
            }
            all_blank
        }
        other => return Err(syntax("String, Array", other)),
    };
    if empty {
        return Err(AppError::new(Code::INVALID_DOCUMENT_FILTER, "Sending an empty filter is forbidden."));
    }
    Ok(())
}

/// The function the nodes run, to be given a shard by [`Wrapped::for_shard`].
#[derive(Debug, Clone, PartialEq)]
pub struct Wrapped {
    /// Everything before the shard number.
    head: String,
    /// The wrapper's line after the shard number.
    tail: &'static str,
}

impl Wrapped {
    pub fn for_shard(&self, shard: ShardId) -> String {
        format!("{}{shard}{}", self.head, self.tail)
    }
}

/// The wrapped function (see the module's comment). The function must have compiled.
pub fn wrap(function: &str) -> AppResult<Wrapped> {
    let chars: Vec<char> = function.chars().collect();
    let defs = definitions(function, &chars)?;
    let restore = format!("if type_of(doc)==\"map\"{{doc.{SHARD_FIELD}=");
    if !returns_at_top_level(function) {
        let head = format!("doc.remove(\"{SHARD_FIELD}\");\n{function}\n;{restore}");
        return Ok(Wrapped { head, tail: ";}" });
    }
    let in_def = |i: usize| defs.iter().any(|(s, e)| (*s..=*e).contains(&i));
    let blank = |c: char| if c == '\n' || c == '\r' { c } else { ' ' };
    let outside: String = chars.iter().enumerate().map(|(i, c)| if in_def(i) { *c } else { blank(*c) }).collect();
    let inside: String = chars.iter().enumerate().map(|(i, c)| if in_def(i) { blank(*c) } else { *c }).collect();
    // `eval` trims its script: a first line of its own keeps the code's lines and columns.
    let inside = format!(";\n{inside}");
    if rhai::Engine::new().compile(&inside).is_ok_and(|ast| ast.has_functions()) {
        return Err(unsupported("A top-level `return` together with a closure"));
    }
    let head = format!("\n{outside}\ndoc.remove(\"{SHARD_FIELD}\");eval({});{restore}", rhai_string(&inside));
    Ok(Wrapped { head, tail: ";}" })
}

/// Whether the code has a `return` outside its functions and closures (which Rhai compiles as
/// functions), one that would end the script.
fn returns_at_top_level(function: &str) -> bool {
    // Unoptimised: a final `return;` is a no-op to Rhai's optimiser, not to the line after it.
    let mut engine = rhai::Engine::new();
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let Ok(ast) = engine.compile(function) else { return false };
    !ast.clone_statements_only()
        .walk(&mut |path: &[rhai::ASTNode]| !matches!(path.last(), Some(rhai::ASTNode::Stmt(rhai::Stmt::Return(..)))))
}

/// A Rhai string literal of `s`.
fn rhai_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn unsupported(what: &str) -> AppError {
    AppError::new(
        Code::MIROIR_NOT_SUPPORTED,
        format!("{what} is not supported by Miroir in a document edition function."),
    )
}

/// The top-level function definitions (`[private] fn name(..) { .. }`) of `code`, as inclusive
/// ranges of char indexes; refuses a call to `exit`. Tokens come from Rhai's own tokenizer, told
/// where an interpolated string resumes as the parser would tell it.
fn definitions(code: &str, chars: &[char]) -> AppResult<Vec<(usize, usize)>> {
    let mut line_starts = vec![0];
    line_starts.extend(chars.iter().enumerate().filter(|(_, c)| **c == '\n').map(|(i, _)| i + 1));
    if line_starts.len() >= u16::MAX as usize
        || line_starts.windows(2).any(|w| w[1] - w[0] >= u16::MAX as usize)
        || chars.len() - line_starts.last().copied().unwrap_or(0) >= u16::MAX as usize
    {
        // Rhai's positions stop counting there.
        return Err(unsupported("A function of 65535 lines or more, or with a line that long,"));
    }
    let at = |pos: rhai::Position| -> usize {
        let line = pos.line().unwrap_or(1);
        line_starts[line - 1] + pos.position().unwrap_or(1) - 1
    };
    let engine = rhai::Engine::new();
    let inputs = [code];
    let (tokens, control) = engine.lex(&inputs);
    let (mut depth, mut interpolations) = (0usize, Vec::new());
    let (mut def_start, mut private_at, mut defs) = (None, None, Vec::new());
    let (mut after_exit, mut after_fn) = (false, false);
    for (token, pos) in tokens {
        // The wrapper removes the shard field with the map method `remove`, which a script's own
        // `fn remove` would replace.
        if after_fn && matches!(&token, Token::Identifier(s) if s.as_str() == "remove") {
            return Err(unsupported("Defining a function named `remove`"));
        }
        after_fn = token == Token::Fn;
        if after_exit && matches!(token, Token::LeftParen | Token::Unit) {
            return Err(unsupported("Calling `exit`"));
        }
        after_exit = matches!(&token, Token::Identifier(s) if s.as_str() == "exit");
        match &token {
            Token::EOF => break,
            Token::StringConstant(s) if s.as_str() == "exit" => {
                return Err(unsupported("Naming `exit` in a string (a function pointer to it)"))
            }
            Token::InterpolatedString(_) => interpolations.push(depth),
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                if interpolations.last() == Some(&depth) {
                    interpolations.pop();
                    control.borrow_mut().is_within_text = true;
                }
                if depth == 0 {
                    if let Some(start) = def_start.take() {
                        defs.push((start, at(pos)));
                    }
                }
            }
            Token::Private if depth == 0 && def_start.is_none() => private_at = Some(at(pos)),
            Token::Fn if depth == 0 && def_start.is_none() => def_start = Some(private_at.unwrap_or(at(pos))),
            _ => {}
        }
        if token != Token::Private {
            private_at = None;
        }
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_is_read_like_meilisearch_reads_it() {
        let e = parse_body(&json!({"filter": "a = 1"})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (Code::MISSING_DOCUMENT_EDITION_FUNCTION, "Missing field `function`"));
        let e = parse_body(&json!({"function": true})).unwrap_err();
        assert_eq!(e.code, Code::INVALID_DOCUMENT_EDITION_FUNCTION_FILTER);
        assert_eq!(e.message, "Invalid value type at `.function`: expected a string, but found a boolean: `true`");
        let e = parse_body(&json!({"functions": "x"})).unwrap_err();
        assert_eq!(e.message, "Unknown field `functions`: expected one of `filter`, `context`, `function`");
        let e = parse_body(&json!([1])).unwrap_err();
        assert_eq!(e.message, "Invalid value type: expected an object, but found an array: `[1]`");
        let ok = parse_body(&json!({"filter": null, "context": {"a": 1}, "function": "x"})).unwrap();
        assert_eq!(ok, (None, Some(json!({"a": 1})), "x".to_string()));
    }

    #[test]
    fn the_request_is_checked_before_anything_is_written() {
        let e = check("m", None, None, "doc.a = ".into()).unwrap_err();
        assert_eq!(e.code, Code::BAD_REQUEST);
        assert!(e.message.contains("(line 1, position"), "{}", e.message);
        for (filter, message) in [
            (json!(" "), "Sending an empty filter is forbidden."),
            (json!(["", [" "]]), "Sending an empty filter is forbidden."),
            (json!(3), "Index `m`: Invalid syntax for the filter parameter: `expected String, Array, found: 3`."),
            (
                json!([{}]),
                "Index `m`: Invalid syntax for the filter parameter: `expected String, [String], found: {}`.",
            ),
            (json!([[1]]), "Index `m`: Invalid syntax for the filter parameter: `expected String, found: 1`."),
        ] {
            let e = check("m", Some(filter), None, "1".into()).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (Code::INVALID_DOCUMENT_FILTER, message));
        }
        let e = check("m", None, Some(json!("x")), "1".into()).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::INVALID_DOCUMENT_EDITION_CONTEXT, "The context must be an object")
        );
        assert!(check("m", Some(json!(["a = 1", ["b = 2", "c = 3"]])), Some(json!({})), "1".into()).is_ok());
    }

    #[test]
    fn the_code_goes_between_two_lines_of_the_wrapper() {
        let code = "fn f(x) { x }\ndoc.v = f(1) // done";
        assert_eq!(
            wrap(code).unwrap().for_shard(3),
            "doc.remove(\"_miroir_shard\");\nfn f(x) { x }\ndoc.v = f(1) // done\n;if type_of(doc)==\"map\"{doc._miroir_shard=3;}"
        );
        // A `return` in a closure or a function ends only that.
        for code in ["doc.t = doc.tags.filter(|t| { return t != 1; })", "fn f() { return 1 }\ndoc.a = f()"] {
            assert!(wrap(code).unwrap().head.starts_with("doc.remove"), "{code}");
        }
    }

    #[test]
    fn with_a_top_level_return_definitions_stay_in_place_and_the_rest_goes_in_eval() {
        let code =
            "fn f(x) { #{a: x}.a }\nif doc.n > 1 { return } doc.v = f(`${doc.n} {`);\nprivate fn g() { 1 } doc.w = g()";
        let w = wrap(code).unwrap().for_shard(3);
        let (outside, wrapper) = w.rsplit_once('\n').unwrap();
        assert_eq!(outside, "\nfn f(x) { #{a: x}.a }\n                                                \nprivate fn g() { 1 }            ");
        assert_eq!(
            wrapper,
            r#"doc.remove("_miroir_shard");eval(";\n                     \nif doc.n > 1 { return } doc.v = f(`${doc.n} {`);\n                     doc.w = g()");if type_of(doc)=="map"{doc._miroir_shard=3;}"#
        );
        let e = wrap("doc.a = [1].map(|x| x + 1);\nreturn;").unwrap_err();
        assert_eq!(e.code, Code::MIROIR_NOT_SUPPORTED);
    }

    #[test]
    fn exit_and_a_remove_of_its_own_are_refused() {
        for code in ["exit()", "if doc.a { exit(1) }", "doc.exit()", "let f = Fn(\"exit\"); f.call()"] {
            let e = wrap(code).unwrap_err();
            assert_eq!(e.code, Code::MIROIR_NOT_SUPPORTED, "{code}");
        }
        assert!(wrap("doc.exit = 1; doc.why = `exit now`").is_ok());
        let e = wrap("fn remove(k) { 1 }\ndoc.remove(\"a\")").unwrap_err();
        assert_eq!(
            e.message,
            "Defining a function named `remove` is not supported by Miroir in a document edition function."
        );
        assert!(wrap("doc.remove(\"a\"); fn removed() { 1 }").is_ok());
    }

    #[test]
    fn strings_are_quoted_for_rhai() {
        assert_eq!(rhai_string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }
}
