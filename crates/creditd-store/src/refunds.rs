//! Refunds and disputes: a paid payment's credits converge to what Stripe's money says.
//!
//! The arithmetic is stateless: from the refunded amount and the dispute, compute how many of
//! the payment's credits should be clawed back and how many frozen, compare with what was
//! done before, and write only the difference — in one transaction under the customer's row
//! lock. Duplicated, reordered or missed events cannot change the result, only delay it.

use creditd_domain::command::NewGrant;
use creditd_domain::money::PaymentStatus;
use creditd_domain::outbound::EventType;
use creditd_domain::views::Payment;
use creditd_domain::{Credits, GrantSource, Lot};
use sqlx::{AnyConnection, Row};

use crate::apply::{grant_into, lock_account, save_account, write_movements, write_taken, EntryContext, Locked};
use crate::outbox;
use crate::{Result, Store, StoreError};

/// Stripe's current view of a payment's money.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MoneyState {
    /// Cumulative over every refund that has not failed (the charge's `amount_refunded`).
    pub amount_refunded: i64,
    /// The newest refund, referenced by the entries a refund causes.
    pub latest_refund: Option<String>,
    pub dispute: Option<DisputeState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisputeState {
    pub id: String,
    /// Stripe's dispute status: `needs_response`, `under_review`, `won`, `lost`, `warning_*`.
    pub status: String,
    pub amount: i64,
}

impl DisputeState {
    pub fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "needs_response" | "under_review" | "warning_needs_response" | "warning_under_review"
        )
    }
}

/// What a convergence changed, in credits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Convergence {
    pub clawed_back: Credits,
    pub restored: Credits,
    pub frozen: Credits,
    pub unfrozen: Credits,
}

impl Convergence {
    pub fn changed(&self) -> bool {
        *self != Convergence::default()
    }
}

/// `credits × part / whole`, rounded down: rounding never takes more than was granted.
pub fn proportional(credits: Credits, part: i64, whole: i64) -> Credits {
    assert!(whole > 0 && part >= 0, "a proportion of a positive whole");
    let part = part.min(whole);
    let micros = i128::from(credits.micros()) * i128::from(part) / i128::from(whole);
    Credits::from_micros(micros as i64)
}

/// (clawed back, frozen) targets for a payment in this state.
pub fn targets(payment: &Payment, state: &MoneyState) -> (Credits, Credits) {
    let lost = state
        .dispute
        .as_ref()
        .filter(|d| d.status == "lost")
        .map_or(0, |d| d.amount);
    let clawed = proportional(
        payment.credits,
        state.amount_refunded.saturating_add(lost),
        payment.amount,
    );
    let frozen = match &state.dispute {
        Some(d) if d.is_open() => {
            let wanted = proportional(payment.credits, d.amount, payment.amount);
            wanted.min(Credits::from_micros(payment.credits.micros() - clawed.micros()))
        }
        _ => Credits::ZERO,
    };
    (clawed, frozen)
}

impl Store {
    /// Brings a succeeded payment's credits to `state`. A payment not (yet) succeeded is left
    /// alone: its fulfilment comes first.
    pub async fn converge_payment(&self, payment_id: &str, state: &MoneyState, now: i64) -> Result<Convergence> {
        let mut tx = self.writer.begin().await?;
        let locked_rows = sqlx::query("UPDATE payments SET updated_at = $2 WHERE id = $1")
            .bind(payment_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked_rows != 1 {
            return Err(StoreError::Corrupt(format!("no payment {payment_id}")));
        }
        let payment = self.payment_on(&mut tx, payment_id).await?;
        if payment.status != PaymentStatus::Succeeded {
            tx.rollback().await?;
            return Ok(Convergence::default());
        }
        let row = sqlx::query(
            "SELECT credits_clawed_back, frozen_target, amount_refunded, dispute_id, dispute_status FROM payments WHERE id = $1",
        )
            .bind(payment_id)
            .fetch_one(&mut *tx)
            .await?;
        let clawed_now = Credits::from_micros(row.try_get(0)?);
        let frozen_target_now = Credits::from_micros(row.try_get(1)?);
        let before = Before {
            amount_refunded: row.try_get(2)?,
            dispute: row.try_get::<Option<String>, _>(3)?.zip(row.try_get::<Option<String>, _>(4)?),
        };
        let (clawed_target, frozen_target) = targets(&payment, state);
        let purchase_grant = payment.grant.clone();
        let mut locked = lock_account(&mut tx, &payment.customer, now).await?;
        let mut done = Convergence::default();
        let dispute_ref = state.dispute.as_ref().map(|d| d.id.clone());
        let metadata = serde_json::json!({ "payment": payment.id, "payment_intent": payment.payment_intent });
        if frozen_target != frozen_target_now {
            done.unfrozen = unfreeze_all(
                &mut tx,
                &mut locked,
                &payment.id,
                dispute_ref.as_deref(),
                &metadata,
                now,
            )
            .await?;
        }
        let delta = clawed_target.micros() - clawed_now.micros();
        if delta > 0 {
            // A lost dispute is the newer cause when both apply.
            let reference = match &state.dispute {
                Some(d) if d.status == "lost" => Some(d.id.clone()),
                _ => state.latest_refund.clone(),
            };
            let context = EntryContext {
                reference: reference.as_deref(),
                feature: None,
                metadata: Some(&metadata),
            };
            let taken = locked
                .account
                .clawback(purchase_grant.as_deref(), Credits::from_micros(delta), now);
            let entries = write_taken(&mut tx, &payment.customer, &taken, &context, now).await?;
            done.clawed_back = Credits::from_micros(delta);
            let data = serde_json::json!({
                "object": "clawback", "customer": payment.customer, "payment": payment.id,
                "amount": done.clawed_back, "reference": reference, "entries": entries,
            });
            outbox::emit(&mut tx, EventType::CreditsClawedBack, Some(&payment.customer), &data, now).await?;
        } else if delta < 0 {
            // A refund failed: the credits it took come back, as a grant of their own.
            let restore = NewGrant {
                customer: payment.customer.clone(),
                amount: Credits::from_micros(-delta),
                priority: creditd_domain::account::DEFAULT_PRIORITY,
                expires_at: None,
                source: GrantSource::Purchase,
                reason: Some(format!("refund of {} failed: credits restored", payment.id)),
                reference: None,
            };
            grant_into(&mut tx, &mut locked, &restore, now).await?;
            done.restored = Credits::from_micros(-delta);
        }
        if frozen_target != frozen_target_now && frozen_target.is_positive() {
            let context = EntryContext {
                reference: dispute_ref.as_deref(),
                feature: None,
                metadata: Some(&metadata),
            };
            let movements = locked.account.freeze(purchase_grant.as_deref(), frozen_target, now);
            write_movements(&mut tx, &payment.customer, &movements, &context, now).await?;
            for m in &movements {
                sqlx::query(
                    "INSERT INTO freezes (payment_id, customer_id, grant_id, amount, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&payment.id)
                .bind(&payment.customer)
                .bind(&m.grant_id)
                .bind(-m.amount.micros())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                done.frozen = Credits::from_micros(done.frozen.micros() - m.amount.micros());
            }
        }
        sqlx::query(
            "UPDATE payments SET amount_refunded = $2, dispute_id = $3, dispute_status = $4, \
             credits_clawed_back = $5, frozen_target = $6 WHERE id = $1",
        )
        .bind(&payment.id)
        .bind(state.amount_refunded)
        .bind(state.dispute.as_ref().map(|d| d.id.clone()))
        .bind(state.dispute.as_ref().map(|d| d.status.clone()))
        .bind(clawed_target.micros())
        .bind(frozen_target.micros())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE customers SET frozen = frozen + $2 WHERE id = $1")
            .bind(&payment.customer)
            .bind(done.frozen.micros() - done.unfrozen.micros())
            .execute(&mut *tx)
            .await?;
        save_account(&mut tx, &locked, now).await?;
        money_events(&mut tx, &payment, &before, state, &done, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Payments created since `since`, oldest first (reconciliation re-converges them).
    pub async fn payments_since(&self, since: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {} FROM payments WHERE created_at >= $1 ORDER BY seq",
            crate::billing::PAYMENT_COLUMNS
        );
        let rows = sqlx::query(&sql).bind(since).fetch_all(&self.pool).await?;
        rows.iter().map(crate::billing::payment_row).collect()
    }

    async fn payment_on(&self, conn: &mut AnyConnection, id: &str) -> Result<Payment> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM payments WHERE id = $1",
            crate::billing::PAYMENT_COLUMNS
        ))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        crate::billing::payment_row(&row)
    }
}

/// A payment's money before a convergence.
struct Before {
    amount_refunded: i64,
    /// (dispute id, status)
    dispute: Option<(String, String)>,
}

/// `payment.refunded`, `dispute.created` and `dispute.closed`, for what Stripe's money did.
async fn money_events(
    conn: &mut AnyConnection,
    payment: &Payment,
    before: &Before,
    state: &MoneyState,
    done: &Convergence,
    now: i64,
) -> Result<()> {
    let customer = Some(payment.customer.as_str());
    if state.amount_refunded > before.amount_refunded {
        let mut data = serde_json::to_value(payment).expect("payments serialize");
        data["amount_refunded"] = state.amount_refunded.into();
        data["refund"] = state.latest_refund.clone().into();
        data["credits_clawed_back"] = serde_json::to_value(done.clawed_back).expect("credits serialize");
        outbox::emit(conn, EventType::PaymentRefunded, customer, &data, now).await?;
    }
    let Some(dispute) = &state.dispute else { return Ok(()) };
    let data = serde_json::json!({
        "object": "dispute", "id": dispute.id, "status": dispute.status, "amount": dispute.amount,
        "currency": payment.currency, "payment": payment.id, "customer": payment.customer,
        "credits_frozen": done.frozen, "credits_restored": done.unfrozen, "credits_clawed_back": done.clawed_back,
    });
    let known = before.dispute.as_ref().filter(|(id, _)| *id == dispute.id);
    if known.is_none() {
        outbox::emit(conn, EventType::DisputeCreated, customer, &data, now).await?;
    }
    let was_open = known.is_none_or(|(_, status)| {
        DisputeState { id: dispute.id.clone(), status: status.clone(), amount: dispute.amount }.is_open()
    });
    if was_open && matches!(dispute.status.as_str(), "won" | "lost") {
        outbox::emit(conn, EventType::DisputeClosed, customer, &data, now).await?;
    }
    Ok(())
}

/// Returns every credit frozen for a payment to the grant it came from.
async fn unfreeze_all(
    conn: &mut AnyConnection,
    locked: &mut Locked,
    payment: &str,
    reference: Option<&str>,
    metadata: &serde_json::Value,
    now: i64,
) -> Result<Credits> {
    let freezes = sqlx::query(
        "SELECT f.grant_id, f.amount, g.priority, g.expires_at, g.seq FROM freezes f JOIN grants g ON g.id = f.grant_id \
         WHERE f.payment_id = $1 ORDER BY f.seq",
    )
    .bind(payment)
    .fetch_all(&mut *conn)
    .await?;
    let mut movements = Vec::with_capacity(freezes.len());
    let mut total = 0;
    for row in &freezes {
        let grant_id: String = row.try_get(0)?;
        let amount: i64 = row.try_get(1)?;
        locked.account.load_lot(Lot {
            grant_id: grant_id.clone(),
            remaining: Credits::ZERO,
            priority: row.try_get::<i64, _>(2)? as i32,
            expires_at: row.try_get(3)?,
            seq: row.try_get(4)?,
        });
        movements.push(locked.account.unfreeze(&grant_id, Credits::from_micros(amount)));
        total += amount;
    }
    let context = EntryContext {
        reference,
        feature: None,
        metadata: Some(metadata),
    };
    write_movements(conn, &locked.customer, &movements, &context, now).await?;
    sqlx::query("DELETE FROM freezes WHERE payment_id = $1")
        .bind(payment)
        .execute(&mut *conn)
        .await?;
    // Returned credits pay any debt first, like every credit.
    let settled = locked.account.settle_debt(now);
    write_taken(conn, &locked.customer, &settled, &context, now).await?;
    Ok(Credits::from_micros(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_round_down_and_never_exceed_the_grant() {
        let credits = Credits::from_micros(100_000_000);
        assert_eq!(proportional(credits, 333, 1000).micros(), 33_300_000);
        assert_eq!(proportional(Credits::from_micros(10), 1, 3).micros(), 3);
        assert_eq!(proportional(credits, 5000, 1000), credits, "never more than the whole");
        // Three partial refunds summing to the whole claw back exactly the whole.
        let whole = 999;
        let steps = [333, 666, 999];
        let clawed: Vec<i64> = steps
            .iter()
            .map(|s| proportional(Credits::from_micros(10), *s, whole).micros())
            .collect();
        assert_eq!(clawed, [3, 6, 10]);
    }
}
