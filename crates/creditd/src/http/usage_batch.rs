//! `POST /v1/usage/batch`: up to 1,000 usage records in one request, for gateways that
//! aggregate. Every record is queued to the writer before any is awaited, so they commit
//! together in as few batches as the writer makes; each is answered on its own, in order.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use creditd_domain::command::NewUsage;
use creditd_domain::views::Usage;
use creditd_domain::{validate, Command, Credits, Idempotency, Outcome, Request};
use creditd_store::{Pending, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::catalog::priced_amount;
use crate::http::doc::{CustomerId, FeatureId, Metadata, PositiveCredits};
use crate::http::error::{ApiError, ErrorBody, ErrorDetail};
use crate::http::extract::{deserialize, fingerprint, integral_numbers, ApiJson, IdempotencyKey, SecretKey};

/// Most records in one request.
pub const MAX_RECORDS: usize = 1000;
/// This route's body limit (when above `max_body_bytes`): 1,000 records with some metadata.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// One usage record: the body of `POST /v1/usage` (an `amount`, or `units` of a priced
/// feature), plus its own idempotency key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = Option<PositiveCredits>)]
    pub amount: Option<Credits>,
    /// Quantities of the feature's units, priced on its rate card (instead of `amount`).
    pub units: Option<BTreeMap<String, i64>>,
    /// What the credits paid for, e.g. `chat` or `image:gen`.
    #[schema(value_type = FeatureId)]
    pub feature: String,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
    /// A budget of the customer's this record counts against, as on `POST /v1/usage`.
    #[schema(value_type = Option<CustomerId>)]
    pub budget: Option<String>,
    /// Makes this record exactly-once, like `POST /v1/usage`'s `Idempotency-Key` header (the
    /// two share one key space: the same key and record replay each other). Without it, and
    /// with the request's `Idempotency-Key: K`, the record's key is `K/<index>` (from 0).
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
}

/// Usage records, applied in order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatchIn {
    /// 1 to 1,000 records, each a `UsageRecordIn`. An item that is not one (a missing or
    /// invalid field, or not an object) is refused alone: its result is a 400 naming
    /// `records[i].field`, and the other records are applied.
    #[schema(value_type = Vec<UsageRecordIn>, min_items = 1, max_items = 1000)]
    pub records: Vec<serde_json::Value>,
}

/// One result per record, in the records' order.
#[derive(Serialize, ToSchema)]
pub struct UsageBatchOut {
    pub data: Vec<RecordResult>,
}

/// What `POST /v1/usage` would have answered for this record: `status` 200 with `usage`, or
/// the error's status (400, 402, 404, 409, 503) with `error`. A refused record deducts
/// nothing and refuses nothing else.
#[derive(Serialize, ToSchema)]
pub struct RecordResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl RecordResult {
    fn from_outcome(outcome: Result<Outcome, ApiError>) -> RecordResult {
        let error = match outcome {
            Ok(Outcome::Usage(usage)) => {
                return RecordResult {
                    status: 200,
                    usage: Some(usage),
                    error: None,
                }
            }
            Ok(other) => ApiError::internal(format!("unexpected outcome {other:?}")),
            Err(e) => e,
        };
        RecordResult {
            status: error.status.as_u16(),
            usage: None,
            error: Some(error.body().error),
        }
    }
}

/// Record many usages at once: each record as `POST /v1/usage` would (exactly once per
/// idempotency key; 402 when credits do not cover it), answered per record in order. The
/// request itself fails only when it cannot be read or holds no or too many records.
#[utoipa::path(post, path = "/v1/usage/batch", request_body = UsageBatchIn, tag = "spending",
    responses((status = 200, body = UsageBatchOut, description = "one result per record; see `status` in each"),
              (status = 400, body = ErrorBody, description = "unreadable body, or not 1 to 1,000 records"),
              (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn record_usage_batch(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<UsageBatchIn>,
) -> Result<Json<UsageBatchOut>, ApiError> {
    let records = body.value.records;
    if records.is_empty() || records.len() > MAX_RECORDS {
        let message = format!("must hold 1 to {MAX_RECORDS} records, not {}", records.len());
        return Err(ApiError::invalid("records", message));
    }
    let mut requests = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        let request = match record_request(i, record, idem.0.as_deref()) {
            Ok(parsed) => priced(&state, i, parsed).await,
            Err(e) => Err(e),
        };
        requests.push(request);
    }
    let outcomes = submit_all(&state, requests).await;
    let data = outcomes.into_iter().map(RecordResult::from_outcome).collect();
    Ok(Json(UsageBatchOut { data }))
}

/// A record read, its amount not decided yet: what it gave as `amount` or `units`.
type Unpriced = (Request, Option<Credits>, Option<BTreeMap<String, i64>>);

/// Record `index` as a usage request (its amount decided by [`priced`]), or the 400 naming
/// its bad field (`records[i].feature`).
fn record_request(index: usize, mut json: serde_json::Value, header_key: Option<&str>) -> Result<Unpriced, ApiError> {
    let prefix = format!("records[{index}]");
    let field = |name: &str| format!("{prefix}.{name}");
    // As `POST /v1/usage` reads its body: an object (serde would take an array for a struct),
    // with integral floats as integers.
    if !json.is_object() {
        return Err(ApiError::invalid(&prefix, "must be a JSON object"));
    }
    integral_numbers(&mut json);
    let record: UsageRecordIn = deserialize(&json, &prefix)?;
    validate::feature(&record.feature).map_err(|m| ApiError::invalid(&field("feature"), m))?;
    if let Some(budget) = &record.budget {
        validate::customer_id(budget).map_err(|m| ApiError::invalid(&field("budget"), m))?;
    }
    let metadata = record.metadata.unwrap_or_else(|| serde_json::json!({}));
    validate::metadata(&metadata).map_err(|m| ApiError::invalid(&field("metadata"), m))?;
    let key = match (record.idempotency_key, header_key) {
        (Some(key), _) => {
            validate::idempotency_key(&key).map_err(|m| ApiError::invalid(&field("idempotency_key"), m))?;
            Some(key)
        }
        (None, Some(header)) => Some(format!("{header}/{index}")),
        (None, None) => None,
    };
    let idempotency = key.map(|key| {
        // Fingerprinted as the same record sent alone to `POST /v1/usage` would be.
        if let Some(object) = json.as_object_mut() {
            object.remove("idempotency_key");
        }
        Idempotency {
            scope: "app".into(),
            key,
            fingerprint: fingerprint("POST /v1/usage", &json),
        }
    });
    let command = Command::Usage(NewUsage {
        customer: record.customer,
        amount: Credits::ZERO,
        feature: record.feature,
        metadata,
        priced: None,
        budget: record.budget,
    });
    Ok((Request { command, idempotency }, record.amount, record.units))
}

/// The request with its amount, decided as `POST /v1/usage` decides it (a positive `amount`,
/// or `units` priced on the feature's rate card); a refusal names the record's field
/// (`records[i].units.input_tokens`).
async fn priced(state: &AppState, index: usize, (mut request, amount, units): Unpriced) -> Result<Request, ApiError> {
    let Command::Usage(usage) = &mut request.command else {
        return Ok(request);
    };
    let in_record = |e: ApiError| ApiError {
        param: e.param.as_ref().map(|p| format!("records[{index}].{p}")),
        ..e
    };
    let (amount, priced) = priced_amount(state, Some(&usage.feature), amount, units.as_ref(), true)
        .await
        .map_err(in_record)?;
    usage.amount =
        amount.ok_or_else(|| ApiError::invalid(&format!("records[{index}].amount"), "is required (or units)"))?;
    usage.priced = priced;
    Ok(request)
}

/// Queues every request before awaiting any, so they share the writer's batches. When the
/// writer's queue is full, what is already queued is awaited and the rest queued after it.
async fn submit_all(state: &AppState, requests: Vec<Result<Request, ApiError>>) -> Vec<Result<Outcome, ApiError>> {
    let now = state.clock.now();
    let mut results: Vec<Option<Result<Outcome, ApiError>>> = Vec::with_capacity(requests.len());
    let mut pending: Vec<(usize, Pending)> = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        results.push(None);
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                results[index] = Some(Err(e));
                continue;
            }
        };
        loop {
            match state.writer.enqueue(request.clone(), now) {
                Ok(queued) => pending.push((index, queued)),
                Err(StoreError::Overloaded) if !pending.is_empty() => {
                    settle(&mut pending, &mut results).await;
                    continue;
                }
                Err(e) => results[index] = Some(Err(e.into())),
            }
            break;
        }
    }
    settle(&mut pending, &mut results).await;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ApiError::internal("a batch record was never answered"))))
        .collect()
}

async fn settle(pending: &mut Vec<(usize, Pending)>, results: &mut [Option<Result<Outcome, ApiError>>]) {
    for (index, queued) in pending.drain(..) {
        results[index] = Some(queued.result().await.map_err(ApiError::from));
    }
}

#[cfg(test)]
mod tests {
    use super::record_request;

    #[test]
    fn a_record_without_its_own_key_derives_one_from_the_header() {
        let record = serde_json::json!({"customer": "u", "amount": "1", "feature": "chat"});
        let (derived, _, _) = record_request(3, record.clone(), Some("req-9")).unwrap();
        assert_eq!(derived.idempotency.unwrap().key, "req-9/3");
        assert!(record_request(3, record, None).unwrap().0.idempotency.is_none());
    }

    #[test]
    fn a_record_is_fingerprinted_as_the_same_usage_sent_alone() {
        let alone = serde_json::json!({"customer": "u", "amount": "1", "feature": "chat"});
        let record = serde_json::json!({"customer": "u", "amount": "1", "feature": "chat", "idempotency_key": "k"});
        let idem = record_request(0, record, None).unwrap().0.idempotency.unwrap();
        assert_eq!(idem.key, "k");
        assert_eq!(idem.fingerprint, super::fingerprint("POST /v1/usage", &alone));
    }

    /// Its amount (`0`, both amount and units, neither) is decided as `POST /v1/usage`
    /// decides it, against the catalog: `usage_batch::refusals_refuse_only_their_own_record`
    /// and `records_may_give_units_of_a_priced_feature` in the API tests.
    #[test]
    fn a_bad_record_names_its_index_and_field() {
        for (record, param) in [
            (
                serde_json::json!({"customer": "u", "amount": "1"}),
                "records[2].feature",
            ),
            (
                serde_json::json!({"customer": "u", "amount": "x", "feature": "f"}),
                "records[2].amount",
            ),
            (
                serde_json::json!({"customer": "u", "amount": "1", "feature": "f", "extra": 1}),
                "records[2].extra",
            ),
            (serde_json::json!(7), "records[2]"),
            (serde_json::json!(["u", "1", "chat"]), "records[2]"),
            (
                serde_json::json!({"customer": "u", "amount": "1", "feature": "f", "budget": "a b"}),
                "records[2].budget",
            ),
        ] {
            let error = record_request(2, record, None).unwrap_err();
            assert_eq!((error.status.as_u16(), error.param.as_deref()), (400, Some(param)));
        }
    }
}
