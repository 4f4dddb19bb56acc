//! Jurisdiction rules for devices. (Transits, alerts and inspections have their own.)

use super::{Principal, Role};
use crate::device::{Device, DeviceState};

/// Coordinators see every device; a carrier its own; customs and posts the devices now in
/// their country.
pub fn may_see_device(who: &Principal, device: &Device, state: &DeviceState) -> bool {
    match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => device.carrier == *id,
        Role::Customs(_) | Role::Post { .. } => {
            let here = state.geo.as_ref().and_then(|g| g.country);
            here.is_some() && here == who.role.country()
        }
    }
}

/// Coordinators register any device; a carrier only devices of its own.
pub fn may_register_device(who: &Principal, carrier: &str) -> bool {
    match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => id == carrier,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geofence::DeviceGeoState;
    use crate::telemetry::DeviceId;

    fn principal(role: &str) -> Principal {
        Principal {
            token_id: 1,
            name: "t".into(),
            role: role.parse().unwrap(),
        }
    }

    fn device_in(country: Option<&str>) -> (Device, DeviceState) {
        let device = Device {
            device_id: DeviceId::parse("d1").unwrap(),
            carrier: "kg-trans".into(),
            plate: None,
            registered_at: chrono::Utc::now(),
        };
        let state = DeviceState {
            geo: country.map(|cc| {
                Box::new(DeviceGeoState {
                    country: Some(cc.parse().unwrap()),
                    zones: vec![],
                    corridor: None,
                    last_fix_at: None,
                    point: None,
                })
            }),
            ..DeviceState::default()
        };
        (device, state)
    }

    #[test]
    fn a_carrier_sees_only_its_own_devices() {
        let (device, state) = device_in(None);
        assert!(may_see_device(
            &principal("carrier:kg-trans"),
            &device,
            &state
        ));
        assert!(!may_see_device(
            &principal("carrier:tj-cargo"),
            &device,
            &state
        ));
    }

    #[test]
    fn customs_see_devices_in_their_country_only() {
        let (device, state) = device_in(Some("KG"));
        assert!(may_see_device(&principal("customs:KG"), &device, &state));
        assert!(may_see_device(
            &principal("post:irkeshtam:KG"),
            &device,
            &state
        ));
        assert!(!may_see_device(&principal("customs:CN"), &device, &state));
        let (device, nowhere) = device_in(None);
        assert!(!may_see_device(&principal("customs:KG"), &device, &nowhere));
    }

    #[test]
    fn only_coordinators_and_the_carrier_itself_register_devices() {
        assert!(may_register_device(&principal("coordinator"), "any"));
        assert!(may_register_device(
            &principal("carrier:kg-trans"),
            "kg-trans"
        ));
        assert!(!may_register_device(
            &principal("carrier:kg-trans"),
            "tj-cargo"
        ));
        assert!(!may_register_device(&principal("customs:KG"), "kg-trans"));
    }
}
