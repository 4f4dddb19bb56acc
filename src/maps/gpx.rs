//! The positions of a GPX 1.0/1.1 file: its track points (`<trkpt>`, every segment of every
//! track in order) or, when it has none, its route points (`<rtept>`).
//!
//! A survey export is flat and regular, so this reads only what a route needs: the `lat`
//! and `lon` attributes of those elements, skipping comments and CDATA. No XML crate: the
//! reader is small, bounded by the file, and property-tested against arbitrary input.

/// `[lon, lat]` pairs in document order (the GeoJSON order the maps use), or why not.
pub fn positions(text: &str) -> Result<Vec<Vec<f64>>, String> {
    if !text.contains("<gpx") {
        return Err("not a GPX file (no <gpx> element)".into());
    }
    let tracks = points(text, "trkpt")?;
    if !tracks.is_empty() {
        return Ok(tracks);
    }
    let route = points(text, "rtept")?;
    if route.is_empty() {
        return Err("the GPX file has no track points (trkpt) or route points (rtept)".into());
    }
    Ok(route)
}

fn points(text: &str, element: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            rest = after.find("]]>").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[1..end];
        rest = &rest[end.min(rest.len())..];
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        // A namespace prefix (`gpx:trkpt`) names the same element.
        let local = name.rsplit(':').next().unwrap_or(name);
        if local != element {
            continue;
        }
        let n = out.len() + 1;
        let lat = attribute(tag, "lat").ok_or(format!("{element} {n} has no lat"))?;
        let lon = attribute(tag, "lon").ok_or(format!("{element} {n} has no lon"))?;
        let number = |raw: &str, what: &str| {
            raw.trim()
                .parse::<f64>()
                .map_err(|_| format!("{element} {n}: {what}=\"{raw}\" is not a number"))
        };
        out.push(vec![number(lon, "lon")?, number(lat, "lat")?]);
    }
    Ok(out)
}

/// The value of `name="..."` (or `'...'`) in a start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let inner = &value[1..];
        return inner.find(quote).map(|end| &inner[..end]);
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn track_points_of_every_segment_are_read_in_order_as_lon_lat() {
        let text = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="survey" xmlns="http://www.topografix.com/GPX/1/1">
  <!-- <trkpt lat="0" lon="0"/> is a comment -->
  <trk><name>Irkeshtam road</name>
    <trkseg><trkpt lat="39.73" lon="73.25"><ele>3150</ele></trkpt>
      <trkpt lon='73.44418' lat='40.3138'/></trkseg>
    <trkseg><trkpt   lat = "40.51506" lon="72.80826"></trkpt></trkseg>
  </trk>
</gpx>"#;
        let got = positions(text).expect("three points");
        assert_eq!(
            got,
            vec![
                vec![73.25, 39.73],
                vec![73.44418, 40.3138],
                vec![72.80826, 40.51506]
            ]
        );
    }

    #[test]
    fn route_points_serve_when_there_is_no_track() {
        let text = r#"<gpx><rte><rtept lat="1.5" lon="2.5"/><rtept lat="3" lon="4"/></rte></gpx>"#;
        assert_eq!(
            positions(text).expect("route"),
            vec![vec![2.5, 1.5], vec![4.0, 3.0]]
        );
    }

    #[test]
    fn a_point_without_lat_or_with_text_for_a_number_is_named() {
        let error = positions(r#"<gpx><trkpt lon="1"/></gpx>"#).expect_err("no lat");
        assert!(error.contains("trkpt 1 has no lat"), "{error}");
        let error = positions(r#"<gpx><trkpt lat="x" lon="1"/></gpx>"#).expect_err("text");
        assert!(error.contains("lat=\"x\""), "{error}");
        assert!(positions("{}").is_err());
        assert!(positions("<gpx></gpx>").is_err());
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_a_panic(text in "\\PC{0,300}") {
            let _ = positions(&text);
            let _ = positions(&format!("<gpx><trkpt {text}"));
        }

        #[test]
        fn written_points_are_read_back(points in prop::collection::vec((-90.0f64..90.0, -180.0f64..180.0), 1..20)) {
            let mut text = String::from("<gpx><trk><trkseg>");
            for (lat, lon) in &points {
                text.push_str(&format!("<trkpt lat=\"{lat}\" lon=\"{lon}\"></trkpt>"));
            }
            text.push_str("</trkseg></trk></gpx>");
            let read = positions(&text).expect("valid");
            let expected: Vec<Vec<f64>> = points.iter().map(|(lat, lon)| vec![*lon, *lat]).collect();
            prop_assert_eq!(read, expected);
        }
    }
}
