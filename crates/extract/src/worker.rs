//! The worker process's side: `trellis-extract --media-type pdf < file > document.json`.
//!
//! The process first limits itself (address space and CPU seconds, `setrlimit`, inherited by
//! nothing since it starts no children), then reads the file from standard input, extracts
//! it, and writes the [`Document`](crate::Document) as JSON to standard output. Exit codes:
//! 0 with the document; [`EXIT_REFUSED`] with the reason as one line on standard error (the
//! file is bad: not UTF-8, malformed, a bomb); [`EXIT_USAGE`] for bad arguments. Anything
//! else (a panic's 101, a signal from an abort, a stack overflow, the CPU limit or the
//! caller's kill) means the parser died on the file: the caller records that as the reason.

use std::io::{Read, Write};
use std::process::ExitCode;

use rlimit::Resource;

use crate::{Limits, MediaType, extract};

/// Exit code of a refused file (reason on standard error).
pub const EXIT_REFUSED: u8 = 2;
/// Exit code of bad arguments.
pub const EXIT_USAGE: u8 = 64;

/// The worker's limits and input.
#[derive(Debug, Clone)]
pub struct Args {
    /// The sniffed format.
    pub media_type: MediaType,
    /// Address-space limit, in MiB.
    pub memory_mib: u64,
    /// CPU-time limit, in seconds.
    pub cpu_seconds: u64,
    /// Most input bytes read.
    pub max_input_bytes: u64,
    /// Extraction limits.
    pub limits: Limits,
}

impl Args {
    /// Default limits for `media_type`: 1 GiB of address space, 60 CPU seconds, 200 MB in.
    pub fn new(media_type: MediaType) -> Self {
        Self {
            media_type,
            memory_mib: 1024,
            cpu_seconds: 60,
            max_input_bytes: 200 * 1024 * 1024,
            limits: Limits::default(),
        }
    }

    /// The command-line arguments that give these values to the worker.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--media-type".into(),
            self.media_type.name().into(),
            "--memory-mib".into(),
            self.memory_mib.to_string(),
            "--cpu-seconds".into(),
            self.cpu_seconds.to_string(),
            "--max-input-bytes".into(),
            self.max_input_bytes.to_string(),
            "--max-chars".into(),
            self.limits.max_chars.to_string(),
            "--max-inflated-bytes".into(),
            self.limits.max_inflated_bytes.to_string(),
            "--max-pages".into(),
            self.limits.max_pages.to_string(),
        ]
    }

    /// Parses [`Args::to_args`]'s form.
    ///
    /// # Errors
    /// A message naming the bad argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = Self::new(MediaType::PlainText);
        let mut media = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number"))
            };
            match flag.as_str() {
                "--media-type" => {
                    media = Some(
                        MediaType::from_name(value)
                            .ok_or_else(|| format!("unknown media type `{value}`"))?,
                    );
                }
                "--memory-mib" => parsed.memory_mib = number()?,
                "--cpu-seconds" => parsed.cpu_seconds = number()?,
                "--max-input-bytes" => parsed.max_input_bytes = number()?,
                "--max-chars" => {
                    parsed.limits.max_chars = usize::try_from(number()?).unwrap_or(usize::MAX)
                }
                "--max-inflated-bytes" => parsed.limits.max_inflated_bytes = number()?,
                "--max-pages" => {
                    parsed.limits.max_pages = usize::try_from(number()?).unwrap_or(usize::MAX)
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        parsed.media_type = media.ok_or("--media-type is required")?;
        Ok(parsed)
    }
}

/// The worker's `main`: limit, read, extract, answer.
pub fn main(args: &[String]) -> ExitCode {
    let args = match Args::parse(args) {
        Ok(args) => args,
        Err(message) => return fail(EXIT_USAGE, &message),
    };
    let memory = args.memory_mib.saturating_mul(1024 * 1024);
    if let Err(e) = rlimit::setrlimit(Resource::AS, memory, memory)
        .and_then(|()| rlimit::setrlimit(Resource::CPU, args.cpu_seconds, args.cpu_seconds + 1))
    {
        return fail(EXIT_USAGE, &format!("cannot limit the worker: {e}"));
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .lock()
        .take(args.max_input_bytes + 1)
        .read_to_end(&mut bytes)
    {
        return fail(EXIT_USAGE, &format!("reading the file: {e}"));
    }
    if bytes.len() as u64 > args.max_input_bytes {
        return fail(EXIT_REFUSED, "the file is larger than the worker accepts");
    }
    match extract(&bytes, args.media_type, &args.limits) {
        Ok(document) => {
            let mut out = std::io::stdout().lock();
            match serde_json::to_writer(&mut out, &document)
                .map_err(std::io::Error::from)
                .and_then(|()| out.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(EXIT_USAGE, &format!("writing the answer: {e}")),
            }
        }
        Err(e) => fail(EXIT_REFUSED, &e.to_string()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let mut args = Args::new(MediaType::Docx);
        args.memory_mib = 512;
        args.limits.max_pages = 7;
        let parsed =
            Args::parse(&args.to_args()).unwrap_or_else(|_| Args::new(MediaType::PlainText));
        assert_eq!(parsed.media_type, MediaType::Docx);
        assert_eq!((parsed.memory_mib, parsed.limits.max_pages), (512, 7));
        assert!(Args::parse(&["--media-type".into(), "exe".into()]).is_err());
    }
}
