//! Group commit for events that must be on disk before the request that causes them is
//! answered (`token_issued`: no record, no token).
//!
//! Written one by one, each such event was a SQLite transaction of its own, and SQLite
//! commits one transaction at a time: `cargo bench --bench api` measured the token route at
//! under 5,000 requests a second, two thirds of its time in that commit. Here every request
//! hands its event to one writer task and waits for its acknowledgement; the writer takes
//! everything queued meanwhile and writes it in ONE transaction, then acknowledges each
//! waiter after the commit. Nothing is fire-and-forget: a request is answered only once its
//! event is as durable as any other write, and when the commit fails every waiter gets the
//! error (and answers 503, nothing was written). Under load thousands of commits a second
//! become tens; alone, a request waits for its own commit only, as before (the writer does
//! not linger hoping for company).

use sqlx::AnyConnection;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::event::insert_event;
use super::{NewEvent, Store, StoreError, ts};

/// Events written in one statement (one transaction) at most: enough that a queue of this
/// many drains in one commit, few enough that the write lock is not held long (a few
/// milliseconds).
const MAX_BATCH: usize = 512;

/// Events waiting for the writer at most; past it, callers wait to queue (backpressure,
/// instead of memory growing without bound while the database is slow).
const QUEUE: usize = 4096;

struct Queued {
    event: NewEvent,
    at: OffsetDateTime,
    written: oneshot::Sender<Result<(), StoreError>>,
}

/// Hands events to the writer task; cheap to share (one per application).
#[derive(Debug, Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<Queued>,
}

impl EventWriter {
    /// Starts the writer on the current Tokio runtime. It stops when every `EventWriter`
    /// clone is dropped, after writing what was queued.
    pub fn start(store: &Store) -> EventWriter {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store.clone(), incoming));
        EventWriter { queue }
    }

    /// Writes `event`, dated `at`, and returns once it is committed. The error is the
    /// store's: `Unavailable` when the database is busy or gone (the event was not written).
    pub async fn record(&self, event: NewEvent, at: OffsetDateTime) -> Result<(), StoreError> {
        let (written, acknowledged) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the event writer has stopped".to_owned());
        self.queue
            .send(Queued { event, at, written })
            .await
            .map_err(|_| stopped())?;
        acknowledged.await.map_err(|_| stopped())?
    }
}

async fn write_batches(store: Store, mut incoming: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The writer's own connection, outside the pool: SQLite keeps a page cache per
    // connection, valid only while no other connection wrote, so the pool's connections in
    // turn would each read the event tables' pages again from the file; this one finds
    // them in its cache (the pool keeps its connections for everyone else). Opened on first
    // use, and again after any failure.
    let mut connection: Option<AnyConnection> = None;
    let mut checkpoints = Checkpoints::default();
    while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let written = write_all(&store, &mut connection, &batch).await;
        // Before anyone hears back: recent activity on the console is now stale.
        store.console_changed();
        if store.dialect == super::Dialect::Sqlite {
            checkpoints.after_commit(&store);
        }
        match written {
            Ok(()) => {
                for queued in batch.drain(..) {
                    // A waiter that went away (its client hung up) needs no answer.
                    let _ = queued.written.send(Ok(()));
                }
            }
            Err(StoreError::Unavailable(why)) => {
                for queued in batch.drain(..) {
                    let _ = queued
                        .written
                        .send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            Err(StoreError::Other(e)) => {
                // Not the database being busy but something about the rows: write each on
                // its own, so that one bad event fails only its own request.
                tracing::warn!(error = ?e, events = batch.len(), "an event batch failed; writing its events one by one");
                for queued in batch.drain(..) {
                    let result = insert_event(&store.pool, &queued.event, queued.at).await;
                    store.console_changed();
                    let _ = queued.written.send(result);
                }
            }
        }
    }
}

/// Moves WAL checkpoints off the writer's commits. SQLite checkpoints in the connection
/// whose commit takes the WAL past 1,000 pages, and a checkpoint syncs the database file:
/// every request waiting on that commit waited for the disk too (the token route's p99 was
/// the checkpoint's time). The writer's connection has automatic checkpoints off; instead,
/// every [`CHECKPOINT_EVERY`] batches, a pool connection runs a passive checkpoint beside it
/// (one at a time), which blocks no writer. The other connections keep SQLite's automatic
/// checkpoints.
#[derive(Default)]
struct Checkpoints {
    batches: u32,
    running: Option<tokio::task::JoinHandle<()>>,
}

/// Batches between checkpoints: each commits a few pages, so the WAL stays near SQLite's
/// own threshold of 1,000.
const CHECKPOINT_EVERY: u32 = 250;

impl Checkpoints {
    fn after_commit(&mut self, store: &Store) {
        self.batches += 1;
        if self.batches < CHECKPOINT_EVERY
            || self.running.as_ref().is_some_and(|r| !r.is_finished())
        {
            return;
        }
        self.batches = 0;
        let pool = store.pool.clone();
        self.running = Some(tokio::spawn(async move {
            if let Err(e) = sqlx::query("pragma wal_checkpoint(passive)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the next one retries");
            }
        }));
    }
}

/// Every event of `batch` in one statement, so in one transaction (SQLite runs a statement
/// outside `begin` as its own): the batch goes as one JSON array bound to one parameter and
/// comes apart in `json_each`. One prepared statement for any batch size, one round trip to
/// SQLite's connection thread per batch; a `begin`, an `insert` per row or per chunk, and a
/// `commit` were each a round trip of their own. PostgreSQL takes the same array apart in
/// `jsonb_array_elements`, on a connection of the pool (its server keeps the cache).
async fn write_all(
    store: &Store,
    connection: &mut Option<AnyConnection>,
    batch: &[Queued],
) -> Result<(), StoreError> {
    let rows: Vec<serde_json::Value> = batch
        .iter()
        .map(|queued| {
            serde_json::json!([
                Uuid::now_v7().to_string(),
                queued.event.tenant_id.map(|t| t.to_string()),
                queued.event.kind.as_str(),
                queued.event.detail,
                queued.event.request_id,
                ts(queued.at),
            ])
        })
        .collect();
    let rows = serde_json::Value::Array(rows).to_string();
    let insert = format!(
        "insert into tenant_event (id, tenant_id, kind, detail, request_id, created_at) \
         select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
         from {} order by key",
        store.dialect.pick(
            "json_each($1)",
            "jsonb_array_elements($1::jsonb) with ordinality as row (value, key)"
        )
    );
    if store.dialect == super::Dialect::Postgres {
        sqlx::query(&insert).bind(rows).execute(&store.pool).await?;
        return Ok(());
    }
    let open = match connection {
        Some(open) => open,
        None => {
            // Taken out of the pool for good (the pool opens another in its place), with
            // the pool's settings applied.
            let mut open = store.pool.acquire().await?.detach();
            // See `Checkpoints`.
            sqlx::query("pragma wal_autocheckpoint = 0")
                .execute(&mut open)
                .await?;
            connection.insert(open)
        }
    };
    let written = sqlx::query(&insert).bind(rows).execute(&mut *open).await;
    if written.is_err() {
        *connection = None;
    }
    written?;
    Ok(())
}
