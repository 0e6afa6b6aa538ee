//! A thin client over async-stripe for the calls creditd makes. It returns
//! creditd's own plain structs ([`types`]) and one error type ([`StripeError`]).
//! The same code talks to real Stripe and to the built-in sandbox: only the
//! base URL differs.

mod billing;
mod catalog;
mod error;
mod refunds;
mod types;

use std::collections::HashMap;
use std::str::FromStr;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::charge::RetrieveCharge;
use stripe_core::customer::{CreateCustomer, RetrieveCustomer, UpdateCustomer, UpdateCustomerInvoiceSettings};
use stripe_core::event::ListEvent;
use stripe_core::payment_intent::{ConfirmPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent};
use stripe_product::price::{CreatePrice, CreatePriceProductData, RetrievePrice};
use stripe_shared::CheckoutSessionMode;
use stripe_types::{Currency, Expandable, Object, RangeQueryTs};

pub use catalog::CatalogPrice;
pub use error::StripeError;
pub use types::{
    BillingPortalSession, Charge, CheckoutParams, CheckoutSession, Dispute, Invoice, PaymentIntent,
    PaymentIntentParams, PriceInfo, Proration, RawEvent, Refund, RefundParams, Subscription,
    SubscriptionCheckoutParams,
};

/// Connection to Stripe (or the sandbox). Cheap to clone.
#[derive(Clone, Debug)]
pub struct StripeClient {
    inner: Client,
    livemode: bool,
}

fn key_is_live(secret_key: &str) -> bool {
    secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_")
}

fn idempotent(key: &str) -> Result<RequestStrategy, StripeError> {
    let key = IdempotencyKey::new(key).map_err(|e| StripeError::Config(e.to_string()))?;
    Ok(RequestStrategy::Idempotent(key))
}

fn to_map(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

fn sorted(map: Option<HashMap<String, String>>) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = map.unwrap_or_default().into_iter().collect();
    pairs.sort();
    pairs
}

fn expandable_id<T: Object>(e: &Expandable<T>) -> String
where
    T::Id: std::fmt::Display,
{
    e.id().to_string()
}

impl StripeClient {
    /// `base_url` is `None` for api.stripe.com, or e.g. the sandbox's
    /// `http://127.0.0.1:PORT/` (a trailing `/` is added when missing).
    pub fn new(secret_key: &str, base_url: Option<String>) -> Result<Self, StripeError> {
        let mut builder = ClientBuilder::new(secret_key);
        if let Some(mut url) = base_url {
            // async-stripe appends `v1/...` directly to the base.
            if !url.ends_with('/') {
                url.push('/');
            }
            builder = builder.url(url);
        }
        Ok(Self {
            inner: builder.build()?,
            livemode: key_is_live(secret_key),
        })
    }

    /// Whether the key is a live one (`sk_live_…`, `rk_live_…`): only live events are
    /// then for this account; with a test key (or the sandbox) only test events are.
    pub fn livemode(&self) -> bool {
        self.livemode
    }

    /// Creates the Stripe customer for a creditd customer; returns `cus_…`.
    pub async fn create_customer(
        &self,
        creditd_customer_id: &str,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let mut req = CreateCustomer::new().metadata(HashMap::from([(
            "creditd_customer".to_owned(),
            creditd_customer_id.to_owned(),
        )]));
        if let Some(email) = email {
            req = req.email(email);
        }
        let customer = req
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(customer.id.to_string())
    }

    /// Creates a one-time Price together with its Product (`product_data`).
    pub async fn create_product_and_price(
        &self,
        name: &str,
        unit_amount: i64,
        currency: &str,
        idempotency_key: &str,
    ) -> Result<PriceInfo, StripeError> {
        let price = CreatePrice::new(currency_of(currency))
            .unit_amount(unit_amount)
            .product_data(CreatePriceProductData::new(name))
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(price_info(price))
    }

    pub async fn retrieve_price(&self, id: &str) -> Result<PriceInfo, StripeError> {
        let price = RetrievePrice::new(id).send(&self.inner).await?;
        Ok(price_info(price))
    }

    /// Creates a Checkout Session in `payment` mode for one price.
    pub async fn create_checkout_session(&self, params: CheckoutParams) -> Result<CheckoutSession, StripeError> {
        self.checkout_session(params, false).await
    }

    /// Like [`StripeClient::create_checkout_session`], and saves the card it is paid with for
    /// later off-session charges (`payment_intent_data[setup_future_usage]=off_session`).
    pub async fn create_checkout_session_saving_card(
        &self,
        params: CheckoutParams,
    ) -> Result<CheckoutSession, StripeError> {
        self.checkout_session(params, true).await
    }

    async fn checkout_session(&self, params: CheckoutParams, save_card: bool) -> Result<CheckoutSession, StripeError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(params.price.clone());
        item.quantity = Some(params.quantity);
        let mut req = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(params.customer.clone())
            .line_items(vec![item])
            .success_url(params.success_url.clone())
            .cancel_url(params.cancel_url.clone());
        if let Some(r) = &params.client_reference_id {
            req = req.client_reference_id(r.clone());
        }
        if !params.metadata.is_empty() {
            req = req.metadata(to_map(&params.metadata));
        }
        if save_card {
            let mut data = stripe_checkout::checkout_session::CreateCheckoutSessionPaymentIntentData::new();
            data.setup_future_usage = Some(
                stripe_checkout::checkout_session::CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession,
            );
            req = req.payment_intent_data(data);
        }
        let session = req
            .customize()
            .request_strategy(idempotent(&params.idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(checkout_session(session))
    }

    /// Retrieves a Checkout Session with `line_items` expanded.
    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        let session = RetrieveCheckoutSession::new(id)
            .expand(vec!["line_items".to_owned()])
            .send(&self.inner)
            .await?;
        Ok(checkout_session(session))
    }

    /// Expires an open Checkout Session so it can no longer be paid.
    pub async fn expire_checkout_session(
        &self,
        id: &str,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        let session = ExpireCheckoutSession::new(id)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(checkout_session(session))
    }

    pub async fn create_payment_intent(&self, params: PaymentIntentParams) -> Result<PaymentIntent, StripeError> {
        self.send_payment_intent(Self::payment_intent_request(&params), &params.idempotency_key)
            .await
    }

    /// Like [`StripeClient::create_payment_intent`], and saves the card it is paid with on the
    /// customer for later off-session charges (`setup_future_usage=off_session`).
    pub async fn create_payment_intent_saving_card(
        &self,
        params: PaymentIntentParams,
    ) -> Result<PaymentIntent, StripeError> {
        let req = Self::payment_intent_request(&params)
            .setup_future_usage(stripe_shared::PaymentIntentSetupFutureUsage::OffSession);
        self.send_payment_intent(req, &params.idempotency_key).await
    }

    /// Charges a saved payment method without the customer present: `off_session=true,
    /// confirm=true`. A decline (`authentication_required`, insufficient funds…) is
    /// [`StripeError::Card`].
    pub async fn charge_off_session(
        &self,
        params: PaymentIntentParams,
        payment_method: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let req = Self::payment_intent_request(&params)
            .payment_method(payment_method)
            .off_session(stripe_core::payment_intent::CreatePaymentIntentOffSession::Bool(true))
            .confirm(true);
        self.send_payment_intent(req, &params.idempotency_key).await
    }

    fn payment_intent_request(params: &PaymentIntentParams) -> CreatePaymentIntent {
        let mut req =
            CreatePaymentIntent::new(params.amount, currency_of(&params.currency)).customer(params.customer.clone());
        if !params.metadata.is_empty() {
            req = req.metadata(to_map(&params.metadata));
        }
        req
    }

    async fn send_payment_intent(
        &self,
        req: CreatePaymentIntent,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let pi = req
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(payment_intent(pi))
    }

    /// The customer's default payment method (`invoice_settings.default_payment_method`).
    pub async fn default_payment_method(&self, customer: &str) -> Result<Option<String>, StripeError> {
        let customer = match RetrieveCustomer::new(customer).send(&self.inner).await? {
            stripe_core::customer::RetrieveCustomerReturned::Customer(c) => c,
            stripe_core::customer::RetrieveCustomerReturned::DeletedCustomer(_) => return Ok(None),
        };
        Ok(customer
            .invoice_settings
            .and_then(|s| s.default_payment_method)
            .as_ref()
            .map(expandable_id))
    }

    /// Makes `payment_method` the customer's default for off-session charges.
    pub async fn set_default_payment_method(
        &self,
        customer: &str,
        payment_method: &str,
        idempotency_key: &str,
    ) -> Result<(), StripeError> {
        let mut settings = UpdateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(payment_method.to_owned());
        UpdateCustomer::new(customer)
            .invoice_settings(settings)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(())
    }

    /// Confirms a PaymentIntent server-side with a saved or test payment
    /// method (`pm_card_visa` in test mode). A decline is [`StripeError::Card`].
    pub async fn confirm_payment_intent(
        &self,
        id: &str,
        payment_method: &str,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let pi = ConfirmPaymentIntent::new(id)
            .payment_method(payment_method)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(payment_intent(pi))
    }

    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        let pi = RetrievePaymentIntent::new(id).send(&self.inner).await?;
        Ok(payment_intent(pi))
    }

    pub async fn retrieve_charge(&self, id: &str) -> Result<Charge, StripeError> {
        let ch = RetrieveCharge::new(id).send(&self.inner).await?;
        Ok(Charge {
            id: ch.id.to_string(),
            amount: ch.amount,
            amount_refunded: ch.amount_refunded,
            receipt_url: ch.receipt_url,
            payment_intent: ch.payment_intent.as_ref().map(expandable_id),
            status: ch.status.as_str().to_owned(),
            refunded: ch.refunded,
            disputed: ch.disputed,
            currency: ch.currency.to_string(),
            customer: ch.customer.as_ref().map(expandable_id),
        })
    }

    /// One page of events, newest first. Page on with the last id as
    /// `starting_after` while the second value (`has_more`) is true.
    pub async fn list_events(
        &self,
        created_gte: Option<i64>,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<RawEvent>, bool), StripeError> {
        self.list_events_of_types(created_gte, starting_after, limit, &[]).await
    }

    /// [`Self::list_events`] for some event types only (`types[]`; empty:
    /// all). Stripe accepts up to 20 types and `*` wildcards (`charge.*`).
    pub async fn list_events_of_types(
        &self,
        created_gte: Option<i64>,
        starting_after: Option<&str>,
        limit: i64,
        types: &[&str],
    ) -> Result<(Vec<RawEvent>, bool), StripeError> {
        let mut req = ListEvent::new().limit(limit);
        if !types.is_empty() {
            req = req.types(types.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>());
        }
        if let Some(gte) = created_gte {
            req = req.created(RangeQueryTs::gte(gte));
        }
        if let Some(after) = starting_after {
            req = req.starting_after(after);
        }
        let page = req.send(&self.inner).await?;
        let events = page.data.into_iter().map(raw_event).collect::<Result<Vec<_>, _>>()?;
        Ok((events, page.has_more))
    }
}

/// Invoice ids are optional in async-stripe (previews have none).
fn invoice_id(e: &Expandable<stripe_shared::Invoice>) -> Option<String> {
    e.id().as_ref().map(|id| id.to_string())
}

fn currency_of(code: &str) -> Currency {
    // Infallible: unknown codes become `Currency::Unknown` and Stripe rejects them.
    Currency::from_str(&code.to_ascii_lowercase()).unwrap_or_else(|never| match never {})
}

fn price_info(price: stripe_shared::Price) -> PriceInfo {
    PriceInfo {
        product: expandable_id(&price.product),
        id: price.id.to_string(),
        unit_amount: price.unit_amount,
        currency: price.currency.to_string(),
        interval: price.recurring.as_ref().map(|r| r.interval.as_str().to_owned()),
        recurring: price.recurring.is_some(),
        active: price.active,
    }
}

fn checkout_session(s: stripe_shared::CheckoutSession) -> CheckoutSession {
    let line_items = s
        .line_items
        .map(|list| {
            list.data
                .into_iter()
                .filter_map(|item| Some((item.price?.id.to_string(), item.quantity.unwrap_or(1))))
                .collect()
        })
        .unwrap_or_default();
    CheckoutSession {
        id: s.id.to_string(),
        url: s.url,
        status: s.status.map(|st| st.as_str().to_owned()),
        payment_status: s.payment_status.as_str().to_owned(),
        customer: s.customer.as_ref().map(expandable_id),
        payment_intent: s.payment_intent.as_ref().map(expandable_id),
        amount_total: s.amount_total,
        currency: s.currency.map(|c| c.to_string()),
        client_reference_id: s.client_reference_id,
        metadata: sorted(s.metadata),
        line_items,
        mode: s.mode.as_str().to_owned(),
        subscription: s.subscription.as_ref().map(expandable_id),
        invoice: s.invoice.as_ref().and_then(invoice_id),
    }
}

fn payment_intent(pi: stripe_shared::PaymentIntent) -> PaymentIntent {
    PaymentIntent {
        id: pi.id.to_string(),
        client_secret: pi.client_secret,
        status: pi.status.as_str().to_owned(),
        amount: pi.amount,
        amount_received: pi.amount_received,
        currency: pi.currency.to_string(),
        customer: pi.customer.as_ref().map(expandable_id),
        latest_charge: pi.latest_charge.as_ref().map(expandable_id),
        payment_method: pi.payment_method.as_ref().map(expandable_id),
        failure: pi.last_payment_error.as_ref().map(|e| {
            let code = e
                .code
                .as_ref()
                .map_or("card_declined".to_owned(), |c| c.as_str().to_owned());
            format!("{code}: {}", e.message.as_deref().unwrap_or("declined"))
        }),
        metadata: sorted(Some(pi.metadata)),
    }
}

/// Rebuilds the event's JSON from the typed event. `data.object` is kept
/// untyped by async-stripe, so nothing of the object is lost.
fn raw_event(ev: stripe_shared::Event) -> Result<RawEvent, StripeError> {
    let object_json = miniserde::json::to_string(&ev.data.object);
    let object: serde_json::Value =
        serde_json::from_str(&object_json).map_err(|e| StripeError::Decode(format!("event data.object: {e}")))?;
    let payload = serde_json::json!({
        "id": ev.id.as_str(),
        "object": "event",
        "api_version": ev.api_version,
        "created": ev.created,
        "livemode": ev.livemode,
        "pending_webhooks": ev.pending_webhooks,
        "type": ev.type_.as_str(),
        "data": { "object": object },
    });
    Ok(RawEvent {
        id: ev.id.to_string(),
        type_: ev.type_.as_str().to_owned(),
        created: ev.created,
        payload_json: payload.to_string(),
    })
}
