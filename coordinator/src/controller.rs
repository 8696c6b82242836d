//! Leader-only controller loop. It runs on the peer that is leader and only while it is: started
//! when this peer becomes leader (for a given term), cancelled as soon as it is not any more. The
//! rebalancer, health prober and task tracker plug in as `LeaderTask`s; each must be idempotent and
//! driven by the replicated state, because a new leader restarts them from scratch.

use std::time::Duration;

use miroir_raft_store::openraft::async_runtime::WatchReceiver;
use miroir_raft_store::openraft::ServerState;

use crate::node::Coordinator;

/// One periodic leader duty. `tick` reads the state and proposes what it must through `coord`.
pub trait LeaderTask: Send + 'static {
    fn name(&self) -> &'static str;
    fn tick<'a>(&'a mut self, coord: &'a Coordinator) -> futures::future::BoxFuture<'a, ()>;
}

pub type TaskFactory = Box<dyn Fn() -> Box<dyn LeaderTask> + Send + Sync>;

/// Watches leadership and (re)starts the leader loop on every new term this peer leads.
pub async fn supervise(coord: Coordinator, factories: Vec<TaskFactory>, tick: Duration) {
    let mut rx = coord.raft().metrics();
    let mut running: Option<(u64, tokio::task::JoinHandle<()>)> = None;
    loop {
        let (leading, term) = {
            let m = rx.borrow_and_update();
            (m.state == ServerState::Leader && m.current_leader == Some(coord.id()), m.current_term)
        };
        match (&running, leading) {
            (Some((t, _)), true) if *t == term => {}
            (_, true) => {
                if let Some((_, h)) = running.take() {
                    h.abort();
                }
                tracing::info!(term, "leader: starting controllers");
                metrics::gauge!("miroir_coordinator_controller_running").set(1.0);
                let tasks: Vec<Box<dyn LeaderTask>> = factories.iter().map(|f| f()).collect();
                running = Some((term, tokio::spawn(leader_loop(coord.clone(), tasks, tick))));
            }
            (Some(_), false) => {
                if let Some((t, h)) = running.take() {
                    tracing::info!(term = t, "no longer leader: stopping controllers");
                    h.abort();
                }
                metrics::gauge!("miroir_coordinator_controller_running").set(0.0);
            }
            (None, false) => {}
        }
        if rx.changed().await.is_err() {
            if let Some((_, h)) = running.take() {
                h.abort();
            }
            return;
        }
    }
}

async fn leader_loop(coord: Coordinator, mut tasks: Vec<Box<dyn LeaderTask>>, tick: Duration) {
    loop {
        for task in tasks.iter_mut() {
            tracing::trace!(task = task.name(), "controller tick");
            task.tick(&coord).await;
        }
        metrics::counter!("miroir_coordinator_controller_ticks_total").increment(1);
        tokio::time::sleep(tick).await;
    }
}
