//! One Teltonika device connection: handshake, then packets acknowledged once queued.

use super::{Connection, Context, SessionEnd};
use crate::device::DeviceId;
use crate::queue::QueueError;
use crate::teltonika::{avl, framing, mapping, TeltonikaError};

const ACCEPT: u8 = 0x01;
const REFUSE: u8 = 0x00;

pub(super) async fn session(conn: &mut Connection, ctx: &Context) -> Result<(), SessionEnd> {
    let hello = conn
        .next_frame(|b, _| framing::frame_imei(b), false)
        .await?;
    let imei = hello.get(2..).unwrap_or_default();
    let device = std::str::from_utf8(imei)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| DeviceId::parse(s).ok());
    let Some(device) = device else {
        conn.reject(TeltonikaError::BadImei.reason());
        conn.send(&[REFUSE]).await?;
        return Err(SessionEnd::Refused("bad_imei"));
    };
    let Some(profile) = ctx.registry.get(&device).cloned() else {
        conn.reject("unknown_device");
        tracing::info!(%device, peer = %conn.peer, "Refused an unknown Teltonika device.");
        conn.send(&[REFUSE]).await?;
        return Err(SessionEnd::Refused("unknown_device"));
    };
    if let Err(end) = conn.identified() {
        conn.send(&[REFUSE]).await?;
        return Err(end);
    }
    conn.send(&[ACCEPT]).await?;
    tracing::debug!(%device, peer = %conn.peer, "A Teltonika device connected.");
    loop {
        let frame = conn.next_frame(framing::frame_avl, false).await?;
        let packet = match avl::decode(&frame) {
            Ok(packet) => packet,
            Err(error) => {
                // Not acknowledged: the device keeps the records and sends them again.
                conn.reject(error.reason());
                tracing::warn!(%device, %error, "Refused a Teltonika packet.");
                continue;
            }
        };
        let count = packet.records.len() as u32;
        let reports = conn.within_contract(&device, mapping::reports(&profile, &packet.records));
        match ctx.queue.enqueue(&device, reports).await {
            Ok(()) => conn.send(&count.to_be_bytes()).await?,
            Err(QueueError::Full) => {
                conn.reject("queue_full");
                tracing::warn!(%device, "The disk queue is full; the device keeps its records.");
            }
            Err(error) => {
                tracing::error!(%device, %error, "Could not queue a packet; closing the connection.");
                return Err(SessionEnd::Refused("queue_error"));
            }
        }
    }
}
