//! Lenient parsing of an incoming Stripe event, after its signature has been
//! verified. Only `id`, `type` and `data.object` are required: strict typed
//! parsing of webhooks breaks whenever Stripe adds or changes fields, and the
//! handlers re-read the object from the API anyway.

use serde::Deserialize;

/// The fields of a Stripe event creditd needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    /// `data.object`: a snapshot of the object the event is about.
    pub data_object: serde_json::Value,
}

/// Why an event payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    #[error("event payload is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event payload has no data.object")]
    MissingDataObject,
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    livemode: Option<bool>,
    data: WireData,
}

#[derive(Deserialize)]
struct WireData {
    #[serde(default)]
    object: Option<serde_json::Value>,
}

impl Event {
    /// Parses the raw payload. Unknown fields are ignored.
    pub fn parse(payload: &[u8]) -> Result<Event, EventParseError> {
        let wire: Wire = serde_json::from_slice(payload)?;
        let data_object = match wire.data.object {
            Some(obj) if !obj.is_null() => obj,
            _ => return Err(EventParseError::MissingDataObject),
        };
        Ok(Event {
            id: wire.id,
            type_: wire.type_,
            created: wire.created.unwrap_or_default(),
            livemode: wire.livemode.unwrap_or_default(),
            data_object,
        })
    }

    /// `data.object.id`, when the object has one.
    pub fn object_id(&self) -> Option<&str> {
        self.data_object.get("id").and_then(|v| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_event_and_ignores_unknown_fields() {
        let raw = br#"{"id":"evt_1","type":"checkout.session.completed","brand_new_field":{"x":1},
            "data":{"object":{"id":"cs_test_1","object":"checkout.session","payment_status":"paid"}}}"#;
        let ev = Event::parse(raw).unwrap();
        assert_eq!(ev.id, "evt_1");
        assert_eq!(ev.type_, "checkout.session.completed");
        assert_eq!(ev.created, 0);
        assert!(!ev.livemode);
        assert_eq!(ev.object_id(), Some("cs_test_1"));
        assert_eq!(ev.data_object["payment_status"], "paid");
    }

    #[test]
    fn parses_the_dotnet_vector_event() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/stripe/vectors/event_test_signature.json"
        );
        let raw = std::fs::read(path).unwrap();
        let ev = Event::parse(&raw).unwrap();
        assert_eq!(ev.id, "evt_123");
        assert_eq!(ev.type_, "customer.created");
        assert_eq!(ev.created, 1_533_204_620);
        assert_eq!(ev.object_id(), Some("cus_123"));
    }

    #[test]
    fn rejects_missing_required_parts() {
        assert!(matches!(
            Event::parse(br#"{"type":"x","data":{"object":{}}}"#),
            Err(EventParseError::Json(_))
        ));
        assert!(matches!(
            Event::parse(br#"{"id":"evt_1","data":{"object":{}}}"#),
            Err(EventParseError::Json(_))
        ));
        assert!(matches!(
            Event::parse(br#"{"id":"evt_1","type":"x","data":{}}"#),
            Err(EventParseError::MissingDataObject)
        ));
        assert!(matches!(
            Event::parse(br#"{"id":"evt_1","type":"x","data":{"object":null}}"#),
            Err(EventParseError::MissingDataObject)
        ));
        assert!(matches!(Event::parse(b"not json"), Err(EventParseError::Json(_))));
    }
}
