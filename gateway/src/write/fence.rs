//! Fencing writes by the gateway's lease, and holding back map acknowledgements while writes that
//! routed by an older map are still reaching nodes (docs/architecture.md, "The write
//! acknowledgement contract").
//!
//! A migration's barrier waits until every gateway with a live lease has acknowledged the phase's
//! map version. For that to mean "no write routed by an older map can still land", a gateway
//! acknowledges version V only once every write that began before V was installed has finished,
//! and a write stops sending when the lease it began under ends (the deadline it saw at its start,
//! whatever renewals came since): after that the coordinators may have stopped waiting for this
//! gateway. Bounding every write by the lease at its start also bounds how long any write can
//! stay in flight, which a migration's Verify relies on: a difference between two copies that
//! outlives every gateway's lease at the time it was seen is not a write still on its way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

tokio::task_local! {
    /// The write the current request handler is performing (set by [`Fence::scope`]).
    static CURRENT: Arc<WriteGuard>;
}

/// Lease and in-flight writes of one gateway. Cheap to clone (shared).
#[derive(Clone)]
pub struct Fence(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    /// The oldest map version a write in flight began with (`u64::MAX`: none), for `keep_lease`.
    oldest_tx: watch::Sender<u64>,
}

struct State {
    /// Writes are accepted only before this instant: the lease's end, less a margin.
    deadline: Option<Instant>,
    /// Writes also wait until the installed map is at least this version: the cluster's version
    /// when the lease was last granted. A gateway whose lease lapsed was not waited for by the
    /// migration barriers meanwhile; renewing must not let it write by the map it held then.
    lease_map_version: u64,
    never_fenced: bool,
    /// Writes in flight by the map version installed when they began.
    in_flight: BTreeMap<u64, usize>,
}

/// Why a write may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenced;

impl Default for Fence {
    fn default() -> Self {
        let state = State { deadline: None, lease_map_version: 0, never_fenced: false, in_flight: BTreeMap::new() };
        Fence(Arc::new(Inner { state: Mutex::new(state), oldest_tx: watch::channel(u64::MAX).0 }))
    }
}

impl Fence {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lease was granted or renewed: writes may go on until `deadline`, once the installed map
    /// is at least `map_version`.
    pub fn extend(&self, deadline: Instant, map_version: u64) {
        let mut s = self.state();
        s.deadline = Some(s.deadline.map_or(deadline, |d| d.max(deadline)));
        s.lease_map_version = s.lease_map_version.max(map_version);
    }

    /// For a gateway without a coordinator lease (in-process tests): never fenced.
    pub fn disable(&self) {
        self.state().never_fenced = true;
    }

    /// Whether a write may start now with the installed map at `installed`.
    pub fn check(&self, installed: u64) -> Result<(), Fenced> {
        let s = self.state();
        let leased = s.never_fenced || s.deadline.is_some_and(|d| Instant::now() < d);
        if leased && installed > 0 && installed >= s.lease_map_version {
            Ok(())
        } else {
            Err(Fenced)
        }
    }

    /// Registers a write beginning now; `installed` is read under the same lock as
    /// [`Fence::ackable`], so no acknowledgement can pass a write it did not count.
    pub fn begin(&self, installed: impl FnOnce() -> u64) -> Arc<WriteGuard> {
        let mut s = self.state();
        let version = installed();
        *s.in_flight.entry(version).or_default() += 1;
        let oldest = *s.in_flight.keys().next().expect("just inserted");
        self.0.oldest_tx.send_if_modified(|o| std::mem::replace(o, oldest) != oldest);
        let deadline = if s.never_fenced { None } else { Some(s.deadline.unwrap_or_else(Instant::now)) };
        Arc::new(WriteGuard { fence: self.clone(), version, deadline })
    }

    /// The map version this gateway may acknowledge with `installed` installed: no write that began
    /// with an older map is still in flight.
    pub fn ackable(&self, installed: impl FnOnce() -> u64) -> u64 {
        let s = self.state();
        let installed = installed();
        if miroir::mutation::active(miroir::mutation::Mutation::AckInFlight) {
            return installed;
        }
        s.in_flight.keys().next().map_or(installed, |&oldest| oldest.min(installed))
    }

    /// Changes whenever the oldest version of the writes in flight changes.
    pub fn oldest_in_flight(&self) -> watch::Receiver<u64> {
        self.0.oldest_tx.subscribe()
    }

    /// Runs `write` (a request handler) as the write `guard`, to the end even if the client goes
    /// away: the guard is released only once no node request of the write can still be sent.
    pub async fn scope<F>(guard: Arc<WriteGuard>, write: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(CURRENT.scope(guard, write)).await.expect("a write handler does not panic")
    }
}

/// One write in flight. Dropping it ends the write.
pub struct WriteGuard {
    fence: Fence,
    version: u64,
    /// The end of the lease this write began under (`None`: never fenced).
    deadline: Option<Instant>,
}

impl WriteGuard {
    /// The write the current task is performing, if it runs under [`Fence::scope`].
    pub fn current() -> Option<Arc<WriteGuard>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    /// The lease this write began under is still held.
    pub fn held(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// Completes when the lease this write began under ends.
    pub async fn lapsed(&self) {
        match self.deadline {
            Some(d) => tokio::time::sleep(d.saturating_duration_since(Instant::now())).await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut s = self.fence.state();
        if let Some(n) = s.in_flight.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(&self.version);
            }
        }
        let oldest = s.in_flight.keys().next().copied().unwrap_or(u64::MAX);
        self.fence.0.oldest_tx.send_if_modified(|o| std::mem::replace(o, oldest) != oldest);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_map_is_acknowledged_only_once_writes_begun_with_older_maps_end() {
        let fence = Fence::default();
        fence.extend(Instant::now() + Duration::from_secs(10), 1);
        let slow = fence.begin(|| 3);
        assert_eq!(fence.ackable(|| 3), 3);
        // Version 4 is installed while the write that began with 3 still sends.
        assert_eq!(fence.ackable(|| 4), 3);
        let later = fence.begin(|| 4);
        assert_eq!(fence.ackable(|| 4), 3);
        drop(slow);
        assert_eq!(fence.ackable(|| 4), 4);
        drop(later);
        assert_eq!(fence.ackable(|| 5), 5);
    }

    #[tokio::test]
    async fn a_write_is_bounded_by_the_lease_it_began_under() {
        let fence = Fence::default();
        fence.extend(Instant::now() + Duration::from_millis(50), 1);
        let write = fence.begin(|| 1);
        assert!(write.held());
        // Renewed while the write runs: the renewal is for writes that begin from now on.
        fence.extend(Instant::now() + Duration::from_secs(10), 2);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!write.held(), "a write outlived the lease it began under");
        assert!(fence.begin(|| 2).held());
        // The renewal named version 2: nothing new starts by map 1.
        assert_eq!(fence.check(1), Err(Fenced));
        assert_eq!(fence.check(2), Ok(()));
    }

    #[tokio::test]
    async fn without_a_lease_nothing_is_written() {
        let fence = Fence::default();
        assert_eq!(fence.check(1), Err(Fenced));
        assert!(!fence.begin(|| 1).held());
        fence.disable();
        assert_eq!(fence.check(1), Ok(()));
        assert!(fence.begin(|| 1).held());
    }

    #[tokio::test]
    async fn lapsed_completes_at_the_deadline() {
        let fence = Fence::default();
        fence.extend(Instant::now() + Duration::from_millis(30), 1);
        let write = fence.begin(|| 1);
        tokio::time::timeout(Duration::from_secs(1), write.lapsed()).await.expect("lapses");
    }
}
