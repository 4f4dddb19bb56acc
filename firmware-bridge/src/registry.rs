//! Which devices may connect, and how to read each one's inputs.
//!
//! Loaded once at start from a TOML or JSON file. The JSON form is the same shape as
//! Caravan's `GET /api/v1/devices` answer (`{"devices":[{"device_id": ...}]}`), so a saved
//! copy of that answer is a valid registry.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::device::{DeviceId, InvalidDeviceId};
use crate::report::SealEventKind;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the registry file: {0}")]
    Read(#[from] std::io::Error),
    #[error("the registry is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("the registry is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    DeviceId(#[from] InvalidDeviceId),
    #[error("device {device} names model {model:?}, which the registry does not define")]
    UnknownModel { device: String, model: String },
    #[error("model {0:?} maps DIN{1}; only DIN1..DIN4 exist")]
    BadInput(String, u8),
}

/// A digital input wired to a seal or door sensor, and the event each level means.
///
/// Teltonika reports DIN1..DIN4 as IO ids 1..4. Which level means "open" depends on the
/// sensor's wiring, so both are configured per device model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRule {
    pub din: u8,
    pub high: Option<SealEventKind>,
    pub low: Option<SealEventKind>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    #[serde(default)]
    inputs: Vec<InputRule>,
}

#[derive(Debug, Clone, Deserialize)]
struct Entry {
    #[serde(alias = "id")]
    device_id: String,
    model: Option<String>,
    seal_id: Option<String>,
    auth_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    models: HashMap<String, Model>,
    #[serde(default)]
    devices: Vec<Entry>,
}

/// What the bridge knows about one allowed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    pub device_id: DeviceId,
    /// The seal its events are about; the device id when the registry names none.
    pub seal_id: String,
    pub inputs: Vec<InputRule>,
    /// The JT/T 808 authentication code handed out at registration and expected at login.
    pub auth_code: String,
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    devices: HashMap<DeviceId, DeviceProfile>,
}

impl Registry {
    /// # Errors
    /// [`RegistryError`] when the file cannot be read or names an invalid device or model.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path)?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// # Errors
    /// As [`Registry::load`].
    pub fn from_toml(text: &str) -> Result<Self, RegistryError> {
        Self::build(toml::from_str(text)?)
    }

    /// # Errors
    /// As [`Registry::load`].
    pub fn from_json(text: &str) -> Result<Self, RegistryError> {
        Self::build(serde_json::from_str(text)?)
    }

    /// Whether `device` (a device id as it appears in a topic) is registered.
    pub fn contains(&self, device: &str) -> bool {
        DeviceId::parse(device).is_ok_and(|id| self.devices.contains_key(&id))
    }

    fn build(file: File) -> Result<Self, RegistryError> {
        for (name, model) in &file.models {
            if let Some(bad) = model.inputs.iter().find(|r| !(1..=4).contains(&r.din)) {
                return Err(RegistryError::BadInput(name.clone(), bad.din));
            }
        }
        let mut devices = HashMap::new();
        for entry in file.devices {
            let device_id = DeviceId::parse(&entry.device_id)?;
            let inputs = match &entry.model {
                None => Vec::new(),
                Some(model) => match file.models.get(model) {
                    Some(m) => m.inputs.clone(),
                    None => {
                        return Err(RegistryError::UnknownModel {
                            device: entry.device_id,
                            model: model.clone(),
                        })
                    }
                },
            };
            let profile = DeviceProfile {
                seal_id: entry.seal_id.unwrap_or_else(|| device_id.to_string()),
                auth_code: entry.auth_code.unwrap_or_else(|| format!("CV{device_id}")),
                inputs,
                device_id: device_id.clone(),
            };
            devices.insert(device_id, profile);
        }
        Ok(Self { devices })
    }

    pub fn get(&self, id: &DeviceId) -> Option<&DeviceProfile> {
        self.devices.get(id)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [models.FMB920]
        inputs = [{ din = 2, high = "closed", low = "opened" }]

        [[devices]]
        device_id = "356307042441013"
        model = "FMB920"
        seal_id = "KG-ES-000123"

        [[devices]]
        id = "13912345678"
    "#;

    #[test]
    fn a_device_inherits_the_input_map_of_its_model() {
        let reg = Registry::from_toml(SAMPLE).unwrap();
        let dev = reg
            .get(&DeviceId::parse("356307042441013").unwrap())
            .unwrap();
        assert_eq!(dev.seal_id, "KG-ES-000123");
        assert_eq!(dev.inputs[0].low, Some(SealEventKind::Opened));
    }

    #[test]
    fn a_device_without_a_seal_id_uses_its_own_id() {
        let reg = Registry::from_toml(SAMPLE).unwrap();
        let dev = reg.get(&DeviceId::parse("13912345678").unwrap()).unwrap();
        assert_eq!(dev.seal_id, "13912345678");
    }

    #[test]
    fn the_caravan_api_answer_is_a_valid_registry() {
        let reg =
            Registry::from_json(r#"{"devices":[{"device_id":"a1"},{"device_id":"b2"}]}"#).unwrap();
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn an_unknown_model_is_an_error() {
        let err = Registry::from_toml("[[devices]]\nid = \"x\"\nmodel = \"nope\"").unwrap_err();
        assert!(matches!(err, RegistryError::UnknownModel { .. }));
    }
}
