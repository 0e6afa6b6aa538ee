//! Packages, purchases (Checkout and PaymentIntents) and payments.

use std::collections::BTreeMap;
use std::future::Future;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::views::{Package, Payment, Plan};
use creditd_domain::{Credits, Idempotency};
use creditd_store::Claim;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::billing::packages::PackageSpec;
use crate::billing::BillingError;
use crate::billing::{checkout, intents, packages, plans, subscriptions};
use crate::http::doc::{
    Currency, CustomerId, HttpUrl, MinorUnits, Name, NonNegativeCredits, PlanInterval, PositiveCredits, StripeId,
};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, IdempotencyKey, SecretKey};
use crate::http::list::{ApiQuery, ListQuery};
use creditd_stripe::client::StripeError;

#[derive(Serialize, ToSchema)]
pub struct PackageList {
    pub object: &'static str,
    pub data: Vec<Package>,
}

/// A credit package: a price in minor units and currency, or an existing one-time Stripe Price.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageIn {
    #[schema(value_type = Name)]
    pub name: String,
    #[schema(value_type = PositiveCredits)]
    pub credits: Credits,
    /// Minor units (500 = 5.00 usd); with `currency`.
    #[schema(value_type = Option<MinorUnits>)]
    pub price: Option<i64>,
    #[schema(value_type = Option<Currency>)]
    pub currency: Option<String>,
    /// An existing one-time Stripe Price instead of `price` and `currency`.
    #[schema(value_type = Option<StripeId>)]
    pub stripe_price: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    /// `pkg_…`: buy a credit package (mode `payment`) …
    pub package: Option<String>,
    /// … or `plan_…`: subscribe to a plan (mode `subscription`).
    pub plan: Option<String>,
    /// 1–100, default 1 (packages only).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i64>,
    /// Where Stripe sends the buyer after paying; `{CHECKOUT_SESSION_ID}` is filled in. Default:
    /// creditd's own success page, which fulfils the purchase and shows the new balance.
    #[schema(value_type = Option<HttpUrl>)]
    pub success_url: Option<String>,
    #[schema(value_type = Option<HttpUrl>)]
    pub cancel_url: Option<String>,
}

/// What starting a Checkout returns: a package purchase, or a subscription to a plan.
// The document's schema of the answer only: the handlers write either object as JSON.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CheckoutCreated {
    Package(Box<CheckoutOut>),
    Plan(SubscriptionCheckoutOut),
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckoutOut {
    /// `cs_…`
    pub id: String,
    /// Stripe's hosted payment page: send the buyer there.
    pub url: Option<String>,
    pub payment: Payment,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIntentIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    /// `pkg_…`
    pub package: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PaymentIntentOut {
    /// `pi_…`
    pub id: String,
    /// For Stripe.js `confirmPayment` on the buyer's device.
    pub client_secret: Option<String>,
    pub payment: Payment,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentList {
    pub object: &'static str,
    pub data: Vec<Payment>,
    pub has_more: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    #[param(value_type = CustomerId)]
    pub customer: String,
    /// Items per page, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last id of the previous page.
    pub starting_after: Option<String>,
}

/// Runs `work` once per idempotency key and replays its response to retries. A retry while the
/// first request is still running is a 409 rather than a second purchase.
pub(crate) async fn once<F, Fut>(
    state: &AppState,
    idem: Option<Idempotency>,
    work: F,
) -> Result<(StatusCode, Json<Value>), ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(idem) = idem else {
        return work().await.map(|(s, v)| (s, Json(v)));
    };
    match state
        .store
        .claim_key(&idem.scope, &idem.key, &idem.fingerprint, state.clock.now())
        .await?
    {
        Claim::New => match work().await {
            Ok((status, body)) => {
                let stored = serde_json::json!({ "status": status.as_u16(), "body": body }).to_string();
                state.store.complete_claim(&idem.scope, &idem.key, &stored).await?;
                Ok((status, Json(body)))
            }
            Err(e) => {
                state.store.release_claim(&idem.scope, &idem.key).await?;
                Err(e)
            }
        },
        Claim::Done(stored) => {
            let stored: Value = serde_json::from_str(&stored).map_err(ApiError::internal)?;
            let status = stored["status"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(s as u16).ok())
                .unwrap_or(StatusCode::OK);
            Ok((status, Json(stored["body"].clone())))
        }
        Claim::InProgress => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this idempotency key is still being processed; retry shortly",
        )),
        Claim::Mismatch => Err(creditd_domain::CommandError::IdempotencyKeyReused.into()),
    }
}

pub(crate) async fn active_package(state: &AppState, id: &str) -> Result<Package, ApiError> {
    let package = state.store.package(id).await?;
    let package = package.ok_or_else(|| ApiError::not_found("package_not_found", format!("no such package: {id}")))?;
    if !package.active {
        return Err(ApiError {
            param: Some("package".into()),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "package_archived",
                format!("{id} is archived and no longer sold"),
            )
        });
    }
    Ok(package)
}

fn url(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) || u.chars().count() > 2000 => Err(
            ApiError::invalid(field, "must be an http:// or https:// URL of at most 2000 characters"),
        ),
        other => Ok(other),
    }
}

/// Active credit packages, oldest first.
#[utoipa::path(get, path = "/v1/packages", tag = "purchases", responses((status = 200, body = PackageList)))]
pub async fn list_packages(State(state): State<AppState>, _key: SecretKey) -> Result<Json<PackageList>, ApiError> {
    Ok(Json(PackageList {
        object: "list",
        data: state.store.packages(false).await?,
    }))
}

/// Create a credit package.
#[utoipa::path(post, path = "/v1/packages", tag = "purchases", request_body = PackageIn, params(IdempotencyKey),
    responses((status = 201, body = Package), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`stripe_price_not_found`: Stripe has no such Price"),
              (status = 409, body = ErrorBody, description = "`idempotency_key_in_use` or `idempotency_key_reused`")))]
pub async fn create_package(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<PackageIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency = idem.for_app(&body);
    let input = body.value;
    let price = match (input.price, input.currency) {
        (Some(p), Some(c)) => Some((p, c)),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::invalid("currency", "is required with price")),
        (None, Some(_)) => return Err(ApiError::invalid("price", "is required with currency")),
    };
    let spec = PackageSpec {
        name: input.name,
        credits: input.credits,
        price,
        stripe_price: input.stripe_price,
    };
    once(&state, idempotency, || async {
        let package = packages::create(&state.store, Some(&state.stripe.client), spec, state.clock.now())
            .await
            .map_err(|r| match r.not_found {
                true => ApiError {
                    param: Some(r.field),
                    ..ApiError::not_found("stripe_price_not_found", r.message)
                },
                false => ApiError::invalid(&r.field, r.message),
            })?;
        created(package)
    })
    .await
}

pub(crate) fn created(value: impl Serialize) -> Result<(StatusCode, Value), ApiError> {
    Ok((
        StatusCode::CREATED,
        serde_json::to_value(value).map_err(ApiError::internal)?,
    ))
}

/// Import packages from Stripe: active one-time Prices whose Price or Product has
/// `credits_amount` metadata become packages; changed ones are updated, removed ones archived,
/// recurring ones refused by name.
#[utoipa::path(post, path = "/v1/packages/sync", tag = "purchases",
    responses((status = 200, body = crate::billing::package_sync::SyncReport), (status = 401, body = ErrorBody),
              (status = 502, body = ErrorBody, description = "stripe_error")))]
pub async fn sync_packages(
    State(state): State<AppState>,
    _key: SecretKey,
) -> Result<Json<crate::billing::package_sync::SyncReport>, ApiError> {
    let report = crate::billing::package_sync::sync(&state.store, &state.stripe.client, state.clock.now()).await?;
    Ok(Json(report))
}

/// Stop selling a package.
#[utoipa::path(post, path = "/v1/packages/{id}/archive", tag = "purchases", params(("id" = String, Path, description = "`pkg_…`")),
    responses((status = 200, body = Package), (status = 404, body = ErrorBody, description = "`package_not_found`")))]
pub async fn archive_package(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Package>, ApiError> {
    state.store.archive_package(&id).await?;
    let package = state.store.package(&id).await?;
    package
        .map(Json)
        .ok_or_else(|| ApiError::not_found("package_not_found", format!("no such package: {id}")))
}

/// Start a Stripe Checkout for a package; send the buyer to `url`. Credits arrive when Stripe
/// reports the payment (webhook) or the buyer lands on the success page, whichever is first.
#[utoipa::path(post, path = "/v1/checkout-sessions", tag = "purchases", request_body = CheckoutIn, params(IdempotencyKey),
    responses((status = 201, body = CheckoutCreated), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found`, `package_not_found` or `plan_not_found`"),
              (status = 409, body = ErrorBody, description = "`package_archived`, `plan_archived`, `already_subscribed`, `idempotency_key_in_use` or `idempotency_key_reused`"),
              (status = 502, body = ErrorBody, description = "`stripe_error`: Stripe refused or did not answer")))]
pub async fn create_checkout(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<CheckoutIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency = idem.for_app(&body);
    let input = body.value;
    let quantity = input.quantity.unwrap_or(1);
    if !(1..=100).contains(&quantity) {
        return Err(ApiError::invalid("quantity", "must be between 1 and 100"));
    }
    let success_url = url("success_url", input.success_url)?;
    let cancel_url = url("cancel_url", input.cancel_url)?;
    let customer = state.customer(&input.customer).await?;
    crate::ops::rate_limit::purchase(&state, &customer.id)?;
    let package_id = match (input.package, input.plan) {
        (Some(package), None) => package,
        (None, Some(plan)) => {
            if input.quantity.is_some() {
                return Err(ApiError::invalid("quantity", "applies to packages, not plans"));
            }
            return subscribe(&state, idempotency, customer, &plan, success_url, cancel_url).await;
        }
        _ => return Err(ApiError::invalid("package", "give either package or plan")),
    };
    let package = active_package(&state, &package_id).await?;
    once(&state, idempotency, || async {
        let request = checkout::CheckoutRequest {
            customer,
            package,
            quantity,
            success_url,
            cancel_url,
        };
        let (session, payment) = checkout::create(&state, request).await?;
        let out = CheckoutOut {
            id: session.id,
            url: session.url,
            payment,
        };
        created(out)
    })
    .await
}

/// Fulfil a Checkout Session now (for apps with their own success page): re-reads it from
/// Stripe and grants its credits if paid. Safe to call any number of times.
#[utoipa::path(post, path = "/v1/checkout-sessions/{id}/fulfill", tag = "purchases", params(("id" = StripeId, Path, description = "`cs_…`")),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody, description = "`payment_not_found`: not a creditd Checkout Session"),
              (status = 502, body = ErrorBody, description = "`stripe_error`: Stripe refused or did not answer")))]
pub async fn fulfill_checkout(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    // Anything but a Stripe id cannot be one of creditd's sessions (and is not sent to Stripe).
    let stripe_id = !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let fulfilled = match stripe_id {
        true => match checkout::fulfill(&state, &id).await {
            // Stripe has no such session: then it is not one of creditd's either.
            Err(BillingError::Stripe(StripeError::InvalidRequest { status: 404, .. })) => None,
            other => other?,
        },
        false => None,
    };
    match fulfilled {
        Some((payment, _)) => Ok(Json(payment)),
        None => Err(ApiError::not_found(
            "payment_not_found",
            format!("{id} is not a creditd checkout session"),
        )),
    }
}

/// Create a PaymentIntent for a package, for an embedded Stripe Elements form. Credits arrive
/// on `payment_intent.succeeded`.
#[utoipa::path(post, path = "/v1/payment-intents", tag = "purchases", request_body = PaymentIntentIn, params(IdempotencyKey),
    responses((status = 201, body = PaymentIntentOut), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found` or `package_not_found`"),
              (status = 409, body = ErrorBody, description = "`package_archived`, `idempotency_key_in_use` or `idempotency_key_reused`"),
              (status = 502, body = ErrorBody, description = "`stripe_error`: Stripe refused or did not answer")))]
pub async fn create_payment_intent(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<PaymentIntentIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency = idem.for_app(&body);
    let customer = state.customer(&body.value.customer).await?;
    let package = active_package(&state, &body.value.package).await?;
    crate::ops::rate_limit::purchase(&state, &customer.id)?;
    once(&state, idempotency, || async {
        let (intent, payment) = intents::create(&state, &customer, package).await?;
        let out = PaymentIntentOut {
            id: intent.id,
            client_secret: intent.client_secret,
            payment,
        };
        created(out)
    })
    .await
}

/// A customer's payments, newest first: Stripe ids, amount, status, credits, receipt.
#[utoipa::path(get, path = "/v1/payments", tag = "purchases", params(PaymentQuery),
    responses((status = 200, body = PaymentList), (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn list_payments(
    State(state): State<AppState>,
    _key: SecretKey,
    ApiQuery(query): ApiQuery<PaymentQuery>,
) -> Result<Json<PaymentList>, ApiError> {
    state.customer(&query.customer).await?;
    let page = ListQuery {
        limit: query.limit,
        starting_after: query.starting_after,
    }
    .page()?;
    let page = state.store.payments(&query.customer, &page).await?;
    Ok(Json(PaymentList {
        object: "list",
        data: page.data,
        has_more: page.has_more,
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubscriptionCheckoutOut {
    /// `cs_…`
    pub id: String,
    pub url: Option<String>,
    pub plan: String,
}

pub(crate) async fn subscribe(
    state: &AppState,
    idempotency: Option<Idempotency>,
    customer: creditd_domain::views::Customer,
    plan_id: &str,
    success_url: Option<String>,
    cancel_url: Option<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let plan = state.store.plan(plan_id).await?;
    let plan = plan.ok_or_else(|| ApiError::not_found("plan_not_found", format!("no such plan: {plan_id}")))?;
    if !plan.active {
        return Err(ApiError {
            param: Some("plan".into()),
            ..ApiError::new(StatusCode::CONFLICT, "plan_archived", format!("{plan_id} is archived"))
        });
    }
    if plan.free {
        return Err(ApiError::invalid(
            "plan",
            format!("{plan_id} is the free plan: customers without a subscription have it"),
        ));
    }
    if let Some(current) = state.store.subscription_of(&customer.id).await? {
        if matches!(
            current.status.as_str(),
            "active" | "trialing" | "past_due" | "incomplete"
        ) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_subscribed",
                format!(
                    "{} already has subscription {}; change plans in the billing portal",
                    customer.id, current.id
                ),
            ));
        }
    }
    once(state, idempotency, || async {
        let session = subscriptions::create_checkout(state, &customer, &plan, success_url, cancel_url).await?;
        let out = SubscriptionCheckoutOut {
            id: session.id,
            url: session.url,
            plan: plan.id.clone(),
        };
        created(out)
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub object: &'static str,
    pub data: Vec<Plan>,
}

/// A subscription plan: credits per period for a recurring price.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanIn {
    #[schema(value_type = Name)]
    pub name: String,
    /// Credits each paid period grants (the free plan: each calendar month).
    #[schema(value_type = NonNegativeCredits)]
    pub credits: Credits,
    /// Minor units per period (2000 = 20.00 usd); not for the free plan.
    #[schema(value_type = Option<MinorUnits>)]
    pub price: Option<i64>,
    #[schema(value_type = Option<Currency>)]
    pub currency: Option<String>,
    /// The free plan: no price, its credits granted by creditd every month to every customer
    /// without a paid subscription (at most one active free plan).
    pub free: Option<bool>,
    /// Feature id → `true`, or `{"limit": 3, "period": "day" | "month"}`.
    #[schema(value_type = Option<Object>, example = json!({"chat": true, "images": {"limit": 3, "period": "day"}}))]
    pub features: Option<BTreeMap<String, Value>>,
    /// `day`, `week`, `month` (default) or `year`.
    #[schema(value_type = Option<PlanInterval>)]
    pub interval: Option<String>,
    /// Unused allowance carried into the next period, at most this much (default none).
    #[schema(value_type = Option<NonNegativeCredits>)]
    pub rollover_cap: Option<Credits>,
}

/// An unknown feature id is a 404 `feature_not_found`; an invalid value a 400.
fn features_error(error: plans::FeaturesError) -> ApiError {
    match error {
        plans::FeaturesError::Unknown(id) => {
            let mut error = ApiError::not_found(
                "feature_not_found",
                format!("features.{id}: {id} is not a feature; create it with POST /v1/features"),
            );
            error.param = Some(format!("features.{id}"));
            error
        }
        plans::FeaturesError::Invalid(field, message) => ApiError::invalid(&field, message),
    }
}

/// Active plans, cheapest first.
#[utoipa::path(get, path = "/v1/plans", tag = "subscriptions", responses((status = 200, body = PlanList)))]
pub async fn list_plans(State(state): State<AppState>, _key: SecretKey) -> Result<Json<PlanList>, ApiError> {
    Ok(Json(PlanList {
        object: "list",
        data: state.store.plans(false).await?,
    }))
}

/// Create a plan.
#[utoipa::path(post, path = "/v1/plans", tag = "subscriptions", request_body = PlanIn, params(IdempotencyKey),
    responses((status = 201, body = Plan), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`feature_not_found`: `features` names an unknown feature"),
              (status = 409, body = ErrorBody, description = "`free_plan_exists` (archive it first), `idempotency_key_in_use` or `idempotency_key_reused`")))]
pub async fn create_plan(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<PlanIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idempotency = idem.for_app(&body);
    let input = body.value;
    let features = plans::entitlements(&state.store, input.features.unwrap_or_default())
        .await
        .map_err(features_error)?;
    let spec = plans::PlanSpec {
        name: input.name,
        credits: input.credits,
        price: input.price,
        currency: input.currency,
        interval: input.interval.unwrap_or_else(|| "month".into()),
        rollover_cap: input.rollover_cap.unwrap_or(Credits::ZERO),
        free: input.free.unwrap_or(false),
        features,
    };
    once(&state, idempotency, || async {
        if spec.free && plans::free_plan_exists(&state.store).await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "free_plan_exists",
                "there is already an active free plan; archive it first",
            ));
        }
        let plan = plans::create(&state.store, spec, state.clock.now())
            .await
            .map_err(|(f, m)| ApiError::invalid(&f, m))?;
        created(plan)
    })
    .await
}

/// What a plan includes, replaced as a whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanUpdate {
    /// Feature id → `true`, or `{"limit": 3, "period": "day" | "month"}`.
    #[schema(value_type = Object)]
    pub features: BTreeMap<String, Value>,
}

/// Change what a plan includes; applies to the plan's customers from now on.
#[utoipa::path(post, path = "/v1/plans/{id}", tag = "subscriptions", request_body = PlanUpdate,
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`plan_not_found`, or `feature_not_found`: `features` names an unknown feature")))]
pub async fn update_plan(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    body: ApiJson<PlanUpdate>,
) -> Result<Json<Plan>, ApiError> {
    let features = plans::entitlements(&state.store, body.value.features)
        .await
        .map_err(features_error)?;
    let not_found = || ApiError::not_found("plan_not_found", format!("no such plan: {id}"));
    if !state.store.set_plan_features(&id, &features).await? {
        return Err(not_found());
    }
    state.store.plan(&id).await?.map(Json).ok_or_else(not_found)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    /// Where the portal's "return" link goes.
    #[schema(value_type = Option<HttpUrl>)]
    pub return_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalOut {
    /// Stripe's customer portal: switch plan, cancel.
    pub url: String,
}

/// Open Stripe's customer portal for self-service plan changes and cancellation.
#[utoipa::path(post, path = "/v1/billing-portal", tag = "subscriptions", request_body = PortalIn,
    responses((status = 200, body = PortalOut), (status = 404, body = ErrorBody, description = "`customer_not_found`"),
              (status = 502, body = ErrorBody, description = "`stripe_error`: Stripe refused or did not answer")))]
pub async fn billing_portal(
    State(state): State<AppState>,
    _key: SecretKey,
    body: ApiJson<PortalIn>,
) -> Result<Json<PortalOut>, ApiError> {
    let input = body.value;
    let return_url = url("return_url", input.return_url)?;
    let customer = state.customer(&input.customer).await?;
    let stripe_customer = crate::billing::stripe_customer(&state, &customer).await?;
    let session = state
        .stripe
        .client
        .create_billing_portal_session(&stripe_customer, return_url.as_deref())
        .await;
    let session = session.map_err(crate::billing::BillingError::from)?;
    Ok(Json(PortalOut { url: session.url }))
}
