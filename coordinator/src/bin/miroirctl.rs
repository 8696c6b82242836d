//! `miroirctl`: operate a Miroir cluster through its coordinators.

use clap::{Parser, Subcommand};
use miroir::Command;
use std::time::Duration;

use miroir::state::NodeStatus;
use miroir_coordinator::client::{Applied, Client};
use miroir_coordinator::node::now_ms;
use miroir_coordinator::ops;
use serde_json::json;

#[derive(Parser)]
#[command(name = "miroirctl", version, about = "Operate a Miroir cluster")]
struct Cli {
    /// Coordinator gRPC addresses, tried in order until one answers.
    #[arg(long, env = "MIROIR_COORDINATORS", value_delimiter = ',', default_value = "127.0.0.1:7400")]
    coordinators: Vec<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Master key of the Meilisearch nodes (for `verify`, which reads them directly).
    #[arg(long, env = "MIROIR_MASTER_KEY", hide_env_values = true, global = true)]
    master_key: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Leader, term, members, commit index and map version.
    Status,
    /// Coordinator membership.
    #[command(subcommand)]
    Peer(PeerCmd),
    /// Meilisearch nodes.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Cluster-wide settings.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Replica groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Shard migrations in flight: phase, documents copied, rate and ETA.
    Migrations {
        /// Redraw every second until no migration is left.
        #[arg(long)]
        watch: bool,
    },
    /// Compares every in-sync copy of every shard of INDEX and reports the differences
    /// (exit status 1 if any).
    Verify { index: String },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Adds a replica group (Initializing while it is filled, when indexes exist).
    Add { id: String },
    /// Stops reads from a replica group (Draining), waits until every gateway routes by that
    /// map, then removes the group and its nodes. Another Active group must hold every shard.
    Remove {
        id: String,
        /// Longest wait for the gateways, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Replica groups and their status (Initializing while being filled).
    List,
}

#[derive(Subcommand)]
enum PeerCmd {
    /// Adds a coordinator peer (it must already run with this id, and any --peers).
    Add { id: u64, addr: String },
    /// Removes a coordinator peer from the voters.
    Remove { id: u64 },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Adds a Meilisearch node to a replica group (creating the group if needed).
    Add {
        id: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        group: String,
    },
    List,
    /// Stops placing shards on the node and moves its copies to other nodes of its group.
    Drain {
        id: String,
    },
    /// Drains the node, waits until it holds no copy, then removes it.
    Remove {
        id: String,
        /// Remove now; refused if the node still holds copies.
        #[arg(long)]
        no_wait: bool,
        /// Longest wait for the drain, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Defaults for new indexes.
    SetDefaults {
        #[arg(long)]
        shards: Option<u32>,
        #[arg(long)]
        rf: Option<u32>,
    },
}

/// Sets the node Draining (unless it is already Draining or Failed) and waits until it holds no
/// copy, printing how many are left.
async fn drain_and_wait(client: &Client, id: &str, timeout: Duration, quiet: bool) -> anyhow::Result<()> {
    let (state, _) = client.get_state().await?;
    let status = state.nodes.get(id).map(|n| n.status).ok_or_else(|| anyhow::anyhow!("node {id} not found"))?;
    if !matches!(status, NodeStatus::Draining | NodeStatus::Failed | NodeStatus::Removed) {
        let (a, i) = client.propose(&Command::SetNodeStatus { id: id.into(), status: NodeStatus::Draining }).await?;
        applied(a, i)?;
    }
    let end = std::time::Instant::now() + timeout;
    let mut last = usize::MAX;
    loop {
        let (state, _) = client.get_state().await?;
        let left =
            state.placements_of(id) + state.migrations.values().filter(|m| m.from.as_deref() == Some(id)).count();
        if left == 0 {
            return Ok(());
        }
        if left != last && !quiet {
            eprintln!("node {id}: {left} copies left to move");
            last = left;
        }
        if std::time::Instant::now() >= end {
            anyhow::bail!("node {id} still holds {left} copies after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sets the group Draining (no more reads from it) and waits until every gateway with a live
/// lease installed that map, so the group is removed only once no gateway can read it, and until
/// no migration targets it (`RemoveGroup` refuses otherwise).
async fn drain_group(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let (state, _) = client.get_state().await?;
    let group = state.groups.get(id).ok_or_else(|| anyhow::anyhow!("group {id} not found"))?;
    if !state.nodes.values().any(|n| n.group == id && n.status != NodeStatus::Removed) {
        return Ok(()); // it holds nothing and serves nothing
    }
    let version = if group.status == miroir::state::GroupStatus::Draining {
        state.map_version
    } else {
        let cmd = Command::SetGroupStatus { id: id.into(), status: miroir::state::GroupStatus::Draining };
        let (a, i) = client.propose(&cmd).await?;
        applied(a, i)?;
        i
    };
    let end = std::time::Instant::now() + timeout;
    loop {
        let (state, _) = client.get_state().await?;
        // Copies into a group on its way out are wasted: those not cut over yet are aborted (a
        // refusal means the worker moved on meanwhile), the others are waited for.
        let moving: Vec<_> = state.migrations.iter().filter(|(_, m)| m.group == id).collect();
        for (mid, m) in &moving {
            if m.phase < miroir::state::MigrationPhase::Cutover {
                let _ = client.propose(&Command::AbortMigration { id: **mid }).await?;
            }
        }
        if moving.is_empty() && state.gateways_acked(version, now_ms()) {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            anyhow::bail!(
                "group {id}: gateways did not install map version {version}, or {} migration(s) into it did not end, within {timeout:?}",
                moving.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print(json_out: bool, value: serde_json::Value, human: impl FnOnce() -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

fn applied(a: Applied, index: u64) -> anyhow::Result<serde_json::Value> {
    match a {
        Ok(r) => Ok(json!({"logIndex": index, "response": r})),
        Err(e) => anyhow::bail!("refused: {e}"),
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let json_out = cli.json;
    if let Err(e) = run(cli).await {
        if json_out {
            // Machines read one JSON object whatever happened.
            let kind = match e.downcast_ref::<miroir_coordinator::Error>() {
                Some(miroir_coordinator::Error::Unavailable(_)) => "unavailable",
                Some(miroir_coordinator::Error::InvalidArgument(_)) => "invalid_argument",
                Some(miroir_coordinator::Error::NotFound(_)) => "not_found",
                Some(miroir_coordinator::Error::Internal(_)) => "internal",
                None => "refused",
            };
            println!("{}", json!({"error": {"kind": kind, "message": e.to_string()}}));
        } else {
            eprintln!("miroirctl: {e}");
        }
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = Client::new(&cli.coordinators)?;
    let j = cli.json;
    match cli.cmd {
        Cmd::Status => {
            let s = client.status().await?;
            let members: Vec<_> =
                s.members.iter().map(|p| json!({"id": p.id, "addr": p.addr, "voter": p.voter})).collect();
            let v = json!({
                "answeredBy": s.id, "leader": s.leader, "leaderAddr": s.leader_addr, "term": s.term,
                "commitIndex": s.commit_index, "appliedIndex": s.applied_index, "mapVersion": s.map_version,
                "state": s.state, "members": members,
            });
            print(j, v, || {
                let mut out = format!(
                    "leader      {} ({})\nterm        {}\ncommit      {}\napplied     {}\nmap version {}\n\nID  ADDR                  ROLE",
                    s.leader, s.leader_addr, s.term, s.commit_index, s.applied_index, s.map_version
                );
                for p in &s.members {
                    let role = if p.id == s.leader {
                        "leader"
                    } else if p.voter {
                        "voter"
                    } else {
                        "learner"
                    };
                    out.push_str(&format!("\n{:<3} {:<21} {role}", p.id, p.addr));
                }
                out
            });
        }
        Cmd::Peer(PeerCmd::Add { id, addr }) => {
            let r = client.add_peer(id, &addr).await?;
            let ids: Vec<u64> = r.members.iter().filter(|p| p.voter).map(|p| p.id).collect();
            print(j, json!({"logIndex": r.log_index, "voters": ids}), || format!("peer {id} added; voters {ids:?}"));
        }
        Cmd::Peer(PeerCmd::Remove { id }) => {
            let r = client.remove_peer(id).await?;
            let ids: Vec<u64> = r.members.iter().filter(|p| p.voter).map(|p| p.id).collect();
            print(j, json!({"logIndex": r.log_index, "voters": ids}), || format!("peer {id} removed; voters {ids:?}"));
        }
        Cmd::Node(NodeCmd::Add { id, url, group }) => {
            let (state, _) = client.get_state().await?;
            if !state.groups.contains_key(&group) {
                let (a, i) = client.propose(&Command::AddGroup { id: group.clone() }).await?;
                // Another operator may have created it in between: that is fine.
                if let Err(e) = a {
                    if !matches!(e, miroir::CommandError::GroupExists(_)) {
                        anyhow::bail!("creating group {group} refused at {i}: {e}");
                    }
                }
            }
            let (a, i) = client.propose(&Command::AddNode { id: id.clone(), url, group: group.clone() }).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("node {id} added to group {group} (map version {i})"));
        }
        Cmd::Node(NodeCmd::List) => {
            let (state, _) = client.get_state().await?;
            let v = json!({"nodes": state.nodes});
            print(j, v, || {
                let mut out = format!("{:<16} {:<10} {:<10} URL", "ID", "GROUP", "STATUS");
                for (id, n) in &state.nodes {
                    out.push_str(&format!("\n{id:<16} {:<10} {:<10} {}", n.group, format!("{:?}", n.status), n.url));
                }
                out
            });
        }
        Cmd::Node(NodeCmd::Drain { id }) => {
            let cmd = Command::SetNodeStatus { id: id.clone(), status: NodeStatus::Draining };
            let (a, i) = client.propose(&cmd).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("node {id} draining; `miroirctl migrations --watch` follows the moves"));
        }
        Cmd::Node(NodeCmd::Remove { id, no_wait, timeout }) => {
            if !no_wait {
                drain_and_wait(&client, &id, Duration::from_secs(timeout), j).await?;
            }
            let (a, i) = client.propose(&Command::RemoveNode { id: id.clone() }).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("node {id} removed"));
        }
        Cmd::Group(GroupCmd::Add { id }) => {
            let (a, i) = client.propose(&Command::AddGroup { id: id.clone() }).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("group {id} added"));
        }
        Cmd::Group(GroupCmd::List) => {
            let (state, _) = client.get_state().await?;
            let v = json!({"groups": state.groups});
            print(j, v, || {
                let mut out = format!("{:<16} {:<13} NODES", "ID", "STATUS");
                for (id, g) in &state.groups {
                    let n = state.nodes.values().filter(|n| n.group == *id && n.status != NodeStatus::Removed).count();
                    out.push_str(&format!("\n{id:<16} {:<13} {n}", format!("{:?}", g.status)));
                }
                out
            });
        }
        Cmd::Group(GroupCmd::Remove { id, timeout }) => {
            drain_group(&client, &id, Duration::from_secs(timeout)).await?;
            let (a, i) = client.propose(&Command::RemoveGroup { id: id.clone() }).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("group {id} removed"));
        }
        Cmd::Migrations { watch } => loop {
            let (state, _) = client.get_state().await?;
            let rows = miroir::progress::migration_rows(&state, now_ms());
            let (below_rf, stale) = miroir::rebalance::health_counts(&state);
            let v = json!({"migrations": rows, "shardsBelowRf": below_rf, "staleCopies": stale});
            print(j, v, || {
                let mut out = format!("{} migrations, {below_rf} copies below RF, {stale} stale", rows.len());
                for r in &rows {
                    out.push('\n');
                    out.push_str(&ops::progress_line(r));
                }
                out
            });
            if !watch || rows.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        },
        Cmd::Verify { index } => {
            let (state, _) = client.get_state().await?;
            let transport = miroir_node_client::HttpTransport::new(cli.master_key.clone(), Duration::from_secs(30));
            let nodes = miroir_node_client::NodeClient::new(std::sync::Arc::new(transport));
            let report = miroir_node_client::verify::verify_index(&nodes, &state, &index)
                .await
                .ok_or_else(|| anyhow::anyhow!("index `{index}` not found"))?;
            let differences = report["differences"].as_array().map_or(0, Vec::len);
            let unreadable = report["unreadable"].as_array().map_or(0, Vec::len);
            print(j, report.clone(), || {
                let mut out = format!(
                    "{index}: {} copies of {} shards compared, {} documents, {differences} differences",
                    report["copiesCompared"], report["shards"], report["documents"]
                );
                for d in report["differences"].as_array().into_iter().flatten() {
                    out.push_str(&format!("\n  {d}"));
                }
                for u in report["unreadable"].as_array().into_iter().flatten() {
                    out.push_str(&format!("\n  unreadable: {u}"));
                }
                out
            });
            if differences + unreadable > 0 {
                std::process::exit(1);
            }
        }
        Cmd::Cluster(ClusterCmd::SetDefaults { shards, rf }) => {
            let cmd = Command::SetDefaults { shards, rf, min_in_sync: None, task_retention: None };
            let (a, i) = client.propose(&cmd).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("defaults set (log index {i})"));
        }
    }
    Ok(())
}
