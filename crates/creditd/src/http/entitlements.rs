//! What a customer may use: `check` before a call, its entitlements, and its budgets.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::calendar::Period;
use creditd_domain::entitlement::{admit, BudgetRule, Entitlement, Refusal};
use creditd_domain::views::{Budget, EntitlementView};
use creditd_domain::{validate, Credits};
use creditd_store::{Catalog, NewBudget};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::catalog::priced_amount;
use crate::http::doc::{BudgetPeriod, CustomerId, FeatureId, PositiveCredits, Text};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, SecretKey};
use crate::http::spend::{budget_id, feature};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    /// The feature the call would use (gated features need the plan to include them).
    #[schema(value_type = Option<FeatureId>)]
    pub feature: Option<String>,
    #[schema(value_type = Option<PositiveCredits>, example = "2")]
    pub amount: Option<Credits>,
    /// Units of `feature`, priced at its current rate card (instead of `amount`).
    pub units: Option<BTreeMap<String, i64>>,
    /// A budget of the customer's the spend would count against.
    #[schema(value_type = Option<CustomerId>)]
    pub budget: Option<String>,
}

/// A budget as `check` saw it.
#[derive(Serialize, ToSchema)]
pub struct BudgetCheck {
    pub id: String,
    #[schema(value_type = String)]
    pub limit: Credits,
    #[schema(value_type = String)]
    pub used: Credits,
    #[schema(value_type = String)]
    pub remaining: Credits,
    pub resets_at: Option<i64>,
}

/// Whether a spend would be allowed now, and why not.
#[derive(Serialize, ToSchema)]
pub struct CheckOut {
    pub allowed: bool,
    /// `feature_not_in_plan`, `limit_reached`, `budget_exceeded` or `insufficient_credits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[schema(value_type = String)]
    pub balance: Credits,
    #[schema(value_type = String)]
    pub available: Credits,
    /// The plan that applies to the customer now (none without a paid subscription or a free plan).
    pub plan: Option<String>,
    /// The feature's limit per period, its use so far, and when it resets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<i64>,
    /// The credits the spend would take (priced from `units` when given).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub amount: Option<Credits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetCheck>,
}

/// The limit on `feature` in the customer's plan and its use this period.
async fn feature_use(
    state: &AppState,
    catalog: &Catalog,
    plan: Option<&str>,
    customer: &str,
    feature: &str,
    now: i64,
) -> Result<Option<(i64, Period, i64, i64)>, ApiError> {
    let entitlement = plan
        .and_then(|p| catalog.plans.get(p))
        .and_then(|r| r.features.get(feature));
    match entitlement {
        Some(Entitlement::Limited { limit, period }) => {
            let (start, end) = period.window(now);
            let used = state.store.feature_uses(customer, feature, start).await?;
            Ok(Some((*limit, *period, used, end.unwrap_or(0))))
        }
        _ => Ok(None),
    }
}

/// Would this spend be allowed now? The same rules the writer applies, over committed
/// state; changes nothing.
#[utoipa::path(post, path = "/v1/check", request_body = CheckIn, tag = "spending",
    responses((status = 200, body = CheckOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found`, `budget_not_found`, or `feature_not_found` (units of an unknown feature)")))]
pub async fn check(
    State(state): State<AppState>,
    _key: SecretKey,
    body: ApiJson<CheckIn>,
) -> Result<Json<CheckOut>, ApiError> {
    let input = &body.value;
    if let Some(f) = &input.feature {
        feature("feature", f)?;
    }
    budget_id(input.budget.as_deref())?;
    let (amount, _) = priced_amount(
        &state,
        input.feature.as_deref(),
        input.amount,
        input.units.as_ref(),
        true,
    )
    .await?;
    let now = state.clock.now();
    let customer = state.customer(&input.customer).await?;
    let catalog = state.store.catalog().await?;
    let plan = state.store.applicable_plan(&customer.id, &catalog).await?;
    let mut out = CheckOut {
        allowed: true,
        reason: None,
        balance: customer.balance,
        available: customer.available,
        plan: plan.clone(),
        limit: None,
        used: None,
        resets_at: None,
        amount,
        budget: None,
    };
    if let Some(f) = &input.feature {
        let limited = feature_use(&state, &catalog, plan.as_deref(), &customer.id, f, now).await?;
        if let Some((limit, _, used, resets_at)) = limited {
            (out.limit, out.used, out.resets_at) = (Some(limit), Some(used), Some(resets_at));
        }
        let rules = plan.as_deref().and_then(|p| catalog.plans.get(p));
        let used = limited.map_or(0, |l| l.2);
        if let Err(refusal) = admit(&catalog.gated, rules, f, |_| used, now) {
            out.reason = Some(reason(&refusal));
        }
    }
    if let Some(id) = &input.budget {
        let budget = state
            .store
            .budget(&customer.id, id, now)
            .await?
            .ok_or_else(|| ApiError::not_found("budget_not_found", format!("no such budget: {id}")))?;
        let rule = BudgetRule {
            id: budget.id.clone(),
            limit: budget.limit,
            period: budget.period,
        };
        let window = budget.period.window(now).0;
        let wanted = amount.unwrap_or(Credits::from_micros(1));
        if out.reason.is_none() && rule.allow(budget.used, wanted, window).is_err() {
            out.reason = Some("budget_exceeded");
        }
        out.budget = Some(BudgetCheck {
            id: budget.id,
            limit: budget.limit,
            used: budget.used,
            remaining: budget.remaining,
            resets_at: budget.resets_at,
        });
    }
    let short = amount.is_some_and(|a| a > customer.available) || customer.available <= Credits::ZERO;
    if out.reason.is_none() && short {
        out.reason = Some("insufficient_credits");
    }
    out.allowed = out.reason.is_none();
    Ok(Json(out))
}

fn reason(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::FeatureNotInPlan { .. } => "feature_not_in_plan",
        Refusal::LimitReached { .. } => "limit_reached",
        Refusal::BudgetExceeded { .. } => "budget_exceeded",
    }
}

#[derive(Serialize, ToSchema)]
pub struct EntitlementList {
    pub object: &'static str,
    /// The plan that applies now.
    pub plan: Option<String>,
    pub data: Vec<EntitlementView>,
}

/// Every feature as it stands for this customer now: included or not, its limit, use and reset.
pub async fn entitlements_of(state: &AppState, customer: &str) -> Result<EntitlementList, ApiError> {
    let now = state.clock.now();
    let catalog = state.store.catalog().await?;
    let plan = state.store.applicable_plan(customer, &catalog).await?;
    let rules = plan.as_deref().and_then(|p| catalog.plans.get(p));
    let mut data = Vec::new();
    for (id, f) in &catalog.features {
        let limited = feature_use(state, &catalog, plan.as_deref(), customer, id, now).await?;
        let included = !catalog.gated.contains(id) || rules.is_some_and(|r| r.features.contains_key(id));
        let used = limited.map_or(0, |l| l.2);
        data.push(EntitlementView {
            feature: id.clone(),
            name: f.name.clone(),
            allowed: admit(&catalog.gated, rules, id, |_| used, now).is_ok(),
            included,
            gated: catalog.gated.contains(id),
            limit: limited.map(|l| l.0),
            period: limited.map(|l| l.1),
            used: limited.map(|l| l.2),
            resets_at: limited.map(|l| l.3),
        });
    }
    Ok(EntitlementList {
        object: "list",
        plan,
        data,
    })
}

/// The customer's entitlements.
#[utoipa::path(get, path = "/v1/customers/{id}/entitlements", tag = "customers",
    responses((status = 200, body = EntitlementList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn entitlements(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<EntitlementList>, ApiError> {
    let customer = state.customer(&id).await?;
    entitlements_of(&state, &customer.id).await.map(Json)
}

/// A cap on what one of the app's keys or team members may spend of the customer's credits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetIn {
    /// The app's own id for it, e.g. `key_abc`.
    #[schema(value_type = CustomerId)]
    pub id: String,
    #[schema(value_type = PositiveCredits, example = "50")]
    pub limit: Credits,
    /// `day`, `month` or `total`.
    #[schema(value_type = BudgetPeriod, example = "month")]
    pub period: String,
    #[schema(value_type = Option<Text>)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetList {
    pub object: &'static str,
    pub data: Vec<Budget>,
}

/// Create a budget (201), or change one with the same id (200; this period's use is kept).
#[utoipa::path(post, path = "/v1/customers/{id}/budgets", tag = "customers", request_body = BudgetIn,
    responses((status = 201, body = Budget), (status = 200, body = Budget), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_budget(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(customer): Path<String>,
    body: ApiJson<BudgetIn>,
) -> Result<(StatusCode, Json<Budget>), ApiError> {
    let input = body.value;
    validate::customer_id(&input.id).map_err(|m| ApiError::invalid("id", m))?;
    let limit = input.limit.positive().map_err(|e| ApiError::invalid("limit", e))?;
    let period =
        Period::parse(&input.period).ok_or_else(|| ApiError::invalid("period", "must be day, month or total"))?;
    if let Some(name) = &input.name {
        validate::text(name).map_err(|m| ApiError::invalid("name", m))?;
    }
    let new = NewBudget {
        customer: customer.clone(),
        id: input.id,
        name: input.name,
        limit,
        period,
    };
    let saved = state.store.put_budget(&new, state.clock.now()).await?;
    let (budget, created) =
        saved.ok_or_else(|| ApiError::not_found("customer_not_found", format!("no such customer: {customer}")))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(budget)))
}

/// The customer's budgets with what each has used this period.
#[utoipa::path(get, path = "/v1/customers/{id}/budgets", tag = "customers",
    responses((status = 200, body = BudgetList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_budgets(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<BudgetList>, ApiError> {
    let customer = state.customer(&id).await?;
    Ok(Json(BudgetList {
        object: "list",
        data: state.store.budgets(&customer.id, state.clock.now()).await?,
    }))
}
