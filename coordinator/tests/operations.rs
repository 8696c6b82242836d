//! Operating a real coordinator cluster: `miroirctl` (peer add/remove, node add/list, group
//! add/list/remove, `--json` output and errors) and the Prometheus `/metrics` endpoint.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{free_addr, TestCluster};
use serde_json::Value;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn ctl(coordinators: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_miroirctl"))
        .args(["--coordinators", coordinators])
        .args(args)
        .output()
        .expect("run miroirctl")
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}, stderr {:?}", out.stderr))
}

fn addrs(c: &TestCluster, ids: &[u64]) -> String {
    ids.iter().map(|id| c.peers[id].addr.as_str()).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miroirctl_manages_nodes_and_peers_and_reports_errors_as_json() {
    let mut c = TestCluster::start(3);
    c.wait_leader(SECS(20)).await;
    let all = addrs(&c, &[1, 2, 3]);

    let out = ctl(&all, &["--json", "status"]);
    assert!(out.status.success());
    let st = json_of(&out);
    assert!(st["leader"].as_u64().is_some_and(|l| (1..=3).contains(&l)), "{st}");
    assert_eq!(st["members"].as_array().map(Vec::len), Some(3));

    let out = ctl(&all, &["--json", "node", "add", "n1", "--url", "http://10.0.0.1:7700", "--group", "g1"]);
    assert!(out.status.success(), "{out:?}");
    let out = ctl(&all, &["node", "add", "n2", "--url", "http://10.0.0.2:7700", "--group", "g1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("node n2 added to group g1"));
    let list = json_of(&ctl(&all, &["--json", "node", "list"]));
    assert_eq!(list["nodes"]["n1"]["url"], "http://10.0.0.1:7700");
    assert_eq!(list["nodes"]["n2"]["group"], "g1");
    let human = String::from_utf8_lossy(&ctl(&all, &["node", "list"]).stdout).to_string();
    assert!(human.lines().any(|l| l.starts_with("n1") && l.contains("g1") && l.contains("Active")), "{human}");

    // A refused command: exit 1, and with --json one JSON error object.
    let out = ctl(&all, &["--json", "node", "add", "n1", "--url", "http://x", "--group", "g1"]);
    assert_eq!(out.status.code(), Some(1));
    let e = json_of(&out);
    assert_eq!(e["error"]["kind"], "refused");
    assert!(e["error"]["message"].as_str().unwrap().contains("n1"), "{e}");
    let out = ctl(&all, &["--json", "cluster", "set-defaults", "--shards", "0"]);
    assert_eq!(json_of(&out)["error"]["kind"], "refused");

    // Peers: add a fourth, then remove it.
    let addr = c.add_new(4);
    let out = ctl(&all, &["--json", "peer", "add", "4", &addr]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_of(&out)["voters"], serde_json::json!([1, 2, 3, 4]));
    let out = ctl(&all, &["peer", "remove", "4"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("voters [1, 2, 3]"), "{out:?}");
    let e = json_of(&ctl(&all, &["--json", "peer", "remove", "9"]));
    assert_eq!(e["error"]["kind"], "invalid_argument", "{e}");
    c.kill(4);

    // Nobody listening: a clear "unavailable", as JSON.
    let out = ctl(&free_addr(), &["--json", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"]["kind"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_exposes_raft_and_proposal_metrics() {
    let metrics = free_addr();
    let c = TestCluster::start_with(1, &["--metrics-listen", &metrics]);
    c.wait_leader(SECS(20)).await;
    let client = c.client();
    for i in 0..5 {
        client.propose(&miroir::Command::AddGroup { id: format!("g{i}") }).await.unwrap().0.unwrap();
    }
    let mut body = String::new();
    // The gauges follow Raft's metrics: wait until they show the five entries.
    for _ in 0..50 {
        body = reqwest::get(format!("http://{metrics}/metrics")).await.unwrap().text().await.unwrap();
        let applied = body
            .lines()
            .find_map(|l| l.strip_prefix("miroir_coordinator_applied_index "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if applied.is_some_and(|a| a >= 6.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in [
        "miroir_coordinator_term ",
        "miroir_coordinator_leader_id 1",
        "miroir_coordinator_is_leader 1",
        "miroir_coordinator_commit_index",
        "miroir_coordinator_map_version",
        "miroir_coordinator_proposal_seconds_count 5",
    ] {
        assert!(body.contains(name), "/metrics lacks `{name}`:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miroirctl_adds_lists_and_removes_replica_groups() {
    let c = TestCluster::start(1);
    c.wait_leader(SECS(20)).await;
    let all = addrs(&c, &[1]);
    for (n, g) in [("n1", "g1"), ("n2", "g1")] {
        let out = ctl(&all, &["node", "add", n, "--url", &format!("http://{}", free_addr()), "--group", g]);
        assert!(out.status.success(), "{out:?}");
    }
    let create = miroir::Command::CreateIndex {
        uid: "movies".into(),
        primary_key: Some("id".into()),
        shards: Some(2),
        rf: Some(1),
        at: 0,
    };
    c.client().propose(&create).await.unwrap().0.unwrap();

    // A group added to a cluster with an index waits to be filled before serving reads.
    assert!(ctl(&all, &["group", "add", "g2"]).status.success());
    let out = ctl(&all, &["node", "add", "m1", "--url", &format!("http://{}", free_addr()), "--group", "g2"]);
    assert!(out.status.success(), "{out:?}");
    let list = json_of(&ctl(&all, &["--json", "group", "list"]));
    assert_eq!(list["groups"]["g1"]["status"], "active", "{list}");
    assert_eq!(list["groups"]["g2"]["status"], "initializing", "{list}");
    let human = String::from_utf8_lossy(&ctl(&all, &["group", "list"]).stdout).to_string();
    assert!(human.lines().any(|l| l.starts_with("g2") && l.contains("Initializing") && l.ends_with('1')), "{human}");

    // Removing it drains it (aborting a fill copy the rebalancer may have started) and removes
    // its node with it.
    let out = ctl(&all, &["--json", "group", "remove", "g2", "--timeout", "30"]);
    assert!(out.status.success(), "{out:?}");
    let (state, _) = c.client().get_state().await.unwrap();
    assert!(!state.groups.contains_key("g2"));
    assert_eq!(state.nodes["m1"].status, miroir::state::NodeStatus::Removed);
    assert!(state.migrations.is_empty(), "{:?}", state.migrations);
    assert!(state.placements["movies"].iter().all(|groups| groups.keys().eq(["g1"])));

    // The last group serving reads cannot be drained: the command fails and changes nothing.
    let out = ctl(&all, &["--json", "group", "remove", "g1", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(json_of(&out)["error"]["kind"], "refused", "{out:?}");
    let (state, _) = c.client().get_state().await.unwrap();
    assert_eq!(state.groups["g1"].status, miroir::state::GroupStatus::Active);
}
