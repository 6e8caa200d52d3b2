//! `GET /openapi.json`: the API's OpenAPI 3.1 description, generated from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` types they return, so the contract cannot
//! drift from the code. The test suite fuzzes a live server against it with schemathesis
//! (`crates/cli/tests/it/openapi.rs`).
//!
//! What no handler says itself is added here once for every route ([`Edge`]): the bearer token
//! each route class needs (from the same [`edge::auth::access`] the middleware uses) and its
//! 401, the body limits' 408 and 413, and the 503 + `Retry-After` that the request timeout and
//! the connection cap may answer anywhere. Each request's answer then names this server's
//! catalog as the `enum` of `drink` and `store`, so a client (or a fuzzer) knows what is sold.

use axum::{Json, extract::State};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, Content, Header, HeaderBuilder, HttpMethod, Ref, RefOr, Response, ResponseBuilder, Schema,
        schema::{ObjectBuilder, OneOfBuilder, Type},
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};

use crate::{AppState, edge, edge::auth::Access, error::ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coffee-rt",
        description = "Real-time café order analytics. Orders enter through three ingestion paths \
            (v1: PostgreSQL, v2: Redis Stream, v3: Kafka); the dashboard and the history read what they stored. \
            Every error is JSON `{\"error\": \"...\", \"field\": \"...\"}` (`field` when one input is at fault). \
            Money is integer cents in every answer. Off loopback every route but `/livez`, `/readyz` and \
            `/assets/{name}` needs a bearer token: the ingest token for the order routes, the read token for the rest."
    ),
    paths(
        super::orders::post_order,
        super::orders::validate,
        super::dashboard::get_dashboard,
        super::history::get_history,
        elsewhere::index,
        elsewhere::asset,
        elsewhere::ws_dashboard,
        super::health::livez,
        super::health::readyz,
        super::health::metrics,
        spec,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Edge),
    tags(
        (name = "orders", description = "Posting orders, and checking them without storing"),
        (name = "dashboard", description = "The live figures of each path"),
        (name = "history", description = "Orders and revenue per hour, day or week"),
        (name = "operations", description = "Probes, metrics and this description"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    description = "This description, with this server's catalog as the `enum` of `drink` and `store`.",
    responses((status = 200, description = "An OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn spec(State(state): State<AppState>) -> Json<Value> {
    Json(for_server(&state.catalog, Utc::now()))
}

/// The generated description as this server answers it at `now`: `catalog`'s drinks and stores
/// as enums (the order body's fields, the history's filters), and an example order an hour
/// old, inside the time window, that this server accepts.
pub fn for_server(catalog: &coffee_core::Catalog, now: DateTime<Utc>) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the description serialises");
    let (drinks, stores) = (json!(catalog.drinks), json!(catalog.stores));
    let an_hour_ago = (now - TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let raw = &mut doc["components"]["schemas"]["RawOrder"];
    raw["example"] = json!({"drink": drinks[0], "store": stores[0], "price": 4.5, "timestamp": an_hour_ago});
    let fields = &mut raw["properties"];
    fields["drink"]["enum"] = drinks.clone();
    fields["store"]["enum"] = stores.clone();
    fields["timestamp"]["example"] = json!(an_hour_ago);
    if let Some(params) = doc["paths"]["/api/history"]["get"]["parameters"].as_array_mut() {
        for p in params {
            match p["name"].as_str() {
                Some("drink") => p["schema"]["enum"] = drinks.clone(),
                Some("store") => p["schema"]["enum"] = stores.clone(),
                _ => {}
            }
        }
    }
    doc
}

/// `POST /api/{version}/order`'s contract, idempotency included (the lead's handler implements
/// it; `crates/cli/tests/it` checks it on every path).
pub const ORDER_DESCRIPTION: &str = "Checks the order and hands it to the path `version`: v1 stores it in PostgreSQL \
before answering 201; v2 appends it to the Redis Stream and v3 produces it to Kafka before answering 202, and a worker \
or processor stores it shortly after. An order whose `timestamp` is outside the server's window (by default more than \
5 minutes ahead of its clock, or more than 30 days old) is refused with 422 naming `timestamp`.

**Idempotency of `order_id`.** `order_id` is the client's idempotency key; the server assigns a UUIDv7 when it is \
absent. The first acceptance answers 201 `{\"order_id\", \"version\", \"status\": \"created\"}` on v1, or 202 \
`{..., \"status\": \"accepted\"}` on v2 and v3. A repeat of the same order (the same `order_id` and the same body) on \
any path answers the original acceptance's status and body with `\"replayed\": true` added and the header \
`Idempotent-Replayed: true`, and stores nothing new. The same `order_id` with a different body answers 409 \
`{\"error\": \"...\", \"field\": \"order_id\"}` and changes nothing. So a client that got no answer (a timeout, a 503) \
retries with the same body and the same `order_id`, on any path, and the order counts once.";

/// The `enum` of [`super::orders::Accepted`]'s `status`.
pub fn accepted_status() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["created", "accepted"]))
        .description(Some("`created` (201, v1: in PostgreSQL) or `accepted` (202, v2/v3: in the log)"))
        .into()
}

/// Routes whose handlers live outside `routes` (the dashboard module), and bodies no type of
/// ours names: only their `#[utoipa::path]` and `ToSchema` are used.
#[allow(dead_code, reason = "described here, served by crate::dashboard and crate::telemetry")]
mod elsewhere {
    use serde::Serialize;
    use utoipa::ToSchema;

    use crate::error::ErrorBody;

    #[utoipa::path(
        get, path = "/", tag = "dashboard",
        description = "The live dashboard page. With a read token configured, open it once as `/?token=<read token>`: \
            the answer stores the token in an HttpOnly cookie and redirects to `/`.",
        params(("token" = Option<String>, Query, description = "The read token, once; then the cookie carries it")),
        responses(
            (status = 200, description = "The page", content_type = "text/html", body = String),
            (status = 303, description = "The token was right: the cookie is set, go to `/`",
             headers(("Location" = String), ("Set-Cookie" = String))),
        )
    )]
    fn index() {}

    #[utoipa::path(
        get, path = "/assets/{name}", tag = "dashboard",
        description = "The page's scripts and styles, compiled into the binary.",
        params(("name" = inline(AssetName), Path)),
        responses(
            (status = 200, description = "The asset", content(
                (String = "text/javascript"), (String = "text/css"),
            )),
            (status = 404, description = "No such asset", body = ErrorBody),
        )
    )]
    fn asset() {}

    #[utoipa::path(
        get, path = "/ws/dashboard", tag = "dashboard",
        description = "The dashboard's WebSocket: a frame of every path's figures at most every 100 ms while they change, \
            and a ping every 15 s. A browser's `Origin` must be the page's own or a configured one; past the cap of dashboard \
            clients the answer is 503.",
        responses(
            (status = 101, description = "Switched to the WebSocket protocol"),
            (status = 400, description = "Not a WebSocket handshake", body = ErrorBody),
            (status = 403, description = "A foreign `Origin`", body = ErrorBody),
            (status = 426, description = "The connection cannot be upgraded", body = ErrorBody),
        )
    )]
    fn ws_dashboard() {}

    /// The dashboard's scripts and styles.
    #[derive(ToSchema)]
    #[schema(as = AssetName)]
    #[allow(non_camel_case_types)]
    enum AssetName {
        #[schema(rename = "dashboard.js")]
        DashboardJs,
        #[schema(rename = "dashboard.css")]
        DashboardCss,
        #[schema(rename = "uplot.min.js")]
        UplotJs,
        #[schema(rename = "uplot.min.css")]
        UplotCss,
    }

    /// `/readyz`'s answer: `ready`, and `ok` or the error of each service checked.
    #[derive(Serialize, ToSchema)]
    pub struct Readiness {
        pub ready: bool,
        pub postgres: Option<String>,
        pub redis: Option<String>,
        pub kafka: Option<String>,
        /// Each version's projection, `live` or `rebuilding since <time>` (reported, never
        /// required), or the error that kept it from being read.
        pub projection: Option<serde_json::Value>,
    }

    /// `/api/validate`'s answer: the order as it would be stored.
    #[derive(Serialize, ToSchema)]
    pub struct Validated {
        /// Always `true`: an invalid order is a 4xx.
        pub valid: bool,
        pub order: coffee_core::OrderRecord,
    }
}

pub(crate) use elsewhere::{Readiness, Validated};

/// The edge's part of every operation: tokens, 401, 408/413 on bodies, 503 everywhere.
struct Edge;

impl Modify for Edge {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, which) in [("ingest_token", "ingest token (`--ingest-token`)"), ("read_token", "read token (`--read-token`)")] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(format!("`Authorization: Bearer <{which}>`; required when the server has one, always off loopback"));
            components.add_security_scheme(name, SecurityScheme::Http(http));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let access = edge::auth::access(path);
            for (method, op) in [(HttpMethod::Get, &mut item.get), (HttpMethod::Post, &mut item.post)] {
                let Some(op) = op else { continue };
                let responses = &mut op.responses.responses;
                let scheme = match access {
                    Access::Open => None,
                    Access::Read => Some("read_token"),
                    Access::Ingest => Some("ingest_token"),
                };
                if let Some(scheme) = scheme {
                    op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
                    let challenge = Header::new(ObjectBuilder::new().schema_type(Type::String));
                    responses.entry("401".into()).or_insert_with(|| {
                        error("The token is missing or wrong (`field` is `authorization`)")
                            .header("WWW-Authenticate", challenge)
                            .build()
                            .into()
                    });
                }
                if method == HttpMethod::Post {
                    responses.entry("408".into()).or_insert_with(|| {
                        error("The body did not arrive within the body timeout; the connection is closed").build().into()
                    });
                    responses
                        .entry("413".into())
                        .or_insert_with(|| error("The body is larger than 16 KiB; the connection is closed").build().into());
                }
                let unavailable = responses.remove("503");
                responses.insert("503".into(), unavailable_response(unavailable).into());
            }
        }
    }
}

/// A response with the JSON error body.
fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
}

/// 503 with `Retry-After`. The request timeout and the connection cap answer it on any route,
/// with the error body; a route's own 503 (readiness) keeps its body as one alternative.
fn unavailable_response(own: Option<RefOr<Response>>) -> Response {
    let edge = "Overloaded (too many connections or requests in flight), no answer within the request timeout, \
                or a service this route needs is unavailable; retry after `Retry-After` seconds";
    let retry_after = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
        .description(Some("Seconds to wait before retrying"))
        .build();
    let (description, schema) = match own {
        Some(RefOr::T(own)) => {
            let body = own.content.get("application/json").and_then(|c| c.schema.clone());
            let schema = match body {
                Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody") => RefOr::Ref(r),
                Some(other) => OneOfBuilder::new().item(other).item(Ref::from_schema_name("ErrorBody")).into(),
                None => Ref::from_schema_name("ErrorBody").into(),
            };
            (format!("{}; or: {edge}", own.description), schema)
        }
        _ => (edge.to_owned(), Ref::from_schema_name("ErrorBody").into()),
    };
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema)))
        .header("Retry-After", retry_after)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The description is complete without a server: every route of the router, and each
    /// operation answers the edge's statuses.
    #[test]
    fn every_route_is_described_with_the_edges_answers() {
        let doc = for_server(&coffee_core::Catalog::default(), Utc::now());
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut described: Vec<&str> = paths.keys().map(String::as_str).collect();
        described.sort_unstable();
        assert_eq!(
            described,
            [
                "/",
                "/api/dashboard",
                "/api/history",
                "/api/validate",
                "/api/{version}/order",
                "/assets/{name}",
                "/livez",
                "/metrics",
                "/openapi.json",
                "/readyz",
                "/ws/dashboard"
            ]
        );
        let order = &paths["/api/{version}/order"]["post"];
        for status in ["201", "202", "400", "401", "404", "408", "409", "413", "415", "422", "503"] {
            assert!(order["responses"][status].is_object(), "order answers {status}");
        }
        assert!(order["responses"]["503"]["headers"]["Retry-After"].is_object());
        assert_eq!(order["security"], json!([{"ingest_token": []}]));
        assert!(order["description"].as_str().unwrap().contains("Idempotent-Replayed"));
        assert_eq!(paths["/livez"]["get"]["security"], Value::Null, "probes are open");
        assert_eq!(paths["/api/dashboard"]["get"]["security"], json!([{"read_token": []}]));
        assert_eq!(doc["components"]["schemas"]["RawOrder"]["properties"]["drink"]["enum"], json!(["cappuccino", "americano", "latte"]));
    }
}
