//! Subscription plans: credits granted each paid period, at a recurring price.

use std::collections::BTreeMap;

use creditd_domain::calendar::Period;
use creditd_domain::entitlement::Entitlement;
use creditd_domain::views::Plan;
use creditd_domain::{money, Credits};
use creditd_store::{NewPlan, Store};
use serde_json::Value;

pub struct PlanSpec {
    pub name: String,
    pub credits: Credits,
    /// Minor units and currency; none for the free plan.
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub interval: String,
    pub rollover_cap: Credits,
    pub free: bool,
    pub features: BTreeMap<String, Entitlement>,
}

/// Why a plan's `features` were refused: an id that names no feature, or an invalid value.
pub enum FeaturesError {
    Unknown(String),
    Invalid(String, String),
}

impl FeaturesError {
    /// The field and what is wrong with it.
    pub fn describe(self) -> (String, String) {
        match self {
            FeaturesError::Unknown(id) => (
                format!("features.{id}"),
                format!("{id} is not a feature; create it with POST /v1/features"),
            ),
            FeaturesError::Invalid(field, message) => (field, message),
        }
    }
}

/// A plan's `features` as the API takes them: `true` (included), `false` (left out) or
/// `{"limit": N, "period": "day" | "month"}`; every id must name a feature. Errors name the field.
pub async fn entitlements(
    store: &Store,
    features: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Entitlement>, FeaturesError> {
    let known = store
        .features(true)
        .await
        .map_err(|e| FeaturesError::Invalid("features".to_string(), e.to_string()))?;
    let mut out = BTreeMap::new();
    for (id, value) in features {
        let field = format!("features.{id}");
        if !known.iter().any(|f| f.id == id) {
            return Err(FeaturesError::Unknown(id));
        }
        let entitlement = match &value {
            Value::Bool(true) => Entitlement::Included,
            Value::Bool(false) => continue,
            Value::Object(map) => limit(&field, map).map_err(|(f, m)| FeaturesError::Invalid(f, m))?,
            _ => {
                let message = "must be true, false or {\"limit\", \"period\"}";
                return Err(FeaturesError::Invalid(field, message.into()));
            }
        };
        out.insert(id, entitlement);
    }
    Ok(out)
}

fn limit(field: &str, map: &serde_json::Map<String, Value>) -> Result<Entitlement, (String, String)> {
    if let Some(other) = map.keys().find(|k| !["limit", "period"].contains(&k.as_str())) {
        return Err((
            format!("{field}.{other}"),
            "unknown field; a limit takes limit and period".into(),
        ));
    }
    let count = map
        .get("limit")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| (format!("{field}.limit"), "must be a positive integer".to_string()))?;
    let period = map
        .get("period")
        .and_then(Value::as_str)
        .and_then(Period::parse)
        .filter(|p| *p != Period::Total)
        .ok_or_else(|| (format!("{field}.period"), "must be day or month".to_string()))?;
    Entitlement::limited(count, period).map_err(|m| (format!("{field}.limit"), m))
}

/// Whether an active free plan exists (there is at most one).
pub async fn free_plan_exists(store: &Store) -> Result<bool, creditd_store::StoreError> {
    Ok(store.plans(false).await?.iter().any(|p| p.free))
}

/// Validates and stores a plan; errors name the field. Its Stripe Price is created on first use.
pub async fn create(store: &Store, spec: PlanSpec, now: i64) -> Result<Plan, (String, String)> {
    let name = super::packages::checked_name(&spec.name)?;
    let credits = match spec.free {
        true => spec.credits.non_negative(),
        false => spec.credits.positive(),
    }
    .map_err(|e| ("credits".to_string(), e.to_string()))?;
    if !["day", "week", "month", "year"].contains(&spec.interval.as_str()) {
        return Err(("interval".into(), "must be day, week, month or year".into()));
    }
    let (price, currency) = match (spec.free, spec.price, spec.currency) {
        (true, None, None) if spec.interval == "month" => (0, "usd".to_string()),
        (true, None, None) => return Err(("interval".into(), "the free plan's credits are monthly".into())),
        (true, _, _) => return Err(("price".into(), "the free plan has no price".into())),
        (false, Some(price), Some(currency)) => (
            money::price(price).map_err(|m| ("price".to_string(), m))?,
            money::currency(&currency).map_err(|m| ("currency".to_string(), m))?,
        ),
        (false, None, _) => return Err(("price".into(), "is required (or \"free\": true)".into())),
        (false, Some(_), None) => return Err(("currency".into(), "is required with price".into())),
    };
    if spec.free
        && free_plan_exists(store)
            .await
            .map_err(|e| ("plan".to_string(), e.to_string()))?
    {
        return Err((
            "free".into(),
            "there is already an active free plan; archive it first".into(),
        ));
    }
    let rollover_cap = spec
        .rollover_cap
        .non_negative()
        .map_err(|e| ("rollover_cap".to_string(), e.to_string()))?;
    let new = NewPlan {
        name,
        credits,
        price,
        currency,
        interval: spec.interval,
        rollover_cap,
        stripe_price: None,
        free: spec.free,
        features: spec.features,
    };
    store
        .create_plan(&new, now)
        .await
        .map_err(|e| ("plan".to_string(), e.to_string()))
}
