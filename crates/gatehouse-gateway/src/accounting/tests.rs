//! Admission and settlement against real (in-process) counters and a spend writer whose
//! database is down, so that every record it was given can be inspected.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_limits::Limiter;
use gatehouse_pricing::{ModelPrice, TokenPrice};
use gatehouse_store::{
    KeyRecord, SpendRecord, SpendSink, SpendWriter, Store, StoreError, StoreOptions, WriterConfig,
};

use super::*;
use crate::keys::{Caller, KeyCache, KeyContext};

/// A database that is down: every batch fails, so records stay in the writer.
struct Down;

impl SpendSink for Down {
    fn insert_spend<'a>(
        &'a self,
        _batch: &'a gatehouse_store::SpendBatch,
    ) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + 'a>> {
        Box::pin(async { Err(StoreError::Corrupt("down".into())) })
    }
}

async fn accounts(capacity: usize) -> Accounts {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-accounting-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("state.db").display());
    let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
    Accounts {
        keys: Arc::new(KeyCache::new(
            None,
            store.clone(),
            Duration::from_secs(60),
            Duration::from_secs(600),
        )),
        store,
        limiter: Limiter::local(),
        spend: Arc::new(SpendWriter::spawn(
            Arc::new(Down),
            WriterConfig {
                capacity,
                initial_backoff: Duration::from_secs(60),
                ..WriterConfig::default()
            },
        )),
    }
}

/// The records the writer holds, handed back by a shutdown that cannot flush.
async fn held_records(a: &Accounts) -> Vec<SpendRecord> {
    match a.spend.shutdown(Duration::from_millis(50)).await {
        Ok(()) => Vec::new(),
        Err(u) => u.batches.into_iter().flat_map(|b| b.records).collect(),
    }
}

/// $1 per 1M input tokens, $2 per 1M output tokens.
fn price() -> ModelPrice {
    ModelPrice {
        input: TokenPrice::parse_per_million("1").unwrap(),
        output: TokenPrice::parse_per_million("2").unwrap(),
        ..ModelPrice::default()
    }
}

fn shape<'a>(body: &'a Bytes, call_id: &'a str) -> RequestShape<'a> {
    RequestShape {
        model: "gpt-mock",
        body,
        max_tokens: None,
        completions: 1,
        has_output: true,
        call_id,
        started_ms: now_ms(),
        client: ClientFormat::OpenAi,
    }
}

fn chat_body(text: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({"model": "gpt-mock", "messages": [{"role": "user", "content": text}]})
            .to_string(),
    )
}

fn key_with_budget(usd: f64) -> Caller {
    let mut k = KeyRecord::new([7; 32], "sk-...test");
    k.max_budget = Some(Money::from_usd(usd).unwrap().pico());
    Caller::Key(Arc::new(KeyContext::new(k, None, None)))
}

const ANSWER: &[u8] = br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],
    "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;

/// Two requests admitted while the buffer had one free slot: both records are kept (the
/// second used to be refused as "buffer full" and dropped with a log line).
#[tokio::test]
async fn admitted_requests_never_lose_their_record_near_capacity() {
    let a = accounts(1).await;
    let body = chat_body("hello");
    let first = admit(&a, &Caller::Master, shape(&body, "r-1"), &price())
        .await
        .unwrap();
    let second = admit(&a, &Caller::Master, shape(&body, "r-2"), &price())
        .await
        .unwrap();
    first.meter.unwrap().finish_body(ANSWER);
    assert!(a.spend.is_full());
    second.meter.unwrap().finish_body(ANSWER);
    assert_eq!(
        a.spend.pending(),
        2,
        "the second admitted record was dropped"
    );
    // A new request is refused while the buffer is full.
    assert!(matches!(
        admit(&a, &Caller::Master, shape(&body, "r-3"), &price()).await,
        Err(ApiError::AccountingBackedUp)
    ));
    let ids: Vec<String> = held_records(&a)
        .await
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids, ["r-1", "r-2"]);
}

/// `n` completions may each use `max_tokens`: the reservation covers all of them and the
/// lowered `max_tokens` is the per-completion share of what the budget can pay for.
#[tokio::test]
async fn n_completions_share_the_budget() {
    let a = accounts(100).await;
    let body = chat_body("hello");
    let input_cost = price().max_input_price().cost(body.len() as u64);
    // Budget: the input plus 1,000 output tokens ($2/M → $0.002).
    let budget = input_cost.as_usd() + 0.002;
    let caller = key_with_budget(budget);
    let one = admit(&a, &caller, shape(&body, "n-1"), &price())
        .await
        .unwrap();
    let single_cap = one.max_tokens_cap.unwrap();
    assert!((999..=1000).contains(&single_cap), "{single_cap}");
    drop(one);
    let four = admit(
        &a,
        &caller,
        RequestShape {
            completions: 4,
            ..shape(&body, "n-4")
        },
        &price(),
    )
    .await
    .unwrap();
    let cap = four.max_tokens_cap.unwrap();
    assert_eq!(cap, single_cap / 4);
    // What the upstream may then bill stays within the budget.
    let most = input_cost.saturating_add(price().output.cost(cap * 4));
    assert!(most.pico() <= Money::from_usd(budget).unwrap().pico());
    drop(four);
    // A client `max_tokens` under the share is left alone but still reserved 4 times.
    let small = admit(
        &a,
        &caller,
        RequestShape {
            completions: 4,
            max_tokens: Some(100),
            ..shape(&body, "n-4-small")
        },
        &price(),
    )
    .await
    .unwrap();
    assert_eq!(small.max_tokens_cap, None);
    drop(small);
    // More completions than the budget can give one token each: refused.
    assert!(matches!(
        admit(
            &a,
            &caller,
            RequestShape {
                completions: 2_000,
                ..shape(&body, "n-2000")
            },
            &price(),
        )
        .await,
        Err(ApiError::BudgetExceeded(_))
    ));
}

/// Sent and never answered (the client went away, the upstream timed out): the input is
/// billed, counted with the tokenizer, and the record says why; never sent: nothing.
#[tokio::test]
async fn abandoned_requests_bill_their_input() {
    let a = accounts(100).await;
    let text = "the quick brown fox jumps over the lazy dog";
    let body = chat_body(text);
    let counted = gatehouse_pricing::count_chat_input(&serde_json::from_slice(&body).unwrap());
    assert!(counted > 5 && counted < body.len() as u64 / 2, "{counted}");
    let caller = key_with_budget(1.0);

    // Refused before sending (e.g. every deployment at its limit): released, no record.
    let plan = admit(&a, &caller, shape(&body, "never-sent"), &price())
        .await
        .unwrap();
    drop(plan);

    // The client went away while the upstream was working.
    let mut m = admit(&a, &caller, shape(&body, "client-gone"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    drop(m);

    // The upstream timed out, twice (a retry).
    let mut m = admit(&a, &caller, shape(&body, "timed-out"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    m.lost(504);
    m.sending("dep-2", price());
    m.lost(504);
    drop(m);

    // An upstream error answer (not billed) after a connect failure.
    let mut m = admit(&a, &caller, shape(&body, "errored"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    m.answered();
    drop(m);

    // A timed-out attempt, then an answer on retry: both inputs billed.
    let mut m = admit(&a, &caller, shape(&body, "retried"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    m.lost(504);
    m.sending("dep-2", price());
    let cost = m.finish_body(ANSWER);
    assert_eq!(
        cost,
        price()
            .input
            .cost(10 + counted)
            .saturating_add(price().output.cost(5))
    );

    let records = held_records(&a).await;
    let by_id = |id: &str| records.iter().find(|r| r.request_id == id);
    assert!(by_id("never-sent").is_none());
    assert!(by_id("errored").is_none());
    let gone = by_id("client-gone").unwrap();
    assert_eq!(gone.status, 499);
    assert_eq!(gone.prompt_tokens, counted as i64);
    assert_eq!(gone.completion_tokens, 0);
    assert_eq!(gone.spend, price().input.cost(counted).pico());
    assert_eq!(gone.deployment_id, "dep-1");
    let timed_out = by_id("timed-out").unwrap();
    assert_eq!(timed_out.status, 504);
    assert_eq!(timed_out.prompt_tokens, 2 * counted as i64);
    assert_eq!(timed_out.spend, price().input.cost(2 * counted).pico());
    let retried = by_id("retried").unwrap();
    assert_eq!(retried.status, 200);
    assert_eq!(retried.prompt_tokens, (10 + counted) as i64);
    assert_eq!(retried.completion_tokens, 5);
}

/// A stream cut before its usage chunk: output counted from what was seen, input counted
/// with the tokenizer from the request (it used to be bytes / 4).
#[tokio::test]
async fn cut_stream_counts_its_input_with_the_tokenizer() {
    let a = accounts(100).await;
    // Many short words: bytes / 4 is far from the token count.
    let text = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(20);
    let body = chat_body(&text);
    let counted = gatehouse_pricing::count_chat_input(&serde_json::from_slice(&body).unwrap());
    assert!(counted > body.len() as u64 / 4 + 100, "{counted}");
    let mut m = admit(&a, &Caller::Master, shape(&body, "cut"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    m.observe(b"data: {\"choices\":[{\"delta\":{\"content\":\"hello world\"}}]}\n\n");
    // The stream ends (upstream cut) without a usage chunk.
    m.finish_stream();
    let records = held_records(&a).await;
    let r = &records[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.prompt_tokens, counted as i64);
    assert_eq!(r.completion_tokens, 2);
}

/// A client that stops reading a stream: what it was sent is billed, and the record is
/// marked 499; a large body is counted on a blocking thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_stream_bills_what_was_seen() {
    let a = accounts(100).await;
    let body = chat_body(&"word ".repeat(10_000));
    assert!(body.len() > INLINE_COUNT_MAX);
    let counted = gatehouse_pricing::count_chat_input(&serde_json::from_slice(&body).unwrap());
    let mut m = admit(&a, &Caller::Master, shape(&body, "dropped"), &price())
        .await
        .unwrap()
        .meter
        .unwrap();
    m.sending("dep-1", price());
    m.observe(b"data: {\"choices\":[{\"delta\":{\"content\":\"hello world\"}}]}\n\n");
    drop(m);
    // Counted off the runtime's workers: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.spend.pending() == 0 {
        assert!(std::time::Instant::now() < deadline, "no record");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records = held_records(&a).await;
    let r = &records[0];
    assert_eq!(r.status, 499);
    assert_eq!(r.prompt_tokens, counted as i64);
    assert_eq!(r.completion_tokens, 2);
}
