//! The JSON API: thin handlers that extract, call the store, and map errors once.

pub mod autotopup;
pub mod catalog;
pub mod cors;
pub mod customers;
pub mod doc;
pub mod entitlements;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod list;
pub mod me;
pub mod payments;
pub mod spend;
pub mod usage_batch;
pub mod webhook;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "creditd", description = "Prepaid credits and Stripe billing for AI apps. Amounts are exact decimal strings (up to 6 decimals)."),
    modifiers(&SecretKeyAuth),
    // Referenced only from parameters, which do not collect their schemas.
    components(schemas(doc::CustomerId, doc::EventStatus, doc::StripeId, doc::UsageGroup)),
    security(("secret_key" = [])),
    tags((name = "customers"), (name = "spending"), (name = "purchases"), (name = "subscriptions"), (name = "catalog"), (name = "customer tokens"), (name = "webhooks"), (name = "operations"))
)]
struct ApiDoc;

struct SecretKeyAuth;

impl Modify for SecretKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A secret key, `cd_sk_…`"))
            .build();
        components.add_security_scheme("secret_key", SecurityScheme::Http(scheme));
        let token = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "A customer token the app signs: `sub` = customer id, `exp` required",
            ))
            .build();
        components.add_security_scheme("customer_token", SecurityScheme::Http(token));
    }
}

/// The router and the OpenAPI document generated from the same handlers.
pub fn router(state: AppState) -> Router {
    // A batch of usage records may be larger than any other body; the inner limit wins.
    let batch_limit = state.settings.max_body_bytes.max(usage_batch::MAX_BODY_BYTES);
    let batch = OpenApiRouter::new()
        .routes(routes!(usage_batch::record_usage_batch))
        .layer(DefaultBodyLimit::max(batch_limit));
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(batch)
        .routes(routes!(customers::create_customer))
        .routes(routes!(customers::get_customer, customers::update_customer))
        .routes(routes!(customers::create_grant, customers::list_grants))
        .routes(routes!(customers::list_ledger))
        .routes(routes!(autotopup::get_auto_topup, autotopup::set_auto_topup))
        .routes(routes!(spend::record_usage))
        .routes(routes!(spend::create_hold))
        .routes(routes!(spend::get_hold))
        .routes(routes!(spend::capture_hold))
        .routes(routes!(spend::release_hold))
        .routes(routes!(entitlements::check))
        .routes(routes!(entitlements::entitlements))
        .routes(routes!(entitlements::put_budget, entitlements::list_budgets))
        .routes(routes!(catalog::create_feature, catalog::list_features))
        .routes(routes!(catalog::update_feature))
        .routes(routes!(catalog::archive_feature))
        .routes(routes!(payments::update_plan))
        .routes(routes!(payments::list_packages, payments::create_package))
        .routes(routes!(payments::archive_package))
        .routes(routes!(payments::sync_packages))
        .routes(routes!(payments::create_checkout))
        .routes(routes!(payments::fulfill_checkout))
        .routes(routes!(payments::create_payment_intent))
        .routes(routes!(payments::list_payments))
        .routes(routes!(payments::list_plans, payments::create_plan))
        .routes(routes!(payments::billing_portal))
        .routes(routes!(me::get_me))
        .routes(routes!(me::my_ledger))
        .routes(routes!(me::my_payments))
        .routes(routes!(me::my_usage))
        .routes(routes!(me::my_checkout))
        .routes(routes!(webhook::receive))
        .routes(routes!(events::list_events))
        .routes(routes!(events::retry_event))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::list_outbound_events))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .split_for_parts();
    let api = std::sync::Arc::new(doc::finish(&api, state.settings.max_hold_ttl_seconds));
    crate::ops::metrics::handle();
    let router = if state.settings.metrics_listen.is_none() {
        router.route("/metrics", axum::routing::get(crate::ops::metrics::render))
    } else {
        router
    };
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || health::openapi(api.clone())),
        )
        .route("/billing", axum::routing::get(crate::pages::billing::page))
        .route("/billing/checkout", axum::routing::post(crate::pages::billing::buy))
        .route(
            "/billing/subscribe",
            axum::routing::post(crate::pages::billing::subscribe),
        )
        .route("/billing/portal", axum::routing::post(crate::pages::billing::portal))
        .route(
            "/billing/unsubscribe",
            axum::routing::post(crate::pages::billing::cancel_subscription),
        )
        .route(
            "/billing/auto-topup",
            axum::routing::post(crate::pages::autotopup::save_form),
        )
        .merge(crate::admin::router())
        .route("/billing/success", axum::routing::get(crate::pages::success::success))
        .route("/billing/cancel", axum::routing::get(crate::pages::success::cancel))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(cors::layer(&state.settings.cors_allowed_origins))
        .layer(from_fn_with_state(state.clone(), crate::ops::rate_limit::limit))
        .layer(from_fn(crate::ops::metrics::track))
        .layer(from_fn(crate::ops::request_id::assign))
        .with_state(state)
}

/// `/metrics` alone, for `metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(crate::ops::metrics::render))
        .with_state(state)
}
