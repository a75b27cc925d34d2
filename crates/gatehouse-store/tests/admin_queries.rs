//! The store queries behind the admin API: unique key aliases (and the migration that makes
//! old duplicates unique), all-or-nothing deletes, regeneration with new settings, team
//! member roles, user aliases, the per-day spend summary and paged spend logs. Every scenario
//! runs on SQLite and, when `GATEHOUSE_TEST_POSTGRES_URL` is set, on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestDb, hash, key, spend};
use gatehouse_store::{
    SCHEMA_VERSION, SpendQuery, Store, StoreError, TeamRecord, UserRecord, hash_hex,
};

async fn aliases_are_unique(db: TestDb) {
    let s = db.connect().await;
    let mut a = key(1);
    a.key_alias = Some("ci".into());
    s.insert_key(&a).await.unwrap();
    // Keys without an alias do not collide.
    s.insert_key(&key(2)).await.unwrap();
    s.insert_key(&key(3)).await.unwrap();

    let mut b = key(4);
    b.key_alias = Some("ci".into());
    let err = s.insert_key(&b).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::AliasTaken { alias } if alias == "ci"),
        "{err}"
    );
    assert!(s.key_by_hash(&hash(4)).await.unwrap().is_none());

    // Re-inserting an existing key is still a hash conflict, whatever the alias.
    assert!(matches!(
        s.insert_key(&a).await,
        Err(StoreError::Conflict { .. })
    ));

    let mut two = s.key_by_hash(&hash(2)).await.unwrap().unwrap();
    two.key_alias = Some("ci".into());
    assert!(matches!(
        s.update_key(&two).await,
        Err(StoreError::AliasTaken { .. })
    ));
    assert_eq!(
        s.key_by_hash(&hash(2)).await.unwrap().unwrap().key_alias,
        None
    );
    two.key_alias = Some("other".into());
    s.update_key(&two).await.unwrap();

    assert_eq!(s.key_by_alias("ci").await.unwrap(), Some(hash(1)));
    assert_eq!(s.key_by_alias("other").await.unwrap(), Some(hash(2)));
    assert_eq!(s.key_by_alias("nope").await.unwrap(), None);
}
both!(aliases_are_unique);

/// A database written before aliases were unique: the migration keeps the alias on the oldest
/// key and renames the others, predictably.
async fn duplicate_aliases_are_renamed_by_the_migration(db: TestDb) {
    let old = Store::connect_at_version(&db.url, db.opts.clone(), 1)
        .await
        .unwrap();
    assert_eq!(old.schema_version().await.unwrap(), 1);
    for (n, created) in [(1u8, 3_000i64), (2, 1_000), (3, 2_000)] {
        let mut k = key(n);
        k.key_alias = Some("shared".into());
        k.created_at = created;
        old.insert_key(&k).await.unwrap();
    }
    let mut solo = key(4);
    solo.key_alias = Some("solo".into());
    old.insert_key(&solo).await.unwrap();
    old.close().await;

    let s = db.connect().await;
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    let alias = |n: u8| {
        let s = s.clone();
        async move { s.key_by_hash(&hash(n)).await.unwrap().unwrap().key_alias }
    };
    // Key 2 is the oldest and keeps the alias.
    assert_eq!(alias(2).await.as_deref(), Some("shared"));
    for n in [1u8, 3] {
        let expected = format!("shared-dup-{}", &hash_hex(&hash(n))[..8]);
        assert_eq!(alias(n).await, Some(expected.clone()));
        assert_eq!(s.key_by_alias(&expected).await.unwrap(), Some(hash(n)));
    }
    assert_eq!(alias(4).await.as_deref(), Some("solo"));
    assert_eq!(s.key_by_alias("shared").await.unwrap(), Some(hash(2)));
    // And from now on they stay unique.
    let mut k = key(5);
    k.key_alias = Some("shared".into());
    assert!(matches!(
        s.insert_key(&k).await,
        Err(StoreError::AliasTaken { .. })
    ));
}
both!(duplicate_aliases_are_renamed_by_the_migration);

/// When even the renamed alias is taken, start-up fails with an error naming the migration
/// rather than carrying on with a half-migrated schema.
async fn an_unresolvable_duplicate_stops_the_migration_loudly(db: TestDb) {
    let old = Store::connect_at_version(&db.url, db.opts.clone(), 1)
        .await
        .unwrap();
    for (n, created) in [(1u8, 1_000i64), (2, 2_000)] {
        let mut k = key(n);
        k.key_alias = Some("x".into());
        k.created_at = created;
        old.insert_key(&k).await.unwrap();
    }
    let mut squatter = key(3);
    squatter.key_alias = Some(format!("x-dup-{}", &hash_hex(&hash(2))[..8]));
    old.insert_key(&squatter).await.unwrap();
    old.close().await;

    let err = Store::connect(&db.url, db.opts.clone()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("unique key aliases"), "{err}");
    // Nothing was half-done: the schema is still at version 1 with the data untouched.
    let again = Store::connect_at_version(&db.url, db.opts.clone(), 1)
        .await
        .unwrap();
    assert_eq!(again.schema_version().await.unwrap(), 1);
    assert_eq!(
        again
            .key_by_hash(&hash(2))
            .await
            .unwrap()
            .unwrap()
            .key_alias
            .as_deref(),
        Some("x")
    );
}
both!(an_unresolvable_duplicate_stops_the_migration_loudly);

async fn deletes_are_all_or_nothing(db: TestDb) {
    let s = db.connect().await;
    s.insert_key(&key(1)).await.unwrap();
    s.insert_key(&key(2)).await.unwrap();
    let before = s.latest_event_seq().await.unwrap();
    // One of the two does not exist: nothing is deleted, no event is written.
    assert_eq!(
        s.delete_keys_all_or_none(&[hash(1), hash(9)], 2)
            .await
            .unwrap(),
        1
    );
    assert!(s.key_by_hash(&hash(1)).await.unwrap().is_some());
    assert_eq!(s.latest_event_seq().await.unwrap(), before);
    // Duplicates count once.
    assert_eq!(
        s.delete_keys_all_or_none(&[hash(1), hash(2), hash(1)], 2)
            .await
            .unwrap(),
        2
    );
    assert!(s.key_by_hash(&hash(1)).await.unwrap().is_none());
    assert!(s.key_by_hash(&hash(2)).await.unwrap().is_none());
    assert_eq!(s.delete_keys_all_or_none(&[hash(1)], 1).await.unwrap(), 0);
}
both!(deletes_are_all_or_nothing);

async fn regeneration_can_change_settings(db: TestDb) {
    let s = db.connect().await;
    let mut taken = key(7);
    taken.key_alias = Some("taken".into());
    s.insert_key(&taken).await.unwrap();
    let mut k = key(1);
    k.key_alias = Some("mine".into());
    k.rpm_limit = Some(5);
    s.insert_key(&k).await.unwrap();
    s.insert_spend(
        &gatehouse_store::new_batch_id(),
        &[spend("r1", Some(1), None, None, 123)],
    )
    .await
    .unwrap();

    // An alias conflict leaves the old key as it was.
    let mut new = s.key_by_hash(&hash(1)).await.unwrap().unwrap();
    new.token_hash = hash(2);
    new.key_name = "sk-...0002".into();
    new.key_alias = Some("taken".into());
    assert!(matches!(
        s.regenerate_key_with(&hash(1), &new).await,
        Err(StoreError::AliasTaken { .. })
    ));
    assert!(s.key_by_hash(&hash(1)).await.unwrap().is_some());
    assert!(s.key_by_hash(&hash(2)).await.unwrap().is_none());

    new.key_alias = Some("mine".into());
    new.max_budget = Some(9_000);
    new.rpm_limit = Some(50);
    s.regenerate_key_with(&hash(1), &new).await.unwrap();
    assert!(s.key_by_hash(&hash(1)).await.unwrap().is_none());
    let got = s.key_by_hash(&hash(2)).await.unwrap().unwrap();
    assert_eq!(got.key_name, "sk-...0002");
    assert_eq!(got.max_budget, Some(9_000));
    assert_eq!(got.rpm_limit, Some(50));
    assert_eq!(got.key_alias.as_deref(), Some("mine"));
    assert_eq!(got.spend, 123, "spend is kept");
    assert!(matches!(
        s.regenerate_key_with(&hash(1), &new).await,
        Err(StoreError::NotFound { .. })
    ));
}
both!(regeneration_can_change_settings);

async fn member_roles_and_user_aliases(db: TestDb) {
    let s = db.connect().await;
    let mut u = UserRecord::new("ann", "internal_user");
    u.user_alias = Some("Ann A.".into());
    s.insert_user(&u).await.unwrap();
    let mut got = s.user("ann").await.unwrap().unwrap();
    assert_eq!(got.user_alias.as_deref(), Some("Ann A."));
    got.user_alias = None;
    s.update_user(&got).await.unwrap();
    assert_eq!(s.user("ann").await.unwrap().unwrap().user_alias, None);

    let mut t = TeamRecord::new("t");
    t.members = vec!["ann".into(), "bob".into()];
    t.admins = vec!["bob".into(), "not-a-member".into()];
    let stored = s.insert_team(&t).await.unwrap();
    assert_eq!(stored.admins, vec!["bob".to_string()]);
    let got = s.team("t").await.unwrap().unwrap();
    assert_eq!(got.members, vec!["ann".to_string(), "bob".to_string()]);
    assert_eq!(got.admins, vec!["bob".to_string()]);

    assert!(s.add_team_member_with_role("t", "cy", true).await.unwrap());
    assert!(s.add_team_member("t", "dee").await.unwrap());
    // Already a member: the role is left alone.
    assert!(!s.add_team_member_with_role("t", "dee", true).await.unwrap());
    let got = s.team("t").await.unwrap().unwrap();
    assert_eq!(got.members.len(), 4);
    assert_eq!(got.admins, vec!["bob".to_string(), "cy".to_string()]);
    assert!(s.remove_team_member("t", "bob").await.unwrap());
    assert_eq!(
        s.team("t").await.unwrap().unwrap().admins,
        vec!["cy".to_string()]
    );
}
both!(member_roles_and_user_aliases);

async fn spend_per_day_and_pages(db: TestDb) {
    let s = db.connect().await;
    for n in 1..=2 {
        s.insert_key(&key(n)).await.unwrap();
    }
    let day = 86_400_000i64;
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % day; // a UTC midnight
    let mut rows = Vec::new();
    for i in 0..8i64 {
        let mut r = spend(
            &format!("req-{i}"),
            Some(if i % 2 == 0 { 1 } else { 2 }),
            if i < 6 { Some("u1") } else { None },
            None,
            (i + 1) * 100,
        );
        // Four on day 0, four on day 2.
        r.started_at = t0 + (i / 4) * 2 * day + i * 1_000;
        r.ended_at = r.started_at + 5;
        if i == 3 {
            r.model = "claude".into();
            r.deployment_id = "dep-2".into();
        }
        rows.push(r);
    }
    s.insert_spend(&gatehouse_store::new_batch_id(), &rows)
        .await
        .unwrap();

    let groups = s.spend_by_day(&SpendQuery::default()).await.unwrap();
    let total: i64 = groups.iter().map(|g| g.spend).sum();
    assert_eq!(total, (1..=8).map(|i| i * 100).sum::<i64>());
    let d0 = t0 / day;
    assert!(groups.iter().all(|g| g.day == d0 || g.day == d0 + 2));
    assert_eq!(
        groups
            .iter()
            .filter(|g| g.day == d0)
            .map(|g| g.spend)
            .sum::<i64>(),
        100 + 200 + 300 + 400
    );
    let claude: Vec<_> = groups.iter().filter(|g| g.model == "claude").collect();
    assert_eq!(claude.len(), 1);
    assert_eq!(
        (
            claude[0].spend,
            claude[0].token_hash,
            claude[0].deployment_id.as_str()
        ),
        (400, Some(hash(2)), "dep-2")
    );
    // Day 0: (key 1, u1, gpt-4o), (key 2, u1, gpt-4o), (key 2, u1, claude); day 2: key 1/2
    // with u1 and without a user.
    assert_eq!(groups.len(), 3 + 4);
    let only_key1 = s
        .spend_by_day(&SpendQuery {
            token_hash: Some(hash(1)),
            start_ms: Some(t0 + day),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(only_key1.iter().map(|g| g.spend).sum::<i64>(), 500 + 700);
    let capped = s
        .spend_by_day(&SpendQuery {
            limit: Some(2),
            ..SpendQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(capped.len(), 2);

    let page = |offset, limit| {
        let s = s.clone();
        async move {
            s.spend_logs_page(&SpendQuery::default(), offset, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.request_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 3).await, ["req-7", "req-6", "req-5"]);
    assert_eq!(page(3, 3).await, ["req-4", "req-3", "req-2"]);
    assert_eq!(page(6, 3).await, ["req-1", "req-0"]);
    assert!(page(9, 3).await.is_empty());
}
both!(spend_per_day_and_pages);
