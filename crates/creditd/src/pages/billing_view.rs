//! What the billing page shows, rendered through `templates/billing.html` (askama: the
//! template is checked when creditd compiles, and escapes everything it is given unless told
//! `|safe` — only creditd's own markup: times, the chart).

use askama::Template;
use creditd_domain::money::{self, PaymentStatus};
use creditd_domain::views::{
    AutoTopupView, Customer, EntitlementView, Entry, Feature, Package, Payment, Plan, PlanFeature, SubscriptionSummary,
};
use creditd_domain::{Credits, EntryKind};
use creditd_store::UsageBucket;

use super::chart::UsageChart;
use super::format;
use crate::clock::{iso_date, iso_minute, rfc3339};

pub const USAGE_DAYS: i64 = 30;

/// Everything the page shows.
pub struct View<'a> {
    pub customer: &'a Customer,
    pub auto_topup: Option<&'a AutoTopupView>,
    pub threshold: Credits,
    pub csrf: &'a str,
    pub packages: &'a [Package],
    pub payments: &'a [Payment],
    pub usage: &'a [UsageBucket],
    pub ledger: &'a [Entry],
    pub ledger_has_more: bool,
    pub ledger_paged: bool,
    pub now: i64,
    /// Active plans (free and paid), the plan that applies now, and the features they name.
    pub plans: &'a [Plan],
    pub plan: Option<&'a str>,
    pub features: &'a [Feature],
    pub entitlements: &'a [EntitlementView],
}

pub struct PackageCard {
    id: String,
    name: String,
    price: String,
    credits: String,
}

pub struct PlanCard {
    id: String,
    name: String,
    price: String,
    credits: String,
    includes: Vec<String>,
    current: bool,
    free: bool,
}

pub struct CurrentPlan {
    name: String,
    /// (CSS class, label).
    status: Option<(&'static str, &'static str)>,
    until: Option<String>,
}

pub struct EntitlementRow {
    name: String,
    included: String,
    used: String,
    resets: String,
}

pub struct PaymentRow {
    time: String,
    time_text: String,
    credits: String,
    amount: String,
    label: &'static str,
    class: &'static str,
    receipt: Option<String>,
}

pub struct LedgerRow {
    time: String,
    what: String,
    change: String,
    after: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
pub struct BillingPage {
    title: &'static str,
    /// The auto top-up section, as [`super::autotopup::section`] renders it (escaped there).
    auto_topup: String,
    style: &'static str,
    who: String,
    balance: String,
    available: String,
    held: Option<String>,
    frozen: Option<String>,
    owed: Option<String>,
    low: Option<String>,
    csrf: String,
    packages: Vec<PackageCard>,
    plans: Vec<PlanCard>,
    current: Option<CurrentPlan>,
    subscribed: bool,
    canceling: bool,
    entitlements: Vec<EntitlementRow>,
    usage_days: i64,
    usage_total: Option<String>,
    chart: String,
    payments: Vec<PaymentRow>,
    ledger: Vec<LedgerRow>,
    ledger_paged: bool,
    older: Option<String>,
}

/// A message page (errors, sessions that ended), optionally with the way back.
#[derive(Template)]
#[template(path = "billing_message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub style: &'static str,
    pub message: &'a str,
    pub back: bool,
}

pub fn render(view: &View, style: &'static str) -> String {
    let c = view.customer;
    let chart = UsageChart::build(view.usage, view.now, USAGE_DAYS);
    let (subscribed, canceling) = subscription_state(c.subscription.as_ref(), view.plan);
    let page = BillingPage {
        title: "Billing",
        style,
        who: c.email.clone().unwrap_or_else(|| c.id.clone()),
        balance: format::credits(c.balance),
        available: format::credits(c.available),
        held: c.held.is_positive().then(|| format::credits(c.held)),
        frozen: c.frozen.is_positive().then(|| format::credits(c.frozen)),
        owed: (c.balance < Credits::ZERO).then(|| format::credits(c.balance.abs())),
        low: (c.available <= view.threshold).then(|| format::credits(c.available)),
        csrf: view.csrf.to_string(),
        packages: view.packages.iter().map(package_card).collect(),
        auto_topup: super::autotopup::section(view.auto_topup, view.packages, view.csrf),
        plans: view.plans.iter().map(|p| plan_card(p, view)).collect(),
        current: current_plan(view),
        subscribed,
        canceling,
        entitlements: view.entitlements.iter().map(entitlement_row).collect(),
        usage_days: USAGE_DAYS,
        usage_total: (chart.total() != Credits::ZERO).then(|| format::credits(chart.total())),
        chart: if chart.total() == Credits::ZERO {
            String::new()
        } else {
            chart.render()
        },
        payments: view.payments.iter().map(payment_row).collect(),
        ledger: view.ledger.iter().map(ledger_row).collect(),
        ledger_paged: view.ledger_paged,
        older: view
            .ledger
            .last()
            .filter(|_| view.ledger_has_more)
            .map(|e| e.id.clone()),
    };
    page.render().expect("the billing template renders")
}

pub fn message(title: &str, message: &str, back: bool, style: &'static str) -> String {
    let page = MessagePage {
        title,
        style,
        message,
        back,
    };
    page.render().expect("the message template renders")
}

/// Whether the customer pays for the plan that applies (so it can switch or cancel), and
/// whether that subscription ends at the period's end.
fn subscription_state(sub: Option<&SubscriptionSummary>, plan: Option<&str>) -> (bool, bool) {
    match sub {
        Some(s) if s.plan.as_deref() == plan && ["active", "trialing", "past_due"].contains(&s.status.as_str()) => {
            (true, s.cancel_at_period_end)
        }
        _ => (false, false),
    }
}

fn package_card(p: &Package) -> PackageCard {
    PackageCard {
        id: p.id.clone(),
        name: p.name.clone(),
        price: money::display(p.price, &p.currency),
        credits: format::credits(p.credits),
    }
}

fn feature_name<'a>(view: &'a View, id: &'a str) -> &'a str {
    view.features
        .iter()
        .find(|f| f.id == id)
        .map_or(id, |f| f.name.as_str())
}

fn plan_card(p: &Plan, view: &View) -> PlanCard {
    let includes = p
        .features
        .iter()
        .filter_map(|(id, f)| match f {
            PlanFeature::Included(true) => Some(feature_name(view, id).to_string()),
            PlanFeature::Included(false) => None,
            PlanFeature::Limited { limit, period } => {
                Some(format!("{}: {limit} per {}", feature_name(view, id), period.as_str()))
            }
        })
        .collect();
    PlanCard {
        id: p.id.clone(),
        name: p.name.clone(),
        price: if p.free {
            "Free".to_string()
        } else {
            format!("{} / {}", money::display(p.price, &p.currency), p.interval)
        },
        credits: if p.free {
            format!("{} credits every month", format::credits(p.credits))
        } else {
            format!("{} credits every {}", format::credits(p.credits), p.interval)
        },
        includes,
        current: view.plan == Some(p.id.as_str()),
        free: p.free,
    }
}

fn current_plan(view: &View) -> Option<CurrentPlan> {
    let plan = view.plans.iter().find(|p| Some(p.id.as_str()) == view.plan)?;
    let sub = view
        .customer
        .subscription
        .as_ref()
        .filter(|s| s.plan.as_deref() == view.plan);
    let status = sub.map(|s| match (s.status.as_str(), s.cancel_at_period_end) {
        ("trialing", _) => ("trialing", "Trial"),
        ("past_due", _) => ("past_due", "Payment failed: past due"),
        (_, true) => ("canceling", "Cancels at the end of the period"),
        _ => ("active", "Active"),
    });
    let until = sub
        .and_then(|s| s.current_period_end)
        .map(|end| match sub.is_some_and(|s| s.cancel_at_period_end) {
            true => format!("until {}", iso_date(end)),
            false => format!("renews {}", iso_date(end)),
        });
    Some(CurrentPlan {
        name: plan.name.clone(),
        status,
        until,
    })
}

fn entitlement_row(e: &EntitlementView) -> EntitlementRow {
    let dash = || "—".to_string();
    EntitlementRow {
        name: e.name.clone(),
        included: match (e.included, e.limit, e.period) {
            (false, ..) => "Not in your plan".to_string(),
            (true, Some(limit), Some(period)) => format!("{limit} per {}", period.as_str()),
            _ => "Yes".to_string(),
        },
        used: match (e.used, e.limit) {
            (Some(used), Some(limit)) => format!("{used} of {limit}"),
            _ => dash(),
        },
        resets: e.resets_at.map_or_else(dash, time),
    }
}

fn payment_row(p: &Payment) -> PaymentRow {
    let (label, class) = match p.status {
        PaymentStatus::Succeeded => ("Paid", "succeeded"),
        PaymentStatus::Pending => ("Pending", "pending"),
        PaymentStatus::Failed => ("Failed", "failed"),
        PaymentStatus::Expired => ("Not completed", "expired"),
    };
    PaymentRow {
        time: time(p.created),
        time_text: time_text(p.created),
        credits: format::credits_exact(p.credits),
        amount: money::display(p.amount, &p.currency),
        label,
        class,
        receipt: p
            .receipt_url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
    }
}

fn ledger_row(e: &Entry) -> LedgerRow {
    let what = match (e.kind, &e.feature) {
        (EntryKind::Grant, _) => "Credits added".to_string(),
        (EntryKind::Usage, Some(f)) => format!("Used: {f}"),
        (EntryKind::Usage, None) => "Used".to_string(),
        (EntryKind::Expire, _) => "Expired unused".to_string(),
        (EntryKind::Clawback, _) => "Taken back (refund or lost dispute)".to_string(),
        (EntryKind::Freeze, _) => "Frozen during a payment dispute".to_string(),
        (EntryKind::Unfreeze, _) => "Unfrozen after a payment dispute".to_string(),
        (EntryKind::DebtPayment, _) => "Paid towards what you owed".to_string(),
    };
    LedgerRow {
        time: time(e.created),
        what,
        change: format::signed_credits(e.amount),
        after: format::credits_exact(e.balance_after),
    }
}

/// A `<time>` element (creditd's own markup, rendered `|safe`).
fn time(unix: i64) -> String {
    format!("<time datetime=\"{}\">{}</time>", rfc3339(unix), time_text(unix))
}

/// `2026-11-22 13:32`; the footer says the times are UTC.
fn time_text(unix: i64) -> String {
    iso_minute(unix).trim_end_matches(" UTC").to_string()
}
