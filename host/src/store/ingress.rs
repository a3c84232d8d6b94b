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
        .execute(&mut *self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
    }

    /// Queue a job to run now; returns its id.
    pub async fn enqueue(
        &mut self,
        kind: &str,
        receipt_id: Option<&str>,
        payload: &str,
    ) -> Result<String> {
        let id = new_id("job");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (id, kind, receipt_id, payload, state, attempts, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5, $5)",
        )
        .bind(&id)
        .bind(kind)
        .bind(receipt_id)
        .bind(payload)
        .bind(now)
        .execute(&mut *self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(id)
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
        .fetch_optional(&mut *self.inner)
        .await?)
    }

    /// Receipt ids of an endpoint, oldest first.
    pub async fn receipt_ids(&mut self, endpoint_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM receipts WHERE endpoint_id = $1 ORDER BY id")
                .bind(endpoint_id)
                .fetch_all(&mut *self.inner)
                .await?,
        )
    }
}
