//! `GET /api/v1/openapi.json`: served without a token, OpenAPI 3.x, and documents exactly the
//! routes the router serves: the access table its middleware enforces (a route without a rule
//! is refused), and each documented route is called to prove the router has it.

use reqwest::Method;
use serde_json::Value;

use crate::api::{Db, Host, graph_ok};
use crate::fake::Fake;

/// The routes outside `/api/v1` the document describes (health, metrics, Meta's browser flow).
const OUTSIDE_API: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/connect/meta/start"),
    ("get", "/connect/meta/callback"),
    ("post", "/connect/meta/confirm"),
];

/// Every (method, path) the router serves: under `/api/v1`, the access table the router's own
/// middleware enforces on every request (a route without a rule is refused, so a served route
/// is in it); outside, [`OUTSIDE_API`]. The test below also calls each one, so a rule or a
/// documented path the router does not serve fails it too.
fn routes() -> Vec<(String, String)> {
    switchyard::http::access::RULES
        .iter()
        .map(|r| (r.method.to_lowercase(), r.path.to_string()))
        .chain(
            OUTSIDE_API
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string())),
        )
        .collect()
}

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
    let routes = routes();
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if paths
            .get(path.as_str())
            .and_then(|p| p.get(method.as_str()))
            .is_none()
        {
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
                    .filter(|k| routes.iter().any(|(m, _)| m == *k))
                    .count()
            })
        })
        .sum();
    assert_eq!(
        documented,
        routes.len(),
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
    for (method, path) in &routes {
        let (method, path) = (method.as_str(), path.as_str());
        let op = &paths[path][method];
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

    // The router serves every one: called with the operator's token and placeholder ids, none
    // gets the router's own answer for a path or method it does not have (handlers answer
    // their own 4xx; an event stream that stays open counts as served).
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (method, path) in &routes {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let answer = client
            .request(
                method.to_uppercase().parse().expect("method"),
                format!("{}{concrete}", h.base),
            )
            .bearer_auth(crate::api::OPERATOR)
            .send()
            .await;
        let Ok(answer) = answer else { continue };
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap_or_default();
        let fallback = status == 405
            || (status == 404 && (body.is_empty() || body.contains("route not found")));
        assert!(!fallback, "{method} {path} is not routed: {status} {body}");
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
