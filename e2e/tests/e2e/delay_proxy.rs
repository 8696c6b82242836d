//! A TCP proxy in front of one node that can make chosen requests arrive late: a slow link to
//! that node, switched on when a test needs a request to be on its way for seconds (and then
//! still arrive, as on a real network), while everything else to the node passes at once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A chunk the proxy held: when it came from the client and when it went on to the node.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub arrived: Instant,
    pub forwarded: Option<Instant>,
}

struct Hold {
    delay: Duration,
    prefix: Vec<u8>,
}

struct Shared {
    hold: Mutex<Option<Hold>>,
    held: watch::Sender<Vec<Held>>,
}

impl Shared {
    /// Whether `chunk` is to be held, and for how long; a held chunk is recorded under an index.
    fn hold_for(&self, chunk: &[u8]) -> Option<(usize, Duration)> {
        let hold = self.hold.lock().unwrap();
        let delay = hold.as_ref().filter(|h| chunk.starts_with(&h.prefix))?.delay;
        let mut i = 0;
        self.held.send_modify(|held| {
            i = held.len();
            held.push(Held { arrived: Instant::now(), forwarded: None });
        });
        Some((i, delay))
    }

    fn forwarded(&self, i: usize) {
        self.held.send_modify(|held| held[i].forwarded = Some(Instant::now()));
    }
}

pub struct DelayProxy {
    /// Where clients reach the node through the proxy.
    pub url: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards every connection to `node` (`http://IP:PORT`).
    pub async fn start(node: &str) -> Self {
        let node: SocketAddr = node.trim_start_matches("http://").parse().expect("a node URL is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let shared = Arc::new(Shared { hold: Mutex::new(None), held: watch::channel(vec![]).0 });
        let accept = tokio::spawn({
            let shared = shared.clone();
            async move {
                // Dropping the set (the proxy is dropped) aborts the connections too.
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((client, _)) = listener.accept().await {
                    connections.spawn(forward(client, node, shared.clone()));
                    while connections.try_join_next().is_some() {}
                }
            }
        });
        DelayProxy { url, shared, accept }
    }

    /// From now on, every chunk a client sends that starts with `prefix` reaches the node `delay`
    /// late, and whatever follows it on its connection waits behind it.
    pub fn hold(&self, delay: Duration, prefix: &[u8]) {
        *self.shared.hold.lock().unwrap() = Some(Hold { delay, prefix: prefix.to_vec() });
    }

    /// New chunks pass at once again; those already held keep their delay.
    pub fn pass(&self) {
        *self.shared.hold.lock().unwrap() = None;
    }

    /// Every chunk held so far.
    pub fn held(&self) -> Vec<Held> {
        self.shared.held.borrow().clone()
    }

    /// The first chunk held, waiting for it `within` at most.
    pub async fn first_held(&self, within: Duration) -> Option<Held> {
        let mut held = self.shared.held.subscribe();
        let first = tokio::time::timeout(within, held.wait_for(|h| !h.is_empty())).await.ok()?.ok()?[0];
        Some(first)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(client: TcpStream, node: SocketAddr, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(node).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_node, mut to_node) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf).await {
            let hold = shared.hold_for(&buf[..n]);
            if let Some((_, delay)) = hold {
                tokio::time::sleep(delay).await;
            }
            // Sent even if the client has gone meanwhile: bytes already on the wire still arrive.
            if to_node.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if let Some((i, _)) = hold {
                shared.forwarded(i);
            }
        }
        let _ = to_node.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_node, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}
