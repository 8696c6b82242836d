//! Running seeds, one child process each, and replaying one.
//!
//! A process per seed: run in one process after another seed, a seed does not replay the same way
//! (process-wide state left by the previous run, such as std's per-thread hash keys, which madsim
//! cannot seed on Linux, changes the interleaving), so it would not reproduce a failure.

use std::future::Future;
use std::time::Duration;

use madsim::runtime::Runtime;

/// The child's environment variable carrying its one seed.
const SEED_ENV: &str = "MIROIR_SIM_ONE_SEED";

/// The seeds to run: `MIROIR_SIM_SEEDS` (comma-separated) or `default`.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("MIROIR_SIM_SEEDS") {
        Ok(s) => s.split(',').map(|x| x.trim().parse().expect("MIROIR_SIM_SEEDS: comma-separated integers")).collect(),
        Err(_) => default.to_vec(),
    }
}

/// In the child: runs the seed it was given (if any) and prints the digest of its run.
pub fn child<F, Fut>(scenario: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = u64>,
{
    let Ok(seed) = std::env::var(SEED_ENV) else { return };
    let seed: u64 = seed.parse().expect("a seed");
    // `MIROIR_SIM_LOG=info` (a tracing filter) prints every component's logs, in simulated time.
    // `Targets`, not `EnvFilter`: the latter builds hash maps as it meets call sites, which draws on
    // madsim's random numbers and would make a logged run differ from the same seed unlogged.
    if let Ok(filter) = std::env::var("MIROIR_SIM_LOG") {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let targets: tracing_subscriber::filter::Targets = filter.parse().expect("MIROIR_SIM_LOG: a tracing filter");
        tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_ansi(false)).with(targets).init();
    }
    let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.set_time_limit(Duration::from_secs(3600));
    let digest = rt.block_on(scenario());
    println!("DIGEST {digest:016x}");
}

/// Runs `seed` in a child process running `test` (the exact name of the test that calls
/// [`child`]) and returns its digest; panics with the replay command if the seed failed.
pub fn run(test: &str, seed: u64) -> u64 {
    println!("simulation seed {seed} (replay: MIROIR_SIM_SEEDS={seed} scripts/sim.sh)");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(SEED_ENV, seed.to_string())
        .output()
        .expect("run the seed in a child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("seed {seed} failed (replay with MIROIR_SIM_SEEDS={seed}):\n{stdout}\n{}", tail.join("\n"));
    }
    print!("{stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("DIGEST "))
        .and_then(|d| u64::from_str_radix(d.trim(), 16).ok())
        .unwrap_or_else(|| panic!("seed {seed}: no digest in {stdout}"))
}
