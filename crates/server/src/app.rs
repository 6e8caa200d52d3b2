//! [`Application::build`] wires the HTTP server to its services; `main` and every test use it.

use std::{future::Future, sync::Arc, time::Duration};

use coffee_pipeline::{
    BatcherConfig, Ingest, KafkaSettings, V1Ingest, V2Ingest, V3Ingest,
    sources::{v2_stream, v3_kafka},
};
use coffee_store::{Projection, postgres, redis as store_redis};
use tokio::{net::TcpListener, task::JoinSet};

use crate::{
    AppState, ServerConfig, Services,
    dashboard::{Accepted, Hub, HubTask},
    edge::{self, Edge, connections::Limits},
    routes,
    telemetry::{self, Readiness},
};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    edge: Arc<Edge>,
    limits: Limits,
    v1_writers: JoinSet<()>,
    topic_task: tokio::task::JoinHandle<()>,
    hub_task: HubTask,
}

impl Application {
    /// Connects to PostgreSQL (creating the database and running migrations) and Redis, starts
    /// the v1 batcher and binds the listener. Kafka is not needed to start: v3 answers 503
    /// until the broker does. Refuses a non-loopback address without tokens before it
    /// connects to anything ([`Edge::new`]).
    pub async fn build(settings: &ServerConfig) -> anyhow::Result<Application> {
        let edge = Edge::new(settings)?;
        let limits = Limits { max_connections: settings.max_connections, header_timeout: settings.header_timeout };
        let prometheus = telemetry::prometheus();
        let catalog = Arc::clone(&settings.catalog);
        let pool = postgres::connect(&settings.database_url, settings.pg_pool).await?;
        postgres::migrate(&pool).await?;
        let mut redis = store_redis::connect(&settings.redis_url).await?;
        v2_stream::ensure_group(&mut redis, &settings.namespace).await?;
        let projection = Projection::new(redis.clone(), &settings.namespace);
        let accepted = Arc::new(Accepted::default());
        let (dashboard, hub_task) = Hub::start(projection.clone(), &settings.redis_url, Arc::clone(&accepted), settings.timezone).await?;
        let (v1, v1_writers) = V1Ingest::start(pool.clone(), BatcherConfig { queue: settings.v1_queue, ..Default::default() });
        let v2 = V2Ingest::new(redis, &settings.namespace, settings.v2_maxlen);
        let v3 = V3Ingest::new(&settings.kafka)?;
        let topic_task = tokio::spawn(create_topic_when_reachable(settings.kafka.clone()));
        let listener = bind(settings.listen)?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight));
        let registry = coffee_pipeline::Registry::new(projection.connection(), &settings.namespace, settings.idempotency_ttl);
        let paths: [Arc<dyn Ingest>; 3] = [Arc::new(v1), Arc::new(v2), Arc::new(v3.clone())];
        let readiness = Readiness {
            postgres: Some(pool.clone()),
            redis: Some(projection.connection()),
            kafka: Some((v3.probe(), false)),
            projection: Some(projection.clone()),
        };
        let history = coffee_warehouse::history::open(pool.clone(), settings.warehouse.as_ref(), settings.timezone)?;
        let state = AppState::new(Services {
            catalog,
            order_window: settings.order_window,
            pool,
            projection,
            paths,
            registry,
            prometheus,
            in_flight,
            dashboard,
            accepted,
            readiness,
            history,
        });
        Ok(Application { listener, state, edge, limits, v1_writers, topic_task, hub_task })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound").port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and the v1 batches
    /// they wait for, and flushes the Kafka producer. Acknowledged orders are never dropped.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, state, edge, limits, mut v1_writers, topic_task, hub_task } = self;
        let paths = state.paths.clone();
        // Dashboard sockets are upgraded connections the graceful shutdown does not wait for:
        // stopping the hub closes them (1001) as soon as shutdown begins.
        let hub = state.dashboard.clone();
        let shutdown = async move {
            shutdown.await;
            hub.stop();
        };
        edge::connections::serve(listener, routes::router(state, edge), limits, shutdown).await;
        hub_task.join().await;
        topic_task.abort();
        // Acknowledgements still in flight (v3's producer) are waited for; then the router is
        // gone and dropping `paths` drops the last V1Ingest handle: the writers drain and stop.
        for path in &paths {
            path.close().await;
        }
        drop(paths);
        let drained = tokio::time::timeout(Duration::from_secs(8), async { while v1_writers.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::error!("v1 writers did not finish within 8 s");
        }
        Ok(())
    }
}

/// How many connections may wait to be accepted. `TcpListener::bind` uses 128 (std's value):
/// a burst of new clients then overflows the accept queue, the kernel drops their SYNs, and each
/// retries a whole second later. A load run opening a few hundred connections at once did that
/// 200 times. The kernel caps it at `net.core.somaxconn` (4096 by default).
const BACKLOG: u32 = 4096;

fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Creates the v3 topic as soon as the broker answers; `up` must start without it.
async fn create_topic_when_reachable(kafka: KafkaSettings) {
    let mut delay = Duration::from_millis(500);
    loop {
        match v3_kafka::ensure_topic(&kafka, &kafka.topic, kafka.partitions).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "v3 topic not created yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
