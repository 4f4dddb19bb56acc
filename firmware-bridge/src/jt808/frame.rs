//! Delimiting, escaping, checksum and header of JT/T 808 messages.

use super::Jt808Error;
use crate::cursor::Cursor;
use crate::framing::Framing;

pub const DELIMITER: u8 = 0x7E;
const ESCAPE: u8 = 0x7D;
const PROPS_LEN_MASK: u16 = 0x03FF;
const PROPS_ENCRYPTION_MASK: u16 = 0x1C00;
const PROPS_SUBPACKAGE: u16 = 1 << 13;
/// Set by 2019-edition terminals: a protocol version byte follows and the phone is 10 bytes.
const PROPS_VERSION_2019: u16 = 1 << 14;

/// The message header. `version` is `Some` for the 2019 edition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub msg_id: u16,
    pub version: Option<u8>,
    /// The terminal phone number as its BCD digits (12 in 2013, 20 in 2019).
    pub phone: String,
    pub serial: u16,
    /// Bits 10–12 of the properties: non-zero means the body is RSA-encrypted.
    pub encryption: u8,
    /// `(total, index)` of a multi-packet message.
    pub subpackage: Option<(u16, u16)>,
}

impl Header {
    /// The device id: the phone number without its left padding of zeros, so the same SIM
    /// number gives the same id in both editions.
    pub fn terminal_id(&self) -> &str {
        let trimmed = self.phone.trim_start_matches('0');
        if trimmed.is_empty() {
            "0"
        } else {
            trimmed
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Vec<u8>,
}

/// Finds one `7E … 7E` frame of at most `max_frame` bytes (escaped, with delimiters).
/// Bytes before a delimiter are garbage; two adjacent delimiters are an end and a start.
pub fn frame(buf: &[u8], max_frame: usize) -> Framing {
    let Some(&first) = buf.first() else {
        return Framing::Incomplete;
    };
    if first != DELIMITER {
        let skip = buf
            .iter()
            .position(|&b| b == DELIMITER)
            .unwrap_or(buf.len());
        return Framing::Invalid {
            skip,
            reason: "garbage",
        };
    }
    let rest = buf.get(1..).unwrap_or_default();
    match rest.iter().position(|&b| b == DELIMITER) {
        Some(0) => Framing::Invalid {
            skip: 1,
            reason: "empty",
        },
        Some(i) if i + 2 > max_frame => Framing::Invalid {
            skip: i + 1,
            reason: "frame_too_large",
        },
        Some(i) => Framing::Frame { len: i + 2 },
        None if buf.len() > max_frame => Framing::Invalid {
            skip: buf.len(),
            reason: "frame_too_large",
        },
        None => Framing::Incomplete,
    }
}

pub fn escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16 + 2);
    for &b in raw {
        match b {
            DELIMITER => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            _ => out.push(b),
        }
    }
    out
}

/// # Errors
/// [`Jt808Error::BadEscape`] for 0x7D followed by anything but 0x01/0x02, or at the end.
pub fn unescape(escaped: &[u8]) -> Result<Vec<u8>, Jt808Error> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        if b != ESCAPE {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(0x02) => out.push(DELIMITER),
            Some(0x01) => out.push(ESCAPE),
            Some(&other) => return Err(Jt808Error::BadEscape(other)),
            None => return Err(Jt808Error::Truncated),
        }
    }
    Ok(out)
}

pub fn checksum(raw: &[u8]) -> u8 {
    raw.iter().fold(0, |acc, b| acc ^ b)
}

/// Decodes one frame as delimited by [`frame`].
///
/// # Errors
/// [`Jt808Error`] for bad escaping, checksum, header, or a body length that disagrees.
pub fn decode(frame: &[u8]) -> Result<Message, Jt808Error> {
    let inner = frame
        .strip_prefix(&[DELIMITER])
        .and_then(|f| f.strip_suffix(&[DELIMITER]))
        .ok_or(Jt808Error::NotDelimited)?;
    let raw = unescape(inner)?;
    let (&stated, content) = raw.split_last().ok_or(Jt808Error::Truncated)?;
    let computed = checksum(content);
    if stated != computed {
        return Err(Jt808Error::BadChecksum { stated, computed });
    }
    let mut c = Cursor::new(content);
    let msg_id = c.u16()?;
    let props = c.u16()?;
    let version = if props & PROPS_VERSION_2019 != 0 {
        Some(c.u8()?)
    } else {
        None
    };
    let phone = bcd_digits(c.take(if version.is_some() { 10 } else { 6 })?)?;
    let serial = c.u16()?;
    let subpackage = if props & PROPS_SUBPACKAGE != 0 {
        Some((c.u16()?, c.u16()?))
    } else {
        None
    };
    let stated = usize::from(props & PROPS_LEN_MASK);
    if stated != c.remaining() {
        return Err(Jt808Error::BodyLength {
            stated,
            actual: c.remaining(),
        });
    }
    let header = Header {
        msg_id,
        version,
        phone,
        serial,
        encryption: ((props & PROPS_ENCRYPTION_MASK) >> 10) as u8,
        subpackage,
    };
    Ok(Message {
        header,
        body: c.rest().to_vec(),
    })
}

/// Encodes a message: header (its body length taken from `body`, at most 1023 bytes as
/// the 10-bit field allows), checksum, escaping and delimiters.
pub fn encode(header: &Header, body: &[u8]) -> Vec<u8> {
    let body = body.get(..usize::from(PROPS_LEN_MASK)).unwrap_or(body);
    let mut props = body.len() as u16 | (u16::from(header.encryption & 0x07) << 10);
    if header.version.is_some() {
        props |= PROPS_VERSION_2019;
    }
    if header.subpackage.is_some() {
        props |= PROPS_SUBPACKAGE;
    }
    let mut raw = Vec::with_capacity(body.len() + 24);
    raw.extend_from_slice(&header.msg_id.to_be_bytes());
    raw.extend_from_slice(&props.to_be_bytes());
    if let Some(v) = header.version {
        raw.push(v);
    }
    raw.extend_from_slice(&bcd_bytes(
        &header.phone,
        if header.version.is_some() { 10 } else { 6 },
    ));
    raw.extend_from_slice(&header.serial.to_be_bytes());
    if let Some((total, index)) = header.subpackage {
        raw.extend_from_slice(&total.to_be_bytes());
        raw.extend_from_slice(&index.to_be_bytes());
    }
    raw.extend_from_slice(body);
    raw.push(checksum(&raw));
    let mut out = vec![DELIMITER];
    out.extend(escape(&raw));
    out.push(DELIMITER);
    out
}

/// # Errors
/// [`Jt808Error::BadBcd`] when a nibble is above 9.
pub fn bcd_digits(bytes: &[u8]) -> Result<String, Jt808Error> {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0F] {
            let digit = char::from_digit(u32::from(nibble), 10).ok_or(Jt808Error::BadBcd)?;
            out.push(digit);
        }
    }
    Ok(out)
}

/// Packs decimal digits into `len` BCD bytes, left-padded with zeros; non-digits count as 0
/// and excess leading digits are dropped.
pub fn bcd_bytes(digits: &str, len: usize) -> Vec<u8> {
    let nibbles: Vec<u8> = digits
        .bytes()
        .map(|d| d.wrapping_sub(b'0').min(9))
        .collect();
    let wanted = len * 2;
    let mut padded = vec![0u8; wanted.saturating_sub(nibbles.len())];
    padded.extend_from_slice(
        nibbles
            .get(nibbles.len().saturating_sub(wanted)..)
            .unwrap_or_default(),
    );
    padded
        .chunks(2)
        .map(|p| p.iter().fold(0, |acc, n| (acc << 4) | n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_replaces_both_reserved_bytes() {
        assert_eq!(
            escape(&[0x30, 0x7E, 0x08, 0x7D, 0x55]),
            [0x30, 0x7D, 0x02, 0x08, 0x7D, 0x01, 0x55]
        );
        assert_eq!(
            unescape(&[0x30, 0x7D, 0x02, 0x08, 0x7D, 0x01, 0x55]).unwrap(),
            [0x30, 0x7E, 0x08, 0x7D, 0x55]
        );
    }

    #[test]
    fn an_escape_byte_followed_by_anything_else_is_refused() {
        assert_eq!(unescape(&[0x7D, 0x03]), Err(Jt808Error::BadEscape(0x03)));
    }

    #[test]
    fn bytes_before_a_delimiter_are_garbage_to_skip() {
        assert_eq!(
            frame(b"ab\x7e\x01\x7e", 64),
            Framing::Invalid {
                skip: 2,
                reason: "garbage"
            }
        );
        assert_eq!(frame(b"\x7e\x01\x7e", 64), Framing::Frame { len: 3 });
        assert_eq!(frame(b"\x7e\x01", 64), Framing::Incomplete);
    }

    #[test]
    fn a_phone_number_loses_its_zero_padding_as_a_device_id() {
        let header = Header {
            msg_id: 2,
            version: None,
            phone: "013912345678".into(),
            serial: 1,
            encryption: 0,
            subpackage: None,
        };
        assert_eq!(header.terminal_id(), "13912345678");
        assert_eq!(
            bcd_bytes("13912345678", 6),
            [0x01, 0x39, 0x12, 0x34, 0x56, 0x78]
        );
    }

    #[test]
    fn a_2019_header_round_trips() {
        let header = Header {
            msg_id: 0x0200,
            version: Some(1),
            phone: "00000000013912345678".into(),
            serial: 7,
            encryption: 0,
            subpackage: None,
        };
        let frame = encode(&header, &[0x7E, 0x7D, 1]);
        assert_eq!(
            decode(&frame).unwrap(),
            Message {
                header,
                body: vec![0x7E, 0x7D, 1]
            }
        );
    }
}
