//! Prefixed, typed ids for creditd's own objects (`grt_…`, `ent_…`, `hold_…`).

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The time part: milliseconds since 1970 in 8 base-62 characters (good for 6,900 years).
const TIME_CHARS: usize = 8;
/// 12 base-62 characters carry ~71 bits of randomness per millisecond: collisions are not a
/// concern.
const RANDOM_CHARS: usize = 12;

/// The kinds of object creditd names itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Grant,
    Entry,
    Hold,
    Usage,
    ApiKey,
    Package,
    Payment,
    /// An admin's adjustment of a customer's credits.
    Adjustment,
    AdminUser,
    /// An outbound event: also the `webhook-id` of every delivery of it.
    OutboundEvent,
    WebhookEndpoint,
    Delivery,
    DeliveryAttempt,
    AutoTopupRun,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Grant => "grt_",
            IdKind::Entry => "ent_",
            IdKind::Hold => "hold_",
            IdKind::Usage => "use_",
            IdKind::ApiKey => "key_",
            IdKind::Package => "pkg_",
            IdKind::Payment => "pay_",
            IdKind::Adjustment => "adj_",
            IdKind::AdminUser => "adm_",
            IdKind::OutboundEvent => "msg_",
            IdKind::WebhookEndpoint => "we_",
            IdKind::Delivery => "dlv_",
            IdKind::DeliveryAttempt => "att_",
            IdKind::AutoTopupRun => "atu_",
        }
    }

    /// A fresh id of this kind: the creation time in milliseconds, then random characters.
    /// Ids made later sort after (to the millisecond), so a table's index on its ids grows
    /// at its end instead of touching a random page per new row — on the spend path that
    /// is a write-ahead-log page per entry saved at every commit.
    pub fn new_id(self) -> String {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut id = String::with_capacity(self.prefix().len() + TIME_CHARS + RANDOM_CHARS);
        id.push_str(self.prefix());
        id.push_str(&time_chars(millis));
        id.push_str(&random_token(RANDOM_CHARS));
        id
    }

    /// When an id of this kind made by [`IdKind::new_id`] was made, in milliseconds since 1970.
    pub fn created_millis(self, id: &str) -> Option<u64> {
        let time = id.strip_prefix(self.prefix())?.get(..TIME_CHARS)?;
        time.bytes().try_fold(0u64, |acc, b| {
            let digit = ALPHABET.iter().position(|a| *a == b)? as u64;
            acc.checked_mul(62)?.checked_add(digit)
        })
    }

    /// Whether `id` looks like an id of this kind (prefix and alphabet); cheap input check.
    pub fn matches(self, id: &str) -> bool {
        id.strip_prefix(self.prefix())
            .is_some_and(|rest| !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
}

/// `millis` in [`TIME_CHARS`] base-62 digits, most significant first (ASCII order is numeric
/// order: the alphabet is sorted).
fn time_chars(mut millis: u64) -> String {
    let mut digits = [b'0'; TIME_CHARS];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(millis % 62) as usize];
        millis /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base-62 digits are ASCII")
}

/// `len` random base-62 characters from the operating system's CSPRNG.
pub fn random_token(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the operating system's random source failed");
        // Rejection sampling keeps the distribution uniform: 248 = 4 × 62.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[usize::from(*b % 62)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_differ() {
        let a = IdKind::Grant.new_id();
        let b = IdKind::Grant.new_id();
        assert!(a.starts_with("grt_") && a.len() == 24);
        assert_ne!(a, b);
        assert!(IdKind::Grant.matches(&a));
        assert!(!IdKind::Hold.matches(&a));
        assert!(!IdKind::Hold.matches("hold_"));
        assert!(!IdKind::Hold.matches("hold_a-b"));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        assert_eq!(time_chars(0), "00000000");
        assert_eq!(time_chars(61), "0000000z");
        assert_eq!(time_chars(62), "00000010");
        // 2026 and 2100, in order, byte-wise as the databases compare them.
        assert!(time_chars(1_795_000_000_000) < time_chars(4_102_444_800_000));
        assert_eq!(IdKind::Usage.created_millis("use_0000001000000000000x"), Some(62));
        assert_eq!(IdKind::Usage.created_millis("grt_0000001000000000000x"), None);
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let made = IdKind::Usage.created_millis(&IdKind::Usage.new_id()).unwrap();
        assert!(made >= before && made < before + 1000);
        let first = IdKind::Entry.new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(IdKind::Entry.new_id() > first);
    }
}
