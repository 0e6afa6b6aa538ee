//! One batch's decisions: every change to a balance is a [`Command`] decided here, against the
//! customers' states the writer holds, into [`Changes`] that storage writes in the batch's
//! one transaction. Storage only loads (the states and the [`Facts`] a command needs) and
//! persists; the policy — spending order, holds, purchases, clawbacks and freezes,
//! allowances, expiry — lives in this crate.
//!
//! A refused command changes nothing: every decision checks before it moves anything.
//!
//! **Extension points.** A decision that must emit more than ledger rows in the same
//! transaction (an outbox event when a balance crosses a threshold, a limit counter)
//! pushes an [`Effect`] onto [`Changes::effects`]; storage persists every effect with the
//! batch (`creditd-store`'s `persist.rs`, one arm per variant). Crossings are decided in
//! [`Book::apply`]: it sees every command with the touched customer's state before and after
//! it (the customer is the command's own, the hold's owner in [`Facts::hold_owners`], or the
//! payment's in [`Facts::payments`]). Per-customer state (thresholds and their armed flags,
//! limit and budget counters) lives in [`crate::state::CustomerState`], cached and
//! version-checked with the balance.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::account::{Insufficient, Movement, Taken, DEFAULT_PRIORITY};
use crate::allowance::{self, AllowanceKind, AllowanceRecord, AllowanceRequest};
use crate::amount::Credits;
use crate::command::{
    Command, CommandError, GrantSource, NewCustomer, NewDeduction, NewGrant, NewHold, NewUsage, Outcome,
};
use crate::gate::{self, Gates, Spend};
use crate::ids::IdKind;
use crate::money::PaymentStatus;
use crate::outbound::EventType;
use crate::pricing::Priced;
use crate::purchase::{purchase_grant, PaymentUpdate};
use crate::refund::{self, Convergence, Freeze, MoneyState, PaymentRecord};
use crate::state::{CustomerState, OpenHold};
use crate::views::{Customer, Entry, Grant, Hold, HoldStatus, Usage};
use crate::{EntryKind, Lot};

/// Feature name of the entries an admin deduction writes.
pub const ADMIN_ADJUSTMENT_FEATURE: &str = "admin_adjustment";

/// Spending order among equals follows a grant's `seq`, which the database assigns on
/// insert. A grant made in a batch is newer than every stored one: it gets a provisional seq
/// above them all, replaced by the stored one after the commit.
pub const PROVISIONAL_SEQ: i64 = i64::MAX / 2;

/// What storage read for a batch besides the customers' states. Decisions update it, so a
/// later command of the batch sees what an earlier one did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Customers that exist, with what a customer view shows besides the balances.
    pub profiles: HashMap<String, Profile>,
    /// Hold id → its customer.
    pub hold_owners: HashMap<String, String>,
    /// Holds that are not open, by status (an open hold is in its customer's state).
    pub closed_holds: HashMap<String, HoldStatus>,
    /// (source, reference) → grant id, for the references the batch names.
    pub grant_references: HashMap<(GrantSource, String), String>,
    pub payments: HashMap<String, PaymentRecord>,
    /// The allowances of the subscriptions the batch names.
    pub allowances: Vec<AllowanceRecord>,
    /// Grant id → credits its expire entries took so far (the previous period's allowances).
    pub expired: HashMap<String, Credits>,
    /// Plans, entitlements and budgets, for the spends of the batch ([`crate::gate`]).
    pub gates: Gates,
    /// The low-balance threshold of customers without one of their own.
    pub low_balance_default: Credits,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub email: Option<String>,
    pub metadata: serde_json::Value,
    pub created: i64,
}

/// A grant made in this batch, inserted with its remaining at the end of the batch.
#[derive(Clone, Debug, PartialEq)]
pub struct NewGrantRow {
    pub grant: Grant,
    pub seq: i64,
}

/// A hold row written by the batch: placed (`new`), or finished.
#[derive(Clone, Debug, PartialEq)]
pub struct HoldRow {
    pub id: String,
    pub customer: String,
    pub amount: Credits,
    pub status: HoldStatus,
    pub captured: Option<Credits>,
    pub feature: Option<String>,
    pub metadata: serde_json::Value,
    pub expires_at: i64,
    pub created: i64,
    /// The budget the hold reserves against, and the window it counts in.
    pub budget: Option<(String, i64)>,
}

/// A row a decision adds beyond the ledger, written in the batch's transaction: counters and
/// priced units ([`crate::gate`]), outbound events and auto top-up runs ([`crate::announce`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// A limit's or budget's count as it now stands ([`crate::gate`]); the last one written
    /// for a (customer, counter, window) is the batch's.
    Counter {
        customer: String,
        counter: String,
        window_start: i64,
        used: i64,
    },
    /// The units of a priced request with the prices it was charged at. `kind`: `usage`,
    /// `hold` or `capture`; `reference`: the usage or hold id.
    Units {
        reference: String,
        kind: &'static str,
        customer: String,
        feature: String,
        priced: Priced,
    },
    /// An outbound event for the app (an outbox row): `data` is the object as the API
    /// returns it.
    Event {
        id: String,
        event_type: EventType,
        customer: Option<String>,
        data: serde_json::Value,
        /// `data` is the customer, without its profile (email, metadata, created): the batch
        /// did not read it. Storage fills it in before writing the row.
        profile_missing: bool,
    },
    /// An auto top-up run queued by a crossing (none when one is already in flight).
    TopupQueued { customer: String, run: String },
}

/// Everything a batch writes, in the order it was decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// Customers created, with their profile (their state is in [`Book::customers`]).
    pub customers_created: Vec<(String, Profile)>,
    pub grants: Vec<NewGrantRow>,
    pub entries: Vec<Entry>,
    pub holds_placed: Vec<HoldRow>,
    pub holds_finished: Vec<HoldRow>,
    /// Grants whose remaining changed: (customer, grant). Grants made in this batch
    /// ([`Changes::grants`]) are among them and are inserted, not updated.
    pub grants_touched: BTreeSet<(String, String)>,
    /// Payments as they are now.
    pub payments: BTreeMap<String, PaymentRecord>,
    /// Payments whose stored freezes are all returned (deleted before `freezes_added`).
    pub freezes_cleared: BTreeSet<String>,
    pub freezes_added: Vec<Freeze>,
    pub allowances: Vec<AllowanceRecord>,
    pub effects: Vec<Effect>,
}

/// What the entries of one command share.
#[derive(Default)]
struct Context<'a> {
    reference: Option<&'a str>,
    feature: Option<&'a str>,
    metadata: Option<&'a serde_json::Value>,
}

/// One batch: the locked customers' states, the facts, and what was decided so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Book {
    pub customers: BTreeMap<String, CustomerState>,
    pub facts: Facts,
    pub changes: Changes,
    next_seq: i64,
}

impl Book {
    pub fn new(facts: Facts) -> Book {
        Book {
            customers: BTreeMap::new(),
            facts,
            changes: Changes::default(),
            next_seq: PROVISIONAL_SEQ,
        }
    }

    /// Takes a locked customer's state into the batch, expiring its lapsed holds and grants
    /// first: every decision sees the account as of `now`.
    pub fn admit(&mut self, mut state: CustomerState, now: i64) {
        let lapsed: Vec<String> = state
            .holds
            .values()
            .filter(|h| h.expires_at <= now)
            .map(|h| h.id.clone())
            .collect();
        for id in lapsed {
            let hold = state.holds.remove(&id).expect("listed above");
            state.account.release(hold.amount);
            if let Some((budget, window)) = &hold.budget {
                let effect = state.add(&gate::budget_counter(budget), *window, -hold.amount.micros());
                self.changes.effects.push(effect);
            }
            self.facts.closed_holds.insert(id, HoldStatus::Expired);
            self.changes
                .holds_finished
                .push(hold_row(&state.id, &hold, HoldStatus::Expired, None));
        }
        let expired = state.account.expire_due(now);
        let entries = push_movements(&mut self.changes, &state.id, &expired, &Context::default(), now);
        self.announce_expired(&entries);
        self.customers.insert(state.id.clone(), state);
    }

    /// The domain's decision on one command, against the state the commands before it left,
    /// with the events and top-ups it raises ([`crate::announce`]).
    pub fn apply(&mut self, command: &Command, now: i64) -> Result<Outcome, CommandError> {
        let before = self.marks(command);
        let outcome = self.decide(command, now)?;
        self.announce(&before, command, &outcome);
        Ok(outcome)
    }

    fn decide(&mut self, command: &Command, now: i64) -> Result<Outcome, CommandError> {
        match command {
            Command::CreateCustomer(new) => self.create_customer(new, now),
            Command::Grant(new) => self.grant(new, now).map(Outcome::Grant),
            Command::Usage(new) => self.usage(new, now).map(Outcome::Usage),
            Command::Deduct(new) => self.deduct(new, now).map(Outcome::Usage),
            Command::CreateHold(new) => self.create_hold(new, now).map(Outcome::Hold),
            Command::CaptureHold {
                hold,
                amount,
                feature,
                priced,
            } => self
                .finish_hold(hold, Some((*amount, feature.as_deref(), priced.as_ref())), now)
                .map(Outcome::Hold),
            Command::ReleaseHold { hold } => self.finish_hold(hold, None, now).map(Outcome::Hold),
            Command::UpdatePayment { payment, update } => self.update_payment(payment, update, now),
            Command::ConvergePayment { payment, money } => {
                self.converge_payment(payment, money, now).map(Outcome::Converged)
            }
            Command::GrantAllowance(request) => self.grant_allowance(request, now).map(Outcome::Allowance),
            Command::Sweep { customer } => self.state(customer).map(|_| Outcome::Swept),
        }
    }

    fn state(&mut self, customer: &str) -> Result<&mut CustomerState, CommandError> {
        self.customers
            .get_mut(customer)
            .ok_or_else(|| CommandError::CustomerNotFound(customer.to_string()))
    }

    /// The customer's view as of now.
    pub fn customer_view(&self, id: &str) -> Option<Customer> {
        let profile = self.facts.profiles.get(id)?;
        let mut view = self.balances_view(id)?;
        view.email = profile.email.clone();
        view.metadata = profile.metadata.clone();
        view.created = profile.created;
        Some(view)
    }

    /// The customer's balances as a view, with an empty profile (email, metadata, created).
    pub(crate) fn balances_view(&self, id: &str) -> Option<Customer> {
        let state = self.customers.get(id)?;
        let a = &state.account;
        Some(Customer {
            id: id.to_string(),
            email: None,
            metadata: serde_json::json!({}),
            balance: a.balance,
            available: a.available(),
            held: a.held,
            frozen: state.frozen,
            debt: a.debt,
            low_balance_threshold: state.alerts.threshold.unwrap_or(self.facts.low_balance_default),
            created: 0,
            subscription: None,
            auto_topup: None,
        })
    }

    fn create_customer(&mut self, new: &NewCustomer, now: i64) -> Result<Outcome, CommandError> {
        let exists = self.facts.profiles.contains_key(&new.id);
        if !exists {
            let profile = Profile {
                email: new.email.clone(),
                metadata: new.metadata.clone(),
                created: now,
            };
            self.customers.insert(new.id.clone(), CustomerState::new(&new.id));
            self.facts.profiles.insert(new.id.clone(), profile.clone());
            self.changes.customers_created.push((new.id.clone(), profile));
            if new.signup_bonus.is_positive() {
                let bonus = NewGrant {
                    customer: new.id.clone(),
                    amount: new.signup_bonus,
                    priority: DEFAULT_PRIORITY,
                    expires_at: None,
                    source: GrantSource::SignupBonus,
                    reason: Some("signup bonus".into()),
                    reference: None,
                };
                self.grant(&bonus, now)?;
            }
        }
        let customer = self
            .customer_view(&new.id)
            .ok_or_else(|| CommandError::CustomerNotFound(new.id.clone()))?;
        Ok(Outcome::Customer {
            customer,
            created: !exists,
        })
    }

    /// Adds a grant; new credits pay any debt first.
    fn grant(&mut self, new: &NewGrant, now: i64) -> Result<Grant, CommandError> {
        if let Some(reference) = &new.reference {
            if self
                .facts
                .grant_references
                .contains_key(&(new.source, reference.clone()))
            {
                return Err(CommandError::DuplicateGrantReference {
                    kind: new.source.as_str().into(),
                    reference: reference.clone(),
                });
            }
        }
        let seq = self.next_seq;
        let state = self
            .customers
            .get_mut(&new.customer)
            .ok_or_else(|| CommandError::CustomerNotFound(new.customer.clone()))?;
        if !state.account.can_credit(new.amount) {
            return Err(CommandError::BalanceLimit {
                limit: crate::account::MAX_BALANCE,
            });
        }
        self.next_seq += 1;
        let id = IdKind::Grant.new_id();
        let movement = state.account.credit(Lot {
            grant_id: id.clone(),
            remaining: new.amount,
            priority: new.priority,
            expires_at: new.expires_at,
            seq,
        });
        let context = Context {
            reference: Some(&id),
            ..Context::default()
        };
        push_movements(&mut self.changes, &new.customer, &[movement], &context, now);
        let settled = state.account.settle_debt(now);
        push_taken(&mut self.changes, &new.customer, &settled, &context, now);
        let remaining = state
            .account
            .lots
            .iter()
            .find(|l| l.grant_id == id)
            .map_or(Credits::ZERO, |l| l.remaining);
        if let Some(reference) = &new.reference {
            self.facts
                .grant_references
                .insert((new.source, reference.clone()), id.clone());
        }
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
        self.changes.grants.push(NewGrantRow {
            grant: grant.clone(),
            seq,
        });
        Ok(grant)
    }

    /// A usage: the plan and budget decide first (refused: nothing moves), then the balance.
    fn usage(&mut self, new: &NewUsage, now: i64) -> Result<Usage, CommandError> {
        let spend = Spend {
            feature: Some(&new.feature),
            budget: new.budget.as_deref(),
            budget_window: None,
        };
        let state = self
            .customers
            .get(&new.customer)
            .ok_or_else(|| CommandError::CustomerNotFound(new.customer.clone()))?;
        let admitted = self.facts.gates.decide(state, spend, new.amount, now)?;
        let id = IdKind::Usage.new_id();
        let metadata = new.metadata.clone();
        let mut usage = self.spend(&new.customer, new.amount, id, &new.feature, &metadata, now)?;
        let state = self.state(&new.customer)?;
        let effects = gate::count(state, &admitted, 1, new.amount.micros());
        self.changes.effects.extend(effects);
        self.record_units(
            &usage.id,
            "usage",
            &new.customer,
            Some(&new.feature),
            new.priced.as_ref(),
        );
        usage.priced = new.priced.clone();
        usage.budget = new.budget.clone();
        Ok(usage)
    }

    fn record_units(
        &mut self,
        reference: &str,
        kind: &'static str,
        customer: &str,
        feature: Option<&str>,
        priced: Option<&Priced>,
    ) {
        if let (Some(priced), Some(feature)) = (priced, feature) {
            self.changes.effects.push(Effect::Units {
                reference: reference.to_string(),
                kind,
                customer: customer.to_string(),
                feature: feature.to_string(),
                priced: priced.clone(),
            });
        }
    }

    /// Like usage, but the entries name the admin and reason, and the reference is an `adj_`
    /// id (reports count it apart from what customers spent).
    fn deduct(&mut self, new: &NewDeduction, now: i64) -> Result<Usage, CommandError> {
        let id = IdKind::Adjustment.new_id();
        let metadata = serde_json::json!({ "admin": new.admin, "reason": new.reason });
        self.spend(&new.customer, new.amount, id, ADMIN_ADJUSTMENT_FEATURE, &metadata, now)
    }

    fn spend(
        &mut self,
        customer: &str,
        amount: Credits,
        id: String,
        feature: &str,
        metadata: &serde_json::Value,
        now: i64,
    ) -> Result<Usage, CommandError> {
        let state = self.state(customer)?;
        let movements = state
            .account
            .debit(amount, now)
            .map_err(|e| insufficient(state, amount, e))?;
        let (balance, available) = (state.account.balance, state.account.available());
        let context = Context {
            reference: Some(&id),
            feature: Some(feature),
            metadata: Some(metadata),
        };
        let entries = push_movements(&mut self.changes, customer, &movements, &context, now);
        Ok(Usage {
            id,
            customer: customer.to_string(),
            amount,
            feature: feature.to_string(),
            balance,
            available,
            entries,
            created: now,
            priced: None,
            budget: None,
        })
    }

    /// A hold: counts as one use of its feature and reserves its amount in its budget.
    fn create_hold(&mut self, new: &NewHold, now: i64) -> Result<Hold, CommandError> {
        let spend = Spend {
            feature: new.feature.as_deref(),
            budget: new.budget.as_deref(),
            budget_window: None,
        };
        let state = self
            .customers
            .get(&new.customer)
            .ok_or_else(|| CommandError::CustomerNotFound(new.customer.clone()))?;
        let admitted = self.facts.gates.decide(state, spend, new.amount, now)?;
        let state = self.state(&new.customer)?;
        state
            .account
            .hold(new.amount)
            .map_err(|e| insufficient(state, new.amount, e))?;
        let open = OpenHold {
            id: IdKind::Hold.new_id(),
            amount: new.amount,
            feature: new.feature.clone(),
            metadata: new.metadata.clone(),
            expires_at: now.saturating_add(new.ttl_seconds),
            created: now,
            budget: admitted
                .budget
                .as_ref()
                .zip(new.budget.as_ref())
                .map(|((_, w), id)| (id.clone(), *w)),
        };
        state.holds.insert(open.id.clone(), open.clone());
        let effects = gate::count(state, &admitted, 1, new.amount.micros());
        let mut hold = hold_view(
            state,
            hold_row(&new.customer, &open, HoldStatus::Open, None),
            Vec::new(),
        );
        hold.priced = new.priced.clone();
        self.changes.effects.extend(effects);
        self.record_units(
            &open.id,
            "hold",
            &new.customer,
            new.feature.as_deref(),
            new.priced.as_ref(),
        );
        self.facts.hold_owners.insert(open.id.clone(), new.customer.clone());
        self.changes
            .holds_placed
            .push(hold_row(&new.customer, &open, HoldStatus::Open, None));
        Ok(hold)
    }

    /// Captures (`capture = Some((amount, feature))`) or releases an open hold.
    fn finish_hold(
        &mut self,
        hold_id: &str,
        capture: Option<(Option<Credits>, Option<&str>, Option<&Priced>)>,
        now: i64,
    ) -> Result<Hold, CommandError> {
        let not_found = || CommandError::HoldNotFound(hold_id.to_string());
        let owner = self.facts.hold_owners.get(hold_id).cloned().ok_or_else(not_found)?;
        let state = self.customers.get_mut(&owner).ok_or_else(not_found)?;
        let Some(open) = state.holds.get(hold_id).cloned() else {
            let status = self.facts.closed_holds.get(hold_id).ok_or_else(not_found)?;
            return Err(CommandError::HoldNotOpen {
                status: status.as_str().into(),
            });
        };
        // The reservation is settled in the budget's window it was made in.
        let spend = Spend {
            feature: None,
            budget: open.budget.as_ref().map(|(id, _)| id.as_str()),
            budget_window: open.budget.as_ref().map(|(_, w)| *w),
        };
        let mut priced_units = None;
        let (row, entries) = match capture {
            Some((amount, feature, priced)) => {
                let amount = amount.unwrap_or(open.amount);
                // Only what goes beyond the reservation needs room in the budget.
                let extra = Credits::from_micros((amount.micros() - open.amount.micros()).max(0));
                let admitted = self.facts.gates.decide(state, spend, extra, now)?;
                let movements = state
                    .account
                    .capture(open.amount, amount, now)
                    .map_err(|e| insufficient(state, amount, e))?;
                let feature = feature.map(str::to_string).or(open.feature.clone());
                let context = Context {
                    reference: Some(hold_id),
                    feature: feature.as_deref(),
                    metadata: Some(&open.metadata),
                };
                let entries = push_movements(&mut self.changes, &owner, &movements, &context, now);
                let effects = gate::count(state, &admitted, 0, amount.micros() - open.amount.micros());
                self.changes.effects.extend(effects);
                if let (Some(priced), Some(f)) = (priced, &feature) {
                    priced_units = Some(priced.clone());
                    self.changes.effects.push(Effect::Units {
                        reference: hold_id.to_string(),
                        kind: "capture",
                        customer: owner.clone(),
                        feature: f.clone(),
                        priced: priced.clone(),
                    });
                }
                let mut row = hold_row(&owner, &open, HoldStatus::Captured, Some(amount));
                row.feature = feature;
                (row, entries)
            }
            None => {
                let admitted = self.facts.gates.decide(state, spend, Credits::ZERO, now)?;
                state.account.release(open.amount);
                let effects = gate::count(state, &admitted, 0, -open.amount.micros());
                self.changes.effects.extend(effects);
                (hold_row(&owner, &open, HoldStatus::Released, None), Vec::new())
            }
        };
        state.holds.remove(hold_id);
        let mut hold = hold_view(state, row.clone(), entries);
        hold.priced = priced_units;
        self.facts.closed_holds.insert(hold_id.to_string(), row.status);
        // A hold placed in this batch is written once, as it ends up.
        match self.changes.holds_placed.iter_mut().find(|h| h.id == hold_id) {
            Some(placed) => *placed = row,
            None => self.changes.holds_finished.push(row),
        }
        Ok(hold)
    }

    fn update_payment(&mut self, id: &str, update: &PaymentUpdate, now: i64) -> Result<Outcome, CommandError> {
        let mut record = self
            .facts
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| CommandError::PaymentNotFound(id.to_string()))?;
        let payment = &mut record.payment;
        let mut granted = false;
        match update {
            PaymentUpdate::Paid {
                reference,
                payment_intent,
                receipt_url,
            } if payment.status != PaymentStatus::Succeeded => {
                let grant_id = match self.grant(&purchase_grant(payment, reference), now) {
                    Ok(grant) => {
                        granted = true;
                        grant.id
                    }
                    Err(CommandError::DuplicateGrantReference { .. }) => {
                        self.facts.grant_references[&(GrantSource::Purchase, reference.clone())].clone()
                    }
                    Err(e) => return Err(e),
                };
                payment.status = PaymentStatus::Succeeded;
                payment.grant = Some(grant_id);
                payment.receipt_url = receipt_url.clone().or(payment.receipt_url.take());
                payment.payment_intent = payment.payment_intent.take().or(payment_intent.clone());
                payment.failure_message = None;
            }
            PaymentUpdate::Paid { receipt_url, .. } => {
                payment.receipt_url = payment.receipt_url.take().or(receipt_url.clone());
            }
            // A succeeded payment never moves back.
            _ if payment.status == PaymentStatus::Succeeded => {}
            PaymentUpdate::Failed { message } => {
                payment.status = PaymentStatus::Failed;
                payment.failure_message = Some(message.clone());
            }
            PaymentUpdate::Expired => payment.status = PaymentStatus::Expired,
        }
        payment.updated = now;
        let payment = payment.clone();
        self.save_payment(record);
        Ok(Outcome::Payment { payment, granted })
    }

    fn save_payment(&mut self, record: PaymentRecord) {
        let id = record.payment.id.clone();
        self.facts.payments.insert(id.clone(), record.clone());
        self.changes.payments.insert(id, record);
    }

    /// Brings a succeeded payment's credits to `money`; one not (yet) succeeded is left alone
    /// (its fulfilment comes first).
    fn converge_payment(&mut self, id: &str, money: &MoneyState, now: i64) -> Result<Convergence, CommandError> {
        let mut record = self
            .facts
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| CommandError::PaymentNotFound(id.to_string()))?;
        if record.payment.status != PaymentStatus::Succeeded {
            return Ok(Convergence::default());
        }
        let payment = record.payment.clone();
        self.state(&payment.customer)?;
        let (clawed_target, frozen_target) = refund::targets(&payment, money);
        let dispute = money.dispute.as_ref().map(|d| d.id.clone());
        let metadata = serde_json::json!({ "payment": payment.id, "payment_intent": payment.payment_intent });
        let mut done = Convergence::default();
        let refreeze = frozen_target != record.frozen_target;
        if refreeze {
            done.unfrozen = self.unfreeze_all(&mut record, dispute.as_deref(), &metadata, now);
        }
        let delta = clawed_target.micros() - record.clawed_back.micros();
        if delta > 0 {
            let reference = refund::clawback_reference(money);
            let context = Context {
                reference: reference.as_deref(),
                feature: None,
                metadata: Some(&metadata),
            };
            let state = self.customers.get_mut(&payment.customer).expect("checked above");
            let taken = state
                .account
                .clawback(payment.grant.as_deref(), Credits::from_micros(delta), now);
            push_taken(&mut self.changes, &payment.customer, &taken, &context, now);
            done.clawed_back = Credits::from_micros(delta);
        } else if delta < 0 {
            // A refund failed: the credits it took come back, as a grant of their own.
            let restore = NewGrant {
                customer: payment.customer.clone(),
                amount: Credits::from_micros(-delta),
                priority: DEFAULT_PRIORITY,
                expires_at: None,
                source: GrantSource::Purchase,
                reason: Some(format!("refund of {} failed: credits restored", payment.id)),
                reference: None,
            };
            self.grant(&restore, now)?;
            done.restored = Credits::from_micros(-delta);
        }
        if refreeze && frozen_target.is_positive() {
            done.frozen = self.freeze(&mut record, frozen_target, dispute.as_deref(), &metadata, now);
        }
        let state = self.customers.get_mut(&payment.customer).expect("checked above");
        state.frozen = Credits::from_micros(state.frozen.micros() + done.frozen.micros() - done.unfrozen.micros());
        record.amount_refunded = money.amount_refunded;
        record.dispute_id = dispute;
        record.dispute_status = money.dispute.as_ref().map(|d| d.status.clone());
        record.clawed_back = clawed_target;
        record.frozen_target = frozen_target;
        record.payment.updated = now;
        self.save_payment(record);
        Ok(done)
    }

    /// Returns every credit frozen for a payment to the grant it came from; returned credits
    /// pay any debt first, like every credit.
    fn unfreeze_all(
        &mut self,
        record: &mut PaymentRecord,
        reference: Option<&str>,
        metadata: &serde_json::Value,
        now: i64,
    ) -> Credits {
        let customer = record.payment.customer.clone();
        let state = self
            .customers
            .get_mut(&customer)
            .expect("the payment's customer is locked");
        let mut movements = Vec::with_capacity(record.freezes.len());
        let mut total = 0;
        for freeze in record.freezes.drain(..) {
            state.account.load_lot(Lot {
                remaining: Credits::ZERO,
                ..freeze.lot.clone()
            });
            movements.push(state.account.unfreeze(&freeze.lot.grant_id, freeze.amount));
            total += freeze.amount.micros();
        }
        let context = Context {
            reference,
            feature: None,
            metadata: Some(metadata),
        };
        push_movements(&mut self.changes, &customer, &movements, &context, now);
        let settled = state.account.settle_debt(now);
        push_taken(&mut self.changes, &customer, &settled, &context, now);
        let id = &record.payment.id;
        self.changes.freezes_added.retain(|f| &f.payment != id);
        self.changes.freezes_cleared.insert(id.clone());
        Credits::from_micros(total)
    }

    /// Freezes up to `target` of the live credits, the payment's own grant first.
    fn freeze(
        &mut self,
        record: &mut PaymentRecord,
        target: Credits,
        reference: Option<&str>,
        metadata: &serde_json::Value,
        now: i64,
    ) -> Credits {
        let customer = record.payment.customer.clone();
        let state = self
            .customers
            .get_mut(&customer)
            .expect("the payment's customer is locked");
        let movements = state.account.freeze(record.payment.grant.as_deref(), target, now);
        let mut frozen = 0;
        for m in &movements {
            let lot = state
                .account
                .lots
                .iter()
                .find(|l| l.grant_id == m.grant_id)
                .expect("a freeze takes from a loaded grant")
                .clone();
            let freeze = Freeze {
                payment: record.payment.id.clone(),
                customer: customer.clone(),
                lot,
                amount: Credits::from_micros(-m.amount.micros()),
            };
            frozen -= m.amount.micros();
            record.freezes.push(freeze.clone());
            self.changes.freezes_added.push(freeze);
        }
        let context = Context {
            reference,
            feature: None,
            metadata: Some(metadata),
        };
        push_movements(&mut self.changes, &customer, &movements, &context, now);
        Credits::from_micros(frozen)
    }

    /// Grants an invoice's allowance, once; `None` when the invoice was handled before or
    /// grants nothing.
    fn grant_allowance(&mut self, request: &AllowanceRequest, now: i64) -> Result<Option<Grant>, CommandError> {
        self.state(&request.customer)?;
        if self.facts.allowances.iter().any(|a| a.invoice == request.invoice) {
            return Ok(None);
        }
        let reference = (GrantSource::Subscription, request.invoice.clone());
        if self.facts.grant_references.contains_key(&reference) {
            return Err(CommandError::DuplicateGrantReference {
                kind: GrantSource::Subscription.as_str().into(),
                reference: request.invoice.clone(),
            });
        }
        let (amount, reason, plan_part) = match request.kind {
            AllowanceKind::Period => {
                let unused = self.retire_previous_period(request, now);
                let (amount, rollover) = allowance::period_amount(&request.plan, unused);
                let reason = allowance::reason(&request.plan, request.kind, rollover);
                (amount, reason, request.plan.credits)
            }
            AllowanceKind::Change => {
                let this_period: i64 = self
                    .facts
                    .allowances
                    .iter()
                    .filter(|a| a.subscription == request.subscription && a.period_end == request.period_end)
                    .map(|a| a.credits.micros())
                    .sum();
                let amount = allowance::change_amount(&request.plan, Credits::from_micros(this_period));
                (
                    amount,
                    allowance::reason(&request.plan, request.kind, Credits::ZERO),
                    amount,
                )
            }
        };
        let grant = if amount.is_positive() {
            let new = NewGrant {
                customer: request.customer.clone(),
                amount,
                priority: DEFAULT_PRIORITY,
                expires_at: Some(request.period_end),
                source: GrantSource::Subscription,
                reason: Some(reason),
                reference: Some(request.invoice.clone()),
            };
            Some(self.grant(&new, now)?)
        } else {
            None
        };
        let record = AllowanceRecord {
            invoice: request.invoice.clone(),
            subscription: request.subscription.clone(),
            customer: request.customer.clone(),
            grant: grant.as_ref().map(|g| g.id.clone()),
            credits: plan_part,
            period_start: request.period_start,
            period_end: request.period_end,
        };
        self.facts.allowances.push(record.clone());
        self.changes.allowances.push(record);
        Ok(grant)
    }

    /// Expires what the previous period's allowance left now, and returns how much it left
    /// unused in all (lapsed grants may already have been swept: their expire entries say
    /// how much).
    fn retire_previous_period(&mut self, request: &AllowanceRequest, now: i64) -> Credits {
        let previous: Vec<String> = self
            .facts
            .allowances
            .iter()
            .filter(|a| a.subscription == request.subscription && a.period_end == request.period_start)
            .filter_map(|a| a.grant.clone())
            .collect();
        let state = self
            .customers
            .get_mut(&request.customer)
            .expect("checked by the caller");
        let mut expired = Vec::new();
        for grant in &previous {
            expired.extend(state.account.expire_now(grant));
        }
        push_movements(&mut self.changes, &request.customer, &expired, &Context::default(), now);
        let unused: i64 = previous
            .iter()
            .map(|g| {
                let stored = self.facts.expired.get(g).map_or(0, |c| c.micros());
                let this_batch: i64 = self
                    .changes
                    .entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Expire && e.grant.as_deref() == Some(g.as_str()))
                    .map(|e| -e.amount.micros())
                    .sum();
                stored + this_batch
            })
            .sum();
        Credits::from_micros(unused)
    }
}

fn insufficient(state: &CustomerState, requested: Credits, e: Insufficient) -> CommandError {
    CommandError::InsufficientCredits {
        balance: state.account.balance,
        available: e.available,
        requested,
    }
}

fn hold_row(customer: &str, hold: &OpenHold, status: HoldStatus, captured: Option<Credits>) -> HoldRow {
    HoldRow {
        id: hold.id.clone(),
        customer: customer.to_string(),
        amount: hold.amount,
        status,
        captured,
        feature: hold.feature.clone(),
        metadata: hold.metadata.clone(),
        expires_at: hold.expires_at,
        created: hold.created,
        budget: hold.budget.clone(),
    }
}

fn hold_view(state: &CustomerState, row: HoldRow, entries: Vec<Entry>) -> Hold {
    Hold {
        id: row.id,
        customer: row.customer,
        amount: row.amount,
        status: row.status,
        captured: row.captured,
        feature: row.feature,
        expires_at: row.expires_at,
        created: row.created,
        balance: state.account.balance,
        available: state.account.available(),
        entries,
        budget: row.budget.map(|(id, _)| id),
        priced: None,
    }
}

/// The entries of grant movements; the grants are marked changed.
fn push_movements(
    changes: &mut Changes,
    customer: &str,
    movements: &[Movement],
    context: &Context<'_>,
    now: i64,
) -> Vec<Entry> {
    let made: Vec<Entry> = movements
        .iter()
        .map(|m| {
            changes
                .grants_touched
                .insert((customer.to_string(), m.grant_id.clone()));
            Entry {
                id: IdKind::Entry.new_id(),
                customer: customer.to_string(),
                grant: Some(m.grant_id.clone()),
                kind: m.kind,
                amount: m.amount,
                balance_after: m.balance_after,
                // Expiry entries carry their grant as the reference: they are caused by no request.
                reference: Some(context.reference.unwrap_or(&m.grant_id).to_string()),
                feature: context.feature.map(str::to_string),
                metadata: context.metadata.cloned().unwrap_or_else(|| serde_json::json!({})),
                created: now,
            }
        })
        .collect();
    changes.entries.extend(made.iter().cloned());
    made
}

/// Grant legs, then the debt leg when there is one.
fn push_taken(changes: &mut Changes, customer: &str, taken: &Taken, context: &Context<'_>, now: i64) {
    push_movements(changes, customer, &taken.movements, context, now);
    if let Some(debt) = &taken.debt {
        changes.entries.push(Entry {
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
        });
    }
}
