//! The plain-text baseline: TF-IDF cosine between the gap skills' names and resource text,
//! what a catalog search box would return.

use std::collections::HashMap;

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.len() > 2)
        .map(str::to_lowercase)
}

pub struct TextIndex {
    postings: HashMap<String, Vec<(usize, f64)>>,
    idf: HashMap<String, f64>,
}

impl TextIndex {
    pub fn new(docs: impl Iterator<Item = String>) -> Self {
        let mut postings: HashMap<String, Vec<(usize, f64)>> = HashMap::new();
        let mut n = 0usize;
        let mut tfs: Vec<HashMap<String, f64>> = Vec::new();
        for doc in docs {
            let mut tf: HashMap<String, f64> = HashMap::new();
            for t in tokens(&doc) {
                *tf.entry(t).or_default() += 1.0;
            }
            tfs.push(tf);
            n += 1;
        }
        let mut df: HashMap<String, usize> = HashMap::new();
        for tf in &tfs {
            for t in tf.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
        }
        let idf: HashMap<String, f64> = df
            .into_iter()
            .map(|(t, d)| (t, ((n as f64 + 1.0) / (d as f64 + 1.0)).ln() + 1.0))
            .collect();
        for (doc, tf) in tfs.into_iter().enumerate() {
            let norm = tf
                .iter()
                .map(|(t, f)| (f * idf[t]).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-9);
            for (t, f) in tf {
                let w = f * idf[&t] / norm;
                postings.entry(t).or_default().push((doc, w));
            }
        }
        Self { postings, idf }
    }

    /// The `k` best documents for `query`.
    pub fn search(&self, query: &str, k: usize) -> Vec<usize> {
        let mut scores: HashMap<usize, f64> = HashMap::new();
        for t in tokens(query) {
            let Some(list) = self.postings.get(&t) else {
                continue;
            };
            let q = self.idf.get(&t).copied().unwrap_or(0.0);
            for (doc, w) in list {
                *scores.entry(*doc).or_default() += q * w;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.into_iter().take(k).map(|(d, _)| d).collect()
    }
}
