//! The pages Stripe Checkout returns the buyer to. The success page fulfils the purchase
//! itself (Stripe's recipe), so credits appear even before the webhook arrives. Rendered
//! through `templates/checkout_result.html`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use creditd_domain::money::{self, PaymentStatus};
use creditd_domain::Credits;
use serde::Deserialize;

use super::STYLE;
use crate::app::AppState;
use crate::billing::checkout;

#[derive(Deserialize)]
pub struct SuccessQuery {
    pub session_id: Option<String>,
}

/// What the page says happened.
pub enum Outcome {
    Paid {
        credits: Credits,
        amount: String,
        balance: Option<Credits>,
        receipt: Option<String>,
    },
    Processing {
        credits: Credits,
        amount: String,
    },
    NotCompleted {
        reason: String,
    },
    Subscribed {
        balance: Option<Credits>,
    },
    Message {
        heading: &'static str,
        text: &'static str,
    },
}

#[derive(Template)]
#[template(path = "checkout_result.html")]
pub struct CheckoutResult {
    pub title: &'static str,
    pub style: &'static str,
    pub outcome: Outcome,
    /// A link back to the billing page (when customer tokens are on).
    pub back: bool,
}

pub fn render(title: &'static str, outcome: Outcome, back: bool) -> Html<String> {
    let page = CheckoutResult {
        title,
        style: STYLE,
        outcome,
        back,
    };
    Html(page.render().expect("the checkout result template renders"))
}

fn message(title: &'static str, heading: &'static str, text: &'static str) -> Html<String> {
    render(title, Outcome::Message { heading, text }, false)
}

/// `GET /billing/success?session_id=cs_…`
pub async fn success(State(state): State<AppState>, Query(query): Query<SuccessQuery>) -> (StatusCode, Html<String>) {
    let Some(session_id) = query.session_id.filter(|s| s.starts_with("cs_") && s.len() < 256) else {
        let text = "This page is opened by Stripe Checkout after a payment.";
        return (
            StatusCode::BAD_REQUEST,
            message("Missing checkout session", "Missing checkout session", text),
        );
    };
    let back = state.settings.customer_tokens.is_some();
    let fulfilled = match checkout::fulfill(&state, &session_id).await {
        Ok(Some((payment, _))) => payment,
        Ok(None) => {
            if let Ok(Some(customer)) = crate::billing::subscriptions::complete_checkout(&state, &session_id).await {
                let balance = balance(&state, &customer).await;
                return (
                    StatusCode::OK,
                    render("Subscription", Outcome::Subscribed { balance }, back),
                );
            }
            let text = "This payment was not started by creditd.";
            return (
                StatusCode::NOT_FOUND,
                message("Unknown checkout session", "Unknown checkout session", text),
            );
        }
        Err(e) => {
            tracing::warn!(session = %session_id, error = %e, "success page could not fulfil");
            let text = "If you paid, your credits arrive automatically within minutes. You can close this page.";
            return (
                StatusCode::BAD_GATEWAY,
                message(
                    "Payment not confirmed yet",
                    "We could not confirm your payment yet",
                    text,
                ),
            );
        }
    };
    let amount = money::display(fulfilled.amount, &fulfilled.currency);
    let outcome = match fulfilled.status {
        PaymentStatus::Succeeded => Outcome::Paid {
            credits: fulfilled.credits,
            amount,
            balance: balance(&state, &fulfilled.customer).await,
            receipt: fulfilled.receipt_url.clone(),
        },
        PaymentStatus::Pending => Outcome::Processing {
            credits: fulfilled.credits,
            amount,
        },
        PaymentStatus::Failed | PaymentStatus::Expired => Outcome::NotCompleted {
            reason: fulfilled
                .failure_message
                .clone()
                .unwrap_or_else(|| "The checkout was not completed.".into()),
        },
    };
    (StatusCode::OK, render("Payment", outcome, back))
}

async fn balance(state: &AppState, customer: &str) -> Option<Credits> {
    let customer = state.store.customer(customer, state.clock.now()).await.ok().flatten();
    customer.map(|c| c.balance)
}

/// `GET /billing/cancel`
pub async fn cancel() -> Html<String> {
    let text = "No payment was made and no credits were added.";
    message("Checkout canceled", "Checkout canceled", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paid_checkout() {
        let outcome = Outcome::Paid {
            credits: Credits::from_micros(100_000_000),
            amount: "5.00 USD".into(),
            balance: Some(Credits::from_micros(105_000_000)),
            receipt: Some("https://pay.example/r?a=1&b=2".into()),
        };
        let html = render("Payment", outcome, true).0.replace(STYLE, "/* style */");
        insta::assert_snapshot!(html);
    }

    #[test]
    fn a_failed_checkout_escapes_stripes_message() {
        let outcome = Outcome::NotCompleted {
            reason: "Your card was declined <sorry>.".into(),
        };
        let html = render("Payment", outcome, false).0.replace(STYLE, "/* style */");
        insta::assert_snapshot!(html);
    }
}
