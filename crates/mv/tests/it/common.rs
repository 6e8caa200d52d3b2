//! Shared helpers: throw-away databases and topics, service checks, and a
//! reference model that values positions the naive way.

use coffee_mv::model::{AccountId, InstrumentId, Order, OrderId, PositionEvent, Price, PriceUpdate, Qty};
use coffee_mv::pg;
use coffee_mv::valuation::{Totals, holding_mv, order_mv};
use coffee_store::postgres::ScratchDatabase;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

/// Best effort: a test's topics go when it ends.
pub async fn delete_topics(brokers: &str, topics: &[&str]) {
    let admin = coffee_mv::kafka::base_config(brokers).create::<AdminClient<DefaultClientContext>>().unwrap();
    let _ = admin.delete_topics(topics, &AdminOptions::new()).await;
}

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Panics with a clear message if nothing listens at the broker address.
pub fn require_broker() -> String {
    let b = brokers();
    let addr = b.split(',').next().unwrap().to_string();
    if let Err(e) = std::net::TcpStream::connect(&addr) {
        panic!("Kafka broker not reachable at {addr} ({e}); scripts/test starts Apache Kafka there, or set KAFKA_BROKERS");
    }
    b
}

/// The test PostgreSQL server; any database on it names the server.
pub const PG_SERVER: &str = "postgres://coffee:coffee@127.0.0.1:5432/postgres";

/// A database of its own with the mv schema, dropped when the guard goes away.
pub struct TestDb {
    pub url: String,
    db: ScratchDatabase,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let db = ScratchDatabase::create(PG_SERVER, "coffee_mv_test_").await.expect("PostgreSQL at 127.0.0.1:5432 is required");
        let url = db.url();
        let c = pg::connect(&url).await.unwrap();
        pg::create_schema(&c).await.unwrap();
        TestDb { url, db }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.db.drop_blocking();
    }
}

/// Naive reference: maps of holdings and orders, valued from scratch.
#[derive(Default, Clone, Debug)]
pub struct Reference {
    pub holdings: BTreeMap<(AccountId, InstrumentId), Qty>,
    pub orders: BTreeMap<OrderId, Order>,
    pub prices: BTreeMap<InstrumentId, Price>,
}

impl Reference {
    pub fn apply(&mut self, ev: &PositionEvent) {
        match *ev {
            PositionEvent::Holding(h) => {
                self.holdings.insert((h.account, h.instrument), h.qty);
            }
            PositionEvent::Order(o) => {
                self.orders.insert(o.id, o);
            }
            PositionEvent::OrderCancel { id } => {
                self.orders.remove(&id);
            }
        }
    }

    pub fn price(&mut self, u: &PriceUpdate) {
        self.prices.insert(u.instrument, u.price);
    }

    fn p(&self, i: InstrumentId) -> Price {
        self.prices.get(&i).copied().unwrap_or_default()
    }

    pub fn totals(&self, a: AccountId) -> Totals {
        let mut t = Totals::default();
        for (&(acc, i), &q) in &self.holdings {
            if acc == a {
                t.holdings_mv += holding_mv(q, self.p(i));
            }
        }
        for o in self.orders.values() {
            if o.account == a {
                t.orders_mv += order_mv(o.signed_qty(), self.p(o.instrument));
            }
        }
        t
    }

    pub fn accounts(&self) -> Vec<AccountId> {
        let mut v: Vec<_> = self.holdings.keys().map(|k| k.0).chain(self.orders.values().map(|o| o.account)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
