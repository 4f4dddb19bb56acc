//! The dead-letter message republished for every refused message.

use base64::Engine;
use serde::Serialize;

use crate::store::DeadLetter;

#[derive(Serialize)]
struct Rendered<'a> {
    reason: &'a str,
    detail: &'a str,
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    received_at: String,
    /// The refused bytes as text when they are UTF-8 ...
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    /// ... and in base64 when they are not, so nothing is lost either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

/// The topic `caravan/v1/rejected/{reason}` and the JSON payload for a dead letter.
pub fn render(letter: &DeadLetter) -> (String, Vec<u8>) {
    let text = std::str::from_utf8(&letter.payload).ok();
    let rendered = Rendered {
        reason: letter.reason.as_str(),
        detail: &letter.detail,
        topic: &letter.topic,
        device_id: letter.device_id.as_ref().map(|d| d.as_str()),
        received_at: letter
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        payload: text,
        payload_base64: text
            .is_none()
            .then(|| base64::engine::general_purpose::STANDARD.encode(&letter.payload)),
    };
    let topic = format!("caravan/v1/rejected/{}", letter.reason.as_str());
    // Serialising plain strings into JSON cannot fail.
    let payload = serde_json::to_vec(&rendered).unwrap_or_default();
    (topic, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::RejectReason;

    fn letter(payload: &[u8]) -> DeadLetter {
        DeadLetter {
            received_at: "2026-11-27T08:00:00Z".parse().unwrap(),
            reason: RejectReason::Malformed,
            detail: "expected value at line 1 column 1".into(),
            topic: "caravan/v1/dev/dev1/pos".into(),
            device_id: None,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn a_dead_letter_keeps_the_refused_text_and_names_its_reason() {
        let (topic, payload) = render(&letter(b"{not json"));
        assert_eq!(topic, "caravan/v1/rejected/malformed");
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(json["payload"], "{not json");
        assert_eq!(json["topic"], "caravan/v1/dev/dev1/pos");
    }

    #[test]
    fn binary_payloads_travel_as_base64() {
        let (_, payload) = render(&letter(&[0xff, 0x00, 0x80]));
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(json["payload_base64"], "/wCA");
        assert!(json.get("payload").is_none());
    }
}
