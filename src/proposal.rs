//! Exactly-once proposals. A client that does not hear back (timeout, connection reset, leader
//! change) cannot tell whether its proposal was committed, so it retries; a coordinator peer that
//! forwards to the leader does the same. Each proposal therefore carries an id chosen once by the
//! client that started it and kept across every retry and forward. `apply_proposal` remembers the
//! result of the last [`PROPOSAL_CAPACITY`] identified proposals and answers a duplicate with the
//! original result, without applying it again.
//!
//! The table is part of `ClusterState` (so of snapshots) and is changed only by `apply_proposal`,
//! evicting by log index: every peer holds the same table for the same log.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::Command;
use crate::state::ClusterState;
use crate::{apply, CommandResult};

/// A proposal id: opaque to the kernel (clients use a UUID v4), at most [`MAX_PROPOSAL_ID`] bytes.
pub type ProposalId = String;

/// Longest proposal id accepted; an id is a key, not a payload.
pub const MAX_PROPOSAL_ID: usize = 64;

/// How many identified proposals are remembered. A duplicate is recognised as long as fewer than
/// this many other identified proposals were committed between the original and the retry.
///
/// Why that is enough: every client bounds how long it retries one proposal (the coordinator
/// client and the gateway stop after [`RETRY_WINDOW_SECS`], and a forwarding peer within its
/// proposal timeout, 5 s by default), and a request that is still in flight when its sender gives
/// up is either committed or dropped within the leader's proposal timeout. So a duplicate arrives
/// within about 35 s of the original. The coordinator commits about 1,400 proposals/s at best on
/// the benchmark machine (docs/benchmarks.md, 64 concurrent clients; gateways group-commit their
/// writes, so client writes are far fewer proposals): 35 s of that is about 49,000 proposals, under
/// the capacity. Each entry costs about 100 bytes, so the table stays under ~7 MB.
pub const PROPOSAL_CAPACITY: usize = 65_536;

/// How long clients keep retrying one proposal (with the same id), in seconds. See
/// [`PROPOSAL_CAPACITY`].
pub const RETRY_WINDOW_SECS: u64 = 30;

/// One Raft log entry: a command and, when the client gave one, its proposal id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ProposalId>,
    pub command: Command,
}

impl Proposal {
    pub fn new(id: Option<ProposalId>, command: Command) -> Self {
        Proposal { id, command }
    }
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{id}: {}", self.command),
            None => write!(f, "{}", self.command),
        }
    }
}

/// What a committed proposal answered, and the log index at which it took effect: for a duplicate,
/// the index of the original, so every retry gets the very same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub result: CommandResult,
    pub log_index: u64,
}

/// A remembered proposal: where it was committed and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    #[serde(rename = "i")]
    pub log_index: u64,
    #[serde(rename = "r")]
    pub result: CommandResult,
}

/// Recent proposal ids and their results, oldest evicted first (by log index).
///
/// Serialised as the id → record map only; the index order is rebuilt on load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposalTable {
    by_id: BTreeMap<ProposalId, Recorded>,
    by_index: BTreeMap<u64, ProposalId>,
}

impl ProposalTable {
    pub fn get(&self, id: &str) -> Option<&Recorded> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Remembers `id`, then evicts the oldest entries beyond `capacity`.
    pub fn remember(&mut self, id: ProposalId, log_index: u64, result: CommandResult, capacity: usize) {
        if let Some(old) = self.by_id.insert(id.clone(), Recorded { log_index, result }) {
            self.by_index.remove(&old.log_index);
        }
        self.by_index.insert(log_index, id);
        while self.by_id.len() > capacity {
            let Some((_, oldest)) = self.by_index.pop_first() else { break };
            self.by_id.remove(&oldest);
        }
    }
}

impl Serialize for ProposalTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ProposalTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let by_id = BTreeMap::<ProposalId, Recorded>::deserialize(d)?;
        let by_index = by_id.iter().map(|(id, r)| (r.log_index, id.clone())).collect();
        Ok(ProposalTable { by_id, by_index })
    }
}

/// Applies one committed log entry: a proposal already seen answers its original result and
/// changes nothing; any other is applied and, when identified, remembered.
pub fn apply_proposal(state: &mut ClusterState, p: &Proposal, log_index: u64) -> Applied {
    apply_proposal_with_capacity(state, p, log_index, PROPOSAL_CAPACITY)
}

/// [`apply_proposal`] with a chosen table capacity (tests use a small one).
pub fn apply_proposal_with_capacity(
    state: &mut ClusterState,
    p: &Proposal,
    log_index: u64,
    capacity: usize,
) -> Applied {
    if let Some(r) = p.id.as_deref().and_then(|id| state.proposals.get(id)) {
        return Applied { result: r.result.clone(), log_index: r.log_index };
    }
    let result = apply(state, &p.command, log_index);
    if let Some(id) = &p.id {
        state.proposals.remember(id.clone(), log_index, result.clone(), capacity);
    }
    Applied { result, log_index }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Response;
    use crate::error::CommandError;

    fn add_group(id: &str) -> Command {
        Command::AddGroup { id: id.into() }
    }

    #[test]
    fn duplicate_answers_the_original_and_changes_nothing() {
        let mut s = ClusterState::default();
        let p = Proposal::new(Some("p1".into()), add_group("g"));
        let first = apply_proposal(&mut s, &p, 1);
        assert_eq!(first, Applied { result: Ok(Response::Done), log_index: 1 });
        let before = serde_json::to_vec(&s).unwrap();
        let again = apply_proposal(&mut s, &p, 2);
        assert_eq!(again, first, "a retry gets the original answer, not `group exists`");
        assert_eq!(serde_json::to_vec(&s).unwrap(), before);
        // Without an id, the same command is applied again (and refused).
        let anon = apply_proposal(&mut s, &Proposal::new(None, add_group("g")), 3);
        assert_eq!(anon.result, Err(CommandError::GroupExists("g".into())));
    }

    #[test]
    fn a_refusal_is_remembered_too() {
        let mut s = ClusterState::default();
        let p = Proposal::new(Some("x".into()), Command::DeleteIndex { uid: "nope".into() });
        let first = apply_proposal(&mut s, &p, 7);
        assert!(first.result.is_err());
        apply_proposal(
            &mut s,
            &Proposal::new(
                None,
                Command::CreateIndex { uid: "nope".into(), primary_key: None, shards: Some(1), rf: Some(1), at: 0 },
            ),
            8,
        );
        assert_eq!(apply_proposal(&mut s, &p, 9), first);
    }

    #[test]
    fn oldest_evicted_beyond_capacity() {
        let mut s = ClusterState::default();
        for i in 1..=5u64 {
            let p = Proposal::new(Some(format!("p{i}")), add_group(&format!("g{i}")));
            apply_proposal_with_capacity(&mut s, &p, i, 3);
        }
        assert_eq!(s.proposals.len(), 3);
        assert!(s.proposals.get("p1").is_none() && s.proposals.get("p2").is_none());
        assert_eq!(s.proposals.get("p3").map(|r| r.log_index), Some(3));
        // An evicted id is a new proposal again.
        let p1 = Proposal::new(Some("p1".into()), add_group("g1"));
        let r = apply_proposal_with_capacity(&mut s, &p1, 6, 3);
        assert_eq!(r.result, Err(CommandError::GroupExists("g1".into())));
    }

    #[test]
    fn table_survives_serialisation_with_its_order() {
        let mut s = ClusterState::default();
        for i in 1..=4u64 {
            let p = Proposal::new(Some(format!("id-{}", 10 - i)), add_group(&format!("g{i}")));
            apply_proposal_with_capacity(&mut s, &p, i * 10, 4);
        }
        let back: ClusterState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // The rebuilt index order evicts the same entry as the original would.
        let (mut a, mut b) = (s, back);
        let p = Proposal::new(Some("new".into()), add_group("g9"));
        apply_proposal_with_capacity(&mut a, &p, 50, 4);
        apply_proposal_with_capacity(&mut b, &p, 50, 4);
        assert_eq!(a, b);
        assert!(a.proposals.get("id-9").is_none(), "the entry at the lowest index went first");
    }
}
