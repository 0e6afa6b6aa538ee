//! Buying credits through Stripe: the Stripe customer of each customer, packages and their
//! Prices, Checkout Sessions and PaymentIntents, and fulfilment that converges a payment to
//! what Stripe's current state says — from the webhook, the success page, or both at once.

pub mod autotopup;
pub mod checkout;
pub mod events;
pub mod free_plan;
pub mod intents;
pub mod package_sync;
pub mod packages;
pub mod plans;
pub mod reconcile;
pub mod refunds;
pub mod subscriptions;
pub mod webhook;

use creditd_domain::views::{Customer, Grant, Package, Payment};
use creditd_domain::{Command, Outcome};
use creditd_store::{AllowanceRequest, Convergence, MoneyState, PaymentUpdate, StoreError};
use creditd_stripe::client::StripeClient;

use crate::app::AppState;
use crate::http::error::ApiError;

/// Stripe as creditd uses it.
#[derive(Clone, Debug)]
pub struct Stripe {
    pub client: StripeClient,
    /// Any of these may sign a webhook (several while a secret is being rolled).
    pub webhook_secrets: Vec<String>,
    /// Where browsers reach creditd, for success and cancel pages.
    pub public_url: String,
}

/// Why fulfilment could not finish; the webhook answers 5xx so Stripe retries.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Stripe(#[from] creditd_stripe::client::StripeError),
    #[error(transparent)]
    Store(#[from] creditd_store::StoreError),
    /// Stripe's object disagrees with creditd's record of the payment: nothing is granted.
    #[error("{0}")]
    Mismatch(String),
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> ApiError {
        match e {
            BillingError::Store(s) => s.into(),
            BillingError::Stripe(creditd_stripe::client::StripeError::Card { message, .. }) => {
                ApiError::new(axum::http::StatusCode::PAYMENT_REQUIRED, "card_declined", message)
            }
            BillingError::Stripe(s) => {
                tracing::error!(error = %s, "Stripe call failed");
                ApiError::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    "stripe_error",
                    "Stripe did not accept the request; it has been logged",
                )
            }
            BillingError::Mismatch(m) => ApiError::internal(m),
        }
    }
}

/// Moves a payment through the writer: `Paid` grants its credits once, in the same batch
/// that marks it succeeded. Returns the payment and whether credits were granted now.
pub async fn update_payment(
    state: &AppState,
    id: &str,
    update: PaymentUpdate,
) -> Result<(Payment, bool), BillingError> {
    let command = Command::UpdatePayment {
        payment: id.to_string(),
        update,
    };
    match state.submit(command).await? {
        Outcome::Payment { payment, granted } => Ok((payment, granted)),
        other => Err(unexpected(other)),
    }
}

/// Converges a paid payment's credits to Stripe's money through the writer.
pub async fn converge_payment(state: &AppState, id: &str, money: MoneyState) -> Result<Convergence, BillingError> {
    let command = Command::ConvergePayment {
        payment: id.to_string(),
        money,
    };
    match state.submit(command).await? {
        Outcome::Converged(done) => Ok(done),
        other => Err(unexpected(other)),
    }
}

/// Grants an invoice's allowance through the writer, once per invoice.
pub async fn grant_allowance(state: &AppState, request: AllowanceRequest) -> Result<Option<Grant>, BillingError> {
    match state.submit(Command::GrantAllowance(request)).await? {
        Outcome::Allowance(grant) => Ok(grant),
        other => Err(unexpected(other)),
    }
}

fn unexpected(outcome: Outcome) -> BillingError {
    StoreError::Corrupt(format!("the writer answered with {outcome:?}")).into()
}

/// The Stripe customer for a creditd customer: created once (the idempotency key makes
/// concurrent first purchases agree on one) and reused.
pub async fn stripe_customer(state: &AppState, customer: &Customer) -> Result<String, BillingError> {
    if let Some(existing) = state.store.stripe_customer(&customer.id).await? {
        return Ok(existing);
    }
    let key = format!("creditd-customer-{}", customer.id);
    let created = state
        .stripe
        .client
        .create_customer(&customer.id, customer.email.as_deref(), &key)
        .await?;
    Ok(state
        .store
        .link_stripe_customer(&customer.id, &created, state.clock.now())
        .await?)
}

/// The Stripe Price a package sells with, created on first use.
pub async fn stripe_price(state: &AppState, package: &Package) -> Result<String, BillingError> {
    if let Some(price) = &package.stripe_price {
        return Ok(price.clone());
    }
    let key = format!("creditd-package-{}", package.id);
    let price = state
        .stripe
        .client
        .create_product_and_price(&package.name, package.price, &package.currency, &key)
        .await?;
    Ok(state.store.set_package_price(&package.id, &price.id).await?)
}

/// The payment creditd named in a Stripe object's metadata when it created the object (found
/// this way when the object was created but not yet linked to its payment).
pub(super) async fn payment_named_in(
    state: &AppState,
    metadata: &[(String, String)],
) -> Result<Option<creditd_domain::views::Payment>, BillingError> {
    match metadata.iter().find(|(k, _)| k == "creditd_payment") {
        Some((_, id)) => Ok(state.store.payment(id).await?),
        None => Ok(None),
    }
}

/// The receipt of a PaymentIntent's latest charge; a failure to fetch it is logged, not fatal.
pub async fn receipt_url(state: &AppState, charge: Option<&str>) -> Option<String> {
    let charge = charge?;
    match state.stripe.client.retrieve_charge(charge).await {
        Ok(charge) => charge.receipt_url,
        Err(e) => {
            tracing::warn!(charge, error = %e, "could not fetch the receipt");
            None
        }
    }
}
