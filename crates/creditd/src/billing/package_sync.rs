//! `creditd packages sync`: packages from the one-time Prices in Stripe's catalog whose Price
//! or Product carries `credits_amount` metadata (see `creditd_domain::package_sync`).

use creditd_domain::package_sync::{plan, PackageShape, StripePrice, SyncAction, CREDITS_KEY};
use creditd_domain::views::Package;
use creditd_store::{NewPackage, Store};
use creditd_stripe::client::{CatalogPrice, StripeClient};
use serde::Serialize;

use super::BillingError;

/// What a sync did, package by package.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub created: Vec<Package>,
    pub updated: Vec<Package>,
    pub archived: Vec<String>,
    pub unchanged: Vec<String>,
    /// Prices with `credits_amount` that cannot be packages, and why.
    pub refused: Vec<Refused>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Refused {
    pub price: String,
    pub reason: String,
}

impl SyncReport {
    /// One line per change, for the command line.
    pub fn lines(&self) -> Vec<String> {
        let describe = |p: &Package| {
            let money = creditd_domain::money::display(p.price, &p.currency);
            format!(
                "{} {} ({}): {} credits for {money}",
                p.id,
                p.name,
                p.stripe_price.as_deref().unwrap_or("-"),
                p.credits
            )
        };
        let mut lines: Vec<String> = self
            .created
            .iter()
            .map(|p| format!("created {}", describe(p)))
            .collect();
        lines.extend(self.updated.iter().map(|p| format!("updated {}", describe(p))));
        lines.extend(self.archived.iter().map(|id| format!("archived {id}")));
        lines.extend(
            self.refused
                .iter()
                .map(|r| format!("refused {}: {}", r.price, r.reason)),
        );
        lines.push(format!(
            "{} created, {} updated, {} archived, {} unchanged, {} refused",
            self.created.len(),
            self.updated.len(),
            self.archived.len(),
            self.unchanged.len(),
            self.refused.len()
        ));
        lines
    }
}

fn sync_price(price: CatalogPrice) -> Option<StripePrice> {
    if !price.product_active {
        return None;
    }
    let credits_amount = price
        .metadata
        .get(CREDITS_KEY)
        .or_else(|| price.product_metadata.get(CREDITS_KEY))
        .cloned();
    Some(StripePrice {
        name: price.nickname.clone().unwrap_or(price.product_name),
        id: price.id,
        unit_amount: price.unit_amount,
        currency: price.currency,
        recurring: price.recurring,
        credits_amount,
    })
}

fn new_package(shape: PackageShape) -> NewPackage {
    NewPackage {
        name: shape.name,
        credits: shape.credits,
        price: shape.price,
        currency: shape.currency,
        stripe_price: Some(shape.stripe_price),
    }
}

/// Reads Stripe's active Prices and creates, updates and archives packages to match.
pub async fn sync(store: &Store, stripe: &StripeClient, now: i64) -> Result<SyncReport, BillingError> {
    let prices: Vec<StripePrice> = stripe
        .list_active_prices()
        .await?
        .into_iter()
        .filter_map(sync_price)
        .collect();
    let imported = store.synced_packages().await?;
    let existing = store.packages(true).await?;
    let mut report = SyncReport::default();
    for action in plan(&prices, &imported, &existing) {
        match action {
            SyncAction::Create(shape) => report
                .created
                .push(store.create_synced_package(&new_package(shape), now).await?),
            SyncAction::Update(id, shape) => {
                store.update_synced_package(&id, &new_package(shape)).await?;
                let package = store.package(&id).await?;
                report.updated.extend(package);
            }
            SyncAction::Unchanged(id) => report.unchanged.push(id),
            SyncAction::Archive(id) => {
                store.archive_package(&id).await?;
                report.archived.push(id);
            }
            SyncAction::Refuse { price, reason } => report.refused.push(Refused { price, reason }),
        }
    }
    Ok(report)
}
