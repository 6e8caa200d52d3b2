//! Background roles started in the test's own process, on its world.

use std::sync::Arc;

use coffee_core::Catalog;
use coffee_pipeline::{Processor, ProcessorConfig};
use coffee_store::{PgPool, Projection};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::TestEnv;

/// A v3 processor (default settings, the built-in catalog) on `env`'s topic and group. Send on
/// the returned channel (or drop it) to stop it; the handle says how it ended.
pub fn start_processor(env: &TestEnv, pool: PgPool, projection: Projection) -> (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let p = Processor::new(
        ProcessorConfig::default(),
        env.config.kafka.clone(),
        &env.database_url,
        pool,
        projection,
        Arc::new(Catalog::default()),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(p.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}
