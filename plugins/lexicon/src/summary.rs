//! Extractive summary: the few customer sentences that say the most.

use std::collections::{BTreeMap, BTreeSet};

use crate::index::{Index, index, lookup};
use crate::sentiment::tally;
use crate::text::{MAX_CHARS, Token, Word, head, tokens};
use crate::{Language, Turn};

/// Most characters in a summary.
pub(crate) const MAX_SUMMARY_CHARS: usize = 300;
/// Most sentences in a summary.
const MAX_SENTENCES: usize = 3;
/// Fewest words a sentence needs to be considered.
const MIN_WORDS: usize = 3;
/// Fewest characters a content word has.
const MIN_CONTENT_CHARS: usize = 3;
/// Bonus per unit of sentiment weight in a sentence (capped at 3 units).
const SENTIMENT_BONUS: f32 = 0.5;
/// Bonus for a sentence holding a number (order numbers, amounts).
const NUMBER_BONUS: f32 = 1.0;
/// Bonus for the first sentence that says something: customers open with what they need.
const LEAD_BONUS: f32 = 2.0;
/// Share of content words two sentences have in common to count as duplicates.
const DUPLICATE_OVERLAP: f32 = 0.6;
/// Characters of a content word that identify it ("delivered" and
/// "delivery", "tutupnya" and "tutup" count as the same word).
const STEM_CHARS: usize = 6;

/// A sentence that may go into the summary.
#[derive(Debug)]
struct Candidate {
    /// Where it comes in the conversation.
    position: usize,
    /// Its text, whitespace collapsed.
    text: String,
    /// Its words, folded, in order.
    key: String,
    /// Its content words, stemmed.
    content: BTreeSet<String>,
    /// How much it says.
    score: f32,
}

/// Summarises the conversation: the best customer sentences, in order.
pub(crate) fn summarize(turns: &[Turn<'_>], language: Option<Language>) -> String {
    let index = index();
    let frequencies = frequencies(index, turns);
    let from = |inbound: bool| -> Vec<Candidate> {
        let texts = turns.iter().filter(|t| t.inbound == inbound);
        let sentences = texts.flat_map(|t| sentences(t.text));
        sentences
            .enumerate()
            .filter_map(|(position, text)| candidate(index, &frequencies, language, position, text))
            .collect()
    };
    let mut candidates = from(true);
    if candidates.is_empty() {
        candidates = from(false);
    }
    if let Some(lead) = candidates.iter_mut().min_by_key(|c| c.position) {
        lead.score += LEAD_BONUS;
    }
    let chosen = choose(candidates);
    clip(&chosen.join(" "), MAX_SUMMARY_CHARS)
}

/// How often each content word (stemmed) occurs over the whole conversation.
fn frequencies(index: &Index, turns: &[Turn<'_>]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for turn in turns {
        for token in tokens(turn.text) {
            if let Token::Word(word) = token
                && is_content(index, &word)
            {
                *counts.entry(stem(&word.folded)).or_insert(0u32) += 1;
            }
        }
    }
    counts
}

/// A word that carries meaning: not a stopword, negator, intensifier or
/// courtesy word, and at least three characters long.
fn is_content(index: &Index, word: &Word) -> bool {
    word.folded.chars().count() >= MIN_CONTENT_CHARS
        && !index.stopwords.contains_key(&word.lower)
        && lookup(&index.negators, &word.folded).is_none()
        && lookup(&index.intensifiers, &word.folded).is_none()
        && lookup(&index.trailing, &word.folded).is_none()
        && lookup(&index.courtesy, &word.folded).is_none()
}

/// The crude stem a content word is counted under: its first few characters.
fn stem(folded: &str) -> String {
    head(folded, STEM_CHARS).to_string()
}

/// A scored candidate, or `None` for a sentence too short or only courtesy.
fn candidate(
    index: &Index,
    frequencies: &BTreeMap<String, u32>,
    language: Option<Language>,
    position: usize,
    text: String,
) -> Option<Candidate> {
    let tokens = tokens(&text);
    let words: Vec<&Word> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w),
            _ => None,
        })
        .collect();
    if words.len() < MIN_WORDS || is_courtesy(index, &words) {
        return None;
    }
    let stems: Vec<String> = words
        .iter()
        .filter(|w| is_content(index, w))
        .map(|w| stem(&w.folded))
        .collect();
    let weight: u32 = stems
        .iter()
        .map(|s| frequencies.get(s).copied().unwrap_or(1))
        .sum();
    let content: BTreeSet<String> = stems.into_iter().collect();
    let found = tally(&tokens, language);
    let feeling = (found.positive + found.negative).min(3.0) * SENTIMENT_BONUS;
    let number = if words.iter().any(|w| w.numeric) {
        NUMBER_BONUS
    } else {
        0.0
    };
    let score = weight as f32 / (words.len() as f32).sqrt() + feeling + number;
    let key = words
        .iter()
        .map(|w| w.folded.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Candidate {
        position,
        text,
        key,
        content,
        score,
    })
}

/// Whether every word is a greeting, thanks, address or stopword.
fn is_courtesy(index: &Index, words: &[&Word]) -> bool {
    let courteous = |w: &&Word| lookup(&index.courtesy, &w.folded).is_some();
    let filler = |w: &&Word| {
        index.stopwords.contains_key(&w.lower)
            || lookup(&index.intensifiers, &w.folded).is_some()
            || lookup(&index.trailing, &w.folded).is_some()
    };
    words.iter().any(courteous) && words.iter().all(|w| courteous(w) || filler(w))
}

/// The best candidates that fit, without near-duplicates, in conversation order.
fn choose(mut candidates: Vec<Candidate>) -> Vec<String> {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.position.cmp(&b.position))
    });
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut used = 0;
    for candidate in candidates {
        if chosen.len() == MAX_SENTENCES {
            break;
        }
        if chosen.iter().any(|c| duplicates(c, &candidate)) {
            continue;
        }
        let len = candidate.text.chars().count() + usize::from(!chosen.is_empty());
        if !chosen.is_empty() && used + len > MAX_SUMMARY_CHARS {
            continue;
        }
        used += len;
        chosen.push(candidate);
    }
    chosen.sort_by_key(|c| c.position);
    chosen.into_iter().map(|c| c.text).collect()
}

/// Whether two sentences say the same thing.
fn duplicates(a: &Candidate, b: &Candidate) -> bool {
    if a.key == b.key {
        return true;
    }
    let shared = a.content.intersection(&b.content).count();
    let all = a.content.union(&b.content).count();
    all > 0 && shared as f32 / all as f32 >= DUPLICATE_OVERLAP
}

/// The sentences of a message (its first [`MAX_CHARS`] characters), each
/// trimmed, with whitespace collapsed and invisible control characters dropped.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = head(text, MAX_CHARS).chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            finish(&mut current, &mut out);
            continue;
        }
        if is_hidden(c) {
            current.push(' ');
            continue;
        }
        current.push(c);
        let ends = match c {
            '!' | '?' | '…' | '。' | '！' | '？' => true,
            '.' => chars
                .peek()
                .is_none_or(|n| n.is_whitespace() || is_terminal(*n)),
            _ => false,
        };
        if ends {
            while let Some(&n) = chars.peek().filter(|n| is_terminal(**n)) {
                current.push(n);
                chars.next();
            }
            finish(&mut current, &mut out);
        }
    }
    finish(&mut current, &mut out);
    out
}

/// Punctuation that ends a sentence.
fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

/// Control and direction-override characters, which never reach a summary.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

/// Moves the sentence gathered so far into `out`, whitespace collapsed.
fn finish(current: &mut String, out: &mut Vec<String>) {
    let text = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() {
        out.push(text);
    }
    current.clear();
}

/// The text cut to at most `max` characters, at a word break where there is
/// one, ending with "…" when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept = head(text, max.saturating_sub(1));
    let at_break = text
        .get(kept.len()..)
        .and_then(|rest| rest.chars().next())
        .is_some_and(char::is_whitespace);
    let cut = match kept.rfind(char::is_whitespace) {
        Some(end) if !at_break && end > 0 => kept.get(..end).unwrap_or(kept),
        _ => kept,
    };
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':'));
    format!("{cut}…")
}
