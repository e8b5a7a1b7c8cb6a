//! The content context's settings (environment, else the `TRELLIS_CONFIG` file):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TRELLIS_STORAGE_URL` | `file://<cwd>/.trellis/storage` | where uploaded bytes go: `file:///abs/path` or `s3://bucket` |
//! | `TRELLIS_S3_ENDPOINT` | – | an S3-compatible endpoint (`http://127.0.0.1:5055`); AWS's otherwise |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` | –, –, `us-east-1` | S3 credentials |
//! | `TRELLIS_UPLOAD_MAX_BYTES` | 100,000,000 | largest upload |
//! | `TRELLIS_EXTRACT_WORKER` | `trellis-extract` beside the running binary | the worker binary |
//! | `TRELLIS_EXTRACT_TIMEOUT_SECONDS` | 120 | wall-clock limit of one extraction |
//! | `TRELLIS_EXTRACT_MEMORY_MIB` | 1024 | the worker's address-space limit |
//! | `TRELLIS_EXTRACT_CPU_SECONDS` | 90 | the worker's CPU-time limit |

use std::path::PathBuf;
use std::time::Duration;

use trellis_edge::config::{ConfigError, Settings};

/// Settings of the content context.
#[derive(Debug, Clone)]
pub struct ContentSettings {
    /// `TRELLIS_STORAGE_URL`.
    pub storage_url: String,
    /// `TRELLIS_S3_ENDPOINT`: an S3-compatible server instead of AWS.
    pub s3_endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (otherwise the AWS chain: instance
    /// roles and the like).
    pub s3_credentials: Option<(String, String)>,
    /// `TRELLIS_UPLOAD_MAX_BYTES`.
    pub upload_max_bytes: u64,
    /// The extraction worker.
    pub worker: WorkerSettings,
}

/// How extraction workers run.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The worker binary.
    pub program: PathBuf,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Address-space limit, MiB.
    pub memory_mib: u64,
    /// CPU-time limit, seconds.
    pub cpu_seconds: u64,
}

impl ContentSettings {
    /// From the environment and the `TRELLIS_CONFIG` file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        Self::from_lookup(|name| settings.get(name))
    }

    /// From `lookup` (for tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            lookup(name).map_or(Ok(default), |v| {
                v.trim()
                    .replace('_', "")
                    .parse()
                    .map_err(|_| ConfigError::Invalid {
                        name,
                        reason: format!("`{v}` is not a whole number"),
                    })
            })
        };
        let storage_url = match lookup("TRELLIS_STORAGE_URL") {
            Some(url) => url,
            None => {
                let cwd = std::env::current_dir().map_err(|e| ConfigError::Invalid {
                    name: "TRELLIS_STORAGE_URL",
                    reason: format!("no default without a working directory: {e}"),
                })?;
                format!("file://{}", cwd.join(".trellis/storage").display())
            }
        };
        let program = match lookup("TRELLIS_EXTRACT_WORKER") {
            Some(path) => PathBuf::from(path),
            None => default_worker(),
        };
        Ok(Self {
            storage_url,
            s3_endpoint: lookup("TRELLIS_S3_ENDPOINT"),
            s3_credentials: lookup("AWS_ACCESS_KEY_ID").zip(lookup("AWS_SECRET_ACCESS_KEY")),
            upload_max_bytes: number("TRELLIS_UPLOAD_MAX_BYTES", 100_000_000)?,
            worker: WorkerSettings {
                program,
                timeout: Duration::from_secs(number("TRELLIS_EXTRACT_TIMEOUT_SECONDS", 120)?),
                memory_mib: number("TRELLIS_EXTRACT_MEMORY_MIB", 1024)?,
                cpu_seconds: number("TRELLIS_EXTRACT_CPU_SECONDS", 90)?,
            },
        })
    }
}

/// `trellis-extract` beside the running binary, or one folder up (a test binary runs from
/// `target/<profile>/deps/`, the binaries sit in `target/<profile>/`).
fn default_worker() -> PathBuf {
    let name = "trellis-extract";
    let exe = std::env::current_exe().unwrap_or_default();
    let here = exe.parent().map(|d| d.join(name));
    let up = exe.parent().and_then(|d| d.parent()).map(|d| d.join(name));
    [here.clone(), up]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .or(here)
        .unwrap_or_else(|| PathBuf::from(name))
}
