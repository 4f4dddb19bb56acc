//! Location bodies: the single report (0x0200) and the batch upload (0x0704).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

use super::frame::bcd_digits;
use super::Jt808Error;
use crate::cursor::Cursor;
use crate::report::Fix;

/// Status bit 1: the position is a real GNSS fix.
pub const STATUS_POSITIONED: u32 = 1 << 1;
pub const STATUS_SOUTH: u32 = 1 << 2;
pub const STATUS_WEST: u32 = 1 << 3;
/// Additional information item 0x30: mobile network signal strength (CSQ, 0–31).
pub const EXTRA_SIGNAL: u8 = 0x30;
/// Additional information item 0x31: number of GNSS satellites.
pub const EXTRA_SATELLITES: u8 = 0x31;

/// A location report body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub alarm: u32,
    pub status: u32,
    /// Degrees × 10⁶, unsigned: the hemisphere is in `status`.
    pub lat_e6: u32,
    pub lon_e6: u32,
    pub altitude_m: u16,
    /// Tenths of km/h.
    pub speed_dkmh: u16,
    pub direction_deg: u16,
    /// Device time in GMT+8, as the standard specifies.
    pub time_gmt8: NaiveDateTime,
    /// Additional information items `(id, value)`, in wire order.
    pub extras: Vec<(u8, Vec<u8>)>,
    /// The id of an additional item that claimed more bytes than the body had left. It and
    /// anything after it are dropped: the 28-byte basic location before it is still good.
    pub truncated_extra: Option<u8>,
}

/// A batch upload: `kind` 0 is a normal batch, 1 the backlog of a coverage gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: u8,
    pub items: Vec<Location>,
}

impl Location {
    /// # Errors
    /// [`Jt808Error`] when the 28-byte basic location is short or its time is not a valid
    /// BCD date. A malformed additional item only ends the list of items
    /// ([`Location::truncated_extra`]).
    pub fn decode(body: &[u8]) -> Result<Self, Jt808Error> {
        let mut c = Cursor::new(body);
        let alarm = c.u32()?;
        let status = c.u32()?;
        let lat_e6 = c.u32()?;
        let lon_e6 = c.u32()?;
        let altitude_m = c.u16()?;
        let speed_dkmh = c.u16()?;
        let direction_deg = c.u16()?;
        let time_gmt8 = bcd_time(c.take(6)?)?;
        let mut extras = Vec::new();
        let mut truncated_extra = None;
        while c.remaining() > 0 {
            let id = c.u8()?;
            match c.u8().and_then(|len| c.take(len.into())) {
                Ok(value) => extras.push((id, value.to_vec())),
                Err(_) => {
                    truncated_extra = Some(id);
                    break;
                }
            }
        }
        Ok(Self {
            alarm,
            status,
            lat_e6,
            lon_e6,
            altitude_m,
            speed_dkmh,
            direction_deg,
            time_gmt8,
            extras,
            truncated_extra,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.extras.len() * 6);
        for v in [self.alarm, self.status, self.lat_e6, self.lon_e6] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [self.altitude_m, self.speed_dkmh, self.direction_deg] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let t = self.time_gmt8;
        for part in [
            t.year() % 100,
            t.month() as i32,
            t.day() as i32,
            t.hour() as i32,
            t.minute() as i32,
            t.second() as i32,
        ] {
            let part = part.unsigned_abs() as u8;
            out.push(((part / 10) << 4) | (part % 10));
        }
        for (id, value) in &self.extras {
            let value = value.get(..255).unwrap_or(value);
            out.push(*id);
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        out
    }

    /// The device time in UTC (GMT+8 minus eight hours).
    pub fn time_utc(&self) -> DateTime<Utc> {
        (self.time_gmt8 - Duration::hours(8)).and_utc()
    }

    pub fn positioned(&self) -> bool {
        self.status & STATUS_POSITIONED != 0
    }

    /// Signed WGS 84 coordinates `(lat, lon)`.
    pub fn coordinates(&self) -> (f64, f64) {
        let sign = |bit| if self.status & bit != 0 { -1.0 } else { 1.0 };
        (
            sign(STATUS_SOUTH) * f64::from(self.lat_e6) / 1e6,
            sign(STATUS_WEST) * f64::from(self.lon_e6) / 1e6,
        )
    }

    pub fn extra(&self, id: u8) -> Option<&[u8]> {
        self.extras
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.as_slice())
    }

    /// Signal strength in dBm from CSQ (`-113 + 2·CSQ`); CSQ 99 means unknown.
    pub fn gsm_rssi(&self) -> Option<i16> {
        match self.extra(EXTRA_SIGNAL)? {
            [csq] if *csq <= 31 => Some(-113 + 2 * i16::from(*csq)),
            _ => None,
        }
    }

    /// The fix, when the terminal says it has one and the coordinates are on Earth.
    pub fn fix(&self) -> Option<Fix> {
        let (lat, lon) = self.coordinates();
        if !self.positioned() || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return None;
        }
        Some(Fix {
            t: self.time_utc(),
            lat,
            lon,
            speed_kmh: Some(f64::from(self.speed_dkmh) / 10.0),
            heading_deg: self.direction_deg % 360,
            hdop: None,
            sats: match self.extra(EXTRA_SATELLITES) {
                Some([n]) => Some(*n),
                _ => None,
            },
            alt_m: Some(f64::from(self.altitude_m)),
        })
    }
}

impl Batch {
    /// # Errors
    /// [`Jt808Error`] when the body or any item is malformed: the terminal keeps the whole
    /// batch and resends it, so nothing is half-taken.
    pub fn decode(body: &[u8]) -> Result<Self, Jt808Error> {
        let mut c = Cursor::new(body);
        let count = c.u16()?;
        let kind = c.u8()?;
        let mut items = Vec::new();
        for _ in 0..count {
            let len = c.u16()?;
            items.push(Location::decode(c.take(len.into())?)?);
        }
        Ok(Self { kind, items })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = (self.items.len() as u16).to_be_bytes().to_vec();
        out.push(self.kind);
        for item in &self.items {
            let body = item.encode();
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(&body);
        }
        out
    }
}

fn bcd_time(bytes: &[u8]) -> Result<NaiveDateTime, Jt808Error> {
    let digits = bcd_digits(bytes)?;
    let part = |i: usize| {
        digits
            .get(i..i + 2)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(Jt808Error::BadTime)
    };
    let [yy, mo, dd, hh, mi, ss] = [part(0)?, part(2)?, part(4)?, part(6)?, part(8)?, part(10)?];
    NaiveDate::from_ymd_opt(2000 + yy as i32, mo, dd)
        .and_then(|d| d.and_hms_opt(hh, mi, ss))
        .ok_or(Jt808Error::BadTime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> Vec<u8> {
        let mut body = Vec::new();
        for v in [0u32, STATUS_POSITIONED, 39_681_000, 73_921_500] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [2850u16, 542, 112] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&[0x26, 0x11, 0x27, 0x16, 0x15, 0x30]);
        body
    }

    #[test]
    fn an_extra_item_longer_than_the_body_keeps_the_basic_location() {
        let mut body = basic();
        body.extend_from_slice(&[EXTRA_SIGNAL, 1, 22]);
        body.extend_from_slice(&[EXTRA_SATELLITES, 0x78, 11]);
        let loc = Location::decode(&body).unwrap();
        assert_eq!(loc.truncated_extra, Some(EXTRA_SATELLITES));
        assert_eq!(loc.extras, [(EXTRA_SIGNAL, vec![22])]);
        let fix = loc.fix().unwrap();
        assert_eq!((fix.lat, fix.lon, fix.sats), (39.681, 73.9215, None));
    }

    #[test]
    fn an_extra_item_id_without_its_length_is_dropped_too() {
        let mut body = basic();
        body.push(EXTRA_SATELLITES);
        let loc = Location::decode(&body).unwrap();
        assert_eq!(loc.truncated_extra, Some(EXTRA_SATELLITES));
    }

    #[test]
    fn a_short_basic_location_is_still_refused() {
        let body = basic();
        assert_eq!(
            Location::decode(&body[..27]).unwrap_err(),
            Jt808Error::Truncated
        );
    }
}
