//! Subscriptions, invoices and the customer portal: recurring prices,
//! Checkout in `subscription` mode, plan changes, cancellation, paying an
//! invoice again.

use stripe::StripeRequest;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::{ListInvoice, PayInvoice, RetrieveInvoice};
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_product::price::{CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_shared::CheckoutSessionMode;

use super::{
    checkout_session, currency_of, expandable_id, idempotent, invoice_id, price_info, sorted, to_map, StripeClient,
};
use crate::client::{
    BillingPortalSession, CheckoutSession, Invoice, PriceInfo, Proration, StripeError, Subscription,
    SubscriptionCheckoutParams,
};

/// Page size for the list calls that fetch everything.
const PAGE: i64 = 100;

impl StripeClient {
    /// Creates a recurring Price (`interval`: `day`, `week`, `month` or
    /// `year`) together with its Product.
    pub async fn create_recurring_price(
        &self,
        name: &str,
        unit_amount: i64,
        currency: &str,
        interval: &str,
        idempotency_key: &str,
    ) -> Result<PriceInfo, StripeError> {
        let interval = match interval {
            "day" => CreatePriceRecurringInterval::Day,
            "week" => CreatePriceRecurringInterval::Week,
            "month" => CreatePriceRecurringInterval::Month,
            "year" => CreatePriceRecurringInterval::Year,
            other => return Err(StripeError::Config(format!("unknown price interval `{other}`"))),
        };
        let recurring = CreatePriceRecurring {
            interval,
            interval_count: None,
            meter: None,
            trial_period_days: None,
            usage_type: None,
        };
        let price = CreatePrice::new(currency_of(currency))
            .unit_amount(unit_amount)
            .product_data(CreatePriceProductData::new(name))
            .recurring(recurring)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(price_info(price))
    }

    /// Creates a Checkout Session in `subscription` mode for one recurring
    /// price. Once paid, the session names the subscription and its first
    /// invoice.
    pub async fn create_subscription_checkout_session(
        &self,
        params: SubscriptionCheckoutParams,
    ) -> Result<CheckoutSession, StripeError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(params.price.clone());
        item.quantity = Some(1);
        let mut req = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(params.customer.clone())
            .line_items(vec![item])
            .success_url(params.success_url.clone())
            .cancel_url(params.cancel_url.clone());
        if let Some(r) = &params.client_reference_id {
            req = req.client_reference_id(r.clone());
        }
        if !params.metadata.is_empty() {
            let mut data = CreateCheckoutSessionSubscriptionData::new();
            data.metadata = Some(to_map(&params.metadata));
            req = req.metadata(to_map(&params.metadata)).subscription_data(data);
        }
        let session = req
            .customize()
            .request_strategy(idempotent(&params.idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(checkout_session(session))
    }

    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        subscription_of(RetrieveSubscription::new(id).send(&self.inner).await?)
    }

    /// Every subscription of a customer, canceled ones included, newest first.
    pub async fn list_subscriptions_for_customer(&self, customer: &str) -> Result<Vec<Subscription>, StripeError> {
        let mut out: Vec<Subscription> = Vec::new();
        loop {
            let mut req = ListSubscription::new()
                .customer(customer)
                .status(ListSubscriptionStatus::All)
                .limit(PAGE);
            if let Some(last) = out.last() {
                req = req.starting_after(last.id.clone());
            }
            let page = req.send(&self.inner).await?;
            for s in page.data {
                out.push(subscription_of(s)?);
            }
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    /// Moves the subscription's (single) item to `price`.
    pub async fn update_subscription_price(
        &self,
        id: &str,
        price: &str,
        proration: Proration,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let current = RetrieveSubscription::new(id).send(&self.inner).await?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = current.items.data.first().map(|i| i.id.to_string());
        item.price = Some(price.to_owned());
        let behavior = match proration {
            Proration::CreateProrations => UpdateSubscriptionProrationBehavior::CreateProrations,
            Proration::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
            Proration::None => UpdateSubscriptionProrationBehavior::None,
        };
        let sub = UpdateSubscription::new(id)
            .items(vec![item])
            .proration_behavior(behavior)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        subscription_of(sub)
    }

    /// Cancels at the end of the current period (`true`) or undoes that.
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let sub = UpdateSubscription::new(id)
            .cancel_at_period_end(cancel)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        subscription_of(sub)
    }

    /// Sets the payment method renewals and retries charge.
    pub async fn set_subscription_payment_method(
        &self,
        id: &str,
        payment_method: &str,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let sub = UpdateSubscription::new(id)
            .default_payment_method(payment_method)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        subscription_of(sub)
    }

    /// Cancels at once (`customer.subscription.deleted`).
    pub async fn cancel_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        subscription_of(CancelSubscription::new(id).send(&self.inner).await?)
    }

    pub async fn retrieve_invoice(&self, id: &str) -> Result<Invoice, StripeError> {
        invoice_of(RetrieveInvoice::new(id).send(&self.inner).await?)
    }

    /// Every invoice of a subscription, newest first.
    pub async fn list_invoices_for_subscription(&self, subscription: &str) -> Result<Vec<Invoice>, StripeError> {
        let mut out: Vec<Invoice> = Vec::new();
        loop {
            let mut req = ListInvoice::new().subscription(subscription).limit(PAGE);
            if let Some(last) = out.last() {
                req = req.starting_after(last.id.clone());
            }
            let page = req.send(&self.inner).await?;
            for i in page.data {
                out.push(invoice_of(i)?);
            }
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    /// Pays an open invoice now, with `payment_method` or the saved one. A
    /// decline is [`StripeError::Card`].
    pub async fn pay_invoice(
        &self,
        id: &str,
        payment_method: Option<&str>,
        idempotency_key: &str,
    ) -> Result<Invoice, StripeError> {
        let mut req = PayInvoice::new(id);
        if let Some(pm) = payment_method {
            req = req.payment_method(pm);
        }
        let invoice = req
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.inner)
            .await?;
        invoice_of(invoice)
    }

    /// Opens a customer portal session; send the customer to its `url`.
    pub async fn create_billing_portal_session(
        &self,
        customer: &str,
        return_url: Option<&str>,
    ) -> Result<BillingPortalSession, StripeError> {
        let mut req = CreateBillingPortalSession::new().customer(customer);
        if let Some(url) = return_url {
            req = req.return_url(url);
        }
        let s = req.send(&self.inner).await?;
        Ok(BillingPortalSession {
            id: s.id.to_string(),
            url: s.url,
            customer: s.customer,
            return_url: s.return_url,
        })
    }
}

fn subscription_of(s: stripe_shared::Subscription) -> Result<Subscription, StripeError> {
    let item = s
        .items
        .data
        .first()
        .ok_or_else(|| StripeError::Decode(format!("subscription {} has no items", s.id)))?;
    Ok(Subscription {
        id: s.id.to_string(),
        status: s.status.as_str().to_owned(),
        customer: expandable_id(&s.customer),
        price: item.price.id.to_string(),
        item: item.id.to_string(),
        current_period_start: item.current_period_start,
        current_period_end: item.current_period_end,
        cancel_at_period_end: s.cancel_at_period_end,
        canceled_at: s.canceled_at,
        ended_at: s.ended_at,
        latest_invoice: s.latest_invoice.as_ref().and_then(invoice_id),
        metadata: sorted(Some(s.metadata)),
    })
}

fn invoice_of(i: stripe_shared::Invoice) -> Result<Invoice, StripeError> {
    let id =
        i.id.as_ref()
            .map(|id| id.to_string())
            .ok_or_else(|| StripeError::Decode("invoice without an id".into()))?;
    // The subscription: top level, or (API ≥ 2025-03-31) under `parent`.
    let subscription = i.subscription.as_ref().map(expandable_id).or_else(|| {
        i.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .map(|d| expandable_id(&d.subscription))
    });
    let line = i.lines.data.last();
    let price = line
        .and_then(|l| l.pricing.as_ref())
        .and_then(|p| p.price_details.as_ref())
        .map(|d| expandable_id(&d.price));
    let status = i.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    Ok(Invoice {
        paid: status == "paid",
        id,
        status,
        amount_due: i.amount_due,
        amount_paid: i.amount_paid,
        currency: i.currency.to_string(),
        billing_reason: i.billing_reason.as_ref().map(|r| r.as_str().to_owned()),
        subscription,
        customer: i.customer.as_ref().map(expandable_id),
        period_start: line.map_or(i.period_start, |l| l.period.start),
        period_end: line.map_or(i.period_end, |l| l.period.end),
        price,
        attempt_count: i.attempt_count,
        next_payment_attempt: i.next_payment_attempt,
        created: i.created,
    })
}
