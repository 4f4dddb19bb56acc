//! Jointech JT701 (and JT709) electronic locks: the binary location report of the JT600
//! protocol family in its long form, over TCP.
//!
//! Sources: the frame layout as Traccar's `Jt600ProtocolDecoder` reads it (its long format,
//! chosen when the first identifier digit is 7 or more), and the status word's bits as
//! Wialon's Jointech JT701D device page lists them (numbered there from 1; here from 0).
//!
//! ```text
//! '$' | id: 5 bytes BCD | protocol version | version (high nibble) | length: u16 (bytes after it)
//!     | records … | index: u8
//! record: date DDMMYY, time hhmmss (BCD, UTC) | latitude 8 BCD digits DDMMmmmm
//!     | longitude 9 BCD digits DDDMMmmmm and a flags nibble (bit 0 valid, 1 north, 2 east)
//!     | speed: 2 BCD digits (knots, Traccar's reading) | course / 2: u8 | odometer km: u32
//!     | satellites: u8 | vehicle id: u32 | status: u16 | battery %: u8 (0xFF charging)
//!     | cell id: u16 | LAC: u16 | signal: u8
//!     | protocol versions 0x17 and 0x19: geofence id, 3 reserved bytes, then any further
//!       data up to the index (one record per frame)
//! ```
//!
//! The lock also sends text messages in parentheses (`(id,P45,…)`: RFID unlock records,
//! command answers); they are framed so that the connection survives them, and counted as
//! unsupported. The short binary form (JT600 vehicle trackers) is refused.

pub mod mapping;

use chrono::{NaiveDate, NaiveDateTime};

use crate::cursor::Cursor;
use crate::framing::Framing;

const BINARY: u8 = b'$';
const TEXT_OPEN: u8 = b'(';
const TEXT_CLOSE: u8 = b')';
/// `'$'`, id, protocol version, version, length.
const HEADER_LEN: usize = 10;
/// A record without the 0x17/0x19 extension.
pub const RECORD_LEN: usize = 34;
/// Geofence id and three reserved bytes, at least, in protocol versions 0x17 and 0x19.
pub const EXTENSION_MIN: usize = 4;

/// Why a JT701 frame was refused. The names double as metric reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Jt701Error {
    #[error("the message ends inside a field")]
    Truncated,
    #[error("a BCD field holds a nibble above 9")]
    BadBcd,
    #[error("the time field is not a valid date and time")]
    BadTime,
    #[error("a coordinate's minutes are 60 or more")]
    BadCoordinate,
    #[error("the short (JT600 tracker) form is not supported")]
    ShortFormat,
    #[error("the length field says {stated}, the records need a multiple of {RECORD_LEN}")]
    RecordLength { stated: usize },
    #[error("not a binary report")]
    NotBinary,
}

impl Jt701Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadBcd => "bad_bcd",
            Self::BadTime => "bad_time",
            Self::BadCoordinate => "bad_coordinate",
            Self::ShortFormat => "unsupported",
            Self::RecordLength { .. } => "body_length",
            Self::NotBinary => "unsupported",
        }
    }
}

impl From<crate::cursor::Truncated> for Jt701Error {
    fn from(_: crate::cursor::Truncated) -> Self {
        Self::Truncated
    }
}

/// One binary location report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The ten identifier digits as sent (with any leading zeros).
    pub id_digits: String,
    pub protocol_version: u8,
    /// The byte after the protocol version (its high nibble is the data version).
    pub version: u8,
    pub records: Vec<Record>,
    /// Echoed in the acknowledgement of protocol version 0x19.
    pub index: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// UTC.
    pub time: NaiveDateTime,
    /// The BCD digits as a number: `DDMMmmmm`.
    pub lat_raw: u32,
    /// `DDDMMmmmm`.
    pub lon_raw: u32,
    /// Bit 0 valid fix, bit 1 north, bit 2 east.
    pub flags: u8,
    pub speed_knots: u8,
    /// Degrees / 2.
    pub course_half_deg: u8,
    pub odometer_km: u32,
    pub satellites: u8,
    pub vehicle_id: u32,
    /// See [`mapping`] for the bits.
    pub status: u16,
    /// Percent; 0xFF while charging.
    pub battery: u8,
    pub cell_id: u16,
    pub lac: u16,
    pub signal: u8,
    /// Protocol versions 0x17 and 0x19: geofence id, reserved bytes and any later fields.
    pub extension: Vec<u8>,
}

impl Report {
    /// The device id the registry knows the lock by: the identifier without leading zeros.
    pub fn device_id(&self) -> &str {
        let trimmed = self.id_digits.trim_start_matches('0');
        if trimmed.is_empty() {
            "0"
        } else {
            trimmed
        }
    }
}

/// Protocol versions whose single record carries the extension.
pub fn has_extension(protocol_version: u8) -> bool {
    matches!(protocol_version, 0x17 | 0x19)
}

/// Finds one message at the start of `buf`: a binary report by its length field, or a text
/// message up to its closing parenthesis. Anything else is skipped up to the next `$` or `(`.
pub fn frame(buf: &[u8], max_frame: usize) -> Framing {
    let Some(&first) = buf.first() else {
        return Framing::Incomplete;
    };
    match first {
        BINARY => {
            let Some(len) = buf.get(8..10) else {
                return Framing::Incomplete;
            };
            let total = HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]]));
            if total > max_frame {
                return Framing::Invalid {
                    skip: 1,
                    reason: "frame_too_large",
                };
            }
            if buf.len() < total {
                Framing::Incomplete
            } else {
                Framing::Frame { len: total }
            }
        }
        TEXT_OPEN => match buf.iter().take(max_frame).position(|&b| b == TEXT_CLOSE) {
            Some(end) => Framing::Frame { len: end + 1 },
            None if buf.len() >= max_frame => Framing::Invalid {
                skip: 1,
                reason: "frame_too_large",
            },
            None => Framing::Incomplete,
        },
        _ => Framing::Invalid {
            skip: buf
                .iter()
                .position(|&b| b == BINARY || b == TEXT_OPEN)
                .unwrap_or(buf.len()),
            reason: "garbage",
        },
    }
}

/// Whether a framed message is a text message (counted, not decoded).
pub fn is_text(frame: &[u8]) -> bool {
    frame.first() == Some(&TEXT_OPEN)
}

/// Decodes one binary frame as delimited by [`frame`].
///
/// # Errors
/// [`Jt701Error`] for the short form, a bad length, BCD, time or coordinate.
pub fn decode(frame: &[u8]) -> Result<Report, Jt701Error> {
    let mut c = Cursor::new(frame);
    if c.u8()? != BINARY {
        return Err(Jt701Error::NotBinary);
    }
    let id = c.take(5)?;
    if id.first().is_none_or(|b| b >> 4 < 7) {
        return Err(Jt701Error::ShortFormat);
    }
    let id_digits = digits(id)?;
    let protocol_version = c.u8()?;
    let version = c.u8()?;
    let stated = usize::from(c.u16()?);
    let body = c.take(stated)?;
    let (records_bytes, index) = match body.split_last() {
        Some((index, records)) => (records, *index),
        None => return Err(Jt701Error::RecordLength { stated }),
    };
    let mut records = Vec::new();
    if has_extension(protocol_version) {
        if records_bytes.len() < RECORD_LEN + EXTENSION_MIN {
            return Err(Jt701Error::RecordLength { stated });
        }
        let (fixed, extension) = records_bytes.split_at(RECORD_LEN);
        records.push(record(fixed, extension.to_vec())?);
    } else {
        if records_bytes.is_empty() || records_bytes.len() % RECORD_LEN != 0 {
            return Err(Jt701Error::RecordLength { stated });
        }
        for fixed in records_bytes.chunks(RECORD_LEN) {
            records.push(record(fixed, Vec::new())?);
        }
    }
    Ok(Report {
        id_digits,
        protocol_version,
        version,
        records,
        index,
    })
}

fn record(bytes: &[u8], extension: Vec<u8>) -> Result<Record, Jt701Error> {
    let mut c = Cursor::new(bytes);
    let time = time(c.take(6)?)?;
    let lat_raw = number(&digits(c.take(4)?)?)?;
    let lon = c.take(5)?;
    let lon_digits = digits(lon.get(..4).unwrap_or_default())?;
    let last = lon.get(4).copied().unwrap_or_default();
    let ninth = char::from_digit(u32::from(last >> 4), 10).ok_or(Jt701Error::BadBcd)?;
    let lon_raw = number(&format!("{lon_digits}{ninth}"))?;
    if lat_raw % 1_000_000 >= 600_000 || lon_raw % 1_000_000 >= 600_000 {
        return Err(Jt701Error::BadCoordinate);
    }
    let speed_knots = number(&digits(c.take(1)?)?)? as u8;
    Ok(Record {
        time,
        lat_raw,
        lon_raw,
        flags: last & 0x0F,
        speed_knots,
        course_half_deg: c.u8()?,
        odometer_km: c.u32()?,
        satellites: c.u8()?,
        vehicle_id: c.u32()?,
        status: c.u16()?,
        battery: c.u8()?,
        cell_id: c.u16()?,
        lac: c.u16()?,
        signal: c.u8()?,
        extension,
    })
}

fn digits(bytes: &[u8]) -> Result<String, Jt701Error> {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0F] {
            out.push(char::from_digit(u32::from(nibble), 10).ok_or(Jt701Error::BadBcd)?);
        }
    }
    Ok(out)
}

fn number(digits: &str) -> Result<u32, Jt701Error> {
    digits.parse().map_err(|_| Jt701Error::BadBcd)
}

/// `DDMMYYhhmmss`, years 2000–2099.
fn time(bytes: &[u8]) -> Result<NaiveDateTime, Jt701Error> {
    let d = digits(bytes)?;
    let part = |i: usize| -> Result<u32, Jt701Error> {
        d.get(i..i + 2)
            .and_then(|s| s.parse().ok())
            .ok_or(Jt701Error::BadTime)
    };
    let [dd, mo, yy, hh, mi, ss] = [part(0)?, part(2)?, part(4)?, part(6)?, part(8)?, part(10)?];
    NaiveDate::from_ymd_opt(2000 + yy as i32, mo, dd)
        .and_then(|date| date.and_hms_opt(hh, mi, ss))
        .ok_or(Jt701Error::BadTime)
}

fn bcd(value: u64, digits: usize) -> Vec<u8> {
    let text = format!("{value:0digits$}");
    let text = text.get(text.len().saturating_sub(digits)..).unwrap_or("");
    text.as_bytes()
        .chunks(2)
        .map(|p| p.iter().fold(0u8, |acc, d| (acc << 4) | (d - b'0')))
        .collect()
}

/// The bytes of `report`, for tests and fixtures: the inverse of [`decode`].
pub fn encode(report: &Report) -> Vec<u8> {
    use chrono::{Datelike, Timelike};
    let mut body = Vec::new();
    for r in &report.records {
        let t = r.time;
        let date = [t.day(), t.month(), t.year().rem_euclid(100) as u32];
        let clock = [t.hour(), t.minute(), t.second()];
        for part in date.into_iter().chain(clock) {
            body.extend(bcd(u64::from(part), 2));
        }
        body.extend(bcd(u64::from(r.lat_raw), 8));
        let lon = bcd(u64::from(r.lon_raw) * 10, 10);
        body.extend_from_slice(lon.get(..4).unwrap_or_default());
        body.push(lon.get(4).copied().unwrap_or_default() | (r.flags & 0x0F));
        body.extend(bcd(u64::from(r.speed_knots), 2));
        body.push(r.course_half_deg);
        body.extend_from_slice(&r.odometer_km.to_be_bytes());
        body.push(r.satellites);
        body.extend_from_slice(&r.vehicle_id.to_be_bytes());
        body.extend_from_slice(&r.status.to_be_bytes());
        body.push(r.battery);
        body.extend_from_slice(&r.cell_id.to_be_bytes());
        body.extend_from_slice(&r.lac.to_be_bytes());
        body.push(r.signal);
        body.extend_from_slice(&r.extension);
    }
    body.push(report.index);
    let mut out = vec![BINARY];
    out.extend(bcd(report.id_digits.parse().unwrap_or(0), 10));
    out.extend_from_slice(&[report.protocol_version, report.version]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend(body);
    out
}
