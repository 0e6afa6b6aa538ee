//! Stripe's list envelope and cursor pagination (`limit`, `starting_after`,
//! `ending_before`) for the list endpoints other than events.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::Params;

/// The paging parameters of a list request.
pub struct Paging {
    limit: usize,
    starting_after: Option<String>,
    ending_before: Option<String>,
}

/// Names to add to an endpoint's own filters in `allow_only`.
pub const PAGING_PARAMS: [&str; 3] = ["limit", "starting_after", "ending_before"];

impl Paging {
    /// Reads `limit` (1–100, default 10) and the cursors.
    pub fn from_params(p: &Params) -> Result<Paging, ApiError> {
        let limit = p.i64("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid(
                "This value must be between 1 and 100.",
                Some("limit"),
            ));
        }
        let paging = Paging {
            limit: limit as usize,
            starting_after: p.str("starting_after").map(str::to_owned),
            ending_before: p.str("ending_before").map(str::to_owned),
        };
        if paging.starting_after.is_some() && paging.ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            ));
        }
        Ok(paging)
    }

    /// One page of `items` (objects with an `id`, newest first) as a list object.
    pub fn page(&self, url: &str, kind: &str, items: Vec<Value>) -> Result<Value, ApiError> {
        let position = |cursor: &str, param: &str| {
            items
                .iter()
                .position(|v| v["id"] == cursor)
                .ok_or_else(|| ApiError::no_such(kind, cursor, param))
        };
        let (start, end, has_more) = match (&self.starting_after, &self.ending_before) {
            (Some(after), _) => {
                let start = position(after, "starting_after")? + 1;
                let end = (start + self.limit).min(items.len());
                (start, end, items.len() > end)
            }
            (None, Some(before)) => {
                let end = position(before, "ending_before")?;
                let start = end.saturating_sub(self.limit);
                (start, end, start > 0)
            }
            (None, None) => {
                let end = self.limit.min(items.len());
                (0, end, items.len() > end)
            }
        };
        Ok(json!({
            "object": "list",
            "data": &items[start..end],
            "has_more": has_more,
            "url": url
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"id": format!("x_{i}")})).collect()
    }

    fn ids(v: &Value) -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn pages_forward_and_backward() {
        let p = Paging::from_params(&Params::parse(b"limit=2").unwrap()).unwrap();
        let first = p.page("/v1/x", "x", items(5)).unwrap();
        assert_eq!(
            (ids(&first), first["has_more"].as_bool()),
            (vec!["x_0".into(), "x_1".into()], Some(true))
        );
        let p = Paging::from_params(&Params::parse(b"limit=2&starting_after=x_3").unwrap()).unwrap();
        let last = p.page("/v1/x", "x", items(5)).unwrap();
        assert_eq!(
            (ids(&last), last["has_more"].as_bool()),
            (vec!["x_4".into()], Some(false))
        );
        let p = Paging::from_params(&Params::parse(b"limit=2&ending_before=x_3").unwrap()).unwrap();
        let back = p.page("/v1/x", "x", items(5)).unwrap();
        assert_eq!(
            (ids(&back), back["has_more"].as_bool()),
            (vec!["x_1".into(), "x_2".into()], Some(true))
        );
        let p = Paging::from_params(&Params::parse(b"starting_after=nope").unwrap()).unwrap();
        assert_eq!(p.page("/v1/x", "x", items(1)).unwrap_err().status.as_u16(), 404);
        assert!(Paging::from_params(&Params::parse(b"limit=0").unwrap()).is_err());
    }
}
