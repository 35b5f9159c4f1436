//! Small helpers for the benchmarks: medians and a report with the baseline's ratio.

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
}
