//! What the API returns: snapshots of creditd's objects. Serializable both ways because an
//! idempotent replay returns the stored snapshot.

use serde::{Deserialize, Serialize};

use crate::account::EntryKind;
use crate::amount::Credits;
use crate::calendar::Period;
use crate::command::GrantSource;
use crate::pricing::Priced;

/// A customer: the app's own user id, with balances as exact decimal strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    /// The app's own user id.
    pub id: String,
    pub email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// Σ live grants' remaining credits.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12.5"))]
    pub balance: Credits,
    /// Balance minus open holds: what can be spent now.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "10"))]
    pub available: Credits,
    /// Credits reserved by open holds.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2.5"))]
    pub held: Credits,
    /// Credits of disputed payments, unspendable until the dispute closes (not in balance).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0"))]
    pub frozen: Credits,
    /// Credits owed after refunds or lost disputes took more than was left; included in
    /// balance (which is then negative) and paid first by the next credits.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0"))]
    pub debt: Credits,
    /// Available credits below this send `credits.low` (the customer's own threshold, or the
    /// configured default).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1"))]
    pub low_balance_threshold: Credits,
    /// Unix seconds.
    pub created: i64,
    /// The current (or last) subscription, when the customer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionSummary>,
    /// Auto top-up, when the customer has set it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_topup: Option<AutoTopupView>,
}

/// A customer's auto top-up: when available credits fall below `threshold`, `quantity` of
/// `package` is bought off-session with the saved card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoTopupView {
    pub customer: String,
    pub enabled: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "10"))]
    pub threshold: Credits,
    /// `pkg_…`; null until one is chosen.
    pub package: Option<String>,
    pub quantity: i64,
    /// At most this many top-ups per calendar month (UTC); none: no limit.
    pub max_per_month: Option<i64>,
    /// Failed top-ups in a row; the third turns auto top-up off.
    pub consecutive_failures: i64,
    /// Why auto top-up turned itself off.
    pub disabled_reason: Option<String>,
}

impl AutoTopupView {
    /// The settings of a customer who never saved any: off, no package chosen, one at a time.
    pub fn off(customer: &str, threshold: Credits) -> AutoTopupView {
        AutoTopupView {
            customer: customer.to_string(),
            enabled: false,
            threshold,
            package: None,
            quantity: 1,
            max_per_month: None,
            consecutive_failures: 0,
            disabled_reason: None,
        }
    }
}

/// A lot of credits: spent in order of priority, earliest expiry, then age.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: String,
    pub customer: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100"))]
    pub amount: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "40.5"))]
    pub remaining: Credits,
    /// 0–100, lower is spent first.
    pub priority: i32,
    /// Unix seconds; null never expires.
    pub expires_at: Option<i64>,
    pub source: GrantSource,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub created: i64,
}

/// One immutable ledger entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub id: String,
    pub customer: String,
    /// The grant whose credits moved; none for debt (a clawback no grant covered, or its payment).
    pub grant: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "grant"))]
    pub kind: EntryKind,
    /// Signed: positive adds credits, negative takes them.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "-1.25"))]
    pub amount: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "98.75"))]
    pub balance_after: Credits,
    /// What caused it: a usage id, a hold id, a grant id.
    pub reference: Option<String>,
    pub feature: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    pub created: i64,
}

/// A recorded usage: the credits it took and the balance after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub id: String,
    pub customer: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.25"))]
    pub amount: Credits,
    pub feature: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub balance: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub available: Credits,
    /// One entry per grant drawn from, in spending order.
    pub entries: Vec<Entry>,
    pub created: i64,
    /// The units and the prices they were charged at, for usage given in units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priced: Option<Priced>,
    /// The budget the usage counted against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HoldStatus {
    Open,
    Captured,
    Released,
    Expired,
}

impl HoldStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Open => "open",
            HoldStatus::Captured => "captured",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<HoldStatus> {
        [
            HoldStatus::Open,
            HoldStatus::Captured,
            HoldStatus::Released,
            HoldStatus::Expired,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// A reservation of credits (two-phase spend).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hold {
    pub id: String,
    pub customer: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5"))]
    pub amount: Credits,
    pub status: HoldStatus,
    /// What a capture spent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub captured: Option<Credits>,
    pub feature: Option<String>,
    /// Unix seconds after which an open hold releases itself.
    pub expires_at: i64,
    pub created: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub balance: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub available: Credits,
    /// Entries written by a capture.
    pub entries: Vec<Entry>,
    /// The budget the hold reserves against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Units priced when the hold was placed, or at its capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priced: Option<Priced>,
}

/// A credit package the app sells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Package {
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100"))]
    pub credits: Credits,
    /// Price in minor units of `currency` (500 = 5.00 usd).
    pub price: i64,
    pub currency: String,
    /// The Stripe Price it is sold with; created on first sale when not given.
    pub stripe_price: Option<String>,
    pub active: bool,
    pub created: i64,
}

/// A purchase of credits through Stripe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    pub id: String,
    pub customer: String,
    pub package: String,
    pub quantity: i64,
    /// Credits this payment grants once paid: the package's credits × quantity.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100"))]
    pub credits: Credits,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "succeeded"))]
    pub status: crate::money::PaymentStatus,
    /// `checkout` or `payment_intent`.
    pub flow: String,
    pub checkout_session: Option<String>,
    pub payment_intent: Option<String>,
    /// The grant its credits arrived in.
    pub grant: Option<String>,
    pub receipt_url: Option<String>,
    pub failure_message: Option<String>,
    pub created: i64,
    pub updated: i64,
}

/// A subscription plan: a recurring Stripe Price and the credits each paid period grants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Credits granted for each paid period, expiring at the period's end.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1000"))]
    pub credits: Credits,
    /// Minor units per period.
    pub price: i64,
    pub currency: String,
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// Unused allowance carried into the next period, at most this much (0: none).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "500"))]
    pub rollover_cap: Credits,
    pub stripe_price: Option<String>,
    pub active: bool,
    pub created: i64,
    /// The free plan: no Stripe price; its credits are granted by creditd every calendar
    /// month (expiring at its end) to every customer without a paid subscription.
    #[serde(default)]
    pub free: bool,
    /// Feature id → what the plan includes of it.
    #[serde(default)]
    pub features: std::collections::BTreeMap<String, PlanFeature>,
}

/// A feature on a plan: included (`true`), or included up to `limit` uses per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlanFeature {
    Included(bool),
    Limited { limit: i64, period: Period },
}

/// A feature the app sells, with its rate card when it is priced by units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feature {
    pub id: String,
    pub name: String,
    /// Unit → credits per `per` units. Empty for a feature used with an `amount`.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub prices: std::collections::BTreeMap<String, Credits>,
    pub per: i64,
    pub active: bool,
    /// Whether some plan lists it: customers whose plan lacks it are refused.
    pub gated: bool,
    pub created: i64,
    pub updated: i64,
}

/// What one of the app's keys (or team members) may spend of a customer's credits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Budget {
    /// The app's own id for it, e.g. its API key id.
    pub id: String,
    pub customer: String,
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "50"))]
    pub limit: Credits,
    pub period: Period,
    /// Spent (and held) in the current period.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12.5"))]
    pub used: Credits,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "37.5"))]
    pub remaining: Credits,
    /// When the current period ends; null for `total`.
    pub resets_at: Option<i64>,
    pub created: i64,
}

/// A feature as it stands for one customer now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementView {
    pub feature: String,
    pub name: String,
    /// Whether the customer may use it now (false when not in the plan or past its limit).
    pub allowed: bool,
    /// Whether the customer's plan includes it (always true for a feature no plan lists).
    pub included: bool,
    pub gated: bool,
    pub limit: Option<i64>,
    pub period: Option<Period>,
    pub used: Option<i64>,
    pub resets_at: Option<i64>,
}

/// A customer's subscription as creditd last saw it in Stripe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionSummary {
    /// `sub_…`
    pub id: String,
    pub plan: Option<String>,
    /// Stripe's status: `active`, `past_due`, `canceled`, …
    pub status: String,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
}
