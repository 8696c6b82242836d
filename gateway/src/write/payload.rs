//! Document payloads as Meilisearch accepts them: a JSON array (or one object), NDJSON, or CSV.
//! The whole batch is parsed and checked before anything is sent to a node.

use serde_json::{Map, Value};

use crate::error::{AppError, AppResult, Code};

pub type Document = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv { delimiter: u8 },
}

const ACCEPTED: &str =
    "Accepted values for the Content-Type header are: `application/json`, `application/x-ndjson`, `text/csv`";

impl Format {
    /// The format named by a `Content-Type` header, as Meilisearch reads it.
    pub fn from_content_type(content_type: Option<&str>, csv_delimiter: Option<&str>) -> AppResult<Self> {
        let Some(ct) = content_type else {
            return Err(AppError::new(
                Code::MISSING_CONTENT_TYPE,
                format!("A Content-Type header is missing. {ACCEPTED}"),
            ));
        };
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let format = match essence.as_str() {
            "application/json" => Format::Json,
            "application/x-ndjson" => Format::Ndjson,
            "text/csv" => Format::Csv { delimiter: b',' },
            _ => {
                return Err(AppError::new(
                    Code::INVALID_CONTENT_TYPE,
                    format!("The Content-Type `{ct}` is invalid. {ACCEPTED}"),
                ))
            }
        };
        match (format, csv_delimiter) {
            (_, None) => Ok(format),
            (Format::Csv { .. }, Some(d)) if d.len() == 1 && d.is_ascii() => {
                Ok(Format::Csv { delimiter: d.as_bytes()[0] })
            }
            (Format::Csv { .. }, Some(_)) => Err(AppError::new(
                Code::INVALID_DOCUMENT_CSV_DELIMITER,
                "Invalid value in parameter `csvDelimiter`: expected a string of one character",
            )),
            (_, Some(_)) => Err(AppError::new(
                Code::INVALID_DOCUMENT_CSV_DELIMITER,
                "The Content-Type must be `text/csv` when the `csvDelimiter` parameter is used",
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv { .. } => "csv",
        }
    }
}

fn malformed(format: Format, detail: impl std::fmt::Display) -> AppError {
    AppError::new(
        Code::MALFORMED_PAYLOAD,
        format!("The `{}` payload provided is malformed. `{detail}`.", format.name()),
    )
}

/// Parses a whole payload into documents. An empty payload is `missing_payload`.
pub fn parse(body: &[u8], format: Format) -> AppResult<Vec<Document>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::new(Code::MISSING_PAYLOAD, format!("A {} payload is missing.", format.name())));
    }
    match format {
        Format::Json => parse_json(body),
        Format::Ndjson => parse_ndjson(body),
        Format::Csv { delimiter } => parse_csv(body, delimiter),
    }
}

fn parse_json(body: &[u8]) -> AppResult<Vec<Document>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(Format::Json, e))?;
    match value {
        Value::Object(doc) => Ok(vec![doc]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(doc) => Ok(doc),
                other => Err(malformed(Format::Json, format!("expected a map of documents, found `{other}`"))),
            })
            .collect(),
        other => Err(malformed(Format::Json, format!("expected an array of documents, found `{other}`"))),
    }
}

fn parse_ndjson(body: &[u8]) -> AppResult<Vec<Document>> {
    let mut docs = Vec::new();
    for item in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match item.map_err(|e| malformed(Format::Ndjson, e))? {
            Value::Object(doc) => docs.push(doc),
            other => return Err(malformed(Format::Ndjson, format!("expected a map of documents, found `{other}`"))),
        }
    }
    Ok(docs)
}

#[derive(Clone, Copy)]
enum CsvType {
    String,
    Number,
    Boolean,
}

/// Meilisearch's CSV: a header row whose fields may be typed `name:number` or `name:boolean`
/// (`name:string` and untyped are strings); an empty cell is `null`.
fn parse_csv(body: &[u8], delimiter: u8) -> AppResult<Vec<Document>> {
    let fmt = Format::Csv { delimiter };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(body);
    let headers: Vec<(String, CsvType)> = reader
        .headers()
        .map_err(|e| malformed(fmt, e))?
        .iter()
        .map(|h| match h.rsplit_once(':') {
            Some((name, "number")) => (name.to_string(), CsvType::Number),
            Some((name, "boolean")) => (name.to_string(), CsvType::Boolean),
            Some((name, "string")) => (name.to_string(), CsvType::String),
            _ => (h.to_string(), CsvType::String),
        })
        .collect();
    let mut docs = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| malformed(fmt, e))?;
        let mut doc = Map::with_capacity(headers.len());
        for ((name, kind), cell) in headers.iter().zip(record.iter()) {
            let value = if cell.is_empty() {
                Value::Null
            } else {
                match kind {
                    CsvType::String => Value::String(cell.to_string()),
                    CsvType::Number => parse_csv_number(cell).ok_or_else(|| {
                        malformed(fmt, format!("invalid number `{cell}` in `{name}` at line {}", line + 2))
                    })?,
                    CsvType::Boolean => Value::Bool(cell.trim().parse::<bool>().map_err(|_| {
                        malformed(fmt, format!("invalid boolean `{cell}` in `{name}` at line {}", line + 2))
                    })?),
                }
            };
            doc.insert(name.clone(), value);
        }
        docs.push(doc);
    }
    Ok(docs)
}

fn parse_csv_number(cell: &str) -> Option<Value> {
    let cell = cell.trim();
    if let Ok(i) = cell.parse::<i64>() {
        return Some(Value::from(i));
    }
    cell.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_three_formats_alike() {
        let json = parse(br#"[{"id": 1, "n": "a"}, {"id": "b", "n": null}]"#, Format::Json).unwrap();
        let nd = parse(b"{\"id\": 1, \"n\": \"a\"}\n\n{\"id\": \"b\", \"n\": null}\n", Format::Ndjson).unwrap();
        let csv = parse(b"id:number,n\n1,a\n", Format::Csv { delimiter: b',' }).unwrap();
        assert_eq!(json, nd);
        assert_eq!(Value::Object(csv[0].clone()), json!({"id": 1, "n": "a"}));
        let semi = parse(b"id;ok:boolean;n\nx;true;\n", Format::Csv { delimiter: b';' }).unwrap();
        assert_eq!(Value::Object(semi[0].clone()), json!({"id": "x", "ok": true, "n": null}));
    }

    #[test]
    fn refuses_bad_payloads_with_meilisearch_codes() {
        let code = |body: &[u8], f| parse(body, f).unwrap_err().code.name;
        assert_eq!(code(b"[{\"id\": 1},", Format::Json), Code::MALFORMED_PAYLOAD);
        assert_eq!(code(b"[1, 2]", Format::Json), Code::MALFORMED_PAYLOAD);
        assert_eq!(code(b"  ", Format::Json), Code::MISSING_PAYLOAD);
        assert_eq!(code(b"{\"a\":1}\n[2]", Format::Ndjson), Code::MALFORMED_PAYLOAD);
        assert_eq!(code(b"id:number\nabc\n", Format::Csv { delimiter: b',' }), Code::MALFORMED_PAYLOAD);
        assert_eq!(Format::from_content_type(None, None).unwrap_err().code, Code::MISSING_CONTENT_TYPE);
        assert_eq!(Format::from_content_type(Some("text/plain"), None).unwrap_err().code, Code::INVALID_CONTENT_TYPE);
        assert_eq!(Format::from_content_type(Some("application/json; charset=utf-8"), None).unwrap(), Format::Json);
        assert_eq!(
            Format::from_content_type(Some("application/json"), Some(";")).unwrap_err().code.name,
            Code::INVALID_DOCUMENT_CSV_DELIMITER
        );
    }

    #[test]
    fn keeps_field_order() {
        let docs = parse(br#"[{"z": 1, "a": 2, "m": 3}]"#, Format::Json).unwrap();
        assert_eq!(docs[0].keys().collect::<Vec<_>>(), ["z", "a", "m"]);
    }
}
