//! CSV exports of the ledger, payments and usage for a date range. Streamed: rows are read
//! page by page (keyset pagination on the sequence number) while the response is being
//! written, so a large range never sits in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use creditd_store::Store;
use futures::stream;

use super::dates::format_day;
use super::reports::{Range, RangeQuery};
use super::{error_page, layout, Admin, Tab};
use crate::app::AppState;
use crate::pages::escape;

/// Rows per database read.
pub const PAGE_ROWS: i64 = 500;

/// `GET /admin/exports`
pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    let range = Range::parse(&RangeQuery::default(), state.clock.now()).expect("the default range is valid");
    let (from, to) = (format_day(range.from_day), format_day(range.to_day));
    let form = |kind: &str, label: &str, what: &str| {
        format!(
            "<section><h2>{label}</h2><p class=\"muted\">{what}</p><form method=\"get\" action=\"/admin/exports/{kind}.csv\" \
             style=\"display:flex;gap:1rem;align-items:end;flex-wrap:wrap\">\
             <label>From <input type=\"date\" name=\"from\" value=\"{}\" required></label>\
             <label>To (included) <input type=\"date\" name=\"to\" value=\"{}\" required></label>\
             <button type=\"submit\">Download {kind}.csv</button></form></section>",
            escape(&from),
            escape(&to)
        )
    };
    let body = format!(
        "<h1>Exports</h1><p class=\"muted\">CSV, one row per record, dates in UTC. Large ranges stream as they are read.</p>{}{}{}",
        form("ledger", "Ledger", "Every ledger entry: grants, usage, expiries, adjustments, with the balance after each."),
        form("payments", "Payments", "Every payment created in the range, with its status and amount in minor units."),
        form("usage", "Usage", "Usage entries only (credits spent), with feature and metadata.")
    );
    layout(&admin, Tab::Exports, "Exports", &body).into_response()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ledger,
    Payments,
    Usage,
}

/// A CSV field; text that a spreadsheet would run as a formula is prefixed with `'`.
fn text(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn header_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Ledger | Kind::Usage => {
            "id,created,customer,grant,kind,amount,balance_after,reference,feature,metadata\n"
        }
        Kind::Payments => {
            "id,created,customer,package,quantity,credits,amount_minor,currency,status,flow,checkout_session,payment_intent,grant,receipt_url\n"
        }
    }
}

/// One page of CSV rows after sequence `after`: the text and the last sequence, or `None` at the end.
async fn chunk(
    store: &Store,
    kind: Kind,
    range: Range,
    after: i64,
) -> Result<Option<(String, i64)>, creditd_store::StoreError> {
    let mut out = String::new();
    let last = match kind {
        Kind::Ledger | Kind::Usage => {
            let rows = store
                .export_entries(range.start(), range.end(), after, PAGE_ROWS, kind == Kind::Usage)
                .await?;
            for (_, e) in &rows {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    text(&e.id),
                    e.created,
                    text(&e.customer),
                    text(e.grant.as_deref().unwrap_or("")),
                    e.kind.as_str(),
                    e.amount,
                    e.balance_after,
                    text(e.reference.as_deref().unwrap_or("")),
                    text(e.feature.as_deref().unwrap_or("")),
                    text(&e.metadata.to_string())
                ));
            }
            rows.last().map(|(seq, _)| *seq)
        }
        Kind::Payments => {
            let rows = store
                .export_payments(range.start(), range.end(), after, PAGE_ROWS)
                .await?;
            for (_, p) in &rows {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    text(&p.id),
                    p.created,
                    text(&p.customer),
                    text(&p.package),
                    p.quantity,
                    p.credits,
                    p.amount,
                    text(&p.currency),
                    p.status.as_str(),
                    text(&p.flow),
                    text(p.checkout_session.as_deref().unwrap_or("")),
                    text(p.payment_intent.as_deref().unwrap_or("")),
                    text(p.grant.as_deref().unwrap_or("")),
                    text(p.receipt_url.as_deref().unwrap_or(""))
                ));
            }
            rows.last().map(|(seq, _)| *seq)
        }
    };
    Ok(last.map(|seq| (out, seq)))
}

/// `GET /admin/exports/{ledger|payments|usage}.csv?from=…&to=…`
pub async fn download(
    State(state): State<AppState>,
    admin: Admin,
    Path(file): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Response {
    let kind = match file.as_str() {
        "ledger.csv" => Kind::Ledger,
        "payments.csv" => Kind::Payments,
        "usage.csv" => Kind::Usage,
        _ => return error_page(&admin, Tab::Exports, StatusCode::NOT_FOUND, "No such export."),
    };
    let range = match Range::parse(&query, state.clock.now()) {
        Ok(r) => r,
        Err((param, message)) => {
            return error_page(
                &admin,
                Tab::Exports,
                StatusCode::BAD_REQUEST,
                &format!("{param}: {message}"),
            )
        }
    };
    let store = state.store.clone();
    // State: None before the header, Some(after) while paging, and a stop marker at the end.
    let rows = stream::unfold(Some(None::<i64>), move |cursor| {
        let store = store.clone();
        async move {
            let after = cursor?;
            let Some(after) = after else {
                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(header_of(kind))), Some(Some(0))));
            };
            match chunk(&store, kind, range, after).await {
                Ok(Some((text, last))) => Some((Ok(Bytes::from(text)), Some(Some(last)))),
                Ok(None) => None,
                Err(e) => {
                    // The status line is gone by now: end the body with an error so the
                    // download is visibly truncated rather than silently short.
                    tracing::error!(error = %e, "export failed midway");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let name = format!(
        "creditd-{}-{}-to-{}.csv",
        file.trim_end_matches(".csv"),
        format_day(range.from_day),
        format_day(range.to_day)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(rows),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(super::text("plain"), "plain");
        assert_eq!(super::text("a,b"), "\"a,b\"");
        assert_eq!(super::text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::text("=SUM(A1)"), "'=SUM(A1)");
    }
}
