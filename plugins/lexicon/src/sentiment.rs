//! Sentiment: weighted positive and negative hits in a stream of tokens.

use std::collections::BTreeMap;

use crate::Language;
use crate::index::{Index, Langs, Sense, bit, index, lookup};
use crate::text::{Token, Word};

/// How many words after a negator it still reaches.
const NEGATION_REACH: u8 = 3;
/// How many words after an intensifier it still reaches.
const BOOST_REACH: u8 = 2;
/// Share of its weight a negated hit keeps, with the opposite sign.
const NEGATED: f32 = 0.8;
/// Multiplier of an intensified hit.
const INTENSIFIED: f32 = 1.5;
/// Multiplier of a word written in capitals.
const SHOUTED: f32 = 1.3;
/// Share of the last hit that "!!" adds again.
const EXCLAIMED: f32 = 0.3;
/// The longest phrase in the lexicons, in words.
const MAX_PHRASE: usize = 3;

/// Weighted positive and negative hits.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Tally {
    /// Sum of positive weights.
    pub positive: f32,
    /// Sum of negative weights (as a positive number).
    pub negative: f32,
}

impl Tally {
    /// Adds a signed weight to the matching side.
    fn add(&mut self, value: f32) {
        if value > 0.0 {
            self.positive += value;
        } else {
            self.negative -= value;
        }
    }

    /// Adds another tally, scaled.
    pub fn add_scaled(&mut self, other: Tally, scale: f32) {
        self.positive += other.positive * scale;
        self.negative += other.negative * scale;
    }

    /// Smoothed score in -1..=1: one mild word gives ±1/3, not ±1.
    pub fn score(&self) -> f32 {
        let score = (self.positive - self.negative) / (self.positive + self.negative + 2.0);
        if score.is_finite() {
            score.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }
}

/// Which lexicons apply to a text.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// Languages whose sentiment words count, in order of preference.
    words: &'static [Language],
    /// Languages whose negators and intensifiers count.
    grammar: Langs,
}

impl Scope {
    /// The scope for a text in `language` (all languages when unknown).
    /// English sentiment words count everywhere: customers mix them in.
    fn of(language: Option<Language>) -> Scope {
        use Language::*;
        let (words, grammar): (&'static [Language], Langs) = match language {
            None => (&[English, Spanish, Portuguese, Indonesian], 0b1111),
            Some(English) => (&[English], bit(English)),
            Some(Spanish) => (&[Spanish, English], bit(Spanish)),
            Some(Portuguese) => (&[Portuguese, English], bit(Portuguese)),
            Some(Indonesian) => (&[Indonesian, English], bit(Indonesian)),
        };
        Scope { words, grammar }
    }

    /// Whether a grammar word (negator, intensifier) applies.
    fn has(&self, map: &BTreeMap<String, Langs>, word: &str) -> bool {
        lookup(map, word).is_some_and(|langs| langs & self.grammar != 0)
    }
}

/// Weighs the sentiment of tokens read as `language`.
pub(crate) fn tally(tokens: &[Token], language: Option<Language>) -> Tally {
    let index = index();
    let scope = Scope::of(language);
    let mut tally = Tally::default();
    let mut negation = 0u8; // words the last negator still reaches
    let mut boost = 0u8; // words the last intensifier still reaches
    let mut last: Option<f32> = None; // the hit just before, if any
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        i += 1;
        let word = match token {
            Token::Word(word) => word,
            Token::Emoji(weight) => {
                tally.add(*weight);
                last = Some(*weight);
                continue;
            }
            Token::Bang | Token::Break => {
                if let (Token::Bang, Some(hit)) = (token, last) {
                    tally.add(hit * EXCLAIMED);
                }
                (negation, boost, last) = (0, 0, None);
                continue;
            }
        };
        let start = i - 1;
        if let Some((len, sense, shouted)) = phrase_at(index, tokens, start, scope) {
            i = start + len;
            let value = sense.value(scope.words).unwrap_or(0.0);
            let negated = negation > 0 && !sense.self_negated;
            last = hit(&mut tally, value, boost > 0, negated, shouted);
            (negation, boost) = (0, 0);
            continue;
        }
        if let (Some(previous), true) = (last, scope.has(&index.trailing, &word.folded)) {
            tally.add(previous * (INTENSIFIED - 1.0));
            last = None;
            continue;
        }
        if scope.has(&index.negators, &word.folded) {
            (negation, last) = (NEGATION_REACH, None);
            continue;
        }
        if scope.has(&index.intensifiers, &word.folded) {
            (boost, last) = (BOOST_REACH, None);
            continue;
        }
        match lookup(&index.senses, &word.folded).and_then(|s| s.value(scope.words)) {
            Some(value) if value != 0.0 => {
                last = hit(&mut tally, value, boost > 0, negation > 0, word.shouted);
                (negation, boost) = (0, 0);
            }
            _ => {
                negation = negation.saturating_sub(1);
                boost = boost.saturating_sub(1);
                last = None;
            }
        }
    }
    tally
}

/// Adds one hit to the tally and returns its signed weight (`None` when neutral).
fn hit(tally: &mut Tally, value: f32, boosted: bool, negated: bool, shouted: bool) -> Option<f32> {
    if value == 0.0 {
        return None;
    }
    let mut value = value;
    if boosted {
        value *= INTENSIFIED;
    }
    if shouted {
        value *= SHOUTED;
    }
    if negated {
        value *= -NEGATED;
    }
    tally.add(value);
    Some(value)
}

/// The longest phrase (2 to 3 words) starting at `start` that the scope knows,
/// as (length in tokens, its sense, whether any of its words is shouted).
fn phrase_at(
    index: &Index,
    tokens: &[Token],
    start: usize,
    scope: Scope,
) -> Option<(usize, Sense, bool)> {
    let words: Vec<&Word> = tokens
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take(MAX_PHRASE)
        .map_while(|token| match token {
            Token::Word(word) => Some(word),
            _ => None,
        })
        .collect();
    let mut key = String::new();
    (2..=words.len()).rev().find_map(|len| {
        let phrase = words.get(..len)?;
        key.clear();
        for (n, word) in phrase.iter().enumerate() {
            if n > 0 {
                key.push(' ');
            }
            key.push_str(&word.folded);
        }
        let sense = index.senses.get(key.as_str())?;
        sense.value(scope.words)?;
        let shouted = phrase.iter().any(|w| w.shouted);
        Some((len, *sense, shouted))
    })
}
