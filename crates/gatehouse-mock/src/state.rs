//! State shared by every connection of one mock server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::RecordedRequest;
use crate::bedrock::AwsTestCredentials;

/// How many requests the log keeps.
const MAX_RECORDED: usize = 1000;
/// How many `fail_times` keys are tracked before the map is reset.
const MAX_FAIL_KEYS: usize = 10_000;

/// Shared state of a mock server: the request counter (ids), the request log and
/// the per-key `fail_times` counters. Create one, pass an `Arc` of it to
/// [`serve`](crate::serve), and keep a clone to read the log.
#[derive(Debug)]
pub struct MockState {
    counter: AtomicU64,
    log: Mutex<VecDeque<RecordedRequest>>,
    failures: Mutex<HashMap<String, u32>>,
    tokens: Mutex<HashSet<String>>,
    /// AWS credentials Bedrock requests are verified against (SigV4).
    aws: Mutex<Vec<AwsTestCredentials>>,
    /// Bedrock prompt-cache prefixes written so far (hashes; bounded like the fail keys).
    cache_prefixes: Mutex<HashSet<u64>>,
}

impl Default for MockState {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockState {
    /// Empty state; the first request gets number 1.
    pub fn new() -> Self {
        MockState {
            counter: AtomicU64::new(1),
            log: Mutex::new(VecDeque::new()),
            failures: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashSet::new()),
            aws: Mutex::new(Vec::new()),
            cache_prefixes: Mutex::new(HashSet::new()),
        }
    }

    /// Every recorded request (the last 1000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).iter().cloned().collect()
    }

    /// Forgets the recorded requests; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut log = lock(&self.log);
        let n = log.len();
        log.clear();
        n
    }

    /// The next request number (used in `chatcmpl-mock-N`, `req-mock-N`, …).
    pub(crate) fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        let mut log = lock(&self.log);
        if log.len() >= MAX_RECORDED {
            log.pop_front();
        }
        log.push_back(req);
    }

    /// Remembers an access token the token endpoint issued (bounded like the fail keys).
    pub(crate) fn issue_token(&self, token: String) {
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= MAX_FAIL_KEYS {
            tokens.clear();
        }
        tokens.insert(token);
    }

    /// Accepts Bedrock requests signed with these credentials (SigV4 is verified; with
    /// none registered every Bedrock request is refused as AWS refuses an unknown key).
    pub fn accept_aws_credentials(&self, creds: AwsTestCredentials) {
        let mut all = lock(&self.aws);
        all.retain(|c| c.access_key_id != creds.access_key_id);
        all.push(creds);
    }

    pub(crate) fn aws_credentials(&self) -> Vec<AwsTestCredentials> {
        lock(&self.aws).clone()
    }

    /// Records a Bedrock cache prefix; true when it was already cached (a cache read).
    pub(crate) fn cache_prefix_seen(&self, prefix: u64) -> bool {
        let mut set = lock(&self.cache_prefixes);
        if set.contains(&prefix) {
            return true;
        }
        if set.len() >= MAX_FAIL_KEYS {
            set.clear();
        }
        set.insert(prefix);
        false
    }

    /// True for a token the token endpoint issued.
    pub(crate) fn token_issued(&self, token: &str) -> bool {
        lock(&self.tokens).contains(token)
    }

    /// Counts one request carrying `key`; true while fewer than `times` requests
    /// with that key have been failed.
    pub(crate) fn should_fail(&self, key: &str, times: u32) -> bool {
        let mut map = lock(&self.failures);
        if !map.contains_key(key) && map.len() >= MAX_FAIL_KEYS {
            map.clear();
        }
        let seen = map.entry(key.to_owned()).or_insert(0);
        if *seen < times {
            *seen += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: path.into(),
            headers: Default::default(),
            body: serde_json::Value::Null,
        }
    }

    #[test]
    fn log_is_bounded_and_ordered() {
        let s = MockState::new();
        for i in 0..(MAX_RECORDED + 5) {
            s.record(req(&format!("/{i}")));
        }
        let all = s.requests();
        assert_eq!(all.len(), MAX_RECORDED);
        assert_eq!(all[0].path, "/5");
        assert_eq!(all[MAX_RECORDED - 1].path, format!("/{}", MAX_RECORDED + 4));
        assert_eq!(s.clear(), MAX_RECORDED);
        assert!(s.requests().is_empty());
    }

    #[test]
    fn fail_times_per_key() {
        let s = MockState::new();
        assert!(s.should_fail("a", 2));
        assert!(s.should_fail("b", 1));
        assert!(s.should_fail("a", 2));
        assert!(!s.should_fail("a", 2));
        assert!(!s.should_fail("b", 1));
        assert!(!s.should_fail("c", 0));
    }

    #[test]
    fn ids_increase() {
        let s = MockState::new();
        assert_eq!(s.next_id(), 1);
        assert_eq!(s.next_id(), 2);
    }
}
