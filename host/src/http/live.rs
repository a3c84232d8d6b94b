//! The desk in real time: a tenant's events as Server-Sent Events (new messages, delivery
//! states, ownership and state changes, the caller's notifications), resumable with
//! `Last-Event-ID`; and each person's notifications with their read state.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::json::ApiQuery;
use crate::error::ApiError;
use crate::store::{EVENTS_CHANNEL, Mode, NotificationRecord, Store};
use crate::supervise::{Ended, supervise};
use crate::tenancy::{Actor, TenantAccess};

/// Events a stream reads at once.
const BATCH: i64 = 100;
/// How long a quiet stream waits before it looks again anyway (a missed wake-up costs this).
const QUIET: Duration = Duration::from_secs(15);
/// How long one stream lasts; the client reconnects with `Last-Event-ID` (EventSource does),
/// and its access is checked again then.
const LIFETIME: Duration = Duration::from_secs(300);

/// `GET …/events` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Resume after this event number (as `Last-Event-ID` does; the header wins; a negative
    /// one → 400 `bad_request`).
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// The person a stream or a notification list is for (a key has none).
fn person(actor: &Actor) -> Option<String> {
    match actor {
        Actor::User { by, .. } => by.user_id().map(str::to_string),
        _ => None,
    }
}

/// A tenant's events as Server-Sent Events: `message`, `status`, `conversation` and (the
/// caller's own) `notification`, each with its number as `id` and JSON `data` of ids and
/// states. Resumes after `Last-Event-ID`; a stream that asks for events older than the host
/// keeps first gets `reset` (reload, then follow). Tenant members only.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/events",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), EventsQuery,
           ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "The last event received (an event number; else 400 `bad_request`)")),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`)", content_type = "text/event-stream", body = StreamEvent),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn events(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID must be an event number".into())
                })?,
        ),
        None => q.after,
    };
    if last.is_some_and(|n| n < 0) || q.after.is_some_and(|n| n < 0) {
        return Err(ApiError::BadRequest("after must be an event number".into()));
    }
    let access = tenant.access;
    let permit = state.streams.acquire(access.scope.id())?;
    let user = person(&access.actor);
    // Subscribed before the first read: nothing committed in between is missed.
    let wake = state.store.subscribe_events();
    // A new stream starts from now; a resumed one from where it was.
    let start = match last {
        Some(n) => n,
        None => newest_seq(&state.store, &access).await?.unwrap_or(0),
    };
    let stream = Follow {
        store: state.store.clone(),
        access,
        user,
        last: start,
        wake,
        pending: std::collections::VecDeque::new(),
        ends: tokio::time::Instant::now() + LIFETIME,
        _permit: permit,
    };
    Ok(
        Sse::new(futures_util::stream::unfold(stream, |mut s| async move {
            let event = s.next().await?;
            Some((Ok(event), s))
        }))
        .keep_alive(KeepAlive::new().interval(QUIET)),
    )
}

/// The newest event number of the tenant.
async fn newest_seq(store: &Store, access: &TenantAccess) -> Result<Option<i64>, ApiError> {
    let mut tx = access.begin(store, Mode::Read).await?;
    let (_, newest) = tx.event_bounds().await?;
    tx.commit().await?;
    Ok(newest)
}

/// One client's stream.
struct Follow {
    store: Store,
    access: TenantAccess,
    user: Option<String>,
    last: i64,
    wake: tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    pending: std::collections::VecDeque<Event>,
    /// When this stream ends (the client resumes on a new one).
    ends: tokio::time::Instant,
    /// Its place among the tenant's streams.
    _permit: super::PluginCallPermit,
}

impl Follow {
    /// The next event to send, waiting for one.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if tokio::time::Instant::now() >= self.ends {
                return None; // the client resumes on a new stream, its access checked again
            }
            match self.read().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "event stream: read failed"),
            }
            // Wait for this tenant's next commit (or look again after a while).
            let tenant = self.access.scope.id().to_string();
            let wait = QUIET.min(
                self.ends
                    .saturating_duration_since(tokio::time::Instant::now()),
            );
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match self.wake.recv().await {
                        Ok(t) if *t == *tenant => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep(QUIET).await;
                            return;
                        }
                    }
                }
            })
            .await;
        }
    }

    /// Read what is new into `pending`; whether anything was.
    async fn read(&mut self) -> Result<bool, crate::store::StoreError> {
        let mut tx = self.access.begin(&self.store, Mode::Read).await?;
        // Past what is kept (trimmed while away) or ahead of what exists (a number from
        // elsewhere): the client reloads, then follows from the newest.
        let (oldest, newest) = tx.event_bounds().await?;
        let newest = newest.unwrap_or(0);
        if oldest.is_some_and(|o| o > self.last.saturating_add(1)) || self.last > newest {
            self.pending
                .push_back(Event::default().id(newest.to_string()).event("reset").data(
                r#"{"reason":"the events after Last-Event-ID are not kept; reload, then follow"}"#,
            ));
            self.last = newest;
        }
        let rows = tx
            .events_after(self.last, self.user.as_deref(), BATCH)
            .await?;
        tx.commit().await?;
        for r in &rows {
            self.last = r.seq;
            self.pending.push_back(
                Event::default()
                    .id(r.seq.to_string())
                    .event(r.kind.clone())
                    .data(r.data.clone()),
            );
        }
        Ok(!self.pending.is_empty())
    }
}

/// On PostgreSQL, relay every replica's event commits to this process's streams (supervised).
pub fn spawn_relay(store: Store, shutdown: tokio::sync::watch::Receiver<bool>) {
    supervise("event relay", move || {
        let (store, mut stop) = (store.clone(), shutdown.clone());
        async move {
            let mut listen = match store.listen(EVENTS_CHANNEL).await {
                Ok(Some(l)) => l,
                Ok(None) => return Ended::Finished, // SQLite: one process, told on commit
                Err(e) => {
                    tracing::warn!(error = %e, "event relay: LISTEN failed");
                    return Ended::Unexpectedly;
                }
            };
            loop {
                tokio::select! {
                    got = listen.recv() => match got {
                        Ok(n) => store.relay_events(n.payload()),
                        Err(e) => {
                            tracing::warn!(error = %e, "event relay: LISTEN connection lost");
                            return Ended::Unexpectedly;
                        }
                    },
                    _ = stop.changed() => return Ended::Finished,
                }
            }
        }
    });
}

/// One event of the stream, as its `id:`, `event:` and `data:` lines carry it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StreamEvent {
    /// The event's number: resume after it with `Last-Event-ID`.
    id: Option<String>,
    /// `conversation`, `message`, `notification` or `reset`.
    event: Option<String>,
    /// JSON of ids and states.
    data: String,
}

/// `GET …/notifications` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    /// Items per page, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (at most 200 characters; one this API did not
    /// issue may answer 400 `bad_request`).
    #[param(max_length = 200)]
    pub cursor: Option<String>,
    /// Only unread ones.
    pub unread: Option<bool>,
}

/// A page of the caller's notifications.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Notifications {
    /// Newest first.
    pub data: Vec<NotificationRecord>,
    /// How many are unread in all.
    pub unread: i64,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The signed-in person's notifications in this tenant (hand-offs, new messages in
/// conversations people own or that are assigned, their replies that failed, numbers that
/// cannot send), newest first, with the unread count; each names its conversation or number.
/// A key has none.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/notifications",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), NotificationsQuery),
    responses(
        (status = 200, description = "OK", body = Notifications),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn notifications(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<NotificationsQuery>,
) -> Result<Json<Notifications>, ApiError> {
    let paging = super::json::PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit()?;
    let cursor = paging.cursor()?;
    let Some(user) = person(&tenant.access.actor) else {
        return Ok(Json(Notifications {
            data: Vec::new(),
            unread: 0,
            next_cursor: None,
        }));
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx
        .notifications(&user, q.unread.unwrap_or(false), cursor, limit + 1)
        .await?;
    let unread = tx.unread_notifications(&user).await?;
    tx.commit().await?;
    let page = super::json::page(rows, limit, |n| n.id.clone());
    Ok(Json(Notifications {
        data: page.data,
        unread,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize)]
pub(super) struct NotificationPath {
    #[allow(dead_code)]
    tenant: String,
    notification: String,
}

/// How many notifications were marked read.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Marked {
    /// The number marked.
    pub marked: u64,
}

/// Mark one of the caller's notifications read.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/notifications/{notification}/read",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("notification" = String, Path, description = "Notification id (`ntf_…`)")),
    responses(
        (status = 200, description = "Marked (0 when it was read already)", body = Marked),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<NotificationPath>,
) -> Result<Json<Marked>, ApiError> {
    let user = person(&tenant.access.actor).ok_or(ApiError::NotFound("notification"))?;
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    if !tx.has_notification(&user, &p.notification).await? {
        return Err(ApiError::NotFound("notification"));
    }
    let marked = tx.mark_read(&user, Some(&p.notification)).await?;
    tx.commit().await?;
    Ok(Json(Marked { marked }))
}

/// Mark all of the caller's notifications in this tenant read.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/notifications/read",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "Marked", body = Marked),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn mark_all_read(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<(StatusCode, Json<Marked>), ApiError> {
    let Some(user) = person(&tenant.access.actor) else {
        return Ok((StatusCode::OK, Json(Marked { marked: 0 })));
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let marked = tx.mark_read(&user, None).await?;
    tx.commit().await?;
    Ok((StatusCode::OK, Json(Marked { marked })))
}
