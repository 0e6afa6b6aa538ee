//! The dashboard's figures, computed once from the store's daily aggregates and served both
//! as pages and as JSON under `/v1/admin/reports/…` (admin session required).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use creditd_domain::Credits;
use creditd_store::{CreditBooks, RevenueDay, Store, StoreError, UsageDay, SECONDS_PER_DAY};
use serde::{Deserialize, Serialize};

use super::dates::{format_day, parse_day, Interval};
use super::Admin;
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::list::ApiQuery;

/// `?from=2027-01-01&to=2027-01-31&interval=day|week|month` (dates are UTC days, both included).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub interval: Option<Interval>,
}

/// A validated range of whole days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub from_day: i64,
    /// Included.
    pub to_day: i64,
    pub interval: Interval,
}

/// Longest range a report covers, so one request cannot ask for centuries of buckets.
pub const MAX_RANGE_DAYS: i64 = 3 * 366;

impl Range {
    /// Defaults: the last 30 days by day, 12 weeks by week, 12 months by month, up to today.
    pub fn parse(query: &RangeQuery, now: i64) -> Result<Range, (&'static str, String)> {
        let interval = query.interval.unwrap_or_default();
        let today = now.div_euclid(SECONDS_PER_DAY);
        let to_day = match query.to.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => parse_day(s).map_err(|e| ("to", e))?,
            None => today,
        };
        let span = match interval {
            Interval::Day => 29,
            Interval::Week => 12 * 7 - 1,
            Interval::Month => 364,
        };
        let from_day = match query.from.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => parse_day(s).map_err(|e| ("from", e))?,
            None => to_day - span,
        };
        if from_day > to_day {
            return Err(("from", "must not be after `to`".into()));
        }
        if to_day - from_day >= MAX_RANGE_DAYS {
            return Err(("from", format!("the range may cover at most {MAX_RANGE_DAYS} days")));
        }
        Ok(Range {
            from_day,
            to_day,
            interval,
        })
    }

    pub fn start(&self) -> i64 {
        self.from_day * SECONDS_PER_DAY
    }

    /// Exclusive end in unix seconds.
    pub fn end(&self) -> i64 {
        (self.to_day + 1) * SECONDS_PER_DAY
    }

    /// Every bucket's first day, empty ones included.
    pub fn buckets(&self) -> Vec<i64> {
        let mut out = Vec::new();
        let mut start = self.interval.bucket(self.from_day);
        while start <= self.to_day {
            out.push(start);
            start = self.interval.next(start);
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevenueBucket {
    /// First day of the bucket.
    pub start: String,
    pub currency: String,
    /// Minor units.
    pub gross: i64,
    pub refunds: i64,
    pub disputes_lost: i64,
    pub net: i64,
}

/// Sums days into buckets, per currency; ordered by bucket, then currency.
pub fn revenue_buckets(days: &[RevenueDay], interval: Interval) -> Vec<RevenueBucket> {
    let mut sums: BTreeMap<(i64, String), RevenueDay> = BTreeMap::new();
    for day in days {
        let start = interval.bucket(day.day);
        let sum = sums.entry((start, day.currency.clone())).or_default();
        sum.gross += day.gross;
        sum.refunds += day.refunds;
        sum.disputes_lost += day.disputes_lost;
    }
    sums.into_iter()
        .map(|((start, currency), sum)| RevenueBucket {
            start: format_day(start),
            net: sum.net(),
            currency,
            gross: sum.gross,
            refunds: sum.refunds,
            disputes_lost: sum.disputes_lost,
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageBucket {
    pub start: String,
    /// Empty for usage recorded without a feature.
    pub feature: String,
    pub credits: Credits,
}

pub fn usage_buckets(days: &[UsageDay], interval: Interval) -> Vec<UsageBucket> {
    let mut sums: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for day in days {
        *sums.entry((interval.bucket(day.day), day.feature.clone())).or_default() += day.credits.micros();
    }
    sums.into_iter()
        .map(|((start, feature), micros)| UsageBucket {
            start: format_day(start),
            feature,
            credits: Credits::from_micros(micros),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OtherLine {
    pub kind: String,
    pub amount: Credits,
}

/// The books: issued − spent − deducted − expired − clawed back (+ other kinds) = outstanding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreditsReport {
    pub issued: Credits,
    pub spent: Credits,
    pub deducted_by_admins: Credits,
    pub expired: Credits,
    pub clawed_back: Credits,
    pub other: Vec<OtherLine>,
    /// Σ customers' balances: the liability.
    pub outstanding: Credits,
    /// Whether the lines above add up to `outstanding`.
    pub balanced: bool,
}

impl From<CreditBooks> for CreditsReport {
    fn from(b: CreditBooks) -> CreditsReport {
        CreditsReport {
            balanced: b.balances(),
            issued: b.issued,
            spent: b.spent,
            deducted_by_admins: b.deducted,
            expired: b.expired,
            clawed_back: b.clawed_back,
            other: b
                .other
                .into_iter()
                .map(|(kind, amount)| OtherLine { kind, amount })
                .collect(),
            outstanding: b.outstanding,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpendLine {
    pub customer: String,
    pub currency: String,
    pub amount: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageLine {
    pub customer: String,
    pub credits: Credits,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopCustomers {
    pub by_spend: Vec<SpendLine>,
    pub by_usage: Vec<UsageLine>,
}

/// Active subscriptions of one plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    pub plan: String,
    pub active: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub from: String,
    pub to: String,
    pub interval: Interval,
    pub revenue: Vec<RevenueBucket>,
    pub credits: CreditsReport,
    /// Subscriptions active now (active, trialing or past due), by plan.
    pub subscriptions: Vec<PlanLine>,
    pub top_customers: TopCustomers,
    pub usage: Vec<UsageBucket>,
    /// Units of priced requests by feature and unit, with the feature's credits.
    pub units: Vec<UnitLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitLine {
    pub feature: String,
    pub unit: String,
    pub quantity: i64,
    pub requests: i64,
    /// What the feature's priced requests cost in the range (on each of its units' lines).
    pub credits: Credits,
}

pub const TOP_CUSTOMERS: i64 = 10;

pub async fn top_customers_of(store: &Store) -> Result<TopCustomers, StoreError> {
    let by_spend = store
        .top_spenders(TOP_CUSTOMERS)
        .await?
        .into_iter()
        .map(|t| SpendLine {
            customer: t.customer,
            currency: t.currency,
            amount: t.amount,
        })
        .collect();
    let by_usage = store
        .top_users(TOP_CUSTOMERS)
        .await?
        .into_iter()
        .map(|t| UsageLine {
            customer: t.customer,
            credits: t.credits,
        })
        .collect();
    Ok(TopCustomers { by_spend, by_usage })
}

pub async fn overview_of(store: &Store, range: Range) -> Result<Overview, StoreError> {
    let revenue = revenue_buckets(&store.revenue_days(range.start(), range.end()).await?, range.interval);
    let usage = usage_buckets(&store.usage_days(range.start(), range.end()).await?, range.interval);
    Ok(Overview {
        from: format_day(range.from_day),
        to: format_day(range.to_day),
        interval: range.interval,
        revenue,
        credits: store.credit_books().await?.into(),
        subscriptions: store
            .active_subscriptions_by_plan()
            .await?
            .into_iter()
            .map(|(plan, active)| PlanLine { plan, active })
            .collect(),
        top_customers: top_customers_of(store).await?,
        usage,
        units: store
            .units_used(range.start(), range.end())
            .await?
            .into_iter()
            .map(|u| UnitLine {
                feature: u.feature,
                unit: u.unit,
                quantity: u.quantity,
                requests: u.requests,
                credits: u.credits,
            })
            .collect(),
    })
}

fn range_of(state: &AppState, query: &RangeQuery) -> Result<Range, ApiError> {
    Range::parse(query, state.clock.now()).map_err(|(param, message)| ApiError::invalid(param, message))
}

/// `GET /v1/admin/reports/overview`: every figure of the overview page.
pub async fn overview(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<Overview>, ApiError> {
    let range = range_of(&state, &query)?;
    Ok(Json(overview_of(&state.store, range).await?))
}

/// `GET /v1/admin/reports/revenue`: gross, refunds, disputes lost and net per bucket and currency.
pub async fn revenue(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let range = range_of(&state, &query)?;
    let days = state.store.revenue_days(range.start(), range.end()).await?;
    let data = revenue_buckets(&days, range.interval);
    Ok(Json(serde_json::json!({"object": "list", "interval": range.interval, "data": data})).into_response())
}

/// `GET /v1/admin/reports/credits`: the books, all time.
pub async fn credits(State(state): State<AppState>, _admin: Admin) -> Result<Json<CreditsReport>, ApiError> {
    Ok(Json(state.store.credit_books().await?.into()))
}

/// `GET /v1/admin/reports/usage`: credits spent per bucket and feature.
pub async fn usage(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let range = range_of(&state, &query)?;
    let days = state.store.usage_days(range.start(), range.end()).await?;
    let data = usage_buckets(&days, range.interval);
    Ok(Json(serde_json::json!({"object": "list", "interval": range.interval, "data": data})).into_response())
}

/// `GET /v1/admin/reports/top-customers`: by money paid and by credits used, all time.
pub async fn top_customers(State(state): State<AppState>, _admin: Admin) -> Result<Json<TopCustomers>, ApiError> {
    Ok(Json(top_customers_of(&state.store).await?))
}
