//! Lexicon-based sentiment and extractive summaries for customer
//! conversations in English, Spanish, Portuguese and Indonesian, with no
//! network and no dependencies.
//!
//! Inputs are bounded: only the first 4,000 characters of each message and
//! the last 200 turns of a conversation are looked at.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod detect;
mod index;
mod sentiment;
mod summary;
mod text;
mod words;

#[cfg(test)]
mod tests;

use detect::Evidence;
use sentiment::{Tally, tally};
use text::tokens;

/// Most turns of a conversation looked at (the most recent ones).
const MAX_TURNS: usize = 200;
/// Weighted hits each side needs before a conversation can read as mixed.
const MIXED_MIN_HITS: f32 = 2.0;
/// Scores closer to zero than this, with enough hits both ways, read as mixed.
const MIXED_MAX_SCORE: f32 = 0.25;
/// Scores at least this far from zero read as positive or negative.
const POLAR_SCORE: f32 = 0.2;

/// A language the lexicons cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English.
    English,
    /// Spanish.
    Spanish,
    /// Portuguese.
    Portuguese,
    /// Indonesian.
    Indonesian,
}

impl Language {
    /// Every covered language.
    pub(crate) const ALL: [Language; 4] = [
        Language::English,
        Language::Spanish,
        Language::Portuguese,
        Language::Indonesian,
    ];

    /// Its ISO 639-1 code ("en", "es", "pt", "id").
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Spanish => "es",
            Language::Portuguese => "pt",
            Language::Indonesian => "id",
        }
    }
}

/// How a conversation reads overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Mostly negative.
    Negative,
    /// Neither positive nor negative.
    Neutral,
    /// Mostly positive.
    Positive,
    /// Clearly both positive and negative.
    Mixed,
}

/// One message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn<'a> {
    /// True when the customer sent it.
    pub inbound: bool,
    /// Its text.
    pub text: &'a str,
}

/// What the lexicon makes of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Overall sentiment, from -1.0 (negative) to 1.0 (positive).
    pub score: f32,
    /// Positive hits, weighted and rounded.
    pub positive: u32,
    /// Negative hits, weighted and rounded.
    pub negative: u32,
    /// The language of the text, if there was enough evidence.
    pub language: Option<Language>,
}

/// What the lexicon makes of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// How the customer's messages read overall.
    pub label: Label,
    /// Overall sentiment of the customer's messages, from -1.0 to 1.0.
    pub score: f32,
    /// The customer's most telling sentences, at most 300 characters.
    pub summary: String,
    /// The language of the conversation, if there was enough evidence.
    pub language: Option<Language>,
}

/// Read one text.
pub fn read(text: &str) -> Reading {
    let tokens = tokens(text);
    let mut evidence = Evidence::default();
    evidence.add(&tokens);
    let language = evidence.verdict();
    let found = tally(&tokens, language);
    Reading {
        score: found.score(),
        positive: found.positive.round() as u32,
        negative: found.negative.round() as u32,
        language,
    }
}

/// Detect the language of a text (None when too little evidence).
pub fn language(text: &str) -> Option<Language> {
    let mut evidence = Evidence::default();
    evidence.add(&tokens(text));
    evidence.verdict()
}

/// Analyse a conversation: sentiment of the customer's messages (recent ones weigh more), and an extractive summary.
pub fn analyze(turns: &[Turn<'_>]) -> Analysis {
    let turns = turns
        .get(turns.len().saturating_sub(MAX_TURNS)..)
        .unwrap_or(turns);
    let inbound: Vec<_> = turns
        .iter()
        .filter(|t| t.inbound)
        .map(|t| {
            let tokens = tokens(t.text);
            let mut evidence = Evidence::default();
            evidence.add(&tokens);
            (tokens, evidence)
        })
        .collect();

    let mut evidence = Evidence::default();
    inbound.iter().for_each(|(_, own)| evidence.merge(own));
    let language = evidence.verdict().or_else(|| {
        turns
            .iter()
            .filter(|t| !t.inbound)
            .for_each(|t| evidence.add(&tokens(t.text)));
        evidence.verdict()
    });

    let mut total = Tally::default();
    let count = inbound.len() as f32;
    for (i, (tokens, own)) in inbound.iter().enumerate() {
        // A turn clearly in another language is read as that language.
        let found = tally(tokens, own.verdict().or(language));
        total.add_scaled(found, 1.0 + i as f32 / count);
    }
    let score = total.score();

    Analysis {
        label: label(total, score),
        score,
        summary: summary::summarize(turns, language),
        language,
    }
}

/// The label for weighted totals and their score.
fn label(total: Tally, score: f32) -> Label {
    let both = total.positive >= MIXED_MIN_HITS && total.negative >= MIXED_MIN_HITS;
    if both && score.abs() < MIXED_MAX_SCORE {
        Label::Mixed
    } else if score >= POLAR_SCORE {
        Label::Positive
    } else if score <= -POLAR_SCORE {
        Label::Negative
    } else {
        Label::Neutral
    }
}
