//! The plugin manifest: what a plugin is, which world it implements and where it may connect.
//!
//! The manifest travels inside the component as the top-level custom section
//! `switchyard-manifest` (JSON), so the sha256 of the component covers it and one file is the
//! whole plugin. `switchyard plugin pack` and the host's build script write it; the loader reads
//! it before compiling anything.

use serde::{Deserialize, Serialize};

pub use super::manifest_section::{SECTION_NAME, append_custom_section};

/// The interface versions this host can load, newest last.
pub const SUPPORTED_INTERFACES: &[&str] = &[
    "switchyard:plugin@0.1.0",
    "switchyard:plugin@0.2.0",
    "switchyard:plugin@0.3.0",
];

/// An interface version this host links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// `switchyard:plugin@0.1.0`, frozen.
    V0_1_0,
    /// `switchyard:plugin@0.2.0`, frozen.
    V0_2_0,
    /// `switchyard:plugin@0.3.0`, the newest.
    V0_3_0,
}

impl Interface {
    /// The newest version (the one `switchyard plugin new` and the SDK target).
    pub const NEWEST: Interface = Interface::V0_3_0;

    /// The package and version, e.g. `switchyard:plugin@0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::V0_1_0 => "switchyard:plugin@0.1.0",
            Interface::V0_2_0 => "switchyard:plugin@0.2.0",
            Interface::V0_3_0 => "switchyard:plugin@0.3.0",
        }
    }

    /// The version alone, e.g. `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Interface::V0_1_0 => "0.1.0",
            Interface::V0_2_0 => "0.2.0",
            Interface::V0_3_0 => "0.3.0",
        }
    }

    fn parse(s: &str) -> Option<Interface> {
        [Interface::V0_1_0, Interface::V0_2_0, Interface::V0_3_0]
            .into_iter()
            .find(|i| i.as_str() == s)
    }

    /// The version a component's `channel` or `policy` export names, read from its bytes
    /// (for packing; the loader checks the exports properly).
    pub fn detect(component: &[u8]) -> Option<Interface> {
        [Interface::V0_3_0, Interface::V0_2_0, Interface::V0_1_0]
            .into_iter()
            .find(|i| {
                ["channel", "policy"].iter().any(|export| {
                    let name = format!("switchyard:plugin/{export}@{}", i.version());
                    memchr::memmem::find(component, name.as_bytes()).is_some()
                })
            })
    }
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// A channel connector (`world connector`).
    Connector,
    /// A reply policy (`world reply-policy`).
    ReplyPolicy,
}

impl World {
    /// The world's name in the WIT package.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Connector => "connector",
            World::ReplyPolicy => "reply-policy",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin name: lower-case letters, digits and `-`, at most 64 characters.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// The world it implements.
    pub world: World,
    /// The interface package and version it was built against, e.g. `switchyard:plugin@0.1.0`.
    pub interface: String,
    /// Hosts the plugin may reach over HTTPS through egress (names only, e.g. `graph.facebook.com`).
    #[serde(default)]
    pub egress: Vec<String>,
    /// What a connection of this connector is made of (connectors only); absent, a connector
    /// gets the generic shape ([`ConnectionShape::generic`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionShape>,
    /// Hosts among `egress` that serve the provider's API and receive the connection's
    /// credentials; other egress hosts (a CDN a redirect leads to) never see them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    /// The provider API's base URL (`https://` on a `credentials` host), given to the
    /// connector as `connection-info.api-base-url` unless the operator configures another
    /// (`SWITCHYARD_API_URLS`); 0.2.0 and later connectors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// What the connector's channel allows (connectors only); absent, WhatsApp's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelRules>,
}

/// What a channel allows, as its connector declares it (the WIT's `channel-rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRules {
    /// Seconds after the customer's last message during which free-form replies are allowed;
    /// absent: no such window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Whether the channel has templates (the only thing sendable outside the window).
    #[serde(default)]
    pub templates: bool,
    /// The longest text, in Unicode scalar values.
    pub text_limit: u32,
    /// The media kinds it sends: `image`, `audio`, `video`, `document`, `sticker`.
    #[serde(default)]
    pub media: Vec<String>,
    /// Whether it sends reactions.
    #[serde(default)]
    pub reactions: bool,
    /// Whether a reply can quote the message it answers.
    #[serde(default)]
    pub reply_context: bool,
}

/// The media kinds a channel may declare.
pub const MEDIA_KINDS: &[&str] = &["image", "audio", "video", "document", "sticker"];

impl ChannelRules {
    /// WhatsApp's rules (Meta and Twilio): the 24-hour window, templates, 4,096 characters,
    /// every media kind, reactions and replies; what a connector that declares none gets.
    pub fn whatsapp() -> ChannelRules {
        ChannelRules {
            window_seconds: Some(24 * 3600),
            templates: true,
            text_limit: 4096,
            media: MEDIA_KINDS.iter().map(|k| k.to_string()).collect(),
            reactions: true,
            reply_context: true,
        }
    }

    /// The same rules in the interface's types (for a policy's context).
    pub fn to_wit(&self) -> super::bindings::types::ChannelRules {
        use super::bindings::types::MediaKind;
        let kind = |k: &str| match k {
            "image" => Some(MediaKind::Image),
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            "document" => Some(MediaKind::Document),
            "sticker" => Some(MediaKind::Sticker),
            _ => None,
        };
        super::bindings::types::ChannelRules {
            window_seconds: self.window_seconds,
            templates: self.templates,
            text_limit: self.text_limit,
            media: self.media.iter().filter_map(|k| kind(k)).collect(),
            reactions: self.reactions,
            reply_context: self.reply_context,
        }
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            field: "channel",
            reason,
        };
        if self.text_limit == 0 || self.text_limit > 65_536 {
            return Err(invalid("text_limit must be 1 to 65536".into()));
        }
        if self
            .window_seconds
            .is_some_and(|w| w == 0 || w > 30 * 86_400)
        {
            return Err(invalid(
                "window_seconds must be 1 to 2592000 (30 days); leave it out for no window".into(),
            ));
        }
        if let Some(bad) = self
            .media
            .iter()
            .find(|m| !MEDIA_KINDS.contains(&m.as_str()))
        {
            return Err(invalid(format!(
                "unknown media kind {bad:?} (expected: {})",
                MEDIA_KINDS.join(", ")
            )));
        }
        if self.window_seconds.is_some() && !self.templates {
            return Err(invalid(
                "a channel with a window needs templates to answer outside it".into(),
            ));
        }
        Ok(())
    }
}

/// The settings and secrets a connector accepts, as it declares them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionShape {
    /// Every setting it accepts; anything else is refused.
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
    /// Every secret it accepts; anything else is refused.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Each connection gets its own webhook endpoint (Twilio) instead of sharing one (Meta).
    #[serde(default)]
    pub own_endpoint: bool,
}

/// One declared setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    /// Its name, e.g. `phone_number_id`.
    pub name: String,
    /// A regular expression the whole value must match (anchored by the host).
    pub pattern: String,
    /// Whether a connection (or an endpoint, for `endpoint` settings) needs it.
    #[serde(default)]
    pub required: bool,
    /// Who may set it.
    #[serde(default)]
    pub set_by: SetBy,
    /// What the host takes it for, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<SettingRole>,
}

/// Who may set a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetBy {
    /// The tenant, on its connection.
    #[default]
    Tenant,
    /// The endpoint's owner (operator or partner), on the endpoint.
    Endpoint,
    /// The operator, in the host's configuration; never stored with a connection.
    Operator,
}

/// What the host takes a tenant setting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingRole {
    /// The business's channel address (the route key).
    Address,
    /// The provider account the address belongs to.
    Account,
    /// The address as people read it.
    Display,
}

/// One declared secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Its name, one the runtime's `secrets` interface knows (e.g. `access_token`).
    pub name: String,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
    /// Where it is given: on the connection (the tenant's) or on the endpoint (its owner's).
    #[serde(default)]
    pub on: SecretOn,
    /// The host generates it at connect (a random 43-character base64url value, e.g. the
    /// webhook secret Telegram echoes back); nobody may give it. Connection secrets only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
    /// Where egress may put it: `bearer`, `basic`, `header:<name>`, `path` (once, in the URL's
    /// path) or `query:<param>` (the whole value of one query parameter); absent: `bearer`,
    /// `basic` or a header, never the URL. A plugin placing it elsewhere is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
}

/// Where a secret may be placed in an egress request, as a [`SecretSpec`] declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: Basic`.
    Basic,
    /// This header (lower case).
    Header(String),
    /// Once, in the URL's path.
    Path,
    /// The whole value of this query parameter.
    Query(String),
}

impl SecretSpec {
    /// Its declared placement; `None` when it declares none (header placements only).
    pub fn placement(&self) -> Result<Option<Placement>, String> {
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
        };
        Ok(Some(match self.placement.as_deref() {
            None => return Ok(None),
            Some("bearer") => Placement::Bearer,
            Some("basic") => Placement::Basic,
            Some("path") => Placement::Path,
            Some(p) => match p.split_once(':') {
                Some(("header", h)) if token_ok(h) => Placement::Header(h.to_string()),
                Some(("query", q)) if token_ok(q) => Placement::Query(q.to_string()),
                _ => {
                    return Err(format!(
                        "placement {p:?}: expected bearer, basic, header:<name>, path or query:<param>"
                    ));
                }
            },
        }))
    }
}

/// Where a secret is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretOn {
    /// `POST …/connections` (`secrets`).
    #[default]
    Connection,
    /// `POST /api/v1/endpoints` (`secrets`).
    Endpoint,
}

impl ConnectionShape {
    /// The shape of a connector that declares none: a tenant-set `channel_address` (required),
    /// `account_id` and `display_name`; the 0.1.0 secret names on either side.
    pub fn generic() -> ConnectionShape {
        let setting = |name: &str, pattern: &str, required, role| SettingSpec {
            name: name.into(),
            pattern: pattern.into(),
            required,
            set_by: SetBy::Tenant,
            role: Some(role),
        };
        let secret = |name: &str, on| SecretSpec {
            name: name.into(),
            required: false,
            on,
            generated: false,
            placement: None,
        };
        ConnectionShape {
            settings: vec![
                setting(
                    "channel_address",
                    r"[\x21-\x7e]{1,256}",
                    true,
                    SettingRole::Address,
                ),
                setting(
                    "account_id",
                    r"[\x21-\x7e]{1,256}",
                    false,
                    SettingRole::Account,
                ),
                setting(
                    "display_name",
                    r"[^\p{Cc}]{1,128}",
                    false,
                    SettingRole::Display,
                ),
            ],
            secrets: vec![
                secret("access_token", SecretOn::Connection),
                secret("auth_token", SecretOn::Connection),
                secret("app_secret", SecretOn::Endpoint),
                secret("verify_token", SecretOn::Endpoint),
            ],
            own_endpoint: false,
        }
    }

    /// The declared setting with this name.
    pub fn setting(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// The name of the setting with this role, if one has it.
    pub fn role(&self, role: SettingRole) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.role == Some(role))
            .map(|s| s.name.as_str())
    }

    /// Check the declaration itself: names, patterns, exactly one address, and secrets a
    /// connector of `interface` can name.
    fn validate(&self, interface: Interface) -> Result<(), ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            field: "connection",
            reason,
        };
        let mut seen = std::collections::HashSet::new();
        for s in &self.settings {
            if !field_name_ok(&s.name) || !seen.insert(s.name.as_str()) {
                return Err(invalid(format!(
                    "setting {:?}: use a unique name of 1-64 lower-case letters, digits and '_'",
                    s.name
                )));
            }
            if s.pattern.len() > 512 {
                return Err(invalid(format!("setting {:?}: pattern too long", s.name)));
            }
            anchored(&s.pattern)
                .map_err(|e| invalid(format!("setting {:?}: pattern: {e}", s.name)))?;
            if s.role.is_some() && s.set_by != SetBy::Tenant {
                return Err(invalid(format!(
                    "setting {:?}: only a tenant setting can have a role",
                    s.name
                )));
            }
        }
        for role in [
            SettingRole::Address,
            SettingRole::Account,
            SettingRole::Display,
        ] {
            let n = self
                .settings
                .iter()
                .filter(|s| s.role == Some(role))
                .count();
            if n > 1 || (role == SettingRole::Address && n == 0) {
                return Err(invalid(format!(
                    "exactly one setting must have the role address, at most one each other role ({role:?}: {n})"
                )));
            }
        }
        if let Some(a) = self
            .settings
            .iter()
            .find(|s| s.role == Some(SettingRole::Address))
            && !a.required
        {
            return Err(invalid(format!(
                "the address setting {:?} must be required",
                a.name
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.secrets {
            // 0.1.0 names its secrets with a fixed enum; later versions by any declared name.
            let known = match interface {
                Interface::V0_1_0 => V0_1_0_SECRETS.contains(&s.name.as_str()),
                _ => field_name_ok(&s.name),
            };
            if !known || !seen.insert(s.name.as_str()) {
                return Err(invalid(format!(
                    "secret {:?}: {} (each once)",
                    s.name,
                    match interface {
                        Interface::V0_1_0 =>
                            format!("expected one of {}", V0_1_0_SECRETS.join(", ")),
                        _ => "use 1-64 lower-case letters, digits and '_'".into(),
                    }
                )));
            }
            if s.generated && (s.on != SecretOn::Connection || s.required) {
                return Err(invalid(format!(
                    "secret {:?}: a generated secret is a connection's and never required of anyone",
                    s.name
                )));
            }
            s.placement()
                .map_err(|e| invalid(format!("secret {:?}: {e}", s.name)))?;
            if crate::vault::HOST_ONLY_SECRETS.contains(&s.name.as_str()) {
                return Err(invalid(format!(
                    "secret {:?}: the host keeps that one to itself",
                    s.name
                )));
            }
            if s.generated && interface == Interface::V0_1_0 {
                return Err(invalid(format!(
                    "secret {:?}: interface 0.1.0 cannot use generated secrets",
                    s.name
                )));
            }
        }
        Ok(())
    }
}

/// The secrets interface 0.1.0 can name (its `secret-name` enum, as field names).
pub const V0_1_0_SECRETS: &[&str] = &["app_secret", "verify_token", "auth_token", "access_token"];

/// Whether `name` can name a setting or a secret: 1-64 lower-case letters, digits and `_`.
pub fn field_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A setting's pattern, anchored to match the whole value.
pub fn anchored(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

/// Why a manifest could not be read or is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// The bytes are not a wasm binary.
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    /// No `switchyard-manifest` section.
    #[error("no `{SECTION_NAME}` custom section: pack the component with `switchyard plugin pack`")]
    Missing,
    /// More than one manifest section.
    #[error("more than one `{SECTION_NAME}` custom section")]
    Duplicate,
    /// The section is not valid manifest JSON.
    #[error("manifest is not valid: {0}")]
    Malformed(String),
    /// A field has an unacceptable value.
    #[error("manifest field `{field}` is not valid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Manifest {
    /// Check every field; the loader refuses a plugin whose manifest fails this.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |field, reason: &str| ManifestError::Invalid {
            field,
            reason: reason.to_string(),
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(invalid(
                "name",
                "use 1-64 lower-case letters, digits and '-'",
            ));
        }
        let version_ok = !self.version.is_empty()
            && self.version.len() <= 64
            && self.version.split('.').count() == 3
            && self
                .version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b));
        if !version_ok {
            return Err(invalid("version", "use a semver version such as 1.2.3"));
        }
        let interface = self.interface_version()?;
        match (&self.connection, self.world) {
            (Some(shape), World::Connector) => shape.validate(interface)?,
            (Some(_), World::ReplyPolicy) => {
                return Err(ManifestError::Invalid {
                    field: "connection",
                    reason: "only a connector declares connection settings".into(),
                });
            }
            (None, _) => {}
        }
        for host in &self.egress {
            if !is_host_name(host) {
                return Err(ManifestError::Invalid {
                    field: "egress",
                    reason: format!("{host:?} is not a bare host name (no scheme, port or path)"),
                });
            }
        }
        if let Some(host) = self.credentials.iter().find(|h| !self.egress.contains(h)) {
            return Err(ManifestError::Invalid {
                field: "credentials",
                reason: format!("{host:?} is not one of the `egress` hosts"),
            });
        }
        if let Some(base) = &self.api_base_url {
            let parsed = url::Url::parse(base).ok().filter(|u| {
                u.scheme() == "https"
                    && u.host_str()
                        .is_some_and(|h| self.credentials.iter().any(|c| c == h))
                    && u.port().is_none()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            });
            if parsed.is_none() || self.world != World::Connector || interface == Interface::V0_1_0
            {
                return Err(ManifestError::Invalid {
                    field: "api_base_url",
                    reason: format!(
                        "{base:?}: a 0.2.0-or-later connector's https URL on one of its `credentials` hosts, without port, query or user"
                    ),
                });
            }
        }
        match (&self.channel, self.world) {
            (Some(rules), World::Connector) => rules.validate()?,
            (Some(_), World::ReplyPolicy) => {
                return Err(ManifestError::Invalid {
                    field: "channel",
                    reason: "only a connector declares channel rules".into(),
                });
            }
            (None, _) => {}
        }
        Ok(())
    }

    /// The interface version it names, if this host supports it.
    pub fn interface_version(&self) -> Result<Interface, ManifestError> {
        Interface::parse(&self.interface).ok_or_else(|| ManifestError::Invalid {
            field: "interface",
            reason: format!(
                "{:?} is not supported by this host (supported: {})",
                self.interface,
                SUPPORTED_INTERFACES.join(", ")
            ),
        })
    }

    /// What its channel allows: as declared, or WhatsApp's.
    pub fn channel_rules(&self) -> ChannelRules {
        self.channel.clone().unwrap_or_else(ChannelRules::whatsapp)
    }

    /// Read and validate the manifest carried by a component.
    pub fn from_component(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let payload = find_section(bytes)?.ok_or(ManifestError::Missing)?;
        let manifest: Manifest =
            serde_json::from_slice(payload).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Return the component with this manifest embedded (replacing none: a packed input is refused).
    pub fn embed(&self, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        if find_section(component)?.is_some() {
            return Err(ManifestError::Duplicate);
        }
        let json = serde_json::to_vec(self).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        let mut out = component.to_vec();
        append_custom_section(&mut out, SECTION_NAME, &json);
        Ok(out)
    }
}

/// True for a lower-case DNS name or IPv4 address without scheme, port or path.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// One top-level section of a wasm binary: its id, its whole byte range and its content range.
struct Section {
    id: u8,
    whole: std::ops::Range<usize>,
    content: std::ops::Range<usize>,
}

/// Split a module or component into its top-level sections.
///
/// Hand-written because the framing is tiny and fixed by the spec (8-byte header, then
/// `id: u8, size: leb128 u32, content`), and the loader needs byte ranges, not parsed items.
fn sections(bytes: &[u8]) -> Result<Vec<Section>, ManifestError> {
    let not_wasm = |why: &str| ManifestError::NotWasm(why.to_string());
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(not_wasm("missing the \\0asm header"));
    }
    let mut at = 8;
    let mut out = Vec::new();
    while at < bytes.len() {
        let start = at;
        let id = bytes[at];
        at += 1;
        let mut size: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = *bytes
                .get(at)
                .ok_or_else(|| not_wasm("truncated section size"))?;
            at += 1;
            size |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return Err(not_wasm("section size is not a u32"));
            }
        }
        let end = at
            .checked_add(size as usize)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| not_wasm("section runs past the end"))?;
        out.push(Section {
            id,
            whole: start..end,
            content: at..end,
        });
        at = end;
    }
    Ok(out)
}

/// The content of a custom section after its name, when its name is `name` (shorter than 128
/// bytes, so its length is a one-byte LEB128).
fn custom_payload(bytes: &[u8], section: &Section, name: &str) -> Option<std::ops::Range<usize>> {
    if section.id != 0 {
        return None;
    }
    let content = &bytes[section.content.clone()];
    let (&len, rest) = content.split_first()?;
    let len = usize::from(len);
    (len == name.len() && rest.get(..len) == Some(name.as_bytes()))
        .then(|| section.content.start + 1 + len..section.content.end)
}

fn manifest_payload(bytes: &[u8], section: &Section) -> Option<std::ops::Range<usize>> {
    custom_payload(bytes, section, SECTION_NAME)
}

/// A custom section's byte ranges: `(whole section, payload)`.
pub(crate) type CustomSection = (std::ops::Range<usize>, std::ops::Range<usize>);

/// The top-level custom sections named `name`.
pub(crate) fn custom_sections(
    bytes: &[u8],
    name: &str,
) -> Result<Vec<CustomSection>, ManifestError> {
    Ok(sections(bytes)?
        .into_iter()
        .filter_map(|s| custom_payload(bytes, &s, name).map(|p| (s.whole.clone(), p)))
        .collect())
}

/// The bytes without the top-level custom sections named `name`.
pub(crate) fn remove_custom_sections(bytes: &[u8], name: &str) -> Result<Vec<u8>, ManifestError> {
    let mut out = bytes[..8.min(bytes.len())].to_vec();
    for section in sections(bytes)? {
        if custom_payload(bytes, &section, name).is_none() {
            out.extend_from_slice(&bytes[section.whole]);
        }
    }
    Ok(out)
}

/// The payload of the top-level manifest section, if there is exactly one.
fn find_section(bytes: &[u8]) -> Result<Option<&[u8]>, ManifestError> {
    let mut found = None;
    for section in sections(bytes)? {
        if let Some(range) = manifest_payload(bytes, &section) {
            if found.is_some() {
                return Err(ManifestError::Duplicate);
            }
            found = Some(&bytes[range]);
        }
    }
    Ok(found)
}

/// The component without its manifest section(s), e.g. to pack it again with another manifest.
pub fn strip(bytes: &[u8]) -> Result<Vec<u8>, ManifestError> {
    remove_custom_sections(bytes, SECTION_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "meta-cloud".into(),
            version: "0.1.0".into(),
            world: World::Connector,
            interface: "switchyard:plugin@0.1.0".into(),
            egress: vec!["graph.facebook.com".into()],
            connection: None,
            credentials: vec!["graph.facebook.com".into()],
            api_base_url: None,
            channel: None,
        }
    }

    #[test]
    fn credential_hosts_must_be_egress_hosts() {
        let mut m = manifest();
        m.credentials.push("lookaside.fbsbx.com".into());
        assert!(matches!(
            m.validate(),
            Err(ManifestError::Invalid {
                field: "credentials",
                ..
            })
        ));
    }

    /// The smallest valid component: magic, component layer version.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn embedded_manifest_reads_back() {
        let packed = manifest().embed(EMPTY_COMPONENT).expect("embed");
        assert_eq!(Manifest::from_component(&packed), Ok(manifest()));
    }

    #[test]
    fn missing_and_duplicate_sections_are_refused() {
        assert_eq!(
            Manifest::from_component(EMPTY_COMPONENT),
            Err(ManifestError::Missing)
        );
        let packed = manifest().embed(EMPTY_COMPONENT).expect("embed");
        assert_eq!(manifest().embed(&packed), Err(ManifestError::Duplicate));
        let mut twice = packed.clone();
        append_custom_section(&mut twice, SECTION_NAME, b"{}");
        assert_eq!(
            Manifest::from_component(&twice),
            Err(ManifestError::Duplicate)
        );
        assert_eq!(strip(&twice).expect("strip"), EMPTY_COMPONENT);
    }

    #[test]
    fn garbage_is_not_wasm() {
        assert!(matches!(
            Manifest::from_component(b"not wasm at all"),
            Err(ManifestError::NotWasm(_))
        ));
    }

    #[test]
    fn fields_are_validated() {
        type Edit = fn(&mut Manifest);
        let cases: [(Edit, &str); 5] = [
            (|m| m.name = "Meta Cloud".into(), "name"),
            (|m| m.version = "latest".into(), "version"),
            (
                |m| m.interface = "switchyard:plugin@9.0.0".into(),
                "interface",
            ),
            (
                |m| m.egress = vec!["https://graph.facebook.com".into()],
                "egress",
            ),
            (
                |m| m.egress = vec!["graph.facebook.com:8443".into()],
                "egress",
            ),
        ];
        for (edit, field) in cases {
            let mut m = manifest();
            edit(&mut m);
            match m.validate() {
                Err(ManifestError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut bytes = EMPTY_COMPONENT.to_vec();
        append_custom_section(
            &mut bytes,
            SECTION_NAME,
            br#"{"name":"x","version":"1.0.0","world":"connector","interface":"switchyard:plugin@0.1.0","secrets":["all"]}"#,
        );
        assert!(matches!(
            Manifest::from_component(&bytes),
            Err(ManifestError::Malformed(_))
        ));
    }
}
