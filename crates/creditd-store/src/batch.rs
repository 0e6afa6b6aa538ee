//! Group commit: a batch of requests applied in ONE transaction, one result per request.
//!
//! Idempotency keys are looked up with one read first; replays and mismatches are answered
//! from it. The spend-path commands (usage, holds) of a run of consecutive requests form a
//! *segment*: the segment's customers are locked in sorted order (no deadlock storms between
//! replicas), their accounts loaded once, every command decided in memory by the domain in
//! acceptance order, and the result written as a few multi-row [`Part`]s — entries, new and
//! finished holds, grants, customers, and the new idempotency keys with their results — each
//! its own statement on SQLite, one statement of data-modifying CTEs on PostgreSQL. A refused
//! command writes nothing, so it needs no undo. Other commands (customers, grants, anything
//! new) run through [`run`] inside a `SAVEPOINT`, between segments.
//!
//! A database error anywhere fails the whole batch: it is rolled back and every request gets
//! the error; transient ones (serialization failure, deadlock, SQLite busy, a key another
//! writer stored first) retry the batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use creditd_domain::outbound::AlertState;
use creditd_domain::views::{Entry, Hold, HoldStatus, Usage};
use creditd_domain::{Account, Command, CommandError, Credits, IdKind, Idempotency, Lot, Movement, Outcome, Request};
use sqlx::{AnyConnection, Executor, Row};

use crate::apply::{insufficient, is_recorded, is_transient, run, EntryContext, MAX_ATTEMPTS};
use crate::pipeline::Order;
use crate::rows::{self, HOLD_COLUMNS};
use crate::crossing::Crossings;
use crate::parts::{id_set, run_parts, Part};
use crate::rowset::{RowSet, Ty, Val};
use crate::{Dialect, Result, Store, StoreError};

/// Rows per multi-row statement: far below both databases' parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Applies a batch in one transaction and returns each request's result, in order. A
    /// refused command affects only its own result; requests sharing an idempotency key get
    /// the first one's result. A database error gives every request an error and writes
    /// nothing.
    pub async fn apply(&self, batch: Vec<Request>, now: i64) -> Vec<Result<Outcome>> {
        self.apply_in_order(batch, now, None).await
    }

    /// [`Store::apply`] for a batch of the pipelined writer: it commits only after the batch
    /// before it ([`crate::pipeline`]).
    pub(crate) async fn apply_in_order(
        &self,
        batch: Vec<Request>,
        now: i64,
        mut order: Option<&mut Order>,
    ) -> Vec<Result<Outcome>> {
        let results = self.apply_attempts(&batch, now, order.as_deref_mut()).await;
        if let Some(order) = order {
            order.done();
        }
        results
    }

    async fn apply_attempts(&self, batch: &[Request], now: i64, mut order: Option<&mut Order>) -> Vec<Result<Outcome>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let mut attempt = 1;
        let mut restarts = 0;
        loop {
            if let Some(order) = order.as_deref_mut() {
                order.attempt(attempt + restarts).await;
            }
            match self.try_apply_batch(batch, now, order.as_deref_mut()).await {
                Ok(results) => return results,
                Err(StoreError::Restart) => {
                    // The batch before this one is trying again: follow it, without counting
                    // this as a failure of our own.
                    restarts += 1;
                    if let Some(order) = order.as_deref_mut() {
                        order.wait_prev_done().await;
                    }
                }
                Err(e) if attempt < MAX_ATTEMPTS as u32 && is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, size = batch.len(), "retrying batch");
                    tokio::time::sleep(std::time::Duration::from_millis(1 << attempt)).await;
                    attempt += 1;
                }
                Err(e) if batch.len() == 1 => return vec![Err(e)],
                Err(e) => {
                    tracing::warn!(error = %e, size = batch.len(), "batch failed; nothing of it was written");
                    let shared = Arc::new(e);
                    return batch.iter().map(|_| Err(StoreError::Batch(shared.clone()))).collect();
                }
            }
        }
    }

    /// One transaction; rolled back explicitly on any error so its locks go at once.
    async fn try_apply_batch(
        &self,
        batch: &[Request],
        now: i64,
        order: Option<&mut Order>,
    ) -> Result<Vec<Result<Outcome>>> {
        let mut tx = self.batches.begin().await?;
        match self.decide_and_write(&mut tx, batch, now, order).await {
            Ok(results) => {
                tx.commit().await?;
                Ok(results)
            }
            Err(e) => {
                tx.rollback().await.ok();
                Err(e)
            }
        }
    }

    async fn decide_and_write(
        &self,
        tx: &mut AnyConnection,
        batch: &[Request],
        now: i64,
        order: Option<&mut Order>,
    ) -> Result<Vec<Result<Outcome>>> {
        let mut results: Vec<Option<Result<Outcome>>> = batch.iter().map(|_| None).collect();
        let keys = lookup_keys(tx, self.dialect, batch, &mut results).await?;
        // Only a batch of spend-path commands takes all its locks in one statement; any other
        // lets the next batch start only once it is done.
        let one_lock = batch.iter().all(|r| is_fast(&r.command));
        let mut segment = Vec::new();
        for (i, request) in batch.iter().enumerate() {
            if results[i].is_some() || matches!(keys[i], Key::SameAs(_)) {
                continue;
            }
            if is_fast(&request.command) {
                segment.push(i);
                continue;
            }
            self.run_segment(tx, batch, &mut segment, now, &mut results, None)
                .await?;
            results[i] = Some(run_alone(tx, &request.command, now).await?);
        }
        let locked = if one_lock { order.as_deref() } else { None };
        if self.dialect == Dialect::Postgres && one_lock {
            // Everything the batch writes, keys included, in one statement: one round trip
            // less while the customers' rows are locked. Written once the batch before this
            // one is done (see `crate::pipeline`).
            let state = self
                .decide_segment(tx, batch, &segment, now, &mut results, locked)
                .await?;
            if let Some(order) = order {
                order.before_commit().await?;
            }
            let key_writes = key_parts(self.dialect, batch, &keys, &results, usize::MAX);
            match state {
                Some(state) => state.flush(tx, now, key_writes).await?,
                None => run_parts(tx, self.dialect, key_writes, now).await?,
            }
        } else {
            self.run_segment(tx, batch, &mut segment, now, &mut results, locked)
                .await?;
            if let Some(order) = order {
                order.before_commit().await?;
            }
            let key_writes = key_parts(self.dialect, batch, &keys, &results, ROWS_PER_STATEMENT);
            run_parts(tx, self.dialect, key_writes, now).await?;
        }
        let mut done: Vec<Result<Outcome>> = Vec::with_capacity(batch.len());
        for (i, result) in results.into_iter().enumerate() {
            let result = match keys[i] {
                Key::SameAs(first) => replay(&done[first]),
                _ => result.ok_or_else(|| StoreError::Corrupt("a request of the batch got no result".into()))?,
            };
            done.push(result);
        }
        Ok(done)
    }

    async fn run_segment(
        &self,
        conn: &mut AnyConnection,
        batch: &[Request],
        segment: &mut Vec<usize>,
        now: i64,
        results: &mut [Option<Result<Outcome>>],
        locked: Option<&Order>,
    ) -> Result<()> {
        if let Some(state) = self.decide_segment(conn, batch, segment, now, results, locked).await? {
            state.flush(conn, now, Vec::new()).await?;
        }
        segment.clear();
        Ok(())
    }

    /// Locks and loads the segment's accounts and decides its commands; nothing written yet.
    async fn decide_segment(
        &self,
        conn: &mut AnyConnection,
        batch: &[Request],
        segment: &[usize],
        now: i64,
        results: &mut [Option<Result<Outcome>>],
        locked: Option<&Order>,
    ) -> Result<Option<Segment>> {
        if segment.is_empty() {
            return Ok(None);
        }
        let commands: Vec<&Command> = segment.iter().map(|&i| &batch[i].command).collect();
        let mut state = Segment::load(conn, self.dialect, &commands, now).await?;
        if let Some(order) = locked {
            order.locked();
        }
        for (&i, command) in segment.iter().zip(&commands) {
            let result = state.decide(command, now);
            if let Ok(outcome) = &result {
                state.observe(outcome);
            }
            results[i] = Some(result);
        }
        Ok(Some(state))
    }
}

/// Errors after which the whole batch is tried again: nothing of it was written.
fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(e) => is_transient(e),
        StoreError::KeyRace => true,
        _ => false,
    }
}

/// The commands decided in memory; everything else goes through [`run`].
fn is_fast(command: &Command) -> bool {
    matches!(
        command,
        Command::Usage(_) | Command::CreateHold(_) | Command::CaptureHold { .. } | Command::ReleaseHold { .. }
    )
}

/// One command inside a savepoint: a refusal that is not replayed undoes what it wrote; a
/// database error fails the batch.
async fn run_alone(conn: &mut AnyConnection, command: &Command, now: i64) -> Result<Result<Outcome>> {
    conn.execute("SAVEPOINT creditd_command").await?;
    let result = run(conn, command, now).await;
    match &result {
        Ok(_) => {}
        Err(StoreError::Command(e)) if is_recorded(e) => {}
        Err(StoreError::Command(_)) => {
            conn.execute("ROLLBACK TO SAVEPOINT creditd_command").await?;
        }
        Err(_) => return result.map(Ok),
    }
    conn.execute("RELEASE SAVEPOINT creditd_command").await?;
    Ok(result)
}

fn replay(first: &Result<Outcome>) -> Result<Outcome> {
    match first {
        Ok(outcome) => Ok(outcome.clone()),
        Err(StoreError::Command(e)) => Err(StoreError::Command(e.clone())),
        Err(other) => Err(StoreError::Corrupt(format!("replayed a failed request: {other}"))),
    }
}

/// How a request's idempotency key stands in this batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// No key, or its result is already known (replayed from an earlier batch).
    None,
    /// Not used before: its result is stored with the batch's writes.
    New,
    /// The same key as an earlier request of this batch: gets that request's result.
    SameAs(usize),
}

/// Looks up every key of the batch with one read; fills in the results of keys used before
/// (replays and mismatched fingerprints). Nothing is written here: a key is stored once, with
/// its result, at the end of the batch ([`record_keys`]).
async fn lookup_keys(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[Request],
    results: &mut [Option<Result<Outcome>>],
) -> Result<Vec<Key>> {
    let mut keys = vec![Key::None; batch.len()];
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut to_check: Vec<(usize, &Idempotency)> = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        let Some(idem) = &request.idempotency else { continue };
        match first_of.get(&(idem.scope.as_str(), idem.key.as_str())) {
            Some(&first) if batch[first].idempotency.as_ref().map(|f| &f.fingerprint) == Some(&idem.fingerprint) => {
                keys[i] = Key::SameAs(first);
            }
            Some(_) => results[i] = Some(Err(CommandError::IdempotencyKeyReused.into())),
            None => {
                first_of.insert((&idem.scope, &idem.key), i);
                to_check.push((i, idem));
            }
        }
    }
    let mut stored: HashMap<(String, String), (String, Option<String>)> = HashMap::new();
    for chunk in to_check.chunks(ROWS_PER_STATEMENT) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text]);
        for (_, idem) in chunk {
            rows.push([idem.scope.as_str().into(), idem.key.as_str().into()]);
        }
        let sql = format!(
            "SELECT k.scope, k.key, k.fingerprint, k.outcome FROM {} AS v \
             JOIN idempotency_keys k ON k.scope = v.column1 AND k.key = v.column2",
            rows.sql(1).0
        );
        for row in rows.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            stored.insert((row.try_get(0)?, row.try_get(1)?), (row.try_get(2)?, row.try_get(3)?));
        }
    }
    for (i, idem) in to_check {
        match stored.remove(&(idem.scope.clone(), idem.key.clone())) {
            None => keys[i] = Key::New,
            Some((fingerprint, outcome)) => {
                results[i] = Some(stored_result(idem, &fingerprint, outcome.as_deref())?.map_err(StoreError::Command));
            }
        }
    }
    Ok(keys)
}

/// The result a key got in an earlier (committed) transaction.
fn stored_result(
    idem: &Idempotency,
    fingerprint: &str,
    outcome: Option<&str>,
) -> Result<std::result::Result<Outcome, CommandError>> {
    if fingerprint != idem.fingerprint {
        return Ok(Err(CommandError::IdempotencyKeyReused));
    }
    // A key is only ever committed together with its result.
    let outcome = outcome.ok_or_else(|| StoreError::Corrupt("idempotency key without a result".into()))?;
    serde_json::from_str(outcome).map_err(|e| StoreError::Corrupt(format!("stored idempotent result unreadable: {e}")))
}

/// The keys of this batch with their results, to store with the batch's writes. Keys whose
/// request failed in a way that is not replayed are not stored, so a retry can succeed. A
/// key another writer committed since [`lookup_keys`] read is a race ([`Part::race`]): the
/// batch is rolled back and retried, and the retry replays that writer's result.
fn key_parts(
    dialect: Dialect,
    batch: &[Request],
    keys: &[Key],
    results: &[Option<Result<Outcome>>],
    per_part: usize,
) -> Vec<Part> {
    let mut keep: Vec<(&Idempotency, String)> = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        let (Key::New, Some(idem), Some(result)) = (keys[i], &request.idempotency, &results[i]) else {
            continue;
        };
        let recorded: std::result::Result<&Outcome, &CommandError> = match result {
            Ok(outcome) => Ok(outcome),
            Err(StoreError::Command(e)) if is_recorded(e) => Err(e),
            Err(_) => continue,
        };
        keep.push((idem, serde_json::to_string(&recorded).expect("outcomes serialize")));
    }
    let mut parts = Vec::new();
    for chunk in keep.chunks(per_part) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Text, Ty::Text]);
        for (idem, outcome) in chunk {
            rows.push([
                idem.scope.as_str().into(),
                idem.key.as_str().into(),
                idem.fingerprint.as_str().into(),
                outcome.as_str().into(),
            ]);
        }
        parts.push(Part {
            what: "idempotency keys stored",
            rows,
            // `WHERE true`: SQLite needs it before an upsert clause on an `INSERT … SELECT`.
            sql: |source, now| {
                format!(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, ${now} FROM {source} AS v WHERE true \
                     ON CONFLICT (scope, key) DO NOTHING"
                )
            },
            rows_expected: chunk.len(),
            race: true,
            at_most: false,
        });
    }
    parts
}

/// A hold the segment may capture or release.
struct HoldState {
    hold: Hold,
    metadata: serde_json::Value,
    changed: bool,
}

/// A hold created in the segment, inserted at the flush.
struct NewHoldRow {
    hold: Hold,
    metadata: String,
}

/// The locked accounts of one segment and everything decided on them, not yet written.
struct Segment {
    dialect: Dialect,
    accounts: BTreeMap<String, Account>,
    /// Each loaded grant's remaining at load time: grants that differ at the flush are written.
    loaded: HashMap<String, i64>,
    /// Hold id → its customer, for captures and releases.
    hold_owner: HashMap<String, String>,
    holds: HashMap<String, HoldState>,
    new_holds: Vec<NewHoldRow>,
    entries: Vec<Entry>,
    /// Low-balance alerts and auto top-ups the segment's commands raise.
    crossings: Crossings,
}

impl Segment {
    /// Locks the commands' customers in sorted order and loads their accounts, with lapsed
    /// holds and grants swept as [`crate::apply`]'s `lock_account` does for one customer.
    async fn load(conn: &mut AnyConnection, dialect: Dialect, commands: &[&Command], now: i64) -> Result<Segment> {
        let hold_ids: BTreeSet<&str> = commands
            .iter()
            .filter_map(|c| match c {
                Command::CaptureHold { hold, .. } | Command::ReleaseHold { hold } => Some(hold.as_str()),
                _ => None,
            })
            .collect();
        let mut hold_owner = HashMap::new();
        if !hold_ids.is_empty() {
            let ids = id_set(dialect, hold_ids.iter().copied());
            let sql = format!(
                "SELECT id, customer_id FROM holds WHERE id IN (SELECT column1 FROM {} AS v)",
                ids.sql(1).0
            );
            for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
                hold_owner.insert(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
            }
        }
        let customers: BTreeSet<String> = commands
            .iter()
            .filter_map(|c| c.customer().map(str::to_string))
            .chain(hold_owner.values().cloned())
            .collect();
        let mut segment = Segment {
            dialect,
            accounts: BTreeMap::new(),
            loaded: HashMap::new(),
            hold_owner,
            holds: HashMap::new(),
            new_holds: Vec::new(),
            entries: Vec::new(),
            crossings: Crossings::default(),
        };
        if customers.is_empty() {
            return Ok(segment);
        }
        // PostgreSQL: row locks taken in id order. SQLite: the first write takes the database.
        let ids = id_set(dialect, customers.iter().map(String::as_str));
        let (source, now_param) = ids.sql(1);
        let lock_sql = match dialect {
            Dialect::Postgres => format!(
                "SELECT c.id, c.balance, c.held, c.debt, c.low_balance_threshold, c.balance_alert, a.threshold \
                 FROM customers c LEFT JOIN auto_topups a ON a.customer_id = c.id AND a.enabled = 1 AND a.armed = 1 \
                 WHERE c.id IN (SELECT column1 FROM {source} AS v) ORDER BY c.id FOR UPDATE OF c"
            ),
            Dialect::Sqlite => format!(
                "UPDATE customers SET updated_at = ${now_param} WHERE id IN (SELECT column1 FROM {source} AS v) \
                 RETURNING id, balance, held, debt, low_balance_threshold, balance_alert, NULL"
            ),
        };
        let mut query = ids.bind(sqlx::query(&lock_sql));
        if dialect == Dialect::Sqlite {
            query = query.bind(now);
        }
        let mut balances: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for row in query.fetch_all(&mut *conn).await? {
            let id: String = row.try_get(0)?;
            let alert: String = row.try_get(5)?;
            let alert = AlertState::parse(&alert).ok_or_else(|| StoreError::Corrupt(format!("unknown alert state {alert:?}")))?;
            let threshold = row.try_get::<Option<i64>, _>(4)?.map(Credits::from_micros);
            let topup = row.try_get::<Option<i64>, _>(6)?.map(Credits::from_micros);
            segment.crossings.watch(&id, alert, threshold, topup);
            balances.insert(id, (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?));
        }
        if balances.is_empty() {
            return Ok(segment);
        }
        let found = id_set(dialect, balances.keys().map(String::as_str));
        if dialect == Dialect::Sqlite {
            // (PostgreSQL reads them with the lock above.) SQLite's `RETURNING` cannot join.
            segment.load_topups(conn, &found).await?;
        }
        let (source, now_param) = found.sql(1);
        let lots_sql = format!(
            "SELECT customer_id, id, remaining, priority, expires_at, seq FROM grants \
             WHERE customer_id IN (SELECT column1 FROM {source} AS v) AND remaining > 0"
        );
        let query = found.bind(sqlx::query(&lots_sql));
        let mut lots: BTreeMap<String, Vec<Lot>> = BTreeMap::new();
        for row in query.fetch_all(&mut *conn).await? {
            let lot = Lot {
                grant_id: row.try_get(1)?,
                remaining: Credits::from_micros(row.try_get(2)?),
                priority: row.try_get::<i64, _>(3)? as i32,
                expires_at: row.try_get(4)?,
                seq: row.try_get(5)?,
            };
            segment.loaded.insert(lot.grant_id.clone(), lot.remaining.micros());
            lots.entry(row.try_get(0)?).or_default().push(lot);
        }
        let sweep_sql = format!(
            "UPDATE holds SET status = 'expired', updated_at = ${now_param} \
             WHERE customer_id IN (SELECT column1 FROM {source} AS v) AND status = 'open' \
             AND expires_at <= ${now_param} RETURNING customer_id, amount"
        );
        let mut expired_holds: HashMap<String, i64> = HashMap::new();
        // `held` is the sum of the open holds (each > 0): with none held there is nothing to sweep.
        if balances.values().any(|&(_, held, _)| held > 0) {
            let query = found.bind(sqlx::query(&sweep_sql)).bind(now);
            for row in query.fetch_all(&mut *conn).await? {
                *expired_holds.entry(row.try_get(0)?).or_default() += row.try_get::<i64, _>(1)?;
            }
        }
        for (customer, (balance, held, debt)) in balances {
            let lots = lots.remove(&customer).unwrap_or_default();
            let sum: i64 = lots.iter().map(|l| l.remaining.micros()).sum();
            if sum - debt != balance || held < 0 || debt < 0 {
                return Err(StoreError::Corrupt(format!(
                    "customer {customer}: balance {balance} but grants hold {sum} less debt {debt} (held {held})"
                )));
            }
            // Debt does not change on the spend path (it only refuses spending), so it is not written back.
            let mut account = Account::with_debt(
                Credits::from_micros(balance),
                Credits::from_micros(held),
                Credits::from_micros(debt),
                lots,
            );
            if let Some(&amount) = expired_holds.get(&customer) {
                account.release(Credits::from_micros(amount));
            }
            let expired = account.expire_due(now);
            let entries = segment.push_entries(&customer, &expired, &EntryContext::default(), now);
            segment.crossings.expired(&customer, &entries);
            segment.accounts.insert(customer, account);
        }
        segment.load_holds(conn, &hold_ids).await?;
        Ok(segment)
    }

    /// The auto top-up thresholds of the segment's customers that have one enabled and armed.
    async fn load_topups(&mut self, conn: &mut AnyConnection, customers: &RowSet) -> Result<()> {
        let sql = format!(
            "SELECT customer_id, threshold FROM auto_topups WHERE enabled = 1 AND armed = 1 \
             AND customer_id IN (SELECT column1 FROM {} AS v)",
            customers.sql(1).0
        );
        for row in customers.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            let customer: String = row.try_get(0)?;
            self.crossings.arm_topup(&customer, Credits::from_micros(row.try_get(1)?));
        }
        Ok(())
    }

    /// The holds to capture or release, read after the sweep: their status is final here.
    async fn load_holds(&mut self, conn: &mut AnyConnection, ids: &BTreeSet<&str>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let set = id_set(self.dialect, ids.iter().copied());
        let sql = format!(
            "SELECT {HOLD_COLUMNS}, metadata FROM holds WHERE id IN (SELECT column1 FROM {} AS v)",
            set.sql(1).0
        );
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            let hold = rows::hold(&row)?;
            let metadata = rows::metadata(&row.try_get::<String, _>("metadata")?);
            self.holds.insert(
                hold.id.clone(),
                HoldState {
                    hold,
                    metadata,
                    changed: false,
                },
            );
        }
        Ok(())
    }

    fn push_entries(
        &mut self,
        customer: &str,
        movements: &[Movement],
        context: &EntryContext<'_>,
        now: i64,
    ) -> Vec<Entry> {
        let made: Vec<Entry> = movements.iter().map(|m| context.entry(customer, m, now)).collect();
        self.entries.extend(made.iter().cloned());
        made
    }

    fn account(&mut self, customer: &str) -> Result<&mut Account> {
        self.accounts
            .get_mut(customer)
            .ok_or_else(|| CommandError::CustomerNotFound(customer.to_string()).into())
    }

    /// The alerts and top-ups a decided command raises.
    fn observe(&mut self, outcome: &Outcome) {
        let customer = match outcome {
            Outcome::Usage(u) => &u.customer,
            Outcome::Hold(h) => &h.customer,
            _ => return,
        };
        if let Some(account) = self.accounts.get(customer) {
            self.crossings.observe(customer, account);
        }
    }

    /// The domain's decision on one command, against the state left by the commands before it.
    fn decide(&mut self, command: &Command, now: i64) -> Result<Outcome> {
        match command {
            Command::Usage(new) => {
                let account = self.account(&new.customer)?;
                let movements = account
                    .debit(new.amount, now)
                    .map_err(|e| insufficient(account, new.amount, e))?;
                let (balance, available) = (account.balance, account.available());
                let id = IdKind::Usage.new_id();
                let context = EntryContext {
                    reference: Some(&id),
                    feature: Some(&new.feature),
                    metadata: Some(&new.metadata),
                };
                let entries = self.push_entries(&new.customer, &movements, &context, now);
                Ok(Outcome::Usage(Usage {
                    id,
                    customer: new.customer.clone(),
                    amount: new.amount,
                    feature: new.feature.clone(),
                    balance,
                    available,
                    entries,
                    created: now,
                }))
            }
            Command::CreateHold(new) => {
                let account = self.account(&new.customer)?;
                account
                    .hold(new.amount)
                    .map_err(|e| insufficient(account, new.amount, e))?;
                let hold = Hold {
                    id: IdKind::Hold.new_id(),
                    customer: new.customer.clone(),
                    amount: new.amount,
                    status: HoldStatus::Open,
                    captured: None,
                    feature: new.feature.clone(),
                    expires_at: now.saturating_add(new.ttl_seconds),
                    created: now,
                    balance: account.balance,
                    available: account.available(),
                    entries: Vec::new(),
                };
                self.new_holds.push(NewHoldRow {
                    hold: hold.clone(),
                    metadata: new.metadata.to_string(),
                });
                Ok(Outcome::Hold(hold))
            }
            Command::CaptureHold { hold, amount, feature } => self
                .finish_hold(hold, Some((*amount, feature.as_deref())), now)
                .map(Outcome::Hold),
            Command::ReleaseHold { hold } => self.finish_hold(hold, None, now).map(Outcome::Hold),
            other => Err(StoreError::Corrupt(format!("not a spend-path command: {other:?}"))),
        }
    }

    fn finish_hold(
        &mut self,
        hold_id: &str,
        capture: Option<(Option<Credits>, Option<&str>)>,
        now: i64,
    ) -> Result<Hold> {
        let not_found = || StoreError::Command(CommandError::HoldNotFound(hold_id.to_string()));
        let customer = self.hold_owner.get(hold_id).cloned().ok_or_else(not_found)?;
        let mut state = self.holds.remove(hold_id).ok_or_else(not_found)?;
        let result = self.finish_loaded_hold(&customer, &mut state, capture, now);
        self.holds.insert(hold_id.to_string(), state);
        result
    }

    fn finish_loaded_hold(
        &mut self,
        customer: &str,
        state: &mut HoldState,
        capture: Option<(Option<Credits>, Option<&str>)>,
        now: i64,
    ) -> Result<Hold> {
        if state.hold.status != HoldStatus::Open {
            return Err(CommandError::HoldNotOpen {
                status: state.hold.status.as_str().into(),
            }
            .into());
        }
        let held = state.hold.amount;
        let account = self.account(customer)?;
        let mut entries = Vec::new();
        match capture {
            Some((amount, feature)) => {
                let amount = amount.unwrap_or(held);
                let movements = account
                    .capture(held, amount, now)
                    .map_err(|e| insufficient(account, amount, e))?;
                let feature = feature.map(str::to_string).or(state.hold.feature.clone());
                let context = EntryContext {
                    reference: Some(&state.hold.id),
                    feature: feature.as_deref(),
                    metadata: Some(&state.metadata),
                };
                entries = self.push_entries(customer, &movements, &context, now);
                state.hold.feature = feature;
                state.hold.status = HoldStatus::Captured;
                state.hold.captured = Some(amount);
            }
            None => {
                account.release(held);
                state.hold.status = HoldStatus::Released;
            }
        }
        let account = self.account(customer)?;
        let mut hold = state.hold.clone();
        hold.balance = account.balance;
        hold.available = account.available();
        hold.entries = entries;
        state.changed = true;
        Ok(hold)
    }

    /// Writes what the segment decided — entries, new and finished holds, grants, customers —
    /// and `more` with them.
    async fn flush(&self, conn: &mut AnyConnection, now: i64, more: Vec<Part>) -> Result<()> {
        // Array parameters on PostgreSQL: any number of rows in one part.
        let per_part = match self.dialect {
            Dialect::Sqlite => ROWS_PER_STATEMENT,
            Dialect::Postgres => usize::MAX,
        };
        let mut parts = self.parts(per_part);
        parts.extend(self.crossings.parts(conn, self.dialect).await?);
        parts.extend(more);
        run_parts(conn, self.dialect, parts, now).await
    }

    /// The segment's writes, at most `per_part` rows each.
    fn parts(&self, per_part: usize) -> Vec<Part> {
        let mut parts = Vec::new();
        for chunk in self.entries.chunks(per_part) {
            const TYPES: &[Ty] = &[
                Ty::Text,
                Ty::Text,
                Ty::Text,
                Ty::Text,
                Ty::Int,
                Ty::Int,
                Ty::Text,
                Ty::Text,
                Ty::Text,
            ];
            let mut rows = RowSet::new(self.dialect, TYPES);
            for e in chunk {
                rows.push([
                    e.id.as_str().into(),
                    e.customer.as_str().into(),
                    // The spend path writes usage and expiry entries only: each names its grant.
                    e.grant.as_deref().expect("spend-path entries name their grant").into(),
                    e.kind.as_str().into(),
                    e.amount.micros().into(),
                    e.balance_after.micros().into(),
                    e.reference.as_deref().into(),
                    e.feature.as_deref().into(),
                    Val::from(e.metadata.to_string()),
                ]);
            }
            parts.push(Part {
                what: "entries inserted",
                rows,
                sql: |source, now| {
                    format!(
                        "INSERT INTO ledger_entries (id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at) \
                         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, ${now} \
                         FROM {source} AS v"
                    )
                },
                rows_expected: chunk.len(),
                race: false,
                at_most: false,
            });
        }
        for chunk in self.new_holds.chunks(per_part) {
            const TYPES: &[Ty] = &[Ty::Text, Ty::Text, Ty::Int, Ty::Text, Ty::Text, Ty::Int];
            let mut rows = RowSet::new(self.dialect, TYPES);
            for row in chunk {
                let h = &row.hold;
                rows.push([
                    h.id.as_str().into(),
                    h.customer.as_str().into(),
                    h.amount.micros().into(),
                    h.feature.as_deref().into(),
                    row.metadata.as_str().into(),
                    h.expires_at.into(),
                ]);
            }
            parts.push(Part {
                what: "holds placed",
                rows,
                sql: |source, now| {
                    format!(
                        "INSERT INTO holds (id, customer_id, amount, status, captured, feature, metadata, expires_at, created_at, updated_at) \
                         SELECT v.column1, v.column2, v.column3, 'open', NULL, v.column4, v.column5, v.column6, ${now}, ${now} \
                         FROM {source} AS v"
                    )
                },
                rows_expected: chunk.len(),
                race: false,
                at_most: false,
            });
        }
        let finished: Vec<&Hold> = self.holds.values().filter(|s| s.changed).map(|s| &s.hold).collect();
        for chunk in finished.chunks(per_part) {
            const TYPES: &[Ty] = &[Ty::Text, Ty::Text, Ty::Int, Ty::Text];
            let mut rows = RowSet::new(self.dialect, TYPES);
            for h in chunk {
                rows.push([
                    h.id.as_str().into(),
                    h.status.as_str().into(),
                    h.captured.map(Credits::micros).into(),
                    h.feature.as_deref().into(),
                ]);
            }
            parts.push(Part {
                what: "holds finished",
                rows,
                sql: |source, now| {
                    format!(
                        "UPDATE holds SET status = v.column2, captured = v.column3, feature = v.column4, updated_at = ${now} \
                         FROM {source} AS v WHERE holds.id = v.column1"
                    )
                },
                rows_expected: chunk.len(),
                race: false,
                at_most: false,
            });
        }
        let changed: Vec<(&str, i64)> = self
            .accounts
            .values()
            .flat_map(|a| a.lots.iter())
            .filter(|l| self.loaded.get(&l.grant_id) != Some(&l.remaining.micros()))
            .map(|l| (l.grant_id.as_str(), l.remaining.micros()))
            .collect();
        for chunk in changed.chunks(per_part) {
            let mut rows = RowSet::new(self.dialect, &[Ty::Text, Ty::Int]);
            for (id, remaining) in chunk {
                rows.push([(*id).into(), (*remaining).into()]);
            }
            parts.push(Part {
                what: "grants changed",
                rows,
                // `now` is bound to every part; this one has no use for it.
                sql: |source, now| {
                    format!(
                        "UPDATE grants SET remaining = v.column2 FROM {source} AS v \
                         WHERE grants.id = v.column1 AND ${now} IS NOT NULL"
                    )
                },
                rows_expected: chunk.len(),
                race: false,
                at_most: false,
            });
        }
        let accounts: Vec<(&String, &Account)> = self.accounts.iter().collect();
        for chunk in accounts.chunks(per_part) {
            let mut rows = RowSet::new(self.dialect, &[Ty::Text, Ty::Int, Ty::Int, Ty::Text]);
            for (id, account) in chunk {
                account.assert_consistent();
                rows.push([
                    id.as_str().into(),
                    account.balance.micros().into(),
                    account.held.micros().into(),
                    self.crossings.state(id).as_str().into(),
                ]);
            }
            parts.push(Part {
                what: "customers saved",
                rows,
                sql: |source, now| {
                    format!(
                        "UPDATE customers SET balance = v.column2, held = v.column3, balance_alert = v.column4, updated_at = ${now} \
                         FROM {source} AS v WHERE customers.id = v.column1"
                    )
                },
                rows_expected: chunk.len(),
                race: false,
                at_most: false,
            });
        }
        parts
    }
}
