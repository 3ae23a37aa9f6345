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

/// One `0x01` per byte of the compact form, to spread a byte value over all sixteen bytes.
const ONES: u128 = u128::MAX / 0xff;
/// ASCII `0` in every byte.
const ZEROS: u128 = ONES * 0x30;
/// The bytes of `T` (index 8) and `Z` (index 15) in the little-endian word of the compact form.
const SEPARATORS: u128 = (0xff << 64) | (0xff << 120);
/// The high nibble of every byte.
const HIGH_NIBBLES: u128 = ONES * 0xf0;
/// `6` in every byte.
const SIXES: u128 = ONES * 0x06;
/// `0x33` in every byte: what the digit test below leaves of a digit (high nibble 3, and 3 after adding 6).
const DIGIT_NIBBLES: u128 = ONES * 0x33;

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
        // Times are decoded by the hundred per page, so the sixteen bytes are read as one little-endian
        // `u128` (byte `i` of the text is byte `i` of the number) and checked and split with a few word
        // operations instead of a loop per field. The calendar is still checked by `from_parts`.
        let b: &[u8; LEN] = s
            .as_bytes()
            .try_into()
            .map_err(|_| ModelError::InvalidTimestamp { reason: "expected yyyyMMddTHHmmssZ" })?;
        let w = u128::from_le_bytes(*b);
        if (w >> 64) as u8 != b'T' || (w >> 120) as u8 != b'Z' {
            return Err(ModelError::InvalidTimestamp { reason: "expected yyyyMMddTHHmmssZ" });
        }
        // Put `0` in place of `T` and `Z` so that all sixteen bytes must be decimal digits.
        let w = (w & !SEPARATORS) | (ZEROS & SEPARATORS);
        // A byte is a digit (0x30..=0x39) exactly when its high nibble is 3 and adding 6 leaves it at 3:
        // both tests together reject every other byte, including UTF-8 lead and continuation bytes.
        if (w & HIGH_NIBBLES) | (((w + SIXES) & HIGH_NIBBLES) >> 4) != DIGIT_NIBBLES {
            return Err(ModelError::InvalidTimestamp { reason: "expected digits in yyyyMMddTHHmmssZ" });
        }
        let v = w - ZEROS;
        // Byte `i` becomes `10 * digit(i) + digit(i + 1)`: at most 99, so no byte carries into the next, and
        // every two-digit field can be read at its first byte.
        let pairs = v * 10 + (v >> 8);
        let at = |i: u32| (pairs >> (8 * i)) as u8;
        let year = i32::from(at(0)) * 100 + i32::from(at(2));
        Self::from_parts(year, at(4), at(6), at(9), at(11), at(13))
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
    fn rejects_bytes_the_word_checks_must_catch() {
        for bad in [
            // Neighbours of the digits and of the separators, at the first, a middle and the last position.
            "/0151212T121212Z",
            ":0151212T121212Z",
            "2015121:T121212Z",
            "20151212T12121/Z",
            "20151212T12121:Z",
            "20151212t121212Z",
            "20151212T121212z",
            "20151212U121212Z",
            "20151212T121212[",
            "20151212 121212 ",
            // Sixteen bytes with a two-byte character in a digit slot and in a separator slot.
            "201512\u{e9}T121212Z",
            "20151212\u{e9}21212Z",
            "20151212T12121\u{e9}",
            // Length one off either way.
            "20151212T12121Z",
            "20151212T1212120Z",
            // Calendar checks that the word parse hands on to `from_parts`.
            "20150000T000000Z",
            "20150100T000000Z",
            "20150431T000000Z",
            "19000229T000000Z",
            "20151212T990000Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Timestamp::parse("20000229T000000Z").is_ok(), "2000 is a leap year");
        assert!(Timestamp::parse("00000101T000000Z").is_ok(), "year 0000 is in range");
        assert!(Timestamp::parse("99991231T235959Z").is_ok(), "year 9999 is in range");
    }

    /// The field-by-field parser this module used before the word parse, kept as an oracle.
    fn reference_parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() != LEN || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
        Timestamp::from_parts(year as i32, month as u8, day as u8, hour as u8, minute as u8, second as u8).ok()
    }

    #[test]
    fn agrees_with_the_field_by_field_parser_on_every_single_byte_change() {
        for base in ["20151212T121212Z", "20160229T235959Z", "00000101T000000Z", "99991231T235959Z"] {
            for i in 0..LEN {
                for c in 0u8..0x80 {
                    let mut b = base.as_bytes().to_vec();
                    b[i] = c;
                    let s = String::from_utf8(b).unwrap();
                    assert_eq!(Timestamp::parse(&s).ok(), reference_parse(&s), "{s:?}");
                }
            }
        }
        // Every month and day number 00..=99 of a leap and a common year, and every time field 00..=99.
        for year in ["2016", "2015", "2000", "1900"] {
            for month in 0..100 {
                for day in 0..100 {
                    let s = format!("{year}{month:02}{day:02}T000000Z");
                    assert_eq!(Timestamp::parse(&s).ok(), reference_parse(&s), "{s:?}");
                }
            }
        }
        for n in 0..100 {
            for s in [format!("20151212T{n:02}0000Z"), format!("20151212T00{n:02}00Z"), format!("20151212T0000{n:02}Z")]
            {
                assert_eq!(Timestamp::parse(&s).ok(), reference_parse(&s), "{s:?}");
            }
        }
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
