//! Simulated payments: Stripe's test cards and test payment methods, and the
//! one routine that charges a PaymentIntent and emits the events Stripe
//! sends for it.
//!
//! Delayed methods (SEPA Direct Debit, IBAN `DE89370400440532013000`
//! succeeds, `DE62370400440532013001` fails) leave the PaymentIntent
//! `processing` with a `pending` charge; [`settle`] finishes them later.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::App;
use crate::charge::Charge;
use crate::event::EventRequest;
use crate::ids;
use crate::state::State;
use crate::timers::Action;

/// How a payment attempt turns out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    Decline(Decline),
    /// Accepted for processing; settles later, succeeding or not.
    Delayed {
        succeeds: bool,
    },
}

/// A card decline, as Stripe reports it in `last_payment_error` and 402s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    pub code: String,
    pub decline_code: Option<String>,
    pub message: String,
    #[serde(default)]
    pub charge: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
}

impl Decline {
    pub fn generic() -> Self {
        Decline {
            code: "card_declined".into(),
            decline_code: Some("generic_decline".into()),
            message: "Your card was declined.".into(),
            charge: None,
            payment_method: None,
        }
    }

    pub fn authentication_required() -> Self {
        Decline {
            code: "authentication_required".into(),
            decline_code: Some("authentication_required".into()),
            message: "Your card was declined. This transaction requires authentication.".into(),
            charge: None,
            payment_method: None,
        }
    }

    pub fn insufficient_funds() -> Self {
        Decline {
            code: "card_declined".into(),
            decline_code: Some("insufficient_funds".into()),
            message: "Your card has insufficient funds.".into(),
            charge: None,
            payment_method: None,
        }
    }

    fn sepa_failed() -> Self {
        Decline {
            code: "payment_method_provider_decline".into(),
            decline_code: None,
            message: "The payment could not be completed: the bank reported insufficient funds.".into(),
            charge: None,
            payment_method: None,
        }
    }

    /// `last_payment_error` (the `ApiErrors` shape).
    pub fn to_json(&self) -> Value {
        json!({
            "type": "card_error",
            "code": self.code,
            "decline_code": self.decline_code,
            "message": self.message,
            "charge": self.charge,
            "doc_url": format!("https://stripe.com/docs/error-codes/{}", self.code.replace('_', "-")),
        })
    }
}

/// What a Stripe test card does after it has paid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBehavior {
    #[default]
    Normal,
    /// 4000 0000 0000 0259 / `pm_card_createDispute`: the payment succeeds,
    /// then the cardholder disputes it.
    Disputed,
    /// 4000 0000 0000 5126 / `pm_card_refundFail`: refunds are accepted,
    /// then fail.
    RefundsFail,
    /// 4000 0000 0000 0341 / `pm_card_chargeCustomerFail`: the card is saved
    /// and pays when entered, but later charges of the saved card fail.
    FailsAfterAttach,
    /// 4000 0025 0000 3155 / `pm_card_authenticationRequired`: pays with its
    /// holder present (authenticated), but off-session charges need
    /// authentication (`authentication_required`).
    AuthenticationRequired,
    /// A saved 4000 0000 0000 9995 (`pm_card_chargeDeclinedInsufficientFunds`
    /// attached to a customer): its later charges find insufficient funds.
    InsufficientFundsLater,
}

/// How the payer paid; rendered into charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentMethodDetails {
    Card {
        brand: String,
        last4: String,
        exp_month: i64,
        exp_year: i64,
        name: Option<String>,
        #[serde(default)]
        behavior: CardBehavior,
    },
    SepaDebit {
        last4: String,
        country: String,
        name: Option<String>,
    },
}

impl PaymentMethodDetails {
    pub fn test_visa() -> Self {
        PaymentMethodDetails::Card {
            brand: "visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2034,
            name: None,
            behavior: CardBehavior::Normal,
        }
    }

    /// The test card's behaviour after paying (`Normal` for SEPA).
    pub fn behavior(&self) -> CardBehavior {
        match self {
            PaymentMethodDetails::Card { behavior, .. } => *behavior,
            PaymentMethodDetails::SepaDebit { .. } => CardBehavior::Normal,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            PaymentMethodDetails::Card { .. } => "card",
            PaymentMethodDetails::SepaDebit { .. } => "sepa_debit",
        }
    }

    pub fn holder_name(&self) -> Option<&str> {
        match self {
            PaymentMethodDetails::Card { name, .. } | PaymentMethodDetails::SepaDebit { name, .. } => name.as_deref(),
        }
    }

    pub fn summary(&self) -> String {
        match self {
            PaymentMethodDetails::Card { brand, last4, .. } => format!("{brand} •••• {last4}"),
            PaymentMethodDetails::SepaDebit { last4, .. } => format!("SEPA Direct Debit •••• {last4}"),
        }
    }

    /// A charge's `payment_method_details`.
    pub fn charge_details(&self, amount: i64) -> Value {
        match self {
            PaymentMethodDetails::Card {
                brand,
                last4,
                exp_month,
                exp_year,
                ..
            } => json!({
                "type": "card",
                "card": {
                    "amount_authorized": amount,
                    "authorization_code": null,
                    "brand": brand,
                    "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
                    "country": "US",
                    "exp_month": exp_month,
                    "exp_year": exp_year,
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": format!("sbx{last4}{brand}"),
                    "funding": "credit",
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": null,
                    "last4": last4,
                    "mandate": null,
                    "multicapture": {"status": "unavailable"},
                    "network": brand,
                    "network_token": {"used": false},
                    "network_transaction_id": "sbx_network_tx",
                    "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                    "regulated_status": "unregulated",
                    "three_d_secure": null,
                    "wallet": null
                }
            }),
            PaymentMethodDetails::SepaDebit { last4, country, .. } => json!({
                "type": "sepa_debit",
                "sepa_debit": {
                    "bank_code": "37040044",
                    "branch_code": null,
                    "country": country,
                    "fingerprint": format!("sbxsepa{last4}"),
                    "last4": last4,
                    "mandate": null
                }
            }),
        }
    }
}

/// Outcome of Stripe's test payment method tokens (`pm_card_visa`…);
/// `None` for tokens the sandbox does not know.
pub fn outcome_for_test_payment_method(pm: &str) -> Option<(Outcome, PaymentMethodDetails)> {
    let card = |brand: &str, last4: &str, behavior: CardBehavior| PaymentMethodDetails::Card {
        brand: brand.into(),
        last4: last4.into(),
        exp_month: 12,
        exp_year: 2034,
        name: None,
        behavior,
    };
    use CardBehavior::*;
    Some(match pm {
        "pm_card_visa" => (Outcome::Succeed, card("visa", "4242", Normal)),
        "pm_card_mastercard" => (Outcome::Succeed, card("mastercard", "4444", Normal)),
        "pm_card_chargeDeclined" => (Outcome::Decline(Decline::generic()), card("visa", "0002", Normal)),
        "pm_card_chargeDeclinedInsufficientFunds" => (
            Outcome::Decline(Decline::insufficient_funds()),
            card("visa", "9995", Normal),
        ),
        "pm_card_createDispute" => (Outcome::Succeed, card("visa", "0259", Disputed)),
        "pm_card_refundFail" => (Outcome::Succeed, card("visa", "5126", RefundsFail)),
        "pm_card_authenticationRequired" => (Outcome::Succeed, card("visa", "3155", AuthenticationRequired)),
        // A saved card whose charges fail: confirming with it is such a charge.
        "pm_card_chargeCustomerFail" => (
            Outcome::Decline(Decline::generic()),
            card("visa", "0341", FailsAfterAttach),
        ),
        _ => return None,
    })
}

/// A test payment method token as a card saved for later charges
/// (subscriptions): a token that declines becomes a saved card whose
/// charges fail.
pub fn saved_method_for_token(pm: &str) -> Option<PaymentMethodDetails> {
    let (outcome, mut method) = outcome_for_test_payment_method(pm)?;
    if let (Outcome::Decline(d), PaymentMethodDetails::Card { behavior, .. }) = (&outcome, &mut method) {
        *behavior = if d.decline_code.as_deref() == Some("insufficient_funds") {
            CardBehavior::InsufficientFundsLater
        } else {
            CardBehavior::FailsAfterAttach
        };
    }
    Some(method)
}

/// What charging a saved payment method without the payer (a renewal, a
/// retry) does.
pub fn saved_method_outcome(method: &PaymentMethodDetails) -> Outcome {
    match method.behavior() {
        CardBehavior::FailsAfterAttach => Outcome::Decline(Decline::generic()),
        CardBehavior::AuthenticationRequired => Outcome::Decline(Decline::authentication_required()),
        CardBehavior::InsufficientFundsLater => Outcome::Decline(Decline::insufficient_funds()),
        _ => Outcome::Succeed,
    }
}

/// Outcome of a card number typed into the hosted page (spaces ignored):
/// the outcome, the brand and what the card does later.
/// `Err` carries a message for the payer.
pub fn outcome_for_card_number(number: &str) -> Result<(Outcome, &'static str, CardBehavior), String> {
    let digits: String = number.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    use CardBehavior::*;
    match digits.as_str() {
        "4242424242424242" => Ok((Outcome::Succeed, "visa", Normal)),
        "5555555555554444" => Ok((Outcome::Succeed, "mastercard", Normal)),
        "4000000000000002" => Ok((Outcome::Decline(Decline::generic()), "visa", Normal)),
        "4000000000009995" => Ok((Outcome::Decline(Decline::insufficient_funds()), "visa", Normal)),
        "4000000000000259" => Ok((Outcome::Succeed, "visa", Disputed)),
        "4000000000005126" => Ok((Outcome::Succeed, "visa", RefundsFail)),
        "4000000000000341" => Ok((Outcome::Succeed, "visa", FailsAfterAttach)),
        "4000002500003155" => Ok((Outcome::Succeed, "visa", AuthenticationRequired)),
        d if d.len() < 12 || !d.bytes().all(|b| b.is_ascii_digit()) => Err("Your card number is incomplete.".into()),
        _ => Err("Your card was declined. This sandbox only accepts Stripe test cards, \
                  such as 4242 4242 4242 4242."
            .into()),
    }
}

/// Outcome of a SEPA test IBAN (spaces ignored).
pub fn outcome_for_iban(iban: &str) -> Result<Outcome, String> {
    let iban: String = iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    match iban.as_str() {
        "DE89370400440532013000" => Ok(Outcome::Delayed { succeeds: true }),
        "DE62370400440532013001" => Ok(Outcome::Delayed { succeeds: false }),
        _ => Err("Use a test IBAN: DE89370400440532013000 (succeeds) or DE62370400440532013001 (fails).".into()),
    }
}

/// Charges PaymentIntent `pi_id`: creates the charge, updates the intent and
/// emits the events Stripe sends. `Err` is the decline (the intent is back
/// to `requires_payment_method` with `last_payment_error` set).
///
/// A card that disputes its payments gets a dispute opened a moment later
/// ([`SandboxOptions::dispute_delay`](crate::SandboxOptions)).
pub fn attempt(
    st: &mut State,
    app: &App,
    pi_id: &str,
    method: PaymentMethodDetails,
    outcome: Outcome,
    request: &EventRequest,
) -> Result<(), Decline> {
    let hook = app.webhook_url();
    let hook = hook.as_deref();
    let public_base_url = &app.public_base_url;
    let disputes = method.behavior() == CardBehavior::Disputed;
    // A saved card charged again keeps its id; a new one gets one (and can be saved).
    let pm_id = st.payment_intents[pi_id]
        .payment_method
        .clone()
        .filter(|pm| st.payment_methods.contains_key(pm))
        .unwrap_or_else(|| ids::new_id("pm"));
    st.payment_methods.insert(pm_id.clone(), method.clone());
    let pi = st
        .payment_intents
        .get(pi_id)
        .expect("caller checked the intent exists")
        .clone();
    let charge_id = ids::new_id("ch");
    let now = st.now();
    let (status, failure) = match &outcome {
        Outcome::Succeed => ("succeeded", None),
        Outcome::Decline(d) => ("failed", Some(d.clone())),
        Outcome::Delayed { .. } => ("pending", None),
    };
    let charge = Charge {
        id: charge_id.clone(),
        created: now,
        amount: pi.amount,
        amount_refunded: 0,
        currency: pi.currency.clone(),
        customer: pi.customer.clone(),
        payment_intent: pi.id.clone(),
        payment_method: pm_id.clone(),
        method,
        status: status.to_owned(),
        failure_code: failure.as_ref().map(|d| d.code.clone()),
        failure_message: failure.as_ref().map(|d| d.message.clone()),
        balance_transaction: (status == "succeeded").then(|| ids::new_id("txn")),
        receipt_url: format!("{public_base_url}receipts/{charge_id}"),
        description: pi.description.clone(),
        metadata: pi.metadata.clone(),
        refunds: Vec::new(),
        disputed: false,
    };
    let charge_json = charge.to_json(Vec::new());
    st.charges.insert(charge_id.clone(), charge);
    let pi = st.payment_intents.get_mut(pi_id).expect("exists");
    let from_checkout = pi.checkout_session.is_some();
    pi.payment_method = Some(pm_id.clone());
    pi.latest_charge = Some(charge_id.clone());
    match outcome {
        Outcome::Succeed => {
            pi.status = "succeeded".into();
            pi.amount_received = pi.amount;
            pi.last_payment_error = None;
            let pi_json = pi.to_json();
            st.emit("charge.succeeded", charge_json.clone(), request, hook);
            if from_checkout {
                // Checkout's charge gains its balance transaction a moment later.
                st.emit("charge.updated", charge_json, request, hook);
            }
            st.emit("payment_intent.succeeded", pi_json, request, hook);
            if disputes {
                st.schedule(app.options.dispute_delay, Action::OpenDispute { charge: charge_id });
            }
            Ok(())
        }
        Outcome::Decline(mut decline) => {
            decline.charge = Some(charge_id);
            decline.payment_method = Some(pm_id);
            pi.status = "requires_payment_method".into();
            pi.last_payment_error = Some(decline.clone());
            let pi_json = pi.to_json();
            st.emit("charge.failed", charge_json, request, hook);
            st.emit("payment_intent.payment_failed", pi_json, request, hook);
            Err(decline)
        }
        Outcome::Delayed { .. } => {
            pi.status = "processing".into();
            pi.last_payment_error = None;
            let pi_json = pi.to_json();
            st.emit("charge.pending", charge_json, request, hook);
            st.emit("payment_intent.processing", pi_json, request, hook);
            Ok(())
        }
    }
}

/// Finishes a `processing` PaymentIntent: its pending charge succeeds or
/// fails, and a Checkout Session it belongs to gets its async event.
pub fn settle(st: &mut State, pi_id: &str, succeeds: bool, hook: Option<&str>) {
    let request = EventRequest::default();
    let Some(pi) = st.payment_intents.get(pi_id) else {
        return;
    };
    if pi.status != "processing" {
        return;
    }
    let Some(charge_id) = pi.latest_charge.clone() else {
        return;
    };
    let session_id = pi.checkout_session.clone();
    let Some(charge) = st.charges.get_mut(&charge_id) else {
        return;
    };
    let pi = st.payment_intents.get_mut(pi_id).expect("checked above");
    if succeeds {
        charge.status = "succeeded".into();
        charge.balance_transaction = Some(ids::new_id("txn"));
        pi.status = "succeeded".into();
        pi.amount_received = pi.amount;
    } else {
        let d = Decline::sepa_failed();
        charge.status = "failed".into();
        charge.failure_code = Some(d.code.clone());
        charge.failure_message = Some(d.message.clone());
        pi.status = "requires_payment_method".into();
        pi.last_payment_error = Some(Decline {
            charge: Some(charge_id.clone()),
            ..d
        });
    }
    let (charge_json, pi_json) = (charge.to_json(Vec::new()), pi.to_json());
    if succeeds {
        st.emit("charge.succeeded", charge_json, &request, hook);
        st.emit("payment_intent.succeeded", pi_json, &request, hook);
    } else {
        st.emit("charge.failed", charge_json, &request, hook);
        st.emit("payment_intent.payment_failed", pi_json, &request, hook);
    }
    if let Some(session) = session_id.and_then(|id| st.checkout_sessions.get_mut(&id)) {
        let event = if succeeds {
            session.payment_status = "paid".into();
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        let json = session.to_json(false);
        st.emit(event, json, &request, hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_map_to_outcomes() {
        assert_eq!(
            outcome_for_card_number("4242 4242 4242 4242").unwrap().0,
            Outcome::Succeed
        );
        assert_eq!(
            outcome_for_card_number("4000000000000002").unwrap().0,
            Outcome::Decline(Decline::generic())
        );
        assert_eq!(
            outcome_for_card_number("4000 0000 0000 9995").unwrap().0,
            Outcome::Decline(Decline::insufficient_funds())
        );
        assert!(outcome_for_card_number("4111 1111 1111 1112").is_err());
        assert!(outcome_for_card_number("42").is_err());
        assert_eq!(
            outcome_for_iban("DE89 3704 0044 0532 0130 00"),
            Ok(Outcome::Delayed { succeeds: true })
        );
        assert_eq!(
            outcome_for_iban("DE62370400440532013001"),
            Ok(Outcome::Delayed { succeeds: false })
        );
        assert!(outcome_for_test_payment_method("pm_card_bogus").is_none());
        assert_eq!(
            outcome_for_card_number("4000 0000 0000 0259").unwrap().2,
            CardBehavior::Disputed
        );
        assert_eq!(
            outcome_for_test_payment_method("pm_card_refundFail")
                .unwrap()
                .1
                .behavior(),
            CardBehavior::RefundsFail
        );
    }
}
