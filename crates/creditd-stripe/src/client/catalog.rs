//! Stripe's product catalog as `creditd packages sync` reads it: active Prices with their
//! Products' names and metadata.

use std::collections::{BTreeMap, HashMap};

use stripe_product::price::ListPrice;
use stripe_product::product::RetrieveProduct;

use super::{expandable_id, StripeClient, StripeError};

/// An active Price with what its Product says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogPrice {
    pub id: String,
    pub nickname: Option<String>,
    pub unit_amount: Option<i64>,
    pub currency: String,
    pub recurring: bool,
    pub metadata: BTreeMap<String, String>,
    pub product: String,
    pub product_name: String,
    pub product_active: bool,
    pub product_metadata: BTreeMap<String, String>,
}

/// Prices listed per request (Stripe's maximum).
const PAGE: i64 = 100;

impl StripeClient {
    /// Every active Price, oldest pages first as Stripe lists them, with its Product.
    pub async fn list_active_prices(&self) -> Result<Vec<CatalogPrice>, StripeError> {
        let mut prices = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut request = ListPrice::new().active(true).limit(PAGE);
            if let Some(id) = &after {
                request = request.starting_after(id.clone());
            }
            let page = request.send(&self.inner).await?;
            after = page.data.last().map(|p| p.id.to_string());
            prices.extend(page.data);
            if !page.has_more || after.is_none() {
                break;
            }
        }
        let mut products: HashMap<String, stripe_shared::Product> = HashMap::new();
        let mut out = Vec::with_capacity(prices.len());
        for price in prices {
            let product_id = expandable_id(&price.product);
            if !products.contains_key(&product_id) {
                let product = RetrieveProduct::new(product_id.as_str()).send(&self.inner).await?;
                products.insert(product_id.clone(), product);
            }
            let product = &products[&product_id];
            out.push(CatalogPrice {
                id: price.id.to_string(),
                nickname: price.nickname,
                unit_amount: price.unit_amount,
                currency: price.currency.to_string(),
                recurring: price.recurring.is_some(),
                metadata: price.metadata.into_iter().collect(),
                product: product_id,
                product_name: product.name.clone(),
                product_active: product.active,
                product_metadata: product.metadata.clone().into_iter().collect(),
            });
        }
        Ok(out)
    }
}
