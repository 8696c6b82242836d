//! Meilisearch filter expressions: parser and evaluator over one document.
//!
//! Grammar (Meilisearch 1.x): `expr = or; or = and (OR and)*; and = not (AND not)*;
//! not = NOT not | '(' expr ')' | condition`, conditions `field op value`, `field v1 TO v2`,
//! `field [NOT] IN [..]`, `field [NOT] EXISTS`, `field IS [NOT] NULL|EMPTY`. A filter can also be
//! an array: outer items ANDed, inner arrays ORed.

use serde_json::Value;

use crate::error::{Code, DevResult, MeiliError};

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp(String, CmpOp, String),
    Range(String, String, String),
    In(String, Vec<String>),
    Exists(String),
    IsNull(String),
    IsEmpty(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '=' => {
                out.push(Tok::Op(CmpOp::Eq));
                i += 1
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Op(CmpOp::Ne));
                i += 2
            }
            '>' | '<' => {
                let eq = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Op(match (c, eq) {
                    ('>', true) => CmpOp::Ge,
                    ('>', false) => CmpOp::Gt,
                    (_, true) => CmpOp::Le,
                    _ => CmpOp::Lt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '"' | '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("Expression `{s}` is missing a closing quote.")),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            v.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&o) => {
                            v.push(o);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Quoted(v));
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()[],=!<>\"'".contains(chars[i]) {
                    i += 1;
                }
                if i == start {
                    return Err(format!("Unexpected character `{c}` in filter `{s}`."));
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

impl Parser<'_> {
    fn err(&self) -> String {
        format!(
            "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `_geoRadius`, or `_geoBoundingBox` at `{}`.",
            self.src
        )
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut items = vec![self.and()?];
        while kw(self.peek(), "OR") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(Filter::And(vec![])) } else { Filter::Or(items) })
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut items = vec![self.not()?];
        while kw(self.peek(), "AND") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(Filter::And(vec![])) } else { Filter::And(items) })
    }
    fn not(&mut self) -> Result<Filter, String> {
        if kw(self.peek(), "NOT") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err(format!("Expression `{}` is missing a closing parenthesis.", self.src));
            }
            return Ok(inner);
        }
        self.condition()
    }
    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            _ => Err(format!("Was expecting a value but instead got nothing in `{}`.", self.src)),
        }
    }
    fn condition(&mut self) -> Result<Filter, String> {
        let field = match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => w,
            _ => return Err(self.err()),
        };
        match self.next() {
            Some(Tok::Op(op)) => {
                let v = self.value()?;
                Ok(Filter::Cmp(field, op, v))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("EXISTS") => Ok(Filter::Exists(field)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => self.in_list(field),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") => match self.next() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("EXISTS") => {
                    Ok(Filter::Not(Box::new(Filter::Exists(field))))
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => Ok(Filter::Not(Box::new(self.in_list(field)?))),
                _ => Err(self.err()),
            },
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IS") => {
                let negate = kw(self.peek(), "NOT");
                if negate {
                    self.pos += 1;
                }
                let f = match self.next() {
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => Filter::IsNull(field),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("EMPTY") => Filter::IsEmpty(field),
                    _ => return Err(self.err()),
                };
                Ok(if negate { Filter::Not(Box::new(f)) } else { f })
            }
            Some(Tok::Word(from)) | Some(Tok::Quoted(from)) if kw(self.peek(), "TO") => {
                self.pos += 1;
                let to = self.value()?;
                Ok(Filter::Range(field, from, to))
            }
            _ => Err(self.err()),
        }
    }
    fn in_list(&mut self, field: String) -> Result<Filter, String> {
        if self.next() != Some(Tok::LBracket) {
            return Err(format!("Expected `[` after `IN` keyword in `{}`.", self.src));
        }
        let mut vals = Vec::new();
        loop {
            match self.next() {
                Some(Tok::RBracket) => break,
                Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                    vals.push(w);
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBracket) => break,
                        _ => return Err(format!("Expected matching `]` after the list in `{}`.", self.src)),
                    }
                }
                _ => return Err(format!("Expected matching `]` after the list in `{}`.", self.src)),
            }
        }
        Ok(Filter::In(field, vals))
    }
}

/// Parses one filter string.
pub fn parse_str(s: &str) -> Result<Filter, String> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Ok(Filter::And(vec![]));
    }
    let mut p = Parser { toks, pos: 0, src: s };
    let f = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("Found unexpected characters at the end of the filter: `{s}`. You probably forgot an `OR` or an `AND` rule."));
    }
    Ok(f)
}

/// Parses a filter as Meilisearch accepts it in a request (string, or array of strings / arrays of
/// strings). `code` is the error code of the calling route (`invalid_search_filter`, ...).
pub fn parse(v: &Value, code: Code) -> DevResult<Option<Filter>> {
    let bad_type = || {
        MeiliError::new(code, format!("Invalid syntax for the filter parameter: `expected String, Array, found: {v}`."))
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_str(s).map(Some).map_err(|m| MeiliError::new(code, m)),
        Value::Array(items) => {
            let mut and = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => and.push(parse_str(s).map_err(|m| MeiliError::new(code, m))?),
                    Value::Array(inner) => {
                        let mut or = Vec::new();
                        for i in inner {
                            let s = i.as_str().ok_or_else(bad_type)?;
                            or.push(parse_str(s).map_err(|m| MeiliError::new(code, m))?);
                        }
                        and.push(Filter::Or(or));
                    }
                    _ => return Err(bad_type()),
                }
            }
            Ok(Some(Filter::And(and)))
        }
        _ => Err(bad_type()),
    }
}

impl Filter {
    /// Every attribute the filter reads, to check them against `filterableAttributes`.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.fields(out)),
            Filter::Not(f) => f.fields(out),
            Filter::Cmp(a, ..)
            | Filter::Range(a, ..)
            | Filter::In(a, _)
            | Filter::Exists(a)
            | Filter::IsNull(a)
            | Filter::IsEmpty(a) => out.push(a.clone()),
        }
    }

    pub fn matches(&self, doc: &serde_json::Map<String, Value>) -> bool {
        match self {
            Filter::And(v) => v.iter().all(|f| f.matches(doc)),
            Filter::Or(v) => v.iter().any(|f| f.matches(doc)),
            Filter::Not(f) => !f.matches(doc),
            Filter::Cmp(a, op, lit) => {
                let vals = leaf_values(doc, a);
                match op {
                    CmpOp::Eq => vals.iter().any(|v| eq_lit(v, lit)),
                    CmpOp::Ne => !vals.iter().any(|v| eq_lit(v, lit)),
                    _ => {
                        let Ok(n) = lit.trim().parse::<f64>() else { return false };
                        vals.iter().filter_map(|v| v.as_f64()).any(|x| match op {
                            CmpOp::Gt => x > n,
                            CmpOp::Ge => x >= n,
                            CmpOp::Lt => x < n,
                            _ => x <= n,
                        })
                    }
                }
            }
            Filter::Range(a, from, to) => {
                let (Ok(lo), Ok(hi)) = (from.trim().parse::<f64>(), to.trim().parse::<f64>()) else { return false };
                leaf_values(doc, a).iter().filter_map(|v| v.as_f64()).any(|x| x >= lo && x <= hi)
            }
            Filter::In(a, lits) => leaf_values(doc, a).iter().any(|v| lits.iter().any(|l| eq_lit(v, l))),
            Filter::Exists(a) => lookup(doc, a).is_some(),
            Filter::IsNull(a) => matches!(lookup(doc, a), Some(Value::Null)),
            Filter::IsEmpty(a) => match lookup(doc, a) {
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(v)) => v.is_empty(),
                Some(Value::Object(m)) => m.is_empty(),
                _ => false,
            },
        }
    }
}

/// Looks up a dotted attribute (`a.b`) in a document.
pub fn lookup<'a>(doc: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match doc.get(head)? {
        Value::Object(m) => lookup(m, rest),
        _ => None,
    }
}

/// The scalar values of an attribute; arrays are flattened, as Meilisearch indexes every element.
pub fn leaf_values(doc: &serde_json::Map<String, Value>, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    fn flat(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            Value::Null | Value::Object(_) => {}
            v => out.push(v.clone()),
        }
    }
    if let Some(v) = lookup(doc, path) {
        flat(v, &mut out);
    }
    out
}

/// Equality as Meilisearch's facet databases see it: strings compare case-insensitively, numbers
/// numerically, booleans as the strings `true`/`false`.
fn eq_lit(v: &Value, lit: &str) -> bool {
    match v {
        Value::String(s) => s.to_lowercase() == lit.to_lowercase(),
        Value::Number(n) => lit.trim().parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
        Value::Bool(b) => lit.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn precedence_and_operators() {
        let f = parse_str("a = 1 OR b = 2 AND NOT c IN [x, 'y z']").unwrap();
        assert!(matches!(f, Filter::Or(ref v) if v.len() == 2));
        let d = doc(json!({"a": 2, "b": 2, "c": "w"}));
        assert!(f.matches(&d));
        let d = doc(json!({"a": 2, "b": 2, "c": "Y Z"}));
        assert!(!f.matches(&d));
    }

    #[test]
    fn ranges_exists_null_empty() {
        let d = doc(json!({"n": 5, "z": null, "e": [], "tags": ["A", "b"]}));
        assert!(parse_str("n 1 TO 5").unwrap().matches(&d));
        assert!(parse_str("n > 4 AND n <= 5 AND n != 6").unwrap().matches(&d));
        assert!(parse_str("z IS NULL AND e IS EMPTY AND missing NOT EXISTS").unwrap().matches(&d));
        assert!(parse_str("tags = a AND (tags = q OR tags IN [B])").unwrap().matches(&d));
        assert!(!parse_str("n IS NOT NULL AND z EXISTS AND n < 5").unwrap().matches(&d));
    }

    #[test]
    fn syntax_errors() {
        for bad in ["a =", "(a = 1", "a IN [1, 2", "a ~ 1", "a = 1 b = 2", "= 1"] {
            assert!(parse_str(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn not_is_complement(n in -100i64..100, lo in -100i64..100, hi in -100i64..100) {
            let d = doc(json!({"n": n}));
            let f = parse_str(&format!("n {lo} TO {hi}")).unwrap();
            let nf = parse_str(&format!("NOT n {lo} TO {hi}")).unwrap();
            proptest::prop_assert_eq!(f.matches(&d), !nf.matches(&d));
            proptest::prop_assert_eq!(f.matches(&d), n >= lo && n <= hi);
        }
    }
}
