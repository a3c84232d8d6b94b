//! Receipts of webhook requests and the jobs that process them (host scope).

use super::{Result, StoreError, Tx, now_ms};
use crate::tenancy::ids::new_id;

/// A webhook request as received.
#[derive(Debug, Clone)]
pub struct NewReceipt<'a> {
    /// The endpoint it was addressed to.
    pub endpoint_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// The public URL it was sent to.
    pub url: &'a str,
    /// Headers, JSON `[[name, value], …]`.
    pub headers: &'a str,
    /// SHA-256 (hex) of the body, when it was read.
    pub body_sha256: Option<&'a str>,
    /// The raw body, for accepted requests only.
    pub body: Option<&'a [u8]>,
    /// `accepted`, `responded`, `rejected`, `too-large` or `failed`.
    pub outcome: &'a str,
    /// The status the provider was answered with.
    pub status: u16,
    /// Why, for refusals.
    pub reason: Option<&'a str>,
    /// The trace its processing job continues (W3C `traceparent`), when tracing is on.
    pub trace: Option<&'a str>,
}

/// `(…), (…)` for `n` rows, each written by `row` from its `width` placeholders (`$1`, …).
fn values(n: usize, width: usize, row: impl Fn(&[String]) -> String) -> String {
    (0..n)
        .map(|r| {
            let p: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            row(&p)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQL for where a new job of the key `key` (an SQL expression) starts: right after the key's own
/// queued jobs, but never before the head of the queue (a key with nothing queued starts level
/// with the head); 1 for an empty queue.
fn vt_expr(backend: super::Backend, key: &str) -> String {
    let head = "COALESCE((SELECT MIN(h.vt) FROM jobs h WHERE h.state = 'queued' AND h.vt >= 0), 0)";
    let tail = format!(
        "COALESCE((SELECT MAX(t.vt) FROM jobs t WHERE t.fairness_key = {key} AND t.state = 'queued' \
         AND t.vt >= 0), 0) + 1"
    );
    match backend {
        super::Backend::Sqlite => format!("max({head}, {tail})"),
        super::Backend::Postgres => format!("GREATEST({head}, {tail})"),
    }
}

impl Tx {
    /// Record a receipt; returns its id.
    pub async fn insert_receipt(&mut self, r: &NewReceipt<'_>) -> Result<String> {
        let id = new_id("rcp");
        sqlx::query(
            "INSERT INTO receipts (id, endpoint_id, received_at, method, url, headers, body_sha256,
                body, outcome, status, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(r.endpoint_id)
        .bind(now_ms())
        .bind(r.method)
        .bind(r.url)
        .bind(r.headers)
        .bind(r.body_sha256)
        .bind(r.body.map(<[u8]>::to_vec))
        .bind(r.outcome)
        .bind(i64::from(r.status))
        .bind(r.reason)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
    }

    /// Record accepted receipts and queue a `job_kind` job for each, in a few multi-row
    /// statements (a group commit's worth of requests costs two statements per 32 receipts).
    pub async fn insert_accepted(
        &mut self,
        receipts: &[NewReceipt<'_>],
        job_kind: &str,
    ) -> Result<()> {
        const ROWS: usize = 32;
        let now = now_ms();
        for chunk in receipts.chunks(ROWS) {
            let ids: Vec<String> = chunk.iter().map(|_| new_id("rcp")).collect();
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO receipts (id, endpoint_id, received_at, method, url, headers,
                    body_sha256, body, outcome, status, reason) VALUES {}",
                values(chunk.len(), 11, |p| format!("({})", p.join(", ")))
            )));
            for (id, r) in ids.iter().zip(chunk) {
                insert = insert
                    .bind(id.clone())
                    .bind(r.endpoint_id.to_string())
                    .bind(now)
                    .bind(r.method.to_string())
                    .bind(r.url.to_string())
                    .bind(r.headers.to_string())
                    .bind(r.body_sha256.map(str::to_string))
                    .bind(r.body.map(<[u8]>::to_vec))
                    .bind(r.outcome.to_string())
                    .bind(i64::from(r.status))
                    .bind(r.reason.map(str::to_string));
            }
            insert
                .execute(&mut self.inner)
                .await
                .map_err(StoreError::from_write)?;
            // Each receipt's job is keyed by its endpoint (no tenant is known yet) and queued
            // behind that endpoint's earlier jobs.
            let mut vts: Vec<i64> = Vec::with_capacity(chunk.len());
            let mut tails: std::collections::HashMap<&str, i64> = Default::default();
            for r in chunk {
                let vt = match tails.get(r.endpoint_id) {
                    Some(v) => v + 1,
                    None => self.next_vt(r.endpoint_id).await?,
                };
                tails.insert(r.endpoint_id, vt);
                vts.push(vt);
            }
            let mut jobs = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO jobs (id, kind, receipt_id, payload, state, attempts, run_at,
                    created_at, updated_at, fairness_key, vt, trace) VALUES {}",
                values(chunk.len(), 7, |p| format!(
                    "({}, {}, {}, '{{}}', 'queued', 0, {t}, {t}, {t}, {}, {}, {})",
                    p[0],
                    p[1],
                    p[2],
                    p[4],
                    p[5],
                    p[6],
                    t = p[3]
                ))
            )));
            for ((id, r), vt) in ids.iter().zip(chunk).zip(&vts) {
                jobs = jobs
                    .bind(new_id("job"))
                    .bind(job_kind.to_string())
                    .bind(id.clone())
                    .bind(now)
                    .bind(r.endpoint_id.to_string())
                    .bind(*vt)
                    .bind(r.trace.map(str::to_string));
            }
            jobs.execute(&mut self.inner)
                .await
                .map_err(StoreError::from_write)?;
        }
        Ok(())
    }

    /// Queue a job to run now, in the fair share of `fairness_key` (the tenant it works for);
    /// returns its id.
    pub async fn enqueue(
        &mut self,
        kind: &str,
        receipt_id: Option<&str>,
        payload: &str,
        fairness_key: &str,
    ) -> Result<String> {
        let id = new_id("job");
        let now = now_ms();
        let vt = self.next_vt(fairness_key).await?;
        sqlx::query(
            "INSERT INTO jobs (id, kind, receipt_id, payload, state, attempts, run_at, created_at,
                updated_at, fairness_key, vt, trace)
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(kind)
        .bind(receipt_id)
        .bind(payload)
        .bind(now)
        .bind(fairness_key)
        .bind(vt)
        .bind(crate::telemetry::current_traceparent())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
    }

    /// Jobs queued or running (the backlog ingress bounds).
    pub async fn unfinished_jobs(&mut self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'queued')
                  + (SELECT COUNT(*) FROM jobs WHERE state = 'running')",
        )
        .fetch_one(&mut self.inner)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Unfinished and dead jobs by kind and state, with the earliest `run_at` of the queued
    /// ones due at `now` (for the metrics).
    pub async fn job_queue(&mut self, now: i64) -> Result<Vec<crate::metrics::QueueRow>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT kind, state, COUNT(*),
                    MIN(CASE WHEN state = 'queued' AND run_at <= $1 THEN run_at END)
             FROM jobs WHERE state IN ('queued', 'running', 'dead') GROUP BY kind, state",
        )
        .bind(now)
        .fetch_all(&mut self.inner)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(kind, state, count, oldest_due_ms)| crate::metrics::QueueRow {
                    kind,
                    state,
                    count,
                    oldest_due_ms,
                },
            )
            .collect())
    }

    /// Queue a job already claimed by the caller (running, first attempt, leased for
    /// `lease_ms`), to run it at once after this transaction commits: no claim, and should the
    /// caller die its lease runs out and any worker takes it up, as any claimed job.
    pub async fn enqueue_claimed(
        &mut self,
        kind: &str,
        payload: &str,
        fairness_key: &str,
        lease_ms: i64,
    ) -> Result<Job> {
        let id = new_id("job");
        let now = now_ms();
        let trace = crate::telemetry::current_traceparent();
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, run_at, lease_until,
                created_at, updated_at, fairness_key, trace)
             VALUES ($1, $2, $3, 'running', 1, $4, $5, $4, $4, $6, $7)",
        )
        .bind(&id)
        .bind(kind)
        .bind(payload)
        .bind(now)
        .bind(now + lease_ms)
        .bind(fairness_key)
        .bind(&trace)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(Job {
            id,
            kind: kind.to_string(),
            receipt_id: None,
            payload: payload.to_string(),
            attempts: 1,
            trace,
        })
    }

    /// The virtual start time of a new job of `key`: after the key's own queued jobs, and never
    /// before the head of the queue (start-time fair queueing; two index probes).
    async fn next_vt(&mut self, key: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {}",
            vt_expr(self.backend, "$1")
        )))
        .bind(key)
        .fetch_one(&mut self.inner)
        .await?)
    }

    /// `(outcome, status, body_sha256, has body, queued jobs)` of a receipt, for tests and tools.
    pub async fn receipt_summary(
        &mut self,
        id: &str,
    ) -> Result<Option<(String, i64, Option<String>, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT r.outcome, r.status, r.body_sha256,
                    CASE WHEN r.body IS NULL THEN 0 ELSE 1 END,
                    (SELECT COUNT(*) FROM jobs j WHERE j.receipt_id = r.id)
             FROM receipts r WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Receipt ids of an endpoint, oldest first.
    pub async fn receipt_ids(&mut self, endpoint_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM receipts WHERE endpoint_id = $1 ORDER BY id")
                .bind(endpoint_id)
                .fetch_all(&mut self.inner)
                .await?,
        )
    }
}

/// Most rows one retention statement touches, so the write gate is never held for long.
const EXPIRE_BATCH: i64 = 1000;

impl Tx {
    /// Record that receipt `id` routed an event to `(tenant, connection)`; a receipt that
    /// reaches a second tenant or connection gets `'*'` there (any of them reaches it).
    pub async fn note_receipt_route(
        &mut self,
        id: &str,
        tenant_id: &str,
        connection_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE receipts SET
                tenant_id = CASE WHEN tenant_id IS NULL OR tenant_id = $2 THEN $2 ELSE '*' END,
                connection_id = CASE WHEN connection_id IS NULL OR connection_id = $3 THEN $3 ELSE '*' END
             WHERE id = $1",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(connection_id)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Drop the body and headers of every receipt routed to `connection_id` of this
    /// transaction's tenant (and of receipts shared with other tenants or connections): a
    /// disconnect keeps no message content in receipts. Returns how many were dropped.
    pub async fn drop_connection_receipts(&mut self, connection_id: &str) -> Result<u64> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE receipts SET body = NULL, headers = '[]'
             WHERE (connection_id = $2 OR (connection_id = '*' AND tenant_id IN ($1, '*')))
               AND (body IS NOT NULL OR headers <> '[]')",
        )
        .bind(tenant_id)
        .bind(connection_id)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(done.rows_affected())
    }

    /// One retention batch for receipts received before `before_ms`: accepted ones whose jobs
    /// are all done lose body and headers (unprocessed or dead-lettered ones keep them for a
    /// replay); refused ones are deleted. Returns `(bodies dropped, refusals deleted)`; call
    /// again while either equals the batch size.
    pub async fn expire_receipts(&mut self, before_ms: i64) -> Result<(u64, u64)> {
        let bodies = sqlx::query(
            "UPDATE receipts SET body = NULL, headers = '[]'
             WHERE id IN (
                SELECT r.id FROM receipts r
                WHERE r.received_at < $1 AND r.outcome = 'accepted'
                  AND (r.body IS NOT NULL OR r.headers <> '[]')
                  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.receipt_id = r.id AND j.state <> 'done')
                LIMIT $2)",
        )
        .bind(before_ms)
        .bind(EXPIRE_BATCH)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        let refused = sqlx::query(
            "DELETE FROM receipts WHERE id IN (
                SELECT r.id FROM receipts r
                WHERE r.received_at < $1 AND r.outcome <> 'accepted'
                  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.receipt_id = r.id)
                LIMIT $2)",
        )
        .bind(before_ms)
        .bind(EXPIRE_BATCH)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok((bodies.rows_affected(), refused.rows_affected()))
    }
}

impl Tx {
    /// The receipt whose body (SHA-256 `digest`) on `endpoint_id` is applied: `receipt_id` when
    /// it is the first with that body within `window_ms`, else the earlier one (a provider's
    /// redelivery of a body already applied).
    pub async fn first_delivery(
        &mut self,
        endpoint_id: &str,
        digest: &[u8],
        receipt_id: &str,
        received_at: i64,
        window_ms: i64,
    ) -> Result<String> {
        // A row comes back when this delivery is recorded as the first (new, or past the
        // window); else the first one's id is read.
        let recorded: Option<String> = sqlx::query_scalar(
            "INSERT INTO receipt_digests (endpoint_id, digest, receipt_id, received_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (endpoint_id, digest) DO UPDATE
                SET receipt_id = excluded.receipt_id, received_at = excluded.received_at
              WHERE receipt_digests.received_at < excluded.received_at - $5
             RETURNING receipt_id",
        )
        .bind(endpoint_id)
        .bind(digest)
        .bind(receipt_id)
        .bind(received_at)
        .bind(window_ms)
        .fetch_optional(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        if let Some(first) = recorded {
            return Ok(first);
        }
        Ok(sqlx::query_scalar(
            "SELECT receipt_id FROM receipt_digests WHERE endpoint_id = $1 AND digest = $2",
        )
        .bind(endpoint_id)
        .bind(digest)
        .fetch_one(&mut self.inner)
        .await?)
    }

    /// Forget body digests older than `before_ms` (past every provider's retry window).
    pub async fn expire_digests(&mut self, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM receipt_digests WHERE (endpoint_id, digest) IN (
                SELECT endpoint_id, digest FROM receipt_digests WHERE received_at < $1 LIMIT $2)",
        )
        .bind(before_ms)
        .bind(EXPIRE_BATCH)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?
        .rows_affected())
    }
}

/// How long a provider may deliver the same webhook body again (Meta retries for up to 7
/// days); within it an identical body on the same endpoint is applied once.
pub const REDELIVERY_WINDOW_MS: i64 = 7 * 86_400_000;

/// The size of one [`Tx::expire_receipts`] batch.
pub const RECEIPT_EXPIRY_BATCH: u64 = EXPIRE_BATCH as u64;

/// A claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    /// `job_…`.
    pub id: String,
    /// What to do (`process-receipt`, …).
    pub kind: String,
    /// The receipt it works on.
    pub receipt_id: Option<String>,
    /// Kind-specific JSON.
    pub payload: String,
    /// Attempts so far, this one included: the claim token that completion checks.
    pub attempts: i64,
    /// The trace it continues (W3C `traceparent`), when tracing was on as it was queued.
    pub trace: Option<String>,
}

/// A stored webhook request, as a job reads it back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receipt {
    /// `rcp_…`.
    pub id: String,
    /// Endpoint.
    pub endpoint_id: String,
    /// HTTP method.
    pub method: String,
    /// Public URL.
    pub url: String,
    /// Headers JSON.
    pub headers: String,
    /// Raw body (accepted receipts).
    pub body: Option<Vec<u8>>,
    /// When it arrived (Unix ms).
    pub received_at: i64,
}

impl Tx {
    /// Claim the next due job — queued and due, or running with an expired lease (its worker
    /// died) — for `lease_ms`. Postgres skips rows other replicas hold; SQLite's writer lock
    /// makes the claim single-writer.
    ///
    /// Fair between keys (tenants; endpoints for receipts): the due job with the smallest
    /// virtual start time `vt` goes first, and a new job's `vt` is behind its own key's queue
    /// only (see [`Tx::enqueue`]), so one tenant's backlog of 20,000 jobs delays another
    /// tenant's next job by about one job per busy key. One index walk (`jobs_fair`).
    pub async fn claim_job(&mut self, lease_ms: i64) -> Result<Option<Job>> {
        let now = now_ms();
        let lock = if self.backend == super::Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        // Jobs put back for later get their place in the fair order once they are due: at the
        // tail of their key's queue. Usually none; an index range (queued, vt NULL, run_at).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET vt = {}
              WHERE state = 'queued' AND vt IS NULL AND run_at <= $1",
            vt_expr(self.backend, "jobs.fairness_key")
        )))
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        // Two index walks rather than one OR (which would scan the whole table, done jobs
        // included): the due queued job first in the fair order, else the first job whose
        // lease ran out. `run_at` is checked again so that a job put back for later by code
        // that kept its `vt` still waits.
        for pick in [
            "state = 'queued' AND vt >= 0 AND run_at <= $1 ORDER BY vt",
            "state = 'running' AND lease_until < $1 ORDER BY lease_until",
        ] {
            let job = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE jobs SET state = 'running', lease_until = $1 + $2, attempts = attempts + 1,
                        updated_at = $1
                 WHERE id = (SELECT id FROM jobs WHERE {pick} LIMIT 1{lock})
                 RETURNING id, kind, receipt_id, payload, attempts, trace"
            )))
            .bind(now)
            .bind(lease_ms)
            .fetch_optional(&mut self.inner)
            .await?;
            if job.is_some() {
                return Ok(job);
            }
        }
        Ok(None)
    }

    /// Mark a claimed job done; `false` when the claim was lost (lease expired, re-claimed), in
    /// which case the caller must roll back.
    pub async fn complete_job(&mut self, job: &Job) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = $3
             WHERE id = $1 AND state = 'running' AND attempts = $2",
        )
        .bind(&job.id)
        .bind(job.attempts)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Put a claimed job back for `run_at` without counting the attempt (it waited, it did not
    /// fail: a busy rate limit, a paused connection).
    pub async fn defer_job(&mut self, job: &Job, run_at: i64, why: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = $3, attempts = attempts - 1, vt = NULL,
                    lease_until = NULL, last_error = $4, updated_at = $5
             WHERE id = $1 AND state = 'running' AND attempts = $2",
        )
        .bind(&job.id)
        .bind(job.attempts)
        .bind(run_at)
        .bind(why)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Record a failed attempt: queued again at `retry_at`, or dead when `None`.
    pub async fn fail_job(&mut self, job: &Job, error: &str, retry_at: Option<i64>) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = CASE WHEN $3 < 0 THEN 'dead' ELSE 'queued' END,
                    run_at = CASE WHEN $3 < 0 THEN run_at ELSE $3 END, vt = NULL,
                    lease_until = NULL, last_error = $4, updated_at = $5
             WHERE id = $1 AND state = 'running' AND attempts = $2",
        )
        .bind(&job.id)
        .bind(job.attempts)
        .bind(retry_at.unwrap_or(-1))
        .bind(error.chars().take(1000).collect::<String>())
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Dead-lettered jobs: `(id, kind, attempts, last_error)`, oldest first.
    pub async fn dead_jobs(
        &mut self,
        limit: i64,
    ) -> Result<Vec<(String, String, i64, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT id, kind, attempts, last_error FROM jobs WHERE state = 'dead' ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Queue a dead job again, now, with a fresh attempt budget; `false` when it is not dead.
    pub async fn replay_job(&mut self, id: &str) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, updated_at = $2, vt = NULL
             WHERE id = $1 AND state = 'dead'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A receipt with its body.
    pub async fn receipt(&mut self, id: &str) -> Result<Option<Receipt>> {
        Ok(sqlx::query_as(
            "SELECT id, endpoint_id, method, url, headers, body, received_at FROM receipts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// `(tenant, connection)` of a live route.
    pub async fn route(
        &mut self,
        endpoint_id: &str,
        channel_address: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, connection_id FROM routes WHERE endpoint_id = $1 AND channel_address = $2",
        )
        .bind(endpoint_id)
        .bind(channel_address)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Every `(tenant, connection)` an endpoint routes to (host scope; account events).
    pub async fn routes_of_endpoint(&mut self, endpoint_id: &str) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, connection_id FROM routes WHERE endpoint_id = $1 ORDER BY created_at",
        )
        .bind(endpoint_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// `(state, last_error)` of every job of `kind`, oldest first, for tests and tools.
    pub async fn jobs_of_kind(&mut self, kind: &str) -> Result<Vec<(String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT state, last_error FROM jobs WHERE kind = $1 ORDER BY created_at, id",
        )
        .bind(kind)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Count of jobs per state, for tests and tools.
    pub async fn job_states(&mut self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&mut self.inner)
                .await?,
        )
    }
}
