//! Language detection: stopword and lexicon hits per language.

use std::collections::BTreeMap;

use crate::Language;
use crate::index::{Langs, bit, index, slot};
use crate::text::Token;

/// Fewest hits a language needs before it is named.
const MIN_HITS: u32 = 2;

/// Hits per language gathered so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Evidence {
    /// Hits, indexed by [`slot`].
    hits: [u32; 4],
}

impl Evidence {
    /// Counts the words of one text: each word counts once for every
    /// language that lists it as a stopword, courtesy, grammar or sentiment word.
    pub fn add(&mut self, tokens: &[Token]) {
        let index = index();
        for token in tokens {
            let Token::Word(word) = token else {
                continue;
            };
            let found =
                |map: &BTreeMap<String, Langs>, key: &str| map.get(key).copied().unwrap_or(0);
            let langs = found(&index.stopwords, &word.lower)
                | found(&index.courtesy, &word.folded)
                | found(&index.negators, &word.folded)
                | found(&index.intensifiers, &word.folded)
                | found(&index.trailing, &word.folded)
                | index.senses.get(&word.folded).map_or(0, |s| s.languages());
            for language in Language::ALL {
                if langs & bit(language) != 0
                    && let Some(hits) = self.hits.get_mut(slot(language))
                {
                    *hits = hits.saturating_add(1);
                }
            }
        }
    }

    /// Adds the hits of another text.
    pub fn merge(&mut self, other: &Evidence) {
        for (mine, theirs) in self.hits.iter_mut().zip(other.hits) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// The language with the most hits, if it has enough and beats every other.
    pub fn verdict(&self) -> Option<Language> {
        let mut ranked: Vec<(u32, Language)> = Language::ALL
            .iter()
            .map(|&l| (self.hits.get(slot(l)).copied().unwrap_or(0), l))
            .collect();
        ranked.sort_by_key(|&(hits, _)| std::cmp::Reverse(hits));
        match ranked.as_slice() {
            [(best, language), (second, _), ..] if *best >= MIN_HITS && best > second => {
                Some(*language)
            }
            _ => None,
        }
    }
}
