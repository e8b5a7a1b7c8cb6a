//! The worker binary against the fixture corpora (`tests/fixtures/content/`): every good
//! document comes out with its headings and search phrases; every hostile one is refused at
//! sniffing, refused by the worker with a reason, or kills only the worker, within its limits.
//! A few hostile files may also be read correctly by a careful parser: then only the quoted
//! text may come out (hostile/README.md lists them).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trellis_extract::worker::{Args, EXIT_REFUSED};
use trellis_extract::{Document, MediaType, sniff};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/content")
}

#[derive(Debug)]
enum Outcome {
    Extracted(Document),
    Refused(String),
    Died(String),
}

/// Runs the worker binary over `bytes` with the service's limits and a wall-clock timeout.
fn run(bytes: Vec<u8>, media_type: MediaType, timeout: Duration) -> Outcome {
    let mut args = Args::new(media_type);
    args.memory_mib = 1024;
    args.cpu_seconds = 60;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trellis-extract"))
        .args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    match status {
        None => Outcome::Died(format!("timed out after {timeout:?}")),
        Some(s) if s.success() => match serde_json::from_slice(&out) {
            Ok(document) => Outcome::Extracted(document),
            Err(e) => Outcome::Died(format!("unreadable answer: {e}")),
        },
        Some(s) if s.code() == Some(i32::from(EXIT_REFUSED)) => {
            Outcome::Refused(err.trim().to_owned())
        }
        Some(s) => Outcome::Died(format!("{s}: {}", err.lines().last().unwrap_or_default())),
    }
}

fn text_of(document: &Document) -> String {
    let mut text = String::new();
    for section in &document.sections {
        if let Some(heading) = &section.heading {
            text.push_str(heading);
            text.push('\n');
        }
        for paragraph in &section.paragraphs {
            text.push_str(&paragraph.text);
            text.push('\n');
        }
    }
    text
}

const HEADINGS: [&str; 5] = [
    "The Python Tutorial",
    "Whetting Your Appetite",
    "Defining Functions",
    "Classes",
    "Python Scopes and Namespaces",
];

const PHRASES: [&str; 5] = [
    "rapid application development in many areas",
    "support for large programs than shell scripts",
    "function body can optionally be a string",
    "a means of bundling data and functionality",
    "Class definitions play some neat tricks with",
];

#[test]
fn every_good_document_yields_its_headings_and_text() {
    for (file, expected, headed) in [
        ("guide.md", MediaType::Markdown, true),
        ("guide.html", MediaType::Html, true),
        ("guide.rst", MediaType::Restructuredtext, true),
        ("guide.pdf", MediaType::Pdf, true),
        ("guide.docx", MediaType::Docx, true),
        ("guide.txt", MediaType::PlainText, false),
        ("lecture.srt", MediaType::Srt, false),
        ("lecture.vtt", MediaType::Webvtt, false),
    ] {
        let bytes = std::fs::read(fixtures().join("good").join(file)).expect("fixture");
        let media_type = sniff(&bytes, Some(file), None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(media_type, expected, "{file}");
        let Outcome::Extracted(document) = run(bytes, media_type, Duration::from_secs(60)) else {
            panic!("{file} was not extracted");
        };
        let text = text_of(&document);
        for phrase in PHRASES {
            assert!(
                text.contains(phrase),
                "{file}: `{phrase}` missing from\n{text}"
            );
        }
        assert!(
            !text.contains("canary"),
            "{file}: script or nav text leaked"
        );
        if headed {
            let headings: Vec<&str> = document
                .sections
                .iter()
                .filter_map(|s| s.heading.as_deref())
                .collect();
            assert_eq!(headings, HEADINGS, "{file}");
            assert_eq!(
                document
                    .sections
                    .iter()
                    .find(|s| s.heading.is_some())
                    .map(|s| s.level),
                Some(1),
                "{file}"
            );
        }
        if expected == MediaType::Srt || expected == MediaType::Webvtt {
            assert!(
                document.sections[0]
                    .paragraphs
                    .iter()
                    .all(|p| p.span_ms.is_some()),
                "{file}: cue times"
            );
        }
    }
}

#[test]
fn every_hostile_file_is_refused_at_sniffing_or_fails_inside_the_worker() {
    // (file, refused at sniffing, text a careful parser may extract instead of failing)
    let corpus: &[(&str, bool, Option<&str>)] = &[
        ("empty.txt", true, None),
        ("random.bin", true, None),
        ("not_a_zip.docx", true, None),
        ("lies_pdf.pdf", true, None),
        ("lies_docx.docx", true, None),
        ("elf.md", true, None),
        ("invalid_utf8_head.txt", true, None),
        ("invalid_utf8.txt", false, None),
        ("invalid_utf8.md", false, None),
        ("broken_timestamps.srt", false, None),
        ("broken_timestamps.vtt", false, None),
        (
            "truncated.pdf",
            false,
            Some("Hostile corpus sample page one."),
        ),
        (
            "deeply_nested.pdf",
            false,
            Some("A page whose dictionary nests 100000 levels deep."),
        ),
        (
            "deep_pages_tree.pdf",
            false,
            Some("The only page, 100000 levels down."),
        ),
        (
            "pages_cycle.pdf",
            false,
            Some("A page in a pages tree that contains itself."),
        ),
        ("inflate_bomb.pdf", false, None),
        (
            "huge_xref_w.pdf",
            false,
            Some("A page behind an absurd cross-reference stream."),
        ),
        ("zip_bomb.docx", false, None),
        ("zip_bomb_lying_size.docx", false, None),
        ("fake_zip_header.docx", false, None),
        (
            "docx_nested.docx",
            false,
            Some("A paragraph 100000 elements deep."),
        ),
        ("nested_100k.html", false, Some("Text 100000 divs deep.")),
        ("nested_lists.md", false, Some("a quote 100000 levels deep")),
    ];
    let mut report = Vec::new();
    for &(file, refused_at_sniffing, may_extract) in corpus {
        let bytes = std::fs::read(fixtures().join("hostile").join(file)).expect("fixture");
        let sniffed = sniff(&bytes, Some(file), None);
        if refused_at_sniffing {
            assert!(
                sniffed.is_err(),
                "{file} should be refused at upload, sniffed as {sniffed:?}"
            );
            report.push(format!(
                "{file}: refused at upload: {}",
                sniffed.err().map(|e| e.to_string()).unwrap_or_default()
            ));
            continue;
        }
        let media_type = sniffed.unwrap_or_else(|e| panic!("{file} should pass sniffing: {e}"));
        let started = Instant::now();
        let size = bytes.len();
        let outcome = run(bytes, media_type, Duration::from_secs(90));
        let took = started.elapsed();
        match &outcome {
            Outcome::Refused(reason) => {
                assert!(!reason.is_empty(), "{file}: a refusal without a reason")
            }
            Outcome::Died(_) => {}
            Outcome::Extracted(document) => {
                let text = text_of(document);
                let expected = may_extract.unwrap_or_else(|| {
                    panic!(
                        "{file} must not be extracted: {}",
                        &text[..text.len().min(200)]
                    )
                });
                assert!(
                    text.contains(expected),
                    "{file}: extracted without `{expected}`"
                );
                // Leftover markers may remain (brackets, asterisks), never more than came in.
                assert!(
                    text.len() <= size,
                    "{file}: more text than bytes ({} > {size})",
                    text.len()
                );
            }
        }
        report.push(format!(
            "{file}: {} in {took:.1?}",
            match outcome {
                Outcome::Refused(r) => format!("refused: {r}"),
                Outcome::Died(d) => format!("worker died: {d}"),
                Outcome::Extracted(_) => "extracted the quoted text".into(),
            }
        ));
    }
    // `cargo test -- --nocapture` shows what each file did.
    eprintln!("{}", report.join("\n"));
}
