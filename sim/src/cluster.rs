//! A whole Miroir cluster in one simulation: coordinator peers with every leader controller,
//! gateways, dev nodes and a client process, each a madsim process with its own address, all built
//! from the production code. [`Cluster`] starts them and gives the handles chaos and checks need.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use miroir::Command;
use miroir_coordinator::client::Client;
use miroir_coordinator::controllers::{node_controllers, topology_controllers_over, TopologyConfig};
use miroir_coordinator::peer::{self, PeerOptions};
use miroir_devnode::MemNode;
use miroir_gateway::app::{router, AppState};
use miroir_gateway::cluster::grpc::GrpcCluster;
use miroir_gateway::cluster::sync::{follow_map, keep_lease, LeaseConfig};
use miroir_node_client::NodeClient;
use miroir_raft_store::MemStore;

use crate::net::{serve, Faults, SimHttp};

/// Sizes and timings of a simulated cluster (production defaults where they matter to safety).
#[derive(Debug, Clone)]
pub struct Config {
    pub peers: u8,
    pub nodes: u8,
    pub gateways: u8,
    /// The gateways' lease (`--lease-ms`).
    pub lease: Duration,
    /// How long a gateway waits on a node (`--node-timeout-ms`).
    pub node_timeout: Duration,
    pub topology: TopologyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            peers: 3,
            nodes: 3,
            gateways: 2,
            lease: Duration::from_secs(10),
            node_timeout: Duration::from_secs(30),
            topology: TopologyConfig {
                probe_timeout: Duration::from_secs(2),
                failed_grace: Duration::from_secs(30),
                copy_batch: 100,
                ..TopologyConfig::default()
            },
        }
    }
}

pub fn peer_ip(id: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id))
}
pub fn node_ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))
}
pub fn gateway_ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, i))
}
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 3, 1));

/// A simulated process and where it serves.
pub struct Process {
    pub handle: NodeHandle,
    pub ip: IpAddr,
    pub url: String,
    /// A Meilisearch node's data, kept across restarts unless wiped.
    pub disk: Option<Arc<Mutex<MemNode>>>,
}

impl Process {
    /// Kills the process; [`Process::restart`] starts it again from its init.
    pub fn kill(&self) {
        Handle::current().kill(self.handle.id());
    }

    pub fn restart(&self) {
        Handle::current().restart(self.handle.id());
    }

    /// A node loses its disk: the next restart starts it empty.
    pub fn wipe(&self) {
        if let Some(disk) = &self.disk {
            *disk.lock().unwrap_or_else(|e| e.into_inner()) = MemNode::new(None);
        }
    }
}

pub struct Cluster {
    pub config: Config,
    pub faults: Faults,
    pub peers: BTreeMap<u8, Process>,
    /// Meilisearch nodes by Miroir node id (`node-1`…).
    pub nodes: BTreeMap<String, Process>,
    pub gateways: Vec<Process>,
    /// The process clients and operators run on.
    pub client: NodeHandle,
    /// The operators' coordinator client (what `miroirctl` uses).
    pub coordinator: Client,
    /// HTTP from the client process (to gateways).
    pub http: NodeClient,
    /// The same, with the answers' headers.
    pub raw_http: Arc<SimHttp>,
}

impl Cluster {
    /// Starts the coordinators, registers one group with `config.nodes` nodes, and starts the
    /// gateways; returns once every gateway has installed a map and holds its lease.
    pub async fn start(config: Config) -> Cluster {
        let handle = Handle::current();
        let faults = Faults::default();
        let addrs: Vec<String> = (1..=config.peers).map(|p| format!("{}:7400", peer_ip(p))).collect();
        let peers = (1..=config.peers).map(|id| (id, start_peer(&handle, &config, id, &faults))).collect();
        let client = handle.create_node().name("clients").ip(CLIENT_IP).build();
        let coordinator = Client::new(&addrs).expect("coordinator client").with_timeout(Duration::from_secs(5));
        // A client gives up on a gateway after 15 s (a dead one would have refused the connection).
        let raw_http = Arc::new(SimHttp::new(CLIENT_IP, faults.clone(), Duration::from_secs(15)));
        let http = NodeClient::new(raw_http.clone());
        let gateways = (1..=config.gateways).map(|i| start_gateway(&handle, &config, i, &addrs, &faults)).collect();
        let nodes = BTreeMap::new();
        let mut cluster = Cluster { config, faults, peers, nodes, gateways, client, coordinator, http, raw_http };
        cluster.operate(Command::AddGroup { id: "g1".into() }).await.expect("a new group");
        for i in 1..=cluster.config.nodes {
            cluster.add_node(i).await;
        }
        cluster.wait_gateways_ready().await;
        cluster
    }

    /// Proposes `cmd` from the client process until it is committed or refused.
    pub async fn operate(&self, cmd: Command) -> Result<(), miroir::CommandError> {
        let coordinator = self.coordinator.clone();
        self.client
            .spawn(async move {
                loop {
                    match coordinator.propose(&cmd).await {
                        Ok((applied, _)) => return applied.map(drop),
                        Err(_) => madsim::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            })
            .await
            .expect("operator task")
    }

    /// Starts dev node `node-{i}` and registers it in group `g1`.
    pub async fn add_node(&mut self, i: u8) {
        let ip = node_ip(i);
        let addr = SocketAddr::new(ip, 7700);
        let faults = self.faults.clone();
        let disk = Arc::new(Mutex::new(MemNode::new(None)));
        let on_disk = disk.clone();
        let handle = Handle::current()
            .create_node()
            .name(format!("node-{i}"))
            .ip(ip)
            .init(move || {
                let faults = faults.clone();
                let node = on_disk.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move {
                    tokio::spawn(node.worker());
                    serve(addr, node.router(), faults).await;
                }
            })
            .build();
        let url = format!("http://{addr}");
        let id = format!("node-{i}");
        let cmd = Command::AddNode { id: id.clone(), url: url.clone(), group: "g1".into() };
        let _ = self.operate(cmd).await;
        self.nodes.insert(id, Process { handle, ip, url, disk: Some(disk) });
    }

    /// Waits until every gateway accepts writes (its lease is held and its map current).
    pub async fn wait_gateways_ready(&self) {
        for g in &self.gateways {
            let (http, url) = (self.http.clone(), g.url.clone());
            self.client
                .spawn(async move {
                    for _ in 0..600 {
                        let ready = http.json(&url, miroir_node_client::NodeRequest::get("/_miroir/ready")).await;
                        if ready.is_ok() {
                            return;
                        }
                        madsim::time::sleep(Duration::from_millis(100)).await;
                    }
                    panic!("gateway {url} never became ready");
                })
                .await
                .expect("readiness wait");
        }
    }

    /// The coordinator peer that leads now, if one answers.
    pub async fn leader(&self) -> Option<&Process> {
        let coordinator = self.coordinator.clone();
        let leader =
            self.client.spawn(async move { coordinator.status().await.ok().map(|s| s.leader) }).await.ok()??;
        self.peers.get(&u8::try_from(leader).ok()?)
    }

    /// The committed cluster state, read through the operators' client.
    pub async fn state(&self) -> miroir::ClusterState {
        let coordinator = self.coordinator.clone();
        self.client
            .spawn(async move {
                loop {
                    if let Ok((state, _)) = coordinator.get_state().await {
                        return state;
                    }
                    madsim::time::sleep(Duration::from_millis(500)).await;
                }
            })
            .await
            .expect("state read")
    }
}

/// A simulated coordinator peer's options: the CLI's defaults, with Raft timings of a LAN.
pub fn peer_options(id: u64, listen: SocketAddr, peers: BTreeMap<u64, String>) -> PeerOptions {
    PeerOptions {
        id,
        listen,
        peers,
        heartbeat: Duration::from_millis(100),
        election_min: Duration::from_millis(400),
        election_max: Duration::from_millis(800),
        proposal_timeout: Duration::from_secs(5),
        snapshot_every: PeerOptions::SNAPSHOT_EVERY,
        keep_logs: PeerOptions::KEEP_LOGS,
    }
}

fn start_peer(handle: &Handle, config: &Config, id: u8, faults: &Faults) -> Process {
    let ip = peer_ip(id);
    let store = MemStore::new();
    let peers: BTreeMap<u64, String> = (1..=config.peers).map(|p| (p as u64, format!("{}:7400", peer_ip(p)))).collect();
    let (topology, faults) = (config.topology.clone(), faults.clone());
    let handle = handle
        .create_node()
        .name(format!("coordinator-{id}"))
        .ip(ip)
        .init(move || {
            let (store, peers, topology, faults) = (store.clone(), peers.clone(), topology.clone(), faults.clone());
            async move {
                let (log, sm) = store.open();
                let state = sm.handle();
                let opts = peer_options(id as u64, SocketAddr::new(ip, 7400), peers);
                let transport = Arc::new(SimHttp::new(ip, faults, miroir_coordinator::controllers::NODE_TIMEOUT));
                let mut controllers = node_controllers(transport.clone());
                controllers.extend(topology_controllers_over(transport, topology));
                let _peer = peer::start(opts, log, sm, state, controllers).await.expect("peer starts");
                std::future::pending::<()>().await;
            }
        })
        .build();
    Process { handle, ip, url: format!("{ip}:7400"), disk: None }
}

fn start_gateway(handle: &Handle, config: &Config, i: u8, coordinators: &[String], faults: &Faults) -> Process {
    let ip = gateway_ip(i);
    let addr = SocketAddr::new(ip, 7700);
    let url = format!("http://{addr}");
    let (coordinators, faults, url2) = (coordinators.to_vec(), faults.clone(), url.clone());
    let (lease, node_timeout) = (config.lease, config.node_timeout);
    let handle = handle
        .create_node()
        .name(format!("gateway-{i}"))
        .ip(ip)
        .init(move || {
            let (coordinators, faults, url) = (coordinators.clone(), faults.clone(), url2.clone());
            async move {
                let cluster = Arc::new(GrpcCluster::new(coordinators));
                let nodes = NodeClient::new(Arc::new(SimHttp::new(ip, faults.clone(), node_timeout)));
                let app = AppState::new(cluster, nodes);
                tokio::spawn(follow_map(app.clone()));
                let lease = LeaseConfig { gateway_id: format!("gateway-{i}"), address: url, lease };
                tokio::spawn(keep_lease(app.clone(), lease));
                serve(addr, router(app), faults).await;
            }
        })
        .build();
    Process { handle, ip, url, disk: None }
}
