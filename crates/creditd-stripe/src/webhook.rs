//! Verification (and, for the sandbox and tests, generation) of the
//! `Stripe-Signature` header, exactly as Stripe specifies it.
//!
//! Signed bytes are `"{t}." + raw body`; HMAC-SHA256 keyed with the whole
//! secret string (including `whsec_`); only `v1` signatures count; any `v1`
//! matching any configured secret is accepted, so secrets can be rotated.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's documented default tolerance between `t` and now.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// Why a webhook signature was rejected. Any of these means: answer 400 and
/// process nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("Stripe-Signature header has no valid timestamp (t=)")]
    MissingTimestamp,
    #[error("Stripe-Signature header has no v1 signatures")]
    NoV1Signatures,
    #[error("no v1 signature matches the payload for any configured secret")]
    NoMatchingSignature,
    #[error("signature timestamp {timestamp} is outside the tolerance of {tolerance_s}s (now {now})")]
    TimestampOutsideTolerance { timestamp: i64, now: i64, tolerance_s: i64 },
    #[error("no webhook secret configured")]
    NoSecrets,
}

/// The parts of a `Stripe-Signature` header that matter: the timestamp and
/// every well-formed `v1` signature (decoded from hex).
struct ParsedHeader {
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

/// Lenient parse: unknown schemes and malformed candidates are ignored.
/// If `t` appears several times the first well-formed one wins.
fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    if header.trim().is_empty() {
        return Err(SignatureError::MissingHeader);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_none() => timestamp = value.trim().parse::<i64>().ok(),
            "v1" => {
                if let Ok(sig) = hex::decode(value.trim()) {
                    if sig.len() == 32 {
                        v1.push(sig);
                    }
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signatures);
    }
    Ok(ParsedHeader { timestamp, v1 })
}

fn mac_for(payload: &[u8], secret: &str, t: i64) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Verifies a webhook delivery.
///
/// `payload` must be the exact bytes received. `secrets` are all currently
/// valid endpoint secrets (more than one while rotating). Rejects when
/// `|now_unix - t| > tolerance_s`.
pub fn verify(
    payload: &[u8],
    header: &str,
    secrets: &[&str],
    now_unix: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    if secrets.is_empty() {
        return Err(SignatureError::NoSecrets);
    }
    let matched = secrets.iter().any(|secret| {
        parsed.v1.iter().any(|candidate| {
            // `verify_slice` compares in constant time.
            mac_for(payload, secret, parsed.timestamp)
                .verify_slice(candidate)
                .is_ok()
        })
    });
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }
    if now_unix.abs_diff(parsed.timestamp) > tolerance_s.unsigned_abs() {
        return Err(SignatureError::TimestampOutsideTolerance {
            timestamp: parsed.timestamp,
            now: now_unix,
            tolerance_s,
        });
    }
    Ok(())
}

/// Lowercase hex HMAC-SHA256 of `"{t}." + payload` keyed with `secret`.
pub fn compute_signature(payload: &[u8], secret: &str, t: i64) -> String {
    hex::encode(mac_for(payload, secret, t).finalize().into_bytes())
}

/// Builds a `Stripe-Signature` header value `t=<t>,v1=<hex>`.
pub fn sign_header(payload: &[u8], secret: &str, t: i64) -> String {
    format!("t={t},v1={}", compute_signature(payload, secret, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOTNET_T: i64 = 1_533_204_620;
    const DOTNET_V1: &str = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
    const DOTNET_V1_NO_NEWLINE: &str = "8c506d7d19ece69e9a38e398964787dda54eeb2583381ffc7f56070c28d7f119";

    fn dotnet_payload() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/stripe/vectors/event_test_signature.json"
        );
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    #[test]
    fn dotnet_vector_is_accepted_within_tolerance() {
        let payload = dotnet_payload();
        assert_eq!(payload.len(), 484, "vector file changed");
        let header = format!("t={DOTNET_T},v1={DOTNET_V1}");
        assert_eq!(
            verify(&payload, &header, &["webhook_secret"], DOTNET_T + 100, 300),
            Ok(())
        );
        assert_eq!(
            sign_header(&payload, "webhook_secret", DOTNET_T),
            header,
            "our signer must reproduce the vector"
        );
    }

    #[test]
    fn dotnet_vector_is_rejected_outside_tolerance() {
        let payload = dotnet_payload();
        let header = format!("t={DOTNET_T},v1={DOTNET_V1}");
        assert!(matches!(
            verify(&payload, &header, &["webhook_secret"], DOTNET_T + 400, 300),
            Err(SignatureError::TimestampOutsideTolerance { .. })
        ));
        // Clock skew the other way counts too.
        assert!(matches!(
            verify(&payload, &header, &["webhook_secret"], DOTNET_T - 400, 300),
            Err(SignatureError::TimestampOutsideTolerance { .. })
        ));
    }

    #[test]
    fn dotnet_vector_without_trailing_newline() {
        let payload = dotnet_payload();
        let trimmed = &payload[..payload.len() - 1];
        let header = format!("t={DOTNET_T},v1={DOTNET_V1_NO_NEWLINE}");
        assert_eq!(verify(trimmed, &header, &["webhook_secret"], DOTNET_T, 300), Ok(()));
        // The with-newline signature must not verify the trimmed body.
        let header = format!("t={DOTNET_T},v1={DOTNET_V1}");
        assert_eq!(
            verify(trimmed, &header, &["webhook_secret"], DOTNET_T, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn async_stripe_vector() {
        // Compact, sorted-key payload from async-stripe-webhook's own test.
        let payload = br#"{"account":"acct_123","api_version":"2017-05-25","created":1533204620,"data":{"object":{"amount":1000,"currency":"usd","customer":"cus_123","date":1533204620,"description":"Test Invoice Item","discountable":false,"id":"ii_123","invoice":"in_123","livemode":false,"metadata":{},"object":"invoiceitem","period":{"end":1533204620,"start":1533204620},"proration":false,"quantity":3,"quantity_decimal":"0"}},"id":"evt_123","livemode":false,"object":"event","pending_webhooks":1,"request":{"id":"req_123","idempotency_key":"idempotency-key-123"},"type":"invoiceitem.created"}"#;
        let v1 = "d7373bc68f4bd320b253cd7461f87af6e1cdf1b4d7db1614d8d1d746972d2d0a";
        // The test's header also carries a v0, which must be ignored.
        let header =
            format!("t=1533204620,v1={v1},v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef");
        assert_eq!(verify(payload, &header, &["secret"], 1_533_204_620, 300), Ok(()));
        assert_eq!(
            sign_header(payload, "secret", 1_533_204_620),
            format!("t=1533204620,v1={v1}")
        );
    }

    #[test]
    fn rotation_accepts_any_v1_for_any_secret() {
        let body = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{}}}"#;
        let t = 1_700_000_000;
        let old = compute_signature(body, "whsec_old", t);
        let new = compute_signature(body, "whsec_new", t);
        let header = format!("t={t},v1={old},v1={new}");
        // Either secret alone, or both, verifies.
        for secrets in [&["whsec_old"][..], &["whsec_new"], &["whsec_other", "whsec_new"]] {
            assert_eq!(verify(body, &header, secrets, t, 300), Ok(()), "{secrets:?}");
        }
        assert_eq!(
            verify(body, &header, &["whsec_other"], t, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn v0_only_is_rejected() {
        let body = b"{}";
        let t = 1_700_000_000;
        let sig = compute_signature(body, "whsec_x", t);
        let header = format!("t={t},v0={sig}");
        assert_eq!(
            verify(body, &header, &["whsec_x"], t, 300),
            Err(SignatureError::NoV1Signatures)
        );
        // v0 beside a valid v1 is simply ignored.
        let header = format!("t={t},v0=deadbeef,v1={sig}");
        assert_eq!(verify(body, &header, &["whsec_x"], t, 300), Ok(()));
    }

    #[test]
    fn tampered_body_is_rejected() {
        let t = 1_700_000_000;
        let header = sign_header(br#"{"amount":100}"#, "whsec_x", t);
        assert_eq!(
            verify(br#"{"amount":900}"#, &header, &["whsec_x"], t, 300),
            Err(SignatureError::NoMatchingSignature)
        );
        // The secret includes its prefix: signing with the bare suffix differs.
        assert_eq!(
            verify(br#"{"amount":100}"#, &header, &["x"], t, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn malformed_header_pieces() {
        let body = b"payload";
        let t = 1_700_000_000;
        let sig = compute_signature(body, "whsec_x", t);
        let ok = ["whsec_x"];
        assert_eq!(verify(body, "", &ok, t, 300), Err(SignatureError::MissingHeader));
        assert_eq!(
            verify(body, &format!("v1={sig}"), &ok, t, 300),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(body, &format!("t=abc,v1={sig}"), &ok, t, 300),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(body, &format!("t={t}"), &ok, t, 300),
            Err(SignatureError::NoV1Signatures)
        );
        assert_eq!(
            verify(body, &format!("t={t},v1=zz,v1=abcd"), &ok, t, 300),
            Err(SignatureError::NoV1Signatures),
            "non-hex and short candidates are ignored"
        );
        // Malformed candidates and junk around a good one are tolerated.
        let header = format!("garbage, t={t} ,v1=not-hex,,x=1, v1={sig} ,v2=00");
        assert_eq!(verify(body, &header, &ok, t, 300), Ok(()));
        assert_eq!(
            verify(body, &format!("t={t},v1={sig}"), &[], t, 300),
            Err(SignatureError::NoSecrets)
        );
    }
}
