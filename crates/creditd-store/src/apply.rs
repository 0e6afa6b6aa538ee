//! The write path of one command; [`crate::batch`] applies many in one transaction.
//!
//! Every command runs inside a transaction that first locks the customer's row (an `UPDATE`,
//! which is a row lock on PostgreSQL and the write lock on SQLite), loads the customer's
//! [`Account`], lets the domain decide, and writes back exactly the movements it returned.

use creditd_domain::command::{NewCustomer, NewDeduction, NewGrant, NewHold, NewUsage};
use creditd_domain::outbound::{AlertState, EventType};
use creditd_domain::views::{Entry, Grant, Hold, HoldStatus, Usage};
use creditd_domain::{Account, Command, CommandError, Credits, IdKind, Insufficient, Lot, Movement, Outcome, Taken};
use sqlx::AnyConnection;
use sqlx::Row;

use crate::outbox;
use crate::rows::{self, HOLD_COLUMNS};
use crate::{Result, Store, StoreError};

/// Attempts for a transaction that lost a serialization race or a deadlock.
pub(crate) const MAX_ATTEMPTS: usize = 8;

impl Store {
    /// Writes the expire entries of lapsed grants and releases lapsed holds, for up to
    /// `limit` customers; returns how many were swept.
    pub async fn sweep(&self, now: i64, limit: i64) -> Result<usize> {
        let due = sqlx::query(
            "SELECT customer_id FROM holds WHERE status = 'open' AND expires_at <= $1 \
             UNION SELECT customer_id FROM grants WHERE remaining > 0 AND expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        for row in &due {
            let customer: String = row.try_get(0)?;
            let mut tx = self.writer.begin().await?;
            let locked = lock_account(&mut tx, &customer, now).await?;
            save_account(&mut tx, &locked, now).await?;
            tx.commit().await?;
        }
        Ok(due.len())
    }
}

/// Errors that are the command's real result, replayed to retries like Stripe does. Lookups
/// that failed are not: the caller may create the missing object and retry with the same key.
pub(crate) fn is_recorded(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::InsufficientCredits { .. }
            | CommandError::HoldNotOpen { .. }
            | CommandError::DuplicateGrantReference { .. }
    )
}

pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else { return false };
    // PostgreSQL: serialization failure, deadlock. SQLite: busy, busy snapshot.
    matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "517"))
}

pub(crate) async fn run(conn: &mut AnyConnection, command: &Command, now: i64) -> Result<Outcome> {
    match command {
        Command::CreateCustomer(new) => create_customer(conn, new, now).await,
        Command::Grant(new) => grant(conn, new, now).await.map(Outcome::Grant),
        Command::Usage(new) => usage(conn, new, now).await.map(Outcome::Usage),
        Command::Deduct(new) => deduct(conn, new, now).await.map(Outcome::Usage),
        Command::CreateHold(new) => create_hold(conn, new, now).await.map(Outcome::Hold),
        Command::CaptureHold { hold, amount, feature } => {
            finish_hold(conn, hold, Some((*amount, feature.as_deref())), now)
                .await
                .map(Outcome::Hold)
        }
        Command::ReleaseHold { hold } => finish_hold(conn, hold, None, now).await.map(Outcome::Hold),
    }
}

async fn create_customer(conn: &mut AnyConnection, new: &NewCustomer, now: i64) -> Result<Outcome> {
    // A customer starts where its signup bonus leaves it: no alert for being created low.
    let (alert, _) = outbox::alert_events(AlertState::Ok, None, new.signup_bonus);
    let inserted = sqlx::query(
        "INSERT INTO customers (id, email, metadata, balance, held, created_at, updated_at, balance_alert) \
         VALUES ($1, $2, $3, 0, 0, $4, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&new.id)
    .bind(&new.email)
    .bind(new.metadata.to_string())
    .bind(now)
    .bind(alert.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let created = inserted == 1;
    if created {
        // Announced as created, before its signup bonus arrives (`credits.granted`).
        let customer = crate::read::customer_on(conn, &new.id, now)
            .await?
            .ok_or_else(|| StoreError::Corrupt("customer vanished inside its transaction".into()))?;
        outbox::emit(conn, EventType::CustomerCreated, Some(&new.id), &customer, now).await?;
    }
    if created && new.signup_bonus.is_positive() {
        let bonus = NewGrant {
            customer: new.id.clone(),
            amount: new.signup_bonus,
            priority: creditd_domain::account::DEFAULT_PRIORITY,
            expires_at: None,
            source: creditd_domain::GrantSource::SignupBonus,
            reason: Some("signup bonus".into()),
            reference: None,
        };
        grant(conn, &bonus, now).await?;
    }
    let customer = crate::read::customer_on(conn, &new.id, now)
        .await?
        .ok_or_else(|| StoreError::Corrupt("customer vanished inside its transaction".into()))?;
    Ok(Outcome::Customer { customer, created })
}

/// A customer's account, locked for the rest of the transaction, with expired holds and
/// grants already swept (their entries written).
pub(crate) struct Locked {
    pub(crate) customer: String,
    pub(crate) account: Account,
    /// Where the last change left the low-balance alert, and the customer's own threshold.
    pub(crate) alert: AlertState,
    pub(crate) threshold: Option<Credits>,
}

pub(crate) async fn lock_account(conn: &mut AnyConnection, customer: &str, now: i64) -> Result<Locked> {
    let row = sqlx::query(
        "UPDATE customers SET updated_at = $2 WHERE id = $1 \
         RETURNING balance, held, debt, low_balance_threshold, balance_alert",
    )
        .bind(customer)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CommandError::CustomerNotFound(customer.to_string()))?;
    let (balance, held, debt): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let threshold = row.try_get::<Option<i64>, _>(3)?.map(Credits::from_micros);
    let alert: String = row.try_get(4)?;
    let alert = AlertState::parse(&alert).ok_or_else(|| StoreError::Corrupt(format!("unknown alert state {alert:?}")))?;
    let lots = sqlx::query(
        "SELECT id, remaining, priority, expires_at, seq FROM grants WHERE customer_id = $1 AND remaining > 0",
    )
    .bind(customer)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Lot {
            grant_id: r.try_get(0)?,
            remaining: Credits::from_micros(r.try_get(1)?),
            priority: r.try_get::<i64, _>(2)? as i32,
            expires_at: r.try_get(3)?,
            seq: r.try_get(4)?,
        })
    })
    .collect::<Result<Vec<Lot>>>()?;
    let sum: i64 = lots.iter().map(|l| l.remaining.micros()).sum();
    if sum - debt != balance || held < 0 || debt < 0 {
        return Err(StoreError::Corrupt(format!(
            "customer {customer}: balance {balance} but grants hold {sum} less debt {debt} (held {held})"
        )));
    }
    let account = Account::with_debt(
        Credits::from_micros(balance),
        Credits::from_micros(held),
        Credits::from_micros(debt),
        lots,
    );
    let mut locked = Locked {
        customer: customer.to_string(),
        account,
        alert,
        threshold,
    };
    let expired_holds: i64 = sqlx::query(
        "UPDATE holds SET status = 'expired', updated_at = $2 \
         WHERE customer_id = $1 AND status = 'open' AND expires_at <= $2 RETURNING amount",
    )
    .bind(customer)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>(0))
    .sum::<Result<i64, _>>()?;
    if expired_holds > 0 {
        locked.account.release(Credits::from_micros(expired_holds));
    }
    let expired = locked.account.expire_due(now);
    for entry in write_movements(conn, customer, &expired, &EntryContext::default(), now).await? {
        outbox::emit(conn, EventType::CreditsExpired, Some(customer), &entry, now).await?;
    }
    Ok(locked)
}

/// What the entries of one command share.
#[derive(Default)]
pub(crate) struct EntryContext<'a> {
    pub(crate) reference: Option<&'a str>,
    pub(crate) feature: Option<&'a str>,
    pub(crate) metadata: Option<&'a serde_json::Value>,
}

impl EntryContext<'_> {
    /// The ledger entry of one grant movement.
    pub(crate) fn entry(&self, customer: &str, m: &Movement, now: i64) -> Entry {
        Entry {
            id: IdKind::Entry.new_id(),
            customer: customer.to_string(),
            grant: Some(m.grant_id.clone()),
            kind: m.kind,
            amount: m.amount,
            balance_after: m.balance_after,
            // Expiry entries carry their grant as the reference: they are caused by no request.
            reference: Some(self.reference.unwrap_or(&m.grant_id).to_string()),
            feature: self.feature.map(str::to_string),
            metadata: self.metadata.cloned().unwrap_or_else(|| serde_json::json!({})),
            created: now,
        }
    }
}

/// Writes what the domain decided: grant legs, then the debt leg when there is one.
pub(crate) async fn write_taken(
    conn: &mut AnyConnection,
    customer: &str,
    taken: &Taken,
    context: &EntryContext<'_>,
    now: i64,
) -> Result<Vec<Entry>> {
    let mut entries = write_movements(conn, customer, &taken.movements, context, now).await?;
    if let Some(debt) = &taken.debt {
        let entry = Entry {
            id: IdKind::Entry.new_id(),
            customer: customer.to_string(),
            grant: None,
            kind: debt.kind,
            amount: debt.amount,
            balance_after: debt.balance_after,
            reference: context.reference.map(str::to_string),
            feature: None,
            metadata: context.metadata.cloned().unwrap_or_else(|| serde_json::json!({})),
            created: now,
        };
        insert_entry(conn, &entry).await?;
        entries.push(entry);
    }
    Ok(entries)
}

async fn insert_entry(conn: &mut AnyConnection, entry: &Entry) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_entries (id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&entry.id)
    .bind(&entry.customer)
    .bind(&entry.grant)
    .bind(entry.kind.as_str())
    .bind(entry.amount.micros())
    .bind(entry.balance_after.micros())
    .bind(&entry.reference)
    .bind(&entry.feature)
    .bind(entry.metadata.to_string())
    .bind(entry.created)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn write_movements(
    conn: &mut AnyConnection,
    customer: &str,
    movements: &[Movement],
    context: &EntryContext<'_>,
    now: i64,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(movements.len());
    for m in movements {
        let updated = sqlx::query("UPDATE grants SET remaining = remaining + $1 WHERE id = $2 AND customer_id = $3")
            .bind(m.amount.micros())
            .bind(&m.grant_id)
            .bind(customer)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if updated != 1 {
            return Err(StoreError::Corrupt(format!(
                "grant {} of {customer} not found",
                m.grant_id
            )));
        }
        let entry = context.entry(customer, m, now);
        insert_entry(conn, &entry).await?;
        entries.push(entry);
    }
    Ok(entries)
}

pub(crate) async fn save_account(conn: &mut AnyConnection, locked: &Locked, now: i64) -> Result<()> {
    locked.account.assert_consistent();
    sqlx::query("UPDATE customers SET balance = $2, held = $3, debt = $4 WHERE id = $1")
        .bind(&locked.customer)
        .bind(locked.account.balance.micros())
        .bind(locked.account.held.micros())
        .bind(locked.account.debt.micros())
        .execute(&mut *conn)
        .await?;
    let available = locked.account.available();
    outbox::save_alert(conn, &locked.customer, locked.alert, locked.threshold, available, now).await?;
    crate::autotopup::after_change(conn, &locked.customer, available, now).await
}

pub(crate) fn insufficient(account: &Account, requested: Credits, e: Insufficient) -> StoreError {
    StoreError::Command(CommandError::InsufficientCredits {
        balance: account.balance,
        available: e.available,
        requested,
    })
}

pub(crate) async fn grant(conn: &mut AnyConnection, new: &NewGrant, now: i64) -> Result<Grant> {
    let mut locked = lock_account(conn, &new.customer, now).await?;
    let grant = grant_into(conn, &mut locked, new, now).await?;
    save_account(conn, &locked, now).await?;
    Ok(grant)
}

/// Adds a grant to an account already locked in this transaction (the caller saves it).
pub(crate) async fn grant_into(
    conn: &mut AnyConnection,
    locked: &mut Locked,
    new: &NewGrant,
    now: i64,
) -> Result<Grant> {
    if let Some(reference) = &new.reference {
        let existing = sqlx::query("SELECT id FROM grants WHERE source = $1 AND reference = $2")
            .bind(new.source.as_str())
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?;
        if existing.is_some() {
            return Err(CommandError::DuplicateGrantReference {
                kind: new.source.as_str().into(),
                reference: reference.clone(),
            }
            .into());
        }
    }
    let id = IdKind::Grant.new_id();
    // Inserted empty; the grant entry below fills it, so every credit arrives through an entry.
    let seq: i64 = sqlx::query(
        "INSERT INTO grants (id, customer_id, amount, remaining, priority, expires_at, source, reason, reference, created_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9) RETURNING seq",
    )
    .bind(&id)
    .bind(&new.customer)
    .bind(new.amount.micros())
    .bind(i64::from(new.priority))
    .bind(new.expires_at)
    .bind(new.source.as_str())
    .bind(&new.reason)
    .bind(&new.reference)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let lot = Lot {
        grant_id: id.clone(),
        remaining: new.amount,
        priority: new.priority,
        expires_at: new.expires_at,
        seq,
    };
    let movement = locked.account.credit(lot);
    let context = EntryContext {
        reference: Some(&id),
        ..EntryContext::default()
    };
    write_movements(conn, &new.customer, &[movement], &context, now).await?;
    // New credits pay any debt first.
    let settled = locked.account.settle_debt(now);
    write_taken(conn, &new.customer, &settled, &context, now).await?;
    let remaining = locked
        .account
        .lots
        .iter()
        .find(|l| l.grant_id == id)
        .map_or(Credits::ZERO, |l| l.remaining);
    let grant = Grant {
        id,
        customer: new.customer.clone(),
        amount: new.amount,
        remaining,
        priority: new.priority,
        expires_at: new.expires_at,
        source: new.source,
        reason: new.reason.clone(),
        reference: new.reference.clone(),
        created: now,
    };
    outbox::emit(conn, EventType::CreditsGranted, Some(&new.customer), &grant, now).await?;
    Ok(grant)
}

async fn usage(conn: &mut AnyConnection, new: &NewUsage, now: i64) -> Result<Usage> {
    let mut locked = lock_account(conn, &new.customer, now).await?;
    let movements = match locked.account.debit(new.amount, now) {
        Ok(m) => m,
        Err(e) => {
            save_account(conn, &locked, now).await?;
            return Err(insufficient(&locked.account, new.amount, e));
        }
    };
    let id = IdKind::Usage.new_id();
    let context = EntryContext {
        reference: Some(&id),
        feature: Some(&new.feature),
        metadata: Some(&new.metadata),
    };
    let entries = write_movements(conn, &new.customer, &movements, &context, now).await?;
    save_account(conn, &locked, now).await?;
    Ok(Usage {
        id,
        customer: new.customer.clone(),
        amount: new.amount,
        feature: new.feature.clone(),
        balance: locked.account.balance,
        available: locked.account.available(),
        entries,
        created: now,
    })
}

/// Feature name of the entries an admin deduction writes.
pub const ADMIN_ADJUSTMENT_FEATURE: &str = "admin_adjustment";

/// Like usage, but the entries name the admin and reason, and the reference is an `adj_` id
/// (reports count it apart from what customers spent).
async fn deduct(conn: &mut AnyConnection, new: &NewDeduction, now: i64) -> Result<Usage> {
    let mut locked = lock_account(conn, &new.customer, now).await?;
    let movements = match locked.account.debit(new.amount, now) {
        Ok(m) => m,
        Err(e) => {
            save_account(conn, &locked, now).await?;
            return Err(insufficient(&locked.account, new.amount, e));
        }
    };
    let id = IdKind::Adjustment.new_id();
    let metadata = serde_json::json!({ "admin": new.admin, "reason": new.reason });
    let context = EntryContext {
        reference: Some(&id),
        feature: Some(ADMIN_ADJUSTMENT_FEATURE),
        metadata: Some(&metadata),
    };
    let entries = write_movements(conn, &new.customer, &movements, &context, now).await?;
    save_account(conn, &locked, now).await?;
    Ok(Usage {
        id,
        customer: new.customer.clone(),
        amount: new.amount,
        feature: ADMIN_ADJUSTMENT_FEATURE.into(),
        balance: locked.account.balance,
        available: locked.account.available(),
        entries,
        created: now,
    })
}

async fn create_hold(conn: &mut AnyConnection, new: &NewHold, now: i64) -> Result<Hold> {
    let mut locked = lock_account(conn, &new.customer, now).await?;
    if let Err(e) = locked.account.hold(new.amount) {
        save_account(conn, &locked, now).await?;
        return Err(insufficient(&locked.account, new.amount, e));
    }
    let id = IdKind::Hold.new_id();
    let expires_at = now.saturating_add(new.ttl_seconds);
    sqlx::query(
        "INSERT INTO holds (id, customer_id, amount, status, captured, feature, metadata, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'open', NULL, $4, $5, $6, $7, $7)",
    )
    .bind(&id)
    .bind(&new.customer)
    .bind(new.amount.micros())
    .bind(&new.feature)
    .bind(new.metadata.to_string())
    .bind(expires_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    save_account(conn, &locked, now).await?;
    Ok(Hold {
        id,
        customer: new.customer.clone(),
        amount: new.amount,
        status: HoldStatus::Open,
        captured: None,
        feature: new.feature.clone(),
        expires_at,
        created: now,
        balance: locked.account.balance,
        available: locked.account.available(),
        entries: Vec::new(),
    })
}

/// Captures (`capture = Some((amount, feature))`) or releases an open hold.
async fn finish_hold(
    conn: &mut AnyConnection,
    hold_id: &str,
    capture: Option<(Option<Credits>, Option<&str>)>,
    now: i64,
) -> Result<Hold> {
    let customer: String = sqlx::query("SELECT customer_id FROM holds WHERE id = $1")
        .bind(hold_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CommandError::HoldNotFound(hold_id.to_string()))?
        .try_get(0)?;
    let mut locked = lock_account(conn, &customer, now).await?;
    // Read after the lock (and after expired holds were swept): the status is final here.
    let row = sqlx::query(&format!("SELECT {HOLD_COLUMNS}, metadata FROM holds WHERE id = $1"))
        .bind(hold_id)
        .fetch_one(&mut *conn)
        .await?;
    let mut hold = rows::hold(&row)?;
    if hold.status != HoldStatus::Open {
        save_account(conn, &locked, now).await?;
        return Err(CommandError::HoldNotOpen {
            status: hold.status.as_str().into(),
        }
        .into());
    }
    let (status, captured) = match capture {
        Some((amount, feature)) => {
            let amount = amount.unwrap_or(hold.amount);
            let movements = match locked.account.capture(hold.amount, amount, now) {
                Ok(m) => m,
                Err(e) => {
                    save_account(conn, &locked, now).await?;
                    return Err(insufficient(&locked.account, amount, e));
                }
            };
            let metadata = rows::metadata(&row.try_get::<String, _>("metadata")?);
            let feature = feature.map(str::to_string).or(hold.feature.clone());
            let context = EntryContext {
                reference: Some(hold_id),
                feature: feature.as_deref(),
                metadata: Some(&metadata),
            };
            hold.entries = write_movements(conn, &customer, &movements, &context, now).await?;
            hold.feature = feature;
            (HoldStatus::Captured, Some(amount))
        }
        None => {
            locked.account.release(hold.amount);
            (HoldStatus::Released, None)
        }
    };
    sqlx::query("UPDATE holds SET status = $2, captured = $3, feature = $4, updated_at = $5 WHERE id = $1")
        .bind(hold_id)
        .bind(status.as_str())
        .bind(captured.map(Credits::micros))
        .bind(&hold.feature)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    save_account(conn, &locked, now).await?;
    hold.status = status;
    hold.captured = captured;
    hold.balance = locked.account.balance;
    hold.available = locked.account.available();
    Ok(hold)
}
