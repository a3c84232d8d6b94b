//! People against the real host: invitations by mail (a local SMTP sink), sign-in with a session
//! cookie and CSRF, lock-out, password reset, roles of people; and the access table of
//! docs/security.md walked for every role on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, OPERATOR, assert_error, graph_ok};
use crate::fake::Fake;
use crate::pg::PgDb;
use crate::smtp::Sink;

/// A browser-like client: a session cookie and its CSRF token.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(h: &Host) -> Browser {
        Browser {
            base: h.base.clone(),
            client: reqwest::Client::new(),
            cookie: None,
            csrf: None,
        }
    }

    /// Call with the cookie (and the CSRF token when `csrf`); `(status, body, Set-Cookie)`.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (u16, Value, Option<String>) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("switchyard_session={c}"));
        }
        if csrf && let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().expect("ascii").to_string());
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, set_cookie)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, v, _) = self.call_with(method, path, body, true).await;
        (s, v)
    }

    /// Keep the session a response started.
    pub fn keep(&mut self, got: &(u16, Value, Option<String>)) {
        assert_eq!(got.0, 201, "{}", got.1);
        let cookie = got.2.as_deref().expect("Set-Cookie");
        let value = cookie
            .strip_prefix("switchyard_session=")
            .and_then(|c| c.split(';').next())
            .expect("session cookie");
        self.cookie = Some(value.to_string());
        self.csrf = Some(got.1["csrf_token"].as_str().expect("csrf").to_string());
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> (u16, Value) {
        let got = self
            .call_with(
                Method::POST,
                "/api/v1/session",
                Some(json!({"email": email, "password": password})),
                false,
            )
            .await;
        if got.0 == 201 {
            self.keep(&got);
        }
        (got.0, got.1)
    }

    /// Accept the invitation mailed to `email` as a new person.
    pub async fn accept(&mut self, sink: &Sink, email: &str, name: &str, password: &str) -> Value {
        let token = sink
            .last_to(email)
            .await
            .link_param("token")
            .expect("token in the mail");
        let got = self
            .call_with(
                Method::POST,
                "/api/v1/invitations/accept",
                Some(json!({"token": token, "name": name, "password": password})),
                false,
            )
            .await;
        self.keep(&got);
        got.1
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

const GOOD: &str = "a long enough passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invitation_sign_in_csrf_lock_out_and_reset() {
    let sink = Sink::start().await;
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &[
            "--smtp-url",
            &sink.url,
            "--mail-from",
            "Switchyard <no-reply@example.test>",
        ],
    )
    .await;
    let partner = h
        .ok(
            Method::POST,
            "/api/v1/partners",
            OPERATOR,
            Some(json!({"name": "Acme"})),
        )
        .await;
    let pkey = partner["api_key"].as_str().expect("key").to_string();
    let tenant = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            &pkey,
            Some(json!({"name": "Lucky Shrub"})),
        )
        .await;
    let (t, owner_key) = (
        id(&tenant),
        tenant["api_key"].as_str().expect("key").to_string(),
    );

    // The owner key invites Ana as admin: the link goes by mail, never in the answer.
    let inv = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            &owner_key,
            Some(json!({"email": "Ana@Example.com", "role": "admin"})),
        )
        .await;
    assert_eq!(inv["email"], "ana@example.com");
    assert!(
        inv.get("token").is_none() && inv.get("token_hash").is_none(),
        "{inv}"
    );
    let mail = sink.last_to("ana@example.com").await;
    assert!(mail.text().contains("Lucky Shrub"), "{}", mail.text());
    let token = mail.link_param("token").expect("token");
    assert!(
        token.starts_with(inv["id"].as_str().expect("id")),
        "{token}"
    );
    assert!(
        !h.data
            .path()
            .join("mail")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
    for bad in [
        "",
        "ana",
        "a b@example.com",
        "ana@example.com\r\nBcc: x@y.z",
    ] {
        assert_error(
            &h.call(
                Method::POST,
                &format!("/api/v1/tenants/{t}/invitations"),
                Some(&owner_key),
                Some(json!({"email": bad, "role": "admin"})),
            )
            .await,
            422,
            "invalid_email",
        );
    }
    assert_error(
        &h.call(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            Some(&owner_key),
            Some(json!({"email": "x@example.com", "role": "superuser"})),
        )
        .await,
        422,
        "invalid_role",
    );

    // Accepting: a weak password is refused, a good one signs in with a cookie made for it.
    let mut ana = Browser::new(&h);
    let weak = ana
        .call_with(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(json!({"token": token, "name": "Ana", "password": "short"})),
            false,
        )
        .await;
    assert_error(&(weak.0, weak.1), 422, "weak_password");
    let got = ana
        .call_with(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(json!({"token": token, "name": "Ana", "password": GOOD})),
            false,
        )
        .await;
    let cookie = got.2.clone().expect("Set-Cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    ana.keep(&got);
    assert_eq!(got.1["user"]["email"], "ana@example.com");
    assert_eq!(
        got.1["memberships"],
        json!([{"kind": "tenant", "id": t, "name": "Lucky Shrub", "role": "admin"}])
    );
    let again = ana
        .call_with(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(json!({"token": token, "name": "Ana", "password": GOOD})),
            false,
        )
        .await;
    assert_error(&(again.0, again.1), 409, "link_used");
    let forged = format!("{}.{}", inv["id"].as_str().expect("id"), "A".repeat(43));
    let forged = ana
        .call_with(
            Method::POST,
            "/api/v1/invitations/accept",
            Some(json!({"token": forged, "name": "Eve", "password": GOOD})),
            false,
        )
        .await;
    assert_error(&(forged.0, forged.1), 422, "invalid_link");

    // The session works as an admin: reads, and changes with the CSRF token only.
    let me = ana.call(Method::GET, "/api/v1/session", None).await;
    assert_eq!((me.0, me.1["user"]["name"].clone()), (200, json!("Ana")));
    let conns = ana
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/connections"),
            None,
        )
        .await;
    assert_eq!(conns.0, 200, "{}", conns.1);
    let no_csrf = ana
        .call_with(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            Some(json!({"email": "bob@example.com", "role": "agent"})),
            false,
        )
        .await;
    assert_error(&(no_csrf.0, no_csrf.1), 403, "csrf_failed");
    let mut wrong = Browser::new(&h);
    wrong.cookie = ana.cookie.clone();
    wrong.csrf = Some("A".repeat(43));
    assert_error(
        &wrong
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{t}/invitations"),
                Some(json!({"email": "bob@example.com", "role": "agent"})),
            )
            .await,
        403,
        "csrf_failed",
    );
    let bob_inv = ana
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            Some(json!({"email": "bob@example.com", "role": "agent"})),
        )
        .await;
    assert_eq!(bob_inv.0, 201, "{}", bob_inv.1);
    assert_eq!(
        bob_inv.1["invited_by"],
        json!(format!("{} (admin)", ana_id(&ana).await))
    );
    // An admin may not hand out the owner role; inviting a member again is a conflict.
    assert_error(
        &ana.call(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            Some(json!({"email": "carol@example.com", "role": "owner"})),
        )
        .await,
        403,
        "owner_only",
    );
    assert_error(
        &ana.call(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            Some(json!({"email": "ana@example.com", "role": "viewer"})),
        )
        .await,
        409,
        "already_member",
    );
    // The partner invites the owner; Bob joins as an agent.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/invitations"),
        &pkey,
        Some(json!({"email": "carol@example.com", "role": "owner"})),
    )
    .await;
    let mut carol = Browser::new(&h);
    carol
        .accept(&sink, "carol@example.com", "Carol", GOOD)
        .await;
    let mut bob = Browser::new(&h);
    bob.accept(&sink, "bob@example.com", "Bob", GOOD).await;
    // An agent reads but manages nothing.
    assert_eq!(
        bob.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations"),
            None
        )
        .await
        .0,
        200
    );
    assert_error(
        &bob.call(Method::GET, &format!("/api/v1/tenants/{t}/people"), None)
            .await,
        403,
        "forbidden",
    );
    let people = ana
        .call(Method::GET, &format!("/api/v1/tenants/{t}/people"), None)
        .await;
    let roles: Vec<(String, String)> = people.1["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["email"].as_str().expect("email").to_string(),
                m["role"].as_str().expect("role").to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("ana@example.com", "admin"),
            ("bob@example.com", "agent"),
            ("carol@example.com", "owner")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let carol_id = user_id(&people.1, "carol@example.com");
    let bob_id = user_id(&people.1, "bob@example.com");
    // Only an owner touches the owner role; the last owner stays one.
    assert_error(
        &ana.call(
            Method::PATCH,
            &format!("/api/v1/tenants/{t}/people/{carol_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await,
        403,
        "owner_only",
    );
    assert_error(
        &carol
            .call(
                Method::PATCH,
                &format!("/api/v1/tenants/{t}/people/{carol_id}"),
                Some(json!({"role": "admin"})),
            )
            .await,
        409,
        "last_owner",
    );
    assert_error(
        &carol
            .call(
                Method::DELETE,
                &format!("/api/v1/tenants/{t}/people/{carol_id}"),
                None,
            )
            .await,
        409,
        "last_owner",
    );
    // Bob is made a viewer, then removed: his session reaches nothing of the tenant.
    assert_eq!(
        ana.call(
            Method::PATCH,
            &format!("/api/v1/tenants/{t}/people/{bob_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await
        .0,
        204
    );
    assert_eq!(
        ana.call(
            Method::DELETE,
            &format!("/api/v1/tenants/{t}/people/{bob_id}"),
            None
        )
        .await
        .0,
        204
    );
    assert_error(
        &bob.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations"),
            None,
        )
        .await,
        404,
        "not_found",
    );

    // Sign out ends the session for good.
    let out = ana.call(Method::DELETE, "/api/v1/session", None).await;
    assert_eq!(out.0, 204, "{}", out.1);
    assert_error(
        &ana.call(Method::GET, "/api/v1/session", None).await,
        401,
        "session_ended",
    );
    // A key is not a session.
    assert_error(
        &h.call(Method::GET, "/api/v1/session", Some(&owner_key), None)
            .await,
        403,
        "person_only",
    );

    // Four wrong passwords, then the fifth locks; the right one is refused while locked.
    let mut eve = Browser::new(&h);
    for _ in 0..4 {
        assert_error(
            &eve.sign_in("ana@example.com", "wrong password!!").await,
            401,
            "invalid_credentials",
        );
    }
    let locked = eve.sign_in("ana@example.com", "wrong password!!").await;
    assert_error(&locked, 429, "sign_in_locked");
    assert!(
        locked.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("locked for 15 more minutes") && m.contains("reset")),
        "{}",
        locked.1
    );
    assert_error(
        &ana.sign_in("ana@example.com", GOOD).await,
        429,
        "sign_in_locked",
    );
    // Unknown emails read like wrong passwords.
    assert_error(
        &eve.sign_in("nobody@example.com", GOOD).await,
        401,
        "invalid_credentials",
    );

    // A reset by mail lifts the lock and ends the other sessions.
    let mut ana_phone = Browser::new(&h);
    ana_phone.cookie = carol.cookie.clone();
    let before = sink.mails().len();
    let asked = h
        .call(
            Method::POST,
            "/api/v1/password-resets",
            None,
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(asked.0, 202, "{}", asked.1);
    let asked = h
        .call(
            Method::POST,
            "/api/v1/password-resets",
            None,
            Some(json!({"email": "ana@example.com"})),
        )
        .await;
    assert_eq!(asked.0, 202, "{}", asked.1);
    // The mail leaves after the answer.
    crate::accounts::until("the reset mail", async || sink.mails().len() > before).await;
    let reset = sink.last_to("ana@example.com").await;
    assert_eq!(sink.mails().len(), before + 1, "one mail, to Ana only");
    let token = reset.link_param("token").expect("token");
    assert!(token.starts_with("rst_"), "{token}");
    let mut again = Browser::new(&h);
    let weak = again
        .call_with(
            Method::POST,
            "/api/v1/password-resets/confirm",
            Some(json!({"token": token, "password": "short"})),
            false,
        )
        .await;
    assert_error(&(weak.0, weak.1), 422, "weak_password");
    let done = again
        .call_with(
            Method::POST,
            "/api/v1/password-resets/confirm",
            Some(json!({"token": token, "password": "a brand new passphrase"})),
            false,
        )
        .await;
    again.keep(&done);
    let reused = again
        .call_with(
            Method::POST,
            "/api/v1/password-resets/confirm",
            Some(json!({"token": token, "password": "yet another passphrase"})),
            false,
        )
        .await;
    assert_error(&(reused.0, reused.1), 409, "link_used");
    assert_error(
        &eve.sign_in("ana@example.com", GOOD).await,
        401,
        "invalid_credentials",
    );
    let mut fresh = Browser::new(&h);
    assert_eq!(
        fresh
            .sign_in("ana@example.com", "a brand new passphrase")
            .await
            .0,
        201
    );
    // Carol's session is hers and untouched by Ana's reset.
    assert_eq!(
        carol.call(Method::GET, "/api/v1/session", None).await.0,
        200
    );

    // Suspension: its ledger rows, and people of the tenant are kept out meanwhile.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/suspend"),
        &pkey,
        None,
    )
    .await;
    assert_error(
        &fresh
            .call(
                Method::GET,
                &format!("/api/v1/tenants/{t}/connections"),
                None,
            )
            .await,
        403,
        "tenant_suspended",
    );
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/suspend"),
        OPERATOR,
        None,
    )
    .await;
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/reinstate"),
        OPERATOR,
        None,
    )
    .await;
    let ledger = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/consent"),
            &owner_key,
            None,
        )
        .await;
    let actions: Vec<(String, String)> = ledger["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().expect("action").to_string(),
                r["actor"].as_str().expect("actor").to_string(),
            )
        })
        .collect();
    // Suspending twice records once.
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["tenant-suspended", "tenant-reinstated"]);
    assert!(
        actions[0]
            .1
            .starts_with(&format!("{} via key_", id(&partner))),
        "{actions:?}"
    );
    assert_eq!(actions[1].1, "operator");
    assert_eq!(
        fresh
            .call(
                Method::GET,
                &format!("/api/v1/tenants/{t}/connections"),
                None
            )
            .await
            .0,
        200
    );

    // Nothing secret at rest: passwords are argon2id hashes, tokens only hashes.
    let db = std::fs::read(h.data.path().join("switchyard.db")).expect("db");
    let wal = std::fs::read(h.data.path().join("switchyard.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        let text = String::from_utf8_lossy(bytes);
        for secret in [GOOD, "a brand new passphrase", token.as_str()] {
            assert!(!text.contains(secret), "{secret} at rest");
        }
        if let Some(c) = &carol.cookie {
            assert!(!text.contains(c.as_str()), "session token at rest");
        }
    }
}

async fn ana_id(b: &Browser) -> String {
    b.call(Method::GET, "/api/v1/session", None).await.1["user"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn user_id(people: &Value, email: &str) -> String {
    people["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|m| m["email"] == email)
        .and_then(|m| m["user_id"].as_str())
        .expect("member")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_is_written_as_files() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let t = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            OPERATOR,
            Some(json!({"name": "Files"})),
        )
        .await;
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{}/invitations", id(&t)),
        OPERATOR,
        Some(json!({"email": "dev@example.com", "role": "owner"})),
    )
    .await;
    let dir = h.data.path().join("mail");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("mail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let eml = std::fs::read_to_string(&files[0]).expect("eml");
    assert!(eml.contains("To: dev@example.com"), "{eml}");
}

/// The access table of docs/security.md.
struct Row {
    method: Method,
    path: String,
    /// `None` for a public or person-only route; else one mark per column.
    allowed: Option<Vec<bool>>,
}

fn table() -> Vec<Row> {
    let docs = include_str!("../../docs/security.md");
    let start = docs.find("<!-- access table").expect("access table");
    let end = docs.find("<!-- end of access table").expect("end of table");
    docs[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let marks = &cells[2..];
            Row {
                method: cells[0].parse().expect("method"),
                path: cells[1].trim_matches('`').to_string(),
                allowed: (marks.len() == 7 && marks.iter().all(|m| *m == "✓" || *m == "·"))
                    .then(|| marks.iter().map(|m| *m == "✓").collect()),
            }
        })
        .collect()
}

/// Every route of the table answers each column's caller as the table says: allowed callers
/// never get 401 or 403 `forbidden`, the others get 403 `forbidden`.
async fn walk(h: &Host, sink: &Sink) {
    let table = table();
    assert!(table.len() > 60, "{}", table.len());
    // Every documented route is in the table, and only those.
    let doc = h
        .ok(Method::GET, "/api/v1/openapi.json", OPERATOR, None)
        .await;
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut listed: Vec<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone()))
        .collect();
    documented.sort();
    listed.sort();
    assert_eq!(documented, listed);

    let partner = h
        .ok(
            Method::POST,
            "/api/v1/partners",
            OPERATOR,
            Some(json!({"name": "Walker"})),
        )
        .await;
    let (p, pkey) = (
        id(&partner),
        partner["api_key"].as_str().expect("key").to_string(),
    );
    let tenant = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            &pkey,
            Some(json!({"name": "Walked"})),
        )
        .await;
    let (t, owner) = (
        id(&tenant),
        tenant["api_key"].as_str().expect("key").to_string(),
    );
    let mut keys = vec![owner.clone()];
    for role in ["admin", "agent", "viewer"] {
        let k = h
            .ok(
                Method::POST,
                &format!("/api/v1/tenants/{t}/keys"),
                &owner,
                Some(json!({"role": role})),
            )
            .await;
        keys.push(k["api_key"].as_str().expect("key").to_string());
    }
    // The partner member signs in as a person.
    h.ok(
        Method::POST,
        &format!("/api/v1/partners/{p}/invitations"),
        &pkey,
        Some(json!({"email": "member@walker.test", "role": "member"})),
    )
    .await;
    let mut member = Browser::new(h);
    member
        .accept(sink, "member@walker.test", "Member", GOOD)
        .await;

    enum Caller<'a> {
        Key(&'a str),
        Person(&'a Browser),
    }
    let columns: Vec<(&str, Caller)> = vec![
        ("operator", Caller::Key(OPERATOR)),
        ("partner owner", Caller::Key(&pkey)),
        ("partner member", Caller::Person(&member)),
        ("owner", Caller::Key(&keys[0])),
        ("admin", Caller::Key(&keys[1])),
        ("agent", Caller::Key(&keys[2])),
        ("viewer", Caller::Key(&keys[3])),
    ];
    let client = reqwest::Client::new();
    let mut checked = 0;
    for row in &table {
        let path = row
            .path
            .replace("{tenant}", &t)
            .replace("{partner}", &p)
            .replace("{version}", "9.9.9")
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "nothing_here".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let Some(allowed) = &row.allowed else {
            // Public and person-only routes: a key is refused on the person's, nobody is
            // refused on the public ones.
            let got = client
                .request(row.method.clone(), format!("{}{path}", h.base))
                .header("content-type", "application/json")
                .body("{")
                .send()
                .await
                .expect("send");
            let status = got.status().as_u16();
            assert!(status != 403, "{} {path}: {status}", row.method);
            continue;
        };
        for ((name, caller), allowed) in columns.iter().zip(allowed) {
            let mut req = client
                .request(row.method.clone(), format!("{}{path}", h.base))
                .header("content-type", "application/json")
                .body("{");
            match caller {
                Caller::Key(k) => req = req.bearer_auth(k),
                Caller::Person(b) => {
                    req = req
                        .header(
                            "cookie",
                            format!(
                                "switchyard_session={}",
                                b.cookie.as_deref().expect("cookie")
                            ),
                        )
                        .header("x-csrf-token", b.csrf.as_deref().expect("csrf"));
                }
            }
            let got = req.send().await.expect("send");
            let status = got.status().as_u16();
            // An event stream never ends: its status is the answer.
            let streaming = got
                .headers()
                .get("content-type")
                .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
            let body: Value = if streaming {
                Value::Null
            } else {
                got.json().await.unwrap_or(Value::Null)
            };
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let refused = status == 401 || (status == 403 && code == "forbidden");
            if *allowed {
                assert!(!refused, "{} {path} as {name}: {status} {body}", row.method);
            } else {
                assert_eq!(
                    (status, code.as_str()),
                    (403, "forbidden"),
                    "{} {path} as {name}: {body}",
                    row.method
                );
            }
            checked += 1;
            if row.path.ends_with("/suspend") && *allowed {
                h.ok(
                    Method::POST,
                    &format!("/api/v1/tenants/{t}/reinstate"),
                    OPERATOR,
                    None,
                )
                .await;
            }
        }
    }
    assert!(checked > 400, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_every_role_as_the_table_says() {
    let sink = Sink::start().await;
    let graph = Fake::start_with(graph_ok).await;
    let args = ["--smtp-url", sink.url.as_str()];
    walk(
        &Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &sink,
    )
    .await;
    if let Some(pg) = PgDb::create("people_walk").await {
        walk(
            &Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &sink,
        )
        .await;
    }
}

/// Guesses sent at once are each counted before their password is checked: no more than the
/// four before the lock-out ever get an answer about the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_sent_at_once_cannot_pass_the_lock_out() {
    let sink = Sink::start().await;
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--smtp-url", &sink.url]).await;
    let t = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            OPERATOR,
            Some(json!({"name": "Guessed"})),
        )
        .await;
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{}/invitations", id(&t)),
        OPERATOR,
        Some(json!({"email": "target@example.com", "role": "viewer"})),
    )
    .await;
    Browser::new(&h)
        .accept(&sink, "target@example.com", "Target", GOOD)
        .await;
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let base = h.base.clone();
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{base}/api/v1/session"))
                    .json(&json!({"email": "target@example.com", "password": format!("wrong guess number {i}")}))
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let body: Value = r.json().await.expect("json");
                (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await.expect("task"));
    }
    let told_wrong = answers.iter().filter(|(s, _)| *s == 401).count();
    let locked = answers
        .iter()
        .filter(|(s, c)| *s == 429 && c == "sign_in_locked")
        .count();
    assert_eq!((told_wrong, locked), (4, 8), "{answers:?}");
    // Locked means locked: the right password too.
    let mut late = Browser::new(&h);
    assert_error(
        &late.sign_in("target@example.com", GOOD).await,
        429,
        "sign_in_locked",
    );
}

/// The last owner stays one, and two owners may hand the role around, on both backends.
async fn owners(h: Host, sink: &Sink) {
    let t = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            OPERATOR,
            Some(json!({"name": "Owners"})),
        )
        .await;
    let t = id(&t);
    let mut first = Browser::new(&h);
    for email in ["one@owners.test", "two@owners.test"] {
        h.ok(
            Method::POST,
            &format!("/api/v1/tenants/{t}/invitations"),
            OPERATOR,
            Some(json!({"email": email, "role": "owner"})),
        )
        .await;
    }
    first.accept(sink, "one@owners.test", "One", GOOD).await;
    let mut second = Browser::new(&h);
    second.accept(sink, "two@owners.test", "Two", GOOD).await;
    let people = first
        .call(Method::GET, &format!("/api/v1/tenants/{t}/people"), None)
        .await
        .1;
    let (one, two) = (
        user_id(&people, "one@owners.test"),
        user_id(&people, "two@owners.test"),
    );
    // Two owners: one may step down; then the other is the last and stays.
    let down = first
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{t}/people/{one}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(down.0, 204, "{}", down.1);
    assert_error(
        &second
            .call(
                Method::DELETE,
                &format!("/api/v1/tenants/{t}/people/{two}"),
                None,
            )
            .await,
        409,
        "last_owner",
    );
    // The demoted admin may not take the role back.
    assert_error(
        &first
            .call(
                Method::PATCH,
                &format!("/api/v1/tenants/{t}/people/{one}"),
                Some(json!({"role": "owner"})),
            )
            .await,
        403,
        "owner_only",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_owner_stays_on_both_backends() {
    let sink = Sink::start().await;
    let graph = Fake::start_with(graph_ok).await;
    let args = ["--smtp-url", sink.url.as_str()];
    owners(
        Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &sink,
    )
    .await;
    if let Some(pg) = PgDb::create("people_owners").await {
        owners(
            Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &sink,
        )
        .await;
    }
}
