//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the base64-decoded part of the
//! endpoint's `whsec_…` secret. During a rotation both secrets sign: two `v1,` signatures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// A fresh secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key a secret stands for.
fn key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    // Secrets are made by `new_secret`; one that does not decode is used as its own bytes.
    STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// `v1,<signature>` of one message with one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body every endpoint receives for an event: `{"type", "timestamp", "data"}`, the same
/// bytes on every attempt. `data` is the recorded object, already JSON.
pub fn body(event_type: &str, created: i64, data: &str) -> String {
    format!(
        "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
        serde_json::Value::from(event_type),
        serde_json::Value::from(crate::clock::rfc3339(created)),
        data
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn rotation_signs_twice_and_bodies_are_stable() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with("whsec_") && a != b);
        let header = signature_header(&[&a, &b], "msg_1", 10, "{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
        let data = r#"{"id":"grt_1"}"#;
        assert_eq!(body("credits.granted", 0, data), body("credits.granted", 0, data));
        let parsed: serde_json::Value = serde_json::from_str(&body("credits.granted", 0, data)).unwrap();
        assert_eq!(parsed["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(parsed["data"]["id"], "grt_1");
    }
}
