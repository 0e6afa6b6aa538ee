//! Prefixed, typed ids for creditd's own objects (`grt_…`, `ent_…`, `hold_…`).

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 20 base-62 characters carry ~119 bits of randomness: collisions are not a concern.
const RANDOM_CHARS: usize = 20;

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
        }
    }

    /// A fresh random id of this kind.
    pub fn new_id(self) -> String {
        let mut id = String::with_capacity(self.prefix().len() + RANDOM_CHARS);
        id.push_str(self.prefix());
        id.push_str(&random_token(RANDOM_CHARS));
        id
    }

    /// Whether `id` looks like an id of this kind (prefix and alphabet); cheap input check.
    pub fn matches(self, id: &str) -> bool {
        id.strip_prefix(self.prefix())
            .is_some_and(|rest| !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
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
}
