//! The official Python `stripe` package works against the sandbox with only
//! its API base changed. With `CI` set a missing python3/`stripe` fails the
//! test; otherwise it is skipped with a message.

use std::process::Command;

use crate::helpers::*;

fn python_stripe_available() -> bool {
    let probe = Command::new("python3").args(["-c", "import stripe"]).output();
    let reason = match probe {
        Err(e) => format!("python3 not runnable: {e}"),
        Ok(out) if !out.status.success() => {
            format!(
                "python package `stripe` missing (pip install stripe): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
        Ok(_) => return true,
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the Python client cross-check cannot run: {reason}");
    }
    eprintln!("SKIPPED python client cross-check: {reason}");
    false
}

const SCRIPT: &str = r#"
import json, sys, stripe
stripe.api_key = "sk_test_python"
stripe.api_base = sys.argv[1].rstrip("/")
stripe.max_network_retries = 0
cus = stripe.Customer.create(email="py@example.com", metadata={"creditd_customer": "py1"})
price = stripe.Price.create(currency="usd", unit_amount=700, product_data={"name": "Python credits"})
session = stripe.checkout.Session.create(
    mode="payment",
    customer=cus.id,
    line_items=[{"price": price.id, "quantity": 3}],
    success_url="https://app.example/ok?session_id={CHECKOUT_SESSION_ID}",
    cancel_url="https://app.example/cancel",
    metadata={"package": "py"},
)
got = stripe.checkout.Session.retrieve(session.id, expand=["line_items"])
try:
    stripe.Customer.retrieve("cus_missing")
    missing = "no error"
except stripe.InvalidRequestError as e:
    missing = e.code
print(json.dumps({
    "customer": cus.id, "email": cus.email, "price": price.id, "product": price.product,
    "session": session.id, "url": session.url, "status": got.status, "amount_total": got.amount_total,
    "line_price": got.line_items.data[0].price.id, "line_qty": got.line_items.data[0].quantity,
    "line_object": got.line_items.object, "metadata": got.metadata.to_dict(), "missing": missing,
}))
"#;

#[tokio::test]
async fn official_python_client_talks_to_the_sandbox() {
    if !python_stripe_available() {
        return;
    }
    let sb = sandbox(None).await;
    let base = sb.base_url.clone();
    let out = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &base])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["customer"].as_str().unwrap().starts_with("cus_"), "{r}");
    assert_eq!(r["email"], "py@example.com");
    assert!(r["price"].as_str().unwrap().starts_with("price_"));
    assert!(r["product"].as_str().unwrap().starts_with("prod_"));
    assert_eq!(r["status"], "open");
    assert_eq!(r["amount_total"], 2100);
    assert_eq!(r["line_price"], r["price"]);
    assert_eq!(
        (r["line_qty"].as_i64(), r["line_object"].as_str()),
        (Some(3), Some("list"))
    );
    assert_eq!(r["metadata"]["package"], "py");
    assert_eq!(r["url"], format!("{}pay/{}", base, r["session"].as_str().unwrap()));
    assert_eq!(r["missing"], "resource_missing");
    // The session is usable from Rust too.
    let s = client(&sb)
        .retrieve_checkout_session(r["session"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(s.line_items, vec![(r["price"].as_str().unwrap().to_owned(), 3)]);
    sb.shutdown().await;
}
