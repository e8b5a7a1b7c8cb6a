//! Offline evaluation of segmentation (docs/atomization.md): the Pk and WindowDiff metrics
//! (Beeferman et al. 1999; Pevzner & Hearst 2002) with segeval 2.0.11's conventions (checked
//! against its published values, `tests/segeval.rs`), and the two baselines: a fixed-size
//! chunker and TextTiling (Hearst 1997).
//!
//! Segmentations are segment *masses*: `[2, 3, 6]` is 11 units cut after the 2nd and 5th.

use std::collections::HashMap;

use crate::text::{is_stopword, tokens};

/// segeval's default window: half the mean reference segment, rounded half to even, at
/// least 2.
pub fn default_window(reference: &[usize]) -> usize {
    if reference.is_empty() {
        return 2;
    }
    let total: usize = reference.iter().sum();
    // round(total / (2 n)) half to even, in integers.
    let n = reference.len();
    let (q, r) = (total / (2 * n), total % (2 * n));
    let k = match (2 * r).cmp(&(2 * n)) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    };
    if k <= 1 { 2 } else { k }
}

fn labels(masses: &[usize]) -> Vec<usize> {
    masses
        .iter()
        .enumerate()
        .flat_map(|(i, &m)| std::iter::repeat_n(i + 1, m))
        .collect()
}

/// Pk: the share of probes `k` units apart on which hypothesis and reference disagree about
/// being in one segment. 0 is perfect.
///
/// # Panics
/// When the two segmentations cover different numbers of units.
pub fn pk(hypothesis: &[usize], reference: &[usize], window: Option<usize>) -> f64 {
    let (h, r) = (labels(hypothesis), labels(reference));
    assert_eq!(h.len(), r.len(), "segmentations of different lengths");
    let k = window.unwrap_or_else(|| default_window(reference));
    let n = r.len();
    if n <= k {
        return 0.0;
    }
    let errors = (0..n - k)
        .filter(|&i| (h[i] == h[i + k]) != (r[i] == r[i + k]))
        .count();
    errors as f64 / (n - k) as f64
}

/// WindowDiff: the share of windows of `k` unit gaps in which hypothesis and reference count
/// different numbers of boundaries; `lamprier` pads both ends (Lamprier et al. 2007) so edge
/// boundaries weigh as much as others. 0 is perfect.
///
/// # Panics
/// When the two segmentations cover different numbers of units.
pub fn window_diff(
    hypothesis: &[usize],
    reference: &[usize],
    window: Option<usize>,
    lamprier: bool,
) -> f64 {
    let (mut h, mut r) = (labels(hypothesis), labels(reference));
    assert_eq!(h.len(), r.len(), "segmentations of different lengths");
    let k = window.unwrap_or_else(|| default_window(reference));
    let n = r.len();
    if lamprier {
        for labels in [&mut h, &mut r] {
            let mut padded = vec![0; k];
            padded.append(labels);
            padded.extend(std::iter::repeat_n(0, k));
            *labels = padded;
        }
    }
    let m = h.len();
    if m <= k {
        return 0.0;
    }
    let boundaries = |l: &[usize], i: usize| (i..i + k).filter(|&j| l[j] != l[j + 1]).count();
    let errors = (0..m - k)
        .filter(|&i| boundaries(&h, i) != boundaries(&r, i))
        .count();
    let divisor = if lamprier { n + k + 1 } else { n - k };
    errors as f64 / divisor as f64
}

/// Masses from cut positions (a cut at `c` ends a segment after unit `c - 1`).
pub fn masses_from_cuts(units: usize, cuts: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < units) {
        if cut > start {
            out.push(cut - start);
            start = cut;
        }
    }
    if units > start {
        out.push(units - start);
    }
    out
}

/// The fixed-size baseline: a new segment every time `target` words are reached.
pub fn fixed_size(words: &[usize], target: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut count = 0;
    for (i, w) in words.iter().enumerate() {
        if count >= target {
            cuts.push(i);
            count = 0;
        }
        count += w;
    }
    masses_from_cuts(words.len(), &cuts)
}

/// TextTiling over units (Hearst 1997, block comparison): the cosine of content-word counts
/// of `block` units either side of each gap, depth scores from the nearest peaks, and a cut
/// at each gap deeper than mean − σ/2 (the paper's liberal cutoff), one per local valley.
pub fn text_tiling(units: &[&str], block: usize) -> Vec<usize> {
    let n = units.len();
    if n < 2 {
        return masses_from_cuts(n, &[]);
    }
    let counts: Vec<HashMap<String, f64>> = units
        .iter()
        .map(|u| {
            let mut c = HashMap::new();
            for t in tokens(u) {
                if !is_stopword(&t) && t.chars().count() > 2 {
                    *c.entry(t).or_insert(0.0) += 1.0;
                }
            }
            c
        })
        .collect();
    let merged = |range: std::ops::Range<usize>| {
        let mut m: HashMap<&str, f64> = HashMap::new();
        for c in &counts[range] {
            for (k, v) in c {
                *m.entry(k.as_str()).or_insert(0.0) += v;
            }
        }
        m
    };
    let cosine = |a: &HashMap<&str, f64>, b: &HashMap<&str, f64>| {
        let dot: f64 = a.iter().filter_map(|(k, v)| b.get(k).map(|w| v * w)).sum();
        let na = a.values().map(|v| v * v).sum::<f64>().sqrt();
        let nb = b.values().map(|v| v * v).sum::<f64>().sqrt();
        if na == 0.0 || nb == 0.0 {
            0.0
        } else {
            dot / (na * nb)
        }
    };
    // gap g sits between unit g and g + 1.
    let scores: Vec<f64> = (0..n - 1)
        .map(|g| {
            let left = merged(g.saturating_sub(block - 1)..g + 1);
            let right = merged(g + 1..(g + 1 + block).min(n));
            cosine(&left, &right)
        })
        .collect();
    let depth: Vec<f64> = (0..scores.len())
        .map(|g| {
            let mut left = scores[g];
            for &s in scores[..g].iter().rev() {
                if s < left {
                    break;
                }
                left = s;
            }
            let mut right = scores[g];
            for &s in &scores[g + 1..] {
                if s < right {
                    break;
                }
                right = s;
            }
            (left - scores[g]) + (right - scores[g])
        })
        .collect();
    let mean = depth.iter().sum::<f64>() / depth.len() as f64;
    let sd = (depth.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / depth.len() as f64).sqrt();
    let cutoff = mean - sd / 2.0;
    let cuts: Vec<usize> = (0..depth.len())
        .filter(|&g| {
            depth[g] > cutoff
                && depth[g] > 0.0
                && (g == 0 || depth[g] >= depth[g - 1])
                && (g + 1 == depth.len() || depth[g] > depth[g + 1])
        })
        .map(|g| g + 1)
        .collect();
    masses_from_cuts(n, &cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masses_and_baselines() {
        assert_eq!(masses_from_cuts(11, &[2, 5]), [2, 3, 6]);
        assert_eq!(fixed_size(&[100, 100, 100, 100, 100], 200), [2, 2, 1]);
        let units = [
            "lists lists append",
            "lists append pop",
            "dicts keys values",
            "dicts values items",
        ];
        assert_eq!(text_tiling(&units, 1), [2, 2]);
        assert_eq!(
            default_window(&[2, 3]),
            2,
            "1.25 rounds to 1, then at least 2"
        );
        assert_eq!(default_window(&[5, 5]), 2, "2.5 rounds half to even");
        assert_eq!(default_window(&[7, 7]), 4, "3.5 rounds half to even");
    }
}
