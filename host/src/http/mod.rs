//! The HTTP layer: the router and the state handlers share. One file per resource.

mod health;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::runtime::Registry;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The loaded plugins.
    pub plugins: Arc<Registry>,
}

/// The full router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .with_state(state)
}
