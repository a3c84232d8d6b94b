//! PostgreSQL for tests: a fresh database per test with its own owner and app roles (never a
//! superuser: isolation tests run as a superuser would pass without testing anything), dropped
//! afterwards. Postgres is expected at 127.0.0.1:5432 with trust auth; without it the test says
//! so loudly and passes, unless `CI=true`, where a missing Postgres fails the test.

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

const ADMIN_URLS: &[&str] = &[
    "postgres://postgres@127.0.0.1:5432/test",
    "postgres://root@127.0.0.1:5432/test",
];

/// A database of one test, with its two roles.
pub struct PgDb {
    /// Database (and role prefix) name.
    pub name: String,
    /// Superuser URL used to create and drop it.
    admin_url: String,
}

impl PgDb {
    /// Create a database and its roles; `None` (after a loud message) when Postgres is absent
    /// outside CI.
    pub async fn create(test: &str) -> Option<PgDb> {
        let mut admin = None;
        let mut errors = Vec::new();
        for url in ADMIN_URLS {
            match PgConnection::connect(url).await {
                Ok(c) => {
                    admin = Some((c, url.to_string()));
                    break;
                }
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        let Some((mut conn, admin_url)) = admin else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but PostgreSQL is not reachable: {}",
                    errors.join("; ")
                );
            }
            eprintln!(
                "\n!!! SKIPPED {test}: PostgreSQL is not reachable at 127.0.0.1:5432 ({}).\n\
                 !!! The PostgreSQL half of this test did not run. Start Postgres (trust auth, \
                 database `test`) to run it; with CI=true this is a failure.\n",
                errors.join("; ")
            );
            return None;
        };
        let name = format!(
            "sy_{}",
            switchyard::tenancy::ids::new_id("t").replace("t_", "")
        );
        for sql in [
            format!(
                "CREATE ROLE {name}_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
            ),
            format!("CREATE ROLE {name}_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"),
            format!("CREATE DATABASE {name} OWNER {name}_owner"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("create test database");
        }
        let _ = conn.close().await;
        Some(PgDb { name, admin_url })
    }

    /// URL of the role that owns the tables.
    pub fn owner_url(&self) -> String {
        format!("postgres://{0}_owner@127.0.0.1:5432/{0}", self.name)
    }

    /// URL of the app role (no table ownership, no BYPASSRLS).
    pub fn app_url(&self) -> String {
        format!("postgres://{0}_app@127.0.0.1:5432/{0}", self.name)
    }

    /// URL of the superuser, on this test's database.
    pub fn superuser_url(&self) -> String {
        let base = self.admin_url.rsplit_once('/').map_or("", |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        // Drop may run inside a runtime: clean up on a thread of our own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let Ok(mut conn) = PgConnection::connect(&admin_url).await else {
                    return;
                };
                for sql in [
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    format!("DROP ROLE IF EXISTS {name}_app"),
                    format!("DROP ROLE IF EXISTS {name}_owner"),
                ] {
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                    {
                        eprintln!("cleaning up test database {name}: {e}");
                    }
                }
            });
        });
        let _ = done.join();
    }
}
