//! The store reads and map look-ups that the jurisdiction rules of `crate::auth` need: the
//! transits that carried a device, and the country of a point.

use std::collections::HashMap;

use warp::Rejection;

use crate::auth::{device_sight, DeviceSight, EventFacts, Principal, Role};
use crate::device::{Device, DeviceState};
use crate::maps::CountryCode;
use crate::store::{DeviceFilter, StoreError, StoreReader, StoredEvent};
use crate::telemetry::{DeviceId, GeoPoint};
use crate::transit::Transit;

use super::error::ApiError;
use super::{read, Context};

/// The country of a point, from the maps' country index (`None` outside every country).
pub fn country_at(ctx: &Context, lat: f64, lon: f64) -> Option<CountryCode> {
    ctx.index.locate(GeoPoint { lat, lon }).country
}

/// Every transit that carried a device, open or closed.
pub fn transits_of(r: &dyn StoreReader, id: &DeviceId) -> Result<Vec<Transit>, StoreError> {
    Ok(r.transits(false, usize::MAX >> 1)?
        .into_iter()
        .filter(|t| crate::auth::carries(t, id))
        .collect())
}

/// The stretch of `device`'s history `who` may see.
pub fn sight(
    r: &dyn StoreReader,
    who: &Principal,
    device: &Device,
) -> Result<DeviceSight, StoreError> {
    let transits = transits_of(r, &device.device_id)?;
    Ok(device_sight(who, device, &transits))
}

/// The country of an event's point, if its body has one.
pub fn event_country(ctx: &Context, body: &serde_json::Value) -> Option<CountryCode> {
    let point = body.get("point")?;
    let lat = point.get("lat")?.as_f64()?;
    let lon = point.get("lon")?.as_f64()?;
    country_at(ctx, lat, lon)
}

/// What the rules need to know about a stored event.
pub fn facts<'a>(ctx: &Context, event: &'a StoredEvent) -> EventFacts<'a> {
    EventFacts {
        kind: &event.kind,
        of_transit: event.transit_id.is_some(),
        occurred_at: event.occurred_at,
        country: event_country(ctx, &event.body),
        body: &event.body,
    }
}

/// Where the device is now, for the territorial rule.
pub fn now_in(ctx: &Context, state: &DeviceState) -> Option<CountryCode> {
    match state.geo.as_ref() {
        Some(geo) => geo.country,
        None => state
            .position
            .as_ref()
            .and_then(|f| country_at(ctx, f.point.lat, f.point.lon)),
    }
}

/// The device state with its position and place withheld when the latest fix lies outside
/// the stretch `who` may see.
pub fn redacted(ctx: &Context, sight: &DeviceSight, mut state: DeviceState) -> DeviceState {
    let shown = state.position.as_ref().is_none_or(|f| {
        let here = country_at(ctx, f.point.lat, f.point.lon);
        sight.shows(f.t, here)
    });
    if !shown {
        state.position = None;
        state.geo = None;
    }
    state
}

/// The device, its state as `who` may see it, and the stretch it may see, if the device
/// exists for `who`; otherwise the same 404 as a missing device.
pub async fn visible_device(
    id: &DeviceId,
    who: &Principal,
    ctx: &Context,
) -> Result<(Device, DeviceState, DeviceSight), Rejection> {
    let (lookup, viewer) = (id.clone(), who.clone());
    let found = read(ctx, move |r| {
        let Some((device, state)) = r.device(&lookup)? else {
            return Ok(None);
        };
        let sight = sight(r, &viewer, &device)?;
        Ok(Some((device, state, sight)))
    })
    .await?;
    let missing = || ApiError::not_found(format!("no device {id}"));
    let (device, state, sight) = found.ok_or_else(missing)?;
    if !sight.device_visible(now_in(ctx, &state)) {
        return Err(missing().into());
    }
    let state = redacted(ctx, &sight, state);
    Ok((device, state, sight))
}

/// One page of the devices `who` sees, ordered by id after `after`: pages of the store are
/// read until `limit` visible devices are found or the devices run out.
pub async fn visible_devices(
    who: &Principal,
    ctx: &Context,
    after: Option<DeviceId>,
    limit: usize,
) -> Result<Vec<(Device, DeviceState)>, Rejection> {
    let filter = match &who.role {
        Role::Carrier(id) => DeviceFilter {
            carrier: Some(id.clone()),
            country: None,
        },
        _ => DeviceFilter::default(),
    };
    let viewer = who.clone();
    let ctx2 = ctx.clone();
    read(ctx, move |r| {
        let transits = r.transits(false, usize::MAX >> 1)?;
        let mut carried: HashMap<&DeviceId, Vec<&Transit>> = HashMap::new();
        for t in &transits {
            let seals = t.seals.iter().filter_map(|s| s.device_id.as_ref());
            for id in t.devices.iter().chain(seals) {
                carried.entry(id).or_default().push(t);
            }
        }
        let mut shown = Vec::new();
        let mut cursor = after;
        loop {
            let page = r.devices(&filter, cursor.as_ref(), limit)?;
            let full = page.len() == limit;
            cursor = page.last().map(|(d, _)| d.device_id.clone());
            for (device, state) in page {
                let mine = carried.get(&device.device_id).into_iter().flatten();
                let sight = device_sight(&viewer, &device, mine.copied());
                if sight.device_visible(now_in(&ctx2, &state)) {
                    let state = redacted(&ctx2, &sight, state);
                    shown.push((device, state));
                }
            }
            if !full || shown.len() >= limit {
                shown.truncate(limit);
                return Ok(shown);
            }
        }
    })
    .await
}
