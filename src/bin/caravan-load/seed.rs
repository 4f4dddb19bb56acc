//! A store of trucks on transits, written directly through Caravan's store writer: devices,
//! their open transits (declared by the same transit book the server uses), fixes decoded by
//! the same parser from the same wire messages, and each device's resulting state.
//!
//! Going through the API and the broker would take an hour at a million devices; what the
//! start-up reads is the same rows. The store has no event-log records of the declarations
//! (start-up never reads the log).

use caravan::auth::account::AccountKind;
use caravan::store::NewAccount;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use caravan::device::{Device, DeviceState};
use caravan::maps::Atlas;
use caravan::simulate::CARRIER;
use caravan::store::{StoreWriter, Write};
use caravan::telemetry::{decode, DeviceId, Limits};
use caravan::transit::{Actor, RiskRules, TransitBook, TransitRules};
use chrono::{DateTime, Duration, Utc};

use crate::fleet::{TransitFleet, PERIOD_S};

/// Devices per transaction.
const CHUNK: usize = 2_000;

/// The gateway account the seeded devices are bound to.
pub const GATEWAY: &str = "load-gateway";

/// Writes `fleet`'s devices, transits and `fixes` fixes per device (the last of them at
/// `end`, `PERIOD_S` apart) into a new store in `dir`.
///
/// # Errors
/// The store cannot be written, or a declaration is refused.
pub fn seed(
    dir: &Path,
    fleet: &TransitFleet,
    fixes: usize,
    end: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (mut writer, _reader) = caravan::store::open(dir).context("opening the store")?;
    let atlas = Arc::new(Atlas::embedded()?);
    let now = Utc::now();
    let officer = Actor("load-seed".into());
    let limits = Limits::default();
    let n = fleet.ids.len();
    // Every device is bound to the load tool's gateway, which publishes for all of them.
    let account = caravan::auth::account::issue(AccountKind::Device)?;
    for start in (0..n).step_by(CHUNK) {
        let mut writes = Vec::new();
        // A book per chunk: the seed need not hold every transit (the server does).
        let mut book = TransitBook::new(
            atlas.clone(),
            TransitRules::embedded()?,
            RiskRules::embedded()?,
        );
        for i in start..(start + CHUNK).min(n) {
            let device_id = DeviceId::parse(&fleet.ids[i])?;
            writes.push(Write::Device(Device {
                device_id: device_id.clone(),
                carrier: CARRIER.into(),
                plate: Some("01LOAD001".into()),
                registered_at: now - Duration::days(1),
            }));
            writes.push(Write::Account(NewAccount {
                username: device_id.as_str().to_owned(),
                kind: AccountKind::Device,
                hash: account.hash.clone(),
                gateway: Some(GATEWAY.into()),
                created_at: now,
            }));
            let declared_at = end - Duration::seconds(PERIOD_S * fixes as i64);
            let change = book
                .declare(
                    fleet.declaration(i, declared_at),
                    &officer,
                    declared_at,
                    &|id| Some(id.clone()),
                )
                .map_err(|e| anyhow::anyhow!("declaration {i} refused: {e:?}"))?;
            writes.push(Write::Transit(change.transit));
            let mut state = DeviceState::default();
            let topic = format!("caravan/v1/dev/{}/pos", fleet.ids[i]);
            for k in 0..fixes {
                let t = end - Duration::seconds(PERIOD_S * (fixes - 1 - k) as i64);
                let payload = fleet.fix_json(i, k as u64, k as u64 + 1, t);
                let decoded = decode(&topic, payload.as_bytes(), t, &limits);
                for report in decoded.reports {
                    state.apply(&report);
                    writes.push(Write::Report(report));
                }
            }
            writes.push(Write::DeviceState(device_id, Box::new(state)));
        }
        writer.commit(&writes).context("committing a chunk")?;
        if (start / CHUNK) % 25 == 24 {
            eprintln!("  seeded {} of {n} devices", start + CHUNK);
        }
    }
    Ok(())
}
