//! Inbound media: each media reference of a stored inbound message is downloaded by a
//! `fetch-media` job of its own, through the connection's connector (for Meta a fresh URL from
//! `GET /{media-id}` on every attempt, since URLs live five minutes), checked against the
//! provider's SHA-256 and size cap, and kept in the database for the tenant's API.
//!
//! Outbound media people send is kept too; providers fetch it through a link the send job mints
//! ([`media_link`]: a random secret whose SHA-256 alone is stored, valid for a day), so no
//! lasting URL is ever stored with the message.
//!
//! A failed download retries with the queue's back-off; the message is never processed again.
//! A download that cannot succeed (refused, too large) or ran out of attempts marks the media
//! `failed`.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::jobs::{JobError, Workers};
use crate::runtime::types::{ErrorKind, MediaRef};
use crate::store::{Job, MediaRecord, Mode, Store, StoreError, now_ms};
use crate::tenancy::{Scope, auth};
use crate::vault::Vault;

/// How a stored reply names media the host keeps (`switchyard-media:med_…`); the send job swaps
/// it for a fresh fetch link.
pub const MEDIA_SCHEME: &str = "switchyard-media:";
/// How long a media fetch link works.
const LINK_LIFETIME_MS: i64 = 24 * 3600 * 1000;
/// The job that downloads one inbound media row.
pub const FETCH_MEDIA: &str = "fetch-media";

/// Default largest media kept: Meta's largest (16 MB for audio and video; images are 5 MB).
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

/// How long a provider keeps a media id (Meta: 7 days); a download paused longer gives up.
pub const MEDIA_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often a download paused on expired credentials looks again.
const PAUSE_RECHECK_MS: i64 = 60_000;

/// Payload of a `fetch-media` job.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MediaJob {
    /// The tenant.
    pub tenant: String,
    /// The media row (`med_…`).
    pub media: String,
}

/// Whether `body` matches the SHA-256 a provider announced, given as hex or base64 (Meta's
/// webhooks have used both); no announcement matches anything.
pub fn sha256_matches(announced: Option<&str>, body: &[u8]) -> bool {
    let Some(announced) = announced.map(str::trim).filter(|a| !a.is_empty()) else {
        return true;
    };
    let digest = Sha256::digest(body);
    if announced.eq_ignore_ascii_case(&hex::encode(digest)) {
        return true;
    }
    [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ]
    .iter()
    .any(|e| e.decode(announced).is_ok_and(|d| d == digest.as_slice()))
}

/// A fresh fetch link for media the host keeps (`switchyard-media:med_…`), valid for a day:
/// `<public url>/media/<tenant>.<media>.<secret>`.
pub async fn media_link(
    store: &Store,
    tenant: &Scope,
    public_url: &str,
    named: &str,
    message: &str,
) -> Result<Option<String>, StoreError> {
    let Some(media) = named.strip_prefix(MEDIA_SCHEME) else {
        return Ok(None);
    };
    let secret = crate::tenancy::ids::new_secret();
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let mut tx = store.begin(tenant.clone(), Mode::Write).await?;
    tx.set_media_link(media, message, &hash, now_ms() + LINK_LIFETIME_MS)
        .await?;
    tx.commit().await?;
    let tenant_id = tenant.tenant().map(|t| t.id()).unwrap_or_default();
    Ok(Some(format!(
        "{}/media/{tenant_id}.{media}.{}",
        public_url.trim_end_matches('/'),
        secret.as_str()
    )))
}

/// What a fetch link serves: the media's MIME type, file name and bytes; `None` for a link
/// that is unknown, wrong or expired (all alike to the caller).
pub async fn fetch_linked(
    store: &Store,
    token: &str,
) -> Result<Option<(String, Option<String>, Vec<u8>)>, StoreError> {
    let mut parts = token.splitn(3, '.');
    let (Some(tenant), Some(media), Some(secret)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let well_formed = |s: &str, prefix: &str| {
        s.starts_with(prefix)
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if !well_formed(tenant, "ten_") || !well_formed(media, "med_") || secret.len() > 128 {
        return Ok(None);
    }
    // A deleted tenant has no files; a suspended one sends nothing, its files included.
    let Some((_, mut tx, t)) = auth::job_tenant(store, tenant).await? else {
        return Ok(None);
    };
    if t.status == auth::SUSPENDED {
        return Ok(None);
    }
    let Some(linked) = tx.linked_media(media).await? else {
        return Ok(None);
    };
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    let matches = linked
        .link_hash
        .as_deref()
        .is_some_and(|h| subtle::ConstantTimeEq::ct_eq(h.as_bytes(), hash.as_bytes()).into());
    if !matches || linked.link_expires_at.is_none_or(|t| t < now_ms()) {
        return Ok(None);
    }
    let body = tx.media_content(media).await?;
    tx.commit().await?;
    Ok(body.map(|b| {
        (
            linked
                .mime_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            linked.filename,
            b,
        )
    }))
}

impl Workers {
    fn media_job(job: &Job) -> Result<MediaJob, JobError> {
        serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))
    }

    /// Download one media row through its connection's connector and keep the bytes.
    pub(crate) async fn fetch_media(&self, job: &Job) -> Result<(), JobError> {
        let p = Self::media_job(job)?;
        let scope = auth::one_tenant(&self.store, &p.tenant)
            .await
            .map_err(|e| JobError::Permanent(format!("tenant {}: {e}", p.tenant)))?;
        let tenant = Scope::Tenant(scope);
        let mut tx = self.store.begin(tenant.clone(), Mode::Read).await?;
        let media = tx
            .media(&p.media)
            .await?
            .ok_or_else(|| JobError::Permanent("the media row is gone".into()))?;
        if media.status != "pending" {
            return Ok(()); // stored by an earlier run, or given up
        }
        let connection_id = tx
            .media_connection(&p.media)
            .await?
            .ok_or_else(|| JobError::Permanent("the media's message is gone".into()))?;
        let connection = tx
            .connection(&connection_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the connection is gone".into()))?;
        if connection.status == "disconnected" {
            drop(tx);
            return self
                .fail(
                    &tenant,
                    &p.media,
                    "the number was disconnected before the download",
                )
                .await;
        }
        // Downloads pause while the credentials are expired, as sends do: a reconnect within
        // the media id's lifetime still gets the media.
        if connection.status == "expired" {
            drop(tx);
            return self.pause(&tenant, &media).await;
        }
        let secrets = self.vault.open_connection(&mut tx, &connection.id).await?;
        tx.commit().await?;
        let plugin = self
            .plugins
            .connector(&connection.connector, Some(&connection.endpoint_id))
            .ok_or_else(|| {
                JobError::Retry(format!("connector {} is not loaded", connection.connector))
            })?;
        let info = self
            .providers
            .connection_info(&connection, &plugin, &self.public_url);
        let wanted = MediaRef {
            provider_media_id: media.provider_media_id.clone(),
            url: media.url.clone(),
            mime_type: media.mime_type.clone(),
            sha256: media.provider_sha256.clone(),
            caption: None,
            filename: None,
        };
        let call_scope = Vault::call_scope(None, Some((&connection, secrets)));
        let content = match plugin.fetch_media(call_scope, &info, &wanted).await {
            Err(e) => return Err(JobError::Retry(format!("connector failed: {e}"))),
            Ok(Err(e)) => {
                let what = format!("{} {}", e.code, e.message);
                if e.kind == ErrorKind::AuthExpired {
                    let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
                    tx.move_connection_status(&connection.id, "live", "expired", Some(&what))
                        .await?;
                    tx.commit().await?;
                    return self.pause(&tenant, &media).await;
                }
                return match e.kind {
                    // The id is unknown or expired (7 days), or the token may not read it.
                    ErrorKind::InvalidRequest
                    | ErrorKind::InvalidRecipient
                    | ErrorKind::PermissionMissing
                    | ErrorKind::Permanent => self.fail(&tenant, &p.media, &what).await,
                    _ => Err(JobError::Retry(what)),
                };
            }
            Ok(Ok(content)) => content,
        };
        if content.body.len() > self.media_max_bytes {
            let why = format!(
                "the media is {} bytes, over the {} byte cap",
                content.body.len(),
                self.media_max_bytes
            );
            return self.fail(&tenant, &p.media, &why).await;
        }
        // A mismatch is a broken download (or a stale URL): the next attempt fetches afresh.
        if !sha256_matches(media.provider_sha256.as_deref(), &content.body) {
            return Err(JobError::Retry(
                "the download does not match the provider's sha256".into(),
            ));
        }
        let sha = hex::encode(Sha256::digest(&content.body));
        let mut tx = self.store.begin(tenant, Mode::Write).await?;
        tx.store_media_content(&p.media, &content.mime_type, &content.body, &sha)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Wait for a reconnect while the media id lives; give up after.
    async fn pause(&self, tenant: &Scope, media: &MediaRecord) -> Result<(), JobError> {
        let now = now_ms();
        if now - media.created_at < MEDIA_LIFETIME_MS {
            return Err(JobError::Defer(
                now + PAUSE_RECHECK_MS,
                "download paused: the connection's credentials expired".into(),
            ));
        }
        self.fail(
            tenant,
            &media.id,
            "the media id expired while the connection's credentials were expired",
        )
        .await
    }

    async fn fail(&self, tenant: &Scope, media: &str, why: &str) -> Result<(), JobError> {
        let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
        tx.fail_media(media, why).await?;
        tx.commit().await?;
        tracing::warn!(media, reason = why, "media download failed for good");
        Ok(())
    }

    /// A `fetch-media` job was dead-lettered: the media is `failed`, not left pending.
    pub(crate) async fn media_gave_up(&self, job: &Job, error: &str) -> Result<(), JobError> {
        let p = Self::media_job(job)?;
        let scope = auth::one_tenant(&self.store, &p.tenant)
            .await
            .map_err(|e| JobError::Permanent(format!("tenant {}: {e}", p.tenant)))?;
        self.fail(&Scope::Tenant(scope), &p.media, error).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_sha256_is_checked_as_hex_or_base64() {
        let body = b"fake-jpeg-bytes";
        let digest = Sha256::digest(body);
        let hex_form = hex::encode(digest);
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(sha256_matches(None, body));
        assert!(sha256_matches(Some(""), body));
        assert!(sha256_matches(Some(&hex_form), body));
        assert!(sha256_matches(Some(&hex_form.to_uppercase()), body));
        assert!(sha256_matches(Some(&b64), body));
        assert!(!sha256_matches(Some(&hex_form), b"other bytes"));
        assert!(!sha256_matches(Some("not a hash"), body));
    }
}
