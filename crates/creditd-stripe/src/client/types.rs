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

/// A Charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    /// Cumulative over all refunds.
    pub amount_refunded: i64,
    pub receipt_url: Option<String>,
    pub payment_intent: Option<String>,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
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
