//! The one error shape of the API: `{"error": {"code", "message"}}` with the right status.

use std::convert::Infallible;

use serde::Serialize;
use tracing::error;
use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Reject for ApiError {}

impl ApiError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Logs the cause and tells the client only that it was ours.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        error!(error = %cause, "A request failed inside the server.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to answer; the cause is in its log",
        )
    }

    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

pub fn reply(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let body = Body {
        error: Inner { code, message },
    };
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: a 401 names the scheme the client should use.
        response.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static("Bearer realm=\"caravan\""),
        );
    }
    response
}

/// Turns every rejection, ours or warp's, into the error shape.
pub async fn handle_rejection(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(e) = r.find::<ApiError>() {
        return Ok(reply(e.status, e.code, &e.message));
    }
    if r.is_not_found() {
        return Ok(reply(StatusCode::NOT_FOUND, "not_found", "no such route"));
    }
    if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &e.to_string(),
        ));
    }
    if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &e.to_string(),
        ));
    }
    if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &e.to_string(),
        ));
    }
    if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        let message = "the request body is too large";
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            message,
        ));
    }
    if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        let message = "send the body as application/json";
        return Ok(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ));
    }
    if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        let message = "this route does not take that method";
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        ));
    }
    if r.find::<warp::reject::LengthRequired>().is_some() {
        let message = "a Content-Length header is required";
        return Ok(reply(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            message,
        ));
    }
    error!(rejection = ?r, "An unexpected rejection.");
    Ok(reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "unexpected error",
    ))
}
