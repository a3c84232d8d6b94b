//! JSON bodies and query strings whose rejections use the API's error shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body, always an object; malformed → 400, wrong shape → 422, too large → 413.
///
/// A number with a zero fraction (`5.0`) is taken as the integer it is (JSON Schema's
/// `integer` admits it), and only an object is a body: serde would otherwise read a struct
/// from an array of its fields' values.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        if !value.is_object() {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => {
                let mut integral = value;
                if !integral_floats(&mut integral) {
                    return Err(json_rejection(e));
                }
                let bytes = serde_json::to_vec(&integral)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                axum::Json::<T>::from_bytes(&bytes)
                    .map(|axum::Json(v)| ApiJson(v))
                    .map_err(|_| json_rejection(e))
            }
        }
    }
}

/// Turns every float with a zero fraction within i64 into that integer; whether any was.
fn integral_floats(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // 2^63 as f64 is out of range: the bound is exclusive.
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| integral_floats(v) | any),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |any, v| integral_floats(v) | any),
        _ => false,
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::JsonDataError(e) => ApiError::unprocessable("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected Content-Type: application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// A query string; a wrong one → 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::BadRequest(e.body_text())
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (at most 200 characters; one this API did not
    /// issue may answer 400 `bad_request`).
    #[param(max_length = 200)]
    pub cursor: Option<String>,
}

/// `?limit=` of a list that is one page.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Items, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
}

impl LimitQuery {
    /// The limit, checked.
    pub fn limit(&self) -> Result<i64, ApiError> {
        checked_limit(self.limit)
    }
}

fn checked_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=200).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        )),
    }
}

impl PageQuery {
    /// The limit, checked.
    pub fn limit(&self) -> Result<i64, ApiError> {
        checked_limit(self.limit)
    }

    /// The cursor, checked for length.
    pub fn cursor(&self) -> Result<Option<&str>, ApiError> {
        match self.cursor.as_deref() {
            Some(c) if c.chars().count() > 200 => {
                Err(ApiError::BadRequest("cursor is not valid".into()))
            }
            Some("") | None => Ok(None),
            Some(c) => Ok(Some(c)),
        }
    }
}

/// A cursor that is a number (a position): up to 18 digits, maybe negative, as the
/// document's patterns say; else 400 `bad_request`.
pub fn number_cursor(c: &str) -> Result<i64, ApiError> {
    let digits = c.strip_prefix('-').unwrap_or(c);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest("cursor is not valid".into()));
    }
    c.parse::<i64>()
        .map_err(|_| ApiError::BadRequest("cursor is not valid".into()))
}

/// A page of items: fetch `limit + 1` and pass them here with the cursor of an item.
pub fn page<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> crate::store::Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    crate::store::Page {
        data: items,
        next_cursor,
    }
}
