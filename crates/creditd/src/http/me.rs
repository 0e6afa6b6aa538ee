//! The customer-scoped API: what the app's end user may read and do with a customer token.
//! Every handler takes its customer from the verified token and nowhere else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::views::Customer;
use creditd_domain::{Credits, Idempotency};
use creditd_store::SECONDS_PER_DAY;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::billing::checkout;
use crate::clock::iso_date;
use crate::http::customers::EntryList;
use crate::http::doc::UsageGroup;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, CustomerToken, IdempotencyKey};
use crate::http::list::{ApiQuery, ListQuery};
use crate::http::payments::{active_package, created, once, CheckoutOut, PaymentList};

const NO_CUSTOMER: &str = "`customer_not_found`: the token names a customer creditd does not have";

/// The longest span one usage query may cover.
pub const MAX_USAGE_DAYS: i64 = 366;
pub const DEFAULT_USAGE_DAYS: i64 = 30;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Unix seconds, inclusive; default 30 days before `to`. Before `to`, at most 366 days.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Unix seconds, exclusive; default now.
    #[param(minimum = 1)]
    pub to: Option<i64>,
    /// `day` (default) or `feature`.
    #[param(value_type = Option<UsageGroup>)]
    pub group_by: Option<String>,
}

/// Credits spent in one group: a UTC day, or a feature.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    /// `YYYY-MM-DD` (UTC), with `group_by=day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// With `group_by=feature`; null for captured holds that named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[schema(value_type = String, example = "12.5")]
    pub credits: Credits,
    /// Usage records and captured holds counted.
    pub requests: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageSummary {
    pub object: String,
    pub from: i64,
    pub to: i64,
    pub group_by: String,
    #[schema(value_type = String)]
    pub total: Credits,
    /// Days oldest first, or features by name; only groups with usage.
    pub data: Vec<UsageRow>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeCheckoutIn {
    /// `pkg_…`
    pub package: String,
    /// 1–100, default 1.
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i64>,
}

/// No parameters: the customer comes from the token, and naming one is an error, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

async fn me(state: &AppState, token: &CustomerToken) -> Result<Customer, ApiError> {
    state.customer(&token.customer).await
}

/// The token's customer with balance, available and held credits.
#[utoipa::path(get, path = "/v1/me", tag = "customer tokens", security(("customer_token" = [])),
    responses((status = 200, body = Customer), (status = 400, body = ErrorBody, description = "a query parameter: `/v1/me` takes none"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = NO_CUSTOMER)))]
pub async fn get_me(
    State(state): State<AppState>,
    token: CustomerToken,
    _none: ApiQuery<NoParams>,
) -> Result<Json<Customer>, ApiError> {
    me(&state, &token).await.map(Json)
}

/// The token's customer's ledger, newest first.
#[utoipa::path(get, path = "/v1/me/ledger", tag = "customer tokens", security(("customer_token" = [])), params(ListQuery),
    responses((status = 200, body = EntryList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = NO_CUSTOMER)))]
pub async fn my_ledger(
    State(state): State<AppState>,
    token: CustomerToken,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<EntryList>, ApiError> {
    me(&state, &token).await?;
    let page = state.store.ledger(&token.customer, &query.page()?).await?;
    Ok(Json(EntryList {
        object: "list",
        data: page.data,
        has_more: page.has_more,
    }))
}

/// The token's customer's payments, newest first, with receipts.
#[utoipa::path(get, path = "/v1/me/payments", tag = "customer tokens", security(("customer_token" = [])), params(ListQuery),
    responses((status = 200, body = PaymentList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = NO_CUSTOMER)))]
pub async fn my_payments(
    State(state): State<AppState>,
    token: CustomerToken,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PaymentList>, ApiError> {
    me(&state, &token).await?;
    let page = state.store.payments(&token.customer, &query.page()?).await?;
    Ok(Json(PaymentList {
        object: "list",
        data: page.data,
        has_more: page.has_more,
    }))
}

/// Credits the token's customer spent between `from` and `to`, by UTC day or by feature.
#[utoipa::path(get, path = "/v1/me/usage", tag = "customer tokens", security(("customer_token" = [])), params(UsageQuery),
    responses((status = 200, body = UsageSummary), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_CUSTOMER)))]
pub async fn my_usage(
    State(state): State<AppState>,
    token: CustomerToken,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageSummary>, ApiError> {
    let by_feature = match query.group_by.as_deref() {
        None | Some("day") => false,
        Some("feature") => true,
        Some(_) => return Err(ApiError::invalid("group_by", "must be `day` or `feature`")),
    };
    let to = query.to.unwrap_or_else(|| state.clock.now() + 1);
    let from = query.from.unwrap_or(to - DEFAULT_USAGE_DAYS * SECONDS_PER_DAY);
    if from < 0 || from >= to {
        return Err(ApiError::invalid("from", "must be before `to` (unix seconds)"));
    }
    if to - from > MAX_USAGE_DAYS * SECONDS_PER_DAY {
        return Err(ApiError::invalid(
            "to",
            format!("at most {MAX_USAGE_DAYS} days after `from`"),
        ));
    }
    me(&state, &token).await?;
    let buckets = state.store.usage_by_day(&token.customer, from, to).await?;
    let mut data: Vec<UsageRow> = Vec::new();
    let mut total = Credits::ZERO;
    for bucket in buckets {
        total = total
            .checked_add(bucket.credits)
            .ok_or_else(|| ApiError::internal("usage total overflow"))?;
        let (day, feature) = if by_feature {
            (None, bucket.feature)
        } else {
            (Some(iso_date(bucket.day)), None)
        };
        match data.iter_mut().find(|r| r.day == day && r.feature == feature) {
            Some(row) => {
                row.credits = row
                    .credits
                    .checked_add(bucket.credits)
                    .ok_or_else(|| ApiError::internal("overflow"))?;
                row.requests += bucket.requests;
            }
            None => data.push(UsageRow {
                day,
                feature,
                credits: bucket.credits,
                requests: bucket.requests,
            }),
        }
    }
    if by_feature {
        data.sort_by(|a, b| a.feature.cmp(&b.feature));
    }
    Ok(Json(UsageSummary {
        object: "usage_summary".into(),
        from,
        to,
        group_by: if by_feature { "feature" } else { "day" }.into(),
        total,
        data,
    }))
}

/// Start a Stripe Checkout for the token's customer; send the user to `url`. Returns to
/// creditd's success page, which links back to the billing page.
#[utoipa::path(post, path = "/v1/me/checkout-sessions", tag = "customer tokens", security(("customer_token" = [])),
    request_body = MeCheckoutIn, params(IdempotencyKey),
    responses((status = 201, body = CheckoutOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found` or `package_not_found`"),
              (status = 409, body = ErrorBody, description = "`package_archived`, `idempotency_key_in_use` or `idempotency_key_reused`"),
              (status = 502, body = ErrorBody, description = "`stripe_error`: Stripe refused or did not answer")))]
pub async fn my_checkout(
    State(state): State<AppState>,
    token: CustomerToken,
    idem: IdempotencyKey,
    body: ApiJson<MeCheckoutIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Each customer's keys are their own space: one customer can never replay another's.
    let idempotency = idem.0.as_ref().map(|key| Idempotency {
        scope: format!("customer:{}", token.customer),
        key: key.clone(),
        fingerprint: body.fingerprint.clone(),
    });
    let quantity = body.value.quantity.unwrap_or(1);
    start_checkout(&state, &token.customer, &body.value.package, quantity, idempotency)
        .await
        .map(|(status, out)| (status, Json(out)))
}

/// Checkout for a customer, shared by the API and the billing page's Buy button.
pub async fn start_checkout(
    state: &AppState,
    customer: &str,
    package: &str,
    quantity: i64,
    idempotency: Option<Idempotency>,
) -> Result<(StatusCode, Value), ApiError> {
    if !(1..=100).contains(&quantity) {
        return Err(ApiError::invalid("quantity", "must be between 1 and 100"));
    }
    let customer = state.customer(customer).await?;
    let package = active_package(state, package).await?;
    crate::ops::rate_limit::purchase(state, &customer.id)?;
    let (status, Json(value)) = once(state, idempotency, || async {
        let request = checkout::CheckoutRequest {
            customer,
            package,
            quantity,
            success_url: None,
            cancel_url: None,
        };
        let (session, payment) = checkout::create(state, request).await?;
        let out = CheckoutOut {
            id: session.id,
            url: session.url,
            payment,
        };
        created(out)
    })
    .await?;
    Ok((status, value))
}
