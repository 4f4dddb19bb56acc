//! The web dashboard: static pages served by the API's own warp server.
//!
//! Customs networks are closed, so everything the pages need (scripts, styles, translations,
//! and the base map drawn from `maps/`) is compiled into the binary and served from here: no
//! CDN, no tile server, no build step. The pages talk to the API under `/api/v1` like any
//! other client, with the signed-in user's bearer token.

mod assets;

use std::sync::OnceLock;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use warp::filters::BoxedFilter;
use warp::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use warp::http::{HeaderValue, Response, StatusCode};
use warp::path::Tail;
use warp::{Filter, Rejection, Reply};

use crate::api::gzip;
use assets::{Asset, ASSETS};

/// Only our own origin may supply anything the page loads or talks to; the page may not be
/// framed. Inline scripts and style attributes are refused too.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// `GET /` (the page) and `GET /assets/{path}` (what it loads).
pub fn routes() -> BoxedFilter<(warp::reply::Response,)> {
    let if_none_match = warp::header::optional::<String>(IF_NONE_MATCH.as_str());
    let accept_encoding = warp::header::optional::<String>(ACCEPT_ENCODING.as_str());
    let index = warp::path::end()
        .and(warp::get())
        .and(if_none_match)
        .and(accept_encoding)
        .and_then(index);
    let asset = warp::path("assets")
        .and(warp::path::tail())
        .and(warp::get())
        .and(if_none_match)
        .and(accept_encoding)
        .and_then(asset);
    index.or(asset).unify().map(Reply::into_response).boxed()
}

/// GET /
async fn index(
    if_none_match: Option<String>,
    accept_encoding: Option<String>,
) -> Result<Response<Bytes>, Rejection> {
    let gzip = gzip::accepted(accept_encoding.as_deref());
    serve("index.html", if_none_match.as_deref(), gzip).ok_or_else(warp::reject::not_found)
}

/// GET /assets/{path}
async fn asset(
    tail: Tail,
    if_none_match: Option<String>,
    accept_encoding: Option<String>,
) -> Result<Response<Bytes>, Rejection> {
    if tail.as_str() == "index.html" {
        return Err(warp::reject::not_found());
    }
    let gzip = gzip::accepted(accept_encoding.as_deref());
    serve(tail.as_str(), if_none_match.as_deref(), gzip).ok_or_else(warp::reject::not_found)
}

/// The asset at `path`, gzipped when `gzip` is accepted and it pays, or 304 when the
/// browser's copy (named by its ETag) is current.
///
/// Asset URLs carry no version, so browsers are told to revalidate every time (`no-cache`):
/// after an upgrade a page never runs a stale script, and an unchanged asset costs one 304.
fn serve(path: &str, if_none_match: Option<&str>, gzip: bool) -> Option<Response<Bytes>> {
    let index = ASSETS.iter().position(|a| a.path == path)?;
    let asset = &ASSETS[index];
    let packed = if gzip { gzipped(index) } else { None };
    // Each encoding is its own representation, with its own tag.
    let etag = &etags()[index];
    let gz_etag = format!("{}-gz\"", etag.trim_end_matches('"'));
    let fresh = if_none_match.is_some_and(|tags| {
        tags.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == gz_etag || t == "*")
    });
    let (status, body) = match (fresh, packed) {
        (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new()),
        (false, Some(packed)) => (StatusCode::OK, packed.clone()),
        (false, None) => (StatusCode::OK, Bytes::from_static(asset.body)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if asset.body.len() >= gzip::MIN_SIZE {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    let etag = if packed.is_some() {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        &gz_etag
    } else {
        etag
    };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, value);
    }
    if asset.path == "index.html" {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    }
    Some(response)
}

/// The asset at `index` gzipped, compressed on first use and kept; `None` when it is too
/// small to gain from it.
fn gzipped(index: usize) -> Option<&'static Bytes> {
    static GZIPPED: OnceLock<Vec<OnceLock<Option<Bytes>>>> = OnceLock::new();
    let all = GZIPPED.get_or_init(|| ASSETS.iter().map(|_| OnceLock::new()).collect());
    all.get(index)?
        .get_or_init(|| {
            let body = ASSETS.get(index)?.body;
            (body.len() >= gzip::MIN_SIZE).then(|| Bytes::from(gzip::compress(body)))
        })
        .as_ref()
}

/// One strong ETag per asset, in the order of [`ASSETS`], computed on first use.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(etag_of).collect())
}

fn etag_of(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests;
