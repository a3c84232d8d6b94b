//! Tokenising: words (lowercased, accents folded), clause breaks, emoji and
//! emoticons.

use crate::words::{NEGATIVE_EMOJI, NEGATIVE_EMOTICONS, POSITIVE_EMOJI, POSITIVE_EMOTICONS};

/// How many characters of one message are looked at.
pub(crate) const MAX_CHARS: usize = 4_000;

/// One unit of text the scorers look at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A word.
    Word(Word),
    /// An emoji or emoticon, with its signed weight.
    Emoji(f32),
    /// Punctuation that ends a clause.
    Break,
    /// A run of two or more exclamation marks.
    Bang,
}

/// A word of text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    /// Lowercase, accents kept.
    pub lower: String,
    /// Lowercase, accents folded away.
    pub folded: String,
    /// Written in capitals (three letters or more).
    pub shouted: bool,
    /// Holds a digit.
    pub numeric: bool,
}

/// The first `max` characters of a text.
pub(crate) fn head(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

/// One lowercase character without its accent (`None` for a combining mark).
fn fold_char(c: char) -> Option<char> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'è' | 'é' | 'ê' | 'ë' | 'ē' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ý' | 'ÿ' => 'y',
        '’' | 'ʼ' | '‘' => '\'',
        c if is_combining(c) => return None,
        c => c,
    })
}

/// A text lowercased, accents folded, words separated by single spaces.
pub(crate) fn fold(text: &str) -> String {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(fold_char)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A combining diacritical mark (text typed in decomposed form).
fn is_combining(c: char) -> bool {
    ('\u{0300}'..='\u{036f}').contains(&c)
}

/// A character used as an apostrophe inside words ("don't").
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ')
}

/// Punctuation that ends a clause (and with it any negation).
fn is_break(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '?'
            | '¿'
            | '¡'
            | '!'
            | '…'
            | '\n'
            | '\r'
            | '('
            | ')'
            | '['
            | ']'
            | '"'
            | '“'
            | '”'
            | '«'
            | '»'
            | '—'
            | '–'
            | '|'
    )
}

/// The words, clause breaks and emoji of a text (its first [`MAX_CHARS`] characters).
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = head(text, MAX_CHARS).chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next_is_alnum = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric()
            || (is_combining(c) && !word.is_empty())
            || (is_apostrophe(c) && !word.is_empty() && next_is_alnum)
        {
            word.push(c);
            i += 1;
            continue;
        }
        flush(&mut word, &mut out);
        let rest = chars.get(i..).unwrap_or_default();
        if let Some((weight, len)) = emoticon(rest) {
            out.push(Token::Emoji(weight));
            i += len;
            continue;
        }
        if POSITIVE_EMOJI.contains(&c) {
            out.push(Token::Emoji(1.0));
        } else if NEGATIVE_EMOJI.contains(&c) {
            out.push(Token::Emoji(-1.0));
        } else if c == '!' {
            let run = rest.iter().take_while(|&&x| x == '!').count();
            push_break(&mut out, if run >= 2 { Token::Bang } else { Token::Break });
            i += run.max(1);
            continue;
        } else if is_break(c) {
            push_break(&mut out, Token::Break);
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    out
}

/// Adds a break, merging it with a plain break just before.
fn push_break(out: &mut Vec<Token>, token: Token) {
    if out.last() == Some(&Token::Break) {
        out.pop();
    }
    out.push(token);
}

/// Turns the characters gathered so far into a word token.
fn flush(raw: &mut String, out: &mut Vec<Token>) {
    if raw.is_empty() {
        return;
    }
    let lower: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if is_apostrophe(c) { '\'' } else { c })
        .collect();
    let folded: String = lower.chars().filter_map(fold_char).collect();
    let upper = raw.chars().filter(|c| c.is_uppercase()).count();
    let lowercase = raw.chars().filter(|c| c.is_lowercase()).count();
    out.push(Token::Word(Word {
        numeric: raw.chars().any(|c| c.is_ascii_digit()),
        shouted: upper >= 3 && lowercase == 0,
        lower,
        folded,
    }));
    raw.clear();
}

/// The emoticon the text starts with, as (signed weight, length in chars).
fn emoticon(rest: &[char]) -> Option<(f32, usize)> {
    let lists = [(1.0, POSITIVE_EMOTICONS), (-1.0, NEGATIVE_EMOTICONS)];
    for (weight, list) in lists {
        for pattern in list {
            let len = pattern.chars().count();
            let Some(candidate) = rest.get(..len) else {
                continue;
            };
            if !candidate.iter().copied().eq(pattern.chars()) {
                continue;
            }
            // ":D" must not be the start of a word such as ":Done".
            let ends_alnum = pattern.chars().last().is_some_and(char::is_alphanumeric);
            let followed_by_alnum = rest.get(len).is_some_and(|c| c.is_alphanumeric());
            if ends_alnum && followed_by_alnum {
                continue;
            }
            return Some((weight, len));
        }
    }
    None
}
