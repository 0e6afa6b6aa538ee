//! The catalog: credit packages (create, archive, sync from Stripe), features and their rate
//! cards (create, archive), and what each plan includes.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use creditd_domain::money::display;
use creditd_domain::pricing::{RateCard, DEFAULT_PER};
use creditd_domain::views::{Feature, Package, Plan};
use creditd_domain::{validate, Credits};
use creditd_store::NewFeature;
use serde::Deserialize;

use super::dates::format_time;
use super::overview::urlencode;
use super::{csrf_field, internal, layout, Admin, AdminForm, Tab};
use crate::app::AppState;
use crate::billing::packages::{self, PackageSpec};

/// `GET /admin/catalog`
pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    render(&state, &admin, None, StatusCode::OK).await
}

struct PackageRow {
    id: String,
    name: String,
    credits: Credits,
    price: String,
    stripe_price: String,
    state: &'static str,
    created: String,
    active: bool,
}

struct FeatureRow {
    id: String,
    /// The id as a URL path segment.
    path: String,
    name: String,
    prices: String,
    gated: bool,
    active: bool,
}

struct PlanRow {
    id: String,
    name: String,
    credits: Credits,
    price: String,
    rollover: Credits,
    state: &'static str,
    /// The plan's features as the form edits them (JSON).
    features: String,
}

/// The catalog's body, through `templates/admin_catalog.html`.
#[derive(Template)]
#[template(path = "admin_catalog.html")]
struct CatalogPage {
    error: Option<String>,
    notice: Option<String>,
    /// The form's hidden CSRF field (creditd's own markup).
    csrf: String,
    packages: Vec<PackageRow>,
    features: Vec<FeatureRow>,
    plans: Vec<PlanRow>,
}

fn package_row(p: &Package) -> PackageRow {
    PackageRow {
        id: p.id.clone(),
        name: p.name.clone(),
        credits: p.credits,
        price: display(p.price, &p.currency),
        stripe_price: p.stripe_price.clone().unwrap_or_else(|| "created on first sale".into()),
        state: if p.active { "active" } else { "archived" },
        created: format_time(p.created),
        active: p.active,
    }
}

fn feature_row(f: &Feature) -> FeatureRow {
    let prices = if f.prices.is_empty() {
        "by amount".to_string()
    } else {
        let list: Vec<String> = f.prices.iter().map(|(u, p)| format!("{u} {p}")).collect();
        format!("{} per {}", list.join(", "), f.per)
    };
    FeatureRow {
        id: f.id.clone(),
        path: urlencode(&f.id),
        name: f.name.clone(),
        prices,
        gated: f.gated,
        active: f.active,
    }
}

fn plan_row(p: &Plan) -> PlanRow {
    PlanRow {
        id: p.id.clone(),
        name: p.name.clone(),
        credits: p.credits,
        price: if p.free {
            "free".into()
        } else {
            format!("{} / {}", display(p.price, &p.currency), p.interval)
        },
        rollover: p.rollover_cap,
        state: if p.active { "active" } else { "archived" },
        features: serde_json::to_string(&p.features).unwrap_or_default(),
    }
}

async fn render(state: &AppState, admin: &Admin, error: Option<String>, status: StatusCode) -> Response {
    render_with(state, admin, error, None, status).await
}

async fn render_with(
    state: &AppState,
    admin: &Admin,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let (packages, features, plans) = tokio::join!(
        state.store.packages(true),
        state.store.features(true),
        state.store.plans(true)
    );
    let (packages, features, plans) = match (packages, features, plans) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return internal(admin, Tab::Catalog, e),
    };
    let page = CatalogPage {
        error,
        notice,
        csrf: csrf_field(admin),
        packages: packages.iter().map(package_row).collect(),
        features: features.iter().map(feature_row).collect(),
        plans: plans.iter().map(plan_row).collect(),
    };
    match page.render() {
        Ok(body) => (status, layout(admin, Tab::Catalog, "Catalog", &body)).into_response(),
        Err(e) => internal(admin, Tab::Catalog, e),
    }
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

#[derive(Deserialize)]
pub struct FeatureForm {
    pub id: String,
    pub name: String,
    /// `unit=price, unit=price`; empty for a feature used by amount.
    pub prices: String,
    pub per: String,
    #[allow(dead_code)]
    pub csrf: String,
}

/// `unit=price, unit=price` as a rate card; errors say what is wrong.
fn rate_card(prices: &str, per: &str) -> Result<Option<RateCard>, String> {
    let prices = prices.trim();
    if prices.is_empty() {
        return Ok(None);
    }
    let mut map = BTreeMap::new();
    for pair in prices.split(',') {
        let (unit, price) = pair.split_once('=').ok_or_else(|| {
            format!(
                "Prices: write unit=price, such as input_tokens=2.5 (not {:?})",
                pair.trim()
            )
        })?;
        let price = Credits::parse(price.trim()).map_err(|e| format!("Price of {}: {e}", unit.trim()))?;
        map.insert(unit.trim().to_string(), price);
    }
    let per = match per.trim() {
        "" => DEFAULT_PER,
        text => text
            .parse()
            .map_err(|_| "Per units must be a whole number".to_string())?,
    };
    RateCard::new(per, map).map(Some).map_err(|e| e.to_string())
}

/// `POST /admin/catalog/features`
pub async fn create_feature(State(state): State<AppState>, form: AdminForm<FeatureForm>) -> Response {
    let AdminForm { admin, value: form } = form;
    let bad = |message: String| async { render(&state, &admin, Some(message), StatusCode::BAD_REQUEST).await };
    if let Err(m) = validate::feature(form.id.trim()) {
        return bad(format!("Id {m}")).await;
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 || validate::text(name).is_err() {
        return bad("Name must be 1 to 100 characters".into()).await;
    }
    let card = match rate_card(&form.prices, &form.per) {
        Ok(card) => card,
        Err(m) => return bad(m).await,
    };
    let new = NewFeature {
        id: form.id.trim().to_string(),
        name: name.to_string(),
        card,
    };
    match state.store.create_feature(&new, state.clock.now()).await {
        Ok(Some(_)) => {
            tracing::info!(admin = %admin.session.email, feature = %new.id, "feature created from the dashboard");
            Redirect::to("/admin/catalog").into_response()
        }
        Ok(None) => bad(format!("Feature {} already exists", new.id)).await,
        Err(e) => internal(&admin, Tab::Catalog, e),
    }
}

/// `POST /admin/catalog/features/{id}/archive`
pub async fn archive_feature(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm<ArchiveForm>,
) -> Response {
    match state.store.archive_feature(&id, state.clock.now()).await {
        Ok(Some(_)) => Redirect::to("/admin/catalog").into_response(),
        Ok(None) => {
            render(
                &state,
                &form.admin,
                Some(format!("No feature {id}")),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => internal(&form.admin, Tab::Catalog, e),
    }
}

#[derive(Deserialize)]
pub struct PlanFeaturesForm {
    /// JSON: feature id → `true` or `{"limit", "period"}`.
    pub features: String,
    #[allow(dead_code)]
    pub csrf: String,
}

/// `POST /admin/catalog/plans/{id}/features`
pub async fn plan_features(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm<PlanFeaturesForm>,
) -> Response {
    let AdminForm { admin, value: form } = form;
    let parsed: Result<BTreeMap<String, serde_json::Value>, _> = serde_json::from_str(form.features.trim());
    let Ok(parsed) = parsed else {
        let message = "Features must be a JSON object such as {\"chat\": true}".to_string();
        return render(&state, &admin, Some(message), StatusCode::BAD_REQUEST).await;
    };
    let features = match crate::billing::plans::entitlements(&state.store, parsed).await {
        Ok(f) => f,
        Err(e) => {
            let (field, m) = e.describe();
            return render(&state, &admin, Some(format!("{field}: {m}")), StatusCode::BAD_REQUEST).await;
        }
    };
    match state.store.set_plan_features(&id, &features).await {
        Ok(true) => {
            tracing::info!(admin = %admin.session.email, plan = %id, "plan features changed from the dashboard");
            Redirect::to("/admin/catalog").into_response()
        }
        Ok(false) => render(&state, &admin, Some(format!("No plan {id}")), StatusCode::NOT_FOUND).await,
        Err(e) => internal(&admin, Tab::Catalog, e),
    }
}

/// `POST /admin/catalog/packages/sync`: `creditd packages sync` from the dashboard.
pub async fn sync_packages(State(state): State<AppState>, form: AdminForm<ArchiveForm>) -> Response {
    let admin = form.admin;
    match crate::billing::package_sync::sync(&state.store, &state.stripe.client, state.clock.now()).await {
        Ok(report) => {
            tracing::info!(admin = %admin.session.email, "packages synced from the dashboard");
            let lines = report.lines();
            let notice = lines.join(" · ");
            render_with(&state, &admin, None, Some(notice), StatusCode::OK).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "package sync failed");
            let message = "The sync failed; it has been logged.".to_string();
            render(&state, &admin, Some(message), StatusCode::BAD_GATEWAY).await
        }
    }
}
