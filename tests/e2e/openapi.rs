//! `GET /api/v1/openapi.json`: served without a token, OpenAPI 3.x, and documents every route
//! of the router (the list below mirrors `host/src/http/mod.rs`; a route added there without
//! documentation must be added here and then fails until it is documented).

use reqwest::Method;
use serde_json::Value;

use crate::api::{Db, Host, graph_ok};
use crate::fake::Fake;

/// Every (method, path) the router serves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/session"),
    (
        "patch",
        "/api/v1/tenants/{tenant}/conversations/{conversation}",
    ),
    (
        "delete",
        "/api/v1/tenants/{tenant}/conversations/{conversation}",
    ),
    ("delete", "/api/v1/tenants/{tenant}"),
    ("patch", "/api/v1/tenants/{tenant}"),
    ("get", "/api/v1/tenants/{tenant}/events"),
    ("get", "/api/v1/tenants/{tenant}/notifications"),
    ("post", "/api/v1/tenants/{tenant}/notifications/read"),
    (
        "post",
        "/api/v1/tenants/{tenant}/notifications/{notification}/read",
    ),
    (
        "get",
        "/api/v1/tenants/{tenant}/conversations/{conversation}",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/conversations/{conversation}/messages",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/conversations/{conversation}/media",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/conversations/{conversation}/insights",
    ),
    (
        "get",
        "/api/v1/tenants/{tenant}/connections/{connection}/access",
    ),
    (
        "put",
        "/api/v1/tenants/{tenant}/connections/{connection}/access",
    ),
    ("get", "/api/v1/tenants/{tenant}/access-requests"),
    ("post", "/api/v1/tenants/{tenant}/access-requests/{request}"),
    ("get", "/api/v1/tenants/{tenant}/export"),
    ("delete", "/api/v1/tenants/{tenant}/contacts/{contact}"),
    ("post", "/api/v1/plans"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/plans/{plan}"),
    ("put", "/api/v1/plans/{plan}"),
    ("delete", "/api/v1/plans/{plan}"),
    ("put", "/api/v1/partners/{partner}/plan-ceiling"),
    ("get", "/api/v1/tenants/{tenant}/plan"),
    ("put", "/api/v1/tenants/{tenant}/plan"),
    ("get", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/password-resets"),
    ("post", "/api/v1/password-resets/confirm"),
    ("post", "/api/v1/invitations/accept"),
    ("get", "/api/v1/tenants/{tenant}/people"),
    ("patch", "/api/v1/tenants/{tenant}/people/{user}"),
    ("delete", "/api/v1/tenants/{tenant}/people/{user}"),
    ("get", "/api/v1/tenants/{tenant}/invitations"),
    ("post", "/api/v1/tenants/{tenant}/invitations"),
    (
        "delete",
        "/api/v1/tenants/{tenant}/invitations/{invitation}",
    ),
    ("get", "/api/v1/partners/{partner}/people"),
    ("patch", "/api/v1/partners/{partner}/people/{user}"),
    ("delete", "/api/v1/partners/{partner}/people/{user}"),
    ("get", "/api/v1/partners/{partner}/invitations"),
    ("post", "/api/v1/partners/{partner}/invitations"),
    (
        "delete",
        "/api/v1/partners/{partner}/invitations/{invitation}",
    ),
    ("post", "/api/v1/partners"),
    ("get", "/api/v1/partners"),
    ("post", "/api/v1/operator/session"),
    ("get", "/api/v1/operator/session"),
    ("delete", "/api/v1/operator/session"),
    ("get", "/api/v1/partners/{partner}/report"),
    ("post", "/api/v1/endpoints"),
    ("put", "/api/v1/endpoints/{endpoint}/plugin"),
    ("post", "/api/v1/endpoints/{endpoint}/self-test"),
    ("put", "/api/v1/partners/{partner}/namespace"),
    ("post", "/api/v1/plugins"),
    ("get", "/api/v1/plugins"),
    ("get", "/api/v1/plugins/{name}"),
    ("get", "/api/v1/plugins/{name}/{version}"),
    ("delete", "/api/v1/plugins/{name}/{version}"),
    ("post", "/api/v1/plugins/{name}/promote"),
    ("post", "/api/v1/plugins/{name}/rollback"),
    ("put", "/api/v1/plugins/{name}/{version}/grants"),
    ("put", "/api/v1/plugins/{name}/failure-policy"),
    ("post", "/api/v1/publisher-keys"),
    ("get", "/api/v1/publisher-keys"),
    ("delete", "/api/v1/publisher-keys/{key}"),
    ("get", "/api/v1/jobs/dead"),
    ("post", "/api/v1/jobs/{job}/replay"),
    ("post", "/api/v1/tenants"),
    ("get", "/api/v1/tenants"),
    ("get", "/api/v1/tenants/{tenant}"),
    ("get", "/api/v1/partners/{partner}/keys"),
    ("post", "/api/v1/partners/{partner}/keys"),
    ("delete", "/api/v1/partners/{partner}/keys/{key}"),
    ("post", "/api/v1/partners/{partner}/keys/{key}/rotate"),
    ("get", "/api/v1/tenants/{tenant}/keys"),
    ("post", "/api/v1/tenants/{tenant}/keys"),
    ("delete", "/api/v1/tenants/{tenant}/keys/{key}"),
    ("post", "/api/v1/tenants/{tenant}/suspend"),
    ("post", "/api/v1/tenants/{tenant}/reinstate"),
    ("get", "/api/v1/tenants/{tenant}/policy"),
    ("put", "/api/v1/tenants/{tenant}/policy"),
    ("post", "/api/v1/tenants/{tenant}/connections"),
    ("get", "/api/v1/tenants/{tenant}/connections"),
    ("get", "/api/v1/tenants/{tenant}/channels"),
    ("get", "/api/v1/tenants/{tenant}/connections/{connection}"),
    ("patch", "/api/v1/tenants/{tenant}/connections/{connection}"),
    (
        "delete",
        "/api/v1/tenants/{tenant}/connections/{connection}",
    ),
    ("post", "/api/v1/tenants/{tenant}/connect/meta"),
    ("post", "/api/v1/tenants/{tenant}/connect/twilio/senders"),
    ("get", "/api/v1/tenants/{tenant}/connect/meta/{session}"),
    (
        "post",
        "/api/v1/tenants/{tenant}/connect/meta/{session}/pick",
    ),
    ("get", "/connect/meta/start"),
    ("get", "/connect/meta/callback"),
    ("post", "/connect/meta/confirm"),
    (
        "get",
        "/api/v1/tenants/{tenant}/connections/{connection}/templates",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/connections/{connection}/templates/sync",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/connections/{connection}/verify",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/connections/{connection}/self-test",
    ),
    (
        "post",
        "/api/v1/tenants/{tenant}/connections/{connection}/test",
    ),
    ("get", "/api/v1/tenants/{tenant}/media/{media}"),
    ("get", "/api/v1/tenants/{tenant}/conversations"),
    (
        "get",
        "/api/v1/tenants/{tenant}/conversations/{conversation}/messages",
    ),
    ("get", "/api/v1/tenants/{tenant}/consent"),
    ("post", "/api/v1/tenants/{tenant}/consent"),
    ("get", "/api/v1/tenants/{tenant}/consent/export"),
];

/// Follow a `$ref` to `#/components/schemas/…`, or return the schema itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let (status, doc) = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200, "{doc}");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");

    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, path) in ROUTES {
        if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(missing.is_empty(), "undocumented routes: {missing:?}");
    // Nothing documented that the router does not serve.
    let documented: usize = paths
        .values()
        .map(|p| {
            p.as_object().map_or(0, |o| {
                o.keys()
                    .filter(|k| ROUTES.iter().any(|(m, _)| m == k))
                    .count()
            })
        })
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );

    // Every /api/v1 route's security is what its access rule admits: a key or a session,
    // a session only, or nothing.
    for scheme in ["bearer", "session"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{}",
            doc["components"]
        );
    }
    for (method, path) in ROUTES {
        let op = &paths[*path][*method];
        let security = op["security"].to_string();
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let rule = switchyard::http::access::rule_of(
            &method.to_uppercase().parse().expect("method"),
            path,
        )
        .expect("an access rule");
        let expected = match rule.who {
            switchyard::http::access::Who::Public => "[{}]",
            switchyard::http::access::Who::Person => r#"[{"session":[]}]"#,
            switchyard::http::access::Who::Callers { .. } => r#"[{"bearer":[]},{"session":[]}]"#,
        };
        assert_eq!(security, expected, "{method} {path}");
    }

    // The error shape.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    let detail = &error["properties"]["error"];
    let detail = resolve(&doc, detail);
    assert!(detail["properties"]["code"].is_object(), "{error}");
    assert!(detail["properties"]["message"].is_object(), "{error}");

    // The connect body: secrets (a map of strings) and consent.
    let connect = &paths["/api/v1/tenants/{tenant}/connections"]["post"];
    let schema = resolve(
        &doc,
        &connect["requestBody"]["content"]["application/json"]["schema"],
    );
    let text = schema.to_string();
    assert!(text.contains("secrets"), "{text}");
    assert!(text.contains("consent"), "{text}");
    assert_eq!(
        schema["properties"]["secrets"]["additionalProperties"]["type"], "string",
        "{text}"
    );
    for status in ["201", "401", "403", "404", "409", "422", "502"] {
        assert!(
            connect["responses"][status].is_object(),
            "POST connections: no {status}"
        );
    }

    // Keys, suspension and the browser-bound Meta flow document their statuses and codes.
    for (method, path, statuses) in [
        (
            "get",
            "/api/v1/tenants/{tenant}/keys",
            &["200", "401", "403", "404"][..],
        ),
        (
            "delete",
            "/api/v1/tenants/{tenant}/keys/{key}",
            &["200", "401", "403", "404"],
        ),
        (
            "post",
            "/api/v1/partners/{partner}/keys/{key}/rotate",
            &["201", "401", "403", "404", "409", "422"],
        ),
        (
            "post",
            "/api/v1/tenants/{tenant}/suspend",
            &["200", "401", "403", "404"],
        ),
        ("get", "/connect/meta/start", &["303", "400"]),
        ("get", "/connect/meta/callback", &["200", "303", "400"]),
        ("post", "/connect/meta/confirm", &["303", "400"]),
    ] {
        for status in statuses {
            assert!(
                paths[path][method]["responses"][*status].is_object(),
                "{method} {path}: no {status}"
            );
        }
    }
    let unauthorized =
        paths["/api/v1/tenants/{tenant}/keys"]["get"]["responses"]["401"].to_string();
    assert!(
        unauthorized.contains("key_revoked") && unauthorized.contains("key_expired"),
        "{unauthorized}"
    );
    let forbidden = paths["/api/v1/tenants/{tenant}"]["get"]["responses"]["403"].to_string();
    assert!(forbidden.contains("tenant_suspended"), "{forbidden}");
    let key = &doc["components"]["schemas"]["KeyInfo"]["properties"];
    for field in [
        "id",
        "label",
        "role",
        "created_at",
        "expires_at",
        "revoked_at",
    ] {
        assert!(key[field].is_object(), "KeyInfo has no {field}: {key}");
    }
    for field in ["secret_hash", "api_key", "token"] {
        assert!(key[field].is_null(), "KeyInfo shows {field}: {key}");
    }
}
