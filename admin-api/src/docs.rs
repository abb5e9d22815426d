//! Swagger UI over `/api/v1/openapi.json`, served from the binary (the assets are vendored in
//! `assets/swagger-ui/`), and the security headers of the admin origin.
//!
//! Nothing on the admin origin loads from another origin, so the Content-Security-Policy
//! allows scripts from `'self'` only (no inline script: Swagger UI's initializer is a file
//! too). Styles also allow `'unsafe-inline'`, which Ant Design (the UI's CSS-in-JS) and Swagger
//! UI need; images allow `data:` URIs, which both use for icons.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

/// The policy every response of the admin origin carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
frame-ancestors 'none'";

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>AxonGate admin API</title>
<link rel="stylesheet" href="/api/v1/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/v1/docs/swagger-ui-bundle.js"></script>
<script src="/api/v1/docs/init.js"></script>
</body></html>"#;

const INIT: &str =
    r##"window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui"});"##;

const BUNDLE: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}

/// The Swagger UI routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/api/v1/docs", get(|| async { Html(PAGE) }))
        .route(
            "/api/v1/docs/init.js",
            get(|| async { asset("text/javascript; charset=utf-8", INIT.as_bytes()) }),
        )
        .route(
            "/api/v1/docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", BUNDLE) }),
        )
        .route(
            "/api/v1/docs/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
}

/// The headers every response of the admin origin gets.
#[must_use]
pub fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}
