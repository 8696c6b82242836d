//! `GET /tasks`: Meilisearch 1.50's query parameters, their validation errors, filters and paging.
//!
//! Source: `crates/meilisearch/src/routes/tasks.rs` (`TasksFilterQuery`, `get_tasks`,
//! `deserialize_date`), `crates/index-scheduler/src/queue/tasks.rs` (`get_task_ids`: filters,
//! `from`, `reverse`, exclusive date bounds; `total` ignores `from` and `limit`),
//! `crates/meilisearch-types/src/star_or.rs` (`OptionStarOrList`: comma-separated, `*` = no
//! filter, every element still parsed) and deserr's `QueryParamError` for the messages.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, Time};

use super::tasks::{Status, Task, TaskKind};
use crate::error::{Code, DevResult, MeiliError};
use miroir_meili::tasks::filter_value;

/// `TasksFilterQuery`'s fields, in declaration order (deserr lists them so for an unknown one).
const PARAMS: &[&str] = &[
    "limit",
    "from",
    "reverse",
    "batchUids",
    "uids",
    "canceledBy",
    "types",
    "statuses",
    "indexUids",
    "afterEnqueuedAt",
    "beforeEnqueuedAt",
    "afterStartedAt",
    "beforeStartedAt",
    "afterFinishedAt",
    "beforeFinishedAt",
];

/// Meilisearch's `PAGINATION_DEFAULT_LIMIT`.
const DEFAULT_LIMIT: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Enqueued,
    Started,
    Finished,
}

#[derive(Debug, Default)]
struct Query {
    limit: Option<u32>,
    from: Option<u32>,
    reverse: bool,
    uids: Option<Vec<u32>>,
    batch_uids: Option<Vec<u32>>,
    canceled_by: Option<Vec<u32>>,
    types: Option<Vec<TaskKind>>,
    statuses: Option<Vec<Status>>,
    index_uids: Option<Vec<String>>,
    /// (field, is "after", bound): both bounds are exclusive.
    dates: Vec<(Field, bool, OffsetDateTime)>,
}

/// The error code deserr attaches to a parameter (`error = DeserrQueryParamError<...>`).
fn code(param: &str) -> Code {
    match param {
        "batchUids" => Code::INVALID_BATCH_UIDS,
        "indexUids" => Code::INVALID_INDEX_UID,
        other => Code::for_param("invalid_task", other),
    }
}

fn invalid(param: &str, location: &str, msg: String) -> MeiliError {
    MeiliError::new(code(param), format!("Invalid value in parameter `{location}`: {msg}"))
}

fn int_error(v: &str) -> String {
    format!("could not parse `{v}` as a positive integer")
}

fn parse_u32(param: &str, v: &str) -> DevResult<u32> {
    v.parse().map_err(|_| invalid(param, param, int_error(v)))
}

/// `OptionStarOrList<T>`: `None` when any element is `*`, but every other element must parse;
/// the location names the element's index only when there are several.
fn list<T>(param: &str, v: &str, parse: impl Fn(&str) -> Result<T, String>) -> DevResult<Option<Vec<T>>> {
    let items: Vec<&str> = v.split(',').map(str::trim).collect();
    let mut out = Vec::new();
    let mut star = false;
    for (i, item) in items.iter().enumerate() {
        if *item == "*" {
            star = true;
            continue;
        }
        match parse(item) {
            Ok(x) => out.push(x),
            Err(msg) => {
                let location = if items.len() > 1 { format!("{param}[{i}]") } else { param.to_string() };
                return Err(invalid(param, &location, msg));
            }
        }
    }
    Ok(if star { None } else { Some(out) })
}

fn index_uid(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 400 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        // Meilisearch's `IndexUidFormatError` says 512 although it enforces 400.
        return Err(format!("`{v}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes."));
    }
    Ok(v.to_string())
}

/// `deserialize_date`: RFC 3339, or a bare date meaning its midnight (UTC) for `before*` and the
/// next midnight for `after*`.
fn date(v: &str, after: bool) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Ok(t);
    }
    match Date::parse(v, format_description!("[year repr:full base:calendar]-[month repr:numerical]-[day]")) {
        Ok(d) => {
            let t = d.with_time(Time::MIDNIGHT).assume_utc();
            Ok(if after { t.checked_add(Duration::days(1)).unwrap_or(t) } else { t })
        }
        Err(_) => {
            Err(format!("`{v}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."))
        }
    }
}

fn parse(params: &[(String, String)]) -> DevResult<Query> {
    let mut q = Query::default();
    for (k, v) in params {
        let k = k.as_str();
        match k {
            "limit" => q.limit = Some(parse_u32(k, v)?),
            "from" => q.from = Some(parse_u32(k, v)?),
            "reverse" => {
                q.reverse = v.parse().map_err(|_| {
                    invalid(k, k, format!("could not parse `{v}` as a boolean, expected either `true` or `false`"))
                })?
            }
            "uids" => q.uids = list(k, v, |s| s.parse().map_err(|_| int_error(s)))?,
            "batchUids" => q.batch_uids = list(k, v, |s| s.parse().map_err(|_| int_error(s)))?,
            "canceledBy" => q.canceled_by = list(k, v, |s| s.parse().map_err(|_| int_error(s)))?,
            "types" => q.types = list(k, v, |s| filter_value(TaskKind::ALL, "type", "types", s))?,
            "statuses" => q.statuses = list(k, v, |s| filter_value(Status::ALL, "status", "statuses", s))?,
            "indexUids" => q.index_uids = list(k, v, index_uid)?,
            _ => {
                let Some(rest) =
                    k.strip_prefix("after").map(|r| (true, r)).or(k.strip_prefix("before").map(|r| (false, r)))
                else {
                    return Err(unknown(k));
                };
                let (after, field) = rest;
                let field = match field {
                    "EnqueuedAt" => Field::Enqueued,
                    "StartedAt" => Field::Started,
                    "FinishedAt" => Field::Finished,
                    _ => return Err(unknown(k)),
                };
                // `OptionStarOr`: a lone `*` is no bound at all.
                if v != "*" {
                    let t = date(v, after).map_err(|msg| invalid(k, k, msg))?;
                    q.dates.push((field, after, t));
                }
            }
        }
    }
    Ok(q)
}

fn unknown(k: &str) -> MeiliError {
    let all = miroir_meili::listed(PARAMS);
    MeiliError::bad_request(format!("Unknown parameter `{k}`: expected one of {all}"))
}

impl Query {
    fn matches(&self, t: &Task) -> bool {
        let has = |list: &Option<Vec<u32>>, v: Option<u64>| {
            list.as_ref().is_none_or(|l| v.is_some_and(|v| l.iter().any(|x| u64::from(*x) == v)))
        };
        has(&self.uids, Some(t.uid))
            && has(&self.canceled_by, t.canceled_by)
            && has(&self.batch_uids, t.batch_uid)
            && self.types.as_ref().is_none_or(|l| l.contains(&t.kind))
            && self.statuses.as_ref().is_none_or(|l| l.contains(&t.status))
            && self.index_uids.as_ref().is_none_or(|l| t.index_uid.as_ref().is_some_and(|u| l.contains(u)))
            && self.dates.iter().all(|(field, after, bound)| {
                let at = match field {
                    Field::Enqueued => Some(t.enqueued_at),
                    Field::Started => t.started_at,
                    Field::Finished => t.finished_at,
                };
                // A task without the date (not started, not finished) is in no date range.
                at.is_some_and(|at| if *after { at > *bound } else { at < *bound })
            })
    }
}

/// `TaskDeletionOrCancelationQuery`'s fields, in declaration order.
const FILTER_PARAMS: &[&str] = &[
    "uids",
    "batchUids",
    "canceledBy",
    "types",
    "statuses",
    "indexUids",
    "afterEnqueuedAt",
    "beforeEnqueuedAt",
    "afterStartedAt",
    "beforeStartedAt",
    "afterFinishedAt",
    "beforeFinishedAt",
];

/// The uids of the tasks `POST /tasks/cancel` (`what` = "cancel") or `DELETE /tasks` ("delete")
/// acts on: Meilisearch's filters without paging, at least one of them given.
pub fn matched_uids(tasks: &[Task], params: &[(String, String)], what: &str) -> DevResult<Vec<u64>> {
    if let Some((k, _)) = params.iter().find(|(k, _)| !FILTER_PARAMS.contains(&k.as_str())) {
        let all = miroir_meili::listed(FILTER_PARAMS);
        return Err(MeiliError::bad_request(format!("Unknown parameter `{k}`: expected one of {all}")));
    }
    let q = parse(params)?;
    if params.is_empty() {
        return Err(MeiliError::new(Code::MISSING_TASK_FILTERS, format!("Query parameters to filter the tasks to {what} are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.")));
    }
    Ok(tasks.iter().filter(|t| q.matches(t)).map(|t| t.uid).collect())
}

/// `GET /tasks` over the query-string pairs.
pub fn list_tasks(tasks: &[Task], params: &[(String, String)]) -> DevResult<Value> {
    let q = parse(params)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let mut matching: Vec<&Task> = tasks.iter().filter(|t| q.matches(t)).collect();
    if !q.reverse {
        matching.reverse();
    }
    let total = matching.len();
    let window: Vec<&Task> = matching
        .into_iter()
        .filter(|t| match q.from {
            None => true,
            Some(f) if q.reverse => t.uid >= u64::from(f),
            Some(f) => t.uid <= u64::from(f),
        })
        .take(limit as usize + 1)
        .collect();
    // One more than asked for tells whether there is a next page, as in `get_tasks`.
    let next = window.get(limit as usize).map(|t| t.uid);
    let results: Vec<Value> = window.iter().take(limit as usize).map(|t| t.view()).collect();
    let from = results.first().and_then(|t| t.get("uid").cloned()).unwrap_or(Value::Null);
    Ok(json!({"results": results, "total": total, "limit": limit, "from": from, "next": next}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(uid: u64, kind: &'static str, index: &str, status: Status, minute: i64) -> Task {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minute);
        let done = status != Status::Enqueued;
        Task {
            uid,
            batch_uid: done.then_some(uid),
            index_uid: Some(index.into()),
            status,
            kind: kind.parse().expect("a task type"),
            details: json!({}),
            error: None,
            enqueued_at: at,
            started_at: done.then_some(at),
            finished_at: done.then_some(at + Duration::seconds(1)),
            custom_metadata: None,
            canceled_by: None,
        }
    }

    fn queue() -> Vec<Task> {
        vec![
            task(0, "indexCreation", "a", Status::Succeeded, 0),
            task(1, "documentAdditionOrUpdate", "a", Status::Failed, 1),
            task(2, "settingsUpdate", "b", Status::Succeeded, 2),
            task(3, "documentAdditionOrUpdate", "b", Status::Succeeded, 3),
            task(4, "documentDeletion", "a", Status::Enqueued, 4),
        ]
    }

    fn run(q: &str) -> DevResult<Value> {
        let params: Vec<(String, String)> = q
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        list_tasks(&queue(), &params)
    }

    fn uids(v: &Value) -> Vec<u64> {
        v["results"].as_array().unwrap().iter().map(|t| t["uid"].as_u64().unwrap()).collect()
    }

    #[test]
    fn newest_first_and_reverse_oldest_first() {
        assert_eq!(uids(&run("").unwrap()), vec![4, 3, 2, 1, 0]);
        assert_eq!(uids(&run("reverse=true").unwrap()), vec![0, 1, 2, 3, 4]);
        assert_eq!(uids(&run("reverse=false").unwrap()), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn from_limit_next_total() {
        let v = run("limit=2&from=3").unwrap();
        assert_eq!(uids(&v), vec![3, 2]);
        assert_eq!((v["from"].clone(), v["next"].clone(), v["total"].clone()), (json!(3), json!(1), json!(5)));
        let v = run("limit=2&from=1&reverse=true").unwrap();
        assert_eq!(uids(&v), vec![1, 2]);
        assert_eq!((v["from"].clone(), v["next"].clone()), (json!(1), json!(3)));
        let v = run("limit=0").unwrap();
        assert_eq!((uids(&v), v["from"].clone(), v["next"].clone()), (vec![], Value::Null, json!(4)));
    }

    #[test]
    fn filters_combine_and_star_means_all() {
        assert_eq!(uids(&run("types=documentAdditionOrUpdate&indexUids=b").unwrap()), vec![3]);
        assert_eq!(uids(&run("statuses=failed,ENQUEUED").unwrap()), vec![4, 1]);
        assert_eq!(uids(&run("uids=0,2,9&statuses=*").unwrap()), vec![2, 0]);
        assert_eq!(uids(&run("batchUids=1").unwrap()), vec![1]);
        assert_eq!(uids(&run("canceledBy=1").unwrap()), Vec::<u64>::new());
        assert_eq!(run("canceledBy=1").unwrap()["total"], json!(0));
    }

    #[test]
    fn dates_are_exclusive_and_missing_dates_never_match() {
        let t2 = (OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(2)).format(&Rfc3339).unwrap();
        assert_eq!(uids(&run(&format!("afterEnqueuedAt={t2}")).unwrap()), vec![4, 3]);
        assert_eq!(uids(&run(&format!("beforeEnqueuedAt={t2}")).unwrap()), vec![1, 0]);
        // Task 4 is enqueued: no startedAt, so no started range holds it.
        assert_eq!(uids(&run("afterStartedAt=2000-01-01").unwrap()), vec![3, 2, 1, 0]);
        assert_eq!(uids(&run("beforeFinishedAt=2000-01-01").unwrap()), Vec::<u64>::new());
        assert_eq!(uids(&run("afterFinishedAt=*").unwrap()).len(), 5);
        // A bare date is its midnight for `before`, the next midnight for `after`.
        let day = (OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)).date().to_string();
        assert_eq!(uids(&run(&format!("afterEnqueuedAt={day}")).unwrap()), Vec::<u64>::new());
        assert_eq!(uids(&run(&format!("beforeEnqueuedAt={day}")).unwrap()), Vec::<u64>::new());
    }

    #[test]
    fn invalid_values_name_the_parameter() {
        let code = |q: &str| run(q).unwrap_err().code;
        assert_eq!(code("limit=-1"), Code::INVALID_TASK_LIMIT);
        assert_eq!(code("from=x"), Code::INVALID_TASK_FROM);
        assert_eq!(code("reverse=yes"), Code::INVALID_TASK_REVERSE);
        assert_eq!(code("uids=1,x"), Code::INVALID_TASK_UIDS);
        assert_eq!(code("batchUids=x"), Code::INVALID_BATCH_UIDS);
        assert_eq!(code("canceledBy=x"), Code::INVALID_TASK_CANCELED_BY);
        assert_eq!(code("types=nope"), Code::INVALID_TASK_TYPES);
        assert_eq!(code("statuses=*,nope"), Code::INVALID_TASK_STATUSES);
        assert_eq!(code("indexUids=a%b"), Code::INVALID_INDEX_UID);
        assert_eq!(code("beforeEnqueuedAt=yesterday"), Code::INVALID_TASK_BEFORE_ENQUEUED_AT);
        assert_eq!(code("afterFinishedAt=2024-13-01"), Code::INVALID_TASK_AFTER_FINISHED_AT);
        assert_eq!(code("foo=1"), Code::BAD_REQUEST);
        assert_eq!(
            run("uids=1,x").unwrap_err().message,
            "Invalid value in parameter `uids[1]`: could not parse `x` as a positive integer"
        );
        assert_eq!(
            run("beforeStartedAt=x").unwrap_err().message,
            "Invalid value in parameter `beforeStartedAt`: `x` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."
        );
    }
}
