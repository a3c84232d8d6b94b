//! Lookup tables, built once from the word lists.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::Language;
use crate::text::fold;
use crate::words::LEXICONS;

/// A set of languages, one bit each.
pub(crate) type Langs = u8;

/// Weight of an ordinary sentiment entry.
const WEIGHT: f32 = 1.0;
/// Weight of a strong sentiment entry.
const STRONG_WEIGHT: f32 = 2.0;

/// The bit of one language.
pub(crate) fn bit(language: Language) -> Langs {
    1 << slot(language)
}

/// The position of a language in per-language arrays.
pub(crate) fn slot(language: Language) -> usize {
    match language {
        Language::English => 0,
        Language::Spanish => 1,
        Language::Portuguese => 2,
        Language::Indonesian => 3,
    }
}

/// What one word or phrase means to the sentiment scorer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sense {
    /// Signed weight per language (0 where the language does not list it).
    pub weight: [f32; 4],
    /// Languages that list it as a neutral phrase.
    pub neutral: Langs,
    /// Starts with a negator ("no sirve"), so no further negation applies.
    pub self_negated: bool,
}

impl Sense {
    /// Its signed weight for the first of `languages` that lists it.
    pub fn value(&self, languages: &[Language]) -> Option<f32> {
        languages.iter().find_map(|&language| {
            let weight = self.weight.get(slot(language)).copied().unwrap_or(0.0);
            if self.neutral & bit(language) != 0 {
                Some(0.0)
            } else if weight != 0.0 {
                Some(weight)
            } else {
                None
            }
        })
    }

    /// The languages that list it.
    pub fn languages(&self) -> Langs {
        Language::ALL
            .iter()
            .filter(|&&l| self.weight.get(slot(l)).is_some_and(|w| *w != 0.0))
            .fold(self.neutral, |set, &l| set | bit(l))
    }
}

/// The lookup tables. Keys are folded (see [`fold`]) except for stopwords.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Sentiment words and phrases (phrases joined by single spaces).
    pub senses: BTreeMap<String, Sense>,
    /// Negators and the languages that use them.
    pub negators: BTreeMap<String, Langs>,
    /// Intensifiers placed before the word they strengthen.
    pub intensifiers: BTreeMap<String, Langs>,
    /// Intensifiers placed after the word they strengthen.
    pub trailing: BTreeMap<String, Langs>,
    /// Stopwords, lowercase with accents kept.
    pub stopwords: BTreeMap<String, Langs>,
    /// Greeting, thanks and address words.
    pub courtesy: BTreeMap<String, Langs>,
}

/// The tables, built on first use.
pub(crate) fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(build)
}

/// Builds the tables from [`LEXICONS`].
fn build() -> Index {
    let mut index = Index::default();
    for lexicon in &LEXICONS {
        let language = lexicon.language;
        let lists = [
            (lexicon.positive, WEIGHT),
            (lexicon.strong_positive, STRONG_WEIGHT),
            (lexicon.negative, -WEIGHT),
            (lexicon.strong_negative, -STRONG_WEIGHT),
        ];
        for (list, weight) in lists {
            for entry in list {
                let sense = index.senses.entry(fold(entry)).or_default();
                if let Some(w) = sense.weight.get_mut(slot(language)) {
                    *w = weight;
                }
            }
        }
        for entry in lexicon.neutral {
            index.senses.entry(fold(entry)).or_default().neutral |= bit(language);
        }
        let sets = [
            (&mut index.negators, lexicon.negators),
            (&mut index.intensifiers, lexicon.intensifiers),
            (&mut index.trailing, lexicon.trailing_intensifiers),
            (&mut index.courtesy, lexicon.courtesy),
        ];
        for (map, list) in sets {
            for entry in list {
                *map.entry(fold(entry)).or_default() |= bit(language);
            }
        }
        for entry in lexicon.stopwords {
            *index.stopwords.entry(entry.to_lowercase()).or_default() |= bit(language);
        }
    }
    let negators = index.negators.clone();
    for (key, sense) in &mut index.senses {
        sense.self_negated = key
            .split(' ')
            .next()
            .is_some_and(|first| key.contains(' ') && negators.contains_key(first));
    }
    index
}

/// Looks a word up, trying elongated spellings ("sooo", "graciaaas") shortened.
pub(crate) fn lookup<'a, T>(map: &'a BTreeMap<String, T>, word: &str) -> Option<&'a T> {
    map.get(word).or_else(|| {
        if !has_run(word, 3) {
            return None;
        }
        [2, 1]
            .into_iter()
            .filter_map(|keep| squeeze(word, keep))
            .find_map(|short| map.get(&short))
    })
}

/// The word with every run of equal characters cut to `keep` (`None` when
/// nothing was cut). Only called on words with a run of three or more, so
/// "coffee" keeps its "ff".
fn squeeze(word: &str, keep: usize) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    let mut previous = None;
    let mut run = 0;
    let mut changed = false;
    for c in word.chars() {
        run = if Some(c) == previous { run + 1 } else { 1 };
        previous = Some(c);
        if run <= keep {
            out.push(c);
        } else {
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Whether some character repeats at least `len` times in a row.
fn has_run(word: &str, len: usize) -> bool {
    let mut previous = None;
    let mut run = 0;
    for c in word.chars() {
        run = if Some(c) == previous { run + 1 } else { 1 };
        previous = Some(c);
        if run >= len {
            return true;
        }
    }
    false
}
