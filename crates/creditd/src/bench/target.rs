//! `creditd bench --target URL`: the HTTP designs against a creditd that is already running
//! (a staging deployment, another machine). Its customers are made through the API with a
//! grant large enough for any run; exactness is read back through the API: each customer's
//! balance after the run is its balance before less exactly its successful debits. The naive
//! baseline and `verify` need the database itself and run only in the self-contained mode.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use creditd_domain::Credits;

use super::http::{drive_debits, Http};
use super::load::Limit;
use super::{clients_of, BenchArgs, Row, DEBIT_MICROS};

/// The designs a running creditd can be driven with (the others need its database).
const HTTP_DESIGNS: [&str; 3] = ["http", "http-batch", "http-1-client"];

/// Credits granted to each customer the run makes.
const GRANT: &str = "1000000";

pub async fn run(args: &BenchArgs, target: &str, key: String) -> anyhow::Result<Vec<Row>> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let http = Http::new(client, target.trim_end_matches('/').to_string(), key);
    let limit = Limit {
        duration: Duration::from_secs(args.seconds),
        requests: args.requests,
    };
    let run_id = creditd_domain::ids::random_token(8).to_lowercase();
    let mut rows = Vec::new();
    for (workload, count) in [("hot", 1), ("spread", args.customers)] {
        if !args.workloads.iter().any(|w| w == workload) {
            continue;
        }
        for &design in HTTP_DESIGNS.iter().filter(|d| args.designs.iter().any(|a| a == *d)) {
            let prefix = format!("bench_{run_id}_{workload}_{}", design.replace('-', "_"));
            let customers = Arc::new(make_customers(&http, &prefix, count).await?);
            let before = balances(&http, &customers).await?;
            let readers = (workload == "hot" && design == "http")
                .then(|| http.spawn_readers(customers[0].clone(), 2, limit.duration));
            let clients = clients_of(args, design);
            let client = Arc::new(http.clone().for_clients(clients));
            let run = drive_debits(client, design, clients, customers.clone(), limit, workload).await;
            if let Some(readers) = readers {
                let reads = readers.await?;
                let mut row = Row::from_run("target", "hot", "balance reads (http) under the write load", 2, &reads);
                row.per_second = reads.ok as f64 / reads.elapsed.as_secs_f64().max(1e-9);
                rows.push(row);
            }
            let after = balances(&http, &customers).await?;
            let mut row = Row::from_run("target", workload, design, clients, &run);
            let problems = exactness(&customers, &before, &after, &run.per_customer);
            row.exact = Some(problems.is_empty());
            if !problems.is_empty() {
                row.note = problems.join("; ");
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Each balance after the run is its balance before less exactly its successful debits.
fn exactness(customers: &[String], before: &[Credits], after: &[Credits], debits: &[u64]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, id) in customers.iter().enumerate() {
        let expected = before[i].micros() - debits[i] as i64 * DEBIT_MICROS;
        if after[i].micros() != expected || after[i].micros() < 0 {
            problems.push(format!(
                "{id}: balance {} but {} debits from {} leave {}",
                after[i],
                debits[i],
                before[i],
                Credits::from_micros(expected)
            ));
        }
    }
    problems
}

/// Customers `{prefix}_{i}` made through the API, each granted [`GRANT`] credits.
async fn make_customers(http: &Http, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}_{i}")).collect();
    for chunk in ids.chunks(32) {
        let mut tasks = Vec::new();
        for id in chunk {
            let (http, id) = (http.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                http.post(
                    "/v1/customers",
                    serde_json::json!({"id": id, "metadata": {"bench": true}}),
                )
                .await?;
                http.post(
                    &format!("/v1/customers/{id}/grants"),
                    serde_json::json!({"amount": GRANT, "reason": "creditd bench", "source": "admin"}),
                )
                .await
            }));
        }
        for task in tasks {
            task.await??;
        }
    }
    Ok(ids)
}

async fn balances(http: &Http, customers: &[String]) -> anyhow::Result<Vec<Credits>> {
    let mut out = Vec::with_capacity(customers.len());
    for id in customers {
        let body = http.get(&format!("/v1/customers/{id}")).await?;
        let balance = body["balance"]
            .as_str()
            .with_context(|| format!("GET /v1/customers/{id}: no balance in {body}"))?;
        out.push(Credits::parse(balance).map_err(|e| anyhow::anyhow!("balance {balance:?}: {e}"))?);
    }
    Ok(out)
}
