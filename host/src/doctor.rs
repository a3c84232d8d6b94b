//! `switchyard doctor`: the set-up checks an operator runs with `serve`'s settings, each with
//! what to fix. Offline: the database (answers, migrations, on PostgreSQL the app role), the
//! operator token and master keys (and secrets sealed under a key version that is not
//! configured), the public URL, the Graph API version and mail. Against the running host at the
//! listen address: readiness, each plugin's load errors, signature and ungranted egress, and a
//! route self-test of every endpoint.

use std::fmt::Write as _;

use serde_json::Value;

use crate::config::Config;
use crate::store::{Backend, Mode, Store};
use crate::tenancy::Scope;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but worth fixing.
    Warn,
    /// Broken: providers' webhooks, sends or start-up will fail.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when fine).
    pub fix: String,
}

fn check(name: &str, level: Level, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        level,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Every check's outcome, in order.
#[derive(Debug, Default)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.level != Level::Fail)
    }

    /// The report as lines for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {:<16} {}", c.name, c.detail);
            if !c.fix.is_empty() {
                let _ = writeln!(out, "      {:<16} fix: {}", "", c.fix);
            }
        }
        let (warn, fail) = self.checks.iter().fold((0, 0), |(w, f), c| match c.level {
            Level::Warn => (w + 1, f),
            Level::Fail => (w, f + 1),
            Level::Ok => (w, f),
        });
        let _ = writeln!(
            out,
            "{} checks: {} failed, {} to look at",
            self.checks.len(),
            fail,
            warn
        );
        out
    }
}

/// Run every check with `config` (the settings `serve` would use).
pub async fn run(config: &Config) -> Report {
    let mut report = Report::default();
    let keys = credentials(config, &mut report);
    let store = database(config, &mut report).await;
    if let (Some(store), Some(keys)) = (&store, &keys) {
        sealed_versions(store, keys, &mut report).await;
    }
    report.checks.push(
        match crate::connector::public_url_warning(&config.public_url) {
            Some(w) => check(
                "public URL",
                Level::Fail,
                w,
                "set SWITCHYARD_PUBLIC_URL to the https address providers reach this host at",
            ),
            None => check("public URL", Level::Ok, config.public_url.clone(), ""),
        },
    );
    report.checks.push(
        match crate::onboarding::meta::version_warning(
            &config.meta_graph_version,
            crate::store::now_ms(),
        ) {
            Some(w) => check(
                "Graph version",
                Level::Warn,
                w,
                "set SWITCHYARD_META_GRAPH_VERSION to a supported version (docs/operating.md lists them)",
            ),
            None => check("Graph version", Level::Ok, config.meta_graph_version.clone(), ""),
        },
    );
    report.checks.push(match &config.smtp_url {
        Some(_) => check("mail", Level::Ok, "SMTP is configured", ""),
        None => check(
            "mail",
            Level::Warn,
            "no SWITCHYARD_SMTP_URL: invitations and password resets are written as .eml files",
            "set SWITCHYARD_SMTP_URL (smtp://user:password@host:587?tls=required)",
        ),
    });
    if let (Some(store), Some((token, _))) = (&store, &keys) {
        running_host(config, store, token, &mut report).await;
    }
    report
}

/// The operator token and master keys, as `serve` would take them.
fn credentials(
    config: &Config,
    report: &mut Report,
) -> Option<(String, crate::vault::crypto::MasterKeys)> {
    let keys = match config.keys.load() {
        Ok(k) => k,
        Err(e) => {
            report.checks.push(check(
                "master key",
                Level::Fail,
                format!("{e:#}"),
                "set SWITCHYARD_MASTER_KEY (32 bytes, base64) or SWITCHYARD_MASTER_KEY_FILE",
            ));
            return None;
        }
    };
    let demo_files = config.data_dir.join(crate::demo::KEY_FILE).exists()
        && config.data_dir.join(crate::demo::TOKEN_FILE).exists();
    match (&config.operator_token, keys) {
        (Some(token), Some(keys)) => {
            report.checks.push(check(
                "master key",
                Level::Ok,
                format!("current version {}", keys.current_version()),
                "",
            ));
            report
                .checks
                .push(check("operator token", Level::Ok, "set", ""));
            Some((String::from_utf8_lossy(token.expose()).into_owned(), keys))
        }
        (None, None) if crate::demo::demo_allowed(config) && !demo_files => {
            report.checks.push(check(
                "master key",
                Level::Warn,
                format!(
                    "demo mode: serve will generate the operator token and master key in {} at its first start",
                    config.data_dir.display()
                ),
                "for production set SWITCHYARD_OPERATOR_TOKEN and SWITCHYARD_MASTER_KEY from a secret store",
            ));
            None
        }
        (None, None) if crate::demo::demo_allowed(config) => {
            report.checks.push(check(
                "master key",
                Level::Warn,
                format!(
                    "demo mode: the operator token and master key are files in {}",
                    config.data_dir.display()
                ),
                "for production set SWITCHYARD_OPERATOR_TOKEN and SWITCHYARD_MASTER_KEY from a secret store",
            ));
            crate::demo::credentials(config)
                .ok()
                .map(|(t, k)| (String::from_utf8_lossy(t.expose()).into_owned(), k))
        }
        (token, keys) => {
            if keys.is_none() {
                report.checks.push(check(
                    "master key",
                    Level::Fail,
                    "not set",
                    "set SWITCHYARD_MASTER_KEY (32 bytes, base64) or SWITCHYARD_MASTER_KEY_FILE",
                ));
            }
            if token.is_none() {
                report.checks.push(check(
                    "operator token",
                    Level::Fail,
                    "not set",
                    "set SWITCHYARD_OPERATOR_TOKEN (a long random string)",
                ));
            }
            None
        }
    }
}

/// The database answers, its migrations are applied, and on PostgreSQL row-level security
/// holds the app role.
async fn database(config: &Config, report: &mut Report) -> Option<Store> {
    // A SQLite file that does not exist yet is serve's to create, not doctor's.
    if crate::store::backend_of(&config.database_url) == Some(Backend::Sqlite) {
        use std::str::FromStr as _;
        let file = sqlx::sqlite::SqliteConnectOptions::from_str(&config.database_url)
            .map(|o| o.get_filename().to_path_buf());
        if let Ok(file) = file
            && !file.exists()
            && !config.database_url.contains("memory")
        {
            report.checks.push(check(
                "database",
                Level::Warn,
                format!("{} does not exist yet", file.display()),
                "serve creates it and applies the migrations at its first start",
            ));
            return None;
        }
    }
    let store = match Store::open_with(&config.database_url, 2).await {
        Ok(s) => s,
        Err(e) => {
            report.checks.push(check(
                "database",
                Level::Fail,
                format!("cannot open it: {e:#}"),
                "check SWITCHYARD_DATABASE_URL and that the server runs",
            ));
            return None;
        }
    };
    match store.migrations().await {
        Ok((applied, known)) if applied >= known => report.checks.push(check(
            "database",
            Level::Ok,
            format!(
                "{:?}, {applied} of {known} migrations applied",
                store.backend()
            ),
            "",
        )),
        Ok((applied, known)) => report.checks.push(check(
            "database",
            if store.backend() == Backend::Sqlite {
                Level::Warn
            } else {
                Level::Fail
            },
            format!("{applied} of {known} migrations applied"),
            if store.backend() == Backend::Sqlite {
                "serve applies them at start"
            } else {
                "run `switchyard migrate` with SWITCHYARD_DATABASE_OWNER_URL"
            },
        )),
        Err(e) => report.checks.push(check(
            "database",
            Level::Fail,
            format!("cannot read its migrations: {e:#}"),
            "check SWITCHYARD_DATABASE_URL",
        )),
    }
    match store.role_check().await {
        Ok(Some(role)) => report.checks.push(match role.refusal() {
            Some(refusal) => check(
                "database role",
                Level::Fail,
                refusal,
                "connect as a role that owns no table and has no BYPASSRLS; migrate with SWITCHYARD_DATABASE_OWNER_URL",
            ),
            None => check(
                "database role",
                Level::Ok,
                "row-level security holds the app role",
                "",
            ),
        }),
        Ok(None) => {}
        Err(e) => report.checks.push(check(
            "database role",
            Level::Fail,
            format!("cannot check it: {e}"),
            "",
        )),
    }
    Some(store)
}

/// Secrets sealed under a master-key version this configuration does not have can never be
/// opened; ones under an older version still configured want `switchyard vault rotate`.
async fn sealed_versions(
    store: &Store,
    keys: &(String, crate::vault::crypto::MasterKeys),
    report: &mut Report,
) {
    let keys = &keys.1;
    let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
    let mut scopes = vec![Scope::Host];
    match crate::tenancy::auth::every_tenant(store).await {
        Ok(t) => scopes.extend(t.into_iter().map(Scope::Tenant)),
        Err(e) => {
            report
                .checks
                .push(check("sealed secrets", Level::Fail, e.to_string(), ""));
            return;
        }
    }
    for scope in scopes {
        let read = async {
            let mut tx = store.begin(scope, Mode::Read).await?;
            let v = tx.key_versions().await?;
            tx.commit().await?;
            Ok::<_, crate::store::StoreError>(v)
        };
        match read.await {
            Ok(v) => {
                for (version, n) in v {
                    *counts.entry(version).or_default() += n;
                }
            }
            Err(e) => {
                report
                    .checks
                    .push(check("sealed secrets", Level::Fail, e.to_string(), ""));
                return;
            }
        }
    }
    let current = i64::from(keys.current_version());
    let missing: Vec<String> = counts
        .iter()
        .filter(|(v, _)| u32::try_from(**v).map_or(true, |v| !keys.has_version(v)))
        .map(|(v, n)| format!("{n} under version {v}"))
        .collect();
    let older: i64 = counts
        .iter()
        .filter(|(v, _)| **v < current)
        .map(|(_, n)| n)
        .sum();
    let total: i64 = counts.values().sum();
    report.checks.push(if !missing.is_empty() {
        check(
            "sealed secrets",
            Level::Fail,
            format!(
                "data keys sealed under a master-key version not configured: {}",
                missing.join(", ")
            ),
            "add that version's key to SWITCHYARD_MASTER_KEY_PREVIOUS (or the key file)",
        )
    } else if older > 0 {
        check(
            "sealed secrets",
            Level::Warn,
            format!("{older} of {total} data keys are sealed under an older master-key version"),
            "run `switchyard vault rotate` to re-seal them under the current version",
        )
    } else {
        check(
            "sealed secrets",
            Level::Ok,
            format!("{total} data keys, all under version {current}"),
            "",
        )
    });
}

/// The checks that need the running host: readiness, plugins, and each endpoint's route.
async fn running_host(config: &Config, store: &Store, token: &str, report: &mut Report) {
    let base = format!("http://{}", config.listen);
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            report
                .checks
                .push(check("host", Level::Fail, e.to_string(), ""));
            return;
        }
    };
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
    };
    let ready = match get("/readyz").await {
        Ok(r) => json(r).await,
        Err(_) => {
            report.checks.push(check(
                "host",
                Level::Warn,
                format!("no host answers at {base}: plugin and route checks skipped"),
                "start `switchyard serve` with the same settings and run doctor again",
            ));
            return;
        }
    };
    let problems: Vec<String> = ready["problems"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    report.checks.push(if ready["status"] == "ready" {
        check("host", Level::Ok, format!("{base} is ready"), "")
    } else {
        check(
            "host",
            Level::Fail,
            format!("{base} is not ready: {}", problems.join("; ")),
            "see the host's log for the task or plugin named",
        )
    });
    match get("/api/v1/plugins").await {
        Ok(r) if r.status().is_success() => {
            let plugins = json(r).await;
            report.checks.extend(plugin_checks(&plugins));
        }
        Ok(r) => report.checks.push(check(
            "plugins",
            Level::Fail,
            format!("the host answered {} to the operator token", r.status()),
            "run doctor with the host's SWITCHYARD_OPERATOR_TOKEN",
        )),
        Err(e) => report
            .checks
            .push(check("plugins", Level::Fail, e.to_string(), "")),
    }
    let endpoints = async {
        let mut tx = store.begin(Scope::Host, Mode::Read).await?;
        let ids = tx.endpoint_ids().await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(ids)
    };
    let ids = match endpoints.await {
        Ok(ids) => ids,
        Err(e) => {
            report
                .checks
                .push(check("routes", Level::Fail, e.to_string(), ""));
            return;
        }
    };
    for id in ids {
        let probe = client
            .post(format!("{base}/api/v1/endpoints/{id}/self-test"))
            .bearer_auth(token)
            .send()
            .await;
        let got: Value = match probe {
            Ok(r) => json(r).await,
            Err(e) => Value::String(e.to_string()),
        };
        let name = format!("route {id}");
        report.checks.push(if got["reached"] == true {
            check(&name, Level::Ok, format!("{} reaches ingress", got["url"].as_str().unwrap_or_default()), "")
        } else {
            let why: Vec<String> = got["problems"]
                .as_array()
                .map(|p| p.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_else(|| vec![got.to_string()]);
            check(&name, Level::Fail, why.join("; "), "make the public URL's /hooks/ path reach this host (see docs/operating.md, Route self-test)")
        });
    }
}

/// A response's JSON body, or `null`.
async fn json(r: reqwest::Response) -> Value {
    let body = r.bytes().await.unwrap_or_default();
    serde_json::from_slice(&body).unwrap_or_default()
}

/// Load errors, untrusted signatures and egress hosts asked for but not granted, per plugin
/// version calls can reach.
fn plugin_checks(plugins: &Value) -> Vec<Check> {
    let mut out = Vec::new();
    let list = plugins["data"].as_array().cloned().unwrap_or_default();
    for p in &list {
        let name = p["name"].as_str().unwrap_or_default();
        for v in p["versions"].as_array().into_iter().flatten() {
            let version = v["version"].as_str().unwrap_or_default();
            let reachable =
                p["promoted"].as_str() == Some(version) || v["pinned_by"].as_u64().unwrap_or(0) > 0;
            if !reachable {
                continue;
            }
            let label = format!("plugin {name}@{version}");
            if let Some(e) = v["load_error"].as_str() {
                out.push(check(
                    &label,
                    Level::Fail,
                    format!("not loaded: {e}"),
                    "fix the component or roll back to a version that loads",
                ));
                continue;
            }
            let strings = |k: &str| -> Vec<String> {
                v[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let granted = strings("egress_granted");
            let ungranted: Vec<String> = strings("egress_requested")
                .into_iter()
                .filter(|h| !granted.contains(h))
                .collect();
            if !ungranted.is_empty() {
                out.push(check(
                    &label,
                    Level::Warn,
                    format!(
                        "asks to reach {} but is not granted it",
                        ungranted.join(", ")
                    ),
                    format!(
                        "grant it with PUT /api/v1/plugins/{name}/{version}/grants if it needs them"
                    ),
                ));
            } else if v["signature"]["state"]
                .as_str()
                .is_some_and(|s| s != "trusted" && s != "bundled")
                && v["source"] == "upload"
            {
                out.push(check(
                    &label,
                    Level::Warn,
                    format!("signature is {}", v["signature"]["state"].as_str().unwrap_or_default()),
                    "register the publisher's key (POST /api/v1/publisher-keys) or upload a signed build",
                ));
            }
        }
    }
    if out.is_empty() {
        out.push(check(
            "plugins",
            Level::Ok,
            format!(
                "{} plugins, every reachable version loaded and granted",
                list.len()
            ),
            "",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_reachable_versions_are_judged_and_each_problem_is_named() {
        let plugins = json!({"data": [
            {"name": "chaos", "promoted": "2.0.0", "versions": [
                {"version": "1.0.0", "load_error": "old", "pinned_by": 0, "egress_requested": [], "egress_granted": []},
                {"version": "2.0.0", "load_error": "does not compile", "pinned_by": 0}
            ]},
            {"name": "crm", "promoted": "1.0.0", "versions": [
                {"version": "1.0.0", "pinned_by": 0, "source": "upload",
                 "egress_requested": ["api.crm.example", "cdn.crm.example"], "egress_granted": ["api.crm.example"],
                 "signature": {"state": "trusted"}}
            ]},
            {"name": "echo", "promoted": "0.1.0", "versions": [
                {"version": "0.1.0", "pinned_by": 0, "source": "bundled", "egress_requested": [], "egress_granted": [],
                 "signature": {"state": "bundled"}}
            ]}
        ]});
        let checks = plugin_checks(&plugins);
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(
            (checks[0].name.as_str(), checks[0].level),
            ("plugin chaos@2.0.0", Level::Fail)
        );
        assert!(checks[0].detail.contains("does not compile"));
        assert_eq!(
            (checks[1].name.as_str(), checks[1].level),
            ("plugin crm@1.0.0", Level::Warn)
        );
        assert!(
            checks[1].detail.contains("cdn.crm.example") && !checks[1].detail.contains("api.crm")
        );
        let fine = plugin_checks(&json!({"data": [plugins["data"][2].clone()]}));
        assert_eq!(fine[0].level, Level::Ok);
    }

    #[test]
    fn a_failed_check_fails_the_report_and_fixes_are_printed() {
        let report = Report {
            checks: vec![
                check(
                    "database",
                    Level::Ok,
                    "Sqlite, 27 of 27 migrations applied",
                    "",
                ),
                check(
                    "public URL",
                    Level::Fail,
                    "http://127.0.0.1:8080 is not reachable",
                    "set SWITCHYARD_PUBLIC_URL",
                ),
            ],
        };
        assert!(!report.passed());
        let text = report.render();
        assert!(text.contains("FAIL  public URL"), "{text}");
        assert!(text.contains("fix: set SWITCHYARD_PUBLIC_URL"), "{text}");
        assert!(
            text.ends_with("2 checks: 1 failed, 0 to look at\n"),
            "{text}"
        );
    }
}
