//! Unit tests and fixture conversations.

use std::collections::BTreeSet;

use crate::summary::{MAX_SUMMARY_CHARS, clip, sentences};
use crate::text::{Token, fold, tokens};
use crate::words::LEXICONS;
use crate::{Analysis, Label, Language, Turn, analyze, language, read};

fn score(text: &str) -> f32 {
    read(text).score
}

fn customer<'a>(texts: &[&'a str]) -> Vec<Turn<'a>> {
    texts
        .iter()
        .map(|text| Turn {
            inbound: true,
            text,
        })
        .collect()
}

// --- negation -------------------------------------------------------------

#[test]
fn negation_flips_polarity() {
    assert!(score("not good") < 0.0);
    assert!(score("This is not bad at all") > 0.0);
    assert!(score("no es malo") >= 0.0, "{}", score("no es malo"));
    assert!(score("não é ruim") >= 0.0);
    assert!(score("tidak bagus") < 0.0);
    assert!(score("kurang bagus") < 0.0);
    assert!(score("I don't like it") < 0.0);
    assert!(score("no me gusta") < 0.0);
}

#[test]
fn negation_stops_at_punctuation_and_fades() {
    // The comma ends the negation: "great" stays positive.
    assert!(score("No, it's great") > 0.0);
    // Four words later the negator no longer reaches.
    assert!(score("not that I would ever say it was good") > 0.0);
}

#[test]
fn phrases_with_their_own_negator_are_not_flipped_twice() {
    for text in [
        "no sirve",
        "não funciona",
        "tidak bisa login",
        "nunca llegó",
        "doesn't work",
        "não chegou ainda",
    ] {
        let reading = read(text);
        assert!(reading.score < 0.0, "{text}: {reading:?}");
        assert_eq!(reading.positive, 0, "{text}");
    }
    assert!(score("no problem") > 0.0);
    assert!(score("nenhum problema") > 0.0);
}

// --- intensifiers, shouting, exclamation ---------------------------------

#[test]
fn intensifiers_strengthen_the_next_hit() {
    assert!(score("very good") > score("good"));
    assert!(score("muy malo") < score("malo"));
    assert!(score("sangat bagus") > score("bagus"));
    assert!(score("produk ini rusak banget") < score("produk ini rusak"));
    assert!(score("demorou demais") < score("demorou"));
    assert!(score("soooo good") > score("good"));
}

#[test]
fn capitals_and_exclamations_strengthen() {
    assert!(score("TERRIBLE") < score("terrible"));
    assert!(score("terrible!!!") < score("terrible"));
    assert!(score("great!!") > score("great"));
}

// --- phrases ---------------------------------------------------------------

#[test]
fn phrases_count_once() {
    let thanks = read("thank you");
    assert_eq!((thanks.positive, thanks.negative), (1, 0));
    assert!(score("terima kasih") > 0.0);
    assert!(score("kasih") == 0.0);
    assert!(score("muito obrigado") > score("obrigado") - f32::EPSILON);
    assert!(score("the delivery was late and the box was broken") < score("late"));
    assert!(score("mi pedido no funciona") < 0.0);
    assert!(score("nunca más") < 0.0);
}

#[test]
fn greetings_are_neutral() {
    for text in [
        "good morning",
        "buenos días",
        "boa tarde",
        "selamat pagi kak",
    ] {
        assert_eq!(score(text), 0.0, "{text}");
    }
}

#[test]
fn one_mild_word_is_not_extreme() {
    let s = score("good");
    assert!(s > 0.2 && s < 0.5, "{s}");
    assert!(score("terrible terrible awful worst scam") > -1.0 - f32::EPSILON);
}

// --- emoji -----------------------------------------------------------------

#[test]
fn emoji_and_emoticons_count() {
    for text in ["😀", "😍👍", "🙏", "❤️", ":)", ":-)", ":D", "gracias :)"] {
        assert!(score(text) > 0.0, "{text}");
    }
    for text in ["😡", "😭", "👎", ":(", ":-(", "ok :("] {
        assert!(score(text) < 0.0, "{text}");
    }
    // Not emoticons: a word after a colon, a time, "less than 30".
    for text in [
        "Note:Done",
        "at 10:30",
        "<30 minutes",
        "https://example.com/x",
    ] {
        assert_eq!(score(text), 0.0, "{text}");
    }
}

// --- accents -----------------------------------------------------------------

#[test]
fn accents_fold() {
    assert_eq!(read("pesimo"), read("pésimo"));
    assert_eq!(read("pessimo"), read("péssimo"));
    assert!(score("pessimo") < 0.0);
    assert!(score("PESSIMO") < score("péssimo"));
    assert_eq!(score("mala atencion"), score("mala atención"));
    assert!(score("mala atencion") < 0.0);
    assert_eq!(score("otimo"), score("ótimo"));
    // Decomposed accents (e + combining acute) stay inside the word.
    assert_eq!(score("pe\u{301}simo"), score("pésimo"));
    assert_eq!(fold("Atención  PÉSIMO"), "atencion pesimo");
}

#[test]
fn apostrophes_stay_inside_words() {
    let words: Vec<String> = tokens("Don’t 'quote' isn't")
        .into_iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.folded),
            _ => None,
        })
        .collect();
    assert_eq!(words, ["don't", "quote", "isn't"]);
}

// --- language detection -----------------------------------------------------

#[test]
fn detects_each_language() {
    let cases = [
        (
            "My order has not arrived yet and I want to know where it is",
            Language::English,
        ),
        (
            "Hola, mi pedido todavía no llega y nadie me responde",
            Language::Spanish,
        ),
        (
            "Olá, meu pedido ainda não chegou e ninguém me responde",
            Language::Portuguese,
        ),
        (
            "Halo kak, pesanan saya belum sampai dan tidak ada kabar",
            Language::Indonesian,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(language(text), Some(expected), "{text}");
        assert_eq!(read(text).language, Some(expected), "{text}");
    }
}

#[test]
fn tells_spanish_from_portuguese() {
    let pairs = [
        (
            "Muchas gracias por la ayuda, son muy amables",
            "Muito obrigado pela ajuda, vocês são muito atenciosos",
        ),
        ("El producto está roto", "O produto está quebrado"),
        (
            "Pero todavía no recibí mi reembolso",
            "Mas ainda não recebi meu reembolso",
        ),
        ("Es pésimo, quiero cancelar", "É péssimo, quero cancelar"),
        (
            "Hola, también quiero saber más del envío",
            "Olá, também quero saber mais do envio",
        ),
        // Typed without accents.
        (
            "Muy mal servicio, que verguenza",
            "Nao chegou nada, voce me enganou",
        ),
    ];
    for (es, pt) in pairs {
        assert_eq!(language(es), Some(Language::Spanish), "{es}");
        assert_eq!(language(pt), Some(Language::Portuguese), "{pt}");
    }
}

#[test]
fn too_little_evidence_is_no_language() {
    for text in ["", "ok", "12345", "👍👍", "hmm", "😀 ok"] {
        assert_eq!(language(text), None, "{text:?}");
    }
}

#[test]
fn codes() {
    let codes: Vec<_> = Language::ALL.iter().map(|l| l.code()).collect();
    assert_eq!(codes, ["en", "es", "pt", "id"]);
}

// --- hostile inputs -----------------------------------------------------------

#[test]
fn hostile_inputs_do_not_panic() {
    let huge = "a".repeat(1 << 20);
    let emoji = "😡".repeat(10_000);
    let control: String =
        (0u32..0x20).filter_map(char::from_u32).collect::<String>() + "\u{7f}\u{0}bad\u{0}";
    let rtl = "\u{202e}هذا سيء جدا\u{202c} שלום עולם مرحبا";
    let mixed = "Halo 😀 привет 你好 !!! ::: ''' ’’ \u{301}\u{301} é\u{301}\u{301} ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
    let lone_marks = "\u{301}\u{302}\u{303} ' ' ' : ; ! ? … . ,";
    for text in [
        "",
        " ",
        "\n\n\n",
        huge.as_str(),
        emoji.as_str(),
        control.as_str(),
        rtl,
        mixed,
        lone_marks,
        "!!!!!!!!",
        ":-",
        "<",
    ] {
        let reading = read(text);
        assert!((-1.0..=1.0).contains(&reading.score), "{reading:?}");
        let _ = language(text);
        let turns = [
            Turn {
                inbound: true,
                text,
            },
            Turn {
                inbound: false,
                text,
            },
        ];
        let analysis = analyze(&turns);
        assert!(analysis.summary.chars().count() <= MAX_SUMMARY_CHARS);
        assert!((-1.0..=1.0).contains(&analysis.score));
    }
    assert!(score(&emoji) < -0.9);
}

#[test]
fn random_texts_do_not_panic() {
    const POOL: &[char] = &[
        'a', 'Z', 'é', 'ñ', 'ç', 'ã', '\u{301}', '\'', '’', ' ', ' ', '\n', '\t', '\0', '\u{7f}',
        '.', '!', '?', '…', ':', ')', '(', '-', 'D', '<', '3', '😀', '😡', '👍', '🏽', '\u{fe0f}',
        '\u{200d}', '\u{202e}', 'ש', 'م', '你', 'ß', 'İ', 'ǅ', '9', '#', '$',
    ];
    const WORDS: &[&str] = &[
        "not ",
        "no ",
        "tidak ",
        "muy ",
        "very ",
        "good ",
        "pésimo ",
        "terima ",
        "kasih ",
        "banget ",
        "não ",
        "funciona ",
        "!!! ",
        ":) ",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for _ in 0..1_000 {
        let mut text = String::new();
        for _ in 0..next(120) {
            if next(4) == 0 {
                text.push_str(WORDS[next(WORDS.len())]);
            } else {
                text.push(POOL[next(POOL.len())]);
            }
        }
        let reading = read(&text);
        assert!((-1.0..=1.0).contains(&reading.score), "{text:?}");
        let turns = [
            Turn {
                inbound: next(2) == 0,
                text: &text,
            },
            Turn {
                inbound: true,
                text: &text,
            },
        ];
        let analysis = analyze(&turns);
        assert!(analysis.summary.chars().count() <= MAX_SUMMARY_CHARS);
        let _ = clip(&text, next(60));
    }
}

#[test]
fn summaries_drop_control_and_direction_characters() {
    let text = "My order\u{0} 1234 arrived\u{202e} broken and\u{7} the box was wet";
    let analysis = analyze(&customer(&[text]));
    assert_eq!(
        analysis.summary,
        "My order 1234 arrived broken and the box was wet"
    );
}

#[test]
fn huge_conversations_are_bounded() {
    let huge = "terrible service ".repeat(100_000);
    let turns: Vec<Turn<'_>> = (0..1_000)
        .map(|i| Turn {
            inbound: i % 2 == 0,
            text: &huge,
        })
        .collect();
    let analysis = analyze(&turns);
    assert_eq!(analysis.label, Label::Negative);
    assert!(analysis.summary.chars().count() <= MAX_SUMMARY_CHARS);
}

// --- conversations ---------------------------------------------------------------

#[test]
fn empty_and_wordless_conversations_are_neutral() {
    let empty = analyze(&[]);
    assert_eq!(
        empty,
        Analysis {
            label: Label::Neutral,
            score: 0.0,
            summary: String::new(),
            language: None,
        }
    );
    let wordless = analyze(&customer(&["...", "?", "12 34"]));
    assert_eq!((wordless.label, wordless.score), (Label::Neutral, 0.0));
}

#[test]
fn recent_messages_weigh_more() {
    let early_bad = analyze(&customer(&["This is bad", "Now it is good"]));
    let late_bad = analyze(&customer(&["Now it is good", "This is bad"]));
    assert!(early_bad.score > 0.0, "{early_bad:?}");
    assert!(late_bad.score < 0.0, "{late_bad:?}");
}

#[test]
fn business_messages_do_not_count_for_sentiment() {
    let turns = [
        Turn {
            inbound: false,
            text: "We are terribly sorry, this is awful and unacceptable",
        },
        Turn {
            inbound: true,
            text: "ok",
        },
    ];
    assert_eq!(analyze(&turns).label, Label::Neutral);
}

#[test]
fn labels() {
    let mixed = analyze(&customer(&[
        "The food was excellent and the driver was friendly",
        "But the drinks were cold and the box was broken",
    ]));
    assert_eq!(mixed.label, Label::Mixed, "{mixed:?}");
    assert_eq!(
        analyze(&customer(&["Thanks, great service!"])).label,
        Label::Positive
    );
    assert_eq!(
        analyze(&customer(&["Worst store ever"])).label,
        Label::Negative
    );
    assert_eq!(
        analyze(&customer(&["Where is my order 1234?"])).label,
        Label::Neutral
    );
}

// --- summary ------------------------------------------------------------------

#[test]
fn summary_prefers_customer_sentences_and_skips_courtesy() {
    let turns = [
        Turn {
            inbound: true,
            text: "Hello! Good morning.",
        },
        Turn {
            inbound: false,
            text: "Hi, how can we help you today with your order?",
        },
        Turn {
            inbound: true,
            text: "My order 5521 arrived with a cracked screen. The screen is cracked!",
        },
        Turn {
            inbound: true,
            text: "Thank you so much. Thanks again!",
        },
    ];
    let summary = analyze(&turns).summary;
    assert!(summary.contains("cracked screen"), "{summary}");
    assert!(!summary.contains("Hello"), "{summary}");
    assert!(!summary.contains("Thank"), "{summary}");
    assert!(!summary.contains("how can we help"), "{summary}");
}

#[test]
fn summary_drops_duplicates_and_keeps_order() {
    let summary = analyze(&customer(&[
        "The courier never delivered my parcel 881.",
        "The courier never delivered my parcel 881!",
        "the courier never delivered my parcel 881",
        "I paid for express shipping and waited two weeks.",
    ]))
    .summary;
    assert_eq!(summary.matches("courier").count(), 1, "{summary}");
    let courier = summary.find("courier");
    let express = summary.find("express");
    assert!(courier < express, "{summary}");
}

#[test]
fn summary_falls_back_to_business_sentences() {
    let turns = [
        Turn {
            inbound: true,
            text: "hola",
        },
        Turn {
            inbound: false,
            text: "Your refund for order 7781 was approved today.",
        },
    ];
    assert_eq!(
        analyze(&turns).summary,
        "Your refund for order 7781 was approved today."
    );
}

#[test]
fn summary_is_bounded_and_cut_on_char_boundaries() {
    let long_words = "ação ".repeat(400);
    let one_word = "ãçé😡".repeat(500);
    let emoji_words = "👍🏽 produto chegou rápido ".repeat(100);
    for text in [&long_words, &one_word, &emoji_words] {
        let analysis = analyze(&customer(&[text.as_str()]));
        let count = analysis.summary.chars().count();
        assert!(count <= MAX_SUMMARY_CHARS && count > 0, "{count}");
        assert!(analysis.summary.ends_with('…'));
    }
    assert_eq!(clip("short", 10), "short");
    assert_eq!(clip("one two three four", 10), "one two…");
    assert_eq!(clip("ééééééééééééé", 5), "éééé…");
    assert_eq!(clip("abc defgh", 5), "abc…");
    for max in 0..40 {
        let cut = clip("ñandú y pingüino 🐧🐧 con ação, já!", max);
        assert!(cut.chars().count() <= max.max(1), "{max}: {cut}");
    }
}

#[test]
fn sentences_split_on_terminators_but_not_on_amounts() {
    assert_eq!(
        sentences("I paid $12.50 for it... and it broke!!  Why?\nNo  answer…yet"),
        [
            "I paid $12.50 for it...",
            "and it broke!!",
            "Why?",
            "No answer…",
            "yet"
        ]
    );
}

// --- lexicon hygiene ----------------------------------------------------------------

#[test]
fn lexicons_are_well_formed() {
    for lexicon in &LEXICONS {
        let code = lexicon.language.code();
        let positive = lexicon.positive.len() + lexicon.strong_positive.len();
        let negative = lexicon.negative.len() + lexicon.strong_negative.len();
        assert!(
            (120..=220).contains(&positive),
            "{code}: {positive} positive"
        );
        assert!(
            (120..=220).contains(&negative),
            "{code}: {negative} negative"
        );
        let sentiment = [
            lexicon.positive,
            lexicon.strong_positive,
            lexicon.negative,
            lexicon.strong_negative,
            lexicon.neutral,
        ];
        let mut seen = BTreeSet::new();
        for entry in sentiment.iter().flat_map(|list| list.iter()) {
            let key = fold(entry);
            assert!(seen.insert(key.clone()), "{code}: {entry} listed twice");
            assert!(key.split(' ').count() <= 3, "{code}: {entry} too long");
            // Every entry tokenises to exactly its own words.
            let words: Vec<String> = tokens(entry)
                .into_iter()
                .filter_map(|t| match t {
                    Token::Word(w) => Some(w.folded),
                    _ => None,
                })
                .collect();
            assert_eq!(words.join(" "), key, "{code}: {entry}");
        }
        let grammar = [
            lexicon.negators,
            lexicon.intensifiers,
            lexicon.trailing_intensifiers,
        ];
        for entry in grammar.iter().flat_map(|list| list.iter()) {
            assert!(!entry.contains(' '), "{code}: {entry} must be one word");
        }
        // Negators and leading intensifiers are looked up before sentiment
        // words, so a sentiment entry of the same spelling would never count.
        for entry in lexicon.negators.iter().chain(lexicon.intensifiers) {
            assert!(
                !seen.contains(&fold(entry)),
                "{code}: {entry} is also a sentiment word"
            );
        }
        for entry in lexicon.stopwords.iter().chain(lexicon.courtesy) {
            assert_eq!(entry.to_lowercase(), *entry, "{code}: {entry}");
            assert!(!entry.contains(' '), "{code}: {entry}");
        }
    }
}

// --- fixtures -------------------------------------------------------------------------

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/fixtures/insights/",
                $name,
                ".json"
            )),
        )
    };
}

const FIXTURES: [(&str, &str); 8] = [
    fixture!("en-negative"),
    fixture!("en-positive"),
    fixture!("es-negative"),
    fixture!("es-positive"),
    fixture!("pt-negative"),
    fixture!("pt-positive"),
    fixture!("id-negative"),
    fixture!("id-positive"),
];

#[test]
fn fixtures() {
    for (name, json) in FIXTURES {
        let doc: serde_json::Value = serde_json::from_str(json).unwrap();
        let messages = doc["messages"].as_array().unwrap();
        assert!((6..=10).contains(&messages.len()), "{name}");
        let turns: Vec<Turn<'_>> = messages
            .iter()
            .map(|m| Turn {
                inbound: m["inbound"].as_bool().unwrap(),
                text: m["text"].as_str().unwrap(),
            })
            .collect();
        let analysis = analyze(&turns);
        let expected = match doc["expect"].as_str().unwrap() {
            "negative" => Label::Negative,
            "positive" => Label::Positive,
            "neutral" => Label::Neutral,
            "mixed" => Label::Mixed,
            other => panic!("{name}: unknown label {other}"),
        };
        let code = doc["language"].as_str().unwrap();
        let wanted = doc["summary_contains"].as_str().unwrap();
        assert_eq!(analysis.label, expected, "{name}: {analysis:?}");
        assert!(analysis.summary.contains(wanted), "{name}: {analysis:?}");
        assert!(
            analysis.summary.chars().count() <= MAX_SUMMARY_CHARS,
            "{name}"
        );
        assert_eq!(analysis.language.map(Language::code), Some(code), "{name}");
        let inbound: Vec<&str> = turns.iter().filter(|t| t.inbound).map(|t| t.text).collect();
        assert_eq!(
            language(&inbound.join("\n")).map(Language::code),
            Some(code),
            "{name}"
        );
        eprintln!(
            "{name}: {:?} {:.2} | {}",
            analysis.label, analysis.score, analysis.summary
        );
        // The customer's side alone (what a host without the business's replies reads) says
        // the same.
        let customer: Vec<Turn<'_>> = turns.iter().copied().filter(|t| t.inbound).collect();
        let alone = analyze(&customer);
        assert_eq!(alone.label, expected, "{name} (customer only): {alone:?}");
        assert!(
            alone.summary.contains(wanted),
            "{name} (customer only): {alone:?}"
        );
    }
}
