//! [`SpendWriter`]: batches spend records off the request path and never loses them while the
//! process lives.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::records::{SpendRecord, StoreError};
use crate::store::Store;

/// Where a [`SpendWriter`] sends its batches. Implemented by [`Store`]; tests can wrap a
/// store to make inserts fail.
pub trait SpendSink: Send + Sync + 'static {
    /// Inserts a batch at most once (by its id) and returns the number of new rows.
    fn insert_spend<'a>(
        &'a self,
        batch: &'a SpendBatch,
    ) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + 'a>>;
}

impl SpendSink for Store {
    fn insert_spend<'a>(
        &'a self,
        batch: &'a SpendBatch,
    ) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send + 'a>> {
        Box::pin(Store::insert_spend(self, &batch.id, &batch.records))
    }
}

/// Spend records written together, at most once: [`Store::insert_spend`] skips a batch
/// whose id it has written before, so a batch may be retried (with its id) after any failure.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpendBatch {
    /// A fresh [`new_batch_id`](crate::new_batch_id) per batch.
    pub id: String,
    /// The records.
    pub records: Vec<SpendRecord>,
}

impl SpendBatch {
    /// A batch of `records` with a fresh id.
    pub fn new(records: Vec<SpendRecord>) -> SpendBatch {
        SpendBatch {
            id: crate::store::new_batch_id(),
            records,
        }
    }
}

/// Tuning of a [`SpendWriter`].
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most records held (pending + in flight) before [`SpendWriter::record`] refuses and
    /// [`SpendWriter::is_full`] says so. A soft cap for [`SpendTicket::record`].
    /// Default 100 000.
    pub capacity: usize,
    /// Flush when this many records are pending; also the size of each insert. Default 2000:
    /// a spend row costs SQLite about half the CPU in batches of 2000 that it costs in
    /// batches of 500 (commits, WAL frames and page splits are shared by the batch).
    pub batch_size: usize,
    /// Flush at least this often when anything is pending. Default 200 ms (so spend shows in
    /// `/key/info` well within a second).
    pub flush_interval: Duration,
    /// First retry delay after a failed insert; doubles up to `max_backoff`. Default 100 ms.
    pub initial_backoff: Duration,
    /// Longest retry delay. Default 5 s.
    pub max_backoff: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            capacity: 100_000,
            batch_size: 2000,
            flush_interval: Duration::from_millis(200),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why [`SpendWriter::record`] refused a record; the record is handed back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The buffer holds `capacity` records (the database is probably down): the caller should
    /// refuse new requests (503) rather than serve them unrecorded.
    #[error("spend buffer full")]
    Full(Box<SpendRecord>),
    /// The writer has been shut down.
    #[error("spend writer shut down")]
    Closed(Box<SpendRecord>),
}

/// Records still unwritten when [`SpendWriter::shutdown`] gave up, as batches. The batch
/// that was being inserted may in fact have been committed (the insert was cut off
/// mid-flight); inserting each batch again later, with its own id, is safe because a batch
/// is written at most once.
#[derive(Debug, thiserror::Error)]
#[error("{} spend records not flushed before the shutdown timeout", self.len())]
pub struct Unflushed {
    /// The batches, in order.
    pub batches: Vec<SpendBatch>,
}

impl Unflushed {
    /// Records in all batches.
    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }

    /// `true` when no record is held (never, for an `Unflushed` returned by shutdown).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Default)]
struct Buffer {
    queue: VecDeque<SpendRecord>,
    /// The batch currently being inserted (kept here so shutdown can hand it back).
    in_flight: Option<Arc<SpendBatch>>,
}

impl Buffer {
    fn held(&self) -> usize {
        self.queue.len() + self.in_flight.as_ref().map_or(0, |b| b.records.len())
    }
}

#[derive(Debug)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// `buffer.held()`, updated under the lock, so [`SpendWriter::is_full`] takes no lock.
    held: AtomicUsize,
    wake: Notify,
    closed: AtomicBool,
    failing: AtomicBool,
    capacity: usize,
    batch_size: usize,
    /// Live [`SpendTicket`]s: admitted requests whose record is still to come.
    outstanding: AtomicUsize,
    /// Notified when `outstanding` drops to zero.
    settled: Notify,
}

impl Shared {
    fn push(&self, record: SpendRecord, capped: bool) -> Result<(), RecordError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RecordError::Closed(Box::new(record)));
        }
        let pending = {
            let mut buf = self.lock();
            if capped && buf.held() >= self.capacity {
                return Err(RecordError::Full(Box::new(record)));
            }
            buf.queue.push_back(record);
            self.publish(&buf);
            buf.queue.len()
        };
        if pending >= self.batch_size {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes the count of `buf` (call with the lock held, after changing it).
    fn publish(&self, buf: &Buffer) {
        self.held.store(buf.held(), Ordering::Release);
    }
}

enum Command {
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// Background batch writer for spend records.
///
/// [`record`](SpendWriter::record) only appends to an in-memory buffer (a short mutex, never
/// the database). A spawned task inserts the buffer in batches of `batch_size` every
/// `flush_interval`, or as soon as `batch_size` records are pending. When an insert fails the
/// batch is kept and retried with exponential backoff (`initial_backoff` doubling to
/// `max_backoff`); a warning is logged once when an outage starts and an info line when it
/// ends. Nothing is dropped while the process lives: when the buffer is full, `record`
/// refuses and the gateway answers 503 to new requests (it checks [`SpendWriter::is_full`]
/// at admission), while the records of requests already admitted are always taken
/// ([`SpendWriter::ticket`], [`SpendTicket::record`]). Retries are safe because a batch
/// keeps its id across retries and [`Store::insert_spend`] writes a batch id at most once.
///
/// Must be created inside a tokio runtime.
#[derive(Debug)]
pub struct SpendWriter {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SpendWriter {
    /// Spawns the writer task, sending batches to `sink` (usually a [`Store`]).
    pub fn spawn(sink: Arc<dyn SpendSink>, config: WriterConfig) -> SpendWriter {
        let batch_size = config.batch_size.max(1);
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            held: AtomicUsize::new(0),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            capacity: config.capacity.max(1),
            batch_size,
            outstanding: AtomicUsize::new(0),
            settled: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(Arc::clone(&shared), sink, config, rx));
        SpendWriter {
            shared,
            commands: tx,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a record. Never waits: fails with [`RecordError::Full`] when `capacity`
    /// records are held, or [`RecordError::Closed`] after shutdown.
    pub fn record(&self, record: SpendRecord) -> Result<(), RecordError> {
        self.shared.push(record, true)
    }

    /// A promise of one record, taken when a request is admitted and kept until its record
    /// is queued ([`SpendTicket::record`]) or it turns out to have none (drop). A
    /// [`shutdown`](SpendWriter::shutdown) first waits for every ticket, so the records of
    /// requests still settling (a stream being cut, a count on a blocking thread) are
    /// written too.
    pub fn ticket(&self) -> SpendTicket {
        self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
        SpendTicket {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Records held (queued or being inserted).
    pub fn pending(&self) -> usize {
        self.shared.held.load(Ordering::Acquire)
    }

    /// `true` when [`record`](SpendWriter::record) would refuse for lack of room (no lock:
    /// one atomic read).
    pub fn is_full(&self) -> bool {
        self.pending() >= self.shared.capacity
    }

    /// `true` while the last insert failed (the database is unreachable or erroring).
    pub fn is_failing(&self) -> bool {
        self.shared.failing.load(Ordering::Acquire)
    }

    /// Waits until everything recorded before this call has been written. During an outage
    /// this waits for the database to come back: wrap it in a timeout if needed. Returns at
    /// once if the writer is shut down.
    pub async fn flush_now(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops accepting records, flushes what is held, and stops the task. If that takes
    /// longer than `timeout` (database down), the task is stopped and the records not
    /// written are returned in [`Unflushed`] so the caller can log or save them.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), Unflushed> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Requests still settling bring their records first.
        loop {
            let settled = self.shared.settled.notified();
            let n = self.shared.outstanding.load(Ordering::Acquire);
            if n == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                tracing::warn!(
                    outstanding = n,
                    "shutdown: requests still settling at the deadline; their spend is not recorded"
                );
                break;
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(mut task) = task else {
            return Ok(());
        };
        let _ = self.commands.send(Command::Shutdown);
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        let mut buf = self.shared.lock();
        let mut batches: Vec<SpendBatch> = buf
            .in_flight
            .take()
            .map(|b| b.as_ref().clone())
            .into_iter()
            .collect();
        let queued: Vec<SpendRecord> = buf.queue.drain(..).collect();
        self.shared.publish(&buf);
        drop(buf);
        if !queued.is_empty() {
            batches.push(SpendBatch::new(queued));
        }
        let unflushed = Unflushed { batches };
        if unflushed.is_empty() {
            Ok(())
        } else {
            tracing::error!(
                count = unflushed.len(),
                "spend records not flushed at shutdown"
            );
            Err(unflushed)
        }
    }
}

/// See [`SpendWriter::ticket`].
#[derive(Debug)]
pub struct SpendTicket {
    shared: Arc<Shared>,
}

impl SpendTicket {
    /// Queues the record of a request that was admitted while [`SpendWriter::is_full`] was
    /// false. Never refused for lack of room (only [`RecordError::Closed`] after shutdown):
    /// requests admitted just before the buffer filled may take it past `capacity`, by at
    /// most the number of requests in flight, so an admitted request's record is never
    /// dropped. The gateway checks `is_full` at admission and uses this at settlement.
    pub fn record(self, record: SpendRecord) -> Result<(), RecordError> {
        self.shared.push(record, false)
    }
}

impl Drop for SpendTicket {
    fn drop(&mut self) {
        if self.shared.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.settled.notify_waiters();
        }
    }
}

impl Drop for SpendWriter {
    fn drop(&mut self) {
        // Without a shutdown, let the task drain what it holds and exit on its own.
        let _ = self.commands.send(Command::Shutdown);
    }
}

async fn run(
    shared: Arc<Shared>,
    sink: Arc<dyn SpendSink>,
    config: WriterConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut tick = tokio::time::interval(config.flush_interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Flush(done)) => {
                    flush_all(&shared, sink.as_ref(), &config).await;
                    let _ = done.send(());
                }
                Some(Command::Shutdown) | None => {
                    flush_all(&shared, sink.as_ref(), &config).await;
                    // Answer flush requests that raced with the shutdown.
                    while let Ok(cmd) = commands.try_recv() {
                        if let Command::Flush(done) = cmd {
                            let _ = done.send(());
                        }
                    }
                    return;
                }
            },
            _ = shared.wake.notified() => flush_all(&shared, sink.as_ref(), &config).await,
            _ = tick.tick() => flush_all(&shared, sink.as_ref(), &config).await,
        }
    }
}

/// Writes batches until the queue is empty, retrying each failed batch until it succeeds.
async fn flush_all(shared: &Shared, sink: &dyn SpendSink, config: &WriterConfig) {
    let mut backoff = config.initial_backoff;
    let mut retries: u64 = 0;
    loop {
        let batch = {
            let mut buf = shared.lock();
            match &buf.in_flight {
                Some(b) => Arc::clone(b),
                None => {
                    if buf.queue.is_empty() {
                        return;
                    }
                    let n = buf.queue.len().min(shared.batch_size);
                    let b = Arc::new(SpendBatch::new(buf.queue.drain(..n).collect()));
                    buf.in_flight = Some(Arc::clone(&b));
                    b
                }
            }
        };
        match sink.insert_spend(&batch).await {
            Ok(_) => {
                {
                    let mut buf = shared.lock();
                    buf.in_flight = None;
                    shared.publish(&buf);
                }
                if shared.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        retries,
                        pending = shared.lock().held(),
                        "spend store reachable again; flushing buffered spend records"
                    );
                }
                backoff = config.initial_backoff;
            }
            Err(e) => {
                if !shared.failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        error = %e,
                        pending = shared.lock().held(),
                        "cannot write spend records; keeping them and retrying"
                    );
                }
                retries += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}
