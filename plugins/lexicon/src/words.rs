//! Word lists: sentiment lexicons, negators, intensifiers, stopwords and
//! courtesy words for each language, plus emoji and emoticons.
//!
//! Entries are written as customers write them, accents included; lookups
//! fold accents on both sides, so "pessimo" matches "péssimo". Stopwords are
//! compared without folding, because accents tell Spanish from Portuguese
//! ("más" against "mas"). Entries with spaces are phrases of up to 3 words.

use crate::Language;

/// The word lists of one language.
pub(crate) struct Lexicon {
    /// The language these lists are for.
    pub language: Language,
    /// Words and phrases that read as positive (weight 1).
    pub positive: &'static [&'static str],
    /// Words and phrases that read as strongly positive (weight 2).
    pub strong_positive: &'static [&'static str],
    /// Words and phrases that read as negative (weight 1).
    pub negative: &'static [&'static str],
    /// Words and phrases that read as strongly negative (weight 2).
    pub strong_negative: &'static [&'static str],
    /// Phrases that hold a sentiment word but read as neutral ("good morning").
    pub neutral: &'static [&'static str],
    /// Words that flip the polarity of the next few words.
    pub negators: &'static [&'static str],
    /// Words that strengthen the next sentiment word.
    pub intensifiers: &'static [&'static str],
    /// Words that strengthen the sentiment word just before them.
    pub trailing_intensifiers: &'static [&'static str],
    /// Function words, used to tell the languages apart.
    pub stopwords: &'static [&'static str],
    /// Greetings, thanks and forms of address.
    pub courtesy: &'static [&'static str],
}

/// The lexicons of every covered language.
pub(crate) const LEXICONS: [Lexicon; 4] = [ENGLISH, SPANISH, PORTUGUESE, INDONESIAN];

/// Emoji that read as positive.
pub(crate) const POSITIVE_EMOJI: &[char] = &[
    '😀', '😃', '😄', '😁', '😆', '😊', '🙂', '😍', '🥰', '😘', '🤩', '😎', '👍', '👌', '👏', '🙏',
    '❤', '♥', '💕', '💖', '💗', '💯', '🎉', '🥳', '⭐', '🌟', '✨', '💪', '🤗', '☺',
];

/// Emoji that read as negative.
pub(crate) const NEGATIVE_EMOJI: &[char] = &[
    '😠', '😡', '🤬', '😞', '😢', '😭', '👎', '😤', '😒', '😩', '😫', '💔', '😔', '🙁', '☹', '😕',
    '😣', '😖', '🤮', '🤢', '😑', '🙄', '😰',
];

/// Emoticons that read as positive (matched case-sensitively).
pub(crate) const POSITIVE_EMOTICONS: &[&str] = &[
    ":-)", ":)", ":-D", ":D", ";-)", ";)", "=)", ":]", "<3", "^^", "^_^",
];

/// Emoticons that read as negative (matched case-sensitively).
pub(crate) const NEGATIVE_EMOTICONS: &[&str] = &[":'(", ":-(", ":(", "=(", ":[", ">:(", "-_-"];

// The lists are kept compact: one entry per line would bury them.
#[rustfmt::skip]
const ENGLISH: Lexicon = Lexicon {
    language: Language::English,
    positive: &[
        "good", "great", "nice", "fine", "thanks", "thank", "thx", "thnx", "thanx", "ty", "tysm",
        "tks", "thanku", "thank you", "thanks a lot", "many thanks", "appreciate", "appreciated",
        "appreciation", "grateful", "thankful", "helpful", "helpfull", "helped", "fast", "faster",
        "quick", "quickly", "speedy", "prompt", "promptly", "efficient", "easy", "smooth",
        "smoothly", "happy", "happy with", "glad", "pleased", "pleasure", "satisfied", "satisfying",
        "satisfactory", "liked", "like it", "enjoy", "enjoyed", "recommend", "recommended", "kind",
        "friendly", "polite", "patient", "professional", "reliable", "trustworthy", "legit",
        "honest", "fair", "affordable", "worth", "worth it", "beautiful", "cute", "gorgeous",
        "delicious", "tasty", "yummy", "fresh", "comfortable", "comfy", "solved", "resolved",
        "fixed", "sorted", "works", "worked", "working", "cool", "impressed", "impressive",
        "pleasant", "on time", "right on time", "well done", "good job", "great job",
        "great service", "no problem", "no worries", "can't wait", "keep it up", "top", "neat",
        "sweet", "yay", "wow", "relieved", "responsive", "attentive", "courteous", "accommodating",
        "generous", "as described", "as promised", "useful", "handy", "solid", "thumbs up",
        "five stars", "5 stars", "cheers", "congrats", "congratulations", "improved", "well packed",
        "well packaged", "intact", "undamaged", "safely", "lovely", "good quality", "high quality",
        "fits perfectly", "quick response", "fast delivery", "fast shipping", "arrived early",
        "nicely", "convenient", "clean", "accurate", "genuine",
    ],
    strong_positive: &[
        "awesome", "amazing", "excellent", "perfect", "perfectly", "fantastic", "wonderful",
        "outstanding", "brilliant", "superb", "incredible", "best", "the best", "love", "loved",
        "thrilled", "delighted", "stellar", "flawless", "exceptional", "top notch", "marvelous",
        "phenomenal", "spectacular", "ecstatic", "highly recommend", "lifesaver", "life saver",
        "magnificent", "terrific", "fabulous", "splendid", "exceeded",
    ],
    negative: &[
        "bad", "poor", "slow", "late", "delay", "delayed", "delays", "waiting", "broken", "broke",
        "damaged", "defective", "faulty", "cracked", "torn", "leaking", "leaked", "dented",
        "scratched", "stained", "dirty", "wrong", "incorrect", "missing", "lost", "cold", "stale",
        "expired", "spoiled", "problem", "problems", "issue", "issues", "complaint", "complain",
        "complaining", "refund", "money back", "cancel", "cancelled", "canceled", "unhappy",
        "disappointed", "disappointing", "disappointment", "frustrated", "frustrating", "annoyed",
        "annoying", "upset", "angry", "mad", "sad", "worried", "confused", "confusing", "rude",
        "unprofessional", "impolite", "careless", "lazy", "ignored", "ignoring", "no response",
        "no reply", "no answer", "no update", "no one", "never arrived", "never received",
        "never came", "didn't arrive", "didn't receive", "hasn't arrived", "has not arrived",
        "not received", "not arrived", "not delivered", "stopped working", "doesn't work",
        "does not work", "didn't work", "not working", "isn't working", "won't work", "not happy",
        "not ok", "overcharged", "charged twice", "double charged", "expensive", "overpriced",
        "useless", "pointless", "waste", "wasted", "unreliable", "sucks", "junk", "joke", "mess",
        "messed up", "error", "failed", "fail", "failure", "unfortunately", "hopeless",
        "inconvenient", "inconvenience", "hassle", "tired", "sick of", "mistake", "took forever",
        "too long", "insulting", "disrespectful", "nasty", "mediocre", "flimsy", "poor quality",
        "low quality", "refused", "denied", "unresolved", "overdue", "stuck", "dissatisfied",
        "unsatisfied", "regret", "lousy", "lied", "lying", "cheated", "fake", "counterfeit",
        "hated", "wtf", "fault", "nobody", "unanswered", "mistreated", "smashed", "crushed",
        "melted", "unusable",
    ],
    strong_negative: &[
        "terrible", "horrible", "awful", "worst", "the worst", "unacceptable", "ridiculous",
        "pathetic", "disgusting", "disgrace", "shameful", "scam", "scammed", "fraud", "fraudulent",
        "thieves", "thief", "liars", "hate", "never again", "fed up", "crap", "garbage", "trash",
        "nightmare", "disaster", "incompetent", "furious", "shocking", "appalling", "dreadful",
        "ripped off", "rip off", "ripoff", "still waiting", "outrageous", "livid", "horrendous",
        "atrocious", "worthless", "rubbish",
    ],
    neutral: &[
        "good morning", "good afternoon", "good evening", "good night", "good day", "no thanks",
        "no thank you", "thank god", "can't believe", "cannot believe",
    ],
    negators: &[
        "not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "weren't",
        "can't", "cannot", "won't", "wouldn't", "couldn't", "shouldn't", "haven't", "hasn't",
        "hadn't", "without", "dont", "doesnt", "didnt", "isnt", "wasnt", "cant", "wont", "havent",
        "hasnt", "nor", "hardly", "barely",
    ],
    intensifiers: &[
        "very", "so", "really", "extremely", "super", "totally", "absolutely", "incredibly",
        "truly", "too", "highly", "completely", "utterly", "quite", "most", "such",
    ],
    trailing_intensifiers: &["af"],
    stopwords: &[
        "the", "and", "is", "are", "was", "were", "my", "you", "your", "it", "it's", "its", "to",
        "of", "for", "in", "on", "at", "this", "that", "with", "have", "has", "had", "i", "i'm",
        "me", "we", "our", "be", "been", "but", "or", "just", "what", "when", "where", "why", "how",
        "can", "will", "would", "do", "did", "does", "an", "a", "they", "them", "there", "still",
        "from", "about", "if", "as", "am", "any", "yet", "here", "which", "who", "should", "could",
        "got", "get", "since", "after", "now", "today", "yesterday",
    ],
    courtesy: &[
        "hi", "hello", "hey", "hiya", "good", "morning", "afternoon", "evening", "night", "thanks",
        "thank", "thx", "ty", "you", "much", "lot", "ok", "okay", "bye", "goodbye", "please", "pls",
        "plz", "sir", "madam", "team", "regards", "cheers", "welcome", "help", "greetings", "dear",
        "kind", "best", "again", "all", "everyone", "there", "so", "very", "many", "appreciate",
        "appreciated",
    ],
};

#[rustfmt::skip]
const SPANISH: Lexicon = Lexicon {
    language: Language::Spanish,
    positive: &[
        "gracias", "muchas gracias", "mil gracias", "se agradece", "agradezco", "agradecido",
        "agradecida", "agradecer", "bueno", "buena", "buen", "bien", "rápido", "rápida", "rápidos",
        "rápidas", "rápidamente", "amable", "amables", "amabilidad", "gusta", "gustó", "encanta",
        "encantó", "encantado", "encantada", "feliz", "felices", "contento", "contenta",
        "contentos", "satisfecho", "satisfecha", "satisfechos", "recomiendo", "recomendado",
        "recomendada", "recomendados", "recomendable", "mejor", "solucionado", "solucionada",
        "solucionaron", "resuelto", "resuelta", "resolvieron", "funciona", "funcionando",
        "funcionó", "estupendo", "estupenda", "bonito", "bonita", "lindo", "linda", "hermoso",
        "hermosa", "precioso", "preciosa", "rico", "rica", "delicioso", "deliciosa", "sabroso",
        "atento", "atenta", "atentos", "eficiente", "eficientes", "puntual", "puntuales",
        "a tiempo", "chévere", "bacán", "chido", "genial", "top", "felicidades", "felicitaciones",
        "confiable", "fácil", "cómodo", "cómoda", "útil", "ideal", "bello", "bella", "profesional",
        "profesionales", "responsables", "responsable", "seriedad", "serios", "buena calidad",
        "buen servicio", "buena atención", "llegó bien", "llegó perfecto", "en perfecto estado",
        "tal cual", "como se describe", "cumplieron", "cumplió", "ágil", "veloz", "agradable",
        "simpático", "simpática", "encantadora", "encantador", "mejoró", "vale la pena", "limpio",
        "limpia", "fresco", "fresca", "suave", "práctico", "práctica", "tranquilo", "tranquila",
        "aliviado", "aliviada", "bendiciones", "gran servicio", "qué bien", "súper bien",
        "ya llegó", "muy amables",
    ],
    strong_positive: &[
        "excelente", "excelentes", "perfecto", "perfecta", "maravilloso", "maravillosa",
        "increíble", "increíbles", "espectacular", "fantástico", "fantástica", "impecable",
        "fenomenal", "divino", "divina", "de lujo", "lo máximo", "encantadísimo", "buenísimo",
        "buenísima", "magnífico", "magnífica", "lo mejor", "el mejor", "la mejor",
        "muy recomendado", "extraordinario", "brutal", "me encantó", "me encanta", "maravilla",
    ],
    negative: &[
        "malo", "mala", "malos", "malas", "mal", "molesto", "molesta", "molestos", "molestia",
        "enojado", "enojada", "enojo", "enfadado", "enfadada", "decepcionado", "decepcionada",
        "decepción", "decepcionante", "roto", "rota", "rotos", "rotas", "dañado", "dañada",
        "dañados", "defectuoso", "defectuosa", "tarde", "retraso", "retrasado", "retrasada",
        "demora", "demorado", "demoran", "tardan", "tardó", "lento", "lenta", "lentos",
        "nunca llegó", "no llegó", "no ha llegado", "no llega", "no me llegó", "no sirve",
        "no sirvió", "no funciona", "no funcionan", "no responde", "no responden", "no contestan",
        "no recibí", "no me gustó", "no es justo", "nadie responde", "nadie contesta",
        "sin respuesta", "sigue sin", "aún no", "todavía no", "reembolso", "devolución", "devolver",
        "queja", "quejas", "quejarme", "reclamo", "reclamos", "reclamación", "problema",
        "problemas", "falla", "fallas", "fallo", "error", "incorrecto", "incorrecta", "equivocado",
        "equivocada", "incompleto", "incompleta", "falta", "faltan", "faltaba", "perdido",
        "perdida", "frío", "fría", "sucio", "sucia", "grosero", "grosera", "groseros", "maleducado",
        "maleducada", "irrespetuoso", "irrespetuosa", "indignado", "indignada", "harta", "cansado",
        "cansada", "inútil", "inútiles", "ridículo", "ridícula", "absurdo", "caro", "carísimo",
        "cobraron", "cobro", "doble cobro", "triste", "preocupado", "preocupada", "esperando",
        "cancelar", "cancelación", "cancelado", "mi dinero", "engaño", "engañado", "engañada",
        "mentira", "mentiras", "mintieron", "vencido", "caducado", "podrido", "manchado", "rayado",
        "golpeado", "incumplimiento", "incumplieron", "insatisfecho", "insatisfecha", "desilusión",
        "lamentablemente", "desesperado", "desesperada", "ignoran", "ignorado", "mala atención",
        "mal servicio", "mala calidad", "peor", "feo", "fea", "tardísimo", "nada que ver",
    ],
    strong_negative: &[
        "pésimo", "pésima", "pésimos", "horrible", "horribles", "terrible", "terribles", "estafa",
        "estafadores", "estafador", "estafaron", "fraude", "robo", "ladrones", "vergüenza",
        "qué vergüenza", "inaceptable", "indignante", "harto", "lo peor", "el peor", "basura",
        "porquería", "desastre", "fatal", "nefasto", "lamentable", "furioso", "furiosa",
        "sigo esperando", "nunca más", "una burla", "asqueroso", "asquerosa", "espantoso",
        "vergonzoso",
    ],
    neutral: &[
        "buenos días", "buen día", "buenas tardes", "buenas noches", "por la tarde", "esta tarde",
        "en la tarde", "de la tarde", "no gracias", "más tarde",
    ],
    negators: &["no", "nunca", "jamás", "tampoco", "sin", "ni", "nada"],
    intensifiers: &[
        "muy", "tan", "súper", "super", "demasiado", "bastante", "re", "extremadamente",
        "realmente", "sumamente", "totalmente", "mega", "muchísimo", "tremendamente",
    ],
    trailing_intensifiers: &["muchísimo", "demasiado"],
    stopwords: &[
        "a", "el", "la", "los", "las", "lo", "le", "les", "un", "una", "unos", "unas", "que", "qué",
        "de", "del", "y", "en", "mi", "mis", "tu", "su", "sus", "por", "para", "pero", "está",
        "están", "estoy", "es", "son", "con", "se", "me", "te", "nos", "ya", "hay", "usted",
        "ustedes", "también", "cuando", "cuándo", "dónde", "donde", "porque", "cómo", "como",
        "este", "esta", "esto", "eso", "ese", "esa", "fue", "sí", "si", "hace", "todavía", "aún",
        "más", "todo", "al", "yo", "él", "ella", "tengo", "tiene", "puede", "hasta", "desde", "hoy",
        "ayer", "ahora", "nadie", "pues", "entonces", "hola",
    ],
    courtesy: &[
        "hola", "buenas", "buenos", "buen", "día", "días", "tardes", "noches", "gracias", "muchas",
        "mil", "saludos", "adiós", "chao", "chau", "favor", "señor", "señora", "señorita", "amigo",
        "amiga", "ok", "vale", "okey", "ayuda", "atención", "igualmente", "bendiciones", "tal",
        "agradezco", "todo",
    ],
};

#[rustfmt::skip]
const PORTUGUESE: Lexicon = Lexicon {
    language: Language::Portuguese,
    positive: &[
        "obrigado", "obrigada", "muito obrigado", "muito obrigada", "obg", "brigado", "brigada",
        "obrigadão", "valeu", "vlw", "agradeço", "agradecido", "agradecida", "ótimo", "ótima",
        "ótimos", "bom", "boa", "bons", "boas", "rápido", "rápida", "rápidos", "rapidez",
        "rapidinho", "gostei", "gosto", "satisfeito", "satisfeita", "satisfação", "feliz",
        "felizes", "contente", "recomendo", "recomendado", "top", "show", "legal", "lindo", "linda",
        "lindos", "bonito", "bonita", "delicioso", "deliciosa", "gostoso", "gostosa", "atencioso",
        "atenciosa", "atenciosos", "educado", "educada", "eficiente", "eficientes", "resolvido",
        "resolvida", "resolvidinho", "resolveu", "resolveram", "funcionou", "funciona",
        "funcionando", "no prazo", "antes do prazo", "melhor", "beleza", "massa", "nota 10",
        "nota dez", "ágil", "prestativo", "prestativa", "confiável", "caprichado", "caprichada",
        "certinho", "certinha", "tranquilo", "tranquila", "boa qualidade", "bem embalado",
        "chegou certinho", "chegou rápido", "chegou bem", "em perfeito estado",
        "conforme anunciado", "simpático", "simpática", "gentil", "gentileza", "profissional",
        "profissionais", "honesto", "honesta", "fácil", "prático", "prática", "confortável", "útil",
        "ideal", "cheiroso", "fresco", "fresquinho", "limpo", "limpa", "bacana", "joia", "aliviado",
        "aliviada", "amável", "cordial", "pontual", "pontualidade", "cumpriu", "cumpriram",
        "vale a pena", "encantado", "encantada", "animado", "animada", "parceria", "deu certo",
        "tudo certo", "tudo ok", "perfeitinho", "excelência", "já chegou",
    ],
    strong_positive: &[
        "excelente", "excelentes", "perfeito", "perfeita", "maravilhoso", "maravilhosa", "incrível",
        "incríveis", "adorei", "amei", "parabéns", "sensacional", "fantástico", "fantástica",
        "espetacular", "show de bola", "impecável", "nota mil", "o melhor", "a melhor",
        "ótimo atendimento", "super recomendo", "maravilha", "excepcional", "fenomenal",
        "perfeição", "top demais", "amo", "sem palavras", "sucesso", "brilhante",
    ],
    negative: &[
        "ruim", "ruins", "mal", "mau", "má", "demora", "demorou", "demorando", "demorado",
        "demorada", "atrasado", "atrasada", "atraso", "atrasou", "lento", "lenta", "quebrado",
        "quebrada", "quebrou", "estragado", "estragada", "estragou", "defeito", "defeituoso",
        "defeituosa", "danificado", "danificada", "amassado", "amassada", "rasgado", "rasgada",
        "vazando", "ridículo", "ridícula", "decepcionado", "decepcionada", "decepção",
        "decepcionante", "chateado", "chateada", "chateação", "irritado", "irritada", "raiva",
        "bravo", "brava", "nervoso", "nervosa", "não funciona", "não funcionou", "não chegou",
        "nunca chegou", "ainda não", "não recebi", "não gostei", "não presta", "não serve",
        "não é justo", "não responde", "não respondem", "não atende", "não atendem", "nada chegou",
        "nada ainda", "sem resposta", "sem previsão", "nenhuma resposta", "ninguém responde",
        "reembolso", "estorno", "devolução", "devolver", "reclamação", "reclamar", "problema",
        "problemas", "errado", "errada", "erro", "faltando", "falta", "faltou", "incompleto",
        "incompleta", "frio", "fria", "sujo", "suja", "grosso", "grossa", "grosseiro", "grosseira",
        "grosseria", "mal educado", "mal educada", "cancelar", "cancelamento", "cancelado", "caro",
        "caríssimo", "cobrado", "cobraram", "cobrança", "triste", "preocupado", "preocupada",
        "insatisfeito", "insatisfeita", "descontente", "cansado", "cansada", "esperando",
        "aguardando", "tô esperando", "estou esperando", "meu dinheiro", "enganado", "enganada",
        "mentira", "mentiram", "vencido", "podre", "manchado", "riscado", "violado", "extraviado",
        "perdido", "perdida", "sumiu", "bloqueado", "falha", "falhou", "difícil", "complicado",
        "prejuízo", "inútil", "descumpriram", "ignorado", "ignorada", "ignoram", "chato", "chata",
        "pior", "feio", "feia", "lamentável", "abusivo", "abuso", "demorando muito", "enrolado",
        "enrolada", "enrolados", "enrolando", "enrolação",
    ],
    strong_negative: &[
        "péssimo", "péssima", "péssimos", "horrível", "horríveis", "terrível", "terríveis",
        "absurdo", "absurda", "revoltado", "revoltada", "revoltante", "golpe", "golpista",
        "golpistas", "fraude", "enganação", "roubo", "ladrões", "ladrão", "lixo", "porcaria",
        "vergonha", "que vergonha", "inaceitável", "descaso", "desrespeito", "palhaçada",
        "nunca mais", "o pior", "a pior", "merda", "furioso", "furiosa", "nojento", "nojenta",
        "vergonhoso", "indignado", "indignada",
    ],
    neutral: &[
        "bom dia", "boa tarde", "boa noite", "tudo bem", "tudo bom", "não obrigado", "não obrigada",
        "bom fim",
    ],
    negators: &[
        "não", "nao", "ñ", "n", "nunca", "jamais", "sem", "nem", "nenhum", "nenhuma",
    ],
    intensifiers: &[
        "muito", "mto", "mt", "muita", "tão", "super", "bem", "bastante", "extremamente",
        "totalmente", "mega", "hiper", "realmente", "muitíssimo", "demais",
    ],
    trailing_intensifiers: &["demais", "muito", "mesmo", "muitíssimo"],
    stopwords: &[
        "o", "a", "os", "as", "um", "uma", "que", "de", "do", "da", "dos", "das", "e", "é", "em",
        "no", "na", "nos", "nas", "não", "nao", "meu", "minha", "meus", "minhas", "seu", "sua",
        "você", "voce", "vc", "vcs", "vocês", "está", "estão", "estou", "tá", "tô", "com", "mas",
        "mais", "pra", "para", "por", "pelo", "pela", "isso", "isto", "esse", "essa", "ele", "ela",
        "eu", "foi", "já", "ainda", "hoje", "ontem", "também", "tambem", "quando", "onde", "porque",
        "como", "se", "me", "tenho", "tem", "até", "ao", "aos", "à", "então", "aqui", "agora", "só",
        "ja", "ninguém", "nada", "né", "aí", "cadê", "olá", "oi",
    ],
    courtesy: &[
        "olá", "ola", "oi", "bom", "boa", "dia", "tarde", "noite", "obrigado", "obrigada", "obg",
        "brigado", "brigada", "valeu", "vlw", "muito", "tchau", "abraço", "abraços", "ok", "beleza",
        "blz", "favor", "senhor", "senhora", "moça", "moço", "ajuda", "atenção", "tudo", "bem",
        "agradeço", "pessoal", "amigo", "amiga",
    ],
};

#[rustfmt::skip]
const INDONESIAN: Lexicon = Lexicon {
    language: Language::Indonesian,
    positive: &[
        "terima kasih", "terimakasih", "trimakasih", "makasih", "makasi", "trims", "bagus", "keren",
        "cepat", "cepet", "puas", "senang", "seneng", "senengnya", "suka", "sukak", "membantu",
        "ngebantu", "terbantu", "ramah", "memuaskan", "rekomen", "rekomended", "recomended",
        "rekomendasi", "amanah", "terpercaya", "sesuai", "sesuai pesanan", "sesuai deskripsi",
        "sesuai gambar", "aman", "lancar", "rapi", "rapih", "enak", "lezat", "cantik", "wangi",
        "oke banget", "ok banget", "sukses", "hebat", "cakep", "kece", "sip", "gercep",
        "fast respon", "respon cepat", "pengiriman cepat", "asli", "ori", "berfungsi",
        "berfungsi baik", "bersyukur", "alhamdulillah", "syukur", "bahagia", "lega", "mudah",
        "gampang", "murah", "berkualitas", "awet", "tepat waktu", "baik sekali", "sangat membantu",
        "top", "mantul", "mantab", "mantep", "joss", "jos", "kualitas bagus", "barang bagus",
        "sudah sampai", "udah sampai", "dengan selamat", "selamat", "responsif", "sopan",
        "profesional", "jujur", "tanggap", "sigap", "beres", "berhasil", "diperbaiki", "membaik",
        "nyaman", "empuk", "segar", "bersih", "halus", "lembut", "kokoh", "cocok", "langganan",
        "cinta", "lumayan", "ngerti", "solutif", "sudah diterima", "sudah beres", "sudah bisa",
        "udah bisa", "bisa lagi", "menyenangkan", "layak", "pelayanan bagus", "pelayanan baik",
        "pelayanannya bagus", "mantap kak", "kilat", "sangat baik",
    ],
    strong_positive: &[
        "mantap", "luar biasa", "terbaik", "sempurna", "juara", "sangat puas", "puas sekali",
        "puas banget", "keren banget", "bagus banget", "mantap jiwa", "sangat bagus",
        "top markotop", "istimewa", "seneng banget", "makasih banyak", "terima kasih banyak",
        "terimakasih banyak", "makasih banget", "memuaskan sekali",
    ],
    negative: &[
        "lambat", "lelet", "lemot", "lama", "lama banget", "lama sekali", "rusak", "pecah", "cacat",
        "penyok", "sobek", "robek", "bocor", "hilang", "salah", "salah kirim", "jelek",
        "jelek banget", "buruk", "payah", "marah", "kesal", "kesal banget", "kesel", "sebel",
        "bete", "nyesel", "menyesal", "tipu", "nipu", "bohong", "tidak bisa", "gak bisa", "ga bisa",
        "nggak bisa", "gabisa", "tidak sampai", "belum sampai", "belum datang", "belum diterima",
        "belum dikirim", "belum juga", "tidak ada respon", "gak ada respon", "ga ada respon",
        "tidak dibalas", "gak dibalas", "ga dibalas", "slow respon", "komplain", "keluhan",
        "masalah", "bermasalah", "telat", "terlambat", "ngaret", "mahal", "refund", "minta refund",
        "uang kembali", "balikin uang", "zonk", "capek", "cape", "eror", "gagal", "batal",
        "dibatalkan", "sedih", "kasar", "jutek", "cuek", "dicuekin", "diabaikan", "lecet",
        "tergores", "basi", "busuk", "kadaluarsa", "tidak sesuai", "gak sesuai", "ga sesuai",
        "nggak sesuai", "tidak berfungsi", "gak berfungsi", "ga berfungsi", "mati", "tidak nyala",
        "gak nyala", "ga nyala", "susah", "ribet", "repot", "nunggu", "menunggu", "nungguin", "php",
        "pelayanan buruk", "kurang puas", "tidak puas", "gak puas", "ga puas", "kapan sampai",
        "mana barangnya", "kecewa", "menyebalkan", "ngecewain", "mengecewakan", "kotor", "bau",
        "palsu", "kw", "abal", "hancur", "retak", "patah", "gimana sih", "males", "malas", "pusing",
        "bingung", "nyusahin", "dirugikan", "rugi", "kurang ajar", "tidak jelas", "gak jelas",
        "ga jelas", "nggak jelas", "masih belum",
    ],
    strong_negative: &[
        "parah", "parah banget", "parah sih", "penipu", "penipuan", "menipu", "kapok", "sampah",
        "sangat kecewa", "kecewa banget", "kecewa berat", "kecewa sekali", "keterlaluan",
        "tidak becus", "gak becus", "ga becus", "bangsat", "brengsek", "goblok", "bodoh",
        "terburuk", "paling buruk", "ancur", "sangat mengecewakan", "tidak profesional",
        "tidak bertanggung jawab",
    ],
    neutral: &[
        "selamat pagi", "selamat siang", "selamat sore", "selamat malam", "selamat datang",
        "tidak apa", "gak apa", "ga apa", "nggak apa",
    ],
    negators: &[
        "tidak", "tak", "nggak", "ngga", "gak", "ga", "enggak", "engga", "gk", "tdk", "bukan",
        "belum", "blm", "jangan", "tanpa", "kurang", "ndak",
    ],
    intensifiers: &[
        "sangat", "amat", "terlalu", "paling", "super", "sungguh", "bener", "benar",
    ],
    trailing_intensifiers: &["banget", "bgt", "sekali", "amat", "bener", "parah"],
    stopwords: &[
        "yang", "dan", "saya", "aku", "sy", "aq", "gue", "gw", "ini", "itu", "sudah", "udah", "sdh",
        "udh", "di", "ke", "dari", "untuk", "utk", "buat", "dengan", "dgn", "ada", "apa", "kok",
        "sih", "ya", "yg", "mau", "bisa", "kapan", "kenapa", "gimana", "bagaimana", "juga", "lagi",
        "masih", "tapi", "atau", "karena", "krn", "kalau", "kalo", "kami", "kita", "anda", "kamu",
        "kak", "min", "gan", "dong", "deh", "nih", "aja", "saja", "akan", "sama", "jadi", "jd",
        "pun", "kan", "harus", "baru", "hari", "tolong", "mohon", "nya", "halo",
    ],
    courtesy: &[
        "halo", "hallo", "hai", "hi", "selamat", "pagi", "siang", "sore", "malam", "terima",
        "kasih", "makasih", "makasi", "trims", "terimakasih", "banyak", "kak", "kakak", "min",
        "admin", "gan", "sis", "bang", "mas", "mbak", "pak", "bu", "ok", "oke", "okay", "baik",
        "siap", "sip", "salam", "assalamualaikum", "permisi", "mohon", "tolong", "bantuannya", "ya",
        "dong", "infonya", "bantuan",
    ],
};
