//! The pure state transition. Every command is validated in full before anything is mutated,
//! so a refused command leaves the state exactly as it was.

use std::collections::BTreeMap;

use serde_json::json;

use crate::command::{Command, Response};
use crate::error::CommandError;
use crate::ids::{MigrationId, NodeId, ShardId};
use crate::placement::top_rf;
use crate::state::*;
use miroir_meili::is_valid_index_uid;
use miroir_meili::keys::FieldChange;
use miroir_meili::settings::merge_settings;

/// Largest shard count an index may have; beyond it the map stops being small.
pub const MAX_SHARDS: u32 = 4096;
/// Largest replication factor inside a group.
pub const MAX_RF: u32 = 16;

type Result<T> = std::result::Result<T, CommandError>;

/// Applies `cmd`, committed at Raft `log_index`, to `state`.
pub fn apply(state: &mut ClusterState, cmd: &Command, log_index: u64) -> Result<Response> {
    let response = apply_inner(state, cmd)?;
    let mut routing = changes_routing(cmd);
    if let Command::ReportNodeTasks { reports } = cmd {
        routing |= crate::cancel::stale_diverged(state, reports);
    }
    if routing {
        // Log indexes only grow, so the map version does too.
        state.map_version = state.map_version.max(log_index);
        crate::topology::activate_filled_groups(state);
    }
    stamp_migration_version(state, cmd, &response);
    Ok(response)
}

/// Whether a successful `cmd` changes what gateways route by (and so must be watched). Node task
/// reports may too, when they reveal copies a cancelation left behind (`cancel::stale_diverged`).
pub fn changes_routing(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::SetDefaults { .. }
            | Command::MigrationProgress { .. }
            | Command::RegisterGateway { .. }
            | Command::GatewayHeartbeat { .. }
            | Command::DeregisterGateway { .. }
            | Command::RegisterTasks { .. }
            | Command::ReportNodeTasks { .. }
            | Command::CancelTasks { .. }
            | Command::FinishTask { .. }
            | Command::DeleteTasks { .. }
            | Command::MarkTasksNotified { .. }
    )
}

fn apply_inner(s: &mut ClusterState, cmd: &Command) -> Result<Response> {
    use Command::*;
    match cmd {
        SetDefaults { shards, rf, min_in_sync, task_retention } => {
            let mut d = s.defaults;
            d.shards = shards.unwrap_or(d.shards);
            d.rf = rf.unwrap_or(d.rf);
            d.min_in_sync = min_in_sync.unwrap_or(d.min_in_sync);
            d.task_retention = task_retention.unwrap_or(d.task_retention);
            check_shards_rf(d.shards, d.rf)?;
            if d.min_in_sync == 0 || d.min_in_sync > d.rf {
                return Err(invalid("min_in_sync", format!("{} must be between 1 and rf ({})", d.min_in_sync, d.rf)));
            }
            if d.task_retention == 0 {
                return Err(invalid("task_retention", "must be at least 1".into()));
            }
            s.defaults = d;
        }

        AddGroup { id } => {
            check_name("group id", id)?;
            if s.groups.contains_key(id) {
                return Err(CommandError::GroupExists(id.clone()));
            }
            // A group added to a cluster that already holds indexes must be filled before it
            // serves reads; a group of an empty cluster has nothing to wait for.
            let status = if s.indexes.is_empty() { GroupStatus::Active } else { GroupStatus::Initializing };
            s.groups.insert(id.clone(), Group { status });
        }
        SetGroupStatus { id, status } => crate::topology::set_group_status(s, id, *status)?,
        RemoveGroup { id } => crate::topology::remove_group(s, id)?,

        AddNode { id, url, group } => {
            check_name("node id", id)?;
            if url.is_empty() {
                return Err(invalid("url", "must not be empty".into()));
            }
            if !s.groups.contains_key(group) {
                return Err(CommandError::GroupNotFound(group.clone()));
            }
            if s.nodes.get(id).is_some_and(|n| n.status != NodeStatus::Removed) {
                return Err(CommandError::NodeExists(id.clone()));
            }
            // A group without nodes holds nothing: with its first node it must be filled before
            // it serves reads.
            let empty = !s.nodes.values().any(|n| n.group == *group && n.status != NodeStatus::Removed);
            if empty && !s.indexes.is_empty() {
                let g = s.groups.get_mut(group).expect("checked");
                if g.status == GroupStatus::Active {
                    g.status = GroupStatus::Initializing;
                }
            }
            let node = Node { url: url.clone(), group: group.clone(), status: NodeStatus::Active, draining: false };
            s.nodes.insert(id.clone(), node);
        }
        SetNodeStatus { id, status } => {
            let node = live_node(s, id)?;
            if *status == NodeStatus::Removed {
                return Err(invalid("status", "use RemoveNode to remove a node".into()));
            }
            let _ = node;
            let node = s.nodes.get_mut(id).expect("checked");
            node.status = *status;
            match status {
                NodeStatus::Draining => node.draining = true,
                NodeStatus::Active => node.draining = false,
                _ => {}
            }
        }
        NodeFailed { id } => {
            live_node(s, id)?;
            crate::topology::node_failed(s, id);
        }
        RemoveNode { id } => {
            live_node(s, id)?;
            // A migration away from the node still has to delete its copy (Cleanup).
            let placements =
                s.placements_of(id) + s.migrations.values().filter(|m| m.from.as_ref() == Some(id)).count();
            if placements > 0 {
                return Err(CommandError::NodeHasData { node: id.clone(), placements });
            }
            s.nodes.get_mut(id).expect("checked").status = NodeStatus::Removed;
            // A removed node serves nothing: what it may still hold can never come back.
            for nodes in s.deleting.values_mut() {
                nodes.remove(id);
            }
            s.deleting.retain(|_, nodes| !nodes.is_empty());
        }

        CreateIndex { uid, primary_key, shards, rf, at } => {
            if !is_valid_index_uid(uid) {
                return Err(CommandError::InvalidIndexUid(uid.clone()));
            }
            if s.indexes.contains_key(uid) {
                return Err(CommandError::IndexExists(uid.clone()));
            }
            let shards = shards.unwrap_or(s.defaults.shards);
            let rf = rf.unwrap_or(s.defaults.rf);
            check_shards_rf(shards, rf)?;
            if let Some(pk) = primary_key {
                check_primary_key(pk)?;
            }
            let placements = initial_placements(s, uid, shards, rf)?;
            s.placements.insert(uid.clone(), placements);
            s.indexes.insert(
                uid.clone(),
                Index {
                    primary_key: primary_key.clone(),
                    shards,
                    rf,
                    created_at: *at,
                    updated_at: *at,
                    settings: json!({}),
                    settings_version: 0,
                    placement_key: None,
                },
            );
        }
        DeleteIndex { uid } => {
            index(s, uid)?;
            let holders: Vec<NodeId> = s
                .placements
                .get(uid)
                .into_iter()
                .flatten()
                .flat_map(|groups| groups.values())
                .flat_map(|p| p.owners.iter().map(|o| &o.node).chain(&p.incoming))
                .cloned()
                .collect();
            if !holders.is_empty() {
                s.deleting.entry(uid.clone()).or_default().extend(holders);
            }
            s.indexes.remove(uid);
            s.placements.remove(uid);
            s.migrations.retain(|_, m| m.index != *uid);
        }
        IndexDeletedOn { uid, node } => {
            if let Some(nodes) = s.deleting.get_mut(uid) {
                nodes.remove(node);
                if nodes.is_empty() {
                    s.deleting.remove(uid);
                }
            }
        }
        SwapIndexes { swaps } => {
            let refused = |r: miroir_meili::MeiliError| CommandError::SwapRefused {
                code: r.code.name.into(),
                message: r.message,
            };
            miroir_meili::swap::check_duplicates(swaps).map_err(refused)?;
            miroir_meili::swap::check_exist(|uid| s.indexes.contains_key(uid), swaps).map_err(refused)?;
            if let Some(uid) = crate::swap::migrating(s, swaps).first() {
                return Err(CommandError::IndexMigrating((*uid).clone()));
            }
            // A node still holding a deleted index of one of these names would refuse the rename,
            // and the index cleaner would then delete what took the name.
            for uid in swaps.iter().flat_map(|w| [&w.indexes.0, &w.indexes.1]) {
                if let Some(nodes) = s.deleting.get(uid) {
                    let nodes = nodes.iter().cloned().collect();
                    return Err(CommandError::IndexStillOnNodes { uid: uid.clone(), nodes });
                }
            }
            crate::swap::apply(s, swaps);
        }
        SetPrimaryKey { uid, primary_key, at } => {
            check_primary_key(primary_key)?;
            let idx = index(s, uid)?;
            if let Some(current) = &idx.primary_key {
                if current != primary_key {
                    return Err(CommandError::PrimaryKeyAlreadySet { index: uid.clone(), current: current.clone() });
                }
            }
            let idx = s.indexes.get_mut(uid).expect("checked");
            idx.primary_key = Some(primary_key.clone());
            idx.updated_at = *at;
        }
        UpdateSettings { uid, patch, at } => {
            let patch = patch.as_object().ok_or_else(|| invalid("settings", "must be a JSON object".into()))?;
            index(s, uid)?;
            let idx = s.indexes.get_mut(uid).expect("checked");
            idx.settings = merge_settings(&idx.settings, patch);
            idx.settings_version += 1;
            idx.updated_at = *at;
        }
        ResetSettings { uid, at } => {
            index(s, uid)?;
            let idx = s.indexes.get_mut(uid).expect("checked");
            idx.settings = json!({});
            idx.settings_version += 1;
            idx.updated_at = *at;
        }

        MarkStale { index: i, shard, group, node } => {
            let min = s.defaults.min_in_sync;
            let p = placement(s, i, *shard, group)?;
            let incoming = p.incoming.contains(node);
            let Some(in_sync) = p.owner(node).map(|o| o.in_sync) else {
                if incoming {
                    crate::topology::reset_migration(s, i, *shard, group);
                }
                // A gateway routing by an older map may report a node that no longer holds a
                // copy (its migration ended): there is nothing to mark.
                return Ok(Response::Done);
            };
            // A group being filled serves no reads: its last copy may go stale (another group
            // holds the write, and the rebalancer repairs it from there) rather than fail the write.
            let serving = s.groups.get(group).is_some_and(|g| g.status != GroupStatus::Initializing);
            if in_sync && serving {
                let left = p.in_sync_owners().count() - 1;
                if left < min as usize {
                    return Err(CommandError::WouldLoseQuorum {
                        index: i.clone(),
                        shard: *shard,
                        group: group.clone(),
                        node: node.clone(),
                        left,
                        min,
                    });
                }
            }
            if in_sync || incoming {
                crate::topology::reset_migration(s, i, *shard, group);
            }
            set_in_sync(s, i, *shard, group, node, false);
        }
        MarkInSync { index: i, shard, group, node } => {
            let p = placement(s, i, *shard, group)?;
            p.owner(node).ok_or_else(|| not_owner(i, *shard, group, node))?;
            set_in_sync(s, i, *shard, group, node, true);
        }

        StartMigration { index: i, shard, group, from, to, at } => {
            let filling = crate::topology::fill_placement(s, i, *shard, group, from.as_ref(), to)?;
            let p = filling.as_ref().map_or_else(|| placement(s, i, *shard, group), Ok)?;
            if p.migration.is_some() {
                return Err(CommandError::MigrationInFlight { index: i.clone(), shard: *shard, group: group.clone() });
            }
            if let Some(from) = from {
                p.owner(from).ok_or_else(|| not_owner(i, *shard, group, from))?;
                if from == to {
                    return Err(invalid("migration", "from and to are the same node".into()));
                }
            }
            match p.owner(to) {
                Some(o) if o.in_sync => {
                    return Err(invalid("migration", format!("`{to}` already holds an in-sync copy")));
                }
                Some(_) if from.is_some() => {
                    return Err(invalid("migration", format!("`{to}` is a stale owner: repair it with from = none")));
                }
                _ => {}
            }
            if s.deleting.get(i).is_some_and(|n| n.contains(to)) {
                return Err(invalid("migration", format!("`{to}` may still hold a deleted copy of `{i}`")));
            }
            let n = live_node(s, to)?;
            if n.group != *group || n.status != NodeStatus::Active {
                return Err(invalid("migration", format!("`{to}` is not an active node of group `{group}`")));
            }
            let id = s.next_migration_id;
            s.next_migration_id += 1;
            if let Some(p) = filling {
                s.placements.get_mut(i).expect("checked")[*shard as usize].insert(group.clone(), p);
            }
            let p = placement_mut(s, i, *shard, group);
            p.incoming.push(to.clone());
            p.migration = Some(id);
            s.migrations.insert(
                id,
                Migration {
                    index: i.clone(),
                    shard: *shard,
                    group: group.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    phase: MigrationPhase::DualWrite,
                    phase_version: 0, // stamped once the map version is known
                    started_at: *at,
                    phase_started_at: *at,
                    copied: 0,
                    total: None,
                    resets: 0,
                },
            );
            return Ok(Response::Migration(id));
        }
        AdvanceMigration { id, phase, at } => {
            let m = migration(s, *id)?;
            if m.phase.next() != Some(*phase) {
                return Err(CommandError::InvalidPhaseTransition {
                    id: *id,
                    from: format!("{:?}", m.phase),
                    to: format!("{phase:?}"),
                });
            }
            let m = m.clone();
            if *phase == MigrationPhase::Cutover && s.nodes.get(&m.to).map(|n| n.status) != Some(NodeStatus::Active) {
                return Err(invalid("migration", format!("`{}` is not active: it cannot take over", m.to)));
            }
            if *phase == MigrationPhase::Cutover {
                let p = placement_mut(s, &m.index, m.shard, &m.group);
                p.incoming.retain(|n| *n != m.to);
                if let Some(from) = &m.from {
                    p.owners.retain(|o| o.node != *from);
                }
                match p.owners.iter_mut().find(|o| o.node == m.to) {
                    Some(o) => o.in_sync = true,
                    None => p.owners.push(Owner { node: m.to.clone(), in_sync: true }),
                }
            }
            let m = s.migrations.get_mut(id).expect("checked");
            m.phase = *phase;
            m.phase_started_at = *at;
        }
        MigrationProgress { id, copied, total } => {
            migration(s, *id)?;
            let m = s.migrations.get_mut(id).expect("checked");
            m.copied = *copied;
            m.total = *total;
        }
        FinishMigration { id } => {
            let m = migration(s, *id)?;
            if m.phase != MigrationPhase::Cleanup {
                return Err(CommandError::InvalidPhaseTransition {
                    id: *id,
                    from: format!("{:?}", m.phase),
                    to: "Finished".into(),
                });
            }
            let m = s.migrations.remove(id).expect("checked");
            placement_mut(s, &m.index, m.shard, &m.group).migration = None;
        }
        AbortMigration { id } => {
            let m = migration(s, *id)?;
            if m.phase >= MigrationPhase::Cutover {
                return Err(CommandError::InvalidPhaseTransition {
                    id: *id,
                    from: format!("{:?}", m.phase),
                    to: "Aborted".into(),
                });
            }
            let m = s.migrations.remove(id).expect("checked");
            let p = placement_mut(s, &m.index, m.shard, &m.group);
            p.incoming.retain(|n| *n != m.to);
            p.migration = None;
            if p.owners.is_empty() && p.incoming.is_empty() {
                // An aborted first copy into a group being filled: the group holds nothing here.
                s.placements.get_mut(&m.index).expect("checked")[m.shard as usize].remove(&m.group);
            }
        }

        RegisterGateway { id, address, at, lease_ms } => {
            check_name("gateway id", id)?;
            let acked = s.gateways.get(id).map_or(0, |g| g.acked_version);
            s.gateways.insert(
                id.clone(),
                Gateway {
                    address: address.clone(),
                    registered_at: *at,
                    lease_expires_at: at + lease_ms,
                    acked_version: acked,
                },
            );
            return Ok(Response::Lease { expires_at: at + lease_ms, map_version: s.map_version });
        }
        GatewayHeartbeat { id, at, lease_ms, acked_version } => {
            let g = s.gateways.get_mut(id).ok_or_else(|| CommandError::GatewayNotFound(id.clone()))?;
            g.lease_expires_at = g.lease_expires_at.max(at + lease_ms);
            if let Some(v) = acked_version {
                g.acked_version = g.acked_version.max(*v);
            }
            let expires_at = g.lease_expires_at;
            return Ok(Response::Lease { expires_at, map_version: s.map_version });
        }
        DeregisterGateway { id } => {
            s.gateways.remove(id).ok_or_else(|| CommandError::GatewayNotFound(id.clone()))?;
        }

        RegisterTasks { tasks, at } => {
            let uids = tasks.iter().map(|t| s.tasks.register(t, *at)).collect();
            s.tasks.compact(s.defaults.task_retention as usize);
            return Ok(Response::Tasks(uids));
        }
        ReportNodeTasks { reports } => reports.iter().for_each(|r| s.tasks.report(r)),
        CancelTasks { uids, canceled_by, at } => s.tasks.cancel(uids, *canceled_by, *at),
        FinishTask { uid, status, error, details, at } => {
            if !status.is_finished() {
                return Err(invalid("status", format!("{status:?} is not a final status")));
            }
            let task = s.tasks.tasks.get(uid).ok_or(CommandError::TaskNotFound(*uid))?;
            if task.status.is_finished() {
                return Err(invalid("task", format!("task {uid} is already finished")));
            }
            let task = s.tasks.tasks.get_mut(uid).expect("checked");
            task.status = *status;
            task.error.clone_from(error);
            if let Some(d) = details {
                task.details = d.clone();
            }
            task.started_at = task.started_at.or(Some(*at));
            task.finished_at = Some(*at);
        }
        DeleteTasks { uids } => s.tasks.delete(uids),
        PutWebhook { uuid, webhook, create } => {
            use crate::webhook::{MAX_HEADERS, MAX_WEBHOOKS};
            if *create && s.webhooks.len() >= MAX_WEBHOOKS {
                return Err(CommandError::TooManyWebhooks(MAX_WEBHOOKS));
            }
            if !*create && !s.webhooks.contains_key(uuid) {
                return Err(CommandError::WebhookNotFound(uuid.clone()));
            }
            if webhook.url.is_empty() || webhook.headers.len() > MAX_HEADERS {
                return Err(invalid("webhook", format!("needs a URL and at most {MAX_HEADERS} headers")));
            }
            s.webhooks.insert(uuid.clone(), webhook.clone());
        }
        DeleteWebhook { uuid } => {
            s.webhooks.remove(uuid).ok_or_else(|| CommandError::WebhookNotFound(uuid.clone()))?;
        }
        PutSearchRule { uid, update, at } => {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*at) * 1_000_000)
                .map_err(|e| invalid("at", e.to_string()))?;
            let at =
                at.format(&time::format_description::well_known::Rfc3339).map_err(|e| invalid("at", e.to_string()))?;
            s.search_rules.put(uid, update, at);
        }
        DeleteSearchRule { uid } => {
            s.search_rules.delete(uid);
        }
        ClearSearchRules => {
            s.search_rules.clear();
        }
        MarkTasksNotified { uids } => {
            for uid in uids {
                if let Some(t) = s.tasks.tasks.get_mut(uid) {
                    t.notified = true;
                }
            }
        }
        CreateApiKey { key } => {
            check_api_key(key)?;
            if s.api_keys.contains_key(&key.uid) {
                return Err(CommandError::ApiKeyExists(key.uid.clone()));
            }
            s.api_keys.insert(key.uid.clone(), key.clone());
        }
        UpdateApiKey { uid, name, description, at } => {
            let key = s.api_keys.get_mut(uid).ok_or_else(|| CommandError::ApiKeyNotFound(uid.clone()))?;
            if let FieldChange::Set(v) = name {
                key.name.clone_from(v);
            }
            if let FieldChange::Set(v) = description {
                key.description.clone_from(v);
            }
            key.updated_at = *at;
        }
        DeleteApiKey { uid } => {
            s.api_keys.remove(uid).ok_or_else(|| CommandError::ApiKeyNotFound(uid.clone()))?;
        }
        CreateDefaultApiKeys { uids, at } => {
            if !s.default_api_keys_created {
                let keys = miroir_meili::keys::default_keys(uids, *at);
                if uids.len() != miroir_meili::keys::DEFAULT_KEYS.len() {
                    return Err(invalid("default keys", format!("{} uids given, {} needed", uids.len(), keys.len())));
                }
                for k in &keys {
                    check_api_key(k)?;
                    if s.api_keys.contains_key(&k.uid) || keys.iter().filter(|o| o.uid == k.uid).count() > 1 {
                        return Err(CommandError::ApiKeyExists(k.uid.clone()));
                    }
                }
                s.api_keys.extend(keys.into_iter().map(|k| (k.uid.clone(), k)));
                s.default_api_keys_created = true;
            }
        }
        SetExperimentalFeatures { features } => {
            if let Some((k, _)) = features.iter().find(|(_, v)| !v.is_boolean() && !v.is_null()) {
                return Err(invalid("experimental feature", format!("`{k}` must be a boolean")));
            }
            for (k, v) in features.iter().filter(|(_, v)| v.is_boolean()) {
                s.experimental_features.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Response::Done)
}

/// A phase records the map version at which it took effect: the gateway ack barrier waits for
/// exactly that version.
fn stamp_migration_version(state: &mut ClusterState, cmd: &Command, response: &Response) {
    let id = match (cmd, response) {
        (Command::StartMigration { .. }, Response::Migration(id)) => *id,
        (Command::AdvanceMigration { id, .. }, _) => *id,
        _ => return,
    };
    let version = state.map_version;
    if let Some(m) = state.migrations.get_mut(&id) {
        m.phase_version = version;
    }
}

fn initial_placements(s: &ClusterState, uid: &str, shards: u32, rf: u32) -> Result<Vec<BTreeMap<String, Placement>>> {
    // A group being filled gets the new (empty) index only if it has enough nodes for it; else
    // the rebalancer copies it there once it has.
    let held = s.deleting.get(uid);
    let groups: Vec<(&String, Vec<&NodeId>)> = s
        .groups
        .iter()
        .filter(|(_, g)| g.status != GroupStatus::Draining)
        .map(|(id, g)| (id, g, s.eligible_nodes(id).collect::<Vec<_>>()))
        .filter(|(_, g, nodes)| {
            g.status != GroupStatus::Initializing
                || nodes.iter().filter(|n| !held.is_some_and(|h| h.contains(**n))).count() >= rf as usize
        })
        .map(|(id, _, nodes)| (id, nodes))
        .filter(|(_, nodes)| !nodes.is_empty())
        .collect();
    if groups.is_empty() {
        return Err(CommandError::NoActiveGroup);
    }
    if let Some((g, nodes)) = groups.iter().find(|(_, nodes)| nodes.len() < rf as usize) {
        return Err(CommandError::NotEnoughNodes { group: (*g).clone(), eligible: nodes.len(), rf });
    }
    // Nodes that may still hold a deleted index of this uid get no copy of the new one.
    let groups: Vec<(&String, Vec<&NodeId>)> = groups
        .into_iter()
        .map(|(g, nodes)| (g, nodes.into_iter().filter(|n| !held.is_some_and(|h| h.contains(*n))).collect()))
        .collect();
    if let (Some(held), true) = (held, groups.iter().any(|(_, nodes)| nodes.len() < rf as usize)) {
        return Err(CommandError::IndexStillOnNodes { uid: uid.into(), nodes: held.iter().cloned().collect() });
    }
    Ok((0..shards)
        .map(|shard| {
            groups
                .iter()
                .map(|(g, nodes)| {
                    let owners = top_rf(uid, shard, nodes.iter().copied(), rf)
                        .into_iter()
                        .map(|node| Owner { node, in_sync: true })
                        .collect();
                    ((*g).clone(), Placement { owners, incoming: vec![], migration: None })
                })
                .collect()
        })
        .collect())
}

pub(crate) fn invalid(what: &'static str, reason: String) -> CommandError {
    CommandError::InvalidArgument { what: what.into(), reason }
}

fn check_api_key(key: &miroir_meili::keys::ApiKey) -> Result<()> {
    use miroir_meili::keys::KeyProblem;
    key.check().map_err(|p| match p {
        KeyProblem::Uid => invalid("api key uid", format!("`{}` is not a lowercase hyphenated UUID", key.uid)),
        KeyProblem::Action(a) => invalid("api key action", format!("`{a}` is not an action")),
        KeyProblem::Index(i) => invalid("api key index", format!("`{i}` is not an index uid pattern")),
        KeyProblem::ExpiresAt => invalid("api key expiresAt", "must be after its creation".into()),
        KeyProblem::GlobalActionOnIndexScopedKey(a) => CommandError::IndexScopedApiKeyWithGlobalAction(a),
    })
}

fn check_shards_rf(shards: u32, rf: u32) -> Result<()> {
    if shards == 0 || shards > MAX_SHARDS {
        return Err(invalid("shards", format!("{shards} must be between 1 and {MAX_SHARDS}")));
    }
    if rf == 0 || rf > MAX_RF {
        return Err(invalid("rf", format!("{rf} must be between 1 and {MAX_RF}")));
    }
    Ok(())
}

fn check_name(what: &'static str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(invalid(what, format!("`{id}`: use 1 to 128 of A-Z a-z 0-9 - _ .")));
    }
    Ok(())
}

fn check_primary_key(pk: &str) -> Result<()> {
    if pk.is_empty() || pk.len() > 512 {
        return Err(invalid("primary key", format!("`{pk}` must be 1 to 512 bytes")));
    }
    Ok(())
}

fn live_node<'a>(s: &'a ClusterState, id: &str) -> Result<&'a Node> {
    s.nodes.get(id).filter(|n| n.status != NodeStatus::Removed).ok_or_else(|| CommandError::NodeNotFound(id.into()))
}

pub(crate) fn index<'a>(s: &'a ClusterState, uid: &str) -> Result<&'a Index> {
    s.indexes.get(uid).ok_or_else(|| CommandError::IndexNotFound(uid.into()))
}

fn migration(s: &ClusterState, id: MigrationId) -> Result<&Migration> {
    s.migrations.get(&id).ok_or(CommandError::MigrationNotFound(id))
}

fn placement<'a>(s: &'a ClusterState, i: &str, shard: ShardId, group: &str) -> Result<&'a Placement> {
    index(s, i)?;
    s.placement(i, shard, group).ok_or_else(|| CommandError::PlacementNotFound {
        index: i.into(),
        shard,
        group: group.into(),
    })
}

/// Only for placements already checked to exist.
pub(crate) fn placement_mut<'a>(s: &'a mut ClusterState, i: &str, shard: ShardId, group: &str) -> &'a mut Placement {
    s.placements
        .get_mut(i)
        .and_then(|shards| shards.get_mut(shard as usize))
        .and_then(|groups| groups.get_mut(group))
        .expect("placement checked before mutation")
}

fn set_in_sync(s: &mut ClusterState, i: &str, shard: ShardId, group: &str, node: &str, in_sync: bool) {
    let p = placement_mut(s, i, shard, group);
    if let Some(o) = p.owners.iter_mut().find(|o| o.node == node) {
        o.in_sync = in_sync;
    }
}

fn not_owner(i: &str, shard: ShardId, group: &str, node: &str) -> CommandError {
    CommandError::NotAnOwner { index: i.into(), shard, group: group.into(), node: node.into() }
}
