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
    /// `day`, `week`, `month` or `year` for recurring prices.
    pub interval: Option<String>,
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
    /// `payment` or `subscription`.
    pub mode: String,
    /// Subscription mode, once paid: the subscription and its first invoice.
    pub subscription: Option<String>,
    pub invoice: Option<String>,
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
    /// The payment method it was (last) confirmed with.
    pub payment_method: Option<String>,
    /// Why its last attempt failed: `code: message` of `last_payment_error`.
    pub failure: Option<String>,
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

/// What to put in a Checkout Session in `subscription` mode (one recurring price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionCheckoutParams {
    /// `cus_…`
    pub customer: String,
    /// A recurring `price_…`.
    pub price: String,
    /// May contain `{CHECKOUT_SESSION_ID}`, which Stripe fills in.
    pub success_url: String,
    pub cancel_url: String,
    pub client_reference_id: Option<String>,
    /// Put on the session and on the subscription it creates.
    pub metadata: Vec<(String, String)>,
    pub idempotency_key: String,
}

/// A Subscription (creditd uses one item per subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// `incomplete`, `active`, `past_due`, `unpaid`, `canceled`, …
    pub status: String,
    pub customer: String,
    /// The first item's price.
    pub price: String,
    /// The first item's id (`si_…`).
    pub item: String,
    /// From the first item: since API 2025-03-31 periods live on items.
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub latest_invoice: Option<String>,
    /// Sorted by key.
    pub metadata: Vec<(String, String)>,
}

/// How a price change is billed (Stripe's `proration_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    /// Proration lines wait for the next invoice (Stripe's default).
    CreateProrations,
    /// A `subscription_update` invoice is created and charged at once.
    AlwaysInvoice,
    /// No proration: the new price applies from the next period.
    None,
}

/// An Invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    /// `status == "paid"` (Stripe removed the `paid` field in 2025).
    pub paid: bool,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, `manual`, …
    pub billing_reason: Option<String>,
    pub subscription: Option<String>,
    pub customer: Option<String>,
    /// The service period paid for: the period of the subscription line (for a
    /// proration invoice, of its last line). Stripe's invoice-level
    /// `period_start`/`period_end` cover the *previous* period on renewals.
    pub period_start: i64,
    pub period_end: i64,
    /// The price of that line.
    pub price: Option<String>,
    pub attempt_count: u64,
    pub next_payment_attempt: Option<i64>,
    pub created: i64,
}

/// A customer portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingPortalSession {
    pub id: String,
    /// Send the customer here.
    pub url: String,
    pub customer: String,
    pub return_url: Option<String>,
}
