//! Writes as data: a batch of commands goes to storage, one result comes back per command.
//! Storage may apply a batch in one transaction (group commit) without changing this shape.

use serde::{Deserialize, Serialize};

use crate::allowance::AllowanceRequest;
use crate::amount::Credits;
use crate::purchase::PaymentUpdate;
use crate::refund::{Convergence, MoneyState};
use crate::views::{Customer, Grant, Hold, Payment, Usage};

/// Which kind of grant: where the credits came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GrantSource {
    SignupBonus,
    Promotion,
    Admin,
    Purchase,
    Subscription,
}

impl GrantSource {
    pub const ALL: [GrantSource; 5] = [
        GrantSource::SignupBonus,
        GrantSource::Promotion,
        GrantSource::Admin,
        GrantSource::Purchase,
        GrantSource::Subscription,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            GrantSource::SignupBonus => "signup_bonus",
            GrantSource::Promotion => "promotion",
            GrantSource::Admin => "admin",
            GrantSource::Purchase => "purchase",
            GrantSource::Subscription => "subscription",
        }
    }

    pub fn parse(s: &str) -> Option<GrantSource> {
        GrantSource::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewCustomer {
    pub id: String,
    pub email: Option<String>,
    pub metadata: serde_json::Value,
    /// Granted when the customer is created (not when it already existed); zero for none.
    pub signup_bonus: Credits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewGrant {
    pub customer: String,
    pub amount: Credits,
    pub priority: i32,
    pub expires_at: Option<i64>,
    pub source: GrantSource,
    pub reason: Option<String>,
    /// An external key that may be granted at most once per source (a Checkout Session id).
    pub reference: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewUsage {
    pub customer: String,
    pub amount: Credits,
    pub feature: String,
    pub metadata: serde_json::Value,
}

/// An operator taking credits away: drawn from live grants in spending order like usage,
/// never below zero, and recorded with the admin and the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewDeduction {
    pub customer: String,
    pub amount: Credits,
    /// The admin's email, written into each entry's metadata.
    pub admin: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewHold {
    pub customer: String,
    pub amount: Credits,
    pub ttl_seconds: i64,
    pub feature: Option<String>,
    pub metadata: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateCustomer(NewCustomer),
    Grant(NewGrant),
    Usage(NewUsage),
    /// An admin adjustment downwards; its outcome is a [`Usage`] with id `adj_…`.
    Deduct(NewDeduction),
    CreateHold(NewHold),
    /// Capture `amount`, or the whole hold when `None`.
    CaptureHold {
        hold: String,
        amount: Option<Credits>,
        feature: Option<String>,
    },
    ReleaseHold {
        hold: String,
    },
    /// A payment moved in Stripe: `Paid` grants its credits exactly once
    /// ([`crate::purchase`]); a succeeded payment never moves back.
    UpdatePayment {
        payment: String,
        update: PaymentUpdate,
    },
    /// A paid payment's credits brought to what Stripe's money says: clawed back, frozen,
    /// unfrozen or restored ([`crate::refund`]).
    ConvergePayment {
        payment: String,
        money: MoneyState,
    },
    /// An invoice's subscription allowance, once per invoice ([`crate::allowance`]).
    GrantAllowance(AllowanceRequest),
    /// Lapsed grants expired and lapsed holds released — what every command does first to
    /// the accounts it touches — for a customer nobody touches.
    Sweep {
        customer: String,
    },
}

impl Command {
    /// The customer whose account the command changes, when known without a lookup.
    pub fn customer(&self) -> Option<&str> {
        match self {
            Command::CreateCustomer(c) => Some(&c.id),
            Command::Grant(g) => Some(&g.customer),
            Command::Usage(u) => Some(&u.customer),
            Command::Deduct(d) => Some(&d.customer),
            Command::CreateHold(h) => Some(&h.customer),
            Command::GrantAllowance(a) => Some(&a.customer),
            Command::Sweep { customer } => Some(customer),
            Command::CaptureHold { .. }
            | Command::ReleaseHold { .. }
            | Command::UpdatePayment { .. }
            | Command::ConvergePayment { .. } => None,
        }
    }
}

/// Stripe-style idempotency: the first result for (scope, key) is kept and replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    /// Who owns the key space (the app's secret keys share one).
    pub scope: String,
    pub key: String,
    /// Hash of the request; the same key with another request is refused.
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub command: Command,
    pub idempotency: Option<Idempotency>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Customer {
        customer: Customer,
        created: bool,
    },
    Grant(Grant),
    Usage(Usage),
    Hold(Hold),
    /// The payment after the update, and whether credits were granted by it.
    Payment {
        payment: Payment,
        granted: bool,
    },
    Converged(Convergence),
    /// The allowance's grant; `None` when the invoice was handled before or grants nothing.
    Allowance(Option<Grant>),
    Swept,
}

/// Why a command did nothing. Serializable because idempotent replays return it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    #[error("no such customer: {0}")]
    CustomerNotFound(String),
    #[error("no such hold: {0}")]
    HoldNotFound(String),
    #[error("insufficient credits: {available} available of {requested} requested")]
    InsufficientCredits {
        balance: Credits,
        available: Credits,
        requested: Credits,
    },
    #[error("the hold is {status}, not open")]
    HoldNotOpen { status: String },
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("no such payment: {0}")]
    PaymentNotFound(String),
    #[error("a {kind} grant with reference {reference} already exists")]
    DuplicateGrantReference { kind: String, reference: String },
}
