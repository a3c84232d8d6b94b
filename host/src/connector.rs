//! What the host knows about a connector's connections: the settings and secrets it declares
//! (checked here before anything runs), and a connection's resolved view for plugin calls, in
//! which the operator's settings always win over anything stored.
//!
//! Owns no I/O: callers load records and plugins; this module only decides what is acceptable
//! and what a plugin sees. It must not let a tenant value choose where the host connects.

use std::collections::{BTreeMap, HashMap};

use crate::runtime::manifest::{ConnectionShape, SecretOn, SetBy, SettingRole, anchored};
use crate::runtime::types::ConnectionInfo;
use crate::store::ConnectionRecord;
use crate::vault::Secret;

/// Most settings one connection or endpoint may carry.
const MAX_SETTINGS: usize = 64;

/// Why settings or secrets were refused; each names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// The connector declares no such setting.
    #[error("unknown setting {name:?} for {connector} (it accepts: {accepted})")]
    Unknown {
        /// The setting.
        name: String,
        /// The connector.
        connector: String,
        /// The settings this caller may set.
        accepted: String,
    },
    /// The setting exists but this caller may not set it here.
    #[error("setting {name:?} is set by the {by}, not here")]
    NotYours {
        /// The setting.
        name: String,
        /// Who sets it.
        by: &'static str,
    },
    /// A required setting is missing or empty.
    #[error("setting {name:?} is required for {connector}")]
    Required {
        /// The setting.
        name: String,
        /// The connector.
        connector: String,
    },
    /// The value does not match the declared pattern.
    #[error("setting {name:?} must match {pattern:?}")]
    Pattern {
        /// The setting.
        name: String,
        /// The declared pattern.
        pattern: String,
    },
    /// Too many settings.
    #[error("at most {MAX_SETTINGS} settings")]
    TooMany,
    /// The connector declares no such secret here.
    #[error("unknown secret {name:?} for {connector} here (it accepts: {accepted})")]
    UnknownSecret {
        /// The secret.
        name: String,
        /// The connector.
        connector: String,
        /// The secrets accepted here.
        accepted: String,
    },
    /// A required secret is missing.
    #[error("secret {name:?} is required for {connector}")]
    SecretRequired {
        /// The secret.
        name: String,
        /// The connector.
        connector: String,
    },
}

impl SettingsError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            SettingsError::UnknownSecret { .. } | SettingsError::SecretRequired { .. } => {
                "invalid_secrets"
            }
            SettingsError::Unknown { .. } => "unknown_setting",
            SettingsError::NotYours { .. } => "setting_not_allowed",
            _ => "invalid_settings",
        }
    }
}

/// A connection's settings after the check: what is stored and the values the host keys on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedConnection {
    /// The tenant's settings, trimmed (only declared tenant settings).
    pub settings: BTreeMap<String, String>,
    /// The channel address (the route key).
    pub address: String,
    /// The provider account, if declared and given.
    pub account: Option<String>,
    /// The display form of the address: its own setting, else the address.
    pub display: String,
}

fn by_name(by: SetBy) -> &'static str {
    match by {
        SetBy::Tenant => "tenant",
        SetBy::Endpoint => "endpoint owner",
        SetBy::Operator => "operator",
    }
}

/// Check one side's settings (`side` = who is setting them) against the declaration.
fn check_settings(
    connector: &str,
    shape: &ConnectionShape,
    side: SetBy,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SettingsError> {
    if given.len() > MAX_SETTINGS {
        return Err(SettingsError::TooMany);
    }
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let Some(spec) = shape.setting(name) else {
            return Err(SettingsError::Unknown {
                name: name.chars().take(64).collect(),
                connector: connector.to_string(),
                accepted: shape
                    .settings
                    .iter()
                    .filter(|s| s.set_by == side)
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if spec.set_by != side {
            return Err(SettingsError::NotYours {
                name: name.clone(),
                by: by_name(spec.set_by),
            });
        }
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        // A pattern that fails to compile was refused when the plugin loaded.
        let matches = anchored(&spec.pattern).is_ok_and(|re| re.is_match(value));
        if !matches {
            return Err(SettingsError::Pattern {
                name: name.clone(),
                pattern: spec.pattern.clone(),
            });
        }
        out.insert(name.clone(), value.to_string());
    }
    for spec in shape.settings.iter().filter(|s| s.set_by == side) {
        if spec.required && !out.contains_key(&spec.name) {
            return Err(SettingsError::Required {
                name: spec.name.clone(),
                connector: connector.to_string(),
            });
        }
    }
    Ok(out)
}

/// Check the secrets given on one side against the declaration.
fn check_secrets(
    connector: &str,
    shape: &ConnectionShape,
    on: SecretOn,
    given: &[(String, Secret)],
) -> Result<(), SettingsError> {
    let accepted = || {
        shape
            .secrets
            .iter()
            .filter(|s| s.on == on)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, _) in given {
        if !shape.secrets.iter().any(|s| s.on == on && &s.name == name) {
            return Err(SettingsError::UnknownSecret {
                name: name.chars().take(64).collect(),
                connector: connector.to_string(),
                accepted: accepted(),
            });
        }
    }
    for spec in shape.secrets.iter().filter(|s| s.on == on && s.required) {
        if !given.iter().any(|(n, _)| n == &spec.name) {
            return Err(SettingsError::SecretRequired {
                name: spec.name.clone(),
                connector: connector.to_string(),
            });
        }
    }
    Ok(())
}

/// Check a tenant's connection settings and secrets against what the connector declares.
pub fn check_connection(
    connector: &str,
    shape: &ConnectionShape,
    settings: &BTreeMap<String, String>,
    secrets: &[(String, Secret)],
) -> Result<CheckedConnection, SettingsError> {
    let settings = check_settings(connector, shape, SetBy::Tenant, settings)?;
    check_secrets(connector, shape, SecretOn::Connection, secrets)?;
    let role = |r| shape.role(r).and_then(|n| settings.get(n)).cloned();
    let address = role(SettingRole::Address).ok_or_else(|| SettingsError::Required {
        name: shape.role(SettingRole::Address).unwrap_or("address").into(),
        connector: connector.to_string(),
    })?;
    Ok(CheckedConnection {
        account: role(SettingRole::Account),
        display: role(SettingRole::Display).unwrap_or_else(|| address.clone()),
        address,
        settings,
    })
}

/// Check an endpoint owner's settings and secrets; the settings to store.
pub fn check_endpoint(
    connector: &str,
    shape: &ConnectionShape,
    settings: &BTreeMap<String, String>,
    secrets: &[(String, Secret)],
) -> Result<BTreeMap<String, String>, SettingsError> {
    let settings = check_settings(connector, shape, SetBy::Endpoint, settings)?;
    check_secrets(connector, shape, SecretOn::Endpoint, secrets)?;
    Ok(settings)
}

/// Where the host reaches each connector's provider, and the operator's settings for it.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    urls: HashMap<String, String>,
    operator: HashMap<String, BTreeMap<String, String>>,
}

impl Providers {
    /// Base URLs by connector, and the operator's settings by connector.
    pub fn new(
        urls: HashMap<String, String>,
        operator: HashMap<String, BTreeMap<String, String>>,
    ) -> Providers {
        Providers { urls, operator }
    }

    /// A connector's configured provider base URL, if any.
    pub fn base_url(&self, connector: &str) -> Option<&str> {
        self.urls.get(connector).map(String::as_str)
    }

    /// Every configured base URL (for egress's allow-list).
    pub fn urls(&self) -> &HashMap<String, String> {
        &self.urls
    }

    /// The operator's value of a connector setting.
    pub fn operator_setting(&self, connector: &str, name: &str) -> Option<&str> {
        self.operator
            .get(connector)
            .and_then(|s| s.get(name))
            .map(String::as_str)
    }

    /// What a plugin sees of a connection: the tenant settings its connector declares (anything
    /// else stored is dropped), then the operator's settings, which no stored value can replace.
    pub fn connection_info(
        &self,
        c: &ConnectionRecord,
        shape: &ConnectionShape,
        public_url: &str,
    ) -> ConnectionInfo {
        let stored: BTreeMap<String, String> =
            serde_json::from_str(&c.settings).unwrap_or_default();
        let mut settings: BTreeMap<String, String> = stored
            .into_iter()
            .filter(|(k, _)| shape.setting(k).is_some_and(|s| s.set_by == SetBy::Tenant))
            .collect();
        if let Some(op) = self.operator.get(&c.connector) {
            for (k, v) in op {
                if shape
                    .setting(k)
                    .is_some_and(|s| s.set_by == SetBy::Operator)
                {
                    settings.insert(k.clone(), v.clone());
                }
            }
        }
        ConnectionInfo {
            connection_id: c.id.clone(),
            channel_address: c.channel_address.clone(),
            account_id: c.account_id.clone(),
            api_base_url: self.base_url(&c.connector).unwrap_or_default().to_string(),
            settings: settings.into_iter().collect(),
            callback_url: Some(webhook_url(public_url, &c.endpoint_id)),
        }
    }
}

/// The public URL a provider calls for `endpoint_id`.
pub fn webhook_url(public_url: &str, endpoint_id: &str) -> String {
    format!("{public_url}/hooks/{endpoint_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::manifest::{SecretSpec, SettingSpec};

    fn meta() -> ConnectionShape {
        let s = |name: &str, pattern: &str, required, set_by, role| SettingSpec {
            name: name.into(),
            pattern: pattern.into(),
            required,
            set_by,
            role,
        };
        ConnectionShape {
            settings: vec![
                s(
                    "phone_number_id",
                    "[0-9]{1,32}",
                    true,
                    SetBy::Tenant,
                    Some(SettingRole::Address),
                ),
                s(
                    "waba_id",
                    "[0-9]{1,32}",
                    true,
                    SetBy::Tenant,
                    Some(SettingRole::Account),
                ),
                s(
                    "graph_version",
                    r"v[0-9]{1,3}\.[0-9]{1,3}",
                    false,
                    SetBy::Operator,
                    None,
                ),
                s("app_id", "[0-9]{1,32}", false, SetBy::Endpoint, None),
            ],
            secrets: vec![
                SecretSpec {
                    name: "access_token".into(),
                    required: true,
                    on: SecretOn::Connection,
                },
                SecretSpec {
                    name: "app_secret".into(),
                    required: false,
                    on: SecretOn::Endpoint,
                },
            ],
            own_endpoint: false,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn token() -> Vec<(String, Secret)> {
        vec![("access_token".into(), Secret::new(b"t".to_vec()))]
    }

    #[test]
    fn a_tenant_cannot_set_the_graph_version_or_unknown_keys() {
        let hijack = map(&[
            ("phone_number_id", "222"),
            ("waba_id", "1"),
            ("graph_version", "v26.0/111#"),
        ]);
        let e = check_connection("meta-cloud", &meta(), &hijack, &token()).expect_err("refused");
        assert_eq!(e.code(), "setting_not_allowed");
        let extra = map(&[
            ("phone_number_id", "222"),
            ("waba_id", "1"),
            ("api_base_url", "https://evil"),
        ]);
        let e = check_connection("meta-cloud", &meta(), &extra, &token()).expect_err("refused");
        assert_eq!(e.code(), "unknown_setting");
        let e = check_connection(
            "meta-cloud",
            &meta(),
            &map(&[("phone_number_id", "222/../111"), ("waba_id", "1")]),
            &token(),
        )
        .expect_err("refused");
        assert_eq!(e.code(), "invalid_settings");
    }

    #[test]
    fn secrets_must_be_declared_on_their_side() {
        let ok = map(&[("phone_number_id", " 222 "), ("waba_id", "1")]);
        let checked = check_connection("meta-cloud", &meta(), &ok, &token()).expect("ok");
        assert_eq!(checked.address, "222");
        assert_eq!(checked.account.as_deref(), Some("1"));
        let on_wrong_side = vec![("app_secret".into(), Secret::new(b"s".to_vec()))];
        let e = check_connection("meta-cloud", &meta(), &ok, &on_wrong_side).expect_err("refused");
        assert_eq!(e.code(), "invalid_secrets");
        let e = check_connection("meta-cloud", &meta(), &ok, &[]).expect_err("refused");
        assert!(matches!(e, SettingsError::SecretRequired { .. }));
        let endpoint = check_endpoint("meta-cloud", &meta(), &map(&[("app_id", "9")]), &[]);
        assert_eq!(endpoint, Ok(map(&[("app_id", "9")])));
        let e = check_endpoint("meta-cloud", &meta(), &map(&[("waba_id", "9")]), &[])
            .expect_err("refused");
        assert_eq!(e.code(), "setting_not_allowed");
    }

    #[test]
    fn the_operator_setting_wins_over_a_stored_value() {
        let providers = Providers::new(
            HashMap::from([("meta-cloud".into(), "http://127.0.0.1:1".into())]),
            HashMap::from([("meta-cloud".into(), map(&[("graph_version", "v26.0")]))]),
        );
        let record = ConnectionRecord {
            id: "con_1".into(),
            tenant_id: "ten_1".into(),
            connector: "meta-cloud".into(),
            endpoint_id: "end_1".into(),
            channel_address: "222".into(),
            account_id: Some("1".into()),
            display_name: None,
            // A row stored before settings were checked.
            settings: r#"{"graph_version":"v26.0/111#","phone_number_id":"222","junk":"x"}"#.into(),
            status: "live".into(),
            status_reason: None,
            active: 1,
            token_expires_at: None,
            created_at: 0,
            updated_at: 0,
            disconnected_at: None,
        };
        let info = providers.connection_info(&record, &meta(), "https://hooks.example");
        assert_eq!(
            info.settings,
            vec![
                ("graph_version".to_string(), "v26.0".to_string()),
                ("phone_number_id".to_string(), "222".to_string()),
            ]
        );
    }
}
