//! Registration, authentication and the platform's replies.

use super::frame::{encode, Header};
use super::msg;

/// Result codes of the platform general response (0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    /// The terminal keeps the data and sends it again later.
    Failure = 1,
    MessageError = 2,
    Unsupported = 3,
}

/// Result codes of the registration response (0x8100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Success = 0,
    /// The terminal is not in the platform's database (not in the registry).
    UnknownTerminal = 4,
}

/// The auth code of a 0x0102 body: the whole body in the 2013 edition, a length-prefixed
/// string (followed by IMEI and software version) in 2019. Trailing NULs are ignored.
pub fn auth_code(header: &Header, body: &[u8]) -> String {
    let code = match header.version {
        Some(_) => match body.split_first() {
            Some((&len, rest)) => rest.get(..usize::from(len)).unwrap_or(rest),
            None => body,
        },
        None => body,
    };
    let end = code.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(code.get(..end).unwrap_or_default()).into_owned()
}

/// A platform reply to the terminal of `to`, numbered `serial` on the platform side.
fn reply(to: &Header, msg_id: u16, serial: u16, body: &[u8]) -> Vec<u8> {
    let header = Header {
        msg_id,
        version: to.version,
        phone: to.phone.clone(),
        serial,
        encryption: 0,
        subpackage: None,
    };
    encode(&header, body)
}

/// 0x8001: answers message `to` with `outcome`.
pub fn general_response(to: &Header, serial: u16, outcome: Outcome) -> Vec<u8> {
    let mut body = to.serial.to_be_bytes().to_vec();
    body.extend_from_slice(&to.msg_id.to_be_bytes());
    body.push(outcome as u8);
    reply(to, msg::PLATFORM_RESPONSE, serial, &body)
}

/// 0x8100: answers a registration; the auth code is sent only on success.
pub fn register_response(
    to: &Header,
    serial: u16,
    result: Registration,
    auth_code: &str,
) -> Vec<u8> {
    let mut body = to.serial.to_be_bytes().to_vec();
    body.push(result as u8);
    if result == Registration::Success {
        body.extend_from_slice(auth_code.as_bytes());
    }
    reply(to, msg::REGISTER_RESPONSE, serial, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jt808::frame::decode;

    fn header(version: Option<u8>) -> Header {
        Header {
            msg_id: msg::AUTHENTICATE,
            version,
            phone: "013912345678".into(),
            serial: 9,
            encryption: 0,
            subpackage: None,
        }
    }

    #[test]
    fn a_2013_auth_body_is_the_code_itself() {
        assert_eq!(
            auth_code(&header(None), b"CV13912345678\0"),
            "CV13912345678"
        );
    }

    #[test]
    fn a_2019_auth_body_is_length_prefixed() {
        assert_eq!(
            auth_code(&header(Some(1)), b"\x03abc356307042441013"),
            "abc"
        );
    }

    #[test]
    fn a_general_response_echoes_the_serial_and_id_it_answers() {
        let frame = general_response(&header(None), 1, Outcome::Success);
        let msg = decode(&frame).unwrap();
        assert_eq!(msg.header.msg_id, msg::PLATFORM_RESPONSE);
        assert_eq!(msg.body, [0, 9, 0x01, 0x02, 0]);
    }
}
