//! Location messages (0x0200, 0x0704) to wire reports.

use super::seal::SealWatch;
use super::{msg, Batch, Jt808Error, Location, Message};
use crate::registry::DeviceProfile;
use crate::report::{Report, SealEvent, Status};

/// The reports of one location message, and the ids of the additional items that were
/// dropped because they ran past the end of their message.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationReports {
    pub reports: Vec<Report>,
    pub truncated_extras: Vec<u8>,
}

/// A single report gives its fix, seal events and status; a batch gives one array of fixes
/// (the backlog) and the seal events of each item, but no status (it would be stale).
///
/// # Errors
/// [`Jt808Error`] when the body or a batch item has no valid basic location.
pub fn location_reports(
    m: &Message,
    profile: &DeviceProfile,
    watch: &mut SealWatch,
) -> Result<LocationReports, Jt808Error> {
    let (items, single) = if m.header.msg_id == msg::LOCATION {
        (vec![Location::decode(&m.body)?], true)
    } else {
        (Batch::decode(&m.body)?.items, false)
    };
    let fixes: Vec<_> = items.iter().filter_map(Location::fix).collect();
    let mut reports = Vec::new();
    if !fixes.is_empty() {
        reports.push(Report::Fixes(fixes));
    }
    for item in &items {
        let position = item.fix().map(|f| (f.lat, f.lon));
        for event in watch.observe(item) {
            reports.push(Report::Seal(SealEvent {
                t: item.time_utc(),
                seal_id: profile.seal_id.clone(),
                event,
                battery_pct: None,
                position,
            }));
        }
        if single {
            let status = Status {
                t: item.time_utc(),
                gsm_rssi: item.gsm_rssi(),
                ..Status::default()
            };
            if !status.is_empty() {
                reports.push(Report::Status(status));
            }
        }
    }
    Ok(LocationReports {
        reports,
        truncated_extras: items.iter().filter_map(|i| i.truncated_extra).collect(),
    })
}
