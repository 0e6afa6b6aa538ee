//! The pages Stripe Checkout returns the buyer to. The success page fulfils the purchase
//! itself (Stripe's recipe), so credits appear even before the webhook arrives.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use creditd_domain::money::{self, PaymentStatus};
use serde::Deserialize;

use super::{escape, page};
use crate::app::AppState;
use crate::billing::checkout;

#[derive(Deserialize)]
pub struct SuccessQuery {
    pub session_id: Option<String>,
}

/// `GET /billing/success?session_id=cs_…`
pub async fn success(State(state): State<AppState>, Query(query): Query<SuccessQuery>) -> (StatusCode, Html<String>) {
    let Some(session_id) = query.session_id.filter(|s| s.starts_with("cs_") && s.len() < 256) else {
        let body = "<h1>Missing checkout session</h1><p class=\"muted\">This page is opened by Stripe Checkout after a payment.</p>";
        return (StatusCode::BAD_REQUEST, Html(page("Missing checkout session", body)));
    };
    let fulfilled = match checkout::fulfill(&state, &session_id).await {
        Ok(Some((payment, _))) => payment,
        Ok(None) => {
            if let Ok(Some(customer)) = crate::billing::subscriptions::complete_checkout(&state, &session_id).await {
                return subscribed(&state, &customer).await;
            }
            let body =
                "<h1>Unknown checkout session</h1><p class=\"muted\">This payment was not started by creditd.</p>";
            return (StatusCode::NOT_FOUND, Html(page("Unknown checkout session", body)));
        }
        Err(e) => {
            tracing::warn!(session = %session_id, error = %e, "success page could not fulfil");
            let body = "<h1>We could not confirm your payment yet</h1>\
                <p>If you paid, your credits arrive automatically within minutes. You can close this page.</p>";
            return (StatusCode::BAD_GATEWAY, Html(page("Payment not confirmed yet", body)));
        }
    };
    let balance = state
        .store
        .customer(&fulfilled.customer, state.clock.now())
        .await
        .ok()
        .flatten();
    let amount = money::display(fulfilled.amount, &fulfilled.currency);
    let body = match fulfilled.status {
        PaymentStatus::Succeeded => {
            let receipt = fulfilled
                .receipt_url
                .as_deref()
                .map(|u| format!("<p><a href=\"{}\">View your receipt</a></p>", escape(u)))
                .unwrap_or_default();
            let balance = balance.map(|c| format!("<p>Your balance is now</p><p class=\"big\">{} credits</p>", c.balance)).unwrap_or_default();
            format!(
                "<h1 class=\"ok\">Payment received</h1><p>{} credits were added for {}.</p>{balance}{receipt}",
                fulfilled.credits,
                escape(&amount)
            )
        }
        PaymentStatus::Pending => format!(
            "<h1 class=\"warn\">Payment processing</h1><p>Your payment of {} is being processed. \
             {} credits arrive as soon as it clears; you can close this page.</p>",
            escape(&amount),
            fulfilled.credits
        ),
        PaymentStatus::Failed | PaymentStatus::Expired => format!(
            "<h1 class=\"err\">Payment not completed</h1><p>{}</p><p>No credits were added and you were not charged.</p>",
            escape(fulfilled.failure_message.as_deref().unwrap_or("The checkout was not completed."))
        ),
    };
    // Back to the billing page (a relative link: this page is `/billing/success`).
    let back = if state.settings.customer_tokens.is_some() {
        "<p><a href=\"../billing\">Back to billing</a></p>"
    } else {
        ""
    };
    (StatusCode::OK, Html(page("Payment", &format!("{body}{back}"))))
}

/// `GET /billing/cancel`
pub async fn cancel() -> Html<String> {
    Html(page(
        "Checkout canceled",
        "<h1>Checkout canceled</h1><p>No payment was made and no credits were added.</p>",
    ))
}

/// The success page of a subscription Checkout.
async fn subscribed(state: &AppState, customer: &str) -> (StatusCode, Html<String>) {
    let balance = state.store.customer(customer, state.clock.now()).await.ok().flatten();
    let balance = balance
        .map(|c| format!("<p>Your balance is now</p><p class=\"big\">{} credits</p>", c.balance))
        .unwrap_or_default();
    let body = format!("<h1 class=\"ok\">Subscription active</h1><p>Your plan's credits were added.</p>{balance}");
    (StatusCode::OK, Html(page("Subscription", &body)))
}
