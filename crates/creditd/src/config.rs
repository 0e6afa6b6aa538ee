//! Configuration: command-line flags, then environment variables, then an optional TOML file
//! (`--config` / `CREDITD_CONFIG`), then defaults. Validated at start; errors name the key
//! and where it came from.

use std::net::SocketAddr;
use std::path::Path;

use creditd_domain::entitlement::PastDue;
use creditd_domain::rate_limit::Limit;
use creditd_domain::Credits;

use crate::tokens::CustomerTokens;

/// Runtime settings the handlers read.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Granted to every new customer (the free tier).
    pub signup_bonus: Credits,
    /// TTL of a hold created without `ttl_seconds`.
    pub hold_ttl_seconds: i64,
    pub max_hold_ttl_seconds: i64,
    pub max_body_bytes: usize,
    /// How often lapsed grants and holds of idle customers are swept.
    pub sweep_interval_seconds: u64,
    /// How often Stripe's events API is read for missed webhooks (0: never in the background).
    pub reconcile_interval_seconds: u64,
    /// How far back the background reconciliation looks.
    pub reconcile_window_seconds: i64,
    /// Verifies the app's customer tokens (`/v1/me`, `/billing`); `None`: both are off.
    pub customer_tokens: Option<CustomerTokens>,
    /// The billing page warns when available credits are at or below this, and `credits.low`
    /// is sent when they fall below it (for customers without a threshold of their own).
    pub low_balance_threshold: Credits,
    /// Origins allowed to frame the billing page (CSP `frame-ancestors`); `None`: nobody.
    pub billing_frame_ancestors: Option<String>,
    /// Browser origins (exact, e.g. `https://app.example.com`) allowed to call the `/v1/me`
    /// endpoints with a customer token (CORS); empty: none.
    pub cors_allowed_origins: Vec<String>,
    /// How long an operator's dashboard session lasts after logging in.
    pub admin_session_ttl_seconds: i64,
    /// Group commit: most requests applied in one transaction.
    pub write_batch_size: usize,
    /// Group commit: how long a batch waits for more requests after its first.
    pub write_batch_window_us: u64,
    /// Writes waiting beyond this many are refused with 503 `overloaded`.
    pub write_queue_capacity: usize,
    /// How long a verified API key stays in the process's cache (0: ask the database on every
    /// request). A revocation empties every replica's cache within a second, whatever this is.
    pub api_key_cache_seconds: u64,
    /// Requests per second per secret key or customer token, per replica (0: no limit).
    pub rate_limit_per_second: u64,
    /// Requests a credential may make at once before the per-second rate applies.
    pub rate_limit_burst: u64,
    /// Purchases (Checkout Sessions, PaymentIntents) per customer per minute, per replica
    /// (0: no limit).
    pub purchase_rate_limit_per_minute: u64,
    /// `/metrics` wants `Authorization: Bearer <metrics_token>` when set.
    pub metrics_token: Option<String>,
    /// `/metrics` is served on this address instead of the main listener when set.
    pub metrics_listen: Option<SocketAddr>,
    /// How long SIGTERM/SIGINT waits for in-flight requests and queued writes.
    pub shutdown_timeout_seconds: u64,
    /// A Stripe event whose handling failed is tried again after this, doubling up to
    /// [`Settings::webhook_retry_max_ms`].
    pub webhook_retry_base_ms: u64,
    pub webhook_retry_max_ms: u64,
    /// Which plan a `past_due` subscription's customer has: its plan (default) or the free plan.
    pub past_due_plan: PastDue,
    /// Delivery of outbound events to the app's endpoints.
    pub outbound: crate::outbound::DeliveryConfig,
    /// After `rotate-secret`, the old secret keeps signing beside the new one this long.
    pub webhook_secret_overlap_seconds: i64,
    /// How often each replica looks for auto top-ups to pay.
    pub auto_topup_poll: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            signup_bonus: Credits::from_micros(5_000_000),
            hold_ttl_seconds: 300,
            max_hold_ttl_seconds: 86_400,
            max_body_bytes: 64 * 1024,
            sweep_interval_seconds: 30,
            reconcile_interval_seconds: 300,
            reconcile_window_seconds: 3 * 86_400,
            customer_tokens: None,
            low_balance_threshold: Credits::from_micros(10_000_000),
            billing_frame_ancestors: None,
            cors_allowed_origins: Vec::new(),
            admin_session_ttl_seconds: 8 * 3600,
            write_batch_size: 256,
            write_batch_window_us: 0,
            write_queue_capacity: 8192,
            api_key_cache_seconds: 300,
            rate_limit_per_second: 100_000,
            rate_limit_burst: 200_000,
            purchase_rate_limit_per_minute: 10,
            metrics_token: None,
            metrics_listen: None,
            shutdown_timeout_seconds: 20,
            webhook_retry_base_ms: 1_000,
            webhook_retry_max_ms: 3_600_000,
            past_due_plan: PastDue::Plan,
            outbound: crate::outbound::DeliveryConfig::default(),
            webhook_secret_overlap_seconds: 86_400,
            auto_topup_poll: std::time::Duration::from_secs(1),
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://creditd.db";

/// Every key: (file key, environment variable, command-line flag).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("listen", "CREDITD_LISTEN", "--listen"),
    ("database_url", "DATABASE_URL", "--database-url"),
    ("signup_bonus", "CREDITD_SIGNUP_BONUS", "--signup-bonus"),
    ("hold_ttl_seconds", "CREDITD_HOLD_TTL_SECONDS", "--hold-ttl-seconds"),
    (
        "max_hold_ttl_seconds",
        "CREDITD_MAX_HOLD_TTL_SECONDS",
        "--max-hold-ttl-seconds",
    ),
    ("max_body_bytes", "CREDITD_MAX_BODY_BYTES", "--max-body-bytes"),
    (
        "sweep_interval_seconds",
        "CREDITD_SWEEP_INTERVAL_SECONDS",
        "--sweep-interval-seconds",
    ),
    ("write_batch_size", "CREDITD_WRITE_BATCH_SIZE", "--write-batch-size"),
    (
        "write_batch_window_us",
        "CREDITD_WRITE_BATCH_WINDOW_US",
        "--write-batch-window-us",
    ),
    (
        "write_queue_capacity",
        "CREDITD_WRITE_QUEUE_CAPACITY",
        "--write-queue-capacity",
    ),
    (
        "api_key_cache_seconds",
        "CREDITD_API_KEY_CACHE_SECONDS",
        "--api-key-cache-seconds",
    ),
    ("public_url", "CREDITD_PUBLIC_URL", "--public-url"),
    ("rate_limit_per_second", "CREDITD_RATE_LIMIT_PER_SECOND", ""),
    ("rate_limit_burst", "CREDITD_RATE_LIMIT_BURST", ""),
    (
        "purchase_rate_limit_per_minute",
        "CREDITD_PURCHASE_RATE_LIMIT_PER_MINUTE",
        "",
    ),
    ("metrics_token", "CREDITD_METRICS_TOKEN", ""),
    ("metrics_listen", "CREDITD_METRICS_LISTEN", ""),
    ("shutdown_timeout_seconds", "CREDITD_SHUTDOWN_TIMEOUT_SECONDS", ""),
    ("webhook_retry_base_ms", "CREDITD_WEBHOOK_RETRY_BASE_MS", ""),
    ("webhook_retry_max_ms", "CREDITD_WEBHOOK_RETRY_MAX_MS", ""),
    ("reconcile_interval_seconds", "CREDITD_RECONCILE_INTERVAL_SECONDS", ""),
    ("reconcile_window_seconds", "CREDITD_RECONCILE_WINDOW_SECONDS", ""),
    ("admin_session_ttl_seconds", "CREDITD_ADMIN_SESSION_TTL_SECONDS", ""),
    ("stripe_secret_key", "STRIPE_SECRET_KEY", ""),
    ("stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET", ""),
    ("stripe_api_base", "STRIPE_API_BASE", ""),
    ("sandbox_listen", "CREDITD_SANDBOX_LISTEN", "--sandbox-listen"),
    ("sandbox_state", "CREDITD_SANDBOX_STATE", ""),
    ("jwt_hs256_secret", "CREDITD_JWT_HS256_SECRET", ""),
    ("jwt_public_key_file", "CREDITD_JWT_PUBLIC_KEY_FILE", ""),
    ("jwt_issuer", "CREDITD_JWT_ISSUER", ""),
    ("jwt_audience", "CREDITD_JWT_AUDIENCE", ""),
    ("low_balance_threshold", "CREDITD_LOW_BALANCE_THRESHOLD", ""),
    ("billing_frame_ancestors", "CREDITD_BILLING_FRAME_ANCESTORS", ""),
    ("cors_allowed_origins", "CREDITD_CORS_ALLOWED_ORIGINS", ""),
    ("past_due_plan", "CREDITD_PAST_DUE_PLAN", ""),
];

pub const DEFAULT_SANDBOX_LISTEN: &str = "127.0.0.1:12111";
pub const DEFAULT_SANDBOX_STATE: &str = "creditd-sandbox.json";

/// Which Stripe creditd talks to.
#[derive(Clone, Debug)]
pub enum StripeMode {
    /// No `STRIPE_SECRET_KEY`: the built-in sandbox, started beside the API.
    Sandbox {
        listen: SocketAddr,
        state_path: std::path::PathBuf,
        /// Signs the sandbox's deliveries; a random one is made at start when unset.
        webhook_secret: Option<String>,
    },
    /// Real Stripe (or another Stripe-compatible server at `api_base`).
    Stripe {
        secret_key: String,
        api_base: Option<String>,
        /// Several, comma-separated, while a secret is being rolled.
        webhook_secrets: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Where browsers reach creditd (success pages); default `http://{listen}`.
    pub public_url: String,
    pub stripe: StripeMode,
    pub settings: Settings,
}

/// Values given on the command line, by file key.
pub type Flags = Vec<(&'static str, String)>;

/// Where one value came from, for error messages.
struct Source {
    value: String,
    origin: String,
}

struct Resolver {
    flags: Flags,
    file: toml::Table,
    file_name: String,
}

impl Resolver {
    fn get(&self, key: &str) -> Result<Option<Source>, String> {
        let (_, env, flag) = KEYS.iter().find(|(k, _, _)| *k == key).expect("known key");
        if let Some((_, v)) = self.flags.iter().find(|(k, _)| *k == key) {
            return Ok(Some(Source {
                value: v.clone(),
                origin: (*flag).to_string(),
            }));
        }
        if let Ok(v) = std::env::var(env) {
            return Ok(Some(Source {
                value: v,
                origin: format!("environment variable {env}"),
            }));
        }
        let origin = format!("`{key}` in {}", self.file_name);
        match self.file.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(Source {
                value: s.clone(),
                origin,
            })),
            Some(toml::Value::Integer(i)) => Ok(Some(Source {
                value: i.to_string(),
                origin,
            })),
            Some(other) => Err(format!(
                "{origin}: expected a string or an integer, found {}",
                other.type_str()
            )),
        }
    }

    fn parse<T>(&self, key: &str, default: T, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, String> {
        match self.get(key)? {
            None => Ok(default),
            // Secrets are never echoed back, not even in an error.
            Some(s) if key.contains("secret") || key.contains("token") => {
                parse(s.value.trim()).map_err(|e| format!("invalid {}: {e}", s.origin))
            }
            Some(s) => parse(s.value.trim()).map_err(|e| format!("invalid {}: {:?} {e}", s.origin, s.value)),
        }
    }
}

fn int_in<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    lo: T,
    hi: T,
) -> impl Fn(&str) -> Result<T, String> {
    move |s| match s.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(format!("must be a whole number from {lo} to {hi}")),
    }
}

/// `'self'` and http(s) origins, space-separated: the CSP `frame-ancestors` of the billing page.
fn frame_ancestors(s: &str) -> Result<Option<String>, String> {
    let sources: Vec<&str> = s.split_whitespace().collect();
    let valid = |src: &&str| {
        *src == "'self'"
            || ((src.starts_with("https://") || src.starts_with("http://"))
                && src
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"')))
    };
    if sources.is_empty() || !sources.iter().all(valid) {
        return Err("must be 'self' and/or origins such as https://app.example.com, separated by spaces".into());
    }
    Ok(Some(sources.join(" ")))
}

/// Exact origins, separated by commas or spaces: `scheme://host[:port]`, nothing after it.
fn cors_origins(s: &str) -> Result<Vec<String>, String> {
    let origins: Vec<String> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    let valid = |o: &String| {
        let Some((scheme, host)) = o.split_once("://") else {
            return false;
        };
        matches!(scheme, "http" | "https")
            && !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    if let Some(bad) = origins.iter().find(|o| !valid(o)) {
        return Err(format!(
            "{bad:?} is not an origin: give exact origins such as https://app.example.com \
             (scheme, host and port only), separated by commas"
        ));
    }
    Ok(origins)
}

impl Settings {
    /// The per-credential and per-customer purchase limits (`None`: off).
    pub fn rate_limits(&self) -> (Option<Limit>, Option<Limit>) {
        let credentials = (self.rate_limit_per_second > 0)
            .then(|| Limit::per_second(self.rate_limit_per_second, self.rate_limit_burst));
        let purchases =
            (self.purchase_rate_limit_per_minute > 0).then(|| Limit::per_minute(self.purchase_rate_limit_per_minute));
        (credentials, purchases)
    }

    pub fn writer(&self) -> creditd_store::WriterConfig {
        creditd_store::WriterConfig {
            max_batch: self.write_batch_size,
            window: std::time::Duration::from_micros(self.write_batch_window_us),
            queue_capacity: self.write_queue_capacity,
            ..creditd_store::WriterConfig::default()
        }
    }
}

impl Config {
    /// Resolves every key; `file` is the TOML file named by `--config`/`CREDITD_CONFIG`.
    pub fn load(flags: Flags, file: Option<&Path>) -> Result<Config, String> {
        let file_path = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CREDITD_CONFIG").map(Into::into));
        let (file, file_name) = match &file_path {
            None => (toml::Table::new(), "the configuration file".to_string()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
                let table: toml::Table = text
                    .parse()
                    .map_err(|e| format!("configuration file {} is not valid TOML: {e}", path.display()))?;
                if let Some(unknown) = table.keys().find(|k| !KEYS.iter().any(|(key, _, _)| key == k)) {
                    let known: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
                    return Err(format!(
                        "unknown key `{unknown}` in {}; known keys: {}",
                        path.display(),
                        known.join(", ")
                    ));
                }
                (table, path.display().to_string())
            }
        };
        let r = Resolver { flags, file, file_name };
        let defaults = Settings::default();
        let listen = r.parse("listen", DEFAULT_LISTEN.parse().expect("default address"), |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| "must be an address such as 127.0.0.1:8080".into())
        })?;
        let database_url = r.parse("database_url", DEFAULT_DATABASE_URL.to_string(), |s| {
            creditd_store::dialect_of(s)
                .map(|_| s.to_string())
                .map_err(|_| "must start with sqlite: or postgres://".into())
        })?;
        let settings = Settings {
            signup_bonus: r.parse("signup_bonus", defaults.signup_bonus, |s| {
                Credits::parse(s)
                    .and_then(Credits::non_negative)
                    .map_err(|e| format!("{e}"))
            })?,
            hold_ttl_seconds: r.parse("hold_ttl_seconds", defaults.hold_ttl_seconds, int_in(1, 7 * 86_400))?,
            max_hold_ttl_seconds: r.parse(
                "max_hold_ttl_seconds",
                defaults.max_hold_ttl_seconds,
                int_in(1, 30 * 86_400),
            )?,
            max_body_bytes: r.parse(
                "max_body_bytes",
                defaults.max_body_bytes,
                int_in(1024, 16 * 1024 * 1024),
            )?,
            sweep_interval_seconds: r.parse(
                "sweep_interval_seconds",
                defaults.sweep_interval_seconds,
                int_in(1, 86_400),
            )?,
            reconcile_interval_seconds: r.parse(
                "reconcile_interval_seconds",
                defaults.reconcile_interval_seconds,
                int_in(0, 86_400),
            )?,
            reconcile_window_seconds: r.parse(
                "reconcile_window_seconds",
                defaults.reconcile_window_seconds,
                int_in(60, 30 * 86_400),
            )?,
            customer_tokens: Config::customer_tokens(&r)?,
            low_balance_threshold: r.parse("low_balance_threshold", defaults.low_balance_threshold, |s| {
                Credits::parse(s)
                    .and_then(Credits::non_negative)
                    .map_err(|e| format!("{e}"))
            })?,
            billing_frame_ancestors: r.parse("billing_frame_ancestors", None, frame_ancestors)?,
            cors_allowed_origins: r.parse("cors_allowed_origins", Vec::new(), cors_origins)?,
            admin_session_ttl_seconds: r.parse(
                "admin_session_ttl_seconds",
                defaults.admin_session_ttl_seconds,
                int_in(60, 30 * 86_400),
            )?,
            write_batch_size: r.parse("write_batch_size", defaults.write_batch_size, int_in(1, 4096))?,
            write_batch_window_us: r.parse(
                "write_batch_window_us",
                defaults.write_batch_window_us,
                int_in(0, 100_000),
            )?,
            write_queue_capacity: r.parse(
                "write_queue_capacity",
                defaults.write_queue_capacity,
                int_in(1, 1_000_000),
            )?,
            api_key_cache_seconds: r.parse("api_key_cache_seconds", defaults.api_key_cache_seconds, int_in(0, 3600))?,
            rate_limit_per_second: r.parse(
                "rate_limit_per_second",
                defaults.rate_limit_per_second,
                int_in(0, 10_000_000),
            )?,
            rate_limit_burst: r.parse("rate_limit_burst", defaults.rate_limit_burst, int_in(1, 100_000_000))?,
            purchase_rate_limit_per_minute: r.parse(
                "purchase_rate_limit_per_minute",
                defaults.purchase_rate_limit_per_minute,
                int_in(0, 100_000),
            )?,
            metrics_token: r.parse("metrics_token", None, |s| {
                if s.len() < 16 || s.len() > 200 {
                    Err("must be 16 to 200 characters".to_string())
                } else {
                    Ok(Some(s.to_string()))
                }
            })?,
            metrics_listen: r.parse("metrics_listen", None, |s| {
                s.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| "must be an address such as 127.0.0.1:9090".into())
            })?,
            shutdown_timeout_seconds: r.parse(
                "shutdown_timeout_seconds",
                defaults.shutdown_timeout_seconds,
                int_in(1, 3600),
            )?,
            webhook_retry_base_ms: r.parse(
                "webhook_retry_base_ms",
                defaults.webhook_retry_base_ms,
                int_in(1, 3_600_000),
            )?,
            webhook_retry_max_ms: r.parse(
                "webhook_retry_max_ms",
                defaults.webhook_retry_max_ms,
                int_in(1, 86_400_000),
            )?,
            past_due_plan: r.parse("past_due_plan", defaults.past_due_plan, |s| match s {
                "plan" => Ok(PastDue::Plan),
                "free" => Ok(PastDue::Free),
                _ => Err("must be plan or free".into()),
            })?,
            outbound: defaults.outbound.clone(),
            webhook_secret_overlap_seconds: defaults.webhook_secret_overlap_seconds,
            auto_topup_poll: defaults.auto_topup_poll,
        };
        if settings.hold_ttl_seconds > settings.max_hold_ttl_seconds {
            return Err("hold_ttl_seconds must not exceed max_hold_ttl_seconds".into());
        }
        let public_url = r.parse("public_url", format!("http://{listen}"), |s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                Ok(s.trim_end_matches('/').to_string())
            } else {
                Err("must be an http:// or https:// URL".into())
            }
        })?;
        let stripe = Config::stripe_mode(&r)?;
        Ok(Config {
            listen,
            database_url,
            public_url,
            stripe,
            settings,
        })
    }

    /// One way to verify customer tokens: a shared secret or a public key, never both (a
    /// token could then pick the weaker check).
    fn customer_tokens(r: &Resolver) -> Result<Option<CustomerTokens>, String> {
        let secret = r.parse("jwt_hs256_secret", None, |s| {
            CustomerTokens::hs256(s.as_bytes()).map(Some)
        })?;
        let public = r.parse("jwt_public_key_file", None, |s| {
            let pem = std::fs::read(s).map_err(|e| format!("cannot read the file: {e}"))?;
            CustomerTokens::public_key_pem(&pem).map(Some)
        })?;
        let non_empty = |s: &str| {
            if s.is_empty() || s.len() > 1000 {
                Err("must be 1 to 1000 characters".to_string())
            } else {
                Ok(Some(s.to_string()))
            }
        };
        let issuer = r.parse("jwt_issuer", None, non_empty)?;
        let audience = r.parse("jwt_audience", None, non_empty)?;
        let tokens = match (secret, public) {
            (Some(_), Some(_)) => {
                return Err("set jwt_hs256_secret or jwt_public_key_file, not both: \
                            customer tokens are verified one way only"
                    .into())
            }
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) if issuer.is_some() || audience.is_some() => {
                return Err("jwt_issuer and jwt_audience need jwt_hs256_secret or jwt_public_key_file".into())
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(tokens.with_issuer(issuer).with_audience(audience)))
    }

    fn stripe_mode(r: &Resolver) -> Result<StripeMode, String> {
        let webhook_secrets = r.parse("stripe_webhook_secret", Vec::new(), |s| {
            let secrets: Vec<String> = s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            if secrets.iter().all(|p| p.starts_with("whsec_")) {
                Ok(secrets)
            } else {
                Err("must be one or more comma-separated secrets starting with whsec_".into())
            }
        })?;
        let secret_key = r.parse("stripe_secret_key", None, |s| {
            if s.starts_with("sk_") || s.starts_with("rk_") {
                Ok(Some(s.to_string()))
            } else {
                Err("must be a Stripe secret key (sk_… or rk_…)".into())
            }
        })?;
        let api_base = r.parse("stripe_api_base", None, |s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                Ok(Some(s.to_string()))
            } else {
                Err("must be an http:// or https:// URL".into())
            }
        })?;
        match secret_key {
            Some(secret_key) => {
                if webhook_secrets.is_empty() {
                    return Err(
                        "STRIPE_WEBHOOK_SECRET (stripe_webhook_secret) is required with STRIPE_SECRET_KEY: \
                                webhooks cannot be verified without it"
                            .into(),
                    );
                }
                Ok(StripeMode::Stripe {
                    secret_key,
                    api_base,
                    webhook_secrets,
                })
            }
            None => Ok(StripeMode::Sandbox {
                listen: r.parse(
                    "sandbox_listen",
                    DEFAULT_SANDBOX_LISTEN.parse().expect("default address"),
                    |s| {
                        s.parse::<SocketAddr>()
                            .map_err(|_| "must be an address such as 127.0.0.1:12111".into())
                    },
                )?,
                state_path: r.parse("sandbox_state", DEFAULT_SANDBOX_STATE.into(), |s| Ok(s.into()))?,
                webhook_secret: webhook_secrets.into_iter().next(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cors_origins;

    #[test]
    fn cors_origins_are_exact_origins_separated_by_commas_or_spaces() {
        let origins = cors_origins("https://app.example.com, http://localhost:3000 http://[::1]:5173").unwrap();
        assert_eq!(
            origins,
            ["https://app.example.com", "http://localhost:3000", "http://[::1]:5173"]
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "*",
            "ftp://x",
            "https://",
        ] {
            let error = cors_origins(bad).unwrap_err();
            assert!(error.contains("is not an origin"), "{bad}: {error}");
        }
    }
}
