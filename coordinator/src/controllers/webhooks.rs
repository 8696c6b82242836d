//! Webhook notifier: sends every finished task to every webhook, as Meilisearch does after a batch
//! (`POST`, gzip-compressed NDJSON of task views, the webhook's own headers), then commits that the
//! tasks were notified. Delivery is at least once: a new leader resends what the old one sent but
//! did not get to commit. A webhook that keeps failing is given up on after a few retries per
//! round, so one dead receiver cannot hold the queue (the backlog per round is bounded too).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::future::BoxFuture;
use miroir::task_view::view;
use miroir::webhook::Webhook;
use miroir::Command;

use crate::controller::LeaderTask;
use crate::node::Coordinator;

/// Most tasks sent in one round (one request per webhook).
const MAX_PER_ROUND: usize = 100;
const ATTEMPTS: u32 = 3;

pub struct WebhookNotifier {
    http: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new() -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("static client settings");
        WebhookNotifier { http }
    }

    async fn deliver(&self, uuid: &str, hook: &Webhook, body: &[u8]) {
        for attempt in 1..=ATTEMPTS {
            let mut req = self
                .http
                .post(&hook.url)
                .header("Content-Encoding", "gzip")
                .header("Content-Type", "application/x-ndjson")
                .body(body.to_vec());
            for (name, value) in &hook.headers {
                req = req.header(name, value);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => {
                    tracing::warn!(webhook = %uuid, status = %r.status(), attempt, "webhook refused the notification")
                }
                Err(e) => tracing::warn!(webhook = %uuid, error = %e, attempt, "webhook unreachable"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        metrics::counter!("miroir_coordinator_webhook_failures_total").increment(1);
    }
}

impl Default for WebhookNotifier {
    fn default() -> Self {
        Self::new()
    }
}

fn gzip_ndjson(views: &[serde_json::Value]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for v in views {
        serde_json::to_writer(&mut enc, v)?;
        enc.write_all(b"\n")?;
    }
    enc.finish()
}

impl LeaderTask for WebhookNotifier {
    fn name(&self) -> &'static str {
        "webhook-notifier"
    }

    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (hooks, uids, views): (BTreeMap<String, Webhook>, Vec<u64>, Vec<serde_json::Value>) =
                coord.state().read(|s| {
                    let done = s.tasks.tasks.values().filter(|t| t.status.is_finished() && !t.notified);
                    let (uids, views) = done.take(MAX_PER_ROUND).map(|t| (t.uid, view(t))).unzip();
                    (s.webhooks.clone(), uids, views)
                });
            if uids.is_empty() {
                return;
            }
            if !hooks.is_empty() {
                let body = match gzip_ndjson(&views) {
                    Ok(b) => b,
                    Err(e) => return tracing::error!(error = %e, "could not encode webhook payload"),
                };
                let sends = hooks.iter().map(|(uuid, hook)| self.deliver(uuid, hook, &body));
                futures::future::join_all(sends).await;
                metrics::counter!("miroir_coordinator_webhook_tasks_sent_total").increment(uids.len() as u64);
            }
            if let Err(e) = coord.propose(Command::MarkTasksNotified { uids }, false).await {
                tracing::warn!(error = %e, "could not record notified tasks; they will be sent again");
            }
        })
    }
}
