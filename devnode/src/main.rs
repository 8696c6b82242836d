//! `miroir-devnode`: one in-memory Meilisearch-compatible node, for local clusters and tests.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "miroir-devnode", about = "In-memory Meilisearch-compatible dev node (tests only, never production)")]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, env = "MIROIR_LISTEN", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Master key; without it every route is open, as in Meilisearch's development mode.
    #[arg(long, env = "MIROIR_MASTER_KEY")]
    master_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let node =
        miroir_devnode::start(miroir_devnode::DevNodeConfig { listen: Some(args.listen), master_key: args.master_key })
            .await?;
    // Tests that spawn this binary read the bound address from this line.
    println!("miroir-devnode listening on {}", node.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
