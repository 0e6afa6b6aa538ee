//! Customer tokens: JWTs the app signs for its logged-in user (`sub` = the creditd customer
//! id, `exp` required), with a shared secret (HS256) or its private key (RS256/ES256, creditd
//! holds the public key). Exactly one algorithm is accepted, fixed by configuration: a token
//! that names another (`none`, HS256 against a public key…) is refused before any signature
//! check, which is what closes the algorithm-confusion holes.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;
/// A shared secret shorter than this is refused at start: HS256 is only as strong as its key.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// How customer tokens are verified.
#[derive(Clone)]
pub struct CustomerTokens {
    algorithm: Algorithm,
    key: DecodingKey,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for CustomerTokens {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerTokens")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims creditd reads; any others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

/// A verified token: whose it is and until when it is good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerClaims {
    pub customer: String,
    pub expires_at: i64,
}

impl CustomerTokens {
    pub fn hs256(secret: &[u8]) -> Result<CustomerTokens, String> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(format!(
                "must be at least {MIN_HS256_SECRET_BYTES} bytes (it has {})",
                secret.len()
            ));
        }
        Ok(CustomerTokens {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
            issuer: None,
            audience: None,
        })
    }

    /// An RSA (RS256) or P-256 (ES256) public key in PEM.
    pub fn public_key_pem(pem: &[u8]) -> Result<CustomerTokens, String> {
        let (algorithm, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (Algorithm::RS256, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else {
            return Err("is not an RSA or EC (P-256) public key in PEM".into());
        };
        Ok(CustomerTokens {
            algorithm,
            key,
            issuer: None,
            audience: None,
        })
    }

    /// Tokens must then carry this `iss`.
    pub fn with_issuer(mut self, issuer: Option<String>) -> CustomerTokens {
        self.issuer = issuer;
        self
    }

    /// Tokens must then carry this `aud` (alone or in a list).
    pub fn with_audience(mut self, audience: Option<String>) -> CustomerTokens {
        self.audience = audience;
        self
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Checks the signature, the algorithm, `exp`/`nbf` against `now` (creditd's clock, so
    /// tests can move it) and the configured `iss`/`aud`. The error says why, for the 401.
    pub fn verify(&self, token: &str, now: i64) -> Result<CustomerClaims, String> {
        let mut validation = Validation::new(self.algorithm);
        // Time is checked below against creditd's clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // `exp` and `sub` are checked below, with messages of our own.
        let mut required = Vec::new();
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("the token is malformed ({e})"))?;
        if header.alg != self.algorithm {
            return Err(format!(
                "the token is signed with {:?}; creditd accepts only {:?}",
                header.alg, self.algorithm
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &validation).map_err(|e| describe(&e))?;
        let claims = data.claims;
        let exp = claims
            .exp
            .ok_or("the token has no `exp` claim: customer tokens must expire")?;
        let sub = claims.sub.ok_or("the token has no `sub` claim (the customer id)")?;
        if exp + LEEWAY_SECONDS <= now {
            return Err("the token has expired".into());
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
            return Err("the token is not valid yet (nbf)".into());
        }
        creditd_domain::validate::customer_id(&sub).map_err(|m| format!("the token's sub {m}"))?;
        Ok(CustomerClaims {
            customer: sub,
            expires_at: exp,
        })
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not the one creditd accepts".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim ({claim} is required)"),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not the configured one".into(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not the configured one".into(),
        ErrorKind::Json(_) => "the token's claims are not what creditd expects (sub: string, exp: integer)".into(),
        _ => format!("the token is malformed ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn accepts_a_good_token_and_says_why_others_fail() {
        let tokens = CustomerTokens::hs256(SECRET).unwrap();
        let good = sign(json!({"sub": "u1", "exp": 1000}), SECRET);
        assert_eq!(tokens.verify(&good, 900).unwrap().customer, "u1");
        assert!(tokens
            .verify(&good, 1000 + LEEWAY_SECONDS)
            .unwrap_err()
            .contains("expired"));
        let no_exp = sign(json!({"sub": "u1"}), SECRET);
        assert!(tokens.verify(&no_exp, 900).unwrap_err().contains("`exp`"));
        let no_sub = sign(json!({"exp": 1000}), SECRET);
        assert!(tokens.verify(&no_sub, 900).unwrap_err().contains("`sub`"));
        let float_exp = sign(json!({"sub": "u1", "exp": "soon"}), SECRET);
        assert!(tokens.verify(&float_exp, 900).unwrap_err().contains("claims"));
        let wrong = sign(json!({"sub": "u1", "exp": 1000}), b"another-secret-another-secret-xx");
        assert!(tokens.verify(&wrong, 900).unwrap_err().contains("signature"));
        let early = sign(json!({"sub": "u1", "exp": 5000, "nbf": 2000}), SECRET);
        assert!(tokens.verify(&early, 900).unwrap_err().contains("nbf"));
        let bad_sub = sign(json!({"sub": "a b", "exp": 1000}), SECRET);
        assert!(tokens.verify(&bad_sub, 900).unwrap_err().contains("sub"));
        assert!(tokens.verify("not.a.jwt", 900).unwrap_err().contains("malformed"));
    }

    #[test]
    fn short_secrets_and_non_keys_are_refused() {
        assert!(CustomerTokens::hs256(b"short").is_err());
        assert!(
            CustomerTokens::public_key_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let tokens = CustomerTokens::hs256(SECRET)
            .unwrap()
            .with_issuer(Some("https://app.example".into()))
            .with_audience(Some("creditd".into()));
        let good = sign(
            json!({"sub": "u1", "exp": 1000, "iss": "https://app.example", "aud": ["x", "creditd"]}),
            SECRET,
        );
        assert!(tokens.verify(&good, 900).is_ok());
        let other_iss = sign(
            json!({"sub": "u1", "exp": 1000, "iss": "evil", "aud": "creditd"}),
            SECRET,
        );
        assert!(tokens.verify(&other_iss, 900).unwrap_err().contains("iss"));
        let no_aud = sign(json!({"sub": "u1", "exp": 1000, "iss": "https://app.example"}), SECRET);
        assert!(tokens.verify(&no_aud, 900).unwrap_err().contains("aud"));
        let no_iss = sign(json!({"sub": "u1", "exp": 1000, "aud": "creditd"}), SECRET);
        assert!(tokens.verify(&no_iss, 900).unwrap_err().contains("iss"));
        // Without a configured audience, a token that carries one is still accepted.
        let plain = CustomerTokens::hs256(SECRET).unwrap();
        assert!(plain.verify(&other_iss, 900).is_ok());
    }
}
