//! The operator's commands: `customers list|show`, `grants add`, `usage add`. Adjustments
//! go through the group-commit writer as the dashboard's admin adjustments do (a grant of
//! source `admin`, or a deduction recorded as usage of `admin_adjustment`); `--json` prints
//! what the API would return, for scripts.

use clap::{Args, Subcommand};
use creditd_domain::command::{NewDeduction, NewGrant};
use creditd_domain::{validate, Command, Credits, GrantSource, Outcome, Request};
use creditd_store::{PageRequest, Store, Writer, WriterConfig};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum CustomersCommand {
    /// Customers, newest first; `--search` matches the id or email (case-insensitive).
    List {
        #[arg(long, default_value = "")]
        search: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One customer: balance, grants, holds, subscription and recent ledger entries.
    Show { id: String },
}

/// Who, how much and why: what every adjustment names.
#[derive(Args, Debug)]
pub struct Adjustment {
    #[arg(long)]
    customer: String,
    /// Credits, a decimal with up to 6 places.
    #[arg(long, allow_hyphen_values = true)]
    amount: String,
    /// Why; recorded with the adjustment.
    #[arg(long)]
    reason: String,
}

#[derive(Subcommand, Debug)]
pub enum GrantsCommand {
    /// Grant credits as an admin adjustment.
    Add {
        #[command(flatten)]
        adjustment: Adjustment,
        /// When the remainder expires: `2027-01-31` (UTC midnight), unix seconds, or from
        /// now: `30d`, `12h`.
        #[arg(long)]
        expires: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// Deduct credits as an admin correction (never below zero).
    Add(Adjustment),
}

/// What a command printed goes to stdout; a refusal is one line on stderr and exit 1.
type Exit = anyhow::Result<i32>;

fn refuse(message: impl std::fmt::Display) -> Exit {
    eprintln!("{message}");
    Ok(1)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn customers(store: &Store, command: CustomersCommand, json_out: bool, now: i64) -> Exit {
    match command {
        CustomersCommand::List { search, limit } => {
            if !(1..=1000).contains(&limit) {
                return refuse("--limit: must be from 1 to 1000");
            }
            let found = store.search_customers(search.trim(), limit, now).await?;
            if json_out {
                print_json(&json!({"object": "list", "data": found}))?;
            } else {
                for c in &found {
                    let email = c.email.as_deref().unwrap_or("-");
                    println!("{}\t{email}\tbalance {}\tavailable {}", c.id, c.balance, c.available);
                }
            }
            Ok(0)
        }
        CustomersCommand::Show { id } => show(store, &id, json_out, now).await,
    }
}

async fn show(store: &Store, id: &str, json_out: bool, now: i64) -> Exit {
    let Some(mut customer) = store.customer(id, now).await? else {
        return refuse(format!("no such customer: {id}"));
    };
    customer.subscription = store.subscription_of(id).await?;
    let recent = PageRequest {
        limit: 20,
        starting_after: None,
    };
    let grants = store.grants(id, &recent).await?.data;
    let ledger = store.ledger(id, &recent).await?.data;
    let holds = store.holds_of(id, 20).await?;
    if json_out {
        print_json(&json!({"customer": customer, "grants": grants, "holds": holds, "ledger": ledger}))?;
        return Ok(0);
    }
    println!(
        "customer {}{}",
        customer.id,
        customer.email.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default()
    );
    println!(
        "balance {}  available {}  held {}  frozen {}  debt {}",
        customer.balance, customer.available, customer.held, customer.frozen, customer.debt
    );
    match &customer.subscription {
        Some(s) => println!("subscription {}", serde_json::to_string(s)?),
        None => println!("subscription none"),
    }
    println!("grants (newest first):");
    for g in &grants {
        let expires = g
            .expires_at
            .map_or("never".to_string(), crate::admin::dates::format_time);
        println!(
            "  {}\t{}\t{} of {}\texpires {expires}",
            g.id,
            g.source.as_str(),
            g.remaining,
            g.amount
        );
    }
    println!("holds (newest first):");
    for h in &holds {
        println!("  {}\t{:?}\t{}", h.id, h.status, h.amount);
    }
    println!("ledger (newest first):");
    for e in &ledger {
        println!(
            "  {}\t{}\t{:?}\t{}\tbalance after {}",
            crate::admin::dates::format_time(e.created),
            e.id,
            e.kind,
            e.amount,
            e.balance_after
        );
    }
    Ok(0)
}

/// `--expires`: a date, unix seconds, or a duration from now.
fn expires_at(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    let at = if text.contains('-') {
        crate::admin::dates::parse_day(text)? * creditd_store::SECONDS_PER_DAY
    } else if text.bytes().all(|b| b.is_ascii_digit()) && text.len() >= 9 {
        text.parse().map_err(|_| format!("{text:?} is not unix seconds"))?
    } else {
        now + crate::cli::parse_duration(text)?
    };
    if at <= now {
        return Err(format!("{text:?} is not in the future"));
    }
    Ok(at)
}

fn amount(text: &str) -> Result<Credits, String> {
    Credits::parse(text.trim())
        .and_then(Credits::positive)
        .map_err(|e| format!("--amount: {e}"))
}

fn reason(text: &str) -> Result<String, String> {
    let reason = text.trim();
    if reason.is_empty() {
        return Err("--reason: is required".into());
    }
    validate::text(reason).map_err(|m| format!("--reason: {m}"))?;
    Ok(reason.to_string())
}

/// Who ran the command, for the ledger: `cli:<user>`.
fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}

pub async fn grants(store: &Store, command: GrantsCommand, json_out: bool, now: i64) -> Exit {
    let GrantsCommand::Add { adjustment, expires } = command;
    let checked = (|| {
        let expires_at = expires
            .as_deref()
            .map(|e| expires_at(e, now).map_err(|m| format!("--expires: {m}")));
        let amount = amount(&adjustment.amount)?;
        Ok::<_, String>((amount, reason(&adjustment.reason)?, expires_at.transpose()?))
    })();
    let (amount, why, expires_at) = match checked {
        Ok(c) => c,
        Err(m) => return refuse(m),
    };
    let command = Command::Grant(NewGrant {
        customer: adjustment.customer,
        amount,
        priority: creditd_domain::account::DEFAULT_PRIORITY,
        expires_at,
        source: GrantSource::Admin,
        reason: Some(format!("{why} (by {})", operator())),
        reference: None,
    });
    match write(store, command, now).await? {
        Ok(Outcome::Grant(grant)) if json_out => print_json(&grant)?,
        Ok(Outcome::Grant(grant)) => println!("granted {} credits to {}: {}", grant.amount, grant.customer, grant.id),
        Ok(other) => anyhow::bail!("unexpected outcome {other:?}"),
        Err(refused) => return refuse(refused),
    }
    Ok(0)
}

pub async fn usage(store: &Store, command: UsageCommand, json_out: bool, now: i64) -> Exit {
    let UsageCommand::Add(adjustment) = command;
    let (amount, reason) = match amount(&adjustment.amount).and_then(|a| Ok((a, reason(&adjustment.reason)?))) {
        Ok(c) => c,
        Err(m) => return refuse(m),
    };
    let command = Command::Deduct(NewDeduction {
        customer: adjustment.customer,
        amount,
        admin: operator(),
        reason,
    });
    match write(store, command, now).await? {
        Ok(Outcome::Usage(usage)) if json_out => print_json(&usage)?,
        Ok(Outcome::Usage(usage)) => println!(
            "deducted {} credits from {}: {}; balance {}",
            usage.amount, usage.customer, usage.id, usage.balance
        ),
        Ok(other) => anyhow::bail!("unexpected outcome {other:?}"),
        Err(refused) => return refuse(refused),
    }
    Ok(0)
}

/// One command through the group-commit writer; a refusal by the domain is the inner error.
async fn write(store: &Store, command: Command, now: i64) -> anyhow::Result<Result<Outcome, String>> {
    let writer = Writer::spawn(store.clone(), WriterConfig::default());
    let request = Request {
        command,
        idempotency: None,
    };
    match writer.submit(request, now).await {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(creditd_store::StoreError::Command(refused)) => Ok(Err(refused.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::expires_at;

    #[test]
    fn expiry_is_a_date_unix_seconds_or_a_duration_from_now() {
        let now = 1_800_000_000;
        assert_eq!(expires_at("2030-01-01", now), Ok(1_893_456_000));
        assert_eq!(expires_at("1900000000", now), Ok(1_900_000_000));
        assert_eq!(expires_at("30d", now), Ok(now + 30 * 86_400));
        assert!(expires_at("2001-01-01", now).is_err(), "in the past");
        assert!(expires_at("soon", now).is_err());
    }
}
