//! The change feed read through [`FeedCursor`] while transactions commit out of sequence
//! order (PostgreSQL), and with permanent gaps (rolled-back transactions).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{TestDb, hash, key, run_on};
use gatehouse_store::{FeedCursor, hash_hex};
use sqlx::Connection;

/// A raw connection to the test's schema, to hold a transaction open.
async fn raw_pg(db: &TestDb) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let schema = db.opts.pg_schema.clone().unwrap();
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// A key is deleted in a transaction that takes its event's sequence number first but
/// commits after another replica's change (a later sequence number) has been read. The old
/// reader (re-read a window, apply only `seq > last`) never applied the delete; the cursor
/// returns it on the next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_committed_after_a_later_event_is_not_missed() {
    run_on(TestDb::postgres(), |db| async move {
        let s = db.connect().await;
        s.insert_key(&key(1)).await.unwrap();
        s.insert_key(&key(2)).await.unwrap();
        let mut cursor = FeedCursor::start(&s).await.unwrap();
        let start = cursor.last_seq();
        assert!(cursor.poll(&s, 1000).await.unwrap().is_empty());

        // Replica A: DELETE key 1 and its event, not yet committed.
        let mut a = raw_pg(&db).await;
        let mut tx = a.begin().await.unwrap();
        sqlx::query("DELETE FROM gatehouse_keys WHERE token_hash = $1")
            .bind(hash(1).to_vec())
            .execute(&mut *tx)
            .await
            .unwrap();
        let delete_seq: i64 = sqlx::query_scalar(
            "INSERT INTO gatehouse_events (kind, id, at) VALUES ('key', $1, 0) RETURNING seq",
        )
        .bind(hash_hex(&hash(1)))
        .fetch_one(&mut *tx)
        .await
        .unwrap();

        // Replica B: blocks key 2 and commits (a higher sequence number).
        s.set_key_blocked(&hash(2), true).await.unwrap();
        let first = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].id, hash_hex(&hash(2)));
        assert!(first[0].seq > delete_seq);
        assert_eq!(cursor.gaps(), 1, "the delete's number is watched");

        tx.commit().await.unwrap();

        // What the old poller did: re-read 64 below the last seen, keep only seq > last.
        let old_style: Vec<_> = s
            .events_since(cursor.last_seq() - 64, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.seq > cursor.last_seq())
            .collect();
        assert!(old_style.is_empty(), "the old reader would miss the delete");

        let second = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(second.len(), 1, "{second:?}");
        assert_eq!(second[0].seq, delete_seq);
        assert_eq!(second[0].id, hash_hex(&hash(1)));
        assert_eq!(cursor.gaps(), 0);
        // Nothing is returned twice.
        assert!(cursor.poll(&s, 1000).await.unwrap().is_empty());
        assert!(cursor.last_seq() > start);
        let _ = a.close().await;
    })
    .await;
}

/// Starting while a transaction holding a sequence number is still open: the number is
/// watched from the start, so its event is returned when it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_watches_numbers_still_in_flight() {
    run_on(TestDb::postgres(), |db| async move {
        let s = db.connect().await;
        s.insert_key(&key(1)).await.unwrap();
        let mut a = raw_pg(&db).await;
        let mut tx = a.begin().await.unwrap();
        let open_seq: i64 = sqlx::query_scalar(
            "INSERT INTO gatehouse_events (kind, id, at) VALUES ('key', $1, 0) RETURNING seq",
        )
        .bind(hash_hex(&hash(1)))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        s.insert_key(&key(2)).await.unwrap();
        let mut cursor = FeedCursor::start(&s).await.unwrap();
        assert!(cursor.last_seq() > open_seq);
        assert!(cursor.poll(&s, 1000).await.unwrap().is_empty());
        tx.commit().await.unwrap();
        let got = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].seq, open_seq);
        let _ = a.close().await;
    })
    .await;
}

/// A rolled-back transaction leaves a permanent gap: it is asked for until its time to live
/// runs out, then forgotten; later events are returned meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_gaps_age_out() {
    run_on(TestDb::postgres(), |db| async move {
        let s = db.connect().await;
        let mut cursor = FeedCursor::start(&s)
            .await
            .unwrap()
            .with_gap_ttl(Duration::from_millis(300));
        let mut a = raw_pg(&db).await;
        let mut tx = a.begin().await.unwrap();
        sqlx::query("INSERT INTO gatehouse_events (kind, id, at) VALUES ('key', 'x', 0)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        s.insert_key(&key(3)).await.unwrap();
        let got = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(cursor.gaps(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.insert_key(&key(4)).await.unwrap();
        let got = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(cursor.gaps(), 0, "the rolled-back number is given up");
        let _ = a.close().await;
    })
    .await;
}

/// SQLite commits in sequence order: the cursor returns every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_feed_in_order() {
    run_on(Some(TestDb::sqlite()), |db| async move {
        let s = db.connect().await;
        let mut cursor = FeedCursor::start(&s).await.unwrap();
        for n in 1..=5 {
            s.insert_key(&key(n)).await.unwrap();
        }
        s.delete_keys(&[hash(2)]).await.unwrap();
        let got = cursor.poll(&s, 3).await.unwrap();
        assert_eq!(got.len(), 3);
        let rest = cursor.poll(&s, 1000).await.unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[2].id, hash_hex(&hash(2)));
        assert_eq!(cursor.gaps(), 0);
        assert!(cursor.poll(&s, 1000).await.unwrap().is_empty());
    })
    .await;
}
