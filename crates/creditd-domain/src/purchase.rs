//! Buying credits: what a paid payment grants, and how Stripe's news moves a payment.

use serde::{Deserialize, Serialize};

use crate::account::DEFAULT_PRIORITY;
use crate::command::{GrantSource, NewGrant};
use crate::views::Payment;

/// How Stripe's state moved a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentUpdate {
    /// Paid: grant its credits (once) and record the receipt.
    Paid {
        /// The Stripe object paid through (Checkout Session or PaymentIntent id): the
        /// purchase grant's unique reference.
        reference: String,
        payment_intent: Option<String>,
        receipt_url: Option<String>,
    },
    Failed {
        message: String,
    },
    Expired,
}

/// The grant a paid payment gets: its credits, never expiring, at the default priority,
/// referenced by the Stripe object it was paid through (so it is granted at most once).
pub fn purchase_grant(payment: &Payment, reference: &str) -> NewGrant {
    NewGrant {
        customer: payment.customer.clone(),
        amount: payment.credits,
        priority: DEFAULT_PRIORITY,
        expires_at: None,
        source: GrantSource::Purchase,
        reason: Some(format!("purchase {}", payment.id)),
        reference: Some(reference.to_string()),
    }
}
