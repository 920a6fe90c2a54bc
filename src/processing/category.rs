//! The keyword lexicon that picks a conversation's category (API.md §5) and the emoji that goes
//! with it.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::text::{light_stem, tokenize};
pub use crate::domain::categories::{ConversationCategory, SystemFolder, system_folder_for};

/// Keywords per category. A trailing `!` marks a strong keyword (weight 2) that settles the
/// category on its own; a trailing `*` matches any word with that prefix. Words are matched
/// after light stemming, so they are written in the singular.
#[rustfmt::skip]
const LEXICON: &[(ConversationCategory, &[&str])] = {
    use ConversationCategory as C;
    &[
        (C::Health, &[
            "doctor!", "dentist!", "dental!", "clinic!", "hospital!", "symptom!", "medication!",
            "prescription!", "allergy", "allergic", "therapy", "physio*", "nurse", "surgery!",
            "vaccine!", "blood", "pain", "headache!", "fever!", "flu", "cough", "diet", "calorie",
            "workout", "gym", "exercise", "sleep", "appointment", "checkup!", "check-up!", "crown",
            "tooth", "teeth", "pill", "pharmacy!", "medicine!", "health!", "healthy", "injury",
            "knee", "cholesterol!", "diabete*", "x-ray!", "mri!", "sick", "ill", "covid", "vitamin",
            "weight", "doctor's", "dermatolog*", "cardio*", "dr!", "patient", "stretch*", "peanut",
            "shellfish",
            "meds!", "consulta!", "clínica!", "clinica!", "doutora!", "doutor!", "doctora!", "médico!", "medico!", "arzt!", "ärztin!", "médecin!", "dentista!", "medicamento!",
        ]),
        (C::Finance, &[
            "budget!", "invoice!", "tax!", "taxe", "bank!", "loan!", "mortgage", "credit!", "debt!",
            "saving", "invest*", "stock", "portfolio!", "expense!", "payment", "pay", "bill",
            "rent", "salary", "paycheck!", "insurance", "dividend!", "crypto*", "bitcoin!",
            "account", "accountant!", "refund", "price", "cost", "money!", "dollar", "euro", "fund",
            "retirement!", "401k!", "ira", "spending", "finance!", "financial!", "reimburse*",
            "receipt", "subscription", "free trial!",
            "steuererklärung!", "finanzamt!", "impuestos!", "impôts!", "banco", "rechnung", "factura", "fatura",
        ]),
        (C::Legal, &[
            "lawyer!", "attorney!", "contract!", "lawsuit!", "court!", "legal!", "sue", "judge",
            "clause!", "nda!", "compliance!", "lease", "liability!", "settlement", "custody!",
            "notary!", "trademark!", "patent!", "copyright!", "gdpr!", "regulation",
        ]),
        (C::Education, &[
            "exam!", "homework!", "class", "course!", "lecture!", "professor!", "teacher",
            "student", "school", "university!", "college!", "study", "studying", "assignment!",
            "essay!", "grade", "semester!", "tutor*", "learn", "learning", "lesson!", "syllabus!",
            "thesis!", "degree", "quiz!", "midterm!", "final", "textbook!", "curriculum!",
            "scholarship!", "campus",
            "rubric!", "period", "lesson plan!", "idioma", "lernen", "apprendre", "learn italian!", "learn spanish!", "learn french!",
        ]),
        (C::Technology, &[
            "code!", "coding!", "software!", "bug!", "deploy*", "server!", "database!", "api!",
            "app", "laptop", "computer!", "programming!", "python!", "rust!", "javascript!",
            "github!", "release", "backend!", "frontend!", "cloud", "ai!", "algorithm!",
            "kubernetes!", "docker!", "repo!", "repository!", "pull", "merge", "outage!",
            "latency!", "sql!", "iphone", "android!", "password", "wifi", "router", "update",
            "feature", "engineering", "engineer", "developer!", "tech!", "technology!", "machine",
            "model", "data", "migration!", "crash", "login",
            "postmortem!", "post mortem!", "hotfix!", "incident", "logs", "rollback!", "roll back", "vpn!", "sign in", "token",
        ]),
        (C::Business, &[
            "client!", "customer!", "sale!", "revenue!", "quarter", "q1!", "q2!", "q3!", "q4!",
            "marketing!", "strategy", "stakeholder!", "vendor!", "contract", "deal!", "pitch",
            "proposal!", "kpi!", "roadmap!", "market", "partner*", "negotiat*", "pricing!", "board",
            "profit!", "growth", "b2b!", "campaign", "brand", "product", "forecast!",
            "procurement!", "sales!",
            "newsletter!", "ctr!", "instagram", "copy",
        ]),
        (C::Work, &[
            "meeting!", "manager!", "boss!", "colleague!", "coworker!", "deadline!", "project",
            "team", "office!", "report", "presentation!", "slide!", "deck!", "standup!",
            "stand-up!", "promotion", "performance", "review", "hr!", "onboarding!", "shift",
            "work", "job!", "interview!", "hire", "hiring!", "email", "agenda!", "task", "workload!",
            "overtime!", "spreadsheet!", "memo!", "okr!", "quarterly", "sync", "1:1", "one-on-one!",
            "leave", "expense report!", "conference room!", "resume!", "cv!", "freelanc*",
            "coworking",
            "sprint!", "retro!", "retrospective!", "ticket", "pto!", "workday", "all hands!", "all-hands!", "runbook", "on call!", "front desk!", "cover letter!", "role", "self assessment!", "réunion!", "reunião!", "reunión!", "besprechung!", "maquette!", "mail", "bericht", "kollegen", "chef!",
        ]),
        (C::Entrepreneurship, &[
            "startup!", "founder!", "cofounder!", "co-founder!", "investor!", "vc!", "seed!",
            "fundraising!", "fundraise!", "mvp!", "pivot!", "valuation!", "equity!", "runway!",
            "incubator!", "accelerator!", "bootstrap*", "entrepreneur*", "traction", "pitch deck!",
            "mrr!", "arr!", "cap table!", "investors!", "beta", "users",
        ]),
        (C::Parenting, &[
            "kid", "kids!", "baby!", "toddler!", "daycare!", "diaper!", "parenting!", "nanny!",
            "babysitter!", "pediatrician!", "teething!", "bedtime", "school", "homework", "nap",
            "stroller!", "playdate!", "preschool!", "kindergarten!", "son", "daughter",
            "parent teacher!",
            "field trip!", "times tables!", "teacher", "math facts!",
        ]),
        (C::Family, &[
            "mom", "mother", "dad", "father", "parent", "brother", "sister", "sibling", "grandma!",
            "grandpa!", "grandmother!", "grandfather!", "aunt", "uncle", "cousin", "family!",
            "relative", "in-law*", "reunion", "thanksgiving", "niece", "nephew", "husband", "wife",
            "nonna!", "nonno!", "zia", "tía", "tia", "mija", "mijo", "mamá", "mama", "papá", "abuela!", "abuelo!", "hermana", "hermano", "madre", "padre", "mutter", "vater", "oma!", "opa!", "mère", "père", "mãe", "família!", "familia!", "famille!",
        ]),
        (C::Romantic, &[
            "dating!", "girlfriend!", "boyfriend!", "anniversary!", "valentine!", "romantic!",
            "romance!", "crush!", "partner", "relationship", "kiss!", "proposal",
            "engagement", "wedding", "honeymoon!", "tinder!", "bumble!",
            "florist!", "seating chart!", "caterer!",
        ]),
        (C::Travel, &[
            "flight!", "airport!", "hotel!", "trip!", "vacation!", "passport!", "visa", "luggage!",
            "suitcase!", "itinerary!", "booking", "airbnb!", "travel!", "traveling!", "boarding",
            "layover!", "beach", "tourist!", "destination", "abroad", "train", "road trip",
            "check-in", "holiday", "cruise!", "rental",
        ]),
        (C::Social, &[
            "party!", "friend", "friends", "hangout!", "brunch", "bbq!", "barbecue!", "drinks",
            "bar", "pub", "birthday", "dinner", "lunch", "coffee", "catch", "invite", "guest",
            "celebrate", "celebration", "gathering!", "neighbor", "neighbour", "chat", "weekend",
            "nos vemos!", "venue", "reunion", "quedamos!", "on se voit!", "cumpleaños", "geburtstag", "anniversaire", "aniversário",
        ]),
        (C::Sports, &[
            "game", "match", "team", "score", "soccer!", "football!", "basketball!", "tennis!",
            "baseball!", "hockey!", "golf!", "marathon!", "run", "running", "race", "coach",
            "league!", "playoff*", "championship!", "tournament!", "nba!", "nfl!", "olympic*",
            "cycling", "swim*", "yoga", "goal", "player", "stadium!", "training", "warmup*",
            "warm-up*", "hike", "hiking",
            "5k!", "10k!", "pace", "splits", "half marathon!", "long run!",
        ]),
        (C::Politics, &[
            "election!", "vote", "voting!", "senator!", "congress!", "parliament!", "president",
            "government!", "policy", "campaign", "democrat*", "republican*", "politic*",
            "minister!", "law", "legislation!", "ballot!", "mayor", "governor!", "referendum!",
            "council!", "city council!", "public comment!", "clerk", "debate!", "candidate*!", "bike lane",
        ]),
        (C::News, &[
            "news!", "headline!", "article", "journalist!", "reporter!", "breaking!", "announced",
            "announcement", "press", "newspaper!", "podcast", "report",
            "nachrichten!", "noticias!", "notícias!", "infos",
        ]),
        (C::Entertainment, &[
            "movie!", "film!", "show", "series", "netflix!", "episode!", "season", "tv", "actor",
            "actress", "cinema!", "theater", "theatre", "comedy", "concert", "game", "video",
            "gaming!", "videogame!", "playstation!", "xbox!", "nintendo!", "trailer", "streaming",
            "youtube", "anime!", "festival",
        ]),
        (C::Music, &[
            "song!", "album!", "band!", "concert!", "guitar!", "piano!", "drum*", "singer!",
            "music!", "playlist!", "spotify!", "lyric*", "melody!", "chord!", "gig!", "tour",
            "vinyl!", "rehearsal!", "choir!", "jazz!", "rock", "rap!", "violin!",
        ]),
        (C::Weather, &[
            "weather", "rain!", "raining!", "snow!", "storm!", "forecast", "temperature!",
            "sunny!", "cloudy!", "humid!", "wind", "windy!", "hurricane!", "heatwave!", "freezing!",
            "umbrella!", "degree", "thunder*", "tornado!",
            "wetter!", "wetterbericht!", "regnen!", "regen!", "frost!", "schnee!", "lluvia!", "llover!", "pluie!", "chuva!", "gewitter!",
        ]),
        (C::Science, &[
            "research!", "experiment!", "hypothesi*", "lab!", "laboratory!", "physics!",
            "chemistry!", "biology!", "scientist!", "science!", "study", "data", "theory",
            "molecule!", "quantum!", "genetic*", "dna!", "telescope!", "astronomy!", "species",
            "evolution", "paper", "peer",
        ]),
        (C::Philosophy, &[
            "philosophy!", "philosopher!", "meaning", "existence!", "ethic*", "moral*",
            "consciousness!", "stoic*", "free will!", "truth", "metaphysic*", "existential!",
            "nietzsche!", "socrate*", "plato!", "kant!", "virtue",
        ]),
        (C::Spiritual, &[
            "god!", "prayer!", "pray!", "church!", "mosque!", "temple!", "faith!", "spiritual!",
            "meditation!", "meditate!", "soul!", "bible!", "quran!", "buddh*", "religio*",
            "worship!", "sermon!", "synagogue!", "blessing", "karma!",
        ]),
        (C::Inspiration, &[
            "inspire*", "inspiring!", "inspiration!", "motivation!", "motivat*", "dream", "goal",
            "purpose", "believe", "passion", "quote!", "mindset!", "grit", "never give up!",
            "potential",
        ]),
        (C::Psychology, &[
            "anxiety!", "anxious!", "stress", "stressed", "depress*", "therapist!", "psycholog*",
            "emotion*", "feeling", "mental!", "burnout!", "mindfulness!", "trauma!", "behavior",
            "behaviour", "cognitive!", "habit", "overwhelmed!", "self-esteem!", "panic!", "lonely",
            "therapy!", "boundary!", "boundaries!", "confrontation!", "journaling", "thought record!", "session",
        ]),
        (C::Real, &[
            "apartment!", "house", "realtor!", "mortgage!", "listing!", "property!", "landlord!",
            "tenant!", "lease!", "real estate!", "down payment!", "open house!", "condo!",
            "renovation", "bedroom", "neighborhood", "escrow!", "appraisal!", "rent",
            "realty!", "pre approval!", "preapproval!", "two bedroom!", "ashby",
        ]),
        (C::Architecture, &[
            "architect!", "architecture!", "blueprint!", "floor plan!", "facade!", "building",
            "construction", "structural!", "zoning!", "skyscraper!", "cathedral", "bridge",
        ]),
        (C::Design, &[
            "design!", "designer!", "figma!", "mockup!", "wireframe!", "prototype", "logo!",
            "font!", "typography!", "color", "colour", "layout!", "ux!", "ui!", "palette!",
            "sketch", "branding!", "illustration!",
            "repaint!", "paint", "sage green!",
        ]),
        (C::Literature, &[
            "book", "novel!", "author!", "poem!", "poetry!", "reading", "chapter!", "writer",
            "literature!", "fiction!", "library", "publish*", "manuscript!", "bookclub!",
            "book club!", "shakespeare!", "memoir!",
            "narrator*!", "pages", "character", "piranesi!",
        ]),
        (C::History, &[
            "history!", "historical!", "century!", "ancient!", "war", "empire!", "medieval!",
            "museum", "archaeolog*", "civilization!", "revolution", "dynasty!", "wwii!", "ww2!",
            "roman", "historian!",
            "guild*!", "merchant", "1300s!", "kontor!",
        ]),
        (C::Economics, &[
            "economy!", "economic*", "inflation!", "recession!", "gdp!", "interest rate!",
            "unemployment!", "fed", "central bank!", "supply", "demand", "tariff*", "trade",
            "market", "economist!",
        ]),
        (C::Environment, &[
            "climate!", "environment*", "recycl*", "sustainab*", "carbon!", "emission*",
            "pollution!", "plastic", "solar!", "renewable!", "compost!", "wildlife!",
            "deforestation!", "conservation!", "garden", "gardening", "tree", "planet",
        ]),
        (C::Personal, &[
            "grocery", "groceries!", "errand!", "laundry", "chore*", "clean", "cleaning",
            "haircut!", "cook", "cooking", "recipe!", "journal!", "diary!", "hobby!", "pet", "dog",
            "cat", "vet!", "car", "mechanic!", "oil change!", "shopping", "buy", "milk", "plumber!",
            "package", "dry cleaning!", "faucet!", "leak*", "plant", "food", "license", "dmv!",
            "car service!",
            "u haul!", "moving", "internet", "meds", "plombier!", "fontanero!", "klempner!", "encanador!", "fuite", "évier",
        ]),
    ]
};

/// Minimum score for a category to be chosen; below it the conversation is `other`. One keyword
/// is enough: most conversations are short, and a wrong specific category costs little more than
/// `other`, while strong keywords (weight 2) still outvote incidental ones.
const SCORE_THRESHOLD: u32 = 1;

struct Lexicon {
    exact: HashMap<&'static str, Vec<(usize, u32)>>,
    prefixes: Vec<(&'static str, usize, u32)>,
    /// Two-word keywords ("real estate"), looked up by their first word.
    phrases: HashMap<&'static str, Vec<(&'static str, &'static str, usize, u32)>>,
}

static LEXICON_INDEX: LazyLock<Lexicon> = LazyLock::new(|| {
    let mut lexicon = Lexicon {
        exact: HashMap::new(),
        prefixes: Vec::new(),
        phrases: HashMap::new(),
    };
    for (index, (_, words)) in LEXICON.iter().enumerate() {
        for entry in words.iter() {
            let (word, weight) = match entry.strip_suffix('!') {
                Some(word) => (word, 2),
                None => (*entry, 1),
            };
            if let Some(prefix) = word.strip_suffix('*') {
                lexicon.prefixes.push((prefix, index, weight));
            } else if let Some((first, rest)) = word.split_once(' ') {
                lexicon
                    .phrases
                    .entry(first)
                    .or_default()
                    .push((rest, word, index, weight));
            } else {
                lexicon.exact.entry(word).or_default().push((index, weight));
            }
        }
    }
    lexicon
});

/// Scores every category by its keywords and returns the best one, or `other` when nothing
/// reaches the threshold. Ties go to the category listed first in the lexicon.
pub fn categorize(text: &str) -> ConversationCategory {
    let scores = scores(text);
    let (best, &score) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        .expect("lexicon is not empty");
    if score >= SCORE_THRESHOLD {
        LEXICON[best].0
    } else {
        ConversationCategory::Other
    }
}

/// Every category's score for a text, in lexicon order.
fn scores(text: &str) -> Vec<u32> {
    let lexicon = &*LEXICON_INDEX;
    let tokens = tokenize(text);
    let mut scores = vec![0u32; LEXICON.len()];
    // Count each keyword once per conversation so that one repeated word cannot outvote several
    // different ones.
    let mut seen: HashSet<(usize, &str)> = HashSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let stem = light_stem(token);
        // "grandma's", "boarding's": the word without its possessive or contracted "is".
        let bare = token.strip_suffix("'s");
        let candidates = [
            Some(token.as_str()),
            (stem != *token).then_some(stem.as_str()),
            bare,
        ];
        for candidate in candidates.into_iter().flatten() {
            if let Some((&word, hits)) = lexicon.exact.get_key_value(candidate) {
                for &(index, weight) in hits {
                    if seen.insert((index, word)) {
                        scores[index] += weight;
                    }
                }
                break;
            }
        }
        for &(prefix, index, weight) in &lexicon.prefixes {
            if token.starts_with(prefix) && seen.insert((index, prefix)) {
                scores[index] += weight;
            }
        }
        if let (Some(phrases), Some(next)) =
            (lexicon.phrases.get(token.as_str()), tokens.get(i + 1))
        {
            for &(rest, phrase, index, weight) in phrases {
                if *next == rest && seen.insert((index, phrase)) {
                    scores[index] += weight;
                }
            }
        }
    }
    scores
}

/// Keywords whose emoji says more than the category's, with the categories each one may
/// refine: "dinner" is the topic of a social evening, but only an aside in a doctor's advice
/// or a work meeting, where the category's own emoji fits better. The first one present wins.
const EMOJI_OVERRIDES: &[(&str, &str, &[ConversationCategory])] = {
    use ConversationCategory as C;
    const LEISURE: &[C] = &[
        C::Social,
        C::Romantic,
        C::Family,
        C::Personal,
        C::Travel,
        C::Other,
    ];
    const PEOPLE: &[C] = &[
        C::Social,
        C::Family,
        C::Personal,
        C::Parenting,
        C::Romantic,
        C::Other,
    ];
    const WORK: &[C] = &[C::Work, C::Business, C::Entrepreneurship, C::Other];
    const TRIPS: &[C] = &[
        C::Travel,
        C::Work,
        C::Business,
        C::Personal,
        C::Family,
        C::Other,
    ];
    &[
        ("birthday", "🎉", PEOPLE),
        ("dentist", "🦷", &[C::Health, C::Personal, C::Other]),
        ("dental", "🦷", &[C::Health, C::Personal, C::Other]),
        ("flight", "✈️", TRIPS),
        ("airport", "✈️", TRIPS),
        (
            "wedding",
            "💍",
            &[C::Romantic, C::Family, C::Social, C::Other],
        ),
        ("baby", "👶", &[C::Parenting, C::Family, C::Other]),
        ("doctor", "🩺", &[C::Health, C::Personal, C::Other]),
        ("interview", "🤝", WORK),
        ("exam", "📝", &[C::Education, C::Health, C::Other]),
        ("gym", "🏋️", &[C::Health, C::Sports, C::Personal, C::Other]),
        (
            "workout",
            "🏋️",
            &[C::Health, C::Sports, C::Personal, C::Other],
        ),
        ("dog", "🐶", &[C::Personal, C::Family, C::Other]),
        ("cat", "🐱", &[C::Personal, C::Family, C::Other]),
        ("coffee", "☕", LEISURE),
        ("pizza", "🍕", LEISURE),
        ("dinner", "🍽️", LEISURE),
        ("lunch", "🥪", LEISURE),
        ("grocery", "🛒", &[C::Personal, C::Family, C::Other]),
        ("groceries", "🛒", &[C::Personal, C::Family, C::Other]),
        ("car", "🚗", &[C::Personal, C::Travel, C::Other]),
        ("rain", "🌧️", &[C::Weather, C::Travel, C::Social, C::Other]),
        ("snow", "❄️", &[C::Weather, C::Travel, C::Social, C::Other]),
        ("bug", "🐛", &[C::Technology, C::Work]),
        (
            "vacation",
            "🏖️",
            &[C::Travel, C::Personal, C::Family, C::Other],
        ),
        (
            "beach",
            "🏖️",
            &[C::Travel, C::Personal, C::Family, C::Social, C::Other],
        ),
        ("movie", "🎬", &[C::Entertainment, C::Social, C::Other]),
        (
            "concert",
            "🎤",
            &[C::Music, C::Entertainment, C::Social, C::Other],
        ),
        ("book", "📖", &[C::Literature, C::Education, C::Other]),
        ("soccer", "⚽", &[C::Sports, C::Parenting, C::Other]),
        ("basketball", "🏀", &[C::Sports, C::Parenting, C::Other]),
        ("tennis", "🎾", &[C::Sports, C::Other]),
        ("party", "🎉", PEOPLE),
        (
            "anniversary",
            "💕",
            &[C::Romantic, C::Family, C::Social, C::Other],
        ),
        ("meeting", "📅", WORK),
    ]
};

/// The emoji for a conversation: a keyword override when one is present and fits the
/// category, else the category's.
pub fn emoji_for(text: &str, category: ConversationCategory) -> &'static str {
    let tokens: HashSet<String> = tokenize(text).into_iter().collect();
    EMOJI_OVERRIDES
        .iter()
        .find(|(word, _, fits)| fits.contains(&category) && tokens.contains(*word))
        .map_or(category.emoji(), |(_, emoji, _)| emoji)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips_through_its_wire_name() {
        assert_eq!(ConversationCategory::ALL.len(), 33);
        for category in ConversationCategory::ALL {
            assert_eq!(
                ConversationCategory::parse(category.as_str()),
                Some(category)
            );
        }
        assert_eq!(ConversationCategory::parse("real_estate"), None);
    }

    #[test]
    fn every_lexicon_entry_names_a_real_category_other_than_other() {
        assert!(
            LEXICON
                .iter()
                .all(|(c, _)| *c != ConversationCategory::Other)
        );
    }

    #[test]
    fn categories_are_filed_in_the_documented_system_folders() {
        use ConversationCategory as C;
        assert_eq!(system_folder_for(C::Legal), SystemFolder::Work);
        assert_eq!(system_folder_for(C::Inspiration), SystemFolder::Social);
        assert_eq!(system_folder_for(C::Health), SystemFolder::Personal);
        assert_eq!(system_folder_for(C::Other), SystemFolder::Personal);
        assert_eq!(SystemFolder::Social.order(), 2);
    }

    #[test]
    fn a_dentist_conversation_is_health_with_a_tooth() {
        let text = "I need to call the dentist about my crown, the tooth still hurts.";
        let category = categorize(text);
        assert_eq!(category, ConversationCategory::Health);
        assert_eq!(emoji_for(text, category), "🦷");
    }

    #[test]
    fn a_meal_mentioned_in_a_work_meeting_does_not_override_its_emoji() {
        let text = "Standup: I need to finish the api docs by Wednesday, and I'll review the \
                    pull request after lunch before the team meeting.";
        let category = categorize(text);
        assert_eq!(category, ConversationCategory::Work);
        assert_eq!(emoji_for(text, category), "📅");
        let advice = "My doctor wants me to walk for twenty minutes after dinner.";
        assert_eq!(emoji_for(advice, ConversationCategory::Health), "🩺");
        assert_eq!(
            emoji_for("Dinner with Sam on Friday", ConversationCategory::Social),
            "🍽️"
        );
    }

    #[test]
    fn a_budget_review_is_finance() {
        assert_eq!(
            categorize("We went through the budget and the expenses for the quarter."),
            ConversationCategory::Finance
        );
    }

    #[test]
    fn a_text_without_keywords_is_other() {
        assert_eq!(
            categorize("hello there, nice to see you"),
            ConversationCategory::Other
        );
    }
}
