//! The middleware stack around the route table: sessions, CSRF, flash, error pages, limits,
//! security headers, request ids and the request span; and `serve`, the listener seam.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::{AppState, UPLOAD_ROUTES, csrf, error, flash, pages, routes, session};

/// The application: the route table behind the middleware stack.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application with `extra` routes beside the table, behind the same middleware. For
/// tests that need a route the product has no use for (one that panics); the product uses
/// [`router`].
#[doc(hidden)]
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = &state.config;
    let mut app: Router<AppState> = extra;
    for route in routes() {
        let access = route.access;
        let mut handler = route
            .handler
            .route_layer(middleware::from_fn_with_state(access, session::require));
        if UPLOAD_ROUTES.contains(&route.path) {
            handler = handler.layer(DefaultBodyLimit::max(config.upload_body_limit()));
        }
        app = app.route(route.path, handler);
    }
    let timeout = Duration::from_secs(config.request_timeout_secs);
    let body_limit = config.max_body_bytes;

    let app = app
        .fallback(pages::not_found)
        .route_layer(middleware::from_fn(record_route))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(error::render_pages))
                // Inside `render_pages`, so a panic becomes the same friendly 500 page as any
                // internal error, with the request id; the process keeps serving.
                .layer(CatchPanicLayer::custom(error::on_panic))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit))
                .layer(middleware::from_fn_with_state(state.clone(), session::load))
                .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
                .layer(middleware::from_fn(flash::carry)),
        )
        .with_state(state);

    let request_id = HeaderName::from_static("x-request-id");
    // Downloads bring a stricter policy of their own (`sandbox`); every other response gets this.
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::COOKIE,
                header::AUTHORIZATION,
            ]))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %id,
                            route = tracing::field::Empty,
                            user_id = tracing::field::Empty,
                        )
                    })
                    .on_request(())
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                    ),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(security_headers)
            .layer(CompressionLayer::new()),
    )
}

/// Serves the app on `listener` until `shutdown` completes, then lets requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Records the matched route on the request span.
async fn record_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", path.as_str());
    }
    next.run(req).await
}
