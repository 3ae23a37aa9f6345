//! The platform's compact UTC time format, `yyyyMMdd'T'HHmmss'Z'` (for example `20151212T121212Z`).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::ModelError;

/// A UTC instant with second precision, as the platform writes times.
///
/// Parsing checks the calendar through the `time` crate, so impossible dates such as `20150230T000000Z` are
/// rejected rather than silently moved to another day.
///
/// ```
/// use iot_model::Timestamp;
/// let t: Timestamp = "20151212T121212Z".parse().unwrap();
/// assert_eq!(t.to_string(), "20151212T121212Z");
/// assert!("20150230T000000Z".parse::<Timestamp>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

/// Length of the compact form in bytes.
const LEN: usize = 16;

impl Timestamp {
    /// Builds a timestamp from calendar fields, checking that the date and time exist.
    pub fn from_parts(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Result<Self, ModelError> {
        let invalid = |_| ModelError::InvalidTimestamp { reason: "no such date or time" };
        let month = Month::try_from(month).map_err(invalid)?;
        let date = Date::from_calendar_date(year, month, day).map_err(invalid)?;
        let time = Time::from_hms(hour, minute, second).map_err(invalid)?;
        if !(0..=9999).contains(&year) {
            return Err(ModelError::InvalidTimestamp { reason: "year outside 0000..=9999" });
        }
        Ok(Self(PrimitiveDateTime::new(date, time)))
    }

    /// Parses the compact form, rejecting anything else.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let b = s.as_bytes();
        if b.len() != LEN || b[8] != b'T' || b[15] != b'Z' {
            return Err(ModelError::InvalidTimestamp { reason: "expected yyyyMMddTHHmmssZ" });
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, ModelError> {
            b[range].iter().try_fold(0u32, |acc, &c| {
                if c.is_ascii_digit() {
                    Ok(acc * 10 + u32::from(c - b'0'))
                } else {
                    Err(ModelError::InvalidTimestamp { reason: "expected digits in yyyyMMddTHHmmssZ" })
                }
            })
        };
        // Every value below has at most four decimal digits, so the narrowing casts cannot truncate.
        let year = num(0..4)? as i32;
        let month = num(4..6)? as u8;
        let day = num(6..8)? as u8;
        let hour = num(9..11)? as u8;
        let minute = num(11..13)? as u8;
        let second = num(13..15)? as u8;
        Self::from_parts(year, month, day, hour, minute, second)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.assume_utc().unix_timestamp()
    }

    /// Builds a timestamp from seconds since the Unix epoch (years 0000 to 9999).
    pub fn from_unix_seconds(secs: i64) -> Result<Self, ModelError> {
        let odt = time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| ModelError::InvalidTimestamp { reason: "outside the supported range" })?;
        let year = odt.year();
        if !(0..=9999).contains(&year) {
            return Err(ModelError::InvalidTimestamp { reason: "year outside 0000..=9999" });
        }
        Ok(Self(PrimitiveDateTime::new(odt.date(), odt.time())))
    }

    /// Converts a system time, dropping the sub-second part; times before 1970 or after 9999 are an error.
    pub fn from_system_time(t: SystemTime) -> Result<Self, ModelError> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ModelError::InvalidTimestamp { reason: "before the Unix epoch" })?;
        let secs = i64::try_from(secs.as_secs())
            .map_err(|_| ModelError::InvalidTimestamp { reason: "outside the supported range" })?;
        Self::from_unix_seconds(secs)
    }

    /// The same instant as a system time (times before 1970 map to the epoch).
    pub fn to_system_time(self) -> SystemTime {
        let secs = u64::try_from(self.unix_seconds()).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// This timestamp moved by `secs` seconds, if the result stays in range.
    pub fn checked_add_secs(self, secs: i64) -> Option<Self> {
        Self::from_unix_seconds(self.unix_seconds().checked_add(secs)?).ok()
    }

    /// Writes the compact form into a 16-byte buffer without allocating.
    fn encode(self, out: &mut [u8; LEN]) {
        fn put(out: &mut [u8], mut v: u32) {
            for slot in out.iter_mut().rev() {
                // `v % 10` is a single decimal digit.
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let d = self.0.date();
        let t = self.0.time();
        put(&mut out[0..4], d.year().unsigned_abs());
        put(&mut out[4..6], u32::from(u8::from(d.month())));
        put(&mut out[6..8], u32::from(d.day()));
        out[8] = b'T';
        put(&mut out[9..11], u32::from(t.hour()));
        put(&mut out[11..13], u32::from(t.minute()));
        put(&mut out[13..15], u32::from(t.second()));
        out[15] = b'Z';
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; LEN];
        self.encode(&mut buf);
        // The buffer holds ASCII digits and letters only.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; LEN];
        self.encode(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UTC time as yyyyMMddTHHmmssZ")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_compact_form() {
        let t = Timestamp::parse("20151212T121212Z").unwrap();
        assert_eq!(t.to_string(), "20151212T121212Z");
        assert_eq!(t.unix_seconds(), 1_449_922_332);
        assert_eq!(Timestamp::from_unix_seconds(1_449_922_332).unwrap(), t);
    }

    #[test]
    fn rejects_impossible_and_malformed_times() {
        for bad in [
            "20150230T000000Z",
            "20150229T000000Z",
            "20151301T000000Z",
            "20151200T000000Z",
            "20151212T240000Z",
            "20151212T126000Z",
            "20151212T121260Z",
            "20151212 121212Z",
            "20151212T121212",
            "2015-12-12T12:12:12Z",
            "",
            "2015121xT121212Z",
            "２0151212T121212Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Timestamp::parse("20160229T235959Z").is_ok(), "leap day exists in 2016");
    }

    #[test]
    fn json_round_trip_and_ordering() {
        let a: Timestamp = serde_json::from_str("\"20000101T000000Z\"").unwrap();
        let b = a.checked_add_secs(1).unwrap();
        assert!(a < b);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"20000101T000001Z\"");
        assert!(serde_json::from_str::<Timestamp>("\"20150230T000000Z\"").is_err());
    }
}
