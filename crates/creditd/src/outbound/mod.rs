//! Outbound events to the app: the delivery worker every replica runs, and Standard Webhooks
//! signing. Events come from the transactional outbox (written by the store with each change);
//! this module only moves them to the app's endpoints.

pub mod sign;

use std::sync::Arc;
use std::time::{Duration, Instant};

use creditd_domain::outbound::{next_attempt_ms, retry_delay_ms, EventType, GIVE_UP_AFTER_MS};
use creditd_store::{AfterAttempt, Attempt, ClaimedDelivery, Store};
use tokio::sync::Semaphore;

/// How the worker delivers.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// How often each replica looks for new events and due retries.
    pub poll: Duration,
    /// One attempt's limit, connect to last byte.
    pub timeout: Duration,
    /// Deliveries in flight per replica: a slow endpoint holds only its own.
    pub concurrency: usize,
    /// Delays after the 1st, 2nd… failed attempt (the last repeats); empty: the standard
    /// schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h…).
    pub retry_schedule_ms: Vec<i64>,
    /// Retried for this long after the first attempt, then `failed`.
    pub give_up_after_ms: i64,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            poll: Duration::from_millis(1000),
            timeout: Duration::from_secs(15),
            concurrency: 32,
            retry_schedule_ms: Vec::new(),
            give_up_after_ms: GIVE_UP_AFTER_MS,
        }
    }
}

impl DeliveryConfig {
    fn delay_ms(&self, attempts: u32) -> i64 {
        match self.retry_schedule_ms.as_slice() {
            [] => retry_delay_ms(attempts),
            s => s[(attempts.max(1) as usize - 1).min(s.len() - 1)],
        }
    }

    /// A claim lasts for one attempt and its bookkeeping; after that another replica may
    /// take the delivery over.
    fn lease_ms(&self) -> i64 {
        self.timeout.as_millis() as i64 + 30_000
    }
}

/// Wall-clock milliseconds: the delivery schedule and signatures follow real time (a
/// receiver checks `webhook-timestamp` against its own clock), whatever the ledger's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What an endpoint URL looks like (the OpenAPI document states it too): `http://` or
/// `https://`, a host name (its last label starting with a letter) or an IPv4 address, an
/// optional port, then printable ASCII.
pub const URL_PATTERN: &str = concat!(
    r"^https?://(?:(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*",
    r"|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))",
    r"(?::(?:[1-5]?[0-9]{1,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(?:[/?#][!-~]*)?$"
);
pub const MAX_URL_LEN: usize = 2048;

/// An endpoint URL: `http://` or `https://` with a host, as [`URL_PATTERN`] says.
pub fn check_url(url: &str) -> Result<String, String> {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    if url.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    if !PATTERN
        .get_or_init(|| regex::Regex::new(URL_PATTERN).expect("a valid pattern"))
        .is_match(url)
    {
        return Err("must be an http:// or https:// URL with a host name or IPv4 address".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url.to_string())
}

/// An endpoint's event types: known types or `*`, each once.
pub fn check_events(events: Vec<String>) -> Result<Vec<String>, String> {
    if events.is_empty() {
        return Err("must list at least one event type, or \"*\"".into());
    }
    for event in &events {
        if event != "*" && EventType::parse(event).is_none() {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(format!("unknown event type {event:?}; known: *, {}", known.join(", ")));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut unique = events;
    unique.retain(|e| seen.insert(e.clone()));
    Ok(unique)
}

/// Starts the delivery loop of this replica.
pub fn spawn(store: Store, config: DeliveryConfig) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("creditd/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client without custom TLS builds");
    let config = Arc::new(config);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let mut tick = tokio::time::interval(config.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = round(&store, &client, &config, &slots).await {
                tracing::warn!(error = %e, "outbound delivery round failed");
            }
        }
    })
}

/// Dispatches new events, then claims what is due and sends it, each in its own task.
async fn round(
    store: &Store,
    client: &reqwest::Client,
    config: &Arc<DeliveryConfig>,
    slots: &Arc<Semaphore>,
) -> creditd_store::Result<()> {
    while store.dispatch_events(now_ms(), 200).await? == 200 {}
    loop {
        let free = slots.available_permits() as i64;
        if free == 0 {
            return Ok(());
        }
        let claimed = store.claim_deliveries(now_ms(), config.lease_ms(), free).await?;
        let full = claimed.len() as i64 == free;
        for delivery in claimed {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (store, client, config) = (store.clone(), client.clone(), config.clone());
            tokio::spawn(async move {
                deliver(&store, &client, &config, &delivery).await;
                drop(permit);
            });
        }
        if !full {
            return Ok(());
        }
    }
}

/// One attempt, recorded with what follows it.
async fn deliver(store: &Store, client: &reqwest::Client, config: &DeliveryConfig, delivery: &ClaimedDelivery) {
    let attempt = send(client, delivery).await;
    let next = if attempt.succeeded() {
        AfterAttempt::Delivered
    } else {
        let attempts = delivery.attempts as u32 + 1;
        let first = delivery.first_attempt_ms.unwrap_or(attempt.attempted_ms);
        let jitter = u32::from_le_bytes(random_bytes()) % 1001;
        match next_attempt_ms(
            first,
            attempt.attempted_ms,
            config.delay_ms(attempts),
            config.give_up_after_ms,
            jitter,
        ) {
            Some(at) => AfterAttempt::RetryAt(at),
            None => AfterAttempt::Failed,
        }
    };
    let outcome = match next {
        AfterAttempt::Delivered => "delivered",
        AfterAttempt::RetryAt(_) => "retrying",
        AfterAttempt::Failed => "failed",
    };
    metrics::counter!("creditd_outbound_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("creditd_outbound_delivery_duration_seconds").record(attempt.latency_ms as f64 / 1000.0);
    if let Err(e) = store.finish_attempt(delivery, &attempt, next).await {
        // The lease runs out and another round sends it again: at least once.
        tracing::warn!(error = %e, delivery = %delivery.id, "recording a delivery attempt failed");
    }
}

fn random_bytes() -> [u8; 4] {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// The first KiB of a response body kept in the delivery log.
const RESPONSE_KEPT: usize = 1024;

async fn send(client: &reqwest::Client, delivery: &ClaimedDelivery) -> Attempt {
    let attempted_ms = now_ms();
    let timestamp = attempted_ms / 1000;
    let body = sign::body(&delivery.event_type, delivery.event_created, &delivery.data);
    let secrets = delivery.endpoint.signing_secrets(timestamp);
    let signature = sign::signature_header(&secrets, &delivery.event_id, timestamp, &body);
    let started = Instant::now();
    let result = client
        .post(&delivery.endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let (status_code, response, error) = match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut kept = Vec::new();
            let mut error = None;
            while kept.len() < RESPONSE_KEPT {
                match response.chunk().await {
                    Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(format!("reading the response: {e}"));
                        break;
                    }
                }
            }
            kept.truncate(RESPONSE_KEPT);
            (Some(status), Some(String::from_utf8_lossy(&kept).into_owned()), error)
        }
        Err(e) if e.is_timeout() => (None, None, Some("timed out".to_string())),
        Err(e) => (None, None, Some(format!("{e}"))),
    };
    Attempt {
        attempted_ms,
        status_code,
        latency_ms: started.elapsed().as_millis() as i64,
        response,
        error,
    }
}
