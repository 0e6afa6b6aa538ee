//! Stripe for creditd: webhook signature verification ([`webhook`]), lenient
//! event parsing ([`event`]) and a thin API client ([`client`]) whose types
//! are creditd's own. No other crate should name an async-stripe type.
#![forbid(unsafe_code)]

pub mod client;
pub mod event;
pub mod webhook;

pub use client::{
    BillingPortalSession, Charge, CheckoutParams, CheckoutSession, Dispute, Invoice, PaymentIntent,
    PaymentIntentParams, PriceInfo, Proration, RawEvent, Refund, RefundParams, StripeClient, StripeError, Subscription,
    SubscriptionCheckoutParams,
};
pub use event::{Event, EventParseError};
pub use webhook::{sign_header, verify, SignatureError};

/// The Stripe API version async-stripe is compiled against, and the one the
/// sandbox speaks.
pub const API_VERSION: &str = "2026-09-30.endive";
