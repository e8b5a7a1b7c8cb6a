//! WebVTT and SRT transcripts, hand-rolled (the formats are line-based and tiny): cues with
//! their times, tags stripped, grouped into paragraphs at pauses of two seconds or more (or
//! every ~120 words), so a transcript's "paragraphs" are stretches of continuous speech. A
//! malformed timing line fails the file, naming the line.

use crate::document::{Builder, count_words};
use crate::{Document, ExtractError, Limits};

/// A pause that ends a group of cues.
const PAUSE_MS: u64 = 2_000;
/// Words after which a group ends anyway.
const GROUP_WORDS: usize = 120;

struct Cue {
    start: u64,
    end: u64,
    text: String,
}

pub(crate) fn extract_vtt(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let mut lines = text.lines().enumerate().peekable();
    match lines.next() {
        Some((_, first)) if first.starts_with("WEBVTT") => {}
        _ => {
            return Err(ExtractError::Malformed(
                "line 1: a WebVTT file starts with WEBVTT".into(),
            ));
        }
    }
    // The header runs to the first blank line.
    while lines.next_if(|(_, l)| !l.trim().is_empty()).is_some() {}
    let mut cues = Vec::new();
    for block in blocks(lines) {
        let first = block[0].1;
        let comment = ["NOTE", "STYLE", "REGION"]
            .iter()
            .any(|k| first == *k || first.starts_with(&format!("{k} ")));
        if comment {
            continue;
        }
        // An optional identifier line, then the timing line.
        let timing = block
            .iter()
            .position(|(_, l)| l.contains("-->"))
            .filter(|&i| i <= 1)
            .unwrap_or(usize::MAX);
        cues.push(cue(&block, timing, '.')?);
    }
    group(cues, limits)
}

pub(crate) fn extract_srt(text: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let mut cues = Vec::new();
    for block in blocks(text.lines().enumerate()) {
        // A cue number, then the timing line.
        let timing = usize::from(block[0].1.trim().bytes().all(|b| b.is_ascii_digit()));
        cues.push(cue(&block, timing, ',')?);
    }
    group(cues, limits)
}

/// Runs of non-blank lines, each line with its index.
fn blocks<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Vec<Vec<(usize, &'a str)>> {
    let mut out = Vec::new();
    let mut block = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            if !block.is_empty() {
                out.push(std::mem::take(&mut block));
            }
        } else {
            block.push((n, line));
        }
    }
    if !block.is_empty() {
        out.push(block);
    }
    out
}

/// The cue of a block whose timing line is at `timing` (`sep` before the milliseconds).
fn cue(block: &[(usize, &str)], timing: usize, sep: char) -> Result<Cue, ExtractError> {
    let Some(&(n, line)) = block.get(timing) else {
        let first = block.first().map_or(0, |(n, _)| *n);
        return Err(line_error(first, "a cue without a timing line"));
    };
    let (start, end) = timing_line(line, sep).map_err(|why| line_error(n, &why))?;
    let text: Vec<&str> = block[timing + 1..].iter().map(|(_, l)| *l).collect();
    Ok(Cue {
        start,
        end,
        text: strip_tags(&text.join(" ")),
    })
}

fn line_error(n: usize, why: &str) -> ExtractError {
    ExtractError::Malformed(format!("line {}: {why}", n + 1))
}

fn group(cues: Vec<Cue>, limits: &Limits) -> Result<Document, ExtractError> {
    if cues.is_empty() {
        return Err(ExtractError::NoText);
    }
    let mut builder = Builder::new(limits);
    let mut text = String::new();
    let mut span: Option<[u64; 2]> = None;
    for cue in cues {
        if let Some([start, end]) = span {
            let pause = cue.start.saturating_sub(end);
            if pause >= PAUSE_MS || count_words(&text) >= GROUP_WORDS {
                builder.timed(&text, [start, end])?;
                text.clear();
                span = None;
            }
        }
        text.push_str(&cue.text);
        text.push(' ');
        span = Some(span.map_or([cue.start, cue.end], |[s, e]| [s, e.max(cue.end)]));
    }
    if let Some(span) = span {
        builder.timed(&text, span)?;
    }
    Ok(builder.finish())
}

/// `start --> end [settings]`, with `sep` before the milliseconds (`.` in WebVTT, `,` in SRT).
fn timing_line(line: &str, sep: char) -> Result<(u64, u64), String> {
    let (start, rest) = line
        .split_once("-->")
        .ok_or_else(|| "expected `start --> end`".to_owned())?;
    let end = rest.split_whitespace().next().unwrap_or_default();
    let start = timestamp(start.trim(), sep)?;
    let end = timestamp(end, sep)?;
    if end < start {
        return Err("a cue ends before it starts".into());
    }
    Ok((start, end))
}

/// `[hh:]mm:ss<sep>mmm` in milliseconds.
fn timestamp(text: &str, sep: char) -> Result<u64, String> {
    let bad = || {
        format!(
            "malformed timestamp `{}`",
            text.chars().take(40).collect::<String>()
        )
    };
    let (clock, millis) = text.split_once(sep).ok_or_else(bad)?;
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |s: &str, max: u64| -> Result<u64, String> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u64>().ok().filter(|v| *v <= max).ok_or_else(bad)
    };
    let (hours, minutes, seconds) = match parts.as_slice() {
        [h, m, s] => (number(h, 999)?, number(m, 59)?, number(s, 59)?),
        [m, s] => (0, number(m, 59)?, number(s, 59)?),
        _ => return Err(bad()),
    };
    if millis.len() != 3 {
        return Err(bad());
    }
    let millis = number(millis, 999)?;
    Ok(((hours * 60 + minutes) * 60 + seconds) * 1_000 + millis)
}

fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_cues_group_at_pauses_and_skip_notes() {
        let vtt = "WEBVTT - lecture\n\nNOTE a comment\nspanning lines\n\n1\n00:00:01.000 --> 00:00:03.500 align:start\n<v Ann>Hello <b>there</b>.\n\n00:03.600 --> 00:05.000\nSecond cue.\n\n00:00:09.000 --> 00:00:10.000\nAfter a pause.\n";
        let doc = extract_vtt(vtt, &Limits::default()).unwrap_or_default();
        let paragraphs: Vec<_> = doc.sections[0]
            .paragraphs
            .iter()
            .map(|p| (p.text.as_str(), p.span_ms))
            .collect();
        assert_eq!(
            paragraphs,
            [
                ("Hello there. Second cue.", Some([1_000, 5_000])),
                ("After a pause.", Some([9_000, 10_000]))
            ]
        );
    }

    #[test]
    fn srt_cues_are_read_and_broken_timings_name_their_line() {
        let srt = "1\n00:00:01,000 --> 00:00:02,000\nOne.\n\n2\n00:00:02,100 --> 00:00:04,000\nTwo\nlines.\n";
        let doc = extract_srt(srt, &Limits::default()).unwrap_or_default();
        assert_eq!(doc.sections[0].paragraphs[0].text, "One. Two lines.");
        let broken = "1\n00:00:05,000 --> 00:00:02,000\nBackwards.\n";
        assert_eq!(
            extract_srt(broken, &Limits::default()),
            Err(ExtractError::Malformed(
                "line 2: a cue ends before it starts".into()
            ))
        );
        let garbage = "1\n00:99:01,000 --> 00:00:02,000\nX\n";
        assert!(
            matches!(extract_srt(garbage, &Limits::default()), Err(ExtractError::Malformed(m)) if m.starts_with("line 2"))
        );
        assert!(matches!(
            extract_vtt("WEBVTT\n\nno timing here\n", &Limits::default()),
            Err(ExtractError::Malformed(_))
        ));
    }
}
