//! Adaptive replica choice: for every node, the reads in flight and a moving average of their
//! latency, so that a covering set prefers the copies answering fastest (a slow or busy node gets
//! fewer shards) instead of a fixed rotation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use miroir::ids::NodeId;

/// Weight of the newest latency sample in the moving average.
const ALPHA: f64 = 0.3;
/// A failed read counts as this slow, so a failing node is avoided while others answer.
const FAILURE_MS: f64 = 1_000.0;

#[derive(Debug, Clone, Copy, Default)]
struct Stat {
    in_flight: u32,
    /// Moving average of answer times in milliseconds; `None` until the first answer.
    ewma_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct NodeLoad {
    stats: Mutex<HashMap<NodeId, Stat>>,
}

impl NodeLoad {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<NodeId, Stat>) -> T) -> T {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A read to `node` starts.
    pub fn start(&self, node: &NodeId) {
        self.with(|s| s.entry(node.clone()).or_default().in_flight += 1);
    }

    /// A read to `node` ended after `took`, answered or not.
    pub fn finish(&self, node: &NodeId, took: Duration, ok: bool) {
        let sample = if ok { took.as_secs_f64() * 1000.0 } else { FAILURE_MS.max(took.as_secs_f64() * 1000.0) };
        self.with(|s| {
            let st = s.entry(node.clone()).or_default();
            st.in_flight = st.in_flight.saturating_sub(1);
            st.ewma_ms = Some(st.ewma_ms.map_or(sample, |m| m + ALPHA * (sample - m)));
        });
    }

    /// Expected cost of one more read on `node`: its average latency times the reads it would
    /// then have in flight. A node never measured costs as little as the best possible (1 ms) so
    /// it gets tried.
    pub fn cost(&self, node: &NodeId) -> f64 {
        self.with(|s| {
            let st = s.get(node).copied().unwrap_or_default();
            st.ewma_ms.unwrap_or(1.0).max(1.0) * f64::from(st.in_flight + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_failing_and_busy_nodes_cost_more() {
        let load = NodeLoad::default();
        let (a, b) = ("a".to_string(), "b".to_string());
        assert_eq!(load.cost(&a), load.cost(&b), "unmeasured nodes are equal");
        load.start(&a);
        load.finish(&a, Duration::from_millis(5), true);
        load.start(&b);
        load.finish(&b, Duration::from_millis(50), true);
        assert!(load.cost(&a) < load.cost(&b));
        load.start(&a);
        load.start(&a);
        assert!(load.cost(&a) > 5.0 * 2.0, "two reads in flight triple its cost");
        load.finish(&a, Duration::from_millis(5), false);
        assert!(load.cost(&a) > load.cost(&b), "a failure counts as a very slow answer");
    }
}
