//! creditd's own plain views of Stripe objects, so nothing outside this crate
//! names an async-stripe type.

/// A Price, as far as credit packages and plans care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceInfo {
    pub id: String,
    /// `None` for custom-amount or tiered prices.
    pub unit_amount: Option<i64>,
    /// Lowercase ISO code, as Stripe sends it (`"usd"`).
    pub currency: String,
    /// `true` for subscription prices; packages accept only one-time prices.
    pub recurring: bool,
    pub product: String,
    pub active: bool,
}

/// What to put in a Checkout Session (mode `payment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutParams {
    /// `cus_…`
    pub customer: String,
    /// `price_…`
    pub price: String,
    pub quantity: u64,
    /// May contain `{CHECKOUT_SESSION_ID}`, which Stripe fills in.
    pub success_url: String,
    pub cancel_url: String,
    pub client_reference_id: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub idempotency_key: String,
}

/// A Checkout Session, with its line items when they were expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    pub customer: Option<String>,
    pub payment_intent: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub client_reference_id: Option<String>,
    /// Sorted by key.
    pub metadata: Vec<(String, String)>,
    /// `(price id, quantity)`; empty unless retrieved with line items.
    pub line_items: Vec<(String, u64)>,
}

/// What to put in a PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentParams {
    pub customer: String,
    pub amount: i64,
    pub currency: String,
    pub metadata: Vec<(String, String)>,
    pub idempotency_key: String,
}

/// A PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    pub id: String,
    pub client_secret: Option<String>,
    /// `requires_payment_method`, `processing`, `succeeded`, …
    pub status: String,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub latest_charge: Option<String>,
    /// Sorted by key.
    pub metadata: Vec<(String, String)>,
}

/// A Charge. Stripe's charge does not name its dispute: see
/// [`crate::StripeClient::list_disputes_for_charge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    /// Cumulative over all pending and succeeded refunds.
    pub amount_refunded: i64,
    pub receipt_url: Option<String>,
    pub payment_intent: Option<String>,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
    /// Fully refunded (`amount_refunded == amount`).
    pub refunded: bool,
    /// A dispute was opened on it (stays true once the dispute is closed).
    pub disputed: bool,
    pub currency: String,
    pub customer: Option<String>,
}

/// What to refund: a charge, or the successful charge of a PaymentIntent
/// (give one of them, or both if they match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundParams {
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    /// Minor units; `None` refunds whatever is left.
    pub amount: Option<i64>,
    pub idempotency_key: String,
}

/// A Refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    /// Why a `failed` refund failed (`declined`, `expired_or_canceled_card`…).
    pub failure_reason: Option<String>,
    pub created: i64,
}

/// A Dispute (chargeback) on a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub id: String,
    /// Disputed amount, minor units.
    pub amount: i64,
    pub currency: String,
    /// `needs_response`, `under_review`, `won`, `lost`, `warning_needs_response`,
    /// `warning_under_review`, `warning_closed` or `prevented`.
    pub status: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    /// `fraudulent`, `product_not_received`, `general`, …
    pub reason: String,
    pub created: i64,
}

impl Dispute {
    /// Whether the dispute is over (`won`, `lost`, `warning_closed`, `prevented`).
    pub fn is_closed(&self) -> bool {
        ["won", "lost", "warning_closed", "prevented"].contains(&self.status.as_str())
    }
}

/// An event from the events API, kept as JSON for lenient parsing
/// ([`crate::event::Event::parse`]) and for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub id: String,
    pub type_: String,
    pub created: i64,
    pub payload_json: String,
}
