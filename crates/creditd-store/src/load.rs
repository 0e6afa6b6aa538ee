//! What a batch reads before the domain decides: whose rows to lock, then — under those
//! locks — the accounts ([`crate::accounts`]) and the [`Facts`] its commands need (existing
//! customers' profiles, holds that are no longer open, grant references, payments and their
//! freezes, subscription allowances). Only what the batch's commands name is read, and
//! nothing at all for a batch of usage on warm customers.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use creditd_domain::allowance::AllowanceRecord;
use creditd_domain::book::Profile;
use creditd_domain::purchase::PaymentUpdate;
use creditd_domain::refund::{Freeze, PaymentRecord};
use creditd_domain::views::HoldStatus;
use creditd_domain::{Book, Command, Credits, Facts, GrantSource, Lot};
use sqlx::Row;

use crate::accounts::AccountCache;
use crate::db::{on, Conn};
use crate::persist::id_set;
use crate::rowset::{RowSet, Ty};
use crate::{billing, rows, Result, StoreError};

/// Before any lock: the customers of the holds and payments the commands name (neither
/// ever changes owner), and so every customer the batch locks.
pub(crate) async fn owners(
    conn: &mut Conn<'_>,
    commands: &[&Command],
    cache: &AccountCache,
) -> Result<(Facts, BTreeSet<String>)> {
    let mut facts = Facts {
        low_balance_default: crate::outbox::default_low_balance_threshold(),
        ..Facts::default()
    };
    let mut unknown_holds = BTreeSet::new();
    let mut payments = BTreeSet::new();
    let mut customers = BTreeSet::new();
    for command in commands {
        match command {
            Command::CaptureHold { hold, .. } | Command::ReleaseHold { hold } => match cache.hold_owner(hold) {
                Some(owner) => {
                    facts.hold_owners.insert(hold.clone(), owner);
                }
                None => {
                    unknown_holds.insert(hold.as_str());
                }
            },
            Command::UpdatePayment { payment, .. } | Command::ConvergePayment { payment, .. } => {
                payments.insert(payment.as_str());
            }
            other => {
                customers.extend(other.customer().map(str::to_string));
            }
        }
    }
    for (table, ids) in [("holds", unknown_holds), ("payments", payments)] {
        if ids.is_empty() {
            continue;
        }
        let set = id_set(conn.dialect(), ids);
        let sql = format!(
            "SELECT id, customer_id FROM {table} WHERE id IN (SELECT column1 FROM {} AS v)",
            set.sql(1).0
        );
        let owned: Vec<(String, String)> = on!(conn, c => {
            let rows = set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await?;
            rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_>>()?
        });
        for (id, owner) in owned {
            if table == "holds" {
                facts.hold_owners.insert(id, owner);
            } else {
                customers.insert(owner);
            }
        }
    }
    customers.extend(facts.hold_owners.values().cloned());
    Ok((facts, customers))
}

/// Under the locks, with the accounts admitted: the rest of what the commands need.
pub(crate) async fn facts(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    profiles(conn, commands, book).await?;
    closed_holds(conn, commands, book).await?;
    references(conn, commands, book).await?;
    payments(conn, commands, book).await?;
    allowances(conn, commands, book).await
}

/// Existing customers a `CreateCustomer` names (it then creates nothing).
async fn profiles(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    let ids: BTreeSet<&str> = commands
        .iter()
        .filter_map(|c| match c {
            Command::CreateCustomer(new) if book.customers.contains_key(&new.id) => Some(new.id.as_str()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let set = id_set(conn.dialect(), ids);
    let sql = format!(
        "SELECT id, email, metadata, created_at FROM customers WHERE id IN (SELECT column1 FROM {} AS v)",
        set.sql(1).0
    );
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let profile = Profile {
                email: row.try_get(1)?,
                metadata: rows::metadata(&row, "metadata")?,
                created: row.try_get(3)?,
            };
            book.facts.profiles.insert(row.try_get(0)?, profile);
        }
    });
    Ok(())
}

/// The status of named holds that are not open (their customer's state has only open ones).
async fn closed_holds(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    let ids: BTreeSet<&str> = commands
        .iter()
        .filter_map(|c| match c {
            Command::CaptureHold { hold, .. } | Command::ReleaseHold { hold } => Some(hold.as_str()),
            _ => None,
        })
        .filter(|hold| {
            let open = book.facts.hold_owners.get(*hold).and_then(|o| book.customers.get(o));
            open.is_some_and(|state| !state.holds.contains_key(*hold)) && !book.facts.closed_holds.contains_key(*hold)
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let set = id_set(conn.dialect(), ids);
    let sql = format!(
        "SELECT id, status FROM holds WHERE id IN (SELECT column1 FROM {} AS v)",
        set.sql(1).0
    );
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let status: String = row.try_get(1)?;
            let status = HoldStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown hold status {status:?}")))?;
            book.facts.closed_holds.insert(row.try_get(0)?, status);
        }
    });
    Ok(())
}

/// Grants that already exist under the references the commands name.
async fn references(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    let named: HashSet<(GrantSource, &str)> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Grant(new) => new.reference.as_deref().map(|r| (new.source, r)),
            Command::UpdatePayment {
                update: PaymentUpdate::Paid { reference, .. },
                ..
            } => Some((GrantSource::Purchase, reference.as_str())),
            Command::GrantAllowance(a) => Some((GrantSource::Subscription, a.invoice.as_str())),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let set = id_set(conn.dialect(), named.iter().map(|(_, r)| *r));
    let sql = format!(
        "SELECT source, reference, id FROM grants WHERE reference IN (SELECT column1 FROM {} AS v)",
        set.sql(1).0
    );
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let source: String = row.try_get(0)?;
            let reference: String = row.try_get(1)?;
            let Some(source) = GrantSource::parse(&source) else {
                continue;
            };
            if named.contains(&(source, reference.as_str())) {
                book.facts.grant_references.insert((source, reference), row.try_get(2)?);
            }
        }
    });
    Ok(())
}

/// The payments the commands name, as stored under their customer's lock, with their freezes.
async fn payments(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    let ids: BTreeSet<&str> = commands
        .iter()
        .filter_map(|c| match c {
            Command::UpdatePayment { payment, .. } | Command::ConvergePayment { payment, .. } => Some(payment.as_str()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let set = id_set(conn.dialect(), ids.iter().copied());
    let sql = format!(
        "SELECT {}, amount_refunded, dispute_id, dispute_status, credits_clawed_back, frozen_target \
         FROM payments WHERE id IN (SELECT column1 FROM {} AS v)",
        billing::PAYMENT_COLUMNS,
        set.sql(1).0
    );
    let mut records: BTreeMap<String, PaymentRecord> = BTreeMap::new();
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let payment = billing::payment_row(&row)?;
            // A payment's customer is locked: the batch named it before locking.
            if !book.customers.contains_key(&payment.customer) {
                continue;
            }
            let record = PaymentRecord {
                amount_refunded: row.try_get("amount_refunded")?,
                dispute_id: row.try_get("dispute_id")?,
                dispute_status: row.try_get("dispute_status")?,
                clawed_back: Credits::from_micros(row.try_get("credits_clawed_back")?),
                frozen_target: Credits::from_micros(row.try_get("frozen_target")?),
                freezes: Vec::new(),
                payment,
            };
            records.insert(record.payment.id.clone(), record);
        }
    });
    let sql = format!(
        "SELECT f.payment_id, f.customer_id, f.grant_id, f.amount, g.priority, g.expires_at, g.seq \
         FROM freezes f JOIN grants g ON g.id = f.grant_id \
         WHERE f.payment_id IN (SELECT column1 FROM {} AS v) ORDER BY f.seq",
        set.sql(1).0
    );
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let payment: String = row.try_get(0)?;
            let Some(record) = records.get_mut(&payment) else {
                continue;
            };
            record.freezes.push(Freeze {
                payment,
                customer: row.try_get(1)?,
                lot: Lot {
                    grant_id: row.try_get(2)?,
                    remaining: Credits::ZERO,
                    priority: row.try_get::<i64, _>(4)? as i32,
                    expires_at: row.try_get(5)?,
                    seq: row.try_get(6)?,
                },
                amount: Credits::from_micros(row.try_get(3)?),
            });
        }
    });
    book.facts.payments.extend(records);
    Ok(())
}

/// The allowances of the subscriptions (and invoices) the commands name, and what the
/// expire entries of their grants took so far.
async fn allowances(conn: &mut Conn<'_>, commands: &[&Command], book: &mut Book) -> Result<()> {
    let named: Vec<(&str, &str)> = commands
        .iter()
        .filter_map(|c| match c {
            Command::GrantAllowance(a) => Some((a.subscription.as_str(), a.invoice.as_str())),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let mut set = RowSet::new(conn.dialect(), &[Ty::Text, Ty::Text]);
    for (subscription, invoice) in &named {
        set.push([(*subscription).into(), (*invoice).into()]);
    }
    let source = set.sql(1).0;
    let sql = format!(
        "SELECT a.invoice_id, a.subscription_id, a.customer_id, a.grant_id, a.credits, a.period_start, a.period_end, \
         (SELECT CAST(COALESCE(SUM(-e.amount), 0) AS BIGINT) FROM ledger_entries e \
           WHERE e.grant_id = a.grant_id AND e.kind = 'expire') \
         FROM allowances a WHERE a.subscription_id IN (SELECT column1 FROM {source} AS v) \
         OR a.invoice_id IN (SELECT column2 FROM {source} AS w)"
    );
    let mut seen = HashSet::new();
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let record = AllowanceRecord {
                invoice: row.try_get(0)?,
                subscription: row.try_get(1)?,
                customer: row.try_get(2)?,
                grant: row.try_get(3)?,
                credits: Credits::from_micros(row.try_get(4)?),
                period_start: row.try_get(5)?,
                period_end: row.try_get(6)?,
            };
            if !seen.insert(record.invoice.clone()) {
                continue;
            }
            if let Some(grant) = &record.grant {
                book.facts
                    .expired
                    .insert(grant.clone(), Credits::from_micros(row.try_get(7)?));
            }
            book.facts.allowances.push(record);
        }
    });
    Ok(())
}

/// Hold ids a batch finished, for the cache's index of open holds.
pub(crate) fn finished_holds(book: &Book) -> Vec<&str> {
    let changes = &book.changes;
    changes
        .holds_finished
        .iter()
        .chain(changes.holds_placed.iter())
        .filter(|h| h.status != HoldStatus::Open)
        .map(|h| h.id.as_str())
        .collect()
}
