//! Reading a surveyed or recorded route, to replace a corridor's straight-line geometry.

use std::path::Path;

use geo::LineString;
use serde_json::Value;

use super::error::{MapError, Origin};
use super::wire;

/// Reads the first LineString of a GeoJSON file (a bare geometry, a Feature, or a
/// FeatureCollection), or the track of a GPX file. Positions are validated as in the maps
/// (range, finiteness).
///
/// # Errors
/// When the file cannot be read, is not JSON, holds no LineString, or the LineString is
/// invalid.
pub fn import_route(path: &Path) -> Result<LineString<f64>, MapError> {
    let origin = Origin::file(&path.display().to_string());
    let fail = |message: &str| MapError::Import {
        origin: origin.clone(),
        message: message.to_owned(),
    };
    let text = std::fs::read_to_string(path).map_err(|source| MapError::Read {
        origin: origin.clone(),
        source,
    })?;
    let is_gpx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gpx"))
        || text.trim_start().starts_with('<');
    if is_gpx {
        let positions = super::gpx::positions(&text).map_err(|message| fail(&message))?;
        return wire::line(&positions).map_err(|message| fail(&message));
    }
    let json: Value = serde_json::from_str(&text).map_err(|source| MapError::Json {
        origin: origin.clone(),
        source,
    })?;
    let coordinates = first_line(&json).ok_or_else(|| fail("no LineString found"))?;
    let positions: Vec<Vec<f64>> = serde_json::from_value(coordinates.clone())
        .map_err(|_| fail("LineString coordinates are not arrays of numbers"))?;
    wire::line(&positions).map_err(|message| fail(&message))
}

/// The `coordinates` of the first LineString in a GeoJSON value.
fn first_line(value: &Value) -> Option<&Value> {
    match value.get("type")?.as_str()? {
        "LineString" => value.get("coordinates"),
        "Feature" => first_line(value.get("geometry")?),
        "FeatureCollection" => value
            .get("features")?
            .as_array()?
            .iter()
            .find_map(first_line),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_route_is_read_from_a_feature_collection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2]}},
            {"type":"Feature","properties":{},"geometry":{"type":"LineString",
             "coordinates":[[73.25,39.73,3150],[73.44418,40.3138],[72.80826,40.51506]]}}]}"#;
        let route = import_route(&write(&dir, "route.geojson", text)).expect("a route");
        assert_eq!(route.0.len(), 3);
        assert_eq!((route.0[0].x, route.0[0].y), (73.25, 39.73));
    }

    #[test]
    fn a_route_is_read_from_a_gpx_track() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"<gpx version="1.1"><trk><trkseg>
            <trkpt lat="39.73" lon="73.25"/><trkpt lat="40.3138" lon="73.44418"/>
            </trkseg></trk></gpx>"#;
        let route = import_route(&write(&dir, "survey.gpx", text)).expect("a route");
        assert_eq!(route.0.len(), 2);
        assert_eq!((route.0[1].x, route.0[1].y), (73.44418, 40.3138));
        let one = r#"<gpx><trk><trkseg><trkpt lat="39.73" lon="73.25"/></trkseg></trk></gpx>"#;
        assert!(import_route(&write(&dir, "short.gpx", one)).is_err());
    }

    #[test]
    fn a_route_with_latitude_first_out_of_range_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"{"type":"LineString","coordinates":[[39.73,73.25],[40.3,173.4]]}"#;
        let error = import_route(&write(&dir, "swapped.geojson", text)).expect_err("invalid");
        assert!(error.to_string().contains("out of range"), "{error}");
    }

    #[test]
    fn a_file_without_a_line_is_rejected_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "point.geojson",
            r#"{"type":"Point","coordinates":[1,2]}"#,
        );
        let error = import_route(&path).expect_err("no line");
        assert!(error.to_string().contains("point.geojson"), "{error}");
    }
}
