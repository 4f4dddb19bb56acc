//! Exports: any JSON answer of the API as CSV, and a track as GPX or GeoJSON, by content
//! negotiation (`Accept: text/csv`) or `?format=csv|gpx|geojson`.
//!
//! One conversion applied to every response, after the endpoint has answered, so that no
//! endpoint knows about formats: the endpoint's JSON is the one source, and the export is
//! only ever a rendering of what the same caller may already read.

use std::future::poll_fn;
use std::pin::Pin;

use serde_json::{Map, Value};
use warp::http::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::Reply;

use super::error;

/// What the caller asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Gpx,
    GeoJson,
}

/// A request's wish: the `format` parameter wins over `Accept`; `rows` picks the array a CSV
/// is made of when the answer has several.
#[derive(Debug, PartialEq, Eq)]
pub struct Wish {
    pub format: Result<Format, String>,
    pub rows: Option<String>,
}

impl Wish {
    pub fn read(accept: Option<&str>, query: &str) -> Self {
        let mut format = None;
        let mut rows = None;
        for (key, value) in
            serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
        {
            match key.as_str() {
                "format" => format = Some(value),
                "rows" => rows = Some(value),
                _ => {}
            }
        }
        let format = match format.as_deref() {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some("gpx") => Ok(Format::Gpx),
            Some("geojson") => Ok(Format::GeoJson),
            Some(other) => Err(format!(
                "query parameter format={other}: expected json, csv, gpx or geojson"
            )),
            None => Ok(match accept {
                Some(a) if a.contains("text/csv") => Format::Csv,
                Some(a) if a.contains("application/gpx+xml") => Format::Gpx,
                Some(a) if a.contains("application/geo+json") => Format::GeoJson,
                _ => Format::Json,
            }),
        };
        Self { format, rows }
    }
}

/// Answers larger than this are not converted (every list the API serves is bounded far
/// below it; the bound keeps a conversion from holding an unbounded body).
const MAX_CONVERTED: usize = 64 * 1024 * 1024;

/// Renders a successful JSON `response` in the wished format; anything else passes unchanged.
pub async fn convert(
    wish: Wish,
    path: &str,
    response: warp::reply::Response,
) -> warp::reply::Response {
    let format = match wish.format {
        Ok(Format::Json) => return response,
        Ok(format) => format,
        Err(message) => return error::reply(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !response.status().is_success() || !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Some(bytes) = collect(body).await else {
        return error::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the answer could not be read for export",
        );
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return warp::http::Response::from_parts(parts, bytes.into());
    };
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("export")
        .to_owned();
    let rendered = match format {
        Format::Csv => to_csv(&value, wish.rows.as_deref())
            .map(|text| (text, "text/csv; charset=utf-8", "csv")),
        Format::Gpx => to_gpx(&value, &name).map(|text| (text, "application/gpx+xml", "gpx")),
        Format::GeoJson => geojson(&value).map(|text| (text, "application/geo+json", "geojson")),
        Format::Json => Err("this answer is already JSON".into()),
    };
    match rendered {
        Ok((text, content_type, ext)) => attachment(text, content_type, &format!("{name}.{ext}")),
        Err(message) => error::reply(StatusCode::NOT_ACCEPTABLE, "not_acceptable", &message),
    }
}

fn attachment(text: String, content_type: &'static str, filename: &str) -> warp::reply::Response {
    let mut response = warp::reply::with_status(text, StatusCode::OK).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The name is a path segment the router accepted; anything odd falls back to "export".
    let disposition = format!("attachment; filename=\"{filename}\"");
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"export\""));
    headers.insert(CONTENT_DISPOSITION, disposition);
    response
}

async fn collect<B>(mut body: B) -> Option<bytes::Bytes>
where
    B: warp::hyper::body::Body<Data = bytes::Bytes> + Unpin,
{
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.ok()?.into_data() {
            out.extend_from_slice(&data);
            if out.len() > MAX_CONVERTED {
                return None;
            }
        }
    }
    Some(out.into())
}

/// The rows of a CSV: a top-level array; the features of a GeoJSON collection; or the one
/// array field of an object (`rows` names it when there are several).
fn rows<'a>(value: &'a Value, wanted: Option<&str>) -> Result<&'a Vec<Value>, String> {
    let object = match value {
        Value::Array(items) => return Ok(items),
        Value::Object(object) => object,
        _ => return Err("this answer is not a list".into()),
    };
    let arrays: Vec<(&String, &Vec<Value>)> = object
        .iter()
        .filter_map(|(k, v)| v.as_array().map(|a| (k, a)))
        .collect();
    if let Some(wanted) = wanted {
        return arrays
            .iter()
            .find(|(k, _)| k.as_str() == wanted)
            .map(|(_, a)| *a)
            .ok_or_else(|| format!("query parameter rows={wanted}: {}", choices(&arrays)));
    }
    match arrays.as_slice() {
        [(_, only)] => Ok(only),
        [] => Err("this answer has no list to export".into()),
        _ => Err(format!("pass rows=NAME: {}", choices(&arrays))),
    }
}

fn choices(arrays: &[(&String, &Vec<Value>)]) -> String {
    let names: Vec<&str> = arrays.iter().map(|(k, _)| k.as_str()).collect();
    format!("the lists here are {}", names.join(", "))
}

/// One CSV row per item; nested objects become dotted columns (`position.lat`), arrays stay
/// JSON in their cell. Columns in order of first appearance.
pub fn to_csv(value: &Value, wanted: Option<&str>) -> Result<String, String> {
    let items = rows(value, wanted)?;
    let flat: Vec<Vec<(String, String)>> = items.iter().map(flatten_row).collect();
    let mut columns: Vec<&str> = Vec::new();
    for row in &flat {
        for (key, _) in row {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    // Identifiers first (`id`, then `device_id`, `transit_id`, ...): the column a reader
    // looks for; the rest keep their order.
    columns.sort_by_key(|c| match *c {
        "id" => 0,
        c if c.ends_with("_id") && !c.contains('.') => 1,
        _ => 2,
    });
    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|c| cell(c)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in &flat {
        let line: Vec<String> = columns
            .iter()
            .map(|c| {
                row.iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(out)
}

fn flatten_row(item: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match item {
        // A GeoJSON feature: its properties, and a point's position as two columns.
        Value::Object(o) if o.get("type") == Some(&Value::from("Feature")) => {
            if let Some(Value::Object(p)) = o.get("properties") {
                flatten(p, "", &mut out);
            }
            let geometry = o.get("geometry");
            if let Some([lon, lat]) = point(geometry) {
                out.push(("lon".into(), lon.to_string()));
                out.push(("lat".into(), lat.to_string()));
            } else if let Some(kind) = geometry.and_then(|g| g.get("type")) {
                out.push(("geometry".into(), cell_of(kind)));
            }
        }
        Value::Object(o) => flatten(o, "", &mut out),
        other => out.push(("value".into(), cell_of(other))),
    }
    out
}

fn flatten(object: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    for (key, value) in object {
        let key = format!("{prefix}{key}");
        match value {
            Value::Object(inner) => flatten(inner, &format!("{key}."), out),
            other => out.push((key, cell_of(other))),
        }
    }
}

/// A JSON value as one CSV cell, quoted as RFC 4180 asks. A text that a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`:
/// device and user text end up in these files. Numbers are left as they are.
fn cell_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => {
            let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
            cell(&if risky { format!("'{s}") } else { s.clone() })
        }
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        other => cell(&other.to_string()),
    }
}

fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn point(geometry: Option<&Value>) -> Option<[f64; 2]> {
    let g = geometry?;
    if g.get("type")? != "Point" {
        return None;
    }
    let c = g.get("coordinates")?.as_array()?;
    Some([c.first()?.as_f64()?, c.get(1)?.as_f64()?])
}

fn feature_collection(value: &Value) -> Result<&Vec<Value>, String> {
    if value.get("type") != Some(&Value::from("FeatureCollection")) {
        return Err("only a track (GeoJSON) exports as GPX or GeoJSON".into());
    }
    value
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| "the collection has no features".into())
}

fn geojson(value: &Value) -> Result<String, String> {
    feature_collection(value)?;
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

/// A GPX 1.1 track: one segment of the collection's points, with their times and speeds.
pub fn to_gpx(value: &Value, name: &str) -> Result<String, String> {
    let features = feature_collection(value)?;
    let title = value
        .pointer("/properties/device_id")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gpx version=\"1.1\" creator=\"Caravan\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n",
    );
    out.push_str(&format!(
        "  <trk>\n    <name>{}</name>\n    <trkseg>\n",
        xml(title)
    ));
    for feature in features {
        let Some([lon, lat]) = point(feature.get("geometry")) else {
            continue;
        };
        out.push_str(&format!("      <trkpt lat=\"{lat}\" lon=\"{lon}\">"));
        if let Some(t) = feature.pointer("/properties/t").and_then(Value::as_str) {
            out.push_str(&format!("<time>{}</time>", xml(t)));
        }
        out.push_str("</trkpt>\n");
    }
    out.push_str("    </trkseg>\n  </trk>\n</gpx>\n");
    Ok(out)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
