//! `packages sync`: which packages Stripe's catalog implies. A one-time Price whose Price or
//! Product metadata has `credits_amount` is a package (the Price's metadata wins); recurring
//! Prices with it are refused by name; packages imported before whose Price is gone (archived
//! or its metadata removed) are archived.

use crate::amount::Credits;
use crate::views::Package;

/// The metadata key that makes a Price a credit package.
pub const CREDITS_KEY: &str = "credits_amount";

/// An active Price as sync sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripePrice {
    pub id: String,
    /// The Price's nickname, else its Product's name.
    pub name: String,
    pub unit_amount: Option<i64>,
    pub currency: String,
    pub recurring: bool,
    /// `credits_amount` from the Price's metadata, else the Product's.
    pub credits_amount: Option<String>,
}

/// What a package should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageShape {
    pub name: String,
    pub credits: Credits,
    pub price: i64,
    pub currency: String,
    pub stripe_price: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncAction {
    Create(PackageShape),
    /// The package (by id) changes to this shape, and is active again if it was archived.
    Update(String, PackageShape),
    Unchanged(String),
    Archive(String),
    /// A Price that carries `credits_amount` but cannot be a package, and why.
    Refuse {
        price: String,
        reason: String,
    },
}

fn shape(price: &StripePrice, credits: &str) -> Result<PackageShape, String> {
    if price.recurring {
        return Err(format!(
            "{} is a recurring price; packages take one-time prices (use it for a plan)",
            price.id
        ));
    }
    let credits = Credits::parse(credits)
        .and_then(Credits::positive)
        .map_err(|e| format!("{}: {CREDITS_KEY} {e}", price.id))?;
    let amount = price
        .unit_amount
        .filter(|a| *a > 0)
        .ok_or_else(|| format!("{} has no fixed positive amount", price.id))?;
    Ok(PackageShape {
        name: price.name.chars().take(100).collect(),
        credits,
        price: amount,
        currency: price.currency.to_ascii_lowercase(),
        stripe_price: price.id.clone(),
    })
}

fn same(package: &Package, shape: &PackageShape) -> bool {
    package.active
        && package.name == shape.name
        && package.credits == shape.credits
        && package.price == shape.price
        && package.currency == shape.currency
}

/// The actions that bring `imported` (packages created by earlier syncs) and `existing` (every
/// package, to find one already selling a Price) in line with `prices`.
pub fn plan(prices: &[StripePrice], imported: &[Package], existing: &[Package]) -> Vec<SyncAction> {
    let mut actions = Vec::new();
    let mut kept = Vec::new();
    for price in prices {
        let Some(credits) = &price.credits_amount else { continue };
        let shape = match shape(price, credits) {
            Ok(shape) => shape,
            Err(reason) => {
                actions.push(SyncAction::Refuse {
                    price: price.id.clone(),
                    reason,
                });
                continue;
            }
        };
        kept.push(price.id.clone());
        let current = existing
            .iter()
            .find(|p| p.stripe_price.as_deref() == Some(price.id.as_str()));
        actions.push(match current {
            Some(p) if same(p, &shape) => SyncAction::Unchanged(p.id.clone()),
            Some(p) => SyncAction::Update(p.id.clone(), shape),
            None => SyncAction::Create(shape),
        });
    }
    for package in imported.iter().filter(|p| p.active) {
        if !package.stripe_price.as_ref().is_some_and(|id| kept.contains(id)) {
            actions.push(SyncAction::Archive(package.id.clone()));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(id: &str, credits: Option<&str>, recurring: bool) -> StripePrice {
        StripePrice {
            id: id.into(),
            name: format!("{id} credits"),
            unit_amount: Some(500),
            currency: "USD".into(),
            recurring,
            credits_amount: credits.map(str::to_string),
        }
    }

    fn package(id: &str, stripe_price: &str, credits: &str) -> Package {
        Package {
            id: id.into(),
            name: format!("{stripe_price} credits"),
            credits: Credits::parse(credits).unwrap(),
            price: 500,
            currency: "usd".into(),
            stripe_price: Some(stripe_price.into()),
            active: true,
            created: 0,
        }
    }

    #[test]
    fn creates_updates_keeps_archives_and_refuses() {
        let prices = [
            price("price_new", Some("100"), false),
            price("price_same", Some("50"), false),
            price("price_changed", Some("75.5"), false),
            price("price_monthly", Some("10"), true),
            price("price_plain", None, false),
            price("price_bad", Some("lots"), false),
        ];
        let imported = [
            package("pkg_same", "price_same", "50"),
            package("pkg_changed", "price_changed", "70"),
            package("pkg_gone", "price_gone", "1"),
        ];
        let actions = plan(&prices, &imported, &imported);
        assert!(matches!(&actions[0], SyncAction::Create(s) if s.credits.to_string() == "100" && s.currency == "usd"));
        assert_eq!(actions[1], SyncAction::Unchanged("pkg_same".into()));
        assert!(
            matches!(&actions[2], SyncAction::Update(id, s) if id == "pkg_changed" && s.credits.to_string() == "75.5")
        );
        assert!(
            matches!(&actions[3], SyncAction::Refuse { price, reason } if price == "price_monthly" && reason.contains("recurring"))
        );
        assert!(matches!(&actions[4], SyncAction::Refuse { price, .. } if price == "price_bad"));
        assert_eq!(actions[5], SyncAction::Archive("pkg_gone".into()));
        assert_eq!(actions.len(), 6);
    }

    #[test]
    fn a_sync_of_its_own_result_changes_nothing() {
        let prices = [price("price_a", Some("10"), false)];
        let imported = [package("pkg_a", "price_a", "10")];
        assert_eq!(
            plan(&prices, &imported, &imported),
            vec![SyncAction::Unchanged("pkg_a".into())]
        );
    }
}
