//! Metrics for the offline evaluation (docs/recommendation.md).

/// Normalised discounted cumulative gain of `gains` (graded relevance, in list order) against
/// the best possible ordering of `all_gains` (every relevant item's gain), cut at `k`.
pub fn ndcg_at(gains: &[f64], all_gains: &[f64], k: usize) -> f64 {
    let dcg = |g: &[f64]| -> f64 {
        g.iter()
            .take(k)
            .enumerate()
            .map(|(i, g)| g / ((i + 2) as f64).log2())
            .sum()
    };
    let mut ideal = all_gains.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&ideal);
    if best <= 0.0 { 0.0 } else { dcg(gains) / best }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (ties count half). Mann–Whitney over sorted scores, O(n log n).
pub fn auc(positives: &[f64], negatives: &[f64]) -> f64 {
    if positives.is_empty() || negatives.is_empty() {
        return 0.5;
    }
    let mut all: Vec<(f64, bool)> = positives
        .iter()
        .map(|s| (*s, true))
        .chain(negatives.iter().map(|s| (*s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += all[i..=j].iter().filter(|x| x.1).count() as f64 * avg_rank;
        i = j + 1;
    }
    let (np, nn) = (positives.len() as f64, negatives.len() as f64);
    (rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Median and 99th percentile (nearest rank) of `samples`, which it sorts.
pub fn p50_p99(samples: &mut [f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_less_otherwise() {
        assert!((ndcg_at(&[3.0, 2.0, 1.0], &[1.0, 2.0, 3.0], 10) - 1.0).abs() < 1e-12);
        let worse = ndcg_at(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 10);
        assert!(worse < 1.0 && worse > 0.0);
        assert_eq!(ndcg_at(&[0.0], &[], 10), 0.0);
    }

    #[test]
    fn auc_separates_perfectly_randomly_and_inversely() {
        assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(auc(&[0.1], &[0.9]), 0.0);
        assert_eq!(auc(&[0.5, 0.5], &[0.5, 0.5]), 0.5);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p50_p99(&mut s), (50.0, 99.0));
    }
}
