//! The binary itself: keys, verify, configuration errors.

use std::process::Command;

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(
    keys_created_by_the_cli_work_over_http,
    verify_exits_non_zero_naming_the_customer,
    bench_against_a_running_creditd_checks_every_balance,
    operator_commands_find_show_and_adjust_customers,
);

fn creditd(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("CREDITD_CONFIG")
        .output()
        .expect("run creditd")
}

async fn keys_created_by_the_cli_work_over_http(app: &TestApp) {
    let out = creditd(&app.db.url, &["keys", "create", "--name", "backend"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("cd_sk_"), "the key alone on the last line: {stdout}");
    let reply = app
        .post_raw("/v1/customers", r#"{"id": "cli"}"#, Some(&format!("Bearer {secret}")))
        .await;
    assert_eq!(reply.status, 201);
    let list = String::from_utf8(creditd(&app.db.url, &["keys", "list"]).stdout).unwrap();
    assert!(
        list.contains("backend") && !list.contains(&secret),
        "list never prints secrets: {list}"
    );
    let id = stdout.split_whitespace().nth(2).unwrap();
    assert!(creditd(&app.db.url, &["keys", "revoke", id]).status.success());
    // The CLI is another process: the server's key cache follows within a second.
    let revoked = std::time::Instant::now();
    crate::revocation::refused_within_a_second(app, app.addr, "cli", &secret, revoked).await;
    assert_eq!(
        creditd(&app.db.url, &["keys", "revoke", id]).status.code(),
        Some(1),
        "already revoked"
    );
}

async fn verify_exits_non_zero_naming_the_customer(app: &TestApp) {
    app.customer("fine").await;
    app.customer("broken").await;
    let ok = creditd(&app.db.url, &["verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("outstanding 10"));
    let corrupt = "UPDATE customers SET balance = balance + 7 WHERE id = 'broken'";
    assert_eq!(crate::helpers::raw_execute(&app.db.url, corrupt).await, 1);
    let bad = creditd(&app.db.url, &["verify"]);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("customer broken") && !stdout.contains("customer fine"),
        "{stdout}"
    );
    let repair = "UPDATE customers SET balance = balance - 7 WHERE id = 'broken'";
    assert_eq!(crate::helpers::raw_execute(&app.db.url, repair).await, 1);
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["serve"])
        .env("CREDITD_LISTEN", "not-an-address")
        .env("DATABASE_URL", "sqlite://unused.db")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("CREDITD_LISTEN"), "{stderr}");

    let dir = std::env::temp_dir().join(format!("creditd-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("creditd.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nsignup_bonuss = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `signup_bonuss`"));
    std::fs::write(&file, "signup_bonus = \"1.0000001\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .env("DATABASE_URL", format!("sqlite://{}/x.db", dir.display()))
        .env("CREDITD_SIGNUP_BONUS", "2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the environment wins over the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["--config", file.to_str().unwrap(), "serve"])
        .env("DATABASE_URL", format!("sqlite://{}/x.db", dir.display()))
        .env_remove("CREDITD_SIGNUP_BONUS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`signup_bonus` in") && stderr.contains("decimal places"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A short `creditd bench … --json` (off the async runtime: a test app may be serving it);
/// its rows, after it exits 0 (every exactness check passed).
async fn bench(args: &[&str], api_key: Option<String>) -> Vec<serde_json::Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_creditd"));
    command
        .args([
            "bench",
            "--seconds",
            "1",
            "--clients",
            "4",
            "--customers",
            "6",
            "--json",
        ])
        .args(args)
        .env_remove("CREDITD_CONFIG");
    if let Some(key) = api_key {
        command.env("CREDITD_BENCH_API_KEY", key);
    }
    let out = tokio::task::spawn_blocking(move || command.output().expect("run creditd bench"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    report["rows"].as_array().expect("rows").clone()
}

fn row<'a>(rows: &'a [serde_json::Value], workload: &str, design: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["workload"] == workload && r["design"] == design)
        .unwrap_or_else(|| panic!("no {workload}/{design} row in {rows:?}"))
}

/// `bench --target`: customers made through the running creditd's API, debited over HTTP,
/// each balance read back and checked against the debits the benchmark counted.
async fn bench_against_a_running_creditd_checks_every_balance(app: &TestApp) {
    let target = format!("http://{}", app.addr);
    let args = ["--target", &target, "--batch-clients", "2"];
    let rows = bench(&args, Some(app.key.clone())).await;
    for workload in ["hot", "spread"] {
        for design in ["http", "http-batch", "http-1-client"] {
            let r = row(&rows, workload, design);
            assert_eq!(r["exact"], true, "{r}");
            assert_eq!(r["errors"], 0, "{r}");
            assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        }
    }
    assert!(
        row(&rows, "hot", "balance reads (http) under the write load")["ok"]
            .as_u64()
            .unwrap()
            > 0
    );
    let ok = creditd(&app.db.url, &["verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
}

/// The self-contained benchmark on its own database: the naive baseline, in-process, HTTP,
/// HTTP batches and one HTTP client in one run, each checked for exactness, with ratios to
/// the baseline.
async fn bench_runs_every_design(backend: &str) {
    let postgres = std::env::var("CREDITD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| creditd_store::testing::DEFAULT_TEST_POSTGRES_URL.into());
    let args = [
        "--backends",
        backend,
        "--batch-clients",
        "2",
        "--postgres-url",
        &postgres,
    ];
    let rows = bench(&args, None).await;
    for workload in ["hot", "spread"] {
        for design in ["naive", "in-process", "http", "http-batch", "http-1-client"] {
            let r = row(&rows, workload, design);
            assert_eq!(r["exact"], true, "{r}");
            assert_eq!(r["errors"], 0, "{r}");
            assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
            assert!(r["vs_naive"].as_f64().is_some(), "a ratio to the baseline: {r}");
        }
        let batch = row(&rows, workload, "http-batch");
        assert_eq!(batch["clients"], 2, "{batch}");
        assert_eq!(batch["ok"].as_u64().unwrap() % 100, 0, "whole batches of 100: {batch}");
        let one = row(&rows, workload, "http-1-client");
        assert_eq!(one["clients"], 1, "{one}");
        assert!(
            one["p50_ms"].as_f64().unwrap() > 0.0 && one["p99_ms"].as_f64().unwrap() >= one["p50_ms"].as_f64().unwrap()
        );
    }
    assert_eq!(row(&rows, "-", "webhook acks (sequential)")["exact"], true);
}

#[tokio::test]
async fn bench_runs_every_design_and_checks_exactness() {
    bench_runs_every_design("sqlite").await;
}

#[tokio::test]
async fn bench_runs_every_design_on_postgres() {
    if creditd_store::testing::TestDb::postgres().await.is_none() {
        return;
    }
    bench_runs_every_design("postgres").await;
}

/// A misspelt scenario is refused up front, naming it, before any database is made.
#[test]
fn bench_refuses_an_unknown_design_or_workload() {
    for (flag, value) in [("--designs", "naive,inprocess"), ("--workloads", "warm")] {
        let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
            .args(["bench", flag, value])
            .env_remove("CREDITD_CONFIG")
            .output()
            .expect("run creditd bench");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = value.rsplit(',').next().unwrap();
        assert!(stderr.contains(&format!("{named:?}")), "{stderr}");
    }
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

async fn operator_commands_find_show_and_adjust_customers(app: &TestApp) {
    let created = app
        .post(
            "/v1/customers",
            serde_json::json!({"id": "alice", "email": "Alice@Example.com"}),
        )
        .await;
    assert_eq!(created.status, 201);
    app.customer("bob").await;
    let url = &app.db.url;
    let listed = stdout_of(&creditd(url, &["customers", "list", "--search", "example"]));
    assert!(listed.contains("alice") && !listed.contains("bob"), "{listed}");
    let listed: serde_json::Value =
        serde_json::from_str(&stdout_of(&creditd(url, &["--json", "customers", "list"]))).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    let grant = [
        "grants",
        "add",
        "--customer",
        "alice",
        "--amount",
        "12.5",
        "--reason",
        "goodwill",
    ];
    let granted = creditd(url, &[&["--json"], &grant[..], &["--expires", "2030-01-01"]].concat());
    let granted: serde_json::Value = serde_json::from_str(&stdout_of(&granted)).unwrap();
    assert_eq!(
        (granted["source"].as_str(), granted["amount"].as_str()),
        (Some("admin"), Some("12.5"))
    );
    assert_eq!(granted["expires_at"], 1_893_456_000);
    assert_eq!(app.balance("alice").await.0, "17.5", "the API sees the CLI's grant");
    let fixed = creditd(
        url,
        &[
            "usage",
            "add",
            "--customer",
            "alice",
            "--amount",
            "2",
            "--reason",
            "double charge",
        ],
    );
    assert!(stdout_of(&fixed).contains("balance 15.5"));
    assert_eq!(app.balance("alice").await.0, "15.5");

    // Refusals: one line naming what is wrong, exit 1, nothing written.
    for (args, says) in [
        (
            vec![
                "usage",
                "add",
                "--customer",
                "alice",
                "--amount",
                "1000",
                "--reason",
                "x",
            ],
            "insufficient",
        ),
        (
            vec![
                "grants",
                "add",
                "--customer",
                "alice",
                "--amount",
                "-3",
                "--reason",
                "x",
            ],
            "--amount",
        ),
        (
            vec!["grants", "add", "--customer", "alice", "--amount", "3", "--reason", " "],
            "--reason",
        ),
        (
            vec![
                "grants",
                "add",
                "--customer",
                "alice",
                "--amount",
                "3",
                "--reason",
                "x",
                "--expires",
                "2001-01-01",
            ],
            "--expires",
        ),
        (
            vec![
                "grants",
                "add",
                "--customer",
                "nobody",
                "--amount",
                "3",
                "--reason",
                "x",
            ],
            "nobody",
        ),
        (vec!["customers", "show", "nobody"], "no such customer"),
    ] {
        let out = creditd(url, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(app.balance("alice").await.0, "15.5");

    let shown: serde_json::Value =
        serde_json::from_str(&stdout_of(&creditd(url, &["customers", "show", "alice", "--json"]))).unwrap();
    assert_eq!(shown["customer"]["balance"], "15.5");
    assert_eq!(
        shown["grants"].as_array().unwrap().len(),
        2,
        "signup bonus and the grant"
    );
    let ledger = shown["ledger"].as_array().unwrap();
    assert!(
        ledger
            .iter()
            .any(|e| e["kind"] == "usage" && e["feature"] == "admin_adjustment"),
        "{ledger:?}"
    );
    let text = stdout_of(&creditd(url, &["customers", "show", "alice"]));
    assert!(
        text.contains("balance 15.5") && text.contains("subscription none"),
        "{text}"
    );
}
