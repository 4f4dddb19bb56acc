//! The API's description: the OpenAPI document, served as it is in the source tree.

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

/// The OpenAPI 3.1 document. The integration tests hold it to the router: the same routes.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");

/// GET /api/v1/openapi.json
fn document() -> warp::reply::Response {
    warp::reply::with_header(DOCUMENT, "content-type", "application/json").into_response()
}

/// Needs no token: clients read it to learn how to get one.
pub fn routes() -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(document)
        .boxed()
}
