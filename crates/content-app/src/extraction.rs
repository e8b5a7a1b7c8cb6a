//! Running the extraction worker (the `trellis-extract` binary) on one file: the bytes go in
//! on standard input, the [`Document`] comes back as JSON on standard output. The worker
//! limits its own address space and CPU time; here a wall-clock timeout kills it
//! (`kill_on_drop`), its answer is capped, and however it ends becomes either a document or
//! a reason for `AtomizationFailed` ([`ExtractFailure`]). Nothing it does can take this
//! process down.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trellis_extract::worker::{Args, EXIT_REFUSED};
use trellis_extract::{Document, MediaType};

use crate::settings::WorkerSettings;

/// Most bytes of answer read from a worker (a document's text is capped at 20 million
/// characters; JSON adds little).
const MAX_ANSWER: u64 = 128 * 1024 * 1024;

/// Why extraction gave no document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractFailure {
    /// The worker refused the file, with its reason.
    #[error("{0}")]
    Refused(String),
    /// The worker died or was killed on the file.
    #[error("{0}")]
    Died(String),
    /// The worker could not be started (a deployment problem, not the file's: retried).
    #[error("the extraction worker cannot run: {0}")]
    Unavailable(String),
}

/// Extracts `bytes` (sniffed as `media_type`) in a worker process.
///
/// # Errors
/// [`ExtractFailure`].
pub async fn extract(
    settings: &WorkerSettings,
    bytes: Bytes,
    media_type: MediaType,
) -> Result<Document, ExtractFailure> {
    let mut args = Args::new(media_type);
    args.memory_mib = settings.memory_mib;
    args.cpu_seconds = settings.cpu_seconds;
    args.max_input_bytes = (bytes.len() as u64).max(1);
    let mut child = tokio::process::Command::new(&settings.program)
        .args(args.to_args())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExtractFailure::Unavailable(format!("{}: {e}", settings.program.display())))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let write = async {
            if let Some(stdin) = stdin.as_mut() {
                // A worker that dies early closes its input: not an error of ours.
                let _ = stdin.write_all(&bytes).await;
            }
            drop(stdin.take());
        };
        let read = async {
            let mut out = Vec::new();
            if let Some(stdout) = stdout.as_mut() {
                let _ = stdout.take(MAX_ANSWER + 1).read_to_end(&mut out).await;
            }
            out
        };
        let errors = async {
            let mut err = Vec::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.take(64 * 1024).read_to_end(&mut err).await;
            }
            String::from_utf8_lossy(&err).into_owned()
        };
        let ((), out, err) = tokio::join!(write, read, errors);
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(settings.timeout, work).await {
        Ok(done) => done,
        // Dropping the future drops the child: kill_on_drop ends it.
        Err(_) => {
            return Err(ExtractFailure::Died(format!(
                "the parser took longer than {} s and was stopped",
                settings.timeout.as_secs()
            )));
        }
    };
    let status = status.map_err(|e| ExtractFailure::Unavailable(e.to_string()))?;
    if status.success() {
        if out.len() as u64 > MAX_ANSWER {
            return Err(ExtractFailure::Died(
                "the parser's answer is too large".into(),
            ));
        }
        return serde_json::from_slice(&out)
            .map_err(|e| ExtractFailure::Died(format!("the parser's answer is unreadable: {e}")));
    }
    if status.code() == Some(i32::from(EXIT_REFUSED)) {
        let reason = err
            .lines()
            .last()
            .unwrap_or("the parser refused the file")
            .trim();
        return Err(ExtractFailure::Refused(reason.to_owned()));
    }
    Err(ExtractFailure::Died(death(status, &err)))
}

/// A person-readable reason for a worker's death.
fn death(status: std::process::ExitStatus, stderr: &str) -> String {
    if let Some(signal) = status.signal() {
        return match signal {
            6 => "the parser aborted (out of memory, or a crash inside it)".into(),
            9 => "the parser was killed (over its memory or CPU limit)".into(),
            11 | 7 => "the parser crashed (stack overflow or a memory fault)".into(),
            24 => "the parser ran past its CPU-time limit".into(),
            other => format!("the parser died on signal {other}"),
        };
    }
    if status.code() == Some(101) {
        // A Rust panic: "thread 'main' panicked at src…:\n<message>".
        let message = stderr
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .nth(1)
            .unwrap_or("no message")
            .trim();
        let message: String = message.chars().take(300).collect();
        return format!("the parser panicked: {message}");
    }
    format!(
        "the parser failed ({status}): {}",
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect::<String>()
    )
}
