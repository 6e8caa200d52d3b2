//! What a sweep's flags stand for: the ladder of rates, the step lengths, the budget, the break
//! criteria of each path and the backlog probe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::backlog_probe::{BacklogProbe, MetricsGaugeProbe};
use crate::ApiVersion;
use crate::aggregator_bench;
use crate::config::SweepArgs;
use crate::results::breaks::BreakCriteria;
use crate::results::load::ConnectionModel;
use crate::results::sweep::{CeilingPlan, SweepPlan};

impl SweepArgs {
    /// The concrete plan: the flags over the defaults of a full or a `--quick` sweep.
    pub fn plan(&self) -> SweepPlan {
        let (rates, step, warmup, drain, budget, ceiling) = if self.quick {
            (
                vec![50.0, 200.0],
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(170),
                CeilingPlan {
                    duration: Duration::from_secs(2),
                    http_rates: vec![1_000.0, 2_000.0, 5_000.0],
                    http_step: Duration::from_secs(1),
                },
            )
        } else {
            (
                vec![500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 15_000.0, 20_000.0, 25_000.0, 30_000.0, 40_000.0],
                Duration::from_secs(10),
                Duration::from_secs(2),
                Duration::from_secs(15),
                Duration::from_secs(19 * 60),
                CeilingPlan {
                    duration: Duration::from_secs(10),
                    http_rates: vec![10_000.0, 20_000.0, 25_000.0, 30_000.0, 35_000.0, 40_000.0, 50_000.0, 60_000.0, 80_000.0],
                    http_step: Duration::from_secs(4),
                },
            )
        };
        let aggregator_sizes =
            if self.no_aggregator { Vec::new() } else { aggregator_bench::ladder::plan_sizes(self.quick, self.aggregator_max_rows) };
        SweepPlan {
            rates: self.rates.clone().unwrap_or(rates),
            step_duration: self.step_duration.unwrap_or(step),
            warmup: self.warmup.unwrap_or(warmup),
            model: ConnectionModel::Pooled(self.connections),
            drain_timeout: drain,
            budget: self.budget.unwrap_or(budget),
            ceiling,
            aggregator_reserve: aggregator_bench::ladder::estimate(&aggregator_sizes),
            aggregator_sizes,
        }
    }

    /// The validation-only route the HTTP ceiling is measured against.
    pub fn validate_url(&self) -> String {
        self.validate_url.clone().unwrap_or_else(|| format!("{}/api/validate", self.url.trim_end_matches('/')))
    }

    /// Break criteria for one path.
    pub fn criteria(&self, version: ApiVersion) -> BreakCriteria {
        BreakCriteria {
            slo_p99_ms: self.slo_p99_ms(),
            freshness_slo_ms: (version != ApiVersion::V1).then_some(self.freshness_slo.as_secs_f64() * 1000.0),
            ..BreakCriteria::default()
        }
    }

    /// The p99 latency SLO, ms.
    pub fn slo_p99_ms(&self) -> f64 {
        self.slo_p99.as_secs_f64() * 1000.0
    }

    /// The backlog probe the flags describe.
    pub fn backlog_probe(&self) -> anyhow::Result<Arc<dyn BacklogProbe>> {
        let gauges: BTreeMap<ApiVersion, String> = if self.backlog_metrics.is_empty() {
            MetricsGaugeProbe::default_gauges()
        } else {
            self.backlog_metrics.iter().cloned().collect()
        };
        Ok(Arc::new(MetricsGaugeProbe::new(&self.url, gauges)?))
    }
}
