//! `miroirctl`: operate a Miroir cluster through its coordinators.

use clap::{Parser, Subcommand};
use miroir::Command;
use miroir_coordinator::client::{Applied, Client};
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
        Cmd::Cluster(ClusterCmd::SetDefaults { shards, rf }) => {
            let cmd = Command::SetDefaults { shards, rf, min_in_sync: None, task_retention: None };
            let (a, i) = client.propose(&cmd).await?;
            let v = applied(a, i)?;
            print(j, v, || format!("defaults set (log index {i})"));
        }
    }
    Ok(())
}
