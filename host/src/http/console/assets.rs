//! The console's files, embedded in the binary and served under names that carry a digest of
//! their bytes, so browsers may keep them forever and a new build is never served stale.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// The name pages link to: `console.<digest>.css`.
    pub name: String,
    bytes: &'static [u8],
    mime: &'static str,
}

fn asset(stem: &str, ext: &str, bytes: &'static [u8], mime: &'static str) -> Asset {
    let digest = hex::encode(Sha256::digest(bytes));
    Asset {
        name: format!("{stem}.{}.{ext}", &digest[..12]),
        bytes,
        mime,
    }
}

/// The style sheet.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "console",
        "css",
        include_bytes!("assets/console.css"),
        "text/css; charset=utf-8",
    )
});
/// The script every page loads (forms to the API, live updates).
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "console",
        "js",
        include_bytes!("assets/console.js"),
        "text/javascript; charset=utf-8",
    )
});
/// Meta's Embedded Signup, on the connect page and the dialog's return page.
pub static SIGNUP: LazyLock<Asset> = LazyLock::new(|| {
    asset(
        "signup",
        "js",
        include_bytes!("assets/signup.js"),
        "text/javascript; charset=utf-8",
    )
});

impl Asset {
    /// Its URL.
    pub fn url(&self) -> String {
        format!("/console/assets/{}", self.name)
    }
}

/// `GET /console/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let found = [&*CSS, &*JS, &*SIGNUP].into_iter().find(|a| a.name == file);
    let Some(a) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        a.bytes,
    )
        .into_response()
}
