//! Every metric coffee-rt exports, described once: name, unit and HELP text. The recorders
//! live where the work happens (server, pipeline); the descriptions live here, so `/metrics`
//! of every role carries HELP for each one and the catalog reads as the list an operator needs.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub(super) fn describe() {
    describe_counter!("coffee_rt_http_requests_total", "HTTP requests answered, by route template, path version and status.");
    describe_histogram!(
        "coffee_rt_http_request_duration_seconds",
        Unit::Seconds,
        "Time from request to response, by route template, path version and status."
    );
    describe_counter!("coffee_rt_orders_accepted_total", "Orders acknowledged with a 2xx, by path.");
    describe_counter!(
        "coffee_rt_orders_replayed_total",
        "Repeats of an accepted order (same order_id, same body) answered with the first answer and `replayed: true`, by the path asked."
    );
    describe_counter!(
        "coffee_rt_order_id_conflicts_total",
        "Orders refused with 409: their order_id was already used for another order, by the path asked."
    );
    describe_counter!(
        "coffee_rt_v3_stale_records_total",
        "v3 records that arrived after their partition was revoked from this processor, dropped (the next owner reads them from PostgreSQL's offset)."
    );
    describe_counter!(
        "coffee_rt_commit_conflicts_total",
        "Logged orders the v2 worker or v3 processor skipped because their order_id was already stored with another body (the registry had forgotten it), by path."
    );
    describe_counter!(
        "coffee_rt_idempotency_unchecked_total",
        "Orders submitted without the order_id registry because Redis was unreachable (v1 still checks PostgreSQL), by path."
    );
    describe_gauge!(
        "coffee_rt_projection_rebuilding",
        "1 while this process rebuilds a version's Redis projection from PostgreSQL after Redis lost it, by version."
    );
    describe_counter!("coffee_rt_projection_rebuilds_total", "Projections rebuilt from PostgreSQL after Redis lost them, by version.");
    describe_histogram!(
        "coffee_rt_projection_rebuild_seconds",
        Unit::Seconds,
        "How long rebuilding a version's projection from one PostgreSQL snapshot took, by version."
    );
    describe_gauge!(
        "coffee_rt_freshness_lag_seconds",
        Unit::Seconds,
        "How far the Redis projection is behind the newest order this API process accepted (0 when it has counted them all)."
    );
    describe_gauge!("coffee_rt_dashboard_clients", "Open dashboard WebSockets of this process.");
    describe_counter!("coffee_rt_dashboard_pushes_total", "Dashboard snapshots pushed (one per change, at most ten a second).");
    describe_gauge!("coffee_rt_http_connections", "TCP connections this API process is serving (capped by --max-connections).");
    describe_counter!(
        "coffee_rt_http_refused_total",
        "Connections and requests the HTTP edge refused, by reason: connections (503 past --max-connections), accept_paused (past the refusals' own cap: accepting paused until a connection ends), header_timeout (headers not sent in time, or an idle keep-alive connection closed), body_timeout (408), request_timeout (503), ws_clients (503 past --max-ws-clients), origin (403 on /ws/dashboard)."
    );
    describe_counter!("coffee_rt_http_unauthorized_total", "Requests answered 401, by route template and reason (missing or wrong token).");
    describe_histogram!(
        coffee_pipeline::freshness::HISTOGRAM,
        Unit::Seconds,
        "Per order, the time from the API's acknowledgement to the order being counted in the Redis metrics, by path."
    );
    describe_histogram!(
        "coffee_rt_batch_orders",
        Unit::Count,
        "Orders per sink batch, by stage (v1_insert, v1_aggregate, v2_worker, v3_window)."
    );
    describe_histogram!("coffee_rt_flush_duration_seconds", Unit::Seconds, "Time to commit and project one batch, by stage.");
    describe_gauge!("coffee_rt_v2_consumer_lag_entries", Unit::Count, "Stream entries the v2 consumer group has not been delivered yet.");
    describe_gauge!("coffee_rt_v2_pending_entries", Unit::Count, "Stream entries delivered to a v2 worker and not acknowledged yet.");
    describe_gauge!(
        "coffee_rt_v3_consumer_lag_records",
        Unit::Count,
        "Per partition, records in Kafka past the offset PostgreSQL has committed."
    );
    describe_gauge!(
        "coffee_rt_outbox_entries",
        Unit::Count,
        "Committed metric deltas still in PostgreSQL's outbox, by path (applied ones are removed by the writer's next batch)."
    );
    describe_counter!("coffee_rt_dead_letters_total", "Entries or records set aside because they carry no valid order, by path.");
    describe_counter!("coffee_rt_v2_claimed_total", "v2 stream entries taken over from a consumer that stopped.");
    describe_counter!(
        "coffee_rt_v2_group_recreated_total",
        "Times the v2 consumer group was found missing (Redis came back empty) and recreated."
    );
    describe_counter!("coffee_rt_v3_records_total", "Kafka records read by this v3 processor.");
    describe_counter!(
        coffee_warehouse::sink::ROWS_TOTAL,
        Unit::Count,
        "Orders ClickHouse acknowledged from the warehouse sink (a replayed window counts again; the table collapses replays)."
    );
    describe_gauge!(
        coffee_warehouse::sink::LAG_SECONDS,
        Unit::Seconds,
        "How long the oldest order PostgreSQL holds past the warehouse watermark has waited since it was accepted (0 when none waits)."
    );
    describe_counter!(
        coffee_warehouse::sink::ERRORS_TOTAL,
        "Failed warehouse sink attempts, by store (clickhouse, postgres); each is retried with backoff."
    );
    describe_counter!(
        coffee_warehouse::sink::SKIPPED_TOTAL,
        "Orders the warehouse sink did not copy because a time of theirs lies outside ClickHouse DateTime's range (1970 to 2106)."
    );
    describe_counter!(
        coffee_warehouse::sink::PARTITIONS_DROPPED_TOTAL,
        "Month partitions the warehouse sink dropped for the hot window (ClickHouse without TTL)."
    );
    describe_gauge!("coffee_rt_build_info", "Always 1; the labels say which build and role this process runs.");
}

/// Sets `coffee_rt_build_info{version, revision, role} 1` for this process.
pub fn set_build_info(role: &'static str, version: &'static str, revision: &'static str) {
    metrics::gauge!("coffee_rt_build_info", "version" => version, "revision" => revision, "role" => role).set(1.0);
}
