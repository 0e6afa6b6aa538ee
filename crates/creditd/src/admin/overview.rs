//! `GET /admin`: revenue over time, the credits books, subscriptions, top customers and
//! usage by feature.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use creditd_domain::money::display;
use creditd_domain::Credits;

use super::charts::{bars, Series, PALETTE};
use super::dates::{format_day, Interval};
use super::reports::{overview_of, Overview, Range, RangeQuery};
use super::{error_page, internal, layout, Admin, Tab};
use crate::app::AppState;
use crate::pages::escape;

pub async fn page(State(state): State<AppState>, admin: Admin, Query(query): Query<RangeQuery>) -> Response {
    let range = match Range::parse(&query, state.clock.now()) {
        Ok(r) => r,
        Err((param, message)) => {
            return error_page(
                &admin,
                Tab::Overview,
                StatusCode::BAD_REQUEST,
                &format!("{param}: {message}"),
            )
        }
    };
    match overview_of(&state.store, range).await {
        Ok(overview) => layout(&admin, Tab::Overview, "Overview", &render(&overview, &range)).into_response(),
        Err(e) => internal(&admin, Tab::Overview, e),
    }
}

fn range_form(overview: &Overview) -> String {
    let options: String = Interval::ALL
        .iter()
        .map(|i| {
            let selected = if *i == overview.interval { " selected" } else { "" };
            format!("<option value=\"{0}\"{selected}>{0}</option>", i.as_str())
        })
        .collect();
    format!(
        "<form method=\"get\" action=\"/admin\" style=\"display:flex;gap:1rem;align-items:end;flex-wrap:wrap\">\
         <label>From <input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>To <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>By <select name=\"interval\">{options}</select></label><button type=\"submit\">Show</button></form>",
        escape(&overview.from),
        escape(&overview.to)
    )
}

fn render(o: &Overview, range: &Range) -> String {
    let mut body = format!(
        "<h1>Overview</h1><section>{}<p class=\"muted\">{} to {}, by {} (UTC). Money is shown per currency and never converted.</p></section>",
        range_form(o),
        escape(&o.from),
        escape(&o.to),
        o.interval.as_str()
    );
    body.push_str(&revenue_section(o, range));
    body.push_str("<div class=\"grid\">");
    body.push_str(&books_section(o));
    body.push_str(&subscriptions_section(o));
    body.push_str("</div>");
    body.push_str(&usage_section(o, range));
    body.push_str(&units_section(o));
    body.push_str(&top_section(o));
    body
}

fn revenue_section(o: &Overview, range: &Range) -> String {
    let labels: Vec<String> = range.buckets().into_iter().map(format_day).collect();
    let currencies: BTreeSet<&str> = o.revenue.iter().map(|r| r.currency.as_str()).collect();
    let mut out = String::from("<section aria-labelledby=\"rev-h\"><h2 id=\"rev-h\">Revenue</h2>");
    if currencies.is_empty() {
        out.push_str("<p class=\"muted\">No payments in this range.</p></section>");
        return out;
    }
    for (n, currency) in currencies.iter().enumerate() {
        let line = |f: fn(&super::reports::RevenueBucket) -> i64| -> Vec<(i64, String)> {
            labels
                .iter()
                .map(|l| {
                    let v = o
                        .revenue
                        .iter()
                        .find(|r| &r.start == l && r.currency == *currency)
                        .map(f)
                        .unwrap_or(0);
                    (v, display(v, currency))
                })
                .collect()
        };
        let series = [
            Series {
                name: "gross",
                color: PALETTE[0],
                values: line(|r| r.gross),
            },
            Series {
                name: "refunds",
                color: PALETTE[1],
                values: line(|r| r.refunds),
            },
            Series {
                name: "disputes lost",
                color: PALETTE[3],
                values: line(|r| r.disputes_lost),
            },
            Series {
                name: "net",
                color: PALETTE[2],
                values: line(|r| r.net),
            },
        ];
        let title = format!("Revenue in {}", currency.to_uppercase());
        out.push_str(&format!("<h3>{}</h3>", escape(&title)));
        out.push_str(&bars(&format!("rev{n}"), &title, &labels, &series));
    }
    out.push_str(
        "<table><thead><tr><th>From</th><th>Currency</th><th class=\"n\">Gross</th><th class=\"n\">Refunds</th>\
         <th class=\"n\">Disputes lost</th><th class=\"n\">Net</th></tr></thead><tbody>",
    );
    let mut totals: BTreeMap<&str, [i64; 4]> = BTreeMap::new();
    for r in &o.revenue {
        let t = totals.entry(&r.currency).or_default();
        for (slot, v) in t.iter_mut().zip([r.gross, r.refunds, r.disputes_lost, r.net]) {
            *slot += v;
        }
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&r.start),
            escape(&r.currency.to_uppercase()),
            escape(&display(r.gross, &r.currency)),
            escape(&display(r.refunds, &r.currency)),
            escape(&display(r.disputes_lost, &r.currency)),
            escape(&display(r.net, &r.currency)),
        ));
    }
    for (currency, [g, r, d, n]) in totals {
        out.push_str(&format!(
            "<tr><th>Total</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\" data-total=\"net-{}\">{}</th></tr>",
            escape(&currency.to_uppercase()),
            escape(&display(g, currency)),
            escape(&display(r, currency)),
            escape(&display(d, currency)),
            escape(currency),
            escape(&display(n, currency)),
        ));
    }
    out.push_str("</tbody></table></section>");
    out
}

fn books_section(o: &Overview) -> String {
    let c = &o.credits;
    let row = |label: &str, sign: &str, v: Credits, id: &str| {
        format!("<tr><td>{label}</td><td class=\"n\" data-line=\"{id}\">{sign}{v}</td></tr>")
    };
    let mut rows = String::new();
    rows.push_str(&row("Issued (grants of every source)", "", c.issued, "issued"));
    rows.push_str(&row("Spent by customers", "− ", c.spent, "spent"));
    rows.push_str(&row("Deducted by admins", "− ", c.deducted_by_admins, "deducted"));
    rows.push_str(&row("Expired", "− ", c.expired, "expired"));
    rows.push_str(&row(
        "Clawed back (refunds, disputes)",
        "− ",
        c.clawed_back,
        "clawed_back",
    ));
    for other in &c.other {
        rows.push_str(&row(&escape(&other.kind), "", other.amount, &escape(&other.kind)));
    }
    let verdict = if c.balanced {
        "<p class=\"ok\" data-books=\"balanced\">✓ The books balance: the lines above add up to the outstanding credits.</p>"
    } else {
        "<p class=\"err\" data-books=\"unbalanced\">✗ The books do not balance: run <code>creditd verify</code>.</p>"
    };
    format!(
        "<section aria-labelledby=\"books-h\"><h2 id=\"books-h\">Credits (all time)</h2><table><tbody>{rows}\
         <tr><th>Outstanding (the liability)</th><th class=\"n\" data-line=\"outstanding\">= {}</th></tr></tbody></table>{verdict}\
         <p class=\"muted\">Outstanding is every customer's balance: credits issued and not yet used.</p></section>",
        c.outstanding
    )
}

fn subscriptions_section(o: &Overview) -> String {
    let body = if o.subscriptions.is_empty() {
        "<p class=\"muted\">No subscription plans yet. Active subscriptions by plan appear here once plans are sold.</p>".to_string()
    } else {
        let rows: String = o
            .subscriptions
            .iter()
            .map(|p| format!("<tr><td>{}</td><td class=\"n\">{}</td></tr>", escape(&p.plan), p.active))
            .collect();
        format!("<table><thead><tr><th>Plan</th><th class=\"n\">Active</th></tr></thead><tbody>{rows}</tbody></table>")
    };
    format!("<section aria-labelledby=\"subs-h\"><h2 id=\"subs-h\">Active subscriptions</h2>{body}</section>")
}

fn usage_section(o: &Overview, range: &Range) -> String {
    let labels: Vec<String> = range.buckets().into_iter().map(format_day).collect();
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for u in &o.usage {
        *totals.entry(&u.feature).or_default() += u.credits.micros();
    }
    // The biggest features get their own colour; the rest are summed as "other".
    let mut ranked: Vec<(&str, i64)> = totals.iter().map(|(f, t)| (*f, *t)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = ranked.iter().take(PALETTE.len() - 1).map(|(f, _)| *f).collect();
    let mut names: Vec<String> = shown
        .iter()
        .map(|f| {
            if f.is_empty() {
                "(no feature)".to_string()
            } else {
                f.to_string()
            }
        })
        .collect();
    let has_other = ranked.len() > shown.len();
    if has_other {
        names.push("other".into());
    }
    let series: Vec<Series<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = labels
                .iter()
                .map(|l| {
                    let v: i64 = o
                        .usage
                        .iter()
                        .filter(|u| &u.start == l)
                        .filter(|u| match shown.get(i) {
                            Some(f) => u.feature == *f,
                            None => !shown.contains(&u.feature.as_str()),
                        })
                        .map(|u| u.credits.micros())
                        .sum();
                    (v, format!("{} credits", Credits::from_micros(v)))
                })
                .collect();
            Series {
                name,
                color: PALETTE[i],
                values,
            }
        })
        .collect();
    let table: String = ranked
        .iter()
        .map(|(f, t)| {
            let name = if f.is_empty() { "(no feature)" } else { f };
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(name),
                Credits::from_micros(*t)
            )
        })
        .collect();
    let empty = if ranked.is_empty() {
        "<p class=\"muted\">No usage in this range.</p>"
    } else {
        ""
    };
    format!(
        "<section aria-labelledby=\"use-h\"><h2 id=\"use-h\">Usage by feature</h2>{}{empty}\
         <table><thead><tr><th>Feature</th><th class=\"n\">Credits spent in range</th></tr></thead><tbody>{table}</tbody></table></section>",
        bars("use", "Credits spent by feature", &labels, &series)
    )
}

/// Units of priced requests by feature: what the app's users consumed, beside what it cost.
fn units_section(o: &Overview) -> String {
    if o.units.is_empty() {
        return String::new();
    }
    let rows: String = o
        .units
        .iter()
        .map(|u| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&u.feature),
                escape(&u.unit),
                u.quantity,
                u.requests,
                u.credits
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"units-h\"><h2 id=\"units-h\">Units by feature</h2><table><thead><tr><th>Feature</th>\
         <th>Unit</th><th class=\"n\">Units</th><th class=\"n\">Priced requests</th><th class=\"n\">Credits (feature)</th></tr></thead>\
         <tbody>{rows}</tbody></table></section>"
    )
}

fn top_section(o: &Overview) -> String {
    let link = |id: &str| {
        format!(
            "<a href=\"/admin/customers/{}\">{}</a>",
            escape(&urlencode(id)),
            escape(id)
        )
    };
    let spend: String = o
        .top_customers
        .by_spend
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                link(&s.customer),
                escape(&display(s.amount, &s.currency))
            )
        })
        .collect();
    let usage: String = o
        .top_customers
        .by_usage
        .iter()
        .map(|u| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                link(&u.customer),
                u.credits
            )
        })
        .collect();
    let none = "<tr><td colspan=\"2\" class=\"muted\">Nobody yet.</td></tr>";
    format!(
        "<div class=\"grid\"><section aria-labelledby=\"ts-h\"><h2 id=\"ts-h\">Top customers by spend</h2>\
         <table><thead><tr><th>Customer</th><th class=\"n\">Paid</th></tr></thead><tbody>{}</tbody></table></section>\
         <section aria-labelledby=\"tu-h\"><h2 id=\"tu-h\">Top customers by usage</h2>\
         <table><thead><tr><th>Customer</th><th class=\"n\">Credits spent</th></tr></thead><tbody>{}</tbody></table></section></div>",
        if spend.is_empty() { none } else { &spend },
        if usage.is_empty() { none } else { &usage },
    )
}

/// Percent-encodes a path segment (customer ids may hold `:`, `@`, `+`, `|`, `=`).
pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
