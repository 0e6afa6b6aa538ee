//! Input rules shared by every entry point (HTTP, CLI): each returns a message naming the rule.

/// Longest customer id, idempotency key and the like.
pub const MAX_ID_LEN: usize = 255;
/// Serialized size limit of a metadata object.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
pub const MAX_TEXT_LEN: usize = 500;

/// The app's user ids: 1–255 of `A–Z a–z 0–9 . _ - : @ + | =` (safe in a URL path).
pub fn customer_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must be 1 to {MAX_ID_LEN} characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-:@+|=".contains(&b))
    {
        return Err("may contain only letters, digits and . _ - : @ + | =".into());
    }
    Ok(())
}

/// Feature names: 1–100 of `A–Z a–z 0–9 . _ - : /`.
pub fn feature(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err("must be 1 to 100 characters".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b)) {
        return Err("may contain only letters, digits and . _ - : /".into());
    }
    Ok(())
}

/// Metadata: a JSON object of at most 8 KiB.
pub fn metadata(value: &serde_json::Value) -> Result<(), String> {
    if !value.is_object() {
        return Err("must be a JSON object".into());
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(format!("must be at most {MAX_METADATA_BYTES} bytes"));
    }
    Ok(())
}

/// Free text such as a reason or an email: at most 500 characters, no control characters.
pub fn text(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_TEXT_LEN {
        return Err(format!("must be at most {MAX_TEXT_LEN} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Idempotency keys: 1–255 visible ASCII characters (Stripe's limit).
pub fn idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_ID_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("must be 1 to {MAX_ID_LEN} visible ASCII characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_accept_and_refuse() {
        assert!(customer_id("user_123").is_ok());
        assert!(customer_id("a@b.c").is_ok());
        assert!(customer_id("").is_err());
        assert!(customer_id("a/b").is_err());
        assert!(customer_id(&"x".repeat(256)).is_err());
        assert!(feature("chat:gpt-4o").is_ok());
        assert!(feature("chat gpt").is_err());
        assert!(metadata(&serde_json::json!({"a": 1})).is_ok());
        assert!(metadata(&serde_json::json!([1])).is_err());
        assert!(text("fine").is_ok());
        assert!(text("bad\u{0}").is_err());
        assert!(idempotency_key("k-1").is_ok());
        assert!(idempotency_key("k 1").is_err());
    }
}
