//! People (DECISIONS C3): host-wide users with memberships, argon2id passwords, sessions,
//! invitations by link, password resets and sign-in lock-out.
//!
//! Tokens (sessions, invitations, resets) are `<prefix>_<id>.<secret>` like API keys: only the
//! SHA-256 of the secret is stored. A session's CSRF token is derived from its secret (HMAC), so
//! it needs no storage and dies with the session.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::mail::{MailError, Mailer};
use crate::store::{InvitationRecord, Mode, Org, Store, StoreError, UserRecord, now_ms};
use crate::tenancy::auth::{NewKey, new_token, secret_matches};
use crate::tenancy::{Scope, ids};

/// Consecutive failed sign-ins that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a locked account stays locked.
pub const LOCK_MS: i64 = 15 * 60 * 1000;
/// How long a session lasts.
pub const SESSION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long an invitation link works.
pub const INVITATION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a password-reset link works.
pub const RESET_MS: i64 = 3600 * 1000;
/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 12;
/// Longest password accepted (bytes; argon2 hashes any length, this bounds the work).
pub const PASSWORD_MAX: usize = 256;

/// Why a people operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// Wrong email or password (never says which).
    #[error("the email or password is wrong")]
    BadCredentials,
    /// Too many failed sign-ins in a row.
    #[error(
        "too many failed sign-ins: this account is locked for {minutes} more minutes; wait, or reset the password"
    )]
    Locked {
        /// Minutes left, rounded up.
        minutes: i64,
        /// Seconds left.
        retry_after: u64,
    },
    /// The password does not meet the rules.
    #[error(
        "the password must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes and not contain the email"
    )]
    WeakPassword,
    /// Not an email address.
    #[error("not an email address")]
    BadEmail,
    /// A name that is empty, too long or has control characters.
    #[error("the name must be 1 to 200 characters without control characters")]
    BadName,
    /// The link's token is unknown or malformed.
    #[error("this link is not valid")]
    BadToken,
    /// The link expired.
    #[error("this link has expired; ask for a new one")]
    Expired,
    /// The link was used, or the invitation withdrawn.
    #[error("this link was already used or withdrawn")]
    Used,
    /// The person is already a member there.
    #[error("this person is already a member")]
    AlreadyMember,
    /// The change would leave no owner.
    #[error("the last owner cannot be removed or given another role")]
    LastOwner,
    /// Only an owner (or the partner, or the operator) may grant, change or remove an owner.
    #[error("only an owner may grant, change or remove the owner role")]
    OwnerOnly,
    /// No such member.
    #[error("no such member")]
    NoMember,
    /// The mail could not be sent.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (a bug or exhausted resources).
    #[error("password hashing failed")]
    Hash,
}

fn argon2() -> Argon2<'static> {
    // argon2id, 19 MiB, 2 passes, 1 lane: OWASP's first recommended configuration.
    Argon2::default()
}

/// At most this many argon2 computations at once (19 MiB each): a burst of sign-ins waits
/// instead of taking the blocking pool and its memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Hash a password (argon2id, PHC string), off the async threads.
pub async fn hash_password(password: Zeroizing<String>) -> Result<String, PeopleError> {
    let _turn = HASHING.acquire().await.map_err(|_| PeopleError::Hash)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| PeopleError::Hash)
    })
    .await
    .map_err(|_| PeopleError::Hash)?
}

/// Whether `password` matches `hash`; with no hash, a dummy one is checked so an unknown email
/// costs the same time as a known one.
pub async fn verify_password(hash: Option<String>, password: Zeroizing<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let Ok(_turn) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (
                DUMMY
                    .get_or_init(|| {
                        let salt = SaltString::generate(&mut OsRng);
                        argon2()
                            .hash_password(b"switchyard-no-such-user", &salt)
                            .map(|h| h.to_string())
                            .unwrap_or_default()
                    })
                    .clone(),
                false,
            ),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    })
    .await
    .unwrap_or(false)
}

/// Check a new password against the rules.
pub fn check_password(password: &str, email: &str) -> Result<(), PeopleError> {
    let local = email.split('@').next().unwrap_or(email);
    if password.len() < PASSWORD_MIN
        || password.len() > PASSWORD_MAX
        || (local.len() >= 4 && password.to_lowercase().contains(local))
    {
        return Err(PeopleError::WeakPassword);
    }
    Ok(())
}

/// Check a display name.
pub fn check_name(name: &str) -> Result<&str, PeopleError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(PeopleError::BadName);
    }
    Ok(name)
}

/// The CSRF token of a session: HMAC-SHA256 of a fixed label under the session's secret,
/// base64url. Only the holder of the session cookie can compute it, and it ends with it.
pub fn csrf_token(session_token: &str) -> String {
    let secret = session_token.split_once('.').map_or("", |(_, s)| s);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(b"switchyard-csrf-v1");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Device {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

/// A started session: the cookie's token (shown once) and when it ends.
pub struct Started {
    /// The person.
    pub user_id: String,
    /// `ses_….<secret>`.
    pub token: Zeroizing<String>,
    /// When it ends (Unix ms).
    pub expires_at: i64,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

async fn start_session(
    store: &Store,
    user_id: &str,
    from: &Device,
) -> Result<Started, PeopleError> {
    let NewKey {
        id,
        token,
        secret_hash,
    } = new_token("ses");
    let expires_at = now_ms() + SESSION_MS;
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_session(
        &id,
        &secret_hash,
        user_id,
        expires_at,
        from.ip.as_deref(),
        from.user_agent.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        user_id: user_id.to_string(),
        token,
        expires_at,
    })
}

/// Sign in with email and password; a lock-out refuses without checking the password.
pub async fn sign_in(
    store: &Store,
    email: &str,
    password: Zeroizing<String>,
    from: &Device,
) -> Result<Started, PeopleError> {
    let email = crate::mail::address(email)
        .map_err(|_| PeopleError::BadCredentials)?
        .to_string();
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let user: Option<UserRecord> = tx.user_by_email(&email).await?;
    tx.commit().await?;
    let now = now_ms();
    let Some(user) = user else {
        // The same work as for an account, and the same answer.
        verify_password(None, password).await;
        return Err(PeopleError::BadCredentials);
    };
    // The attempt counts before the password is checked, in one statement: guesses sent at
    // once cannot all pass a lock-out check that was read before any of them was counted.
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    let counted = tx
        .count_sign_in(&user.id, LOCK_AFTER, now + LOCK_MS, now)
        .await?;
    tx.commit().await?;
    let Some(locks_at) = counted else {
        return Err(locked(user.locked_until.unwrap_or(now + LOCK_MS), now));
    };
    if !verify_password(user.password_hash.clone(), password).await {
        if let Some(until) = locks_at {
            tracing::warn!(user = %user.id, "sign-in locked after repeated failures");
            return Err(locked(until, now));
        }
        return Err(PeopleError::BadCredentials);
    }
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    tx.clear_sign_ins(&user.id).await?;
    tx.commit().await?;
    start_session(store, &user.id, from).await
}

fn locked(until: i64, now: i64) -> PeopleError {
    let secs = ((until - now).max(0) as u64).div_ceil(1000);
    PeopleError::Locked {
        minutes: (secs as i64 + 59) / 60,
        retry_after: secs.max(1),
    }
}

/// How long an operator's console session lasts (shorter than a person's: it can do anything).
pub const OPERATOR_SESSION_MS: i64 = 8 * 3600 * 1000;

/// Sign the operator in to the console with the operator token (DECISIONS C3: the operator is
/// a token, not an account); `None` for any other token.
pub async fn sign_in_operator(
    store: &Store,
    operator: &crate::tenancy::auth::OperatorToken,
    token: &str,
    from: &Device,
) -> Result<Option<(Zeroizing<String>, i64)>, PeopleError> {
    if token.trim().is_empty() || !operator.matches(token) {
        return Ok(None);
    }
    let NewKey { id, token, .. } = new_token("ops");
    let secret = token.split_once('.').map_or("", |(_, s)| s);
    let secret_hash = operator.session_hash(secret);
    let expires_at = now_ms() + OPERATOR_SESSION_MS;
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_operator_session(
        &id,
        &secret_hash,
        expires_at,
        from.ip.as_deref(),
        from.user_agent.as_deref(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(session = %id, "operator signed in to the console");
    Ok(Some((token, expires_at)))
}

/// End an operator's console session.
pub async fn sign_out_operator(store: &Store, session_id: &str) -> Result<(), PeopleError> {
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    tx.delete_operator_session(session_id).await?;
    tx.commit().await?;
    Ok(())
}

/// End a session.
pub async fn sign_out(store: &Store, session_id: &str) -> Result<(), PeopleError> {
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    tx.delete_session(session_id).await?;
    tx.commit().await?;
    Ok(())
}

/// What an invitation is for, as the mail names it.
#[derive(Debug, Clone)]
pub struct Invite<'a> {
    /// The tenant or partner.
    pub org: Org<'a>,
    /// Its display name.
    pub org_name: &'a str,
    /// Who is invited.
    pub email: &'a str,
    /// With which role (already checked against the org kind).
    pub role: &'a str,
    /// Who invites (ledger name).
    pub invited_by: &'a str,
}

/// Invite someone by email: store the invitation, mail its link. When the mail cannot be
/// sent the invitation is withdrawn again and the error returned.
pub async fn invite(
    store: &Store,
    mailer: &Mailer,
    public_url: &str,
    invite: &Invite<'_>,
) -> Result<InvitationRecord, PeopleError> {
    let email = crate::mail::address(invite.email).map_err(|_| PeopleError::BadEmail)?;
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    if let Some(user) = tx.user_by_email(email.as_ref()).await?
        && tx.member_role(invite.org, &user.id).await?.is_some()
    {
        return Err(PeopleError::AlreadyMember);
    }
    let NewKey {
        id,
        token,
        secret_hash,
    } = new_token("inv");
    let (tenant_id, partner_id) = match invite.org {
        Org::Tenant(t) => (Some(t.to_string()), None),
        Org::Partner(p) => (None, Some(p.to_string())),
    };
    let now = now_ms();
    let record = InvitationRecord {
        id,
        token_hash: secret_hash,
        email: email.to_string(),
        tenant_id,
        partner_id,
        role: invite.role.to_string(),
        invited_by: invite.invited_by.to_string(),
        created_at: now,
        expires_at: now + INVITATION_MS,
        accepted_at: None,
        revoked_at: None,
    };
    tx.insert_invitation(&record).await?;
    tx.commit().await?;
    let link = format!(
        "{public_url}/invitation?token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let text = format!(
        "You are invited to join {} on Switchyard as {}.\n\n\
         Accept the invitation here (the link works for 7 days, once):\n{link}\n\n\
         If you did not expect this, ignore this message.\n",
        invite.org_name, invite.role
    );
    if let Err(e) = mailer
        .send(
            &email,
            &format!("Join {} on Switchyard", invite.org_name),
            text,
        )
        .await
    {
        let mut tx = store.begin(Scope::Host, Mode::Write).await?;
        tx.close_invitation(&record.id, false).await?;
        tx.commit().await?;
        return Err(e.into());
    }
    Ok(record)
}

/// Look up a `<prefix>_<id>.<secret>` token's id after checking its shape.
fn token_id<'t>(token: &'t str, prefix: &str) -> Result<(&'t str, &'t str), PeopleError> {
    let (id, secret) = token.trim().split_once('.').ok_or(PeopleError::BadToken)?;
    if !id.starts_with(prefix) || id.len() > 64 || secret.len() > 128 {
        return Err(PeopleError::BadToken);
    }
    Ok((id, secret))
}

/// Accept an invitation: a new person sets name and password; someone who already has an
/// account proves it with their password. Starts a session.
pub async fn accept(
    store: &Store,
    token: &str,
    name: Option<&str>,
    password: Zeroizing<String>,
    from: &Device,
) -> Result<Started, PeopleError> {
    let (id, secret) = token_id(token, "inv_")?;
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let invitation = tx.invitation(id).await?;
    tx.commit().await?;
    let invitation = invitation
        .filter(|i| secret_matches(secret, &i.token_hash))
        .ok_or(PeopleError::BadToken)?;
    if invitation.accepted_at.is_some() || invitation.revoked_at.is_some() {
        return Err(PeopleError::Used);
    }
    if invitation.expires_at <= now_ms() {
        return Err(PeopleError::Expired);
    }
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let existing = tx.user_by_email(&invitation.email).await?;
    tx.commit().await?;
    let (user_id, new_user) = match existing {
        Some(u) if u.password_hash.is_some() => {
            if !verify_password(u.password_hash.clone(), password).await {
                return Err(PeopleError::BadCredentials);
            }
            (u.id, None)
        }
        existing => {
            check_password(&password, &invitation.email)?;
            let name = check_name(name.unwrap_or_default())?.to_string();
            let hash = hash_password(password).await?;
            (
                existing.map_or_else(|| ids::new_id("usr"), |u| u.id),
                Some((name, hash)),
            )
        }
    };
    let org = match (&invitation.tenant_id, &invitation.partner_id) {
        (Some(t), _) => Org::Tenant(t),
        (None, Some(p)) => Org::Partner(p),
        (None, None) => return Err(PeopleError::BadToken),
    };
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    if !tx.close_invitation(&invitation.id, true).await? {
        return Err(PeopleError::Used);
    }
    if let Some((name, hash)) = &new_user {
        match tx.user(&user_id).await? {
            Some(_) => tx.set_password(&user_id, hash).await?,
            None => {
                tx.insert_user(&user_id, &invitation.email, name, hash)
                    .await?
            }
        }
    }
    match tx
        .insert_membership(org, &user_id, &invitation.role, &invitation.invited_by)
        .await
    {
        Err(StoreError::Conflict(_)) => return Err(PeopleError::AlreadyMember),
        other => other?,
    }
    tx.commit().await?;
    tracing::info!(user = %user_id, invitation = %invitation.id, "invitation accepted");
    start_session(store, &user_id, from).await
}

/// Ask for a password reset: a link by mail when the email belongs to someone; the caller
/// learns nothing either way.
pub async fn request_reset(
    store: &Store,
    mailer: &std::sync::Arc<Mailer>,
    public_url: &str,
    email: &str,
) -> Result<(), PeopleError> {
    let Ok(email) = crate::mail::address(email) else {
        return Ok(());
    };
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    let Some(user) = tx.user_by_email(email.as_ref()).await? else {
        tx.commit().await?;
        return Ok(());
    };
    let NewKey {
        id,
        token,
        secret_hash,
    } = new_token("rst");
    tx.insert_reset(&id, &secret_hash, &user.id, now_ms() + RESET_MS)
        .await?;
    tx.commit().await?;
    let link = format!(
        "{public_url}/password-reset?token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let text = format!(
        "Someone asked to reset the password of your Switchyard account.\n\n\
         Choose a new password here (the link works for one hour, once):\n{link}\n\n\
         If it was not you, ignore this message: your password stays as it is.\n"
    );
    // Sent off the request: its time must not tell whether the account exists. The caller
    // learns nothing of a failure; the operator does.
    let (mailer, user_id) = (mailer.clone(), user.id.clone());
    tokio::spawn(async move {
        if let Err(e) = mailer
            .send(&email, "Reset your Switchyard password", text)
            .await
        {
            tracing::warn!(user = %user_id, error = %e, "password reset mail not sent");
        }
    });
    Ok(())
}

/// Set a new password with a reset link: ends every session of the person and lifts a
/// lock-out. Starts a new session.
pub async fn reset_password(
    store: &Store,
    token: &str,
    password: Zeroizing<String>,
    from: &Device,
) -> Result<Started, PeopleError> {
    let (id, secret) = token_id(token, "rst_")?;
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let reset = tx.reset(id).await?;
    let reset = reset
        .filter(|r| secret_matches(secret, &r.token_hash))
        .ok_or(PeopleError::BadToken)?;
    let user = tx
        .user(&reset.user_id)
        .await?
        .ok_or(PeopleError::BadToken)?;
    tx.commit().await?;
    if reset.used_at.is_some() {
        return Err(PeopleError::Used);
    }
    if reset.expires_at <= now_ms() {
        return Err(PeopleError::Expired);
    }
    check_password(&password, &user.email)?;
    let hash = hash_password(password).await?;
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    if !tx.use_reset(&reset.id, &user.id).await? {
        return Err(PeopleError::Used);
    }
    tx.set_password(&user.id, &hash).await?;
    let ended = tx.delete_sessions_of(&user.id).await?;
    tx.commit().await?;
    tracing::info!(user = %user.id, sessions_ended = ended, "password reset");
    start_session(store, &user.id, from).await
}

/// Change a member's role (`Some`) or remove them (`None`). `acting` is the role of a tenant
/// member making the change (`None`: an owner of the org, its partner or the operator): only
/// owners touch the owner role, and the last owner stays.
pub async fn change_member(
    store: &Store,
    org: Org<'_>,
    acting_is_owner: bool,
    user_id: &str,
    role: Option<&str>,
) -> Result<(), PeopleError> {
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    // Two owners demoting each other at once must not both see the other still there.
    tx.lock_owners(org).await?;
    let current = tx
        .member_role(org, user_id)
        .await?
        .ok_or(PeopleError::NoMember)?;
    let touches_owner = current == "owner" || role == Some("owner");
    if touches_owner && !acting_is_owner {
        return Err(PeopleError::OwnerOnly);
    }
    if current == "owner" && role != Some("owner") && tx.owner_count(org).await? <= 1 {
        return Err(PeopleError::LastOwner);
    }
    match role {
        Some(role) => tx.set_member_role(org, user_id, role).await?,
        None => tx.delete_membership(org, user_id).await?,
    }
    tx.commit().await?;
    Ok(())
}

/// Withdraw an open invitation of `org`; `NoMember`-like `BadToken` when it is not one of its.
pub async fn withdraw(store: &Store, org: Org<'_>, id: &str) -> Result<(), PeopleError> {
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    let found = tx.invitation(id).await?.filter(|i| match org {
        Org::Tenant(t) => i.tenant_id.as_deref() == Some(t),
        Org::Partner(p) => i.partner_id.as_deref() == Some(p),
    });
    let Some(found) = found else {
        return Err(PeopleError::BadToken);
    };
    if !tx.close_invitation(&found.id, false).await? {
        return Err(PeopleError::Used);
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password(Zeroizing::new("correct horse battery".into()))
            .await
            .expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(
            verify_password(
                Some(h.clone()),
                Zeroizing::new("correct horse battery".into())
            )
            .await
        );
        assert!(!verify_password(Some(h), Zeroizing::new("correct horse batterY".into())).await);
        assert!(!verify_password(None, Zeroizing::new("switchyard-no-such-user".into())).await);
    }

    #[test]
    fn password_rules() {
        assert!(check_password("short", "ana@example.com").is_err());
        assert!(check_password(&"x".repeat(PASSWORD_MAX + 1), "ana@example.com").is_err());
        assert!(check_password("my name is anabelle!", "anabelle@example.com").is_err());
        assert!(check_password("a long enough passphrase", "ana@example.com").is_ok());
    }

    #[test]
    fn csrf_tokens_follow_the_session_secret() {
        let a = csrf_token("ses_1.secret-one");
        assert_eq!(a, csrf_token("ses_1.secret-one"));
        assert_ne!(a, csrf_token("ses_1.secret-two"));
        assert!(!a.contains("secret"));
        assert_eq!(a.len(), 43);
    }
}
