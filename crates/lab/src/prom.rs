//! Just enough of the Prometheus text format to read one histogram and a few gauges from
//! `GET /metrics`, plus `histogram_quantile`-style interpolation. Pure: no IO.
//!
//! Written here rather than pulled in because the lab needs only the sample lines
//! (`name{labels} value`), and the available parser crates drag in regex and a date library
//! for features (timestamps, type metadata) it would never use.

/// One sample line: `name{label="value",...} 12.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn matches(&self, name: &str, filter: &[(&str, &str)]) -> bool {
        self.name == name && filter.iter().all(|(k, v)| self.label(k) == Some(v))
    }
}

/// Parse every sample line; comments, blank and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// Parses `k="v",k2="v2"}` and returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

/// Sum of all series of `name` matching the label filter; `None` if there is none.
pub fn gauge(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for s in samples.iter().filter(|s| s.matches(name, filter)) {
        *found.get_or_insert(0.0) += s.value;
    }
    found
}

/// A Prometheus histogram at one instant: cumulative bucket counts by upper bound.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramSnapshot {
    /// `(le, cumulative count)`, sorted by `le`; the last is `+Inf` when the server exports it.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl HistogramSnapshot {
    /// Read histogram `name` (without the `_bucket` suffix) for the series matching `filter`.
    pub fn from_samples(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> Option<Self> {
        let bucket_name = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in samples.iter().filter(|s| s.matches(&bucket_name, filter)) {
            let le = match s.label("le")? {
                "+Inf" => f64::INFINITY,
                v => v.parse().ok()?,
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some(b) => b.1 += s.value,
                None => buckets.push((le, s.value)),
            }
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Self {
            buckets,
            sum: gauge(samples, &format!("{name}_sum"), filter).unwrap_or(0.0),
            count: gauge(samples, &format!("{name}_count"), filter).unwrap_or(0.0),
        })
    }

    /// What was observed between `before` and `self`. Buckets missing from `before`
    /// (the series appeared during the run) count from zero.
    pub fn since(&self, before: &HistogramSnapshot) -> HistogramSnapshot {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let prev = before.buckets.iter().find(|(b, _)| *b == le).map_or(0.0, |b| b.1);
                (le, (c - prev).max(0.0))
            })
            .collect();
        HistogramSnapshot { buckets, sum: self.sum - before.sum, count: (self.count - before.count).max(0.0) }
    }

    /// The `q`-quantile (0..=1) by linear interpolation inside the bucket that holds it, as
    /// PromQL's `histogram_quantile` does: the first bucket starts at 0, and a rank that falls
    /// into `+Inf` returns the highest finite bound. `None` when nothing was observed.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut prev_le, mut prev_count) = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank && count > prev_count {
                if le.is_infinite() {
                    return Some(prev_le);
                }
                return Some(prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count));
            }
            (prev_le, prev_count) = (le, count);
        }
        Some(prev_le)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP coffee_rt_order_freshness_seconds Accept to counted.
# TYPE coffee_rt_order_freshness_seconds histogram
coffee_rt_order_freshness_seconds_bucket{version="v2",le="0.1"} 10
coffee_rt_order_freshness_seconds_bucket{version="v2",le="0.5"} 60
coffee_rt_order_freshness_seconds_bucket{version="v2",le="1"} 90
coffee_rt_order_freshness_seconds_bucket{version="v2",le="+Inf"} 100
coffee_rt_order_freshness_seconds_sum{version="v2"} 42.5
coffee_rt_order_freshness_seconds_count{version="v2"} 100
coffee_rt_order_freshness_seconds_bucket{version="v3",le="0.1"} 5
coffee_rt_order_freshness_seconds_bucket{version="v3",le="+Inf"} 5
coffee_rt_order_freshness_seconds_count{version="v3"} 5
coffee_rt_v2_consumer_lag_entries{stream="orders",note="a \"quoted\", value"} 17
coffee_rt_v2_consumer_lag_entries{stream="other"} 3 1700000000000
"#;

    #[test]
    fn parses_labels_values_and_escapes() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 11);
        let lag = s.iter().find(|x| x.label("stream") == Some("orders")).unwrap();
        assert_eq!(lag.label("note"), Some("a \"quoted\", value"));
        assert_eq!(lag.value, 17.0);
        assert_eq!(gauge(&s, "coffee_rt_v2_consumer_lag_entries", &[]), Some(20.0));
        assert_eq!(gauge(&s, "coffee_rt_v2_consumer_lag_entries", &[("stream", "other")]), Some(3.0));
        assert_eq!(gauge(&s, "nope", &[]), None);
    }

    #[test]
    fn reads_one_version_of_the_histogram() {
        let s = parse(TEXT);
        let h = HistogramSnapshot::from_samples(&s, "coffee_rt_order_freshness_seconds", &[("version", "v2")]).unwrap();
        assert_eq!(h.buckets.len(), 4);
        assert_eq!(h.count, 100.0);
        assert_eq!(h.sum, 42.5);
        assert!(HistogramSnapshot::from_samples(&s, "coffee_rt_order_freshness_seconds", &[("version", "v1")]).is_none());
    }

    #[test]
    fn quantiles_interpolate_like_promql() {
        let h = HistogramSnapshot { buckets: vec![(0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (f64::INFINITY, 100.0)], sum: 0.0, count: 100.0 };
        // rank 50 lies in (0.1, 0.5] holding 50 orders from cumulative 10: 0.1 + 0.4 * 40/50.
        assert!((h.quantile(0.5).unwrap() - 0.42).abs() < 1e-9);
        // rank 5 lies in the first bucket, which starts at 0.
        assert!((h.quantile(0.05).unwrap() - 0.05).abs() < 1e-9);
        // rank 99 lies in +Inf: the highest finite bound.
        assert_eq!(h.quantile(0.99), Some(1.0));
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn since_subtracts_a_baseline() {
        let before = HistogramSnapshot { buckets: vec![(0.1, 5.0), (f64::INFINITY, 8.0)], sum: 1.0, count: 8.0 };
        let after = HistogramSnapshot { buckets: vec![(0.1, 5.0), (1.0, 20.0), (f64::INFINITY, 28.0)], sum: 11.0, count: 28.0 };
        let d = after.since(&before);
        assert_eq!(d.buckets, vec![(0.1, 0.0), (1.0, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(d.count, 20.0);
        assert_eq!(d.sum, 10.0);
        // All 20 new orders fell in (0.1, 1]: median at 0.1 + 0.9 * 10/20.
        assert!((d.quantile(0.5).unwrap() - 0.55).abs() < 1e-9);
    }
}
