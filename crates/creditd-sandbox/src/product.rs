//! Products: create and retrieve.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::ids;
use crate::params::Params;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub created: i64,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub default_price: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl Product {
    /// Builds a product from `name`, `description`, `active`, `metadata`
    /// (the body of `POST /v1/products`, or a price's `product_data`).
    pub fn from_params(p: &Params) -> Result<Product, ApiError> {
        Ok(Product {
            id: ids::new_id("prod"),
            created: ids::now_unix(),
            name: p.required("name")?.to_owned(),
            description: p.str("description").map(str::to_owned),
            active: p.bool("active")?.unwrap_or(true),
            default_price: None,
            metadata: p.metadata("metadata")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "product",
            "active": self.active,
            "created": self.created,
            "default_price": self.default_price,
            "description": self.description,
            "images": [],
            "livemode": false,
            "marketing_features": [],
            "metadata": self.metadata,
            "name": self.name,
            "package_dimensions": null,
            "shippable": null,
            "statement_descriptor": null,
            "tax_code": null,
            "type": "service",
            "unit_label": null,
            "updated": self.created,
            "url": null
        })
    }
}

/// `POST /v1/products`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&["name", "description", "active", "metadata"])?;
    let mut product = Product::from_params(&req.params)?;
    let mut st = app.state.lock().await;
    product.created = st.now();
    let body = product.to_json();
    st.products.insert(product.id.clone(), product);
    st.emit(
        "product.created",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `GET /v1/products/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let p = st
        .products
        .get(&id)
        .ok_or_else(|| ApiError::no_such("product", &id, "id"))?;
    Ok(Json(p.to_json()))
}

/// `POST /v1/products/{id}`: `name`, `active`, `metadata` (merged).
pub async fn update(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["name", "active", "metadata"])?;
    let mut st = app.state.lock().await;
    let product = st
        .products
        .get_mut(&id)
        .ok_or_else(|| ApiError::no_such("product", &id, "id"))?;
    if let Some(name) = p.str("name") {
        product.name = name.to_owned();
    }
    if let Some(active) = p.bool("active")? {
        product.active = active;
    }
    crate::price::merge_metadata(&mut product.metadata, p.metadata("metadata")?);
    let body = product.to_json();
    st.emit(
        "product.updated",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}
