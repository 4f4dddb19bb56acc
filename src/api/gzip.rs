//! gzip for the large answers that rarely change: the dashboard's scripts and the map layers.
//!
//! A mountain post may work over a 512 kbit/s link with 300 ms of latency; the countries layer
//! alone is about 800 KB as text and under a quarter of that compressed. Bodies are compressed
//! once and kept (they are built into the binary), and sent compressed only to a client whose
//! `Accept-Encoding` asks for gzip.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Bodies smaller than this are sent as they are: the gzip frame and the work of decoding
/// would cost about what they save.
pub const MIN_SIZE: usize = 1024;

/// Whether an `Accept-Encoding` header accepts gzip: `gzip` (or `x-gzip`) listed with a
/// weight above zero, or else `*` with a weight above zero. A malformed entry is ignored.
pub fn accepted(header: Option<&str>) -> bool {
    let Some(header) = header else {
        return false;
    };
    let mut gzip = None;
    let mut any = None;
    for entry in header.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let Some(weight) = weight(parts) else {
            continue;
        };
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight),
            "*" => any = Some(weight),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|w| w > 0.0)
}

/// The `q` weight of an entry's parameters: 1 when absent, `None` when it is not a number
/// from 0 to 1.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    let mut q = 1.0;
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = value.trim().parse::<f32>().ok()?;
        }
    }
    (0.0..=1.0).contains(&q).then_some(q)
}

/// `body` compressed with gzip at the default level.
pub fn compress(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    // Writing into a Vec cannot fail.
    let written = encoder.write_all(body).and_then(|()| encoder.finish());
    written.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn gzip_is_accepted_when_listed_or_covered_by_a_wildcard_with_weight() {
        assert!(accepted(Some("gzip, deflate, br")));
        assert!(accepted(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepted(Some("*")));
        assert!(accepted(Some("x-gzip")));
        assert!(!accepted(None));
        assert!(!accepted(Some("")));
        assert!(!accepted(Some("br, deflate")));
        assert!(!accepted(Some("gzip;q=0")));
        assert!(!accepted(Some("gzip;q=0, *;q=1")));
        assert!(!accepted(Some("identity")));
        assert!(!accepted(Some("gzip;q=high")));
    }

    #[test]
    fn a_compressed_body_decodes_to_the_original_and_is_smaller() {
        let body = "{\"type\":\"FeatureCollection\",\"features\":[]}".repeat(100);
        let packed = compress(body.as_bytes());
        assert!(packed.len() < body.len() / 10, "{} bytes", packed.len());
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut unpacked)
            .expect("valid gzip");
        assert_eq!(unpacked, body);
    }

    proptest! {
        #[test]
        fn gzip_refused_last_is_never_sent_whatever_comes_before(header in ".{0,200}") {
            let refusing = format!("{header}, gzip;q=0");
            prop_assert!(!accepted(Some(&refusing)), "{}", refusing);
        }

        #[test]
        fn a_listed_gzip_with_a_positive_weight_is_always_accepted(
            before in "[a-z]{1,8}(;q=0\\.[0-9])?",
            q in 1u32..=1000,
        ) {
            let header = format!("{before}, gzip;q={}", f64::from(q) / 1000.0);
            prop_assert!(accepted(Some(&header)), "{}", header);
        }
    }
}
