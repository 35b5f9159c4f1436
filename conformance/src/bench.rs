//! Small helpers for the benchmarks: medians, percentiles and a report with the baseline's ratio.

use std::time::Duration;

pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// The nearest-rank `percent`th percentile (`percent` in 1..=100): the smallest sample that at
/// least `percent`% of the samples do not exceed.
pub fn percentile(samples: &[Duration], percent: u32) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * percent.clamp(1, 100) as usize).div_ceil(100);
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or(Duration::ZERO)
}

/// Each runtime's samples and median, and crius's median as a ratio of the baseline's.
#[must_use]
pub fn report(
    what: &str,
    crius: &[Duration],
    baseline_name: &str,
    baseline: &[Duration],
) -> String {
    let show = |samples: &[Duration]| {
        samples
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (ours, theirs) = (median(crius), median(baseline));
    format!(
        "{what}\n  crius      median {:.3}s  runs [{}]\n  {baseline_name:<10} median {:.3}s  runs [{}]\n  \
         ratio crius/{baseline_name} = {:.2}\n",
        ours.as_secs_f64(),
        show(crius),
        theirs.as_secs_f64(),
        show(baseline),
        ours.as_secs_f64() / theirs.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&ms(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(
            median(&ms(&[4, 1, 2, 3])),
            Duration::from_millis(2500) / 1000
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<_> = (1..=50).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 90), Duration::from_millis(45));
        assert_eq!(percentile(&samples, 100), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 1), Duration::from_millis(1));
        let few: Vec<_> = [30, 10, 20].map(Duration::from_millis).to_vec();
        assert_eq!(percentile(&few, 90), Duration::from_millis(30));
        assert_eq!(percentile(&[], 90), Duration::ZERO);
    }
}
