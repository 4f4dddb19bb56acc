//! One JT/T 808 terminal connection: registration, authentication, then location data
//! answered with a general response once queued.

use super::{Connection, Context, SessionEnd};
use crate::device::DeviceId;
use crate::jt808::reports::location_reports;
use crate::jt808::seal::SealWatch;
use crate::jt808::session::{
    auth_code, general_response, register_response, Outcome, Registration,
};
use crate::jt808::{frame, msg, Message};
use crate::queue::QueueError;
use crate::registry::DeviceProfile;

/// Per-connection state: the authenticated terminal and its platform-side serial.
struct Terminal {
    profile: Option<DeviceProfile>,
    serial: u16,
    watch: SealWatch,
}

impl Terminal {
    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }
}

pub(super) async fn session(conn: &mut Connection, ctx: &Context) -> Result<(), SessionEnd> {
    let mut terminal = Terminal {
        profile: None,
        serial: 0,
        watch: SealWatch::default(),
    };
    loop {
        let bytes = conn.next_frame(frame::frame, true).await?;
        let message = match frame::decode(&bytes) {
            Ok(m) => m,
            Err(error) => {
                // Without a trustworthy header there is nobody to answer; the terminal
                // times out and resends.
                conn.reject(error.reason());
                tracing::warn!(peer = %conn.peer, %error, "Refused a JT/T 808 frame.");
                continue;
            }
        };
        let outcome = handle(&message, &mut terminal, conn, ctx).await?;
        if let Some(reply) = outcome {
            conn.send(&reply).await?;
        }
        if message.header.msg_id == msg::LOGOUT {
            return Ok(());
        }
    }
}

/// The reply to one message, if it gets one.
async fn handle(
    m: &Message,
    t: &mut Terminal,
    conn: &mut Connection,
    ctx: &Context,
) -> Result<Option<Vec<u8>>, SessionEnd> {
    let h = &m.header;
    let respond = |t: &mut Terminal, outcome| Some(general_response(h, t.next_serial(), outcome));
    if h.subpackage.is_some() || h.encryption != 0 {
        conn.reject("unsupported");
        return Ok(respond(t, Outcome::Unsupported));
    }
    let known = DeviceId::parse(h.terminal_id())
        .ok()
        .and_then(|id| ctx.registry.get(&id))
        .cloned();
    match h.msg_id {
        msg::REGISTER => {
            let serial = t.next_serial();
            Ok(Some(match &known {
                Some(profile) => {
                    register_response(h, serial, Registration::Success, &profile.auth_code)
                }
                None => {
                    conn.reject("unknown_device");
                    tracing::info!(
                        terminal = h.terminal_id(),
                        "Refused to register an unknown JT/T 808 terminal."
                    );
                    register_response(h, serial, Registration::UnknownTerminal, "")
                }
            }))
        }
        msg::AUTHENTICATE => match known.filter(|p| p.auth_code == auth_code(h, &m.body)) {
            Some(profile) => {
                if let Err(end) = conn.identified() {
                    let reply = general_response(h, t.next_serial(), Outcome::Failure);
                    conn.send(&reply).await?;
                    return Err(end);
                }
                tracing::debug!(device = %profile.device_id, "A JT/T 808 terminal authenticated.");
                t.profile = Some(profile);
                Ok(respond(t, Outcome::Success))
            }
            None => {
                conn.reject("bad_auth");
                Ok(respond(t, Outcome::Failure))
            }
        },
        msg::TERMINAL_RESPONSE => Ok(None),
        msg::HEARTBEAT | msg::LOGOUT => Ok(respond(t, Outcome::Success)),
        msg::LOCATION | msg::BATCH_LOCATION => {
            let Some(profile) = t
                .profile
                .clone()
                .filter(|p| p.device_id.as_str() == h.terminal_id())
            else {
                conn.reject("not_authenticated");
                return Ok(respond(t, Outcome::Failure));
            };
            let reports = match location_reports(m, &profile, &mut t.watch) {
                Ok(reports) => reports,
                Err(error) => {
                    conn.reject(error.reason());
                    return Ok(respond(t, Outcome::MessageError));
                }
            };
            for id in &reports.truncated_extras {
                conn.metrics().drop_field(conn.protocol, "extra_item");
                if conn.metrics().bad_input_log.allow() {
                    tracing::warn!(device = %profile.device_id, item = %format!("{id:#04x}"), "Dropped an additional item longer than its message; kept the location (logged at most once a minute).");
                }
            }
            let reports = conn.within_contract(&profile.device_id, reports.reports);
            match ctx.queue.enqueue(&profile.device_id, reports).await {
                Ok(()) => Ok(respond(t, Outcome::Success)),
                Err(QueueError::Full) => {
                    conn.reject("queue_full");
                    // "Failure": the terminal keeps the data in its blind-area store.
                    Ok(respond(t, Outcome::Failure))
                }
                Err(error) => {
                    tracing::error!(device = %profile.device_id, %error, "Could not queue a location; closing the connection.");
                    Err(SessionEnd::Refused("queue_error"))
                }
            }
        }
        _ => Ok(respond(t, Outcome::Unsupported)),
    }
}
