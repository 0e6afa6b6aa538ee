//! Buying through Checkout as a browser would, and the signed events that follow.

use creditd_stripe::webhook::verify;

use crate::helpers::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn card_checkout_completes_and_sends_signed_events() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, price) = customer_and_price(&c, "flow").await;
    let session = c
        .create_checkout_session(checkout_params(&cus, &price.id, "cs-flow"))
        .await
        .unwrap();
    assert_eq!(session.payment_status, "unpaid");
    assert_eq!(session.amount_total, Some(2000));
    let url = session.url.clone().expect("open session has a url");
    assert_eq!(url, format!("{}pay/{}", sb.base_url, session.id));

    // The hosted page is a plain form.
    let page = browser().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<form") && page.contains("card_number") && page.contains("20.00 USD"),
        "{page}"
    );
    assert!(!page.contains("<script"), "no scripts on the hosted page");

    let resp = pay(&url, &card("4242 4242 4242 4242")).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("https://app.example/success?session_id={}", session.id)
    );

    let done = c.retrieve_checkout_session(&session.id).await.unwrap();
    assert_eq!(done.status.as_deref(), Some("complete"));
    assert_eq!(done.payment_status, "paid");
    assert_eq!(done.url, None);
    assert_eq!(done.customer.as_deref(), Some(cus.as_str()));
    assert_eq!(done.client_reference_id.as_deref(), Some("ref-1"));
    assert_eq!(done.metadata, vec![("package".to_owned(), "pkg_100".to_owned())]);
    assert_eq!(done.line_items, vec![(price.id.clone(), 2)]);
    let pi = c
        .retrieve_payment_intent(done.payment_intent.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (pi.status.as_str(), pi.amount, pi.amount_received),
        ("succeeded", 2000, 2000)
    );
    let charge = c.retrieve_charge(pi.latest_charge.as_deref().unwrap()).await.unwrap();
    assert_eq!(charge.status, "succeeded");
    assert_eq!(charge.payment_intent.as_deref(), Some(pi.id.as_str()));
    let receipt = charge.receipt_url.expect("receipt url");
    let receipt_page = browser().get(&receipt).send().await.unwrap().text().await.unwrap();
    assert!(receipt_page.contains("20.00 USD"), "{receipt_page}");

    // Stripe's event set for a card Checkout payment, each signed.
    let wanted = [
        "payment_intent.created",
        "charge.succeeded",
        "charge.updated",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ];
    let events = hook
        .wait_for("the card checkout event set", |evs| {
            wanted.iter().all(|w| types_of(evs).iter().any(|t| t == w))
        })
        .await;
    for d in hook.deliveries.lock().await.iter() {
        assert_eq!(
            verify(&d.body, &d.signature, &[WEBHOOK_SECRET], now(), 300),
            Ok(()),
            "signature verifies"
        );
        assert!(verify(&d.body, &d.signature, &["whsec_other"], now(), 300).is_err());
    }
    let completed = events
        .iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .unwrap();
    assert_eq!(completed["data"]["object"]["id"], session.id.as_str());
    assert_eq!(completed["data"]["object"]["payment_status"], "paid");
    let parsed = creditd_stripe::Event::parse(&serde_json::to_vec(completed).unwrap()).unwrap();
    assert_eq!(parsed.object_id(), Some(session.id.as_str()));

    // A completed session cannot be paid again.
    assert_eq!(pay(&url, &card("4242424242424242")).await.status(), 409);
    sb.shutdown().await;
}

#[tokio::test]
async fn declined_cards_show_the_error_and_keep_the_session_open() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, price) = customer_and_price(&c, "decline").await;
    let session = c
        .create_checkout_session(checkout_params(&cus, &price.id, "cs-decline"))
        .await
        .unwrap();
    let url = session.url.unwrap();
    for (number, message) in [
        ("4000 0000 0000 0002", "Your card was declined."),
        ("4000 0000 0000 9995", "Your card has insufficient funds."),
    ] {
        let resp = pay(&url, &card(number)).await;
        assert_eq!(resp.status(), 402);
        let page = resp.text().await.unwrap();
        assert!(page.contains(message), "{page}");
        let s = c.retrieve_checkout_session(&session.id).await.unwrap();
        assert_eq!(
            (s.status.as_deref(), s.payment_status.as_str()),
            (Some("open"), "unpaid")
        );
    }
    // Form validation errors create nothing.
    let mut bad_expiry = card("4242424242424242");
    bad_expiry[2] = ("card_expiry", "13/30");
    assert_eq!(pay(&url, &bad_expiry).await.status(), 400);

    let pi_id = c
        .retrieve_checkout_session(&session.id)
        .await
        .unwrap()
        .payment_intent
        .expect("pi after attempts");
    let (_, pi) = get_json(&sb, &format!("v1/payment_intents/{pi_id}")).await;
    assert_eq!(pi["status"], "requires_payment_method");
    assert_eq!(pi["last_payment_error"]["decline_code"], "insufficient_funds");
    let types = sb
        .read(|s| s.events.iter().map(|e| e.type_.clone()).collect::<Vec<_>>())
        .await;
    assert_eq!(types.iter().filter(|t| *t == "charge.failed").count(), 2, "{types:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "payment_intent.payment_failed").count(),
        2
    );
    assert!(!types.iter().any(|t| t == "checkout.session.completed"));

    // Then a good card pays the same session with the same intent.
    assert_eq!(pay(&url, &card("4242424242424242")).await.status(), 303);
    let s = c.retrieve_checkout_session(&session.id).await.unwrap();
    assert_eq!(
        (s.payment_status.as_str(), s.payment_intent.as_deref()),
        ("paid", Some(pi_id.as_str()))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn sepa_debit_completes_unpaid_then_settles_asynchronously() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, price) = customer_and_price(&c, "sepa").await;
    for (iban, key, final_event, final_status) in [
        (
            "DE89370400440532013000",
            "cs-sepa-ok",
            "checkout.session.async_payment_succeeded",
            "paid",
        ),
        (
            "DE62370400440532013001",
            "cs-sepa-fail",
            "checkout.session.async_payment_failed",
            "unpaid",
        ),
    ] {
        let session = c
            .create_checkout_session(checkout_params(&cus, &price.id, key))
            .await
            .unwrap();
        let resp = pay(
            session.url.as_deref().unwrap(),
            &[("method", "sepa_debit"), ("iban", iban)],
        )
        .await;
        assert_eq!(resp.status(), 303);
        let s = c.retrieve_checkout_session(&session.id).await.unwrap();
        assert_eq!(
            (s.status.as_deref(), s.payment_status.as_str()),
            (Some("complete"), "unpaid")
        );
        let pi = c
            .retrieve_payment_intent(s.payment_intent.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(pi.status, "processing");
        let sid = session.id.clone();
        hook.wait_for(final_event, |evs| {
            evs.iter()
                .any(|e| e["type"] == final_event && e["data"]["object"]["id"] == sid.as_str())
        })
        .await;
        let s = c.retrieve_checkout_session(&session.id).await.unwrap();
        assert_eq!(s.payment_status, final_status);
    }
    let types = types_of(&hook.accepted().await);
    for t in [
        "payment_intent.processing",
        "checkout.session.completed",
        "payment_intent.payment_failed",
    ] {
        assert!(types.iter().any(|x| x == t), "missing {t} in {types:?}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn expiring_a_session_closes_the_page_and_emits_expired() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, price) = customer_and_price(&c, "expire").await;
    let session = c
        .create_checkout_session(checkout_params(&cus, &price.id, "cs-expire"))
        .await
        .unwrap();
    let expired = c.expire_checkout_session(&session.id, "expire-1").await.unwrap();
    assert_eq!(expired.status.as_deref(), Some("expired"));
    assert_eq!(
        pay(session.url.as_deref().unwrap(), &card("4242424242424242"))
            .await
            .status(),
        409
    );
    match c.expire_checkout_session(&session.id, "expire-2").await {
        Err(creditd_stripe::StripeError::InvalidRequest { status: 400, .. }) => {}
        other => panic!("second expire must fail, got {other:?}"),
    }
    let last = sb.read(|s| s.events.last().map(|e| e.type_.clone())).await;
    assert_eq!(last.as_deref(), Some("checkout.session.expired"));
    sb.shutdown().await;
}
