//! `trellis eval atomizer`: the offline evaluation of docs/atomization.md.
//!
//! Real documents, fetched on demand from Debian packages (`apt-get download`, then
//! `dpkg-deb -x`, into a cache folder; never by the run or test commands): the Python 3.11
//! documentation's reST sources, the Node.js Markdown API docs, PostgreSQL's HTML manual and
//! R's PDF manuals (pdfTeX: headings only by font size).
//!
//! - **Segmentation.** Each document is extracted as Trellis extracts uploads; its sections
//!   are the reference (every heading a boundary, paragraphs the units). With the headings
//!   stripped, the atomizer's segmenter, a lexical-only ablation, a fixed-size chunker and
//!   TextTiling cut the paragraphs; Pk and WindowDiff (segeval's conventions, validated
//!   against its values) score each against the reference. Lower is better.
//! - **Prerequisites.** The Python tutorial's chapters are atomized in the tutorial's order,
//!   each with the earlier chapters' atoms known; a chapter depends on another when one of
//!   its atoms names an atom of the other as a prerequisite. The reference is the tutorial's
//!   own `:ref:` links to earlier chapters. Precision, recall and F1 against "the previous
//!   chapter" and "every earlier chapter" baselines.

// The tables on stdout are this command's output.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Args;
use trellis_atomizer::eval::{fixed_size, masses_from_cuts, pk, text_tiling, window_diff};
use trellis_atomizer::segment;
use trellis_atomizer::{Input, KnownAtom};
use trellis_embed::Embedder;
use trellis_extract::{Document, Limits, MediaType, Paragraph};
use uuid::Uuid;

/// Options of `trellis eval atomizer`.
#[derive(Debug, Args)]
pub struct EvalAtomizerArgs {
    /// Where the Debian packages are downloaded and unpacked.
    #[arg(long, default_value = ".trellis/eval-data")]
    cache: PathBuf,
    /// Documents per corpus (the first ones by name with at least 3 sections and 12
    /// paragraphs).
    #[arg(long, default_value_t = 25)]
    docs: usize,
    /// Words per chunk of the fixed-size baseline (the atomizer's target length).
    #[arg(long, default_value_t = segment::TARGET_WORDS)]
    chunk_words: usize,
    /// Only the prerequisite evaluation (the segmentation tables take minutes).
    #[arg(long)]
    prerequisites_only: bool,
    /// Only the corpora whose name contains this (`PDF`, `reST`, …).
    #[arg(long)]
    corpus: Option<String>,
}

const PACKAGES: &[&str] = &[
    "python3.11-doc",
    "nodejs-doc",
    "postgresql-doc-15",
    "r-doc-pdf",
];

/// PDFs larger than this are left out (R's 3,000-page reference manual).
const PDF_MAX_BYTES: u64 = 4 << 20;

/// Downloads and unpacks the packages once; returns the unpacked root.
fn fetch(cache: &Path) -> anyhow::Result<PathBuf> {
    let root = cache.join("root");
    // Named by the package list: a cache unpacked for fewer packages is completed.
    let done = cache.join(format!(".unpacked-{}", PACKAGES.len()));
    if done.exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(cache)?;
    eprintln!(
        "[eval] downloading {} with apt-get into {}",
        PACKAGES.join(", "),
        cache.display()
    );
    let status = Command::new("apt-get")
        .arg("download")
        .args(PACKAGES)
        .current_dir(cache)
        .status()
        .context("running apt-get download (Debian/Ubuntu only)")?;
    if !status.success() {
        bail!("apt-get download failed ({status}); run `apt-get update` first");
    }
    for entry in std::fs::read_dir(cache)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            let status = Command::new("dpkg-deb")
                .arg("-x")
                .arg(&path)
                .arg(&root)
                .status()?;
            if !status.success() {
                bail!("dpkg-deb -x {} failed", path.display());
            }
        }
    }
    std::fs::write(&done, b"")?;
    Ok(root)
}

/// A document of a corpus.
struct Doc {
    name: String,
    document: Document,
}

/// The corpora (those whose name contains `only`, when given), each with its first `limit`
/// documents that have enough structure.
fn corpus(
    root: &Path,
    limit: usize,
    only: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, Vec<Doc>)>> {
    let python = root.join("usr/share/doc/python3.11/html/_sources/library");
    let node = root.join("usr/share/doc/nodejs/api");
    let postgres = root.join("usr/share/doc/postgresql-doc-15/html");
    let r = root.join("usr/share/doc/r-doc-pdf/manual");
    let mut out = Vec::new();
    for (name, dir, suffix, media) in [
        (
            "python-library (reST)",
            python,
            ".rst.txt",
            MediaType::Restructuredtext,
        ),
        ("nodejs-api (Markdown)", node, ".md.gz", MediaType::Markdown),
        (
            "postgresql-manual (HTML)",
            postgres,
            ".html",
            MediaType::Html,
        ),
        ("r-manuals (PDF)", r, ".pdf", MediaType::Pdf),
    ] {
        if only.is_some_and(|only| !name.contains(only)) {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .filter(|p| {
                media != MediaType::Pdf
                    || std::fs::metadata(p).is_ok_and(|m| m.len() <= PDF_MAX_BYTES)
            })
            .collect();
        files.sort();
        let mut docs = Vec::new();
        for file in files {
            if docs.len() == limit {
                break;
            }
            let bytes = if suffix.ends_with(".gz") {
                Command::new("gzip").arg("-dc").arg(&file).output()?.stdout
            } else {
                std::fs::read(&file)?
            };
            let Ok(document) = trellis_extract::extract(&bytes, media, &Limits::default()) else {
                continue;
            };
            let sections: Vec<_> = document
                .sections
                .iter()
                .filter(|s| !s.paragraphs.is_empty())
                .collect();
            let paragraphs: usize = sections.iter().map(|s| s.paragraphs.len()).sum();
            if sections.len() >= 3 && paragraphs >= 12 {
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                docs.push(Doc { name, document });
            }
        }
        out.push((name, docs));
    }
    Ok(out)
}

#[derive(Default)]
struct Totals {
    pk: f64,
    wd: f64,
    segments: usize,
    n: usize,
}

impl Totals {
    fn add(&mut self, hypothesis: &[usize], reference: &[usize]) {
        self.pk += pk(hypothesis, reference, None);
        self.wd += window_diff(hypothesis, reference, None, false);
        self.segments += hypothesis.len();
        self.n += 1;
    }
}

/// Runs the evaluation and prints its tables.
///
/// # Errors
/// Fetching, reading or embedding failures.
pub fn run(args: &EvalAtomizerArgs) -> anyhow::Result<()> {
    let root = fetch(&args.cache)?;
    let model = trellis_embed::MiniLm::load(&trellis_embed::model_dir_from_env())
        .context("loading the embedding model (scripts/fetch-model installs it)")?;
    if args.prerequisites_only {
        return prerequisites(&root, &model);
    }
    println!(
        "## Segmentation: Pk and WindowDiff against the documents' own sections (lower is better)\n"
    );
    println!(
        "| corpus | documents | method | Pk | WindowDiff | segments per document (reference) |"
    );
    println!("|---|---:|---|---:|---:|---:|");
    for (name, docs) in corpus(&root, args.docs, args.corpus.as_deref())? {
        let mut methods: Vec<(&str, Totals)> = [
            "atomizer (cohesion + MiniLM + length prior)",
            "atomizer, lexical only",
            "fixed size",
            "TextTiling",
        ]
        .into_iter()
        .map(|m| (m, Totals::default()))
        .collect();
        let mut reference_segments = 0;
        for doc in &docs {
            let paragraphs: Vec<Paragraph> = doc
                .document
                .sections
                .iter()
                .flat_map(|s| s.paragraphs.iter().cloned())
                .collect();
            let reference: Vec<usize> = doc
                .document
                .sections
                .iter()
                .map(|s| s.paragraphs.len())
                .filter(|&n| n > 0)
                .collect();
            reference_segments += reference.len();
            // One unit per paragraph, as the reference counts them.
            let units: Vec<segment::Unit> = paragraphs
                .iter()
                .map(|p| segment::Unit {
                    words: p.text.split_whitespace().count(),
                    text: p.text.clone(),
                    span_ms: None,
                })
                .collect();
            let texts: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
            let vectors = model
                .embed(&texts)
                .with_context(|| format!("embedding {}", doc.name))?;
            let ours = segment::split(&units, &segment::cohesion(&units, &vectors));
            let lexical = segment::split(&units, &segment::cohesion(&units, &[]));
            let to_masses = |ranges: Vec<std::ops::Range<usize>>| -> Vec<usize> {
                masses_from_cuts(
                    units.len(),
                    &ranges.iter().map(|r| r.start).collect::<Vec<_>>(),
                )
            };
            let words: Vec<usize> = units.iter().map(|u| u.words).collect();
            let hypotheses = [
                to_masses(ours),
                to_masses(lexical),
                fixed_size(&words, args.chunk_words),
                text_tiling(&texts, 2),
            ];
            for ((_, totals), hypothesis) in methods.iter_mut().zip(&hypotheses) {
                totals.add(hypothesis, &reference);
            }
        }
        let n = docs.len().max(1) as f64;
        for (method, totals) in &methods {
            println!(
                "| {name} | {} | {method} | {:.3} | {:.3} | {:.1} ({:.1}) |",
                docs.len(),
                totals.pk / n,
                totals.wd / n,
                totals.segments as f64 / n,
                reference_segments as f64 / n,
            );
        }
    }
    prerequisites(&root, &model)
}

/// Chapter-level prerequisite edges of the Python tutorial against its `:ref:` links.
fn prerequisites(root: &Path, model: &trellis_embed::MiniLm) -> anyhow::Result<()> {
    let dir = root.join("usr/share/doc/python3.11/html/_sources/tutorial");
    let index = std::fs::read_to_string(dir.join("index.rst.txt"))?;
    let chapters: Vec<String> = index
        .lines()
        .skip_while(|l| !l.starts_with(".. toctree::"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
        .take_while(|l| !l.starts_with(".."))
        .map(|l| l.trim_end_matches(".rst").to_owned())
        .collect();
    let sources: Vec<String> = chapters
        .iter()
        .map(|c| std::fs::read_to_string(dir.join(format!("{c}.rst.txt"))).unwrap_or_default())
        .collect();
    // Labels each chapter defines, and the chapters each chapter's :ref: links reach.
    let mut label_chapter: HashMap<String, usize> = HashMap::new();
    for (i, source) in sources.iter().enumerate() {
        for line in source.lines() {
            if let Some(label) = line
                .trim()
                .strip_prefix(".. _")
                .and_then(|l| l.strip_suffix(':'))
            {
                label_chapter.insert(label.to_lowercase(), i);
            }
        }
    }
    let mut truth: BTreeSet<(usize, usize)> = BTreeSet::new();
    // Chapters linked either way: related, whichever comes first.
    let mut related: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut forward = 0;
    for (i, source) in sources.iter().enumerate() {
        for piece in source.split(":ref:`").skip(1) {
            let inner = piece.split('`').next().unwrap_or_default();
            let label = match (inner.rfind('<'), inner.ends_with('>')) {
                (Some(lt), true) => &inner[lt + 1..inner.len() - 1],
                _ => inner,
            };
            if let Some(&j) = label_chapter.get(&label.to_lowercase()) {
                if i != j {
                    related.insert((i.max(j), i.min(j)));
                }
                match j.cmp(&i) {
                    std::cmp::Ordering::Less => {
                        truth.insert((i, j));
                    }
                    std::cmp::Ordering::Greater => forward += 1,
                    std::cmp::Ordering::Equal => {}
                }
            }
        }
    }
    // Atomize chapter by chapter, each knowing the earlier chapters' atoms.
    let mut known: Vec<(usize, KnownAtom)> = Vec::new();
    let mut predicted: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut atoms_total = 0;
    for (i, source) in sources.iter().enumerate() {
        let document = trellis_extract::extract(
            source.as_bytes(),
            MediaType::Restructuredtext,
            &Limits::default(),
        )
        .with_context(|| format!("extracting {}", chapters[i]))?;
        let input = Input {
            content_id: Uuid::new_v5(&Uuid::NAMESPACE_URL, chapters[i].as_bytes()),
            content_version: 1,
            document: &document,
            title: &chapters[i],
        };
        let mut atoms = trellis_atomizer::atomize(&input, model)?;
        let known_atoms: Vec<KnownAtom> = known.iter().map(|(_, k)| k.clone()).collect();
        trellis_atomizer::add_outside_prerequisites(&mut atoms, &known_atoms);
        let chapter_of: HashMap<Uuid, usize> = known.iter().map(|(c, k)| (k.id, *c)).collect();
        for atom in &atoms {
            for p in &atom.prerequisites {
                if let Some(&j) = chapter_of.get(p) {
                    predicted.insert((i, j));
                }
            }
        }
        atoms_total += atoms.len();
        known.extend(atoms.iter().map(|a| {
            (
                i,
                KnownAtom {
                    id: a.id,
                    concepts: a.concepts.iter().map(|c| c.phrase.clone()).collect(),
                },
            )
        }));
    }
    let n = chapters.len();
    let previous: BTreeSet<(usize, usize)> = (1..n).map(|i| (i, i - 1)).collect();
    let earlier: BTreeSet<(usize, usize)> =
        (1..n).flat_map(|i| (0..i).map(move |j| (i, j))).collect();
    println!(
        "\n## Prerequisites: the Python tutorial ({n} chapters in its order, {atoms_total} atoms)\n"
    );
    println!(
        "Reference: {} chapter pairs linked by `:ref:` to an earlier chapter ({forward} links point forward and are not prerequisites).\n",
        truth.len()
    );
    println!("| method | edges | precision | recall | F1 |");
    println!("|---|---:|---:|---:|---:|");
    let score = |edges: &BTreeSet<(usize, usize)>, truth: &BTreeSet<(usize, usize)>| {
        let hit = edges.intersection(truth).count() as f64;
        let precision = if edges.is_empty() {
            0.0
        } else {
            hit / edges.len() as f64
        };
        let recall = if truth.is_empty() {
            0.0
        } else {
            hit / truth.len() as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (precision, recall, f1)
    };
    let methods = [
        ("atomizer (shared concepts)", &predicted),
        ("previous chapter", &previous),
        ("every earlier chapter", &earlier),
    ];
    for (method, edges) in methods {
        let (precision, recall, f1) = score(edges, &truth);
        println!(
            "| {method} | {} | {precision:.3} | {recall:.3} | {f1:.3} |",
            edges.len()
        );
    }
    println!(
        "\nRelatedness: {} chapter pairs linked by `:ref:` in either direction (the later chapter of each pair is taken as the dependent).\n",
        related.len()
    );
    println!("| method | edges | precision | recall | F1 |");
    println!("|---|---:|---:|---:|---:|");
    for (method, edges) in methods {
        let (precision, recall, f1) = score(edges, &related);
        println!(
            "| {method} | {} | {precision:.3} | {recall:.3} | {f1:.3} |",
            edges.len()
        );
    }
    let pairs: Vec<String> = predicted
        .iter()
        .map(|(i, j)| format!("{} → {}", chapters[*i], chapters[*j]))
        .collect();
    println!("\nPredicted chapter dependencies: {}", pairs.join(", "));
    Ok(())
}
