//! The benchmark's HTTP client: setup calls through reqwest, debits (one at a time or in
//! batches) through the lean [`Wire`] client when the server is plain `http://host:port`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::load::{drive, Done, Limit, Run};
use super::wire::Wire;

/// Records per `POST /v1/usage/batch` in the `http-batch` design.
pub const BATCH: usize = 100;

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
    /// The debits' own lean client, when `base` is plain `http://host:port`.
    pub wire: Option<Wire>,
    /// Makes this run's idempotency keys unique in a database that outlives it (`--target`).
    pub run: Arc<str>,
}

/// Only what the load generator reads of a batch's answer.
#[derive(Deserialize)]
struct BatchAnswer {
    data: Vec<RecordStatus>,
}

#[derive(Deserialize)]
struct RecordStatus {
    status: u16,
}

impl Http {
    pub fn new(client: reqwest::Client, base: String, key: String) -> Http {
        Http {
            client,
            base,
            key,
            wire: None,
            run: creditd_domain::ids::random_token(8).into(),
        }
    }

    /// Readers polling one customer's balance for `duration`, each request timed.
    pub fn spawn_readers(&self, customer: String, readers: usize, duration: Duration) -> tokio::task::JoinHandle<Run> {
        let http = self.clone();
        tokio::spawn(async move {
            let limit = Limit {
                duration,
                requests: u64::MAX,
            };
            let customer = Arc::new(customer);
            drive(readers, 1, limit, move |_, _, _| {
                let (http, customer) = (http.clone(), customer.clone());
                async move {
                    let response = http
                        .client
                        .get(format!("{}/v1/customers/{customer}", http.base))
                        .bearer_auth(&http.key)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let ok = response.status().is_success();
                    response.bytes().await.map_err(|e| e.to_string())?;
                    if ok {
                        Ok(Done::Debited(0))
                    } else {
                        Err("read failed".to_string())
                    }
                }
            })
            .await
        })
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        answer("POST", path, response).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        answer("GET", path, response).await
    }

    /// The same client with one lean connection per load-generating client.
    pub fn for_clients(mut self, clients: usize) -> Http {
        self.wire = Wire::new(&self.base, &self.key, clients);
        self
    }

    /// `POST path` with an idempotency key on client `client`'s connection: status and body.
    async fn send(&self, client: usize, path: &str, key: &str, body: String) -> Result<(u16, Vec<u8>), String> {
        if let Some(wire) = &self.wire {
            return wire.post(client, path, key, &body).await;
        }
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    }

    /// One debit of 0.001 credits; `key` is unique to the request within the run.
    pub async fn debit(&self, client: usize, customer: &str, index: usize, key: &str) -> Result<Done, String> {
        let body = format!(r#"{{"customer":"{customer}","amount":"0.001","feature":"bench"}}"#);
        let key = format!("bench-{}-{key}", self.run);
        match self.send(client, "/v1/usage", &key, body).await?.0 {
            200 => Ok(Done::Debited(index)),
            402 => Ok(Done::Refused),
            other => Err(format!("HTTP {other}")),
        }
    }

    /// A batch of debits of 0.001 credits, record `j` for `customers[indexes[j]]`; each
    /// record's key is derived from `key`.
    pub async fn debit_batch(
        &self,
        client: usize,
        customers: &[String],
        indexes: Vec<usize>,
        key: &str,
    ) -> Result<Done, String> {
        let mut body = String::with_capacity(indexes.len() * 64 + 16);
        body.push_str(r#"{"records":["#);
        for (j, &c) in indexes.iter().enumerate() {
            if j > 0 {
                body.push(',');
            }
            body.push_str(r#"{"customer":""#);
            body.push_str(&customers[c]);
            body.push_str(r#"","amount":"0.001","feature":"bench"}"#);
        }
        body.push_str("]}");
        let key = format!("bench-{}-{key}", self.run);
        let (status, answer) = self.send(client, "/v1/usage/batch", &key, body).await?;
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        let answer: BatchAnswer = serde_json::from_slice(&answer).map_err(|e| format!("batch answer: {e}"))?;
        if answer.data.len() != indexes.len() {
            return Err(format!("{} results for {} records", answer.data.len(), indexes.len()));
        }
        let (mut debited, mut refused) = (Vec::with_capacity(indexes.len()), 0);
        for (record, c) in answer.data.iter().zip(indexes) {
            match record.status {
                200 => debited.push(c),
                402 => refused += 1,
                other => return Err(format!("a batch record answered {other}")),
            }
        }
        Ok(Done::Records { debited, refused })
    }
}

/// Drives `clients` clients of an HTTP design (`http`, `http-batch`, `http-1-client`) over
/// `customers` until `limit`. Every idempotency key names the workload, design, client and
/// request.
pub async fn drive_debits(
    http: Arc<Http>,
    design: &'static str,
    clients: usize,
    customers: Arc<Vec<String>>,
    limit: Limit,
    workload: &'static str,
) -> Run {
    let count = customers.len();
    if design == "http-batch" {
        return drive(clients, count, limit, move |client, n, _| {
            let (http, customers) = (http.clone(), customers.clone());
            // Consecutive records go to consecutive customers, spread like single debits.
            let first = (client + n as usize * clients) * BATCH;
            let indexes = (first..first + BATCH).map(|i| i % count).collect();
            async move {
                let key = format!("{workload}-{design}-{client}-{n}");
                http.debit_batch(client, &customers, indexes, &key).await
            }
        })
        .await;
    }
    drive(clients, count, limit, move |client, n, c| {
        let (http, customers) = (http.clone(), customers.clone());
        async move {
            let key = format!("{workload}-{design}-{client}-{n}");
            http.debit(client, &customers[c], c, &key).await
        }
    })
    .await
}

/// A 2xx response's JSON body, or an error naming the request and what came back.
async fn answer(method: &str, path: &str, response: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "{method} {path}: HTTP {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}
