//! Small formatting rules every report shares: markdown tables, shares, row counts, durations.

use comfy_table::{Table, presets};

/// A markdown table with `header`.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
    t.set_header(header.to_vec());
    t
}

/// 10k, 100k, 1M, 10M, 2.5M.
pub fn rows_label(rows: u64) -> String {
    let (v, unit) = if rows >= 1_000_000 {
        (rows as f64 / 1e6, "M")
    } else if rows >= 1_000 {
        (rows as f64 / 1e3, "k")
    } else {
        (rows as f64, "")
    };
    if v.fract() == 0.0 { format!("{v:.0}{unit}") } else { format!("{v:.1}{unit}") }
}

/// `x` rounded to two significant digits.
pub fn round_2sig(x: f64) -> u64 {
    if x < 1.0 {
        return x.max(0.0).round() as u64;
    }
    let m = 10f64.powi(x.log10().floor() as i32 - 1);
    ((x / m).round() * m) as u64
}

/// `secs` in the largest unit that keeps it at least 2 (days, h, min), or in seconds.
pub fn human_duration(secs: f64) -> String {
    if secs >= 2.0 * 86_400.0 {
        format!("{:.0} days", secs / 86_400.0)
    } else if secs >= 2.0 * 3_600.0 {
        format!("{:.0} h", secs / 3_600.0)
    } else if secs >= 120.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

/// A share with two significant digits, so 0.03 % does not print as 0.0 %.
pub fn percent(p: f64) -> String {
    if p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{:.*} %", (1 - p.log10().floor() as i32).max(2) as usize, p)
    }
}

/// `values` joined by ` + ` with `decimals` decimals each.
pub fn join(values: &[f64], decimals: usize) -> String {
    values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(" + ")
}

/// The partitions each instance held, `[0, 1] [2, 3]`.
pub fn partition_lists(per_instance: &[Vec<i32>]) -> String {
    per_instance.iter().map(|ps| format!("{ps:?}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_durations_for_the_aggregator_lines() {
        assert_eq!(round_2sig(4_837_000.0), 4_800_000);
        assert_eq!(round_2sig(96_400.0), 96_000);
        assert_eq!(human_duration(48_000.0), "13 h");
        assert_eq!(human_duration(4_800.0), "80 min");
        assert_eq!(human_duration(30.0), "30 s");
        assert_eq!(human_duration(500_000.0), "6 days");
    }

    #[test]
    fn small_shares_keep_two_significant_digits() {
        assert_eq!(percent(42.4), "42 %");
        assert_eq!(percent(4.24), "4.2 %");
        assert_eq!(percent(0.169), "0.17 %");
        assert_eq!(percent(0.0306), "0.031 %");
    }

    #[test]
    fn row_labels() {
        assert_eq!(rows_label(10_000), "10k");
        assert_eq!(rows_label(10_000_000), "10M");
        assert_eq!(rows_label(2_500_000), "2.5M");
        assert_eq!(rows_label(500), "500");
    }
}
