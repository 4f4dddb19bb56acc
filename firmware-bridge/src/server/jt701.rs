//! One JT701 lock connection: it identifies itself with its first report, whose records are
//! queued before any acknowledgement the lock asked for is sent.

use super::{Connection, Context, SessionEnd};
use crate::device::DeviceId;
use crate::jt701::{self, mapping};
use crate::queue::QueueError;

pub(super) async fn session(conn: &mut Connection, ctx: &Context) -> Result<(), SessionEnd> {
    let mut device: Option<DeviceId> = None;
    let mut watch = mapping::LockWatch::default();
    loop {
        let frame = conn.next_frame(jt701::frame, true).await?;
        if jt701::is_text(&frame) {
            conn.reject("unsupported");
            continue;
        }
        let report = match jt701::decode(&frame) {
            Ok(report) => report,
            Err(error) => {
                // Not acknowledged: a lock that asked for an acknowledgement sends it again.
                conn.reject(error.reason());
                tracing::warn!(peer = %conn.peer, %error, "Refused a JT701 report.");
                continue;
            }
        };
        let id = DeviceId::parse(report.device_id()).ok();
        let profile = match (&device, id) {
            (Some(known), Some(id)) if *known == id => ctx.registry.get(known).cloned(),
            (Some(_), _) => {
                // One connection is one lock: a report under another id is an attack or a
                // broken relay, and either way cannot be trusted.
                conn.reject("device_mismatch");
                return Err(SessionEnd::Refused("device_mismatch"));
            }
            (None, Some(id)) => ctx.registry.get(&id).cloned(),
            (None, None) => None,
        };
        let Some(profile) = profile else {
            conn.reject("unknown_device");
            tracing::info!(lock = report.device_id(), peer = %conn.peer, "Refused an unknown JT701 lock.");
            return Err(SessionEnd::Refused("unknown_device"));
        };
        if device.is_none() {
            conn.identified()?;
            tracing::debug!(device = %profile.device_id, "A JT701 lock connected.");
            device = Some(profile.device_id.clone());
        }
        let reports = mapping::reports(&profile, &report, &mut watch);
        let reports = conn.within_contract(&profile.device_id, reports);
        match ctx.queue.enqueue(&profile.device_id, reports).await {
            Ok(()) => {
                if let Some(ack) = mapping::acknowledgement(&report) {
                    conn.send(&ack).await?;
                }
            }
            Err(QueueError::Full) => {
                conn.reject("queue_full");
                tracing::warn!(device = %profile.device_id, "The disk queue is full; the lock keeps its report.");
            }
            Err(error) => {
                tracing::error!(device = %profile.device_id, %error, "Could not queue a report; closing the connection.");
                return Err(SessionEnd::Refused("queue_error"));
            }
        }
    }
}
