use std::collections::BTreeSet;

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use super::assets::ASSETS;
use super::serve;

fn header<'a>(response: &'a Response<Bytes>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn served(path: &str, if_none_match: Option<&str>) -> Response<Bytes> {
    serve(path, if_none_match, false).unwrap_or_else(|| panic!("{path} is not served"))
}

#[test]
fn the_page_is_html_that_loads_only_from_its_own_origin() {
    let response = served("index.html", None);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(String::from_utf8_lossy(response.body()).contains("/assets/js/main.js"));
}

#[test]
fn every_asset_is_served_with_its_content_type_and_an_etag() {
    for asset in ASSETS {
        let response = served(asset.path, None);
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
        assert_eq!(header(&response, "content-type"), asset.content_type);
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(header(&response, "etag").starts_with('"'), "{}", asset.path);
        assert_eq!(response.body().as_ref(), asset.body);
    }
}

#[test]
fn a_current_copy_is_revalidated_with_304_and_no_body() {
    let etag = header(&served("app.css", None), "etag").to_owned();
    let again = served("app.css", Some(&etag));
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.body().is_empty());
    let weak = served("app.css", Some(&format!("\"x\", W/{etag}")));
    assert_eq!(weak.status(), StatusCode::NOT_MODIFIED);
    let other = served("app.css", Some("\"something-else\""));
    assert_eq!(other.status(), StatusCode::OK);
}

#[test]
fn paths_outside_the_table_are_not_served() {
    for path in ["nope.js", "../Cargo.toml", "", "js/", "maps/countries"] {
        assert!(
            serve(path, None, true).is_none(),
            "{path} should not be served"
        );
    }
}

/// Every `/assets/...` path named in the pages and scripts is one the server has, so a typo
/// or a file left out of the table fails here rather than in an officer's browser.
#[test]
fn every_asset_the_pages_reference_is_embedded() {
    let served: BTreeSet<&str> = ASSETS.iter().map(|a| a.path).collect();
    for asset in ASSETS.iter().filter(|a| !a.path.starts_with("maps/")) {
        let text = String::from_utf8_lossy(asset.body);
        for reference in text.split("/assets/").skip(1) {
            let end = reference
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
                .unwrap_or(reference.len());
            let path = &reference[..end];
            if path.ends_with(".js") || path.ends_with(".css") || path.ends_with(".svg") {
                assert!(
                    served.contains(path),
                    "{} references /assets/{path}",
                    asset.path
                );
            }
        }
    }
}

/// Each language file has the keys of the English one, so no view falls back silently.
#[test]
fn every_language_file_has_every_english_key() {
    let keys = |path: &str| -> BTreeSet<String> {
        let asset = ASSETS
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.body)
            .unwrap_or_default();
        String::from_utf8_lossy(asset)
            .lines()
            .filter_map(|line| {
                let entry = line.strip_prefix("  ")?;
                let (key, _) = entry.split_once(':')?;
                let is_key =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                is_key.then(|| key.to_owned())
            })
            .collect()
    };
    let english = keys("i18n/en.js");
    assert!(
        english.len() > 100,
        "found only {} English keys",
        english.len()
    );
    for language in ["i18n/ru.js", "i18n/zh.js"] {
        let other = keys(language);
        let missing: Vec<_> = english.difference(&other).collect();
        assert!(missing.is_empty(), "{language} lacks {missing:?}");
    }
}

#[test]
fn a_large_asset_goes_gzipped_with_its_own_tag_and_a_small_one_as_it_is() {
    let plain = served("maps/countries.geojson", None);
    let packed = serve("maps/countries.geojson", None, true).expect("served");
    assert_eq!(header(&packed, "content-encoding"), "gzip");
    assert_eq!(header(&packed, "vary"), "accept-encoding");
    assert!(packed.body().len() * 3 < plain.body().len());
    let tag = header(&packed, "etag").to_owned();
    assert_ne!(tag, header(&plain, "etag"), "each encoding has its own tag");
    let again = serve("maps/countries.geojson", Some(&tag), true).expect("served");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let icon = serve("favicon.svg", None, true).expect("served");
    assert!(icon.headers().get("content-encoding").is_none());
}

#[test]
fn the_embedded_maps_are_feature_collections() {
    for asset in ASSETS.iter().filter(|a| a.path.starts_with("maps/")) {
        let value: serde_json::Value = serde_json::from_slice(asset.body).unwrap_or_default();
        assert_eq!(value["type"], "FeatureCollection", "{}", asset.path);
        assert!(value["features"].as_array().is_some_and(|f| !f.is_empty()));
    }
}
