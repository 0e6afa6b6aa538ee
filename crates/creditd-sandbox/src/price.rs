//! Prices (one-time and recurring): create (with `product` or
//! `product_data`) and retrieve.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::ids;
use crate::list::{Paging, PAGING_PARAMS};
use crate::product::Product;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recurring {
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    pub interval_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Price {
    pub id: String,
    pub created: i64,
    pub product: String,
    pub currency: String,
    pub unit_amount: i64,
    pub recurring: Option<Recurring>,
    pub active: bool,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl Price {
    pub fn to_json(&self) -> Value {
        let recurring = self.recurring.as_ref().map(|r| {
            json!({
                "interval": r.interval,
                "interval_count": r.interval_count,
                "meter": null,
                "trial_period_days": null,
                "usage_type": "licensed"
            })
        });
        json!({
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": self.lookup_key,
            "metadata": self.metadata,
            "nickname": self.nickname,
            "product": self.product,
            "recurring": recurring,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": if self.recurring.is_some() { "recurring" } else { "one_time" },
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": self.unit_amount.to_string()
        })
    }
}

/// A lowercase three-letter currency code, as Stripe requires.
pub fn currency_param(v: &str, param: &str) -> Result<String, ApiError> {
    let c = v.to_ascii_lowercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(c)
    } else {
        Err(ApiError::invalid(format!("Invalid currency: {v}."), Some(param)))
    }
}

/// `POST /v1/prices`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[
        "currency",
        "unit_amount",
        "product",
        "product_data",
        "recurring",
        "nickname",
        "lookup_key",
        "metadata",
        "active",
    ])?;
    let currency = currency_param(p.required("currency")?, "currency")?;
    let unit_amount = p
        .i64("unit_amount")?
        .ok_or_else(|| ApiError::missing_param("unit_amount"))?;
    if unit_amount < 0 {
        return Err(ApiError::invalid(
            "This value must be greater than or equal to 0.",
            Some("unit_amount"),
        ));
    }
    let recurring = match p.map("recurring") {
        None => None,
        Some(r) => {
            let interval = r
                .required("interval")
                .map_err(|_| ApiError::missing_param("recurring[interval]"))?;
            if !["day", "week", "month", "year"].contains(&interval) {
                return Err(ApiError::invalid(
                    format!("Invalid interval: {interval}"),
                    Some("recurring[interval]"),
                ));
            }
            Some(Recurring {
                interval: interval.to_owned(),
                interval_count: r.i64("interval_count")?.unwrap_or(1),
            })
        }
    };
    let mut st = app.state.lock().await;
    let new_product = match (p.str("product"), p.map("product_data")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: product, product_data.",
                None,
            ))
        }
        (Some(id), None) => {
            if !st.products.contains_key(id) {
                return Err(ApiError::no_such("product", id, "product"));
            }
            None
        }
        (None, Some(data)) => Some(Product::from_params(&data)?),
        (None, None) => return Err(ApiError::missing_param("product")),
    };
    let product_id = new_product
        .as_ref()
        .map(|np| np.id.clone())
        .or(p.str("product").map(str::to_owned));
    let price = Price {
        id: ids::new_id("price"),
        created: st.now(),
        product: product_id.expect("product id chosen above"),
        currency,
        unit_amount,
        recurring,
        active: p.bool("active")?.unwrap_or(true),
        nickname: p.str("nickname").map(str::to_owned),
        lookup_key: p.str("lookup_key").map(str::to_owned),
        metadata: p.metadata("metadata")?,
    };
    let hook = app.webhook_url();
    if let Some(mut product) = new_product {
        product.created = st.now();
        st.emit("product.created", product.to_json(), &req.request, hook.as_deref());
        st.products.insert(product.id.clone(), product);
    }
    let body = price.to_json();
    st.prices.insert(price.id.clone(), price);
    st.emit("price.created", body.clone(), &req.request, hook.as_deref());
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `GET /v1/prices/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let p = st
        .prices
        .get(&id)
        .ok_or_else(|| ApiError::no_such("price", &id, "id"))?;
    Ok(Json(p.to_json()))
}

/// `GET /v1/prices`: newest first; `active`, `type` (`one_time`, `recurring`) and `product`
/// filter.
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[&PAGING_PARAMS[..], &["active", "type", "product"]].concat())?;
    let paging = Paging::from_params(p)?;
    let active = p.bool("active")?;
    let kind = p.str("type");
    if kind.is_some_and(|k| k != "one_time" && k != "recurring") {
        return Err(ApiError::invalid(
            "Invalid type: must be one of one_time or recurring",
            Some("type"),
        ));
    }
    let st = app.state.lock().await;
    let mut prices: Vec<&Price> = st
        .prices
        .values()
        .filter(|pr| active.is_none_or(|a| pr.active == a))
        .filter(|pr| kind.is_none_or(|k| (k == "recurring") == pr.recurring.is_some()))
        .filter(|pr| p.str("product").is_none_or(|id| pr.product == id))
        .collect();
    prices.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    let items = prices.into_iter().map(Price::to_json).collect();
    Ok(Json(paging.page("/v1/prices", "price", items)?))
}

/// `POST /v1/prices/{id}`: `active`, `nickname`, `metadata` (merged, as Stripe does; an empty
/// value removes a key).
pub async fn update(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["active", "nickname", "metadata"])?;
    let mut st = app.state.lock().await;
    let price = st
        .prices
        .get_mut(&id)
        .ok_or_else(|| ApiError::no_such("price", &id, "id"))?;
    if let Some(active) = p.bool("active")? {
        price.active = active;
    }
    if let Some(nickname) = p.str("nickname") {
        price.nickname = Some(nickname.to_owned());
    }
    merge_metadata(&mut price.metadata, p.metadata("metadata")?);
    let body = price.to_json();
    st.emit(
        "price.updated",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}

/// Stripe's metadata update: keys set, keys given an empty value removed.
pub fn merge_metadata(into: &mut BTreeMap<String, String>, update: BTreeMap<String, String>) {
    for (k, v) in update {
        if v.is_empty() {
            into.remove(&k);
        } else {
            into.insert(k, v);
        }
    }
}
