//! Stripe-style ids (`cus_…`, `pi_…`) and the sandbox clock.

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random base62 string of `len` characters.
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// `prefix_` + 24 random characters, like Stripe's test-mode ids.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_token(24))
}

/// Checkout Session ids are long and carry `test`, as Stripe's do.
pub fn new_checkout_session_id() -> String {
    format!("cs_test_{}", random_token(58))
}

/// Unix seconds now. The one place the sandbox reads the wall clock, so a
/// test clock can later be added here.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds now (for schedules: deliveries, settlements).
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_prefix_and_are_unique() {
        let a = super::new_id("cus");
        let b = super::new_id("cus");
        assert!(a.starts_with("cus_") && a.len() == 28, "{a}");
        assert_ne!(a, b);
        assert!(super::new_checkout_session_id().starts_with("cs_test_"));
    }
}
