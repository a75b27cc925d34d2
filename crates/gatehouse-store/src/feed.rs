//! [`FeedCursor`]: follows the change feed without missing events that commit out of order.
//!
//! On PostgreSQL an event's `seq` is taken when its row is inserted, but the row becomes
//! visible only when its transaction commits, so event 100 can appear after event 101 has
//! been read. A reader that only asks for `seq > last` never sees event 100 — a key deleted
//! on one replica would stay usable on the others until their cache entry expires. The
//! cursor therefore remembers every sequence number it skipped over (a *gap*) and asks for
//! those again on each poll, until they show up or are older than the gap's time to live
//! ([`DEFAULT_GAP_TTL`]): a gap can also be permanent (a rolled-back transaction, or
//! PostgreSQL skipping sequence values after a crash), so it cannot be waited for forever.
//! Each event is returned once (a gap is removed when it is returned).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::records::{Event, StoreError};
use crate::store::Store;

/// How long a missing sequence number is asked for again. A transaction of ours that took a
/// sequence number commits within seconds; after this the gap is taken to be permanent.
pub const DEFAULT_GAP_TTL: Duration = Duration::from_secs(60);
/// At most this many missing sequence numbers are remembered (the newest are kept).
pub const MAX_GAPS: usize = 4096;
/// At most this many gaps are asked for in one poll (the oldest first).
const GAPS_PER_POLL: usize = 256;
/// When starting, the sequence numbers this far below the latest that are missing are
/// treated as gaps (their transactions may still be open).
const START_WINDOW: i64 = 64;

/// A position in the change feed plus the sequence numbers below it not yet seen.
#[derive(Debug, Clone)]
pub struct FeedCursor {
    /// Highest sequence number returned.
    last: i64,
    /// Missing sequence numbers below `last`, with when they were first missed.
    gaps: BTreeMap<i64, Instant>,
    gap_ttl: Duration,
}

impl FeedCursor {
    /// A cursor after `last` that knows of no gaps (tests; or a reader that has seen
    /// everything up to `last`).
    pub fn after(last: i64) -> FeedCursor {
        FeedCursor {
            last,
            gaps: BTreeMap::new(),
            gap_ttl: DEFAULT_GAP_TTL,
        }
    }

    /// Sets how long a gap is asked for again (default [`DEFAULT_GAP_TTL`]).
    pub fn with_gap_ttl(mut self, ttl: Duration) -> FeedCursor {
        self.gap_ttl = ttl;
        self
    }

    /// Starts following the feed now: events already committed are not returned, but the
    /// sequence numbers missing just below the latest one (whose transactions may still be
    /// open) are watched as gaps.
    pub async fn start(store: &Store) -> Result<FeedCursor, StoreError> {
        let latest = store.latest_event_seq().await?;
        let floor = latest.saturating_sub(START_WINDOW).max(0);
        let present = store
            .events_since(floor, u32::try_from(START_WINDOW).unwrap_or(64))
            .await?;
        let mut cursor = FeedCursor::after(floor);
        cursor.note_gaps_below(latest.saturating_add(1), Instant::now(), &present);
        cursor.last = latest;
        Ok(cursor)
    }

    /// The highest sequence number returned so far.
    pub fn last_seq(&self) -> i64 {
        self.last
    }

    /// Sequence numbers below [`FeedCursor::last_seq`] still being watched.
    pub fn gaps(&self) -> usize {
        self.gaps.len()
    }

    /// Records as gaps the numbers in `last+1 .. upto` that are not in `present`.
    fn note_gaps_below(&mut self, upto: i64, now: Instant, present: &[Event]) {
        let from = self
            .last
            .saturating_add(1)
            .max(upto.saturating_sub(i64::try_from(MAX_GAPS).unwrap_or(i64::MAX)));
        let mut seen = present.iter().map(|e| e.seq).peekable();
        for seq in from..upto {
            while seen.peek().is_some_and(|s| *s < seq) {
                seen.next();
            }
            if seen.peek() == Some(&seq) {
                continue;
            }
            self.gaps.insert(seq, now);
        }
        while self.gaps.len() > MAX_GAPS {
            self.gaps.pop_first();
        }
    }

    /// Reads what is new: events that filled a gap, then up to `limit` events above the last
    /// one returned. Each event is returned once. On an error nothing is consumed.
    pub async fn poll(&mut self, store: &Store, limit: u32) -> Result<Vec<Event>, StoreError> {
        let now = Instant::now();
        let ttl = self.gap_ttl;
        self.gaps
            .retain(|_, first| now.duration_since(*first) < ttl);
        let asked: Vec<i64> = self.gaps.keys().take(GAPS_PER_POLL).copied().collect();
        let filled = store.events_at(&asked).await?;
        let newer = store.events_since(self.last, limit).await?;
        Ok(self.absorb(filled, newer, now))
    }

    /// Applies the answers of one poll to the cursor; returns the events not returned before.
    fn absorb(&mut self, filled: Vec<Event>, newer: Vec<Event>, now: Instant) -> Vec<Event> {
        let mut out = Vec::with_capacity(filled.len() + newer.len());
        for e in filled {
            if self.gaps.remove(&e.seq).is_some() {
                out.push(e);
            }
        }
        for e in newer {
            if e.seq <= self.last {
                continue;
            }
            self.note_gaps_below(e.seq, now, &[]);
            self.last = e.seq;
            out.push(e);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::EntityKind;

    fn ev(seq: i64) -> Event {
        Event {
            seq,
            kind: EntityKind::Key,
            id: format!("{seq}"),
            at: 0,
        }
    }

    fn seqs(v: &[Event]) -> Vec<i64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn skipped_numbers_are_returned_when_they_appear_and_only_once() {
        let now = Instant::now();
        let mut c = FeedCursor::after(10);
        // 11 and 13 are visible, 12 is not (its transaction is still open).
        assert_eq!(seqs(&c.absorb(vec![], vec![ev(11), ev(13)], now)), [11, 13]);
        assert_eq!(c.last_seq(), 13);
        assert_eq!(c.gaps(), 1);
        // 12 commits.
        assert_eq!(seqs(&c.absorb(vec![ev(12)], vec![], now)), [12]);
        assert_eq!(c.gaps(), 0);
        // Seen again (a re-read): not returned twice.
        assert!(c.absorb(vec![ev(12)], vec![ev(13)], now).is_empty());
    }

    #[test]
    fn gaps_are_bounded() {
        let now = Instant::now();
        let mut c = FeedCursor::after(0);
        let far = i64::try_from(MAX_GAPS).unwrap() * 3;
        assert_eq!(seqs(&c.absorb(vec![], vec![ev(far)], now)), [far]);
        assert_eq!(c.gaps(), MAX_GAPS);
        // The newest missing numbers are the ones kept.
        assert!(c.gaps.contains_key(&(far - 1)));
        assert!(!c.gaps.contains_key(&1));
    }
}
