//! The physical floor of a durable webhook ack, for the ingress benchmark: a bare axum handler
//! that checks Meta's `X-Hub-Signature-256` (HMAC-SHA256 of the body), stores the body and a
//! job row in SQLite (WAL, `synchronous=NORMAL`: survives `kill -9`) with commits grouped across
//! the requests waiting at that moment, and answers 200 only after its own commit — what
//! `switchyard serve` must do per webhook, and nothing else.
//!
//! Usage: `bare_axum_durable 127.0.0.1:PORT <sqlite file> <app secret>`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

/// Most requests one commit carries (as `switchyard serve`'s receipt writer).
const GROUP_MAX: usize = 256;

type Pending = (Vec<u8>, oneshot::Sender<bool>);

struct App {
    secret: Vec<u8>,
    writer: mpsc::Sender<Pending>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8091".into());
    let file = args.next().unwrap_or_else(|| "bare_durable.db".into());
    let secret = args.next().unwrap_or_else(|| "bench-secret".into());
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS receipts (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL,
             body BLOB NOT NULL, received_at INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, receipt_id INTEGER NOT NULL,
             state TEXT NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let (tx, rx) = mpsc::channel::<Pending>(4096);
    tokio::spawn(write_groups(pool, rx));
    let app = Router::new()
        .route("/hooks/{endpoint}", post(hook))
        .with_state(Arc::new(App {
            secret: secret.into_bytes(),
            writer: tx,
        }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Verify, hand to the writer, answer after the commit.
async fn hook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(tag) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&app.secret) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    mac.update(&body);
    if mac.verify_slice(&tag).is_err() {
        return StatusCode::FORBIDDEN;
    }
    let (done, committed) = oneshot::channel();
    if app.writer.send((body.to_vec(), done)).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match committed.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Take every request waiting when the previous commit ends (at most [`GROUP_MAX`]), insert
/// them in one transaction, commit, then answer each.
async fn write_groups(pool: sqlx::SqlitePool, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let ok = write(&pool, &group).await.is_ok();
        for (_, done) in group {
            let _ = done.send(ok);
        }
    }
}

async fn write(pool: &sqlx::SqlitePool, group: &[Pending]) -> Result<(), sqlx::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut tx = pool.begin().await?;
    for (body, _) in group {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO receipts (sha256, body, received_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(sha)
        .bind(body.as_slice())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO jobs (receipt_id, state) VALUES ($1, 'queued')")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
