//! `GET /api/history?from=&to=&bucket=hour|day|week&store=&drink=&group=store|drink`: orders
//! and revenue per bucket in the café's time zone, from ClickHouse when a warehouse is
//! configured, else from PostgreSQL (the answer's `source` says which).
//!
//! - `from`, `to`: RFC 3339 with an offset (`2025-03-01T00:00:00+01:00`), or a date
//!   (`2025-03-01`: the start of that day in the café's zone). `to` is exclusive and defaults to
//!   now; `from` defaults to the start of the 30th local day back, the day of `to`'s last second
//!   included (the last 30 days, today's included).
//! - `bucket`: `day` unless given. `store`, `drink`: only that one's orders (a name from the
//!   catalog). `group`: one bucket per store or per drink. An empty value is the same as none.
//!
//! A parameter that is unknown, repeated or wrong is a 422 naming it, as the order routes do.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use coffee_warehouse::history::{Bucket, Group, HistoryAnswer, HistoryError, HistoryQuery, zone};

use crate::{AppState, error::ApiError};

const PARAMETERS: [&str; 6] = ["from", "to", "bucket", "store", "drink", "group"];

#[utoipa::path(
    get, path = "/api/history", tag = "history",
    description = "Orders and revenue per bucket in the café's time zone, from ClickHouse when a warehouse is configured, \
        else from PostgreSQL (`source` says which). Empty buckets are omitted. A parameter that is unknown, repeated or \
        wrong is a 422 naming it; an empty value is the same as none.",
    params(
        ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339 with an offset, or a date (the start of \
            that day in the café's zone). Default: the start of the 30th local day back, today included."),
        ("to" = Option<String>, Query, description = "End (exclusive), as `from`. Default: now."),
        ("bucket" = Option<Bucket>, Query, description = "The bucket's length; `day` unless given."),
        ("store" = Option<String>, Query, description = "Only this store's orders."),
        ("drink" = Option<String>, Query, description = "Only this drink's orders."),
        ("group" = Option<Group>, Query, description = "One bucket per store or per drink."),
    ),
    responses(
        (status = 200, description = "The buckets and their totals", body = HistoryAnswer),
        (status = 400, description = "The query string cannot be decoded", body = crate::error::ErrorBody),
        (status = 422, description = "A parameter is unknown, repeated or invalid (`field` names it)", body = crate::error::ErrorBody),
        (status = 503, description = "The history's store (ClickHouse or PostgreSQL) is unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn get_history(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<HistoryAnswer>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let query = parse(&params, &state, Utc::now())?;
    match state.history.buckets(&query).await {
        Ok(answer) => Ok(Json(answer)),
        Err(HistoryError::Invalid(e)) => Err(unprocessable(e.field, e.message)),
        Err(e) => {
            tracing::warn!(error = %e, source = %state.history.source(), "history query failed");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("history unavailable: {e}")))
        }
    }
}

fn unprocessable(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
}

fn parse(params: &[(String, String)], state: &AppState, now: DateTime<Utc>) -> Result<HistoryQuery, ApiError> {
    let tz = state.history.timezone();
    let mut values: [Option<&str>; 6] = [None; 6];
    for (name, value) in params {
        let Some(i) = PARAMETERS.iter().position(|p| p == name) else {
            return Err(unprocessable(name, format!("unknown parameter; expected one of {}", PARAMETERS.join(", "))));
        };
        if values[i].is_some() {
            return Err(unprocessable(name, "given more than once"));
        }
        values[i] = Some(value.as_str());
    }
    let [from, to, bucket, store, drink, group] = values.map(|v| v.map(str::trim).filter(|v| !v.is_empty()));
    let to = match to {
        Some(text) => time(text, "to", tz)?,
        None => now,
    };
    let from = match from {
        Some(text) => time(text, "from", tz)?,
        None => {
            let last_day = (to - Duration::seconds(1)).with_timezone(&tz).date_naive();
            zone::day_start(last_day - Duration::days(29), tz).to_utc()
        }
    };
    let bucket = match bucket {
        Some(text) => text.parse::<Bucket>().map_err(|e| unprocessable(e.field, e.message))?,
        None => Bucket::Day,
    };
    let group = group.map(|text| text.parse::<Group>().map_err(|e| unprocessable(e.field, e.message))).transpose()?;
    let catalog = &state.catalog;
    if let Some(store) = store
        && !catalog.has_store(store)
    {
        return Err(unprocessable("store", format!("unknown store; expected one of {}", catalog.stores.join(", "))));
    }
    if let Some(drink) = drink
        && !catalog.has_drink(drink)
    {
        return Err(unprocessable("drink", format!("unknown drink; expected one of {}", catalog.drinks.join(", "))));
    }
    let query = HistoryQuery { from, to, bucket, store: store.map(str::to_owned), drink: drink.map(str::to_owned), group };
    query.validated().map_err(|e| unprocessable(e.field, e.message))
}

/// RFC 3339 with an offset, or a bare date: the first instant of that day in `tz`.
fn time(text: &str, field: &str, tz: Tz) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(zone::day_start(date, tz).to_utc());
    }
    Err(unprocessable(
        field,
        format!("must be RFC 3339 with an offset (2025-03-01T00:00:00+01:00) or a date (2025-03-01: the start of that day in {tz})"),
    ))
}
