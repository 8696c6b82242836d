//! Deliberately broken variants of Miroir's safety mechanisms, which the whole-cluster simulation
//! must catch (docs/simulation.md, "Mutations"). Only a simulation build can switch one on, with
//! `MIROIR_SIM_MUTATION=<name>`; every other build compiles [`active`] to `false`.

/// A mechanism turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// The gateway acknowledges a newly installed map while writes that routed by an older map
    /// are still in flight (the behaviour before the write-path fencing was fixed).
    AckInFlight,
    /// A copy that missed a write is not marked stale; the write is acknowledged anyway.
    SkipMarkStale,
    /// A migration's Cutover does not wait for every gateway to acknowledge the new map.
    CutoverWithoutBarrier,
    /// A migration's Verify repairs a difference at once, without waiting out the writes that
    /// may still be on their way to one of the two copies (the behaviour before that was fixed).
    VerifyRepairsInFlight,
}

impl Mutation {
    pub const ALL: [Mutation; 4] = [
        Mutation::AckInFlight,
        Mutation::SkipMarkStale,
        Mutation::CutoverWithoutBarrier,
        Mutation::VerifyRepairsInFlight,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutation::AckInFlight => "ack-in-flight",
            Mutation::SkipMarkStale => "skip-mark-stale",
            Mutation::CutoverWithoutBarrier => "cutover-without-barrier",
            Mutation::VerifyRepairsInFlight => "verify-repairs-in-flight",
        }
    }
}

/// Whether `m` is switched on (only ever in a simulation).
#[cfg(madsim)]
pub fn active(m: Mutation) -> bool {
    static ON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ON.get_or_init(|| std::env::var("MIROIR_SIM_MUTATION").ok()).as_deref() == Some(m.name())
}

/// Whether `m` is switched on (only ever in a simulation).
#[cfg(not(madsim))]
pub fn active(_: Mutation) -> bool {
    false
}
