//! openraft's async runtime, built on the workspace `tokio`.
//!
//! The workspace renames `tokio` to madsim-tokio, which is plain tokio in a normal build and
//! madsim's deterministic executor and clock under `--cfg madsim`. Spawning, sleeping, timeouts and
//! the clock go through it, so one runtime serves the real coordinator and the simulation. The
//! channels and the mutex are tokio's `sync` primitives in both builds (madsim re-exports them; they
//! touch neither the clock nor the executor), so they are reused from openraft-rt-tokio.
//!
//! openraft's randomness (election timeouts) comes from [`Rng`]: the thread RNG in a normal build,
//! madsim's seeded RNG in simulation, so that one seed replays one run exactly.

use std::future::Future;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openraft::rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::{TokioMpsc, TokioMutex, TokioOneshot, TokioWatch};

/// The runtime of [`crate::TypeConfig`].
pub struct MiroirRuntime {
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for MiroirRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MiroirRuntime")
    }
}

/// A point in time on the runtime's clock (madsim's virtual clock in simulation).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub struct Instant(tokio::time::Instant);

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Instant(self.0 + rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Instant(self.0 - rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.0 - rhs.0
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        self.0 -= rhs
    }
}

impl openraft::rt::instant::Instant for Instant {
    fn now() -> Self {
        Instant(tokio::time::Instant::now())
    }

    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The runtime's random number generator.
#[cfg(not(madsim))]
pub type Rng = rand::rngs::ThreadRng;

/// The runtime's random number generator: madsim's, drawn from the simulation seed.
#[cfg(madsim)]
#[derive(Debug, Default)]
pub struct Rng;

#[cfg(madsim)]
impl rand::TryRng for Rng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(madsim::rand::RngCore::next_u32(&mut madsim::rand::thread_rng()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(madsim::rand::RngCore::next_u64(&mut madsim::rand::thread_rng()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        madsim::rand::RngCore::fill_bytes(&mut madsim::rand::thread_rng(), dst);
        Ok(())
    }
}

/// The runtime's RNG (seeded by madsim in simulation).
pub fn rng() -> Rng {
    #[cfg(not(madsim))]
    return rand::rng();
    #[cfg(madsim)]
    return Rng;
}

/// A fresh proposal id: 128 random bits in hex (as unique as a UUID v4), from [`rng`] so that a
/// simulation seed replays the same ids.
pub fn proposal_id() -> String {
    use rand::RngExt;
    format!("{:032x}", rng().random::<u128>())
}

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed;

/// A future bounded by a deadline. Written out (rather than using `tokio::time::Timeout`) because
/// madsim's `timeout` returns an unnameable type.
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRuntime for MiroirRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = Rng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.0)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        Timeout { future: Box::pin(future), sleep: Box::pin(tokio::time::sleep(duration)) }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        Timeout { future: Box::pin(future), sleep: Box::pin(tokio::time::sleep_until(deadline.0)) }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        rng()
    }

    type Mpsc = TokioMpsc;
    type Watch = TokioWatch;
    type Oneshot = TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = TokioMutex<T>;

    fn new(threads: usize) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .expect("failed to build the async runtime");
        MiroirRuntime { rt }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.rt.block_on(future)
    }
}
