//! The simulated fleet: devices and version packages, generated from the seed or loaded from a JSON file.
//!
//! # The fleet file
//!
//! A fleet file is one JSON object with two members:
//!
//! ```json
//! {
//!   "devices": [
//!     {
//!       "deviceId": "a3c1e6f0-0000-4000-8000-000000000001",
//!       "deviceType": "WaterMeter",
//!       "model": "WM-200",
//!       "manufacturerName": "Acme Metering",
//!       "manufacturerId": "acme",
//!       "groups": ["north", "pilot"],
//!       "firmwareVersion": "V1.0.0",
//!       "softwareVersion": "V3.0.1"
//!     }
//!   ],
//!   "packages": [
//!     {
//!       "fileId": "5c6a0d2e4b1f7a9c3e8d0b21",
//!       "name": "WM-200 firmware V1.1.0",
//!       "version": "V1.1.0",
//!       "fileType": "firmwarePackage",
//!       "deviceType": "WaterMeter",
//!       "model": "WM-200",
//!       "manufacturerName": "Acme Metering",
//!       "protocolType": "CoAP",
//!       "description": "Fixes the flow sensor drift",
//!       "date": "2024-03-01",
//!       "uploadTime": "20240301T080000Z"
//!     }
//!   ]
//! }
//! ```
//!
//! Each device needs `deviceId`, `deviceType`, `model`, `manufacturerName`, `firmwareVersion` and
//! `softwareVersion`; `manufacturerId` (matched by DeviceCmd batch tasks, the manufacturer name when absent) and
//! `groups` are optional. `packages` is optional and holds CategoryInfo objects exactly as the platform answers
//! them (only `fileId` is required). Unknown members are refused, so a typo is reported instead of ignored;
//! device ids and file ids must be unique.

use std::collections::BTreeSet;

use iot_model::{CategoryInfo, DeviceId, FileId, FileType, Timestamp};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::rng::Rng;

/// One simulated device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    /// The platform's id of the device.
    pub device_id: DeviceId,
    /// Device type, such as `WaterMeter`.
    pub device_type: String,
    /// Device model.
    pub model: String,
    /// Manufacturer name, matched by upgrade tasks and package filters.
    pub manufacturer_name: String,
    /// Manufacturer id, matched by DeviceCmd batch tasks; the manufacturer name stands in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer_id: Option<String>,
    /// Names of the device groups the device belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Firmware version the device runs; a successful firmware upgrade changes it.
    pub firmware_version: String,
    /// Software version the device runs; a successful software upgrade changes it.
    pub software_version: String,
}

impl Device {
    /// The manufacturer id, or the manufacturer name when no id was given.
    pub fn manufacturer_key(&self) -> &str {
        self.manufacturer_id.as_deref().unwrap_or(&self.manufacturer_name)
    }

    /// Whether the device is of this type, model and manufacturer.
    pub fn is_kind(&self, device_type: &str, model: &str, manufacturer_name: &str) -> bool {
        self.device_type == device_type && self.model == model && self.manufacturer_name == manufacturer_name
    }

    /// The version of the given kind of package the device runs.
    pub fn version_for(&self, file_type: &FileType) -> &str {
        match file_type {
            FileType::SoftwarePackage => &self.software_version,
            _ => &self.firmware_version,
        }
    }
}

/// A whole fleet: devices and the version packages stored for them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSpec {
    /// The devices.
    pub devices: Vec<Device>,
    /// The version packages, as CategoryInfo.
    #[serde(default)]
    pub packages: Vec<CategoryInfo>,
}

impl FleetSpec {
    /// Reads a fleet file (see the module documentation for the format), checking that ids are unique.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SimError> {
        let spec: Self = serde_json::from_slice(bytes).map_err(SimError::FleetFile)?;
        let mut devices = BTreeSet::new();
        for d in &spec.devices {
            if !devices.insert(d.device_id.as_str()) {
                return Err(SimError::DuplicateDevice(d.device_id.to_string()));
            }
        }
        let mut files = BTreeSet::new();
        for p in &spec.packages {
            if !files.insert(p.file_id.as_str()) {
                return Err(SimError::DuplicatePackage(p.file_id.to_string()));
            }
        }
        Ok(spec)
    }

    /// Generates `size` devices of two device types, spread over four regional groups (some also in `pilot`),
    /// on older firmware and software versions, and a firmware and a software package for every newer version.
    /// The same seed always gives the same fleet.
    pub fn generate(seed: u64, size: usize) -> Self {
        let mut rng = Rng::derive(seed, &[FLEET_STREAM]);
        let mut devices = Vec::with_capacity(size);
        let mut seen = super::fasthash::FastSet::default();
        seen.reserve(size);
        while devices.len() < size {
            let Some(kind) = rng.pick(KINDS) else { break };
            let id = rng.uuid_like();
            // A collision of 128 random bits is practically impossible, but a duplicate id would break the fleet.
            // The id's 32 hexadecimal digits are its bits: kept as a number, the check costs no copy of the string.
            let bits = u128::from_str_radix(&id.replace('-', ""), 16).unwrap_or_default();
            if !seen.insert(bits) {
                continue;
            }
            let Ok(device_id) = DeviceId::new(id) else { continue };
            let mut groups = vec![rng.pick(REGIONS).copied().unwrap_or("north").to_owned()];
            if rng.chance(0.2) {
                groups.push(PILOT_GROUP.to_owned());
            }
            // Devices run anything but the newest version, so every device has something to upgrade to.
            let firmware = kind.firmware[rng.below(kind.firmware.len() as u64 - 1) as usize];
            let software = kind.software[rng.below(kind.software.len() as u64 - 1) as usize];
            devices.push(Device {
                device_id,
                device_type: kind.device_type.to_owned(),
                model: kind.model.to_owned(),
                manufacturer_name: kind.manufacturer_name.to_owned(),
                manufacturer_id: Some(kind.manufacturer_id.to_owned()),
                groups,
                firmware_version: firmware.to_owned(),
                software_version: software.to_owned(),
            });
        }
        let mut packages = Vec::new();
        let mut day = 0i64;
        for kind in KINDS {
            for (file_type, ladder, what) in [
                (FileType::FirmwarePackage, kind.firmware, "firmware"),
                (FileType::SoftwarePackage, kind.software, "software"),
            ] {
                for version in &ladder[1..] {
                    day += 7;
                    let Ok(file_id) = FileId::new(rng.hex(24)) else { continue };
                    let mut p = CategoryInfo::new(file_id)
                        .with_name(format!("{} {what} {version}", kind.model))
                        .with_version((*version).to_owned())
                        .with_file_type(file_type.clone())
                        .with_device_type(kind.device_type.to_owned())
                        .with_model(kind.model.to_owned())
                        .with_manufacturer_name(kind.manufacturer_name.to_owned())
                        .with_protocol_type(kind.protocol.to_owned())
                        .with_description(format!("{} {what} release {version}", kind.device_type));
                    if let Ok(t) = Timestamp::from_unix_seconds(PACKAGE_EPOCH_SECS + day * 86_400) {
                        let compact = t.to_string();
                        p.date = Some(format!("{}-{}-{}", &compact[0..4], &compact[4..6], &compact[6..8]));
                        p.upload_time = Some(t);
                    }
                    packages.push(p);
                }
            }
        }
        Self { devices, packages }
    }
}

/// Where the simulator's fleet comes from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FleetSource {
    /// Generated from the simulator's seed with this many devices (see [`FleetSpec::generate`]).
    Generated {
        /// Number of devices.
        size: usize,
    },
    /// Given in full, for example read from a fleet file with [`FleetSpec::from_json`].
    Spec(FleetSpec),
}

/// Label of the stream the fleet is generated from.
const FLEET_STREAM: u64 = 0xF1EE7;

/// Group every generated device may additionally belong to.
pub const PILOT_GROUP: &str = "pilot";

/// Regional groups of generated devices; each device is in exactly one.
pub const REGIONS: &[&str] = &["north", "south", "east", "west"];

/// Upload times of generated packages count from 2024-01-01T00:00:00Z.
const PACKAGE_EPOCH_SECS: i64 = 1_704_067_200;

/// A generated device kind and the versions it knows, oldest first.
struct Kind {
    device_type: &'static str,
    model: &'static str,
    manufacturer_name: &'static str,
    manufacturer_id: &'static str,
    protocol: &'static str,
    firmware: &'static [&'static str],
    software: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        device_type: "WaterMeter",
        model: "WM-200",
        manufacturer_name: "Acme Metering",
        manufacturer_id: "acme",
        protocol: "CoAP",
        firmware: &["V1.0.0", "V1.1.0", "V1.2.0", "V2.0.0"],
        software: &["V3.0.1", "V3.1.0", "V3.2.0"],
    },
    Kind {
        device_type: "SmokeDetector",
        model: "SD-10",
        manufacturer_name: "Beacon Safety",
        manufacturer_id: "beacon",
        protocol: "LWM2M",
        firmware: &["V2.1.0", "V2.2.0", "V2.3.0"],
        software: &["V5.0.0", "V5.1.0", "V5.2.0"],
    },
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let a = FleetSpec::generate(7, 300);
        assert_eq!(a, FleetSpec::generate(7, 300));
        assert_ne!(a.devices, FleetSpec::generate(8, 300).devices);
        assert_eq!(a.devices.len(), 300);
        let types: BTreeSet<_> = a.devices.iter().map(|d| d.device_type.as_str()).collect();
        assert_eq!(types.len(), 2);
        assert_eq!(FleetSpec::generate(7, 0).devices.len(), 0);
    }

    #[test]
    fn every_device_has_a_newer_firmware_and_software_package() {
        let spec = FleetSpec::generate(3, 100);
        for d in &spec.devices {
            for ft in [FileType::FirmwarePackage, FileType::SoftwarePackage] {
                let newer = spec.packages.iter().any(|p| {
                    p.file_type.as_ref() == Some(&ft)
                        && p.device_type.as_deref() == Some(d.device_type.as_str())
                        && p.model.as_deref() == Some(d.model.as_str())
                        && p.manufacturer_name.as_deref() == Some(d.manufacturer_name.as_str())
                        && p.version.as_deref() != Some(d.version_for(&ft))
                });
                assert!(newer, "{d:?} {ft:?}");
            }
        }
    }

    #[test]
    fn fleet_file_round_trips_and_rejects_duplicates_and_typos() {
        let spec = FleetSpec::generate(1, 5);
        let json = serde_json::to_vec(&spec).unwrap();
        assert_eq!(FleetSpec::from_json(&json).unwrap(), spec);

        let mut dup = spec.clone();
        dup.devices.push(dup.devices[0].clone());
        let err = FleetSpec::from_json(&serde_json::to_vec(&dup).unwrap()).unwrap_err();
        assert!(matches!(err, SimError::DuplicateDevice(_)), "{err:?}");

        let mut dup = spec.clone();
        dup.packages.push(dup.packages[0].clone());
        let err = FleetSpec::from_json(&serde_json::to_vec(&dup).unwrap()).unwrap_err();
        assert!(matches!(err, SimError::DuplicatePackage(_)), "{err:?}");

        let typo = br#"{"devices": [], "pakages": []}"#;
        assert!(matches!(FleetSpec::from_json(typo), Err(SimError::FleetFile(_))));
        let minimal = br#"{"devices": [{"deviceId": "d1", "deviceType": "T", "model": "M",
            "manufacturerName": "N", "firmwareVersion": "1", "softwareVersion": "2"}]}"#;
        let spec = FleetSpec::from_json(minimal).unwrap();
        assert_eq!(spec.devices[0].manufacturer_key(), "N");
        assert!(spec.packages.is_empty());
    }
}
