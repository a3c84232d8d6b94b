//! The Graph API calls of Meta onboarding, made by the host itself (A2): the code exchange with
//! the app secret, `fb_exchange_token`, `debug_token`, discovery of WhatsApp Business Accounts
//! and numbers, `subscribed_apps` and `/register` with the two-step PIN. Tokens go in the
//! `Authorization` header (the exchange takes them as query parameters, as Meta documents);
//! nothing here logs a URL, a token or a response body.

use serde::{Deserialize, Serialize};

use crate::egress::{Auth, EgressClient, Grants, Request};
use crate::vault::Secret;

/// The scopes the redirect flow asks for.
pub const SCOPES: &str =
    "whatsapp_business_management,whatsapp_business_messaging,business_management";

/// The Graph API as onboarding uses it.
#[derive(Debug, Clone)]
pub struct Graph {
    egress: EgressClient,
    grants: Grants,
    /// `https://graph.facebook.com` (no trailing slash).
    base: String,
    /// `v26.0`.
    version: String,
    /// `https://www.facebook.com` (no trailing slash).
    dialog: String,
}

/// Graph API versions and the day Meta ends each (`None`: not announced), from Meta's
/// versions changelog; docs/operating.md shows the same table. Calls to an ended version fail.
pub const GRAPH_VERSIONS: &[(&str, Option<&str>)] = &[
    ("v18.0", Some("2026-01-26")),
    ("v19.0", Some("2026-05-21")),
    ("v20.0", Some("2026-09-24")),
    ("v21.0", Some("2027-01-21")),
    ("v22.0", Some("2027-05-20")),
    ("v23.0", Some("2027-10-08")),
    ("v24.0", Some("2028-02-18")),
    ("v25.0", Some("2028-07-29")),
    ("v26.0", None),
];

/// The newest version [`GRAPH_VERSIONS`] knows.
fn newest_version() -> &'static str {
    GRAPH_VERSIONS.last().map_or("v26.0", |(v, _)| v)
}

/// A warning about Graph API `version` on the day of `now_ms`: past its end of life, within
/// 90 days of it, or older than every version in [`GRAPH_VERSIONS`]; `None` when it is fine.
pub fn version_warning(version: &str, now_ms: i64) -> Option<String> {
    let today = now_ms.div_euclid(86_400_000);
    let newest = newest_version();
    let Some((_, ends)) = GRAPH_VERSIONS.iter().find(|(v, _)| *v == version) else {
        let older = GRAPH_VERSIONS
            .first()
            .is_some_and(|(first, _)| version_number(version) < version_number(first));
        return older.then(|| {
            format!("the Graph API version {version} is older than {newest}'s whole table and has ended; set --meta-graph-version {newest}")
        });
    };
    let (date, end) = ends.and_then(|d| crate::calendar::parse_day(d).map(|n| (d, n)))?;
    if today >= end {
        Some(format!(
            "the Graph API version {version} reached its end of life on {date}: Meta refuses its calls; set --meta-graph-version {newest}"
        ))
    } else if end - today <= 90 {
        Some(format!(
            "the Graph API version {version} ends on {date} ({} days); move to {newest} before then",
            end - today
        ))
    } else {
        None
    }
}

/// `v19.0` as `(19, 0)`, for ordering versions the table does not list.
fn version_number(version: &str) -> (u32, u32) {
    let (major, minor) = version
        .trim_start_matches('v')
        .split_once('.')
        .unwrap_or((version, "0"));
    (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
}

/// Meta's error object (`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GraphError {
    /// HTTP status (0 when no answer came).
    #[serde(skip)]
    pub status: u16,
    /// What Meta said.
    #[serde(default)]
    pub message: String,
    /// `OAuthException`, …
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Meta's error code (190, 10, 133005, …).
    #[serde(default)]
    pub code: i64,
    /// Deprecated since v16 but still sent on OAuth errors.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// Meta's trace id, for support.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    fn transport(message: String) -> GraphError {
        GraphError {
            status: 0,
            message,
            ..GraphError::default()
        }
    }

    /// True when Meta did not answer or failed on its side: worth retrying later.
    pub fn transient(&self) -> bool {
        self.status == 0 || self.status >= 500 || matches!(self.code, 1 | 2 | 4 | 133004)
    }

    /// `code message (fbtrace_id …)`, for error messages and logs (never carries a token).
    pub fn summary(&self) -> String {
        let mut s = if self.code != 0 {
            format!("Meta error {}: {}", self.code, self.message)
        } else {
            format!("HTTP {}: {}", self.status, self.message)
        };
        if let Some(t) = &self.fbtrace_id {
            s.push_str(&format!(" (fbtrace_id {t})"));
        }
        s
    }
}

/// What `debug_token` says about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// Meta still accepts it.
    pub is_valid: bool,
    /// When it expires (Unix ms); `None` for a token that does not (a system user's).
    pub expires_at: Option<i64>,
    /// When the app's access to the user's data ends (Unix ms), if it does.
    pub data_access_expires_at: Option<i64>,
}

/// `debug_token`'s `data`, the parts the host reads.
#[derive(Deserialize)]
struct DebugToken {
    #[serde(default)]
    is_valid: Option<bool>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    data_access_expires_at: Option<i64>,
    #[serde(default)]
    granular_scopes: Vec<Granular>,
}

/// One of `debug_token`'s granular scopes.
#[derive(Deserialize)]
struct Granular {
    scope: String,
    #[serde(default)]
    target_ids: Vec<String>,
}

/// A token from `oauth/access_token`.
pub struct Token {
    /// The token.
    pub access_token: Secret,
    /// Seconds until it expires; `None` (or 0) for tokens that do not expire.
    pub expires_in: Option<i64>,
}

/// A WhatsApp Business Account with its numbers, as discovery found it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Waba {
    /// WABA id.
    pub id: String,
    /// Its name, when Meta gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its business phone numbers.
    pub phone_numbers: Vec<PhoneNumber>,
}

/// A business phone number of a WABA.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneNumber {
    /// Phone number id (the connection's address).
    pub id: String,
    /// The number as people see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The business's verified name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// `VERIFIED`, `NOT_VERIFIED`, `EXPIRED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verification_status: Option<String>,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

impl Graph {
    /// The Graph API at `base` (`https://graph.facebook.com`), `version` (`v26.0`), and
    /// Facebook's dialog at `dialog`; requests go only to `base`'s origin.
    pub fn new(egress: EgressClient, base: &str, version: &str, dialog: &str) -> Graph {
        let base = base.trim_end_matches('/').to_string();
        let origin = url::Url::parse(&base)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Graph {
            egress,
            grants: Grants {
                origins: vec![origin],
                ..Grants::default()
            },
            base,
            version: version.to_string(),
            dialog: dialog.trim_end_matches('/').to_string(),
        }
    }

    /// The Graph API version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What to warn the operator of about the configured Graph API version on the day of
    /// `now_ms` (see [`version_warning`]).
    pub fn version_warning(&self, now_ms: i64) -> Option<String> {
        version_warning(&self.version, now_ms)
    }

    /// Facebook's dialog base URL (`https://www.facebook.com`, or a test's fake).
    pub fn dialog(&self) -> &str {
        &self.dialog
    }

    /// Facebook's OAuth dialog URL for the redirect flow.
    pub fn dialog_url(&self, app_id: &str, redirect_uri: &str, state: &str) -> String {
        let mut url =
            match url::Url::parse(&format!("{}/{}/dialog/oauth", self.dialog, self.version)) {
                Ok(u) => u,
                Err(_) => return String::new(),
            };
        url.query_pairs_mut()
            .append_pair("client_id", app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES);
        url.into()
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{}/{}", self.base, self.version, path);
        if !query.is_empty() {
            url.push('?');
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push_str(&q.finish());
        }
        url
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        url: String,
        token: Option<&Secret>,
        body: Option<serde_json::Value>,
    ) -> Result<T, GraphError> {
        let mut headers = Vec::new();
        let body = match body {
            Some(b) => {
                headers.push(("content-type".to_string(), "application/json".to_string()));
                b.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let auth: Vec<Auth> = token.iter().map(|t| Auth::Bearer((*t).clone())).collect();
        let resp = self
            .egress
            .send(
                &self.grants,
                Request {
                    method: method.to_string(),
                    url,
                    headers,
                    body,
                },
                &auth,
                &[],
            )
            .await
            .map_err(|e| GraphError::transport(e.to_string()))?;
        if !(200..300).contains(&resp.status) {
            let mut e = serde_json::from_slice::<ErrorBody>(&resp.body)
                .map(|b| b.error)
                .unwrap_or_else(|_| GraphError {
                    message: "the Graph API answered without an error object".into(),
                    ..GraphError::default()
                });
            e.status = resp.status;
            return Err(e);
        }
        serde_json::from_slice(&resp.body).map_err(|_| GraphError {
            status: resp.status,
            message: "the Graph API answered with an unexpected shape".into(),
            ..GraphError::default()
        })
    }

    /// `GET /oauth/access_token` with the code (redirect flow: with the same `redirect_uri`
    /// as the dialog; Embedded Signup: without).
    pub async fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &Secret,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<Token, GraphError> {
        let secret = String::from_utf8_lossy(app_secret.expose()).into_owned();
        let secret = zeroize::Zeroizing::new(secret);
        let mut q = vec![
            ("client_id", app_id),
            ("client_secret", secret.as_str()),
            ("code", code),
        ];
        if let Some(r) = redirect_uri {
            q.push(("redirect_uri", r));
        }
        self.token(self.url("oauth/access_token", &q)).await
    }

    /// `GET /oauth/access_token?grant_type=fb_exchange_token`: a long-lived user token.
    pub async fn long_lived(
        &self,
        app_id: &str,
        app_secret: &Secret,
        short: &Secret,
    ) -> Result<Token, GraphError> {
        let secret =
            zeroize::Zeroizing::new(String::from_utf8_lossy(app_secret.expose()).into_owned());
        let short = zeroize::Zeroizing::new(String::from_utf8_lossy(short.expose()).into_owned());
        let url = self.url(
            "oauth/access_token",
            &[
                ("grant_type", "fb_exchange_token"),
                ("client_id", app_id),
                ("client_secret", secret.as_str()),
                ("fb_exchange_token", short.as_str()),
            ],
        );
        self.token(url).await
    }

    async fn token(&self, url: String) -> Result<Token, GraphError> {
        #[derive(Deserialize)]
        struct Raw {
            access_token: Secret,
            #[serde(default)]
            expires_in: Option<i64>,
        }
        let raw: Raw = self.call("GET", url, None, None).await?;
        Ok(Token {
            access_token: raw.access_token,
            expires_in: raw.expires_in.filter(|s| *s > 0),
        })
    }

    /// WABA ids the token was granted `whatsapp_business_management` on
    /// (`debug_token` → `granular_scopes[].target_ids`), asked with the app token.
    pub async fn granted_wabas(
        &self,
        app_id: &str,
        app_secret: &Secret,
        token: &Secret,
    ) -> Result<Vec<String>, GraphError> {
        let mut ids: Vec<String> = self
            .debug_token(app_id, app_secret, token)
            .await?
            .granular_scopes
            .into_iter()
            .filter(|g| g.scope == "whatsapp_business_management")
            .flat_map(|g| g.target_ids)
            .collect();
        ids.dedup();
        Ok(ids)
    }

    /// Whether `token` is valid and when it and its data access expire, as Meta's
    /// `debug_token` says, asked with the app token (host code: A2).
    pub async fn token_info(
        &self,
        app_id: &str,
        app_secret: &Secret,
        token: &Secret,
    ) -> Result<TokenInfo, GraphError> {
        let d = self.debug_token(app_id, app_secret, token).await?;
        let ms = |s: Option<i64>| s.filter(|s| *s > 0).map(|s| s.saturating_mul(1000));
        Ok(TokenInfo {
            is_valid: d.is_valid.unwrap_or(true),
            expires_at: ms(d.expires_at),
            data_access_expires_at: ms(d.data_access_expires_at),
        })
    }

    /// `GET /debug_token?input_token=…` with the app token `{app_id}|{app_secret}`.
    async fn debug_token(
        &self,
        app_id: &str,
        app_secret: &Secret,
        token: &Secret,
    ) -> Result<DebugToken, GraphError> {
        #[derive(Deserialize)]
        struct Raw {
            data: DebugToken,
        }
        let mut app_token = format!("{app_id}|").into_bytes();
        app_token.extend_from_slice(app_secret.expose());
        let app_token = Secret::new(app_token);
        let input = zeroize::Zeroizing::new(String::from_utf8_lossy(token.expose()).into_owned());
        let raw: Raw = self
            .call(
                "GET",
                self.url("debug_token", &[("input_token", input.as_str())]),
                Some(&app_token),
                None,
            )
            .await?;
        Ok(raw.data)
    }

    /// The WABAs of the businesses the user token can see
    /// (`/me/businesses?fields=owned_whatsapp_business_accounts`).
    pub async fn owned_wabas(
        &self,
        token: &Secret,
    ) -> Result<Vec<(String, Option<String>)>, GraphError> {
        #[derive(Deserialize)]
        struct Account {
            id: String,
            #[serde(default)]
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct Business {
            #[serde(default)]
            owned_whatsapp_business_accounts: Option<List<Account>>,
        }
        let list: List<Business> = self
            .call(
                "GET",
                self.url(
                    "me/businesses",
                    &[(
                        "fields",
                        "id,name,owned_whatsapp_business_accounts{id,name}",
                    )],
                ),
                Some(token),
                None,
            )
            .await?;
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for b in list.data {
            for a in b
                .owned_whatsapp_business_accounts
                .map(|l| l.data)
                .unwrap_or_default()
            {
                if !out.iter().any(|(id, _)| *id == a.id) {
                    out.push((a.id, a.name));
                }
            }
        }
        Ok(out)
    }

    /// A WABA's business phone numbers.
    pub async fn phone_numbers(
        &self,
        waba: &str,
        token: &Secret,
    ) -> Result<Vec<PhoneNumber>, GraphError> {
        let list: List<PhoneNumber> = self
            .call(
                "GET",
                self.url(
                    &format!("{}/phone_numbers", segment(waba)),
                    &[(
                        "fields",
                        "id,display_phone_number,verified_name,code_verification_status,quality_rating",
                    )],
                ),
                Some(token),
                None,
            )
            .await?;
        Ok(list.data)
    }

    /// `POST /{waba}/subscribed_apps`, with an override callback (messages only) when given.
    pub async fn subscribe(
        &self,
        waba: &str,
        token: &Secret,
        override_callback: Option<(&str, &Secret)>,
    ) -> Result<(), GraphError> {
        let body = override_callback.map(|(uri, verify)| {
            serde_json::json!({
                "override_callback_uri": uri,
                "verify_token": String::from_utf8_lossy(verify.expose()),
            })
        });
        let _: serde_json::Value = self
            .call(
                "POST",
                self.url(&format!("{}/subscribed_apps", segment(waba)), &[]),
                Some(token),
                body,
            )
            .await?;
        Ok(())
    }

    /// `DELETE /{waba}/subscribed_apps`: the app stops receiving the WABA's webhooks.
    pub async fn unsubscribe(&self, waba: &str, token: &Secret) -> Result<(), GraphError> {
        let _: serde_json::Value = self
            .call(
                "DELETE",
                self.url(&format!("{}/subscribed_apps", segment(waba)), &[]),
                Some(token),
                None,
            )
            .await?;
        Ok(())
    }

    /// `POST /{phone-number-id}/register` with the two-step verification PIN.
    pub async fn register(
        &self,
        phone: &str,
        token: &Secret,
        pin: &Secret,
    ) -> Result<(), GraphError> {
        let body = serde_json::json!({
            "messaging_product": "whatsapp",
            "pin": String::from_utf8_lossy(pin.expose()),
        });
        let _: serde_json::Value = self
            .call(
                "POST",
                self.url(&format!("{}/register", segment(phone)), &[]),
                Some(token),
                Some(body),
            )
            .await?;
        Ok(())
    }
}

/// An id as one path segment (Meta ids are digits; anything else is escaped).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::day_number;

    fn at(y: i64, m: i64, d: i64) -> i64 {
        day_number(y, m, d) * 86_400_000 + 3_600_000
    }

    #[test]
    fn ended_and_ending_graph_versions_are_named() {
        let w = version_warning("v19.0", at(2026, 12, 7)).expect("ended");
        assert!(w.contains("2026-05-21") && w.contains("end of life"), "{w}");
        let w = version_warning("v20.0", at(2026, 9, 24)).expect("ends that day");
        assert!(w.contains("end of life"), "{w}");
        assert!(
            version_warning("v20.0", at(2026, 9, 23))
                .expect("soon")
                .contains("(1 days)")
        );
        assert!(
            version_warning("v21.0", at(2026, 12, 7))
                .expect("soon")
                .contains("2027-01-21")
        );
        assert_eq!(version_warning("v24.0", at(2026, 12, 7)), None);
        assert_eq!(version_warning("v26.0", at(2026, 12, 7)), None);
        assert!(version_warning("v12.0", at(2026, 12, 7)).is_some());
        assert_eq!(version_warning("v27.0", at(2026, 12, 7)), None);
        // The table is in order and its dates are dates.
        for pair in GRAPH_VERSIONS.windows(2) {
            assert!(version_number(pair[0].0) < version_number(pair[1].0));
        }
        for (_, end) in GRAPH_VERSIONS {
            assert!(end.is_none_or(|d| crate::calendar::parse_day(d).is_some()));
        }
    }
}
