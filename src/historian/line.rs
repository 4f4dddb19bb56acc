//! InfluxDB line protocol, written by hand rather than through `influxdb2::models::DataPoint`:
//! the spill segments and the request bodies are the same text, a line is rendered once on the
//! caller's side with one allocation, and the escaping rules below are ours to test.
//!
//! Rules (InfluxDB 2 line protocol reference):
//! - measurement: escape `,` and space;
//! - tag keys, tag values, field keys: escape `,`, `=` and space;
//! - string field values: inside double quotes, escape `"` and `\`;
//! - a backslash anywhere else is written as `\\` so that a value ending in `\` cannot escape
//!   the delimiter that follows it;
//! - line protocol has no newline escape, so `\n` and `\r` become spaces;
//! - a tag with an empty value is invalid, so it is left out;
//! - NaN and infinities have no representation, so such a field is left out;
//! - a line needs at least one field, so a line without one is not produced.

use std::fmt::Write as _;

/// Builder of one line. Tags must be added before fields, in ascending key order: InfluxDB
/// asks for sorted tags because it would otherwise sort them on every write.
pub(crate) struct Line {
    buf: String,
    fields: usize,
}

impl Line {
    pub(crate) fn new(measurement: &str) -> Self {
        let mut buf = String::with_capacity(192);
        escape_into(&mut buf, measurement, &[',', ' ']);
        Self { buf, fields: 0 }
    }

    pub(crate) fn tag(mut self, key: &str, value: Option<&str>) -> Self {
        debug_assert_eq!(self.fields, 0, "tags must come before fields");
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.buf.push(',');
            escape_into(&mut self.buf, key, KEY_SPECIALS);
            self.buf.push('=');
            escape_into(&mut self.buf, value, KEY_SPECIALS);
        }
        self
    }

    pub(crate) fn float(self, key: &str, value: Option<f64>) -> Self {
        match value.filter(|v| v.is_finite()) {
            // `Display` for f64 is the shortest text that parses back to the same value.
            Some(v) => self.raw_field(key, |buf| write!(buf, "{v}")),
            None => self,
        }
    }

    pub(crate) fn int(self, key: &str, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.raw_field(key, |buf| write!(buf, "{v}i")),
            None => self,
        }
    }

    pub(crate) fn boolean(self, key: &str, value: Option<bool>) -> Self {
        match value {
            Some(v) => self.raw_field(key, |buf| write!(buf, "{v}")),
            None => self,
        }
    }

    pub(crate) fn string(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.raw_field(key, |buf| {
                buf.push('"');
                escape_into(buf, v, &['"']);
                buf.push('"');
                Ok(())
            }),
            None => self,
        }
    }

    /// The finished line with its timestamp in milliseconds and a trailing newline, or `None`
    /// when no field was set.
    pub(crate) fn finish(mut self, timestamp_ms: i64) -> Option<String> {
        if self.fields == 0 {
            return None;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(self.buf, " {timestamp_ms}");
        Some(self.buf)
    }

    fn raw_field(mut self, key: &str, value: impl FnOnce(&mut String) -> std::fmt::Result) -> Self {
        self.buf.push(if self.fields == 0 { ' ' } else { ',' });
        escape_into(&mut self.buf, key, KEY_SPECIALS);
        self.buf.push('=');
        // Writing to a String cannot fail.
        let _ = value(&mut self.buf);
        self.fields += 1;
        self
    }
}

const KEY_SPECIALS: &[char] = &[',', '=', ' '];

/// Appends `raw` with every char of `specials` and every backslash escaped, and newlines
/// replaced by spaces.
fn escape_into(buf: &mut String, raw: &str, specials: &[char]) {
    for c in raw.chars() {
        let c = if c == '\n' || c == '\r' { ' ' } else { c };
        match c {
            '\\' => buf.push_str("\\\\"),
            c if specials.contains(&c) => {
                buf.push('\\');
                buf.push(c);
            }
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_measurement_tags_fields_and_a_millisecond_timestamp() {
        let line = Line::new("position")
            .tag("country", Some("KG"))
            .tag("device", Some("356307042441013"))
            .float("lat", Some(39.681))
            .float("speed_kmh", Some(54.0))
            .int("seq", Some(1842))
            .boolean("late", Some(false))
            .finish(1_795_767_330_000);
        assert_eq!(
            line.as_deref(),
            Some(
                "position,country=KG,device=356307042441013 \
                 lat=39.681,speed_kmh=54,seq=1842i,late=false 1795767330000\n"
            )
        );
    }

    #[test]
    fn spaces_commas_and_equals_signs_in_tag_values_are_escaped() {
        let line = Line::new("alert")
            .tag("transit", Some("KG 2026,001=A"))
            .int("count", Some(1))
            .finish(0);
        assert_eq!(
            line.as_deref(),
            Some("alert,transit=KG\\ 2026\\,001\\=A count=1i 0\n")
        );
    }

    #[test]
    fn quotes_and_backslashes_in_string_fields_are_escaped_and_other_specials_are_kept() {
        let line = Line::new("alert")
            .string("detail", Some(r#"seal "A\B", a=b c"#))
            .finish(0);
        assert_eq!(
            line.as_deref(),
            Some("alert detail=\"seal \\\"A\\\\B\\\", a=b c\" 0\n")
        );
    }

    #[test]
    fn a_trailing_backslash_in_a_tag_value_cannot_escape_the_next_delimiter() {
        let line = Line::new("m")
            .tag("t", Some("a\\"))
            .int("f", Some(1))
            .finish(0);
        assert_eq!(line.as_deref(), Some("m,t=a\\\\ f=1i 0\n"));
    }

    #[test]
    fn newlines_in_values_become_spaces_so_a_line_stays_one_line() {
        let line = Line::new("m")
            .tag("t", Some("a\nb"))
            .string("s", Some("x\r\ny"))
            .finish(0);
        assert_eq!(line.as_deref(), Some("m,t=a\\ b s=\"x  y\" 0\n"));
    }

    #[test]
    fn commas_and_spaces_in_a_measurement_are_escaped_but_equals_signs_are_not() {
        let line = Line::new("a b,c=d").int("f", Some(1)).finish(0);
        assert_eq!(line.as_deref(), Some("a\\ b\\,c=d f=1i 0\n"));
    }

    #[test]
    fn empty_tags_and_non_finite_floats_are_left_out() {
        let line = Line::new("m")
            .tag("country", Some(""))
            .tag("transit", None)
            .float("a", Some(f64::NAN))
            .float("b", Some(f64::INFINITY))
            .float("c", Some(-0.5))
            .finish(7);
        assert_eq!(line.as_deref(), Some("m c=-0.5 7\n"));
    }

    #[test]
    fn a_line_without_fields_is_not_produced() {
        assert_eq!(
            Line::new("m")
                .tag("t", Some("x"))
                .float("f", None)
                .finish(0),
            None
        );
    }

    #[test]
    fn very_large_and_very_small_floats_are_written_without_exponent() {
        let line = Line::new("m")
            .float("a", Some(1e21))
            .float("b", Some(1e-7))
            .finish(0);
        assert_eq!(
            line.as_deref(),
            Some("m a=1000000000000000000000,b=0.0000001 0\n")
        );
    }
}
