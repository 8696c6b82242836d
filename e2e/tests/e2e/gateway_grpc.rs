//! The gateway's gRPC coordinator client against a real `miroir-coordinator` process: replies
//! larger than tonic's 4 MiB default, on a fresh and on a cached channel, and the lease calls.

use std::time::Duration;

use miroir::task::{NewTask, TaskFilter};
use miroir::{Command, CommandError};
use miroir_coordinator::client::Client;
use miroir_devtools::harness::{free_port, workspace_bin, Proc};
use miroir_gateway::cluster::grpc::GrpcCluster;
use miroir_gateway::cluster::{Cluster, ClusterError};
use serde_json::json;

fn one_coordinator(dir: &std::path::Path) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = std::process::Command::new(workspace_bin("miroir-coordinator"));
    cmd.args(["--id", "1", "--listen", &addr, "--peers", &format!("1={addr}")])
        .args(["--heartbeat-ms", "100", "--election-min-ms", "400", "--election-max-ms", "800"])
        .arg("--data-dir")
        .arg(dir.join("coordinator-1"));
    (Proc::spawn_logged("coordinator-1", &mut cmd, dir).expect("start coordinator"), addr)
}

async fn wait_ready(client: &Client) {
    for _ in 0..200 {
        if client.propose(&Command::AddGroup { id: "ready".into() }).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the coordinator did not become leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_replies_and_leases_through_the_gateway_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_coordinator, addr) = one_coordinator(dir.path());
    let client = Client::new(&[addr.as_str()]).unwrap();
    wait_ready(&client).await;
    // 500 tasks of 10 KB details: a page of all of them is about 5 MB.
    let blob = "y".repeat(10_000);
    for batch in 0..50 {
        let tasks = (0..10)
            .map(|i| NewTask {
                index_uid: Some("movies".into()),
                kind: miroir_meili::TaskKind::DocumentAdditionOrUpdate,
                details: json!({ "batch": batch, "i": i, "blob": blob }),
                node_tasks: Vec::new(),
                finished: None,
                shares: Vec::new(),
            })
            .collect();
        client.propose(&Command::RegisterTasks { tasks, at: 1 }).await.unwrap().0.unwrap();
    }

    let gateway = GrpcCluster::new(vec![addr.clone()]);
    // The first call creates the channel, the next ones reuse it: each must accept > 4 MiB.
    for attempt in 0..3 {
        let page = gateway.tasks(TaskFilter::default(), None, 1_000, false).await;
        let page = page.unwrap_or_else(|e| panic!("page {attempt}: {e}"));
        assert_eq!(page.tasks.len(), 500);
        assert!(serde_json::to_vec(&page).unwrap().len() > 4 << 20);
    }

    let unknown = gateway.heartbeat("gw-x", 1_000, None).await;
    assert_eq!(unknown, Err(ClusterError::Rejected(CommandError::GatewayNotFound("gw-x".into()))));
    let reg = gateway.register("gw-x", "127.0.0.1:1", 1_000).await.expect("register");
    let ack = gateway.heartbeat("gw-x", 1_000, Some(7)).await.expect("ack");
    assert!(ack.expires_at >= reg.expires_at && ack.log_index > reg.log_index);
    let (state, _) = client.get_state().await.unwrap();
    assert_eq!(state.gateways["gw-x"].acked_version, 7);
}
