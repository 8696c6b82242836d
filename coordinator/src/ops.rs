//! Operator views for `miroirctl`: a progress line per migration. The rows come from
//! `miroir::progress`, the copy comparison from `miroir_node_client::verify`, both shared with the
//! gateway's admin API.

use serde_json::Value;

/// A text progress bar for one migration row.
pub fn progress_line(row: &Value) -> String {
    let copied = row["copied"].as_u64().unwrap_or(0);
    let total = row["total"].as_u64();
    let bar = match total {
        Some(t) if t > 0 => {
            let filled = ((copied.min(t) * 20) / t) as usize;
            format!("[{}{}] {copied}/{t}", "#".repeat(filled), ".".repeat(20 - filled))
        }
        _ => format!("{copied} copied"),
    };
    let rate = row["docsPerSecond"].as_f64().map_or(String::new(), |r| format!(" {r} docs/s"));
    let eta = row["etaSeconds"].as_f64().map_or(String::new(), |e| format!(" ETA {e}s"));
    format!(
        "#{:<4} {}/{} {:<8} {} -> {} {:<10} {bar}{rate}{eta}",
        row["id"],
        row["index"].as_str().unwrap_or(""),
        row["shard"],
        row["group"].as_str().unwrap_or(""),
        row["from"].as_str().unwrap_or("(new copy)"),
        row["to"].as_str().unwrap_or(""),
        row["phase"].as_str().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_copied_of_total_rate_and_eta() {
        let row = serde_json::json!({
            "id": 3, "index": "i", "shard": 1, "group": "g", "from": "a", "to": "b", "phase": "copy",
            "copied": 500, "total": 1500, "docsPerSecond": 100.0, "etaSeconds": 10.0,
        });
        let line = progress_line(&row);
        assert!(line.contains("[######..............] 500/1500") && line.contains("ETA 10s"), "{line}");
    }
}
