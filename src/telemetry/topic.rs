use super::device_id::DeviceId;
use super::reject::{Reject, RejectReason};

/// The four message kinds of wire contract v1, one per topic leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Pos,
    Seal,
    Status,
    Conn,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [Self::Pos, Self::Seal, Self::Status, Self::Conn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pos => "pos",
            Self::Seal => "seal",
            Self::Status => "status",
            Self::Conn => "conn",
        }
    }
}

/// A parsed device topic: `caravan/v1/dev/{device_id}/{kind}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub device_id: DeviceId,
    pub kind: MessageKind,
}

impl Topic {
    pub const PREFIX: &'static str = "caravan/v1/dev/";
    /// The subscription filter that matches every device topic of v1.
    pub const FILTER: &'static str = "caravan/v1/dev/+/+";

    /// # Errors
    /// A [`RejectReason::BadTopic`] reject when the topic is not a v1 device topic.
    pub fn parse(topic: &str) -> Result<Self, Reject> {
        let bad = |detail: String| Reject::new(RejectReason::BadTopic, detail);
        let rest = topic
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| bad(format!("topic must start with {}", Self::PREFIX)))?;
        let (id, leaf) = rest
            .split_once('/')
            .ok_or_else(|| bad("topic must be caravan/v1/dev/{device_id}/{kind}".into()))?;
        let device_id = DeviceId::parse(id).map_err(|e| bad(e.to_string()))?;
        let kind = match leaf {
            "pos" => MessageKind::Pos,
            "seal" => MessageKind::Seal,
            "status" => MessageKind::Status,
            "conn" => MessageKind::Conn,
            other => return Err(bad(format!("unknown message kind {other:?}"))),
        };
        Ok(Self { device_id, kind })
    }

    pub fn render(device_id: &DeviceId, kind: MessageKind) -> String {
        format!("{}{}/{}", Self::PREFIX, device_id, kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_topic_names_its_device() {
        let t = Topic::parse("caravan/v1/dev/356307042441013/pos").unwrap();
        assert_eq!(t.device_id.as_str(), "356307042441013");
        assert_eq!(t.kind, MessageKind::Pos);
    }

    #[test]
    fn other_topics_are_bad_topics() {
        for bad in [
            "caravan/v2/dev/1/pos",
            "caravan/v1/dev/1/pos/extra",
            "caravan/v1/dev/1/temperature",
            "caravan/v1/dev//pos",
            "caravan/v1/dev/1",
        ] {
            let err = Topic::parse(bad).unwrap_err();
            assert_eq!(err.reason, RejectReason::BadTopic, "{bad}");
        }
    }
}
