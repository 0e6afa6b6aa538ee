//! Refunds and disputes: the calls that take money back.

use stripe_core::dispute::{CloseDispute, ListDispute, RetrieveDispute, UpdateDispute, UpdateDisputeEvidence};
use stripe_core::refund::{CreateRefund, ListRefund, RetrieveRefund};

use stripe::StripeRequest;

use super::{expandable_id, idempotent, StripeClient};
use crate::client::{Dispute, Refund, RefundParams, StripeError};

/// Page size for the list calls that fetch everything for one charge.
const PAGE: i64 = 100;

impl StripeClient {
    /// Refunds all or part of a charge (`charge` or `payment_intent`).
    /// Refunding more than is left is [`StripeError::InvalidRequest`] with
    /// code `amount_too_large` (or `charge_already_refunded`).
    pub async fn create_refund(&self, params: RefundParams) -> Result<Refund, StripeError> {
        let mut req = CreateRefund::new();
        if let Some(pi) = &params.payment_intent {
            req = req.payment_intent(pi.clone());
        }
        if let Some(ch) = &params.charge {
            req = req.charge(ch.clone());
        }
        if let Some(amount) = params.amount {
            req = req.amount(amount);
        }
        let refund = req
            .customize()
            .request_strategy(idempotent(&params.idempotency_key)?)
            .send(&self.inner)
            .await?;
        Ok(refund_of(refund))
    }

    pub async fn retrieve_refund(&self, id: &str) -> Result<Refund, StripeError> {
        Ok(refund_of(RetrieveRefund::new(id).send(&self.inner).await?))
    }

    /// Every refund of a charge, newest first.
    pub async fn list_refunds_for_charge(&self, charge: &str) -> Result<Vec<Refund>, StripeError> {
        let mut out = Vec::new();
        loop {
            let mut req = ListRefund::new().charge(charge).limit(PAGE);
            if let Some(last) = out.last().map(|r: &Refund| r.id.clone()) {
                req = req.starting_after(last);
            }
            let page = req.send(&self.inner).await?;
            out.extend(page.data.into_iter().map(refund_of));
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    pub async fn retrieve_dispute(&self, id: &str) -> Result<Dispute, StripeError> {
        Ok(dispute_of(RetrieveDispute::new(id).send(&self.inner).await?))
    }

    /// Every dispute of a charge (at most one in practice), newest first.
    pub async fn list_disputes_for_charge(&self, charge: &str) -> Result<Vec<Dispute>, StripeError> {
        let mut out = Vec::new();
        loop {
            let mut req = ListDispute::new().charge(charge).limit(PAGE);
            if let Some(last) = out.last().map(|d: &Dispute| d.id.clone()) {
                req = req.starting_after(last);
            }
            let page = req.send(&self.inner).await?;
            out.extend(page.data.into_iter().map(dispute_of));
            if !page.has_more {
                return Ok(out);
            }
        }
    }

    /// Sets the dispute's `uncategorized_text` evidence; with `submit` it
    /// goes to the bank. In test mode `winning_evidence` wins and
    /// `losing_evidence` loses the dispute.
    pub async fn update_dispute_evidence(&self, id: &str, text: &str, submit: bool) -> Result<Dispute, StripeError> {
        let mut evidence = UpdateDisputeEvidence::new();
        evidence.uncategorized_text = Some(text.to_owned());
        let dispute = UpdateDispute::new(id)
            .evidence(evidence)
            .submit(submit)
            .send(&self.inner)
            .await?;
        Ok(dispute_of(dispute))
    }

    /// Accepts the dispute: it closes as `lost`.
    pub async fn close_dispute(&self, id: &str) -> Result<Dispute, StripeError> {
        Ok(dispute_of(CloseDispute::new(id).send(&self.inner).await?))
    }
}

fn refund_of(r: stripe_shared::Refund) -> Refund {
    Refund {
        id: r.id.to_string(),
        amount: r.amount,
        currency: r.currency.to_string(),
        status: r.status.unwrap_or_default(),
        charge: r.charge.as_ref().map(expandable_id),
        payment_intent: r.payment_intent.as_ref().map(expandable_id),
        failure_reason: r.failure_reason,
        created: r.created,
    }
}

fn dispute_of(d: stripe_shared::Dispute) -> Dispute {
    Dispute {
        id: d.id.to_string(),
        amount: d.amount,
        currency: d.currency.to_string(),
        status: d.status.as_str().to_owned(),
        charge: expandable_id(&d.charge),
        payment_intent: d.payment_intent.as_ref().map(expandable_id),
        reason: d.reason,
        created: d.created,
    }
}
