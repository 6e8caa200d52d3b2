//! The consumer's rebalance hook: a partition it is given resumes at the offset PostgreSQL
//! holds, never at Kafka's committed one, so no record is skipped or written twice.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use coffee_store::postgres;
use rdkafka::{
    ClientContext, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol},
    types::RDKafkaRespErr,
};
use tokio::time::sleep;

use super::source_of;

/// Rebalance hook: positions new partitions at the offset PostgreSQL holds.
pub(super) struct Context {
    pub(super) database_url: String,
    pub(super) topic: String,
    pub(super) events: Mutex<Vec<Rebalanced>>,
}

pub(super) enum Rebalanced {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                let positions = self.positions_blocking(&partitions);
                for p in &partitions {
                    let offset = match positions.get(p) {
                        Some(last) => Offset::Offset(last + 1),
                        None => Offset::Beginning,
                    };
                    tpl.set_partition_offset(&self.topic, *p, offset).expect("partition from this list");
                }
                tracing::info!(?partitions, "v3 partitions assigned; resuming from PostgreSQL's offsets");
                // The cooperative protocol (KIP-848's, or cooperative-sticky) hands over only
                // the partitions that change owner; eager rebalances replace the whole set.
                let done = match base.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => base.incremental_assign(tpl),
                    _ => base.assign(tpl),
                };
                if let Err(e) = done {
                    tracing::error!(error = %e, "assign failed");
                }
                self.events.lock().expect("events").push(Rebalanced::Assigned(partitions));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "v3 partitions revoked");
                let done = match base.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => base.incremental_unassign(tpl),
                    _ => base.unassign(),
                };
                if let Err(e) = done {
                    tracing::error!(error = %e, "unassign failed");
                }
                self.events.lock().expect("events").push(Rebalanced::Revoked(partitions));
            }
            other => tracing::error!(?other, "rebalance error"),
        }
    }
}

impl Context {
    /// librdkafka calls the rebalance hook synchronously from the poll, so the lookup runs on a
    /// thread of its own with its own connection; rebalances are rare. Retries until
    /// PostgreSQL answers: starting a partition anywhere else could skip or double records.
    fn positions_blocking(&self, partitions: &[i32]) -> HashMap<i32, i64> {
        let url = self.database_url.clone();
        let sources: Vec<(i32, String)> = partitions.iter().map(|p| (*p, source_of(&self.topic, *p))).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let mut delay = Duration::from_millis(200);
                    loop {
                        let names: Vec<String> = sources.iter().map(|(_, s)| s.clone()).collect();
                        match postgres::log_offsets_once(&url, &names).await {
                            Ok(offsets) => {
                                return sources.iter().filter_map(|(p, s)| offsets.get(s).map(|o| (*p, *o))).collect();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading v3 positions failed; retrying");
                                sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(2));
                            }
                        }
                    }
                })
            })
            .join()
            .expect("positions thread")
        })
    }
}
