//! The baseline for the ingress benchmark: a bare axum handler that reads the body and answers
//! 200, on the same runtime settings as `switchyard serve`. Usage: `bare_axum 127.0.0.1:PORT`.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let app = Router::new().route("/hooks/{endpoint}", post(|_body: Bytes| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
