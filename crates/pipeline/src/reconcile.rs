//! Compares the Redis projection with a recomputation from PostgreSQL, and repairs it.

use coffee_core::{Breakdown, MetricsDelta, Version};
use coffee_store::{
    PgPool, Projection,
    postgres::{self, XidWindow},
};
use serde::Serialize;
use tokio_postgres::IsolationLevel;

use crate::aggregator;

/// One metric that differs: what PostgreSQL says and what Redis holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub metric: String,
    pub expected: Breakdown,
    pub actual: Breakdown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: coffee_core::Version,
    pub expected_orders: i64,
    pub expected_revenue_cents: i64,
    pub drift: Vec<Drift>,
    pub fixed: bool,
}

/// What Redis should hold, computed in one PostgreSQL snapshot, with the fences that match it.
///
/// For v2 and v3 that is every committed order minus the outbox entries Redis has not applied
/// yet; the fences are the writers' positions. For v1 it is what the aggregator has counted:
/// orders below its fence (or, when fixing, below the snapshot's xmin, which becomes the fence).
async fn expected(
    pool: &PgPool,
    projection: &Projection,
    version: Version,
    fixing: bool,
) -> anyhow::Result<(MetricsDelta, Vec<(String, u64)>)> {
    let mut client = pool.get().await?;
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let fences = projection.fences(version).await?;
    let result = if version == Version::V1 {
        let xmin = postgres::snapshot_xmin(&tx).await?;
        let to = if fixing { xmin } else { fences.get(aggregator::SOURCE_NAME).copied().unwrap_or(0) };
        (postgres::compute_metrics(&tx, version, Some(XidWindow { from: 0, to })).await?, vec![(aggregator::SOURCE_NAME.to_owned(), to)])
    } else {
        let truth = postgres::compute_metrics(&tx, version, None).await?;
        let prefix = format!("{version}:");
        let rows = tx.query("SELECT source, seq FROM sink_positions WHERE source LIKE $1", &[&format!("{prefix}%")]).await?;
        let positions: Vec<(String, u64)> = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect();
        let mut expected = truth;
        if !fixing {
            // Subtract committed deltas Redis has not seen yet: not drift, just lag.
            for e in postgres::pending_outbox(&tx, &format!("{prefix}%"), std::time::Duration::ZERO, i64::MAX).await? {
                if fences.get(&e.source).copied().unwrap_or(0) < e.seq as u64 {
                    expected = subtract(expected, &e.delta);
                }
            }
        }
        (expected, positions)
    };
    tx.commit().await?;
    Ok(result)
}

fn subtract(mut a: MetricsDelta, b: &MetricsDelta) -> MetricsDelta {
    let neg = |x: &Breakdown| Breakdown { count: -x.count, revenue: coffee_core::Cents(-x.revenue.0) };
    let mut minus = MetricsDelta { total: neg(&b.total), ..Default::default() };
    for (src, dst) in [(&b.drinks, &mut minus.drinks), (&b.stores, &mut minus.stores), (&b.hours, &mut minus.hours)] {
        for (k, v) in src {
            dst.insert(k.clone(), neg(v));
        }
    }
    let recent = std::mem::take(&mut a.recent);
    a.merge(&minus);
    a.recent = recent;
    for m in [&mut a.drinks, &mut a.stores, &mut a.hours] {
        m.retain(|_, v| v.count != 0 || v.revenue.0 != 0);
    }
    a
}

fn diff(expected: &MetricsDelta, actual: &MetricsDelta) -> Vec<Drift> {
    let mut out = Vec::new();
    if expected.total != actual.total {
        out.push(Drift { metric: "total".into(), expected: expected.total, actual: actual.total });
    }
    let maps = [
        ("drink", &expected.drinks, &actual.drinks),
        ("store", &expected.stores, &actual.stores),
        ("hour", &expected.hours, &actual.hours),
    ];
    for (kind, e, a) in maps {
        for name in e.keys().chain(a.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (x, y) = (e.get(name).copied().unwrap_or_default(), a.get(name).copied().unwrap_or_default());
            if x != y {
                out.push(Drift { metric: format!("{kind}:{name}"), expected: x, actual: y });
            }
        }
    }
    out
}

/// Overwrites `version`'s projection and fences with PostgreSQL's, unconditionally.
///
/// For a projection that is ahead of PostgreSQL, which [`reconcile`] refuses to touch because a
/// live writer looks the same. Only safe with every writer of `version` stopped.
pub async fn force_reset(pool: &PgPool, projection: &Projection, version: Version) -> anyhow::Result<Report> {
    let (expected_now, _) = expected(pool, projection, version, false).await?;
    let drift = diff(&expected_now, &projection.read_all(version).await?);
    let (truth, fences) = expected(pool, projection, version, true).await?;
    projection.reset(version, &truth, &fences).await?;
    Ok(Report { version, expected_orders: truth.total.count, expected_revenue_cents: truth.total.revenue.0, drift, fixed: true })
}

/// Recomputes `version`'s metrics from PostgreSQL and reports how Redis differs. With `fix`,
/// overwrites Redis with the recomputation and resets the fences to match it; deltas committed
/// after the snapshot still apply on top, exactly once.
pub async fn reconcile(pool: &PgPool, projection: &Projection, version: Version, fix: bool) -> anyhow::Result<Report> {
    let (expected_now, _) = expected(pool, projection, version, false).await?;
    let actual = projection.read_all(version).await?;
    let drift = diff(&expected_now, &actual);
    if fix {
        replace_from_snapshot(pool, projection, version).await?;
    }
    Ok(Report {
        version,
        expected_orders: expected_now.total.count,
        expected_revenue_cents: expected_now.total.revenue.0,
        drift,
        fixed: fix,
    })
}

/// Overwrites `version`'s projection and fences with one PostgreSQL snapshot; deltas committed
/// after the snapshot still apply on top, exactly once. Returns what the snapshot counted.
/// Used by `reconcile --fix` and by the self-repair ([`crate::repair`]).
pub async fn replace_from_snapshot(pool: &PgPool, projection: &Projection, version: Version) -> anyhow::Result<MetricsDelta> {
    // A writer that applies between our snapshot and the replace makes it refuse; take a
    // newer snapshot and try again.
    for _ in 0..20 {
        let (truth, fences) = expected(pool, projection, version, true).await?;
        if projection.replace(version, &truth, &fences).await? {
            return Ok(truth);
        }
    }
    anyhow::bail!(
        "the projection kept moving, or a fence in Redis is ahead of PostgreSQL (a reset database); \
         with every {version} writer stopped, `reconcile --fix --force` overwrites it"
    )
}
