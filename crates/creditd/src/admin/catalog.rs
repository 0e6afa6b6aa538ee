//! The catalog: credit packages (create, archive). Subscription plans join it when they exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use creditd_domain::money::display;
use creditd_domain::Credits;
use serde::Deserialize;

use super::dates::format_time;
use super::overview::urlencode;
use super::{csrf_field, internal, layout, Admin, AdminForm, Tab};
use crate::app::AppState;
use crate::billing::packages::{self, PackageSpec};
use crate::pages::escape;

/// `GET /admin/catalog`
pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    render(&state, &admin, None, StatusCode::OK).await
}

async fn render(state: &AppState, admin: &Admin, error: Option<String>, status: StatusCode) -> Response {
    let list = match state.store.packages(true).await {
        Ok(l) => l,
        Err(e) => return internal(admin, Tab::Catalog, e),
    };
    let rows: String = list
        .iter()
        .map(|p| {
            let action = if p.active {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/admin/catalog/packages/{}/archive\">{}<button type=\"submit\" aria-label=\"Archive {}\">Archive</button></form>",
                    escape(&urlencode(&p.id)),
                    csrf_field(admin),
                    escape(&p.name)
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                escape(&p.id),
                escape(&p.name),
                p.credits,
                escape(&display(p.price, &p.currency)),
                escape(p.stripe_price.as_deref().unwrap_or("created on first sale")),
                if p.active { "active" } else { "archived" },
                format_time(p.created)
            )
        })
        .collect();
    let table = if list.is_empty() {
        "<p class=\"muted\">No packages yet: create the first one below.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Id</th><th>Name</th><th class=\"n\">Credits</th><th class=\"n\">Price</th><th>Stripe Price</th>\
             <th>State</th><th>Created</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let plans = match state.store.plans(true).await {
        Ok(p) => p,
        Err(e) => return internal(admin, Tab::Catalog, e),
    };
    let plans = if plans.is_empty() {
        "<p class=\"muted\">No plans yet: create one with <code>creditd plans create</code> or <code>POST /v1/plans</code>.</p>"
            .to_string()
    } else {
        let rows: String = plans
            .iter()
            .map(|p| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    escape(&p.id),
                    escape(&p.name),
                    p.credits,
                    escape(&display(p.price, &p.currency)),
                    escape(&p.interval),
                    p.rollover_cap,
                    if p.active { "active" } else { "archived" }
                )
            })
            .collect();
        format!(
            "<table><thead><tr><th>Id</th><th>Name</th><th class=\"n\">Credits per period</th><th class=\"n\">Price</th>\
             <th class=\"n\">Rollover cap</th><th>State</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let error = error
        .map(|e| format!("<p class=\"flash err\" role=\"alert\">{}</p>", escape(&e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Catalog</h1>{error}<section><h2>Credit packages</h2>{table}</section>\
         <section><h2>New package</h2><form method=\"post\" action=\"/admin/catalog/packages\">{}\
         <label>Name <input name=\"name\" required maxlength=\"100\"></label>\
         <label>Credits <input name=\"credits\" required inputmode=\"decimal\" placeholder=\"100\"></label>\
         <label>Price in minor units (500 = 5.00) <input name=\"price\" required inputmode=\"numeric\" placeholder=\"500\"></label>\
         <label>Currency <input name=\"currency\" required value=\"usd\" maxlength=\"3\" size=\"4\"></label>\
         <button type=\"submit\">Create package</button></form></section>\
         <section><h2>Subscription plans</h2>{plans}</section>",
        csrf_field(admin)
    );
    (status, layout(admin, Tab::Catalog, "Catalog", &body)).into_response()
}

#[derive(Deserialize)]
pub struct PackageForm {
    pub name: String,
    pub credits: String,
    pub price: String,
    pub currency: String,
    #[allow(dead_code)]
    pub csrf: String,
}

/// `POST /admin/catalog/packages`
pub async fn create_package(State(state): State<AppState>, form: AdminForm<PackageForm>) -> Response {
    let AdminForm { admin, value: form } = form;
    let credits = match Credits::parse(form.credits.trim()) {
        Ok(c) => c,
        Err(e) => return render(&state, &admin, Some(format!("Credits {e}")), StatusCode::BAD_REQUEST).await,
    };
    let Ok(price) = form.price.trim().parse::<i64>() else {
        return render(
            &state,
            &admin,
            Some("Price must be a whole number of minor units (500 = 5.00).".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let spec = PackageSpec {
        name: form.name,
        credits,
        price: Some((price, form.currency.trim().to_string())),
        stripe_price: None,
    };
    match packages::create(&state.store, None, spec, state.clock.now()).await {
        Ok(p) => {
            tracing::info!(admin = %admin.session.email, package = %p.id, "package created from the dashboard");
            Redirect::to("/admin/catalog").into_response()
        }
        Err(packages::Refusal { field, message, .. }) => {
            render(
                &state,
                &admin,
                Some(format!("{field}: {message}")),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ArchiveForm {
    #[allow(dead_code)]
    pub csrf: String,
}

/// `POST /admin/catalog/packages/{id}/archive`
pub async fn archive_package(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm<ArchiveForm>,
) -> Response {
    match state.store.archive_package(&id).await {
        Ok(true) => {
            tracing::info!(admin = %form.admin.session.email, package = %id, "package archived from the dashboard");
            Redirect::to("/admin/catalog").into_response()
        }
        Ok(false) => {
            render(
                &state,
                &form.admin,
                Some(format!("No active package {id}")),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => internal(&form.admin, Tab::Catalog, e),
    }
}
