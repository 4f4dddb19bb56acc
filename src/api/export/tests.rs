use serde_json::json;

use super::*;

#[test]
fn the_format_parameter_wins_over_accept_and_an_unknown_one_is_named() {
    let wish = Wish::read(Some("application/json"), "format=csv&limit=3");
    assert_eq!(wish.format, Ok(Format::Csv));
    assert_eq!(Wish::read(Some("text/csv"), "").format, Ok(Format::Csv));
    assert_eq!(Wish::read(Some("*/*"), "").format, Ok(Format::Json));
    let wrong = Wish::read(None, "format=xls").format;
    assert!(wrong.is_err_and(|e| e.contains("format=xls")));
}

#[test]
fn a_list_becomes_one_row_per_item_with_nested_fields_as_dotted_columns() {
    let body = json!({"devices": [
        {"device_id": "d-1", "state": {"lat": 42.5, "status": "moving"}},
        {"device_id": "d-2", "plate": "01KG, \"B\""},
    ]});
    let csv = to_csv(&body, None).expect("a list");
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "device_id,state.lat,state.status,plate");
    assert_eq!(lines[1], "d-1,42.5,moving,");
    let ids = to_csv(&json!([{"name": "x", "transit_id": "t", "id": 7}]), None).expect("a list");
    assert!(ids.starts_with("id,transit_id,name\r\n"), "{ids}");
    assert_eq!(lines[2], "d-2,,,\"01KG, \"\"B\"\"\"");
}

#[test]
fn text_that_a_spreadsheet_would_run_is_defused_but_numbers_are_not() {
    let body = json!([{"note": "=HYPERLINK(\"x\")", "lon": -5.5, "who": "@me"}]);
    let csv = to_csv(&body, None).expect("a list");
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
    assert!(csv.contains("\r\n-5.5,"), "{csv}");
    assert!(csv.contains("'@me"), "{csv}");
}

#[test]
fn an_answer_with_several_lists_asks_which_one() {
    let body = json!({"alerts": [{"id": 1}], "inspections": [{"id": 2}], "id": "t-1"});
    let err = to_csv(&body, None).expect_err("ambiguous");
    assert!(err.contains("alerts, inspections"), "{err}");
    let csv = to_csv(&body, Some("inspections")).expect("named");
    assert_eq!(csv, "id\r\n2\r\n");
    assert!(to_csv(&body, Some("nope")).is_err_and(|e| e.contains("rows=nope")));
    assert!(to_csv(&json!({"id": 1}), None).is_err());
}

fn track() -> Value {
    json!({"type": "FeatureCollection", "properties": {"device_id": "gps<1>"}, "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[74.5, 42.8], [74.6, 42.9]]},
         "properties": {"kind": "track"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [74.5, 42.8]},
         "properties": {"kind": "fix", "seq": 1, "t": "2026-01-01T00:00:00Z"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [74.6, 42.9]},
         "properties": {"kind": "fix", "seq": 2, "t": "2026-01-01T00:01:00Z"}},
    ]})
}

#[test]
fn a_track_becomes_a_gpx_segment_of_its_fixes_in_order() {
    let gpx = to_gpx(&track(), "track").expect("a track");
    assert!(gpx.contains("<name>gps&lt;1&gt;</name>"), "{gpx}");
    let first = gpx
        .find("<trkpt lat=\"42.8\" lon=\"74.5\"><time>2026-01-01T00:00:00Z</time>")
        .expect("first fix");
    let second = gpx
        .find("<trkpt lat=\"42.9\" lon=\"74.6\">")
        .expect("second fix");
    assert!(first < second);
    assert_eq!(gpx.matches("<trkpt").count(), 2);
    assert!(to_gpx(&json!({"devices": []}), "x").is_err());
}

#[test]
fn a_tracks_csv_has_the_fixes_positions() {
    let csv = to_csv(&track(), None).expect("features");
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "kind,geometry,seq,t,lon,lat");
    assert_eq!(lines[2], "fix,,1,2026-01-01T00:00:00Z,74.5,42.8");
}
