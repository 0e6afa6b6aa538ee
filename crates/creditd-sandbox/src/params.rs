//! Stripe's wire format for parameters: form-encoded (body or query string)
//! with bracketed nested keys: `metadata[k]=v`, `line_items[0][price]=…`,
//! `expand[]=line_items`, `created[gte]=…`.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// One parsed parameter: a string, or a map of nested parameters.
/// Lists (`a[]`, `a[0]`) are maps keyed by index, read in numeric order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Value(String),
    Map(BTreeMap<String, Node>),
}

/// Parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    root: BTreeMap<String, Node>,
}

fn split_key(key: &str) -> Vec<String> {
    match key.find('[') {
        None => vec![key.to_owned()],
        Some(i) => {
            let mut parts = vec![key[..i].to_owned()];
            for seg in key[i..].split('[').skip(1) {
                parts.push(seg.trim_end_matches(']').to_owned());
            }
            parts
        }
    }
}

fn insert(map: &mut BTreeMap<String, Node>, path: &[String], value: String) -> Result<(), String> {
    let (head, rest) = path.split_first().expect("non-empty path");
    // `a[]` appends: give it the next index.
    let head = if head.is_empty() {
        map.len().to_string()
    } else {
        head.clone()
    };
    if rest.is_empty() {
        map.insert(head, Node::Value(value));
        return Ok(());
    }
    let child = map.entry(head.clone()).or_insert_with(|| Node::Map(BTreeMap::new()));
    match child {
        Node::Map(m) => insert(m, rest, value),
        Node::Value(_) => Err(head),
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(raw: &[u8]) -> Result<Params, ApiError> {
        let mut root = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            let path = split_key(&k);
            insert(&mut root, &path, v.into_owned())
                .map_err(|key| ApiError::invalid(format!("Invalid parameter structure at `{key}`."), Some(&k)))?;
        }
        Ok(Params { root })
    }

    /// Rejects top-level parameters the endpoint does not know, as Stripe does.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .root
            .keys()
            .find(|k| !known.contains(&k.as_str()) && k.as_str() != "expand")
        {
            Some(k) => Err(ApiError::invalid(format!("Received unknown parameter: {k}"), Some(k))),
            None => Ok(()),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.root.get(key) {
            Some(Node::Value(v)) => Some(v.as_str()),
            _ => None,
        }
    }

    /// A non-empty string parameter that must be present.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        match self.str(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing_param(key)),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.str(key).map(|v| parse_int(key, v)).transpose()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid(format!("Invalid boolean: {v}"), Some(key))),
        }
    }

    /// A nested map like `metadata[...]` or `product_data[...]`.
    pub fn map(&self, key: &str) -> Option<Params> {
        match self.root.get(key) {
            Some(Node::Map(m)) => Some(Params { root: m.clone() }),
            _ => None,
        }
    }

    /// Flat string map (metadata). Stripe's metadata limits: 50 keys,
    /// keys ≤ 40 chars, values ≤ 500 chars.
    pub fn metadata(&self, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let Some(m) = self.map(key) else {
            // `metadata=` (empty) clears metadata in Stripe; treat as empty.
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for (k, v) in m.root {
            let Node::Value(v) = v else {
                return Err(ApiError::invalid("Metadata values must be strings.", Some(key)));
            };
            if k.len() > 40 || v.len() > 500 {
                return Err(ApiError::invalid(
                    "Metadata keys are limited to 40 characters and values to 500.",
                    Some(&format!("{key}[{k}]")),
                ));
            }
            out.insert(k, v);
        }
        if out.len() > 50 {
            return Err(ApiError::invalid("Metadata is limited to 50 keys.", Some(key)));
        }
        Ok(out)
    }

    /// A list (`a[0][x]`, `a[1][x]` or `a[]=…`), in index order.
    pub fn list(&self, key: &str) -> Vec<Node> {
        match self.root.get(key) {
            Some(Node::Map(m)) => {
                let mut items: Vec<(u64, &Node)> = m
                    .iter()
                    .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                items.into_iter().map(|(_, v)| v.clone()).collect()
            }
            Some(v @ Node::Value(_)) => vec![v.clone()],
            None => Vec::new(),
        }
    }

    /// The values of `expand[]`.
    pub fn expand(&self) -> Vec<String> {
        self.list("expand")
            .into_iter()
            .filter_map(|n| match n {
                Node::Value(v) => Some(v),
                Node::Map(_) => None,
            })
            .collect()
    }

    /// Builds `Params` from a nested map node (an element of [`Params::list`]).
    pub fn from_node(node: Node) -> Option<Params> {
        match node {
            Node::Map(root) => Some(Params { root }),
            Node::Value(_) => None,
        }
    }

    /// Canonical form used to compare the parameters of idempotent requests.
    pub fn fingerprint(raw: &[u8]) -> String {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw).into_owned().collect();
        pairs.sort();
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }
}

pub fn parse_int(key: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .map_err(|_| ApiError::invalid(format!("Invalid integer: {v}"), Some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_lists_and_metadata() {
        let raw = b"line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price]=price_2\
&metadata[order]=42&expand[]=line_items&expand[]=customer&mode=payment";
        let p = Params::parse(raw).unwrap();
        assert_eq!(p.str("mode"), Some("payment"));
        let items = p.list("line_items");
        assert_eq!(items.len(), 2);
        let first = Params::from_node(items[0].clone()).unwrap();
        assert_eq!(first.str("price"), Some("price_1"));
        assert_eq!(first.i64("quantity").unwrap(), Some(2));
        assert_eq!(
            p.metadata("metadata").unwrap().get("order").map(String::as_str),
            Some("42")
        );
        assert_eq!(p.expand(), vec!["line_items".to_owned(), "customer".to_owned()]);
        assert!(p.allow_only(&["line_items", "metadata", "mode"]).is_ok());
        assert!(p.allow_only(&["line_items", "mode"]).is_err());
    }

    #[test]
    fn indexed_lists_sort_numerically_and_conflicts_fail() {
        let p = Params::parse(b"expand[10]=b&expand[2]=a").unwrap();
        assert_eq!(p.expand(), vec!["a".to_owned(), "b".to_owned()]);
        assert!(Params::parse(b"a=1&a[b]=2").is_err());
        assert!(Params::parse(b"n=abc").unwrap().i64("n").is_err());
    }

    #[test]
    fn fingerprint_ignores_order() {
        assert_eq!(Params::fingerprint(b"a=1&b=2"), Params::fingerprint(b"b=2&a=1"));
        assert_ne!(Params::fingerprint(b"a=1"), Params::fingerprint(b"a=2"));
    }
}
