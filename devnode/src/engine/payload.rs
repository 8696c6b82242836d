//! Document payloads (JSON array or object, NDJSON, CSV) parsed when the request arrives, as
//! Meilisearch does: a malformed payload is refused synchronously with `malformed_payload`.

use serde_json::{Map, Number, Value};

use crate::error::{Code, DevResult, MeiliError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    NdJson,
    Csv,
}

impl Format {
    /// Maps a Content-Type header; `None` header is `missing_content_type`.
    pub fn from_content_type(ct: Option<&str>) -> DevResult<Format> {
        const ACCEPTED: &str =
            "Accepted values for the Content-Type header are: `application/json`, `application/x-ndjson`, `text/csv`";
        let Some(ct) = ct else {
            return Err(MeiliError::new(
                Code::MISSING_CONTENT_TYPE,
                format!("A Content-Type header is missing. {ACCEPTED}"),
            ));
        };
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => Ok(Format::Json),
            "application/x-ndjson" => Ok(Format::NdJson),
            "text/csv" => Ok(Format::Csv),
            _ => Err(MeiliError::new(
                Code::INVALID_CONTENT_TYPE,
                format!("The Content-Type `{ct}` is invalid. {ACCEPTED}"),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::NdJson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

fn malformed(f: Format, detail: impl std::fmt::Display) -> MeiliError {
    MeiliError::new(Code::MALFORMED_PAYLOAD, format!("The `{}` payload provided is malformed. `{detail}`.", f.name()))
}

pub fn parse(body: &[u8], format: Format, csv_delimiter: u8) -> DevResult<Vec<Map<String, Value>>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(MeiliError::new(Code::MISSING_PAYLOAD, format!("A {} payload is missing.", format.name())));
    }
    match format {
        Format::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m),
                    other => Err(malformed(
                        format,
                        format!("Couldn't serialize document value: invalid type: {other}, expected a map"),
                    )),
                })
                .collect(),
            Ok(Value::Object(m)) => Ok(vec![m]),
            Ok(other) => Err(malformed(
                format,
                format!("Couldn't serialize document value: invalid type: {other}, expected a sequence"),
            )),
            Err(e) => Err(malformed(format, format!("Couldn't serialize document value: {e}"))),
        },
        Format::NdJson => {
            let mut out = Vec::new();
            for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
                match v {
                    Ok(Value::Object(m)) => out.push(m),
                    Ok(other) => {
                        return Err(malformed(
                            format,
                            format!("Couldn't serialize document value: invalid type: {other}, expected a map"),
                        ))
                    }
                    Err(e) => return Err(malformed(format, e)),
                }
            }
            Ok(out)
        }
        Format::Csv => parse_csv(body, csv_delimiter),
    }
}

/// CSV headers may carry a type, `name:number` or `name:boolean`; everything else is a string and
/// an empty cell is null, as in Meilisearch.
fn parse_csv(body: &[u8], delimiter: u8) -> DevResult<Vec<Map<String, Value>>> {
    let f = Format::Csv;
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(body);
    let headers: Vec<(String, &'static str)> = rdr
        .headers()
        .map_err(|e| malformed(f, e))?
        .iter()
        .map(|h| match h.rsplit_once(':') {
            Some((n, "number")) => (n.to_string(), "number"),
            Some((n, "boolean")) => (n.to_string(), "boolean"),
            Some((n, "string")) => (n.to_string(), "string"),
            _ => (h.to_string(), "string"),
        })
        .collect();
    let mut out = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| malformed(f, e))?;
        let mut m = Map::new();
        for ((name, ty), cell) in headers.iter().zip(rec.iter()) {
            let v = if cell.is_empty() {
                Value::Null
            } else {
                match *ty {
                    "number" => {
                        let n = cell
                            .parse::<i64>()
                            .map(Number::from)
                            .ok()
                            .or_else(|| cell.parse::<f64>().ok().and_then(Number::from_f64));
                        match n {
                            Some(n) => Value::Number(n),
                            None => {
                                return Err(malformed(f, format!("Error parsing number {cell:?} at line {}", line + 2)))
                            }
                        }
                    }
                    "boolean" => match cell.trim() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => return Err(malformed(f, format!("Error parsing boolean {cell:?} at line {}", line + 2))),
                    },
                    _ => Value::String(cell.to_string()),
                }
            };
            m.insert(name.clone(), v);
        }
        out.push(m);
    }
    Ok(out)
}

/// A document id as Meilisearch accepts it: an integer, or a string of `[A-Za-z0-9_-]` under 512
/// bytes. Returns its canonical string.
pub fn document_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) if valid_id_str(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn valid_id_str(s: &str) -> bool {
    !s.is_empty() && s.len() < 512 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn invalid_id(v: &Value) -> MeiliError {
    MeiliError::new(Code::INVALID_DOCUMENT_ID, format!("Document identifier `{v}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes."))
}
