//! Integration tests: every scenario runs on SQLite and on PostgreSQL in a random schema
//! (`GATEHOUSE_TEST_POSTGRES_URL`; without it the PostgreSQL runs print SKIPPED, or fail
//! when `GATEHOUSE_REQUIRE_STORES` is set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestDb, hash, key, spend};
use gatehouse_store::{
    EntityKind, KeyFilter, KeyRecord, RecordError, SCHEMA_VERSION, SpendBatch, SpendGroupBy,
    SpendQuery, SpendRecord, SpendSink, SpendWriter, Store, StoreError, StoreOptions, TeamRecord,
    Unflushed, UserRecord, WriterConfig, hash_hex,
};

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

async fn migrations_idempotent(db: TestDb) {
    let a = db.connect().await;
    assert_eq!(a.schema_version().await.unwrap(), SCHEMA_VERSION);
    a.insert_key(&key(1)).await.unwrap();
    let b = db.connect().await;
    assert_eq!(b.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(b.key_by_hash(&hash(1)).await.unwrap().is_some());
    a.close().await;
    b.close().await;
}
both!(migrations_idempotent);

async fn migrations_concurrent(db: TestDb) {
    let (a, b, c) = tokio::join!(db.connect(), db.connect(), db.connect());
    for s in [&a, &b, &c] {
        assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    }
    a.insert_key(&key(1)).await.unwrap();
    assert!(c.key_by_hash(&hash(1)).await.unwrap().is_some());
}
both!(migrations_concurrent);

/// A database migrated by a newer gatehouse is refused at start-up instead of being written
/// in a shape that version may not read.
async fn newer_schema_is_refused(db: TestDb) {
    let s = db.connect().await;
    s.close().await;
    db.raw(&format!(
        "INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES ({}, 'from the future', 0)",
        SCHEMA_VERSION + 1
    ))
    .await;
    let err = Store::connect(&db.url, db.opts.clone()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade gatehouse"), "{err}");
}
both!(newer_schema_is_refused);

#[tokio::test]
async fn bad_urls_are_rejected_without_leaking_the_password() {
    let err = Store::connect("mysql://u:pw@h/db", StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");

    let opts = StoreOptions {
        connect_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let started = std::time::Instant::now();
    let err = Store::connect("postgres://alice:hunter2secret@127.0.0.1:1/x", opts)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(matches!(err, StoreError::Connect(_)), "{err}");
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2secret"), "{err:?}");

    let err = Store::connect(
        "postgres://alice:hunter2secret@127.0.0.1:99999999/x",
        StoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
}

#[tokio::test]
async fn sqlite_in_memory_and_nested_path() {
    let mem = Store::connect("sqlite::memory:", StoreOptions::default())
        .await
        .unwrap();
    mem.insert_key(&key(3)).await.unwrap();
    assert!(mem.key_by_hash(&hash(3)).await.unwrap().is_some());

    let dir = std::env::temp_dir().join(format!("gatehouse-store-nested-{}", fastrand::u64(..)));
    let url = format!("sqlite://{}", dir.join("a/b/state.db").display());
    let s = Store::connect(&url, StoreOptions::default()).await.unwrap();
    s.ping().await.unwrap();
    s.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// `k` under the hash `hash(n)` and display name `name`: what [`Store::regenerate_key_with`]
/// takes to give a key a new secret and keep its settings.
fn renamed(k: &KeyRecord, n: u8, name: &str) -> KeyRecord {
    let mut k = k.clone();
    k.token_hash = hash(n);
    k.key_name = name.into();
    k
}

async fn key_round_trip(db: TestDb) {
    let s = db.connect().await;
    let mut k = key(1);
    k.key_alias = Some("ci".into());
    k.user_id = Some("u1".into());
    k.team_id = Some("t1".into());
    k.models = vec!["gpt-4o".into(), "claude".into()];
    k.max_budget = Some(5_000_000_000_000);
    k.budget_duration = Some("1h".into());
    k.rpm_limit = Some(60);
    k.tpm_limit = Some(u64::MAX);
    k.max_parallel_requests = Some(4);
    k.metadata = serde_json::json!({"env": "test", "n": [1, 2]});
    k.expires_at = Some(1_900_000_000_000);
    let stored = s.insert_key(&k).await.unwrap();
    assert!(stored.created_at > 0);
    assert_eq!(stored.budget_reset_at, Some(stored.created_at + 3_600_000));

    let got = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    assert_eq!(got.models, k.models);
    assert_eq!(got.metadata, k.metadata);
    assert_eq!(got.tpm_limit, Some(i64::MAX as u64));
    assert_eq!(got.rpm_limit, Some(60));
    assert_eq!(got.expires_at, k.expires_at);
    assert!(!got.blocked);
    assert_eq!(got.budget_reset_at, stored.budget_reset_at);

    let err = s.insert_key(&k).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                kind: EntityKind::Key,
                ..
            }
        ),
        "{err}"
    );
    assert!(s.key_by_hash(&hash(99)).await.unwrap().is_none());

    // Whole-record update never touches spend.
    s.insert_spend(
        &gatehouse_store::new_batch_id(),
        &[spend("r1", Some(1), None, None, 42)],
    )
    .await
    .unwrap();
    let mut upd = got.clone();
    upd.models = vec![];
    upd.key_alias = None;
    upd.spend = 0;
    upd.max_budget = None;
    upd.metadata = serde_json::json!({});
    s.update_key(&upd).await.unwrap();
    let got = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    assert!(got.models.is_empty());
    assert_eq!(got.key_alias, None);
    assert_eq!(got.max_budget, None);
    assert_eq!(got.spend, 42);
    let err = s.update_key(&key(77)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    let mut bad = key(50);
    bad.budget_duration = Some("soon".into());
    assert!(matches!(
        s.insert_key(&bad).await,
        Err(StoreError::Invalid(_))
    ));

    // Block / unblock.
    s.set_key_blocked(&hash(1), true).await.unwrap();
    assert!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().blocked);
    s.set_key_blocked(&hash(1), false).await.unwrap();
    assert!(!s.key_by_hash(&hash(1)).await.unwrap().unwrap().blocked);
    assert!(s.set_key_blocked(&hash(98), true).await.is_err());

    // Regenerate: same record, new hash.
    let old = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    s.regenerate_key_with(&hash(1), &renamed(&old, 2, "sk-...new2"))
        .await
        .unwrap();
    assert!(s.key_by_hash(&hash(1)).await.unwrap().is_none());
    let regen = s.key_by_hash(&hash(2)).await.unwrap().unwrap();
    assert_eq!(regen.key_name, "sk-...new2");
    assert_eq!(regen.spend, 42);
    assert_eq!(regen.user_id.as_deref(), Some("u1"));
    assert!(matches!(
        s.regenerate_key_with(&hash(1), &renamed(&old, 3, "x"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    s.insert_key(&key(3)).await.unwrap();
    assert!(matches!(
        s.regenerate_key_with(&hash(2), &renamed(&regen, 3, "x"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(s.key_by_hash(&hash(2)).await.unwrap().is_some());

    // Delete.
    assert_eq!(
        s.delete_keys(&[hash(2), hash(3), hash(4)]).await.unwrap(),
        2
    );
    assert!(s.key_by_hash(&hash(2)).await.unwrap().is_none());
    assert_eq!(s.delete_keys(&[hash(2)]).await.unwrap(), 0);
}
both!(key_round_trip);

async fn key_listing(db: TestDb) {
    let s = db.connect().await;
    for n in 0..25u8 {
        let mut k = key(n);
        k.user_id = Some(if n % 2 == 0 { "even" } else { "odd" }.into());
        k.team_id = Some(if n < 5 { "small" } else { "big" }.into());
        // Aliases are unique.
        k.key_alias = Some(format!("alias-{n}"));
        k.created_at = 1_000 + i64::from(n);
        s.insert_key(&k).await.unwrap();
    }
    let (page1, total) = s.list_keys(&KeyFilter::default(), 1, 10).await.unwrap();
    assert_eq!(total, 25);
    assert_eq!(page1.len(), 10);
    assert_eq!(page1[0].token_hash, hash(0));
    let (page3, _) = s.list_keys(&KeyFilter::default(), 3, 10).await.unwrap();
    assert_eq!(page3.len(), 5);
    assert_eq!(page3[4].token_hash, hash(24));
    let (page0, _) = s.list_keys(&KeyFilter::default(), 0, 10).await.unwrap();
    assert_eq!(page0, page1);

    let f = KeyFilter {
        user_id: Some("even".into()),
        ..KeyFilter::default()
    };
    let (keys, total) = s.list_keys(&f, 1, 100).await.unwrap();
    assert_eq!((keys.len(), total), (13, 13));
    let f = KeyFilter {
        user_id: Some("odd".into()),
        team_id: Some("small".into()),
        key_alias: None,
    };
    let (keys, total) = s.list_keys(&f, 1, 100).await.unwrap();
    assert_eq!(total, 2);
    assert!(keys.iter().all(|k| k.user_id.as_deref() == Some("odd")));
    let f = KeyFilter {
        key_alias: Some("alias-1".into()),
        ..KeyFilter::default()
    };
    assert_eq!(s.list_keys(&f, 1, 100).await.unwrap().1, 1);

    assert_eq!(s.keys_of_user("even").await.unwrap().len(), 13);
    assert!(s.keys_of_user("nobody").await.unwrap().is_empty());
}
both!(key_listing);

// ---------------------------------------------------------------------------------------------
// Users and teams
// ---------------------------------------------------------------------------------------------

async fn users_and_teams(db: TestDb) {
    let s = db.connect().await;
    let mut u = UserRecord::new("alice", "internal_user");
    u.user_email = Some("alice@example.com".into());
    u.max_budget = Some(10);
    u.budget_duration = Some("30d".into());
    let stored = s.insert_user(&u).await.unwrap();
    assert_eq!(
        stored.budget_reset_at,
        Some(stored.created_at + 30 * 86_400_000)
    );
    assert!(matches!(
        s.insert_user(&u).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut got = s.user("alice").await.unwrap().unwrap();
    assert_eq!(got.user_email.as_deref(), Some("alice@example.com"));
    got.user_role = "proxy_admin".into();
    got.models = vec!["m".into()];
    s.update_user(&got).await.unwrap();
    let again = s.user("alice").await.unwrap().unwrap();
    assert_eq!(again.user_role, "proxy_admin");
    assert_eq!(again.models, vec!["m".to_string()]);
    assert!(s.user("bob").await.unwrap().is_none());
    assert!(matches!(
        s.update_user(&UserRecord::new("bob", "x")).await,
        Err(StoreError::NotFound {
            kind: EntityKind::User,
            ..
        })
    ));

    let mut t = TeamRecord::new("team-a");
    t.team_alias = Some("A".into());
    t.members = vec!["alice".into(), "carol".into(), "alice".into()];
    t.tpm_limit = Some(1000);
    let stored = s.insert_team(&t).await.unwrap();
    assert_eq!(
        stored.members,
        vec!["alice".to_string(), "carol".to_string()]
    );
    assert!(matches!(
        s.insert_team(&t).await,
        Err(StoreError::Conflict { .. })
    ));
    let got = s.team("team-a").await.unwrap().unwrap();
    assert_eq!(got.members, vec!["alice".to_string(), "carol".to_string()]);
    assert_eq!(got.tpm_limit, Some(1000));
    assert!(s.add_team_member("team-a", "dave").await.unwrap());
    assert!(!s.add_team_member("team-a", "dave").await.unwrap());
    assert!(s.remove_team_member("team-a", "carol").await.unwrap());
    assert!(!s.remove_team_member("team-a", "carol").await.unwrap());
    assert!(matches!(
        s.add_team_member("team-x", "dave").await,
        Err(StoreError::NotFound {
            kind: EntityKind::Team,
            ..
        })
    ));
    let got = s.team("team-a").await.unwrap().unwrap();
    assert_eq!(got.members, vec!["alice".to_string(), "dave".to_string()]);
    assert_eq!(
        s.teams_of_user("dave").await.unwrap(),
        vec!["team-a".to_string()]
    );

    let mut upd = got.clone();
    upd.blocked = true;
    upd.members.clear(); // ignored by update_team
    s.update_team(&upd).await.unwrap();
    let got = s.team("team-a").await.unwrap().unwrap();
    assert!(got.blocked);
    assert_eq!(got.members.len(), 2);
    assert!(s.team("team-x").await.unwrap().is_none());
}
both!(users_and_teams);

// ---------------------------------------------------------------------------------------------
// Change feed
// ---------------------------------------------------------------------------------------------

async fn change_feed(db: TestDb) {
    let s = db.connect().await;
    assert_eq!(s.latest_event_seq().await.unwrap(), 0);
    s.insert_key(&key(1)).await.unwrap();
    let base = s.latest_event_seq().await.unwrap();
    assert!(base > 0);

    let mut k = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    k.rpm_limit = Some(1);
    s.update_key(&k).await.unwrap();
    s.set_key_blocked(&hash(1), true).await.unwrap();
    s.set_key_blocked(&hash(1), false).await.unwrap();
    let old = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    s.regenerate_key_with(&hash(1), &renamed(&old, 2, "n"))
        .await
        .unwrap();
    s.delete_keys(&[hash(2)]).await.unwrap();
    s.insert_user(&UserRecord::new("u", "internal_user"))
        .await
        .unwrap();
    s.update_user(&UserRecord::new("u", "proxy_admin"))
        .await
        .unwrap();
    s.insert_team(&TeamRecord::new("t")).await.unwrap();
    s.update_team(&TeamRecord::new("t")).await.unwrap();
    s.add_team_member("t", "u").await.unwrap();
    // Failed writes emit nothing.
    let _ = s.update_key(&key(50)).await;
    let _ = s.add_team_member("t", "u").await;
    // Spend does not invalidate caches.
    s.insert_spend(
        &gatehouse_store::new_batch_id(),
        &[spend("r", Some(2), Some("u"), Some("t"), 5)],
    )
    .await
    .unwrap();

    let events = s.events_since(base, 100).await.unwrap();
    let got: Vec<(EntityKind, String)> = events.iter().map(|e| (e.kind, e.id.clone())).collect();
    let (h1, h2) = (hash_hex(&hash(1)), hash_hex(&hash(2)));
    let want = vec![
        (EntityKind::Key, h1.clone()),
        (EntityKind::Key, h1.clone()),
        (EntityKind::Key, h1.clone()),
        (EntityKind::Key, h1.clone()),
        (EntityKind::Key, h2.clone()),
        (EntityKind::Key, h2.clone()),
        (EntityKind::User, "u".to_string()),
        (EntityKind::User, "u".to_string()),
        (EntityKind::Team, "t".to_string()),
        (EntityKind::Team, "t".to_string()),
        (EntityKind::Team, "t".to_string()),
    ];
    assert_eq!(got, want);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(events.iter().all(|e| e.at > 0));
    assert_eq!(
        s.latest_event_seq().await.unwrap(),
        events.last().unwrap().seq
    );

    let first3 = s.events_since(base, 3).await.unwrap();
    assert_eq!(first3.as_slice(), &events[..3]);
    let rest = s.events_since(first3[2].seq, 100).await.unwrap();
    assert_eq!(rest.as_slice(), &events[3..]);

    assert_eq!(s.prune_events(0).await.unwrap(), 0);
    let n = s.prune_events(i64::MAX).await.unwrap();
    assert_eq!(n as usize, events.len() + 1);
    assert!(s.events_since(0, 100).await.unwrap().is_empty());
}
both!(change_feed);

// ---------------------------------------------------------------------------------------------
// Spend
// ---------------------------------------------------------------------------------------------

async fn setup_owners(s: &Store) {
    for n in 1..=3 {
        let mut k = key(n);
        k.user_id = Some(format!("user{n}"));
        k.team_id = Some("team".into());
        s.insert_key(&k).await.unwrap();
        s.insert_user(&UserRecord::new(format!("user{n}"), "internal_user"))
            .await
            .unwrap();
    }
    s.insert_team(&TeamRecord::new("team")).await.unwrap();
}

async fn spend_accounting(db: TestDb) {
    let s = db.connect().await;
    setup_owners(&s).await;
    let batch = vec![
        spend("a", Some(1), Some("user1"), Some("team"), 100),
        spend("b", Some(1), Some("user1"), Some("team"), 250),
        spend("c", Some(2), Some("user2"), Some("team"), 1_000_000_000_000),
        spend("d", None, Some("user3"), None, 7),
        spend("e", Some(3), None, None, 0),
    ];
    assert_eq!(s.insert_spend("batch-1", &batch).await.unwrap(), 5);
    let check = |s: Store| async move {
        assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 350);
        assert_eq!(
            s.key_by_hash(&hash(2)).await.unwrap().unwrap().spend,
            1_000_000_000_000
        );
        assert_eq!(s.key_by_hash(&hash(3)).await.unwrap().unwrap().spend, 0);
        assert_eq!(s.user("user1").await.unwrap().unwrap().spend, 350);
        assert_eq!(
            s.user("user2").await.unwrap().unwrap().spend,
            1_000_000_000_000
        );
        assert_eq!(s.user("user3").await.unwrap().unwrap().spend, 7);
        assert_eq!(
            s.team("team").await.unwrap().unwrap().spend,
            1_000_000_000_350
        );
    };
    check(s.clone()).await;
    // The same batch again (a retry after a lost acknowledgement) counts nothing, even
    // with other records under its id.
    assert_eq!(s.insert_spend("batch-1", &batch).await.unwrap(), 0);
    assert_eq!(
        s.insert_spend("batch-1", &[spend("z", Some(1), None, None, 9)])
            .await
            .unwrap(),
        0
    );
    check(s.clone()).await;
    assert_eq!(count_logs(&s).await, 5);
    // A new batch counts.
    let next = vec![spend("f", Some(2), Some("user2"), Some("team"), 1)];
    assert_eq!(s.insert_spend("batch-2", &next).await.unwrap(), 1);
    assert_eq!(
        s.key_by_hash(&hash(2)).await.unwrap().unwrap().spend,
        1_000_000_000_001
    );
    assert_eq!(
        s.team("team").await.unwrap().unwrap().spend,
        1_000_000_000_351
    );
    assert_eq!(s.insert_spend("batch-3", &[]).await.unwrap(), 0);

    // A large batch crosses the multi-row chunk boundary.
    let big: Vec<SpendRecord> = (0..1234)
        .map(|i| spend(&format!("big-{i}"), Some(3), None, None, 2))
        .collect();
    assert_eq!(s.insert_spend("batch-4", &big).await.unwrap(), 1234);
    assert_eq!(s.key_by_hash(&hash(3)).await.unwrap().unwrap().spend, 2468);

    // Spend for a deleted key is logged but updates nothing.
    s.delete_keys(&[hash(3)]).await.unwrap();
    assert_eq!(
        s.insert_spend("batch-5", &[spend("g", Some(3), None, None, 5)])
            .await
            .unwrap(),
        1
    );
}
both!(spend_accounting);

async fn spend_queries(db: TestDb) {
    let s = db.connect().await;
    setup_owners(&s).await;
    let day = 86_400_000i64;
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % day; // a UTC midnight
    let mut rows = Vec::new();
    for i in 0..10i64 {
        let mut r = spend(
            &format!("req-{i}"),
            Some(if i < 6 { 1 } else { 2 }),
            Some(if i % 2 == 0 { "user1" } else { "user2" }),
            if i < 8 { Some("team") } else { None },
            (i + 1) * 1_000,
        );
        r.started_at = t0 + i * day / 4;
        r.ended_at = r.started_at + 10;
        if i >= 5 {
            r.model = "claude".into();
            r.deployment_id = "dep-2".into();
        }
        rows.push(r);
    }
    s.insert_spend(&gatehouse_store::new_batch_id(), &rows)
        .await
        .unwrap();

    let all = s.spend_logs(&SpendQuery::default()).await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[0], rows[9], "newest first, fields round-trip");
    assert_eq!(all[9], rows[0]);

    let by_key = s
        .spend_logs(&SpendQuery {
            token_hash: Some(hash(1)),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_key.len(), 6);
    let by_user = s
        .spend_logs(&SpendQuery {
            user_id: Some("user2".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_user.len(), 5);
    let by_team = s
        .spend_logs(&SpendQuery {
            team_id: Some("team".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_team.len(), 8);
    let one = s
        .spend_logs(&SpendQuery {
            request_id: Some("req-3".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(one, vec![rows[3].clone()]);
    let range = SpendQuery {
        start_ms: Some(t0 + day / 2),
        end_ms: Some(t0 + day),
        ..SpendQuery::default()
    };
    let in_range = s.spend_logs(&range).await.unwrap();
    assert_eq!(
        in_range
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["req-3", "req-2"]
    );
    let limited = s
        .spend_logs(&SpendQuery {
            limit: Some(3),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 3);
    let combined = SpendQuery {
        token_hash: Some(hash(1)),
        user_id: Some("user1".into()),
        ..SpendQuery::default()
    };
    assert_eq!(s.spend_logs(&combined).await.unwrap().len(), 3);

    let total: i64 = (1..=10).map(|i| i * 1_000).sum();
    assert_eq!(s.global_spend(0, i64::MAX).await.unwrap(), total);
    assert_eq!(
        s.global_spend(t0 + day / 2, t0 + day).await.unwrap(),
        3_000 + 4_000
    );
    assert_eq!(s.global_spend(0, 1).await.unwrap(), 0);

    let totals = s.spend_totals(&combined).await.unwrap();
    assert_eq!(totals.spend, 1_000 + 3_000 + 5_000);
    assert_eq!(totals.requests, 3);
    assert_eq!(totals.prompt_tokens, 30);
    assert_eq!(totals.completion_tokens, 60);
    let none = s
        .spend_totals(&SpendQuery {
            user_id: Some("zz".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(none.requests, 0);
    assert_eq!(none.spend, 0);

    let by_model = s
        .spend_grouped(SpendGroupBy::Model, &SpendQuery::default())
        .await
        .unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(by_model[0].group.as_deref(), Some("claude"));
    assert_eq!(
        by_model[0].totals.spend,
        (6..=10).map(|i| i * 1_000).sum::<i64>()
    );
    assert_eq!(by_model[1].totals.requests, 5);
    let by_key = s
        .spend_grouped(SpendGroupBy::Key, &SpendQuery::default())
        .await
        .unwrap();
    assert_eq!(by_key[0].group, Some(hash_hex(&hash(2))));
    let by_team = s
        .spend_grouped(SpendGroupBy::Team, &SpendQuery::default())
        .await
        .unwrap();
    assert_eq!(by_team.len(), 2);
    assert!(
        by_team
            .iter()
            .any(|g| g.group.is_none() && g.totals.requests == 2)
    );
    let by_user = s
        .spend_grouped(SpendGroupBy::User, &SpendQuery::default())
        .await
        .unwrap();
    assert_eq!(by_user.iter().map(|g| g.totals.requests).sum::<i64>(), 10);
    let by_day = s
        .spend_grouped(SpendGroupBy::Day, &SpendQuery::default())
        .await
        .unwrap();
    assert_eq!(by_day.len(), 3);
    let first_day = by_day
        .iter()
        .find(|g| g.group.as_deref() == Some("2023-11-14"))
        .unwrap();
    assert_eq!(first_day.totals.requests, 4);
}
both!(spend_queries);

// ---------------------------------------------------------------------------------------------
// Budget resets
// ---------------------------------------------------------------------------------------------

async fn budget_resets(db: TestDb) {
    let s = db.connect().await;
    let start = 1_700_000_000_000i64;
    let mut k = key(1);
    k.budget_duration = Some("1h".into());
    k.budget_reset_at = Some(start);
    k.user_id = Some("u".into());
    k.team_id = Some("t".into());
    s.insert_key(&k).await.unwrap();
    let mut plain = key(2);
    plain.user_id = Some("u".into());
    s.insert_key(&plain).await.unwrap();
    let mut u = UserRecord::new("u", "internal_user");
    u.budget_duration = Some("1mo".into());
    u.budget_reset_at = Some(start + 10);
    s.insert_user(&u).await.unwrap();
    let mut t = TeamRecord::new("t");
    t.budget_duration = Some("7d".into());
    t.budget_reset_at = Some(start + 3 * 86_400_000);
    s.insert_team(&t).await.unwrap();
    s.insert_spend(
        &gatehouse_store::new_batch_id(),
        &[
            spend("x", Some(1), Some("u"), Some("t"), 500),
            spend("y", Some(2), Some("u"), None, 20),
        ],
    )
    .await
    .unwrap();

    // Nothing due yet.
    assert!(s.reset_due_budgets(start - 1).await.unwrap().is_empty());

    let seq = s.latest_event_seq().await.unwrap();
    // Five and a half hours late: key and user are due, the team is not.
    let now = start + 5 * 3_600_000 + 1_800_000;
    let mut reset = s.reset_due_budgets(now).await.unwrap();
    reset.sort();
    assert_eq!(
        reset,
        vec![
            (EntityKind::Key, hash_hex(&hash(1))),
            (EntityKind::User, "u".to_string())
        ]
    );
    let key1 = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    assert_eq!(key1.spend, 0);
    assert_eq!(
        key1.budget_reset_at,
        Some(start + 6 * 3_600_000),
        "stays aligned"
    );
    assert_eq!(s.key_by_hash(&hash(2)).await.unwrap().unwrap().spend, 20);
    let user = s.user("u").await.unwrap().unwrap();
    assert_eq!(user.spend, 0);
    // 2023-11-14T22:13:20.010Z + 1 month
    assert_eq!(user.budget_reset_at, Some(1_702_592_000_010));
    assert_eq!(s.team("t").await.unwrap().unwrap().spend, 500);
    let events = s.events_since(seq, 10).await.unwrap();
    assert_eq!(events.len(), 2);

    // Running again at the same time resets nothing.
    assert!(s.reset_due_budgets(now).await.unwrap().is_empty());
    // The team's turn.
    let reset = s.reset_due_budgets(start + 3 * 86_400_000).await.unwrap();
    assert_eq!(
        reset,
        vec![
            (EntityKind::Key, hash_hex(&hash(1))),
            (EntityKind::Team, "t".to_string())
        ]
    );
    let team = s.team("t").await.unwrap().unwrap();
    assert_eq!(team.spend, 0);
    assert_eq!(team.budget_reset_at, Some(start + 10 * 86_400_000));
}
both!(budget_resets);

// ---------------------------------------------------------------------------------------------
// Spend writer
// ---------------------------------------------------------------------------------------------

/// Wraps a store; fails every insert while `fail` is set, and can "lose the ack" of one
/// insert (commit, then report an error).
struct FlakySink {
    store: Store,
    fail: AtomicBool,
    lose_next_ack: AtomicBool,
    calls: AtomicUsize,
    max_batch: AtomicUsize,
}

impl FlakySink {
    fn new(store: Store) -> Arc<FlakySink> {
        Arc::new(FlakySink {
            store,
            fail: AtomicBool::new(false),
            lose_next_ack: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
        })
    }
}

impl SpendSink for FlakySink {
    fn insert_spend<'a>(
        &'a self,
        batch: &'a SpendBatch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, StoreError>> + Send + 'a>>
    {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.max_batch
                .fetch_max(batch.records.len(), Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
            }
            let n = self.store.insert_spend(&batch.id, &batch.records).await?;
            if self.lose_next_ack.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Database(sqlx::Error::PoolClosed));
            }
            Ok(n)
        })
    }
}

fn fast_config() -> WriterConfig {
    WriterConfig {
        batch_size: 500,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..WriterConfig::default()
    }
}

/// Spend rows written by schema version 3 (a unique `request_id`, no batch ids) survive the
/// migration to batch ids, and the store writes and finds rows afterwards.
async fn spend_rows_survive_the_batch_id_migration(db: TestDb) {
    let old = Store::connect_at_version(&db.url, db.opts.clone(), 3)
        .await
        .unwrap();
    old.close().await;
    db.raw("INSERT INTO gatehouse_models (model, deployment_id) VALUES ('gpt-4o', 'dep-1')")
        .await;
    for (id, at) in [
        ("old-1", 1_700_000_000_000i64),
        ("old-2", 1_700_000_001_000),
    ] {
        db.raw(&format!(
            "INSERT INTO gatehouse_spend_logs (request_id, token_hash, user_id, team_id, \
             model_ref, started_at, ended_at, prompt_tokens, completion_tokens, cached_tokens, \
             spend, status) SELECT '{id}', NULL, 'u', NULL, id, {at}, {at}, 1, 2, 0, 5, 200 \
             FROM gatehouse_models"
        ))
        .await;
    }
    let s = db.connect().await;
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(count_logs(&s).await, 2);
    let found = s
        .spend_logs(&SpendQuery {
            request_id: Some("old-2".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].started_at, 1_700_000_001_000);
    s.insert_spend("after", &[spend("new-1", None, Some("u"), None, 5)])
        .await
        .unwrap();
    assert_eq!(count_logs(&s).await, 3);
    // On PostgreSQL a replica of the previous version (still running during a rolling
    // upgrade) keeps writing its way: `ON CONFLICT (request_id)` needs the unique
    // constraint, which the migration keeps there. (SQLite is one process: no such replica.)
    if db.is_postgres() {
        db.raw(
            "INSERT INTO gatehouse_spend_logs (request_id, token_hash, user_id, team_id, \
             model_ref, started_at, ended_at, prompt_tokens, completion_tokens, cached_tokens, \
             spend, status) SELECT 'v3-replica', NULL, 'u', NULL, id, 1, 1, 1, 2, 0, 5, 200 \
             FROM gatehouse_models ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
        )
        .await;
        assert_eq!(count_logs(&s).await, 4);
    }
}
both!(spend_rows_survive_the_batch_id_migration);

/// A UUIDv7 request id is found through the time index: its row's `started_at` is the id's
/// millisecond (the gateway makes both from one clock reading).
async fn spend_rows_are_found_by_uuid_v7_request_id(db: TestDb) {
    let s = db.connect().await;
    let ms: i64 = 1_780_000_000_123;
    let v7 = |ms: i64, tail: u64| {
        format!(
            "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
            ms >> 16,
            ms & 0xffff,
            tail & 0xfff,
            (tail >> 12) & 0xfff,
            tail
        )
    };
    let mut rows = Vec::new();
    for i in 0..50u64 {
        let at = ms + i64::try_from(i).unwrap() * 1000;
        let mut r = spend(&v7(at, i), Some(1), None, None, 1);
        r.started_at = at;
        rows.push(r);
    }
    s.insert_spend("v7", &rows).await.unwrap();
    for i in [0usize, 17, 49] {
        let want = &rows[i];
        let found = s
            .spend_logs(&SpendQuery {
                request_id: Some(want.request_id.clone()),
                ..SpendQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{}", want.request_id);
        assert_eq!(found[0].request_id, want.request_id);
        assert_eq!(found[0].started_at, want.started_at);
    }
    // An id that is not a UUIDv7 is still looked up (without the time bound).
    let mut r = spend("not-a-uuid", None, None, None, 1);
    r.started_at = 5;
    s.insert_spend("other", &[r]).await.unwrap();
    let found = s
        .spend_logs(&SpendQuery {
            request_id: Some("not-a-uuid".into()),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}
both!(spend_rows_are_found_by_uuid_v7_request_id);

async fn count_logs(s: &Store) -> usize {
    s.spend_logs(&SpendQuery {
        limit: Some(100_000),
        ..SpendQuery::default()
    })
    .await
    .unwrap()
    .len()
}

async fn writer_batches(db: TestDb) {
    let s = db.connect().await;
    s.insert_key(&key(1)).await.unwrap();
    let sink = FlakySink::new(s.clone());
    let w = SpendWriter::spawn(sink.clone(), fast_config());
    for i in 0..1_600 {
        w.record(spend(&format!("w-{i}"), Some(1), None, None, 3))
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), w.flush_now())
        .await
        .unwrap();
    assert_eq!(w.pending(), 0);
    assert_eq!(count_logs(&s).await, 1_600);
    assert!(sink.max_batch.load(Ordering::SeqCst) <= 500);
    assert!(sink.calls.load(Ordering::SeqCst) >= 4);
    assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 4_800);

    // The periodic flush writes a lone record without being asked.
    w.record(spend("lone", Some(1), None, None, 1)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while count_logs(&s).await < 1_601 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "periodic flush did not happen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.shutdown(Duration::from_secs(5)).await.unwrap();
}
both!(writer_batches);

async fn writer_survives_outage(db: TestDb) {
    let s = db.connect().await;
    s.insert_key(&key(1)).await.unwrap();
    let sink = FlakySink::new(s.clone());
    sink.fail.store(true, Ordering::SeqCst);
    let w = SpendWriter::spawn(sink.clone(), fast_config());
    for i in 0..50 {
        w.record(spend(&format!("o-{i}"), Some(1), None, None, 10))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.is_failing());
    assert_eq!(w.pending(), 50);
    assert!(sink.calls.load(Ordering::SeqCst) >= 3, "retries");
    assert_eq!(count_logs(&s).await, 0);
    // Records keep arriving during the outage.
    for i in 50..80 {
        w.record(spend(&format!("o-{i}"), Some(1), None, None, 10))
            .unwrap();
    }
    sink.fail.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), w.flush_now())
        .await
        .unwrap();
    assert!(!w.is_failing());
    assert_eq!(w.pending(), 0);
    assert_eq!(count_logs(&s).await, 80);
    assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 800);

    // Committed but acknowledgement lost: the retry must not double count.
    sink.lose_next_ack.store(true, Ordering::SeqCst);
    for i in 0..5 {
        w.record(spend(&format!("ack-{i}"), Some(1), None, None, 100))
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), w.flush_now())
        .await
        .unwrap();
    assert_eq!(count_logs(&s).await, 85);
    assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 1_300);
    w.shutdown(Duration::from_secs(5)).await.unwrap();
}
both!(writer_survives_outage);

async fn writer_backpressure(db: TestDb) {
    let s = db.connect().await;
    let sink = FlakySink::new(s.clone());
    sink.fail.store(true, Ordering::SeqCst);
    let w = SpendWriter::spawn(
        sink.clone(),
        WriterConfig {
            capacity: 10,
            batch_size: 4,
            ..fast_config()
        },
    );
    for i in 0..10 {
        w.record(spend(&format!("f-{i}"), None, None, None, 1))
            .unwrap();
    }
    assert!(w.is_full());
    match w.record(spend("f-10", None, None, None, 1)) {
        Err(RecordError::Full(r)) => assert_eq!(r.request_id, "f-10"),
        other => panic!("expected Full, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(w.is_full(), "in-flight records still count");
    sink.fail.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), w.flush_now())
        .await
        .unwrap();
    assert!(!w.is_full());
    w.record(spend("f-10", None, None, None, 1)).unwrap();
    w.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(count_logs(&s).await, 11);
}
both!(writer_backpressure);

async fn writer_shutdown(db: TestDb) {
    let s = db.connect().await;
    let slow = WriterConfig {
        flush_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    let w = SpendWriter::spawn(Arc::new(s.clone()), slow.clone());
    for i in 0..123 {
        w.record(spend(&format!("s-{i}"), None, None, None, 1))
            .unwrap();
    }
    w.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(count_logs(&s).await, 123);
    assert!(matches!(
        w.record(spend("late", None, None, None, 1)),
        Err(RecordError::Closed(_))
    ));
    w.flush_now().await; // returns at once after shutdown
    w.shutdown(Duration::from_secs(1)).await.unwrap(); // idempotent

    // Shutdown during an outage hands back what could not be written.
    let sink = FlakySink::new(s.clone());
    sink.fail.store(true, Ordering::SeqCst);
    let w = SpendWriter::spawn(sink, slow);
    for i in 0..7 {
        w.record(spend(&format!("u-{i}"), None, None, None, 1))
            .unwrap();
    }
    let unflushed = w.shutdown(Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(unflushed.len(), 7);
    // They can be written later, each batch once however often it is retried.
    for b in &unflushed.batches {
        s.insert_spend(&b.id, &b.records).await.unwrap();
        assert_eq!(s.insert_spend(&b.id, &b.records).await.unwrap(), 0);
    }
    assert_eq!(count_logs(&s).await, 130);
}
both!(writer_shutdown);

/// A shutdown waits for requests that were admitted and are still settling (their ticket is
/// alive), so their records are written; a ticket dropped without a record just ends.
async fn writer_shutdown_waits_for_tickets(db: TestDb) {
    let s = db.connect().await;
    let w = Arc::new(SpendWriter::spawn(Arc::new(s.clone()), fast_config()));
    let late = w.ticket();
    let unused = w.ticket();
    let settle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(unused);
        late.record(spend("late-but-admitted", None, None, None, 1))
            .unwrap();
    });
    let started = tokio::time::Instant::now();
    w.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    settle.await.unwrap();
    assert_eq!(count_logs(&s).await, 1);
    // A ticket still alive at the deadline does not hold the shutdown beyond it.
    let w = SpendWriter::spawn(Arc::new(s.clone()), fast_config());
    let _stuck = w.ticket();
    let started = tokio::time::Instant::now();
    w.shutdown(Duration::from_millis(300)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}
both!(writer_shutdown_waits_for_tickets);

/// Batches a shutdown could not write are saved to a file and written at the next start,
/// once each however often the file is replayed; a corrupt file is left alone.
async fn unwritten_batches_are_spilled_and_replayed_once(db: TestDb) {
    let s = db.connect().await;
    s.insert_key(&key(1)).await.unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-spill-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let unflushed = Unflushed {
        batches: vec![
            SpendBatch::new(vec![
                spend("s-1", Some(1), None, None, 10),
                spend("s-2", Some(1), None, None, 20),
            ]),
            SpendBatch::new(vec![spend("s-3", Some(1), None, None, 30)]),
        ],
    };
    let path = gatehouse_store::write_spill(&dir, &unflushed, 1_000).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
    }
    let copy = dir.join("copy.bak");
    std::fs::copy(&path, &copy).unwrap();
    let (done, err) = gatehouse_store::replay_spills(&s, &dir).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!((done.files, done.records), (1, 3));
    assert!(!path.exists());
    assert_eq!(count_logs(&s).await, 3);
    assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 60);
    // The same file again (a crash after writing, before removing it): nothing counted twice.
    std::fs::rename(&copy, &path).unwrap();
    let (done, err) = gatehouse_store::replay_spills(&s, &dir).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.files, 1);
    assert_eq!(count_logs(&s).await, 3);
    assert_eq!(s.key_by_hash(&hash(1)).await.unwrap().unwrap().spend, 60);
    // A corrupt file stays, with the error naming it; nothing else happens.
    let bad = dir.join("gatehouse-unwritten-spend-2000-1.jsonl");
    std::fs::write(&bad, "{not json\n").unwrap();
    let (done, err) = gatehouse_store::replay_spills(&s, &dir).await;
    assert_eq!(done.files, 0);
    assert!(
        matches!(
            err,
            Some(gatehouse_store::SpillError::Corrupt { line: 1, .. })
        ),
        "{err:?}"
    );
    assert!(bad.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
both!(unwritten_batches_are_spilled_and_replayed_once);

async fn writer_with_closed_store(db: TestDb) {
    // A real database failure: the store's pool is closed under the writer.
    let s = db.connect().await;
    let w = SpendWriter::spawn(Arc::new(s.clone()), fast_config());
    s.close().await;
    w.record(spend("c-1", None, None, None, 1)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.is_failing());
    assert_eq!(w.pending(), 1);
    let unflushed = w.shutdown(Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(unflushed.batches.len(), 1);
    let b = &unflushed.batches[0];
    assert_eq!(b.records[0].request_id, "c-1");
    // A fresh connection writes them.
    let s2 = db.connect().await;
    assert_eq!(s2.insert_spend(&b.id, &b.records).await.unwrap(), 1);
}
both!(writer_with_closed_store);
