//! Credit packages: what the app sells, at a price in money or at an existing Stripe Price.

use creditd_domain::views::Package;
use creditd_domain::{money, Credits};
use creditd_store::{NewPackage, Store};
use creditd_stripe::client::{StripeClient, StripeError};

/// A package as an operator describes it.
pub struct PackageSpec {
    pub name: String,
    pub credits: Credits,
    /// Either a price (minor units + currency) …
    pub price: Option<(i64, String)>,
    /// … or an existing one-time Stripe Price.
    pub stripe_price: Option<String>,
}

/// Validates and stores a package. A Stripe Price is looked up and refused when it is
/// recurring (packages are one-time purchases) or has no fixed amount. Errors name the field.
pub async fn create(
    store: &Store,
    stripe: Option<&StripeClient>,
    spec: PackageSpec,
    now: i64,
) -> Result<Package, Refusal> {
    let name = checked_name(&spec.name)?;
    let credits = spec
        .credits
        .positive()
        .map_err(|e| ("credits".to_string(), e.to_string()))?;
    let new = match (spec.price, spec.stripe_price) {
        (Some((amount, currency)), None) => NewPackage {
            name,
            credits,
            price: money::price(amount).map_err(|m| ("price".to_string(), m))?,
            currency: money::currency(&currency).map_err(|m| ("currency".to_string(), m))?,
            stripe_price: None,
        },
        (None, Some(price_id)) => {
            let stripe = stripe.ok_or_else(|| {
                (
                    "stripe_price".to_string(),
                    "needs Stripe: set STRIPE_SECRET_KEY, or create it through the running server".to_string(),
                )
            })?;
            if price_id.is_empty()
                || price_id.len() > 255
                || !price_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err((
                    "stripe_price".to_string(),
                    "must be a Stripe Price id such as price_1Nx…".to_string(),
                )
                    .into());
            }
            let price = stripe.retrieve_price(&price_id).await.map_err(|e| match e {
                StripeError::InvalidRequest { status: 404, .. } => Refusal {
                    field: "stripe_price".into(),
                    message: format!("Stripe has no Price {price_id}"),
                    not_found: true,
                },
                other => ("stripe_price".to_string(), other.to_string()).into(),
            })?;
            if price.recurring {
                return Err((
                    "stripe_price".to_string(),
                    format!("{price_id} is a recurring price; packages take one-time prices"),
                )
                    .into());
            }
            if !price.active {
                return Err(("stripe_price".to_string(), format!("{price_id} is archived in Stripe")).into());
            }
            let amount = price
                .unit_amount
                .ok_or_else(|| ("stripe_price".to_string(), format!("{price_id} has no fixed amount")))?;
            NewPackage {
                name,
                credits,
                price: amount,
                currency: price.currency.to_ascii_lowercase(),
                stripe_price: Some(price.id),
            }
        }
        _ => {
            return Err((
                "price".to_string(),
                "give either price and currency, or stripe_price".to_string(),
            )
                .into())
        }
    };
    Ok(store
        .create_package(&new, now)
        .await
        .map_err(|e| ("package".to_string(), e.to_string()))?)
}

/// Why a package (or plan) was not created: the field at fault, and whether what it names
/// does not exist (a 404 rather than a 400).
#[derive(Debug)]
pub struct Refusal {
    pub field: String,
    pub message: String,
    pub not_found: bool,
}

impl From<(String, String)> for Refusal {
    fn from((field, message): (String, String)) -> Refusal {
        Refusal {
            field,
            message,
            not_found: false,
        }
    }
}

/// Names: 1–100 characters, not blank, no control characters; stored trimmed.
pub fn checked_name(name: &str) -> Result<String, (String, String)> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > 100 {
        return Err(("name".into(), "must be 1 to 100 characters".into()));
    }
    creditd_domain::validate::text(name).map_err(|m| ("name".to_string(), m))?;
    Ok(trimmed.to_string())
}
