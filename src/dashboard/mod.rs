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
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use warp::http::{HeaderValue, Response, StatusCode};
use warp::path::Tail;
use warp::{Filter, Rejection, Reply};

use assets::{Asset, ASSETS};

/// Only our own origin may supply anything the page loads or talks to; the page may not be
/// framed. Inline scripts and style attributes are refused too.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// `GET /` (the page) and `GET /assets/{path}` (what it loads).
pub fn routes() -> BoxedFilter<(warp::reply::Response,)> {
    let if_none_match = warp::header::optional::<String>(IF_NONE_MATCH.as_str());
    let index = warp::path::end()
        .and(warp::get())
        .and(if_none_match)
        .and_then(index);
    let asset = warp::path("assets")
        .and(warp::path::tail())
        .and(warp::get())
        .and(if_none_match)
        .and_then(asset);
    index.or(asset).unify().map(Reply::into_response).boxed()
}

/// GET /
async fn index(if_none_match: Option<String>) -> Result<Response<Bytes>, Rejection> {
    serve("index.html", if_none_match.as_deref()).ok_or_else(warp::reject::not_found)
}

/// GET /assets/{path}
async fn asset(tail: Tail, if_none_match: Option<String>) -> Result<Response<Bytes>, Rejection> {
    if tail.as_str() == "index.html" {
        return Err(warp::reject::not_found());
    }
    serve(tail.as_str(), if_none_match.as_deref()).ok_or_else(warp::reject::not_found)
}

/// The asset at `path`, or 304 when the browser's copy (named by its ETag) is current.
///
/// Asset URLs carry no version, so browsers are told to revalidate every time (`no-cache`):
/// after an upgrade a page never runs a stale script, and an unchanged asset costs one 304.
fn serve(path: &str, if_none_match: Option<&str>) -> Option<Response<Bytes>> {
    let index = ASSETS.iter().position(|a| a.path == path)?;
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = if_none_match.is_some_and(|tags| {
        tags.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    });
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        (StatusCode::OK, Bytes::from_static(asset.body))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
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
