//! The files the dashboard serves, compiled into the binary.
//!
//! A plain table of `include_bytes!` rather than a directory-embedding crate: the set is
//! small and changes rarely, each content type is stated where the file is listed, and a
//! file missing from the table cannot be served by accident.

pub struct Asset {
    /// The path under `/assets/` (`index.html` is served at `/`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";
const GEOJSON: &str = "application/geo+json";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $path)),
        }
    };
}

/// The base map, under the names the API's `/api/v1/maps/{name}` uses.
macro_rules! map {
    ($name:literal, $file:literal) => {
        Asset {
            path: concat!("maps/", $name, ".geojson"),
            content_type: GEOJSON,
            body: include_bytes!(concat!("../../maps/", $file)),
        }
    };
}

pub static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/i18n.js", JS),
    asset!("js/format.js", JS),
    asset!("js/geo.js", JS),
    asset!("js/places.js", JS),
    asset!("js/labels.js", JS),
    asset!("js/reasons.js", JS),
    asset!("js/live.js", JS),
    asset!("js/views/map.js", JS),
    asset!("js/views/detail.js", JS),
    asset!("js/views/transits.js", JS),
    asset!("js/views/evidence.js", JS),
    asset!("js/views/alerts.js", JS),
    asset!("js/views/post.js", JS),
    asset!("js/views/performance.js", JS),
    asset!("i18n/en.js", JS),
    asset!("i18n/ru.js", JS),
    asset!("i18n/zh.js", JS),
    map!("countries", "countries.geojson"),
    map!("bcps", "border-crossings.geojson"),
    map!("corridors", "corridors.geojson"),
    map!("offices", "customs-offices.geojson"),
    map!("coverage-gaps", "coverage-gaps.geojson"),
];
