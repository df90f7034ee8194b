//! Order statistics of measured values (latencies, timings), computed one way everywhere.

/// The `p`-quantile (0–1) of `sorted` (ascending): the value at the nearest rank,
/// `round((n - 1) × p)`; NaN when there are no values. `percentile(v, 0.5)` is the median
/// (for an even count, the upper of the two middle values).
///
/// ```
/// let sorted = [1.0, 2.0, 3.0, 4.0];
/// assert_eq!(agentry_eval::percentile(&sorted, 0.5), 3.0);
/// assert_eq!(agentry_eval::percentile(&sorted, 0.95), 4.0);
/// assert!(agentry_eval::percentile(&[], 0.5).is_nan());
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The median of `values` (any order): [`percentile`] 0.5 of them sorted.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_or_the_upper_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
    }
}
