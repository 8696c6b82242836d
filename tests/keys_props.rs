//! Property tests of the API key registry: refused key commands change nothing, every stored key
//! is valid, the default keys are created once, and key commands round-trip through JSON.

use miroir::command::Command;
use miroir::state::ClusterState;
use miroir::{apply, CommandError};
use miroir_meili::keys::{ApiKey, FieldChange, DEFAULT_KEYS};
use proptest::prelude::*;

const UIDS: &[&str] = &[
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "00000000-0000-4000-8000-000000000003",
    "00000000-0000-4000-8000-000000000004",
    "00000000-0000-4000-8000-000000000005",
    "00000000-0000-4000-8000-00000000000A",
    "not-a-uuid",
];
const ACTIONS: &[&str] = &["*", "search", "documents.*", "version", "keys.get", "doc.add", "*.get"];
const INDEXES: &[&str] = &["*", "movies", "movies*", "bad index", "*x"];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_string)
}

fn change() -> impl Strategy<Value = FieldChange> {
    prop_oneof![
        Just(FieldChange::Keep),
        Just(FieldChange::Set(None)),
        "[a-z]{0,5}".prop_map(|s| FieldChange::Set(Some(s))),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let key = (
        pick(UIDS),
        prop::collection::vec(pick(ACTIONS), 0..3),
        prop::collection::vec(pick(INDEXES), 0..3),
        prop::option::of(0u64..2000),
        0u64..1000,
    )
        .prop_map(|(uid, actions, indexes, expires_at, at)| ApiKey {
            uid,
            name: Some("k".into()),
            description: None,
            actions,
            indexes,
            expires_at,
            created_at: at,
            updated_at: at,
        });
    prop_oneof![
        4 => key.prop_map(|key| Command::CreateApiKey { key }),
        2 => (pick(UIDS), change(), change(), 0u64..5000)
            .prop_map(|(uid, name, description, at)| Command::UpdateApiKey { uid, name, description, at }),
        2 => pick(UIDS).prop_map(|uid| Command::DeleteApiKey { uid }),
        1 => (prop::collection::vec(pick(UIDS), 3..6), 0u64..1000)
            .prop_map(|(uids, at)| Command::CreateDefaultApiKeys { uids, at }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn refused_key_commands_change_nothing_and_stored_keys_are_valid(cmds in prop::collection::vec(command(), 1..40)) {
        let mut s = ClusterState::default();
        let mut defaults_seen = false;
        for (i, cmd) in cmds.iter().enumerate() {
            let before = s.clone();
            match apply(&mut s, cmd, i as u64 + 1) {
                Ok(_) => prop_assert_eq!(s.map_version, i as u64 + 1, "key changes reach gateways"),
                Err(e) => prop_assert_eq!(&s, &before, "refused {:?} ({}) changed the state", cmd, e),
            }
            for (uid, k) in &s.api_keys {
                prop_assert_eq!(uid, &k.uid);
                prop_assert_eq!(k.check(), Ok(()));
            }
            if defaults_seen {
                prop_assert!(s.default_api_keys_created, "the default flag is never cleared");
            }
            if s.default_api_keys_created && !defaults_seen {
                defaults_seen = true;
                let named = s.api_keys.values().filter(|k| DEFAULT_KEYS.iter().any(|d| Some(d.0) == k.name.as_deref())).count();
                prop_assert_eq!(named, DEFAULT_KEYS.len());
            }
        }
    }

    #[test]
    fn key_commands_round_trip_through_json(cmd in command()) {
        let back: Command = serde_json::from_slice(&serde_json::to_vec(&cmd).unwrap()).unwrap();
        prop_assert_eq!(back, cmd);
    }
}

fn key(uid: &str, actions: &[&str], indexes: &[&str]) -> ApiKey {
    ApiKey {
        uid: uid.into(),
        name: None,
        description: Some("d".into()),
        actions: actions.iter().map(|a| a.to_string()).collect(),
        indexes: indexes.iter().map(|a| a.to_string()).collect(),
        expires_at: None,
        created_at: 5,
        updated_at: 5,
    }
}

#[test]
fn create_update_delete() {
    let mut s = ClusterState::default();
    let uid = UIDS[0];
    apply(&mut s, &Command::CreateApiKey { key: key(uid, &["search"], &["movies*"]) }, 1).unwrap();
    assert_eq!(
        apply(&mut s, &Command::CreateApiKey { key: key(uid, &["*"], &["*"]) }, 2),
        Err(CommandError::ApiKeyExists(uid.into()))
    );
    assert_eq!(
        apply(&mut s, &Command::CreateApiKey { key: key(UIDS[1], &["keys.get"], &["movies"]) }, 3),
        Err(CommandError::IndexScopedApiKeyWithGlobalAction("keys.get".into()))
    );
    let update = Command::UpdateApiKey {
        uid: uid.into(),
        name: FieldChange::Set(Some("n".into())),
        description: FieldChange::Keep,
        at: 9,
    };
    apply(&mut s, &update, 4).unwrap();
    let k = &s.api_keys[uid];
    assert_eq!((k.name.as_deref(), k.description.as_deref(), k.created_at, k.updated_at), (Some("n"), Some("d"), 5, 9));
    let clear =
        Command::UpdateApiKey { uid: uid.into(), name: FieldChange::Keep, description: FieldChange::Set(None), at: 10 };
    apply(&mut s, &clear, 5).unwrap();
    assert_eq!(s.api_keys[uid].description, None);
    assert_eq!(s.routing_map().api_keys[uid], s.api_keys[uid], "keys travel in the routing map");
    apply(&mut s, &Command::DeleteApiKey { uid: uid.into() }, 6).unwrap();
    assert_eq!(
        apply(&mut s, &Command::DeleteApiKey { uid: uid.into() }, 7),
        Err(CommandError::ApiKeyNotFound(uid.into()))
    );
}

#[test]
fn default_keys_are_created_once() {
    let mut s = ClusterState::default();
    let uids: Vec<String> = UIDS[..4].iter().map(|u| u.to_string()).collect();
    apply(&mut s, &Command::CreateDefaultApiKeys { uids: uids.clone(), at: 100 }, 1).unwrap();
    assert_eq!(s.api_keys.len(), 4);
    let admin = s.api_keys.values().find(|k| k.name.as_deref() == Some("Default Admin API Key")).unwrap();
    assert_eq!((admin.actions.clone(), admin.indexes.clone()), (vec!["*".to_string()], vec!["*".to_string()]));
    // A second gateway proposing its own uids, or all keys deleted: never recreated.
    let other: Vec<String> = UIDS[1..5].iter().map(|u| u.to_string()).collect();
    for uid in &uids {
        apply(&mut s, &Command::DeleteApiKey { uid: uid.clone() }, 2).unwrap();
    }
    apply(&mut s, &Command::CreateDefaultApiKeys { uids: other, at: 200 }, 3).unwrap();
    assert!(s.api_keys.is_empty());
}
