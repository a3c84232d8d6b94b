//! A tenant's data rights (reference page 000, "Delete your account & data"): the owner's JSON
//! export, the deletion of the account, and the erasure of one contact's data. Each is a row of
//! the consent ledger.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Client, Tenant};
use super::json::ApiJson;
use crate::consent::{self, Action, Entry};
use crate::error::ApiError;
use crate::store::{Erased, Mode, Store, StoreError, Tx};
use crate::tenancy::TenantScope;

/// Rows read per page while the export streams.
const PAGE: i64 = 500;

/// The export's parts, in the order they are written.
const PARTS: [&str; 5] = [
    "contacts",
    "conversations",
    "messages",
    "media",
    "consent_ledger",
];

/// One page of a part after `after`, as JSON values, and the cursor of its last row.
async fn page(
    tx: &mut Tx,
    part: &str,
    after: &str,
) -> Result<(Vec<serde_json::Value>, Option<String>), StoreError> {
    fn values<T: Serialize>(
        rows: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<serde_json::Value>, Option<String>) {
        let last = rows.last().map(&key);
        let values = rows
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        (values, last)
    }
    Ok(match part {
        "contacts" => values(tx.export_contacts(after, PAGE).await?, |r| r.id.clone()),
        "conversations" => values(tx.export_conversations(after, PAGE).await?, |r| {
            r.id.clone()
        }),
        "messages" => values(tx.export_messages(after, PAGE).await?, |r| r.id.clone()),
        "media" => values(tx.export_media(after, PAGE).await?, |r| r.id.clone()),
        _ => {
            let seq = after.parse::<i64>().unwrap_or(0);
            values(tx.ledger(seq, PAGE).await?, |r| r.seq.to_string())
        }
    })
}

/// Write the export into `out`, part by part, page by page (each page its own read).
async fn write_export(
    store: Store,
    scope: TenantScope,
    head: serde_json::Value,
    out: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), StoreError> {
    let send = async |bytes: String| out.send(Bytes::from(bytes)).await.is_ok();
    // The head object without its closing brace; the parts follow as its fields.
    let head = head.to_string();
    if !send(head[..head.len() - 1].to_string()).await {
        return Ok(());
    }
    for part in PARTS {
        if !send(format!(",\"{part}\":[")).await {
            return Ok(());
        }
        let mut after = String::new();
        let mut first = true;
        loop {
            let mut tx = store
                .begin(crate::tenancy::Scope::Tenant(scope.clone()), Mode::Read)
                .await?;
            let (rows, last) = page(&mut tx, part, &after).await?;
            tx.commit().await?;
            let n = rows.len();
            let mut chunk = String::new();
            for row in rows {
                if !first {
                    chunk.push(',');
                }
                first = false;
                chunk.push_str(&row.to_string());
            }
            if !chunk.is_empty() && !send(chunk).await {
                return Ok(());
            }
            match last {
                Some(l) if n as i64 == PAGE => after = l,
                _ => break,
            }
        }
        if !send("]".into()).await {
            return Ok(());
        }
    }
    let (rows, broken) = consent::verify(&store, &scope).await?;
    send(format!(
        ",\"ledger_verified\":{},\"ledger_rows\":{rows},\"complete\":true}}",
        broken.is_none()
    ))
    .await;
    Ok(())
}

/// Download the tenant's data as one JSON document (owner): the tenant, its contacts,
/// conversations, messages, media references and consent ledger, whether the ledger's chain
/// verifies, and `"complete": true` as its last field (a download cut short lacks it). Streamed
/// page by page; recorded in the ledger as `data-exported`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/export",
    tag = "account",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "The archive (`application/json`, an attachment)", content_type = "application/json"),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn export(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
) -> Result<Response, ApiError> {
    let access = &tenant.access;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    consent::append(
        &mut tx,
        &client.origin(access.actor.ledger_name()),
        &Entry {
            connection_id: None,
            action: Action::Exported,
            document_version: None,
            scopes: &[],
        },
    )
    .await?;
    tx.commit().await?;
    let now = crate::store::now_ms();
    let head = serde_json::json!({
        "format": "switchyard-export-1",
        "exported_at": now,
        "tenant": access.tenant,
    });
    let (out, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (store, scope) = (state.store.clone(), access.scope.clone());
    tokio::spawn(async move {
        if let Err(e) = write_export(store, scope, head, out).await {
            // The document stays without `"complete": true`: the client sees it was cut short.
            tracing::error!(error = %e, "export stopped");
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        chunks.poll_recv(cx).map(|c| c.map(Ok::<Bytes, Infallible>))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let disposition = format!(
        "attachment; filename=\"switchyard-{}-{}.json\"",
        access.scope.id(),
        now / 1000
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /api/v1/tenants/{tenant}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    /// The tenant's name exactly as it is, to confirm.
    #[schema(max_length = 200)]
    pub confirm: String,
}

/// What a deletion or an erasure did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    /// What was erased (counts).
    pub erased: Erased,
    /// Whether the ledger's hash chain verifies afterwards.
    pub ledger_verified: bool,
}

/// Delete the account and its data (owner, confirming with the tenant's name): every number is
/// disconnected at the provider where it allows and shredded, contacts, conversations,
/// messages, media and webhook receipts are erased, keys and memberships end. The consent
/// ledger and the daily counters stay, with the tenant's row as the minimal record.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}",
    tag = "account",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = DeleteAccount,
    responses(
        (status = 200, description = "Deleted", body = ErasureView),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        (status = 422, description = "the body is well-formed but cannot be used: `confirmation_mismatch` (`confirm` is not the tenant's name exactly as stored)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    ApiJson(body): ApiJson<DeleteAccount>,
) -> Result<Json<ErasureView>, ApiError> {
    let access = &tenant.access;
    if body.confirm != access.tenant.name {
        return Err(ApiError::unprocessable(
            "confirmation_mismatch",
            "confirm with the tenant's name, exactly as it is",
        ));
    }
    // At the providers first, outside the write (best effort, as a disconnect does).
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let live = tx.connections_to_end().await?;
    let policy = tx.policy().await?;
    tx.commit().await?;
    for (c, _) in &live {
        if let Err(e) = super::connections::unsubscribe_at_provider(&state, access, c).await {
            tracing::warn!(connection = %c, error = %e, "provider not told while deleting the account");
        }
    }
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let erased = crate::lifecycle::erase::erase_account(
        &mut tx,
        &state.vault,
        &client.origin(access.actor.ledger_name()),
    )
    .await?;
    tx.commit().await?;
    for (_, endpoint) in &live {
        state.endpoints.evict(endpoint);
    }
    // Its version pin goes with it (a pin would block its publisher's deletes for nothing).
    if let Some(p) = policy
        && let Err(e) = state
            .plugins
            .pin(
                crate::catalog::PinKind::Tenant,
                access.scope.id(),
                &p.plugin,
                None,
            )
            .await
    {
        tracing::warn!(error = %e, "the deleted tenant's policy pin stayed");
    }
    // Push the erased pages out of SQLite's WAL too.
    state.store.checkpoint().await;
    let (_, broken) = consent::verify(&state.store, &access.scope).await?;
    tracing::warn!(tenant = %access.scope.id(), by = %access.actor.ledger_name(), ?erased, "account deleted");
    Ok(Json(ErasureView {
        erased,
        ledger_verified: broken.is_none(),
    }))
}

/// Path of a contact.
#[derive(Deserialize)]
pub struct ContactPath {
    #[allow(dead_code)]
    tenant: String,
    contact: String,
}

/// Erase one contact's data at their request (owner/admin): their messages, media and
/// conversations, and the contact; recorded in the ledger as `contact-erased`.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/contacts/{contact}",
    tag = "account",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`)"),
        ("contact" = String, Path, description = "Contact id (`cnt_…`)"),
    ),
    responses(
        (status = 200, description = "Erased", body = ErasureView),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn erase_contact(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    Path(p): Path<ContactPath>,
) -> Result<Json<ErasureView>, ApiError> {
    let access = &tenant.access;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let erased = crate::lifecycle::erase::erase_contact(
        &mut tx,
        &p.contact,
        &client.origin(access.actor.ledger_name()),
    )
    .await
    .map_err(|e| match e {
        crate::lifecycle::EndError::Store(StoreError::NotFound) => ApiError::NotFound("contact"),
        other => other.into(),
    })?;
    tx.commit().await?;
    state.store.checkpoint().await;
    let (_, broken) = consent::verify(&state.store, &access.scope).await?;
    tracing::info!(tenant = %access.scope.id(), contact = %p.contact, by = %access.actor.ledger_name(), "contact erased");
    Ok(Json(ErasureView {
        erased,
        ledger_verified: broken.is_none(),
    }))
}
