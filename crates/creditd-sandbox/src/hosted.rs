//! The hosted Checkout page: a plain server-rendered form at `/pay/{cs_…}`
//! (no scripts, nothing loaded from elsewhere) and its submission.
//!
//! Cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined
//! (`generic_decline`); 4000 0000 0000 9995 is declined
//! (`insufficient_funds`); 4000 0000 0000 0259 pays and is then disputed;
//! 4000 0000 0000 5126 pays but its refunds fail; 4000 0000 0000 0341 pays
//! but later charges of the saved card fail. SEPA Direct Debit simulates a delayed method:
//! IBAN DE89370400440532013000 completes the session `unpaid`, then succeeds
//! after the configured settlement delay; DE62370400440532013001 then fails.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::app::{App, SharedApp};
use crate::checkout::CheckoutSession;
use crate::customer::Customer;
use crate::event::EventRequest;
use crate::ids;
use crate::payment::{self, Outcome, PaymentMethodDetails};
use crate::payment_intent::PaymentIntent;
use crate::state::State as SandboxState;
use crate::subscription::{self, CheckoutPurchase};
use crate::timers::Action;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Minor units as a decimal with two places (zero-decimal currencies are
/// shown the same way; the sandbox does not special-case them).
pub fn format_amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, (minor % 100).abs())
}

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Stripe sandbox</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}}\
fieldset{{border:1px solid #ccd;border-radius:6px;margin:1rem 0;padding:1rem}}label{{display:block;margin:.5rem 0}}\
input{{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}}button{{padding:.6rem 1.2rem;font-size:1rem}}\
.error{{background:#fde8e8;border:1px solid #e11;padding:.75rem;border-radius:6px}}\
.note{{color:#556;font-size:.9rem}}</style></head><body>\
<p class=\"note\">TEST MODE · creditd Stripe sandbox</p>{}</body></html>",
        escape(title),
        body
    )
}

fn checkout_page(session: &CheckoutSession, error: Option<&str>) -> String {
    let mut body = String::from("<h1>Checkout</h1><table>");
    for li in &session.line_items {
        body += &format!(
            "<tr><td>{} × {}</td><td>{} {}</td></tr>",
            escape(&li.description),
            li.quantity,
            format_amount(li.price.unit_amount * li.quantity as i64),
            li.price.currency.to_ascii_uppercase()
        );
    }
    let every = match session.line_items[0].price.recurring.as_ref() {
        Some(r) if session.mode == "subscription" => format!(" every {}", escape(&r.interval)),
        _ => String::new(),
    };
    body += &format!(
        "</table><p><strong>Total: {} {}{every}</strong></p>",
        format_amount(session.amount_total()),
        session.currency.to_ascii_uppercase()
    );
    match session.status.as_str() {
        "open" => {}
        "complete" => {
            return page(
                "Checkout",
                &(body + "<p>This checkout session is already complete.</p>"),
            )
        }
        _ => return page("Checkout", &(body + "<p>This checkout session has expired.</p>")),
    }
    if let Some(e) = error {
        body += &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e));
    }
    let action = format!("/pay/{}", escape(&session.id));
    // Subscriptions are paid by card only in the sandbox.
    let sepa = if session.mode == "payment" {
        format!(
            "<form method=\"post\" action=\"{action}\"><fieldset><legend>SEPA Direct Debit (delayed)</legend>\
<input type=\"hidden\" name=\"method\" value=\"sepa_debit\">\
<label>IBAN <input name=\"iban\" placeholder=\"DE89370400440532013000\" required></label>\
<label>Account holder <input name=\"name\"></label>\
<button type=\"submit\">Pay by debit</button></fieldset></form>"
        )
    } else {
        String::new()
    };
    body += &format!(
        "<form method=\"post\" action=\"{action}\"><fieldset><legend>Pay with card</legend>\
<input type=\"hidden\" name=\"method\" value=\"card\">\
<label>Card number <input name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" placeholder=\"4242 4242 4242 4242\" required></label>\
<label>Expiry (MM/YY) <input name=\"card_expiry\" autocomplete=\"cc-exp\" placeholder=\"12/34\" required></label>\
<label>CVC <input name=\"card_cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" placeholder=\"123\" required></label>\
<label>Name on card <input name=\"name\" autocomplete=\"cc-name\"></label>\
<button type=\"submit\">Pay</button></fieldset></form>{sepa}\
<p class=\"note\">Test cards: 4242 4242 4242 4242 succeeds · 4000 0000 0000 0002 is declined · \
4000 0000 0000 9995 has insufficient funds · 4000 0000 0000 0259 pays, then is disputed · \
4000 0000 0000 5126 pays, but refunds fail · 4000 0000 0000 0341 pays now, fails later charges. \
Test IBANs: DE89370400440532013000 succeeds later · DE62370400440532013001 fails later.</p>"
    );
    if let Some(cancel) = &session.cancel_url {
        body += &format!("<p><a href=\"{}\">Cancel and return</a></p>", escape(cancel));
    }
    page("Checkout", &body)
}

/// `GET /pay/{id}`
pub async fn show(State(app): State<SharedApp>, Path(id): Path<String>) -> Response {
    let st = app.state.lock().await;
    match st.checkout_sessions.get(&id) {
        Some(s) => Html(checkout_page(s, None)).into_response(),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page("Not found", "<h1>No such checkout session</h1>")),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct PayForm {
    method: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_expiry: String,
    #[serde(default)]
    card_cvc: String,
    #[serde(default)]
    iban: String,
    #[serde(default)]
    name: String,
}

/// `MM/YY` (or `MM/YYYY`) not in the past.
fn parse_expiry(s: &str) -> Result<(i64, i64), String> {
    let bad = || "Your card's expiration date is incomplete.".to_owned();
    let (m, y) = s.split_once('/').ok_or_else(bad)?;
    let month: i64 = m.trim().parse().map_err(|_| bad())?;
    let mut year: i64 = y.trim().parse().map_err(|_| bad())?;
    if year < 100 {
        year += 2000;
    }
    if !(1..=12).contains(&month) {
        return Err("Your card's expiration month is invalid.".into());
    }
    let now_year = 1970 + ids::now_unix() / 31_556_952;
    if year < now_year {
        return Err("Your card's expiration year is in the past.".into());
    }
    Ok((month, year))
}

/// What the form describes, or a message for the payer.
fn read_form(form: &PayForm) -> Result<(PaymentMethodDetails, Outcome), String> {
    let name = Some(form.name.trim().to_owned()).filter(|n| !n.is_empty());
    match form.method.as_str() {
        "card" => {
            let (outcome, brand, behavior) = payment::outcome_for_card_number(&form.card_number)?;
            let (exp_month, exp_year) = parse_expiry(&form.card_expiry)?;
            let cvc = form.card_cvc.trim();
            if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
                return Err("Your card's security code is incomplete.".into());
            }
            let digits: String = form.card_number.chars().filter(char::is_ascii_digit).collect();
            let last4 = digits[digits.len() - 4..].to_owned();
            Ok((
                PaymentMethodDetails::Card {
                    brand: brand.into(),
                    last4,
                    exp_month,
                    exp_year,
                    name,
                    behavior,
                },
                outcome,
            ))
        }
        "sepa_debit" => {
            let outcome = payment::outcome_for_iban(&form.iban)?;
            let iban: String = form.iban.chars().filter(|c| !c.is_whitespace()).collect();
            let last4 = iban[iban.len() - 4..].to_owned();
            let country = iban[..2].to_ascii_uppercase();
            Ok((PaymentMethodDetails::SepaDebit { last4, country, name }, outcome))
        }
        _ => Err("Choose a payment method.".into()),
    }
}

/// `POST /pay/{id}`: pays the session as a browser would.
pub async fn submit(State(app): State<SharedApp>, Path(id): Path<String>, Form(form): Form<PayForm>) -> Response {
    let mut st = app.state.lock().await;
    let Some(session) = st.checkout_sessions.get(&id) else {
        return not_found();
    };
    if session.status != "open" {
        return (StatusCode::CONFLICT, Html(checkout_page(session, None))).into_response();
    }
    let (method, outcome) = match read_form(&form) {
        Ok(x) => x,
        Err(msg) => return (StatusCode::BAD_REQUEST, Html(checkout_page(session, Some(&msg)))).into_response(),
    };
    let hook = app.webhook_url();
    let request = EventRequest {
        id: Some(ids::new_id("req")),
        idempotency_key: None,
    };
    if session.mode == "subscription" {
        let response = subscribe(&app, &mut st, &id, method, outcome, &request);
        if let Err(e) = app.commit(&st).await {
            return e.into_response();
        }
        return response;
    }
    // The PaymentIntent is created at the first attempt and reused after a decline.
    let pi_id = match &session.payment_intent {
        Some(pi) => pi.clone(),
        None => {
            let mut pi = PaymentIntent::new(
                session.amount_total(),
                &session.currency,
                session.customer.clone(),
                Default::default(),
            );
            pi.checkout_session = Some(id.clone());
            pi.setup_future_usage = session.setup_future_usage.clone();
            pi.created = st.now();
            pi.payment_method_types = session.payment_method_types.clone();
            let pi_id = pi.id.clone();
            st.emit("payment_intent.created", pi.to_json(), &request, hook.as_deref());
            st.payment_intents.insert(pi_id.clone(), pi);
            st.checkout_sessions.get_mut(&id).expect("exists").payment_intent = Some(pi_id.clone());
            pi_id
        }
    };
    let delayed = match &outcome {
        Outcome::Delayed { succeeds } => Some(*succeeds),
        _ => None,
    };
    let payer_name = method.holder_name().map(str::to_owned);
    let result = payment::attempt(&mut st, &app, &pi_id, method, outcome, &request);
    let session = st.checkout_sessions.get_mut(&id).expect("exists");
    let response = match result {
        Err(decline) => (
            StatusCode::PAYMENT_REQUIRED,
            Html(checkout_page(session, Some(&decline.message))),
        )
            .into_response(),
        Ok(()) => {
            session.status = "complete".into();
            session.payment_status = if delayed.is_some() { "unpaid" } else { "paid" }.into();
            session.payer_name = payer_name;
            let json = session.to_json(false);
            let redirect = session.success_redirect();
            st.emit("checkout.session.completed", json, &request, hook.as_deref());
            if let Some(succeeds) = delayed {
                st.schedule(
                    app.options.async_settle_delay,
                    Action::Settle {
                        payment_intent: pi_id,
                        succeeds,
                    },
                );
            }
            match redirect {
                Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
                None => Html(page("Paid", "<h1>Thanks, payment received.</h1>")).into_response(),
            }
        }
    };
    if let Err(e) = app.commit(&st).await {
        return e.into_response();
    }
    response
}

/// Pays a `subscription` session: starts its subscription and pays the
/// first invoice (after a decline, a new card retries the same invoice).
fn subscribe(
    app: &App,
    st: &mut SandboxState,
    id: &str,
    method: PaymentMethodDetails,
    outcome: Outcome,
    request: &EventRequest,
) -> Response {
    let session = st.checkout_sessions[id].clone();
    if method.type_name() != "card" {
        let page = checkout_page(&session, Some("This subscription can only be paid by card."));
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let hook = app.webhook_url();
    // Stripe creates the customer of a subscription when none was given.
    let customer = match &session.customer {
        Some(c) => c.clone(),
        None => {
            let c = Customer {
                id: ids::new_id("cus"),
                created: st.now(),
                email: session.customer_email.clone(),
                name: method.holder_name().map(str::to_owned),
                description: None,
                metadata: Default::default(),
                default_payment_method: None,
            };
            st.emit("customer.created", c.to_json(), request, hook.as_deref());
            let cid = c.id.clone();
            st.customers.insert(cid.clone(), c);
            st.checkout_sessions.get_mut(id).expect("exists").customer = Some(cid.clone());
            cid
        }
    };
    let item = &session.line_items[0];
    let purchase = CheckoutPurchase {
        customer,
        price: item.price.clone(),
        quantity: item.quantity,
        product_name: item.description.clone(),
        metadata: session.subscription_metadata.clone(),
    };
    let payer_name = method.holder_name().map(str::to_owned);
    let (sub_id, invoice_id, result) = subscription::start_from_checkout(
        st,
        app,
        session.subscription.clone(),
        purchase,
        method,
        outcome,
        request,
    );
    let s = st.checkout_sessions.get_mut(id).expect("exists");
    s.subscription = Some(sub_id);
    s.invoice = Some(invoice_id);
    if let Err(decline) = result {
        return (
            StatusCode::PAYMENT_REQUIRED,
            Html(checkout_page(s, Some(&decline.message))),
        )
            .into_response();
    }
    s.status = "complete".into();
    s.payment_status = "paid".into();
    s.payer_name = payer_name;
    let (json, redirect) = (s.to_json(false), s.success_redirect());
    st.emit("checkout.session.completed", json, request, hook.as_deref());
    match redirect {
        Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        None => Html(page("Subscribed", "<h1>Thanks, your subscription is active.</h1>")).into_response(),
    }
}
