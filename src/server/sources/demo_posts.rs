//! The posts of the offline `demo` source.
//!
//! A person trying the app types an everyday word and expects to see posts
//! within seconds, in many languages and scripts, from people who look real.
//! The generator is seeded and self-contained (no `rand`, no clock for its
//! choices) so that tests and screenshots can rely on the same sequence.
//!
//! Posts come in blocks of ten: each block holds one post of every primary
//! topic and one secondary topic (see `PRIMARY`, `SECONDARY`) in a shuffled
//! order, and the rest is picked freely. This is what guarantees that `music`,
//! `rust, python`, `#news` and `coffee -tea` each match within the first
//! forty posts of any seed, while the order still looks random.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use self::Topic::*;
use crate::wire::Tweet;

/// What a template is about: decides which slot of a block it may fill and
/// which hashtags may be appended to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topic {
    Music,
    Coffee,
    Tea,
    Code,
    Web,
    News,
    Sports,
    Travel,
    Food,
    Weather,
    Pets,
    Photo,
    Books,
    Space,
    Climate,
    Gaming,
    OpenSource,
    Daily,
}

const ALL_TOPICS: [Topic; 18] = [
    Music, Coffee, Tea, Code, Web, News, Sports, Travel, Food, Weather, Pets, Photo, Books, Space,
    Climate, Gaming, OpenSource, Daily,
];

/// One post of each in every block: every template of these topics holds
/// the search word of its topic (`music`, `rust`/`python`, `#news`,
/// `coffee` without `tea`), checked by a test.
const PRIMARY: [Topic; 4] = [Music, Code, News, Coffee];

/// One of these per block, in turn, so `weather`, `cats OR dogs` and
/// `"open source"` show up at least once in any forty posts.
const SECONDARY: [Topic; 3] = [Weather, Pets, OpenSource];

/// Ten posts at 4 per second: every everyday search gets a hit within
/// about two and a half seconds.
const BLOCK_LEN: usize = 10;

/// A template is not used again until this many posts later, so no text
/// repeats within any run of this many posts.
const NO_REPEAT_WINDOW: u64 = 50;

/// A free slot leaves an anchor topic alone when fewer fresh templates than
/// this are left, so its own slot in the coming blocks always finds a fresh
/// one (a block holds at most one post of each anchor topic, and a window of
/// [`NO_REPEAT_WINDOW`] posts touches at most six blocks).
const ANCHOR_RESERVE: usize = 8;

/// How many topics a free slot tries before taking the stalest template.
const FREE_TRIES: usize = 8;

/// How often an author writes in their own language when a template exists
/// in it; otherwise they write in English.
const NATIVE_PERCENT: usize = 70;

const TAG_PERCENT: usize = 35;
const EMOJI_PERCENT: usize = 15;

/// The length limit the original app's posts had; the cards are styled for it.
const MAX_CHARS: usize = 280;

impl Topic {
    fn is_anchor(self) -> bool {
        PRIMARY.contains(&self) || SECONDARY.contains(&self)
    }

    /// Hashtags that may be appended; the first is the most common one.
    /// None of the coffee ones says `tea`, or `coffee -tea` would lose posts.
    fn tags(self) -> &'static [&'static str] {
        match self {
            Music => &["#music", "#nowplaying", "#vinyl", "#playlist"],
            Coffee => &["#coffee", "#coffeetime", "#barista", "#morning"],
            Tea => &["#tea", "#teatime"],
            Code => &["#programming", "#rustlang", "#python", "#100DaysOfCode"],
            Web => &["#webdev", "#javascript", "#wasm", "#golang"],
            News => &["#news", "#localnews"],
            Sports => &["#sports", "#football", "#running"],
            Travel => &["#travel", "#wanderlust"],
            Food => &["#food", "#homecooking"],
            Weather => &["#weather", "#forecast"],
            Pets => &["#pets", "#cats", "#dogs"],
            Photo => &["#photography", "#filmisnotdead"],
            Books => &["#books", "#amreading"],
            Space => &["#space", "#astronomy"],
            Climate => &["#climate", "#sustainability"],
            Gaming => &["#gaming", "#indiegames"],
            OpenSource => &["#opensource", "#foss"],
            Daily => &["#smallwins", "#life"],
        }
    }
}

/// The cast: (display name, handle, language, weight). A few chatty people
/// post more often than the rest, as on any real timeline; `amara_codes`
/// is the chattiest, so `from:amara_codes` is a good search to try.
const AUTHORS: &[(&str, &str, &str, u32)] = &[
    ("Amara Okafor", "amara_codes", "en", 3),
    ("Kenji Watanabe", "kenji_w", "ja", 2),
    ("Lucía Fernández", "lucia_fz", "es", 3),
    ("Ahmed Al-Rashid", "ahmed_alrashid", "ar", 1),
    ("Priya Natarajan", "priya_nat", "en", 2),
    ("Jonas Müller", "jonas_mueller", "de", 2),
    ("Chloé Dubois", "chloe_dbs", "fr", 2),
    ("Olga Ivanova", "olga_iv", "ru", 1),
    ("Mateo Rojas", "mateo_rojas", "es", 1),
    ("Valentina Cruz", "vale_cruz", "es", 1),
    ("Camila Souza", "camila_souza", "pt-BR", 2),
    ("Rafael Oliveira", "rafa_oliveira", "pt-BR", 1),
    ("Yuki Tanaka", "yuki_tnk", "ja", 1),
    ("Fatima Zahra Benali", "fatima_zb", "ar", 1),
    ("Arjun Mehta", "arjun_mehta", "hi", 1),
    ("Ananya Sharma", "ananya_reads", "hi", 1),
    ("Giulia Romano", "giulia_romano", "it", 1),
    ("Marco Bianchi", "marco_b", "it", 1),
    ("Dmitri Sokolov", "dmitri_sk", "ru", 1),
    ("Seo-yeon Park", "seoyeon_p", "ko", 1),
    ("Min-jun Kim", "minjun_dev", "ko", 1),
    ("Sofia Lindqvist", "sofia_lq", "en", 1),
    ("Lars Jensen", "lars_j", "en", 1),
    ("Mei Lin", "mei_lin", "en", 1),
    ("Kwame Mensah", "kwame_m", "en", 2),
    ("Noah Bennett", "noah_b", "en", 1),
    ("Emily Carter", "em_carter", "en", 1),
    ("Siobhan O'Neill", "siobhan_on", "en", 1),
    ("Tomasz Kowalski", "tomasz_k", "en", 1),
    ("Élodie Martin", "elodie_m", "fr", 1),
    ("Hannah Schmidt", "hannah_sch", "de", 1),
    ("Nguyen Thi Lan", "lan_nguyen", "en", 1),
    ("Aisha Bello", "aisha_bello", "en", 1),
    ("Diego Herrera", "diego_hr", "es", 1),
    ("Isabela Costa", "isa_costa", "pt-BR", 1),
    ("Hiroshi Sato", "hiro_sato", "ja", 1),
    ("Layla Haddad", "layla_h", "ar", 1),
    ("Rohan Gupta", "rohan_g", "hi", 1),
    ("Ingrid Solberg", "ingrid_sb", "en", 1),
    ("Samir Khan", "samir_k", "en", 1),
    ("Zanele Dlamini", "zanele_d", "en", 1),
    ("Chiara Conti", "chiara_c", "it", 1),
];

/// Only reserved domains (RFC 2606), so a click never lands on a stranger's site.
const LINKS: &[&str] = &[
    "https://example.com/blog/notes",
    "https://www.example.org/read/42",
    "https://example.net/photos/sunrise",
    "https://example.com/watch?v=demo",
    "https://www.example.com/events/meetup",
    "https://example.org/podcast/17",
    "https://example.net/docs/start",
    "https://example.com/p/8f3a9c",
];

/// Unbroken runs that a card must wrap rather than overflow.
const LONG_WORDS: &[&str] = &[
    "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaah",
    "#ThisIsTheLongestHashtagIHaveEverWrittenAndIRegretAbsolutelyNothing",
    "supercalifragilisticexpialidocious-and-then-some-more-because-why-not",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
];

const LONG_LINKS: &[&str] = &[
    "https://example.com/2026/11/25/a-very-long-article-slug-that-just-keeps-going-until-the-card-has-to-wrap-it",
    "https://www.example.org/share?id=8f3a9c2e7b1d4f6a0e5c9b8d7a6f5e4d3c2b1a09&utm_source=demo&utm_medium=post",
    "https://example.net/files/Screenshot_2026-11-25_at_12.00.00_final_FINAL_v3_reallyfinal.png",
];

const EMOJI: &[&str] = &["✨", "🙌", "😄", "🔥", "👀", "🙂", "💯", "🤔"];

/// (topic, language, text). Placeholders: `{m}` a mention of another cast
/// member, `{link}` a short link, `{n}` a small number, `{longword}` and
/// `{longlink}` an unbroken run of 45 to 110 characters. No other braces.
const TEMPLATES: &[(Topic, &str, &str)] = &[
    // Music: every one holds `music` or `#music`.
    (Music, "en", "Can't stop replaying this album. Some music just finds you at the right moment 🎧 #music"),
    (Music, "en", "Hot take: the best music discovery still happens in tiny record shops, not in algorithms. {m} agree?"),
    (Music, "en", "Live music tonight at the corner bar: a jazz trio that clearly rehearsed zero times and still nailed it 🎷"),
    (Music, "en", "Made a focus playlist for long coding sessions: lo-fi, ambient, a bit of Brazilian jazz. {link} #music"),
    (Music, "en", "Ten years of piano lessons and I still can't sight-read. Music is humbling."),
    (Music, "en", "Music recommendation thread! Drop one song that got you through this week 👇 #music"),
    (Music, "en", "The festival lineup just dropped and my wallet is already crying. Who's going? {m} #music"),
    (Music, "en", "Found my grandfather's vinyl collection in the attic. Tonight's soundtrack: whatever music was popular in 1974 📀"),
    (Music, "en", "Learning guitar at 35: fingertips hurt, neighbours suffer, soul improves. 10/10 would recommend music as a hobby 🎸"),
    (Music, "en", "Sooooooooooooooooooooooooooooooooooooooooooooooooooooooo good. This new music is everything 🎶 #music"),
    (Music, "es", "No hay nada como descubrir música nueva un domingo por la tarde 🎶 ¿Recomendaciones? #music"),
    (Music, "es", "Anoche fui a un concierto pequeñito en Madrid y salí con la piel de gallina. Qué bonita es la música en directo. #music"),
    (Music, "fr", "Ce matin, café et vieux vinyles de chanson française. La musique rend tout plus doux. #music"),
    (Music, "de", "Endlich wieder Chorprobe! Nichts verbindet Menschen so sehr wie gemeinsam Musik zu machen. #music"),
    (Music, "pt-BR", "Domingo de sol pede uma playlist de bossa nova no volume máximo ☀️🎶 #music #MPB"),
    (Music, "ja", "今日は一日中シティポップを聴いてる。最高の作業用BGM 🎧 #music"),
    (Music, "ar", "لا شيء يضاهي صوت العود في ليلة هادئة 🎶 #music"),
    (Music, "hi", "बारिश, चाय और पुराने गाने… आज का music mood एकदम सही है 🎶"),
    (Music, "it", "Stasera concerto d'organo in una chiesa di Bologna: la musica in quegli spazi è un'altra cosa. #music"),
    (Music, "ru", "Весь вечер слушаю старые пластинки отца. Такую музыку сейчас почти не пишут. #music"),
    (Music, "ko", "퇴근길에 인디 음악 듣는 시간이 하루 중 제일 행복해요 🎧 #music"),
    // Code: every one holds `rust` or `python` as a word or a piece of one.
    (Code, "en", "Finally rewrote our log parser in Rust. 40x faster and the borrow checker only made me cry twice 🦀 #rustlang"),
    (Code, "en", "Python tip: dict.setdefault has been hiding in plain sight this whole time. {link}"),
    (Code, "en", "Rust or Python for a weekend CLI tool? Asking for a friend (the friend is me). {m}"),
    (Code, "en", "Teaching my niece Python with turtle graphics. She drew a spiral and declared herself a hacker 🐢"),
    (Code, "en", "cargo build finished before my coffee did. Rust compile times really are getting better ☕🦀"),
    (Code, "en", "Spent the morning profiling a Python service: 80% of the time went into one innocent-looking regex. Classic."),
    (Code, "en", "New blog post: what I learned porting a small game engine from C++ to Rust {link} #rustlang #gamedev"),
    (Code, "en", "Type hints made our Python codebase so much nicer to navigate. mypy caught three real bugs this week."),
    (Code, "en", "Pair-programming with {m} on an async Rust bug. Turns out it was a missing .await all along 🙃"),
    (Code, "en", "Day {n} of learning Rust: I finally understand lifetimes. Mostly. Sometimes. #100DaysOfCode"),
    (Code, "en", "The longest class name in our codebase, I kid you not: AbstractRequestContextAwareSingletonProxyFactoryBeanProviderManagerImpl. Python port coming never."),
    (Code, "es", "Hoy di mi primera charla sobre Rust en la comunidad local. Nervios al principio, pero salió genial 🦀"),
    (Code, "es", "Automaticé las cuentas de la casa con un script de Python y ahora me sobra tiempo para un café tranquilo ☕"),
    (Code, "fr", "Premier projet en Rust terminé ! Le compilateur est sévère mais juste. 🦀"),
    (Code, "de", "Unser Team migriert gerade von Python 2 auf Python 3. Ja, im Jahr 2026. Fragt nicht. 😅"),
    (Code, "pt-BR", "Comecei a estudar Rust nas férias e já estou apaixonada pelo pattern matching 🦀"),
    (Code, "ja", "週末にRustで小さなCLIツールを作ってみた。コンパイラのエラーメッセージが親切すぎて泣ける #rust"),
    (Code, "ru", "Переписал сервис на Rust — память больше не течёт. Доволен как слон 🦀"),
    (Code, "ko", "파이썬으로 데이터 정리하다가 하루가 다 갔네요 😵 #python"),
    (Code, "hi", "आज Python में पहला web scraper लिखा, और वो सच में चल गया! 🐍"),
    (Code, "it", "Sto imparando Rust e ogni errore del compilatore sembra una piccola lezione di filosofia. 🦀"),
    // News: every one holds the hashtag `#news`. All made up and mild.
    (News, "en", "City council approves 12 km of new protected bike lanes downtown; construction starts in spring. #news #cycling"),
    (News, "en", "Local library extends weekend hours after a record year of visitors {link} #news"),
    (News, "en", "Breaking: the harbour ferry is back in service after two weeks of repairs. Commuters rejoice ⛴️ #news"),
    (News, "en", "Regional train strike called off after an overnight agreement; services resume tomorrow morning. #news"),
    (News, "en", "Scientists report a healthy rebound of seagrass meadows along the coast. Good news for once 🌊 #news"),
    (News, "en", "Our town's oldest bakery turns 150 today and is giving a free bread roll to anyone who asks 🥖 #news"),
    (News, "en", "Heads up: the main bridge closes for inspection this Saturday from 6:00 to 14:00. Detours here {link} #news"),
    (News, "en", "The new public swimming pool opens next month, with free entry on the first weekend. #news"),
    (News, "en", "#news roundup: bike lanes approved, the museum reopens its east wing, the farmers' market moves to Sundays, a lost parrot was found in the post office and returned to its very relieved owner, and the council promises more benches along the river 🦜"),
    (News, "es", "El ayuntamiento inaugura hoy un nuevo parque con huertos urbanos en el barrio. #news #noticias"),
    (News, "es", "Última hora: el metro amplía su horario los fines de semana durante el verano. #news"),
    (News, "fr", "La médiathèque du quartier rouvre après six mois de travaux, avec un espace jeux vidéo flambant neuf. #news #actu"),
    (News, "de", "Eilmeldung: Die Stadtbibliothek hat ab Januar auch sonntags geöffnet. #news"),
    (News, "pt-BR", "Prefeitura anuncia ciclovia ligando o centro à praia; as obras começam em março. #news #notícias"),
    (News, "ja", "【速報】市内の路面電車、来月から深夜便を試験運行へ #news"),
    (News, "ar", "عاجل: افتتاح مكتبة عامة جديدة في وسط المدينة نهاية هذا الأسبوع. #news"),
    (News, "it", "Il comune annuncia nuove piste ciclabili lungo il fiume entro l'estate. #news"),
    (News, "ru", "Городской парк откроется после реконструкции уже в эти выходные. #news #новости"),
    (News, "hi", "शहर की नई मेट्रो लाइन का ट्रायल रन आज सफल रहा। #news"),
    (News, "ko", "시립 도서관이 다음 달부터 밤 10시까지 문을 엽니다. #news"),
    // Coffee: every one holds `coffee` and never `tea`.
    (Coffee, "en", "First coffee of the day and suddenly the code makes sense again ☕"),
    (Coffee, "en", "Pour-over coffee with beans from a tiny roaster down the street. The smell alone is worth it. #coffee"),
    (Coffee, "en", "Unpopular opinion: cold brew coffee is just patience in a jar. {m} fight me ☕"),
    (Coffee, "en", "Our office coffee machine has a personality, and today that personality is 'broken'. #coffee"),
    (Coffee, "en", "Went to a coffee tasting and learned I have been drinking it way too hot for years. {link}"),
    (Coffee, "en", "Third coffee of the morning and I'm rewriting the README for fun. Someone stop me. ☕☕☕"),
    (Coffee, "en", "The barista remembered my order after one visit. That's it, this is my coffee shop now."),
    (Coffee, "en", "Coffee + rain + a good book = the perfect Sunday. 📚☕"),
    (Coffee, "en", "Ranking every coffee I had on this trip: 1. the tiny espresso bar near the station 2. grandma's stovetop moka 3. the airport one, which was fine 4. the hotel lobby machine, which I will not describe because I want to stay positive today ☕"),
    (Coffee, "es", "Un cafecito con leche y a trabajar. ¡Feliz lunes a todos! ☕ #coffee"),
    (Coffee, "es", "Descubrí una cafetería en Valparaíso donde tuestan el café ahí mismo. Vuelvo mañana seguro. #coffee"),
    (Coffee, "fr", "Rien ne vaut un petit café en terrasse pour bien commencer la journée. ☕ #coffee"),
    (Coffee, "de", "Kaffee und Kuchen um drei ist keine Mahlzeit, sondern eine Lebenseinstellung. ☕ #coffee"),
    (Coffee, "pt-BR", "Cafezinho passado na hora e pão de queijo quentinho: bom dia! ☕ #coffee"),
    (Coffee, "ja", "朝のハンドドリップコーヒーで一日のスイッチが入る ☕ #coffee"),
    (Coffee, "it", "Il caffè al banco, in piedi, in trenta secondi: questa è l'Italia. ☕ #coffee"),
    (Coffee, "ar", "قهوة الصباح بالهيل، طقس يومي لا أتنازل عنه ☕ #coffee"),
    (Coffee, "ko", "아침에 마신 아이스 아메리카노 덕분에 겨우 살아있어요 ☕ #coffee"),
    (Coffee, "ru", "Без утреннего кофе я просто набор случайных байтов. ☕ #coffee"),
    // Weather: every one holds `weather` or `#weather`.
    (Weather, "en", "Weather app says sunny, window says hailstorm. Who do I trust? 🌨️"),
    (Weather, "en", "Perfect cycling weather today: 18°C, light breeze, zero excuses. 🚲"),
    (Weather, "en", "The weather forecast for the weekend: rain, rain, and a surprise bonus rain. ☔"),
    (Weather, "en", "Heatwave week. Working from the basement like a very sweaty mole. Stay hydrated out there! #weather"),
    (Weather, "en", "First frost of the season on the car windows this morning ❄️ Winter weather has officially arrived."),
    (Weather, "en", "Thunderstorm rolling in over the hills; the sky is doing its best impression of an oil painting ⛈️ #weather"),
    (Weather, "es", "Hoy hace un tiempo perfecto para pasear por el Retiro ☀️ #weather"),
    (Weather, "fr", "Il pleut depuis trois jours sans interruption. Je commence à construire une arche. 🌧️ #weather #météo"),
    (Weather, "de", "Endlich Sonne nach zwei grauen Wochen! Alle raus in den Biergarten ☀️ #weather #wetter"),
    (Weather, "pt-BR", "38 graus em São Paulo hoje, alguém me empresta um ventilador? 🥵 #weather"),
    (Weather, "ja", "今日は台風の影響で電車が止まってる…みんな気をつけてね 🌀 #weather"),
    (Weather, "ru", "В Москве выпал первый снег! Город сразу стал тише и красивее ❄️ #weather #погода"),
    (Weather, "hi", "दिल्ली में आज का weather बहुत सुहाना है, हल्की बारिश और ठंडी हवा 🌦️"),
    (Weather, "ar", "الجو اليوم معتدل ولطيف، مثالي لنزهة على الكورنيش 🌤️ #weather"),
    // Pets: every one holds `cats` or `dogs`.
    (Pets, "en", "My two cats have decided the keyboard is the warmest spot in the house. Productivity: zero. 🐈"),
    (Pets, "en", "Took the dogs to the beach for the first time. They ran until they physically couldn't anymore 🐕🌊"),
    (Pets, "en", "Do cats know when you're on a video call? Mine walks across the screen every single meeting."),
    (Pets, "en", "Adopted a senior dog from the shelter today. He's grey, grumpy and already the best thing in my life 🐶 #dogs"),
    (Pets, "en", "Team cats or team dogs? Asking for a very important survey {m} 🐱🐶"),
    (Pets, "en", "The neighbour's dogs and my cats have reached a peace agreement: everyone ignores everyone."),
    (Pets, "es", "Mis gatos llevan toda la mañana durmiendo al sol. Quiero su vida. 🐈 #cats"),
    (Pets, "fr", "Mon chien a découvert la neige ce matin et il n'en revient toujours pas ❄️🐕 #dogs"),
    (Pets, "de", "Unsere Katze wird heute ein Jahr alt. Es gab Thunfisch und sehr viele Fotos 🎂🐈 #cats"),
    (Pets, "pt-BR", "Meu vira-lata aprendeu a abrir a geladeira. Socorro. 🐕 #dogs"),
    (Pets, "ja", "うちの猫、箱があると必ず入る。サイズは関係ないらしい 📦🐈 #cats"),
    (Pets, "it", "Passeggiata al parco con i cani: loro felicissimi, io coperta di fango. 🐕 #dogs"),
    (Pets, "ko", "우리 집 고양이가 요즘 창밖 새 구경에 푹 빠졌어요 🐈 #cats"),
    // Open source: every one holds the words `open source`, side by side.
    (OpenSource, "en", "Merged my first pull request to an open source project today! Small docs fix, huge smile 🎉"),
    (OpenSource, "en", "Reminder: open source maintainers are people. Say thank you, file good bug reports, sponsor if you can. 💛"),
    (OpenSource, "en", "Spent the evening triaging issues for our open-source library. Closed 23, opened 5. Net win? {link}"),
    (OpenSource, "en", "Looking for a first open source contribution? {m} keeps a list of beginner-friendly issues."),
    (OpenSource, "en", "We just released our load-testing tool as open source. MIT licensed, stars welcome ⭐ {link}"),
    (OpenSource, "en", "Open source is a gift economy with a bug tracker."),
    (OpenSource, "es", "Este fin de semana traduje al español la documentación de un proyecto open source. ¡Las pequeñas contribuciones también cuentan! #opensource"),
    (OpenSource, "fr", "Super meetup hier soir sur le logiciel libre et l'open source à Lyon, merci aux orgas ! #opensource"),
    (OpenSource, "de", "Open Source lebt von Leuten, die Doku schreiben. Danke an alle, die das tun! #opensource"),
    (OpenSource, "pt-BR", "Primeira contribuição open source aceita! Era só um typo, mas conta sim 😄 #opensource"),
    (OpenSource, "ja", "open source のプロジェクトに初めてPRを送った。メンテナーさんがとても優しかった 🙏"),
    (OpenSource, "ru", "Наша компания наконец разрешила контрибьютить в open source в рабочее время. Ура! #opensource"),
    // Tea: what `coffee -tea` must leave out.
    (Tea, "en", "Coffee people vs tea people: I'm a tea person who lies about it in meetings 🍵"),
    (Tea, "en", "Sencha in the morning, rooibos at night. My tea drawer is out of control."),
    (Tea, "en", "Nothing fixes a grey afternoon like a proper pot of tea and a biscuit 🫖"),
    (Tea, "en", "Tried bubble tea for the first time and now I understand everything. 🧋"),
    (Tea, "ja", "抹茶を点てる時間が一番落ち着く 🍵 #tea"),
    (Tea, "hi", "सुबह की अदरक वाली चाय के बिना दिन शुरू ही नहीं होता ☕ #chai #tea"),
    (Tea, "ru", "Зимой без чая с лимоном никуда. 🍋🫖 #tea"),
    (Tea, "ar", "شاي بالنعناع بعد الغداء، عادة مغربية لا تتغير 🍃 #tea"),
    // Web: javascript, wasm, go.
    (Web, "en", "Compiled our image filter to WebAssembly and it now runs in the browser faster than the old server version. wasm is magic ✨"),
    (Web, "en", "JavaScript fact of the day: typeof NaN is 'number'. I will not be taking questions."),
    (Web, "en", "Go's standard library is boring, and I mean that as the highest compliment. #golang"),
    (Web, "en", "Rewrote a tiny service in Go over lunch. Single binary, 8 MB, starts in 20 ms. Hard to argue with."),
    (Web, "en", "Our frontend bundle went from 2.1 MB to 340 KB after removing three JavaScript libraries nobody remembered adding. {link}"),
    (Web, "en", "Rust + wasm + a canvas element = a weekend well spent. Demo here: {link} #wasm"),
    (Web, "en", "Bug report of the day: someone pasted this as the 'short' link in our docs: {longlink}"),
    (Web, "de", "Heute gelernt: WebAssembly-Module lassen sich inzwischen direkt im Browser debuggen. Sehr praktisch! #wasm"),
    (Web, "ja", "JavaScriptの非同期処理、やっと腑に落ちた気がする。 #javascript"),
    (Web, "pt-BR", "Migrei um projeto de JavaScript para TypeScript e os bugs começaram a aparecer antes do deploy 😅 #javascript"),
    // Sports.
    (Sports, "en", "What a match! Extra time, a penalty save and a last-minute winner. My voice is gone. ⚽"),
    (Sports, "en", "Ran my first half marathon today. 2:04:37. Legs: destroyed. Heart: full. 🏃‍♀️ #running"),
    (Sports, "en", "The local basketball team won the regional final and the whole neighbourhood is honking. 🏀"),
    (Sports, "en", "The cricket test match went to the fifth day again. Best sport for people with infinite patience 🏏"),
    (Sports, "es", "¡Golazo en el minuto 90! El estadio se vino abajo ⚽🔥 #fútbol"),
    (Sports, "es", "Hoy corrí 10 km por la costanera sin parar. Hace un año no podía correr ni 2. 💪"),
    (Sports, "pt-BR", "Pelada de quinta com os amigos: perdemos de 7 a 3, mas a resenha foi ótima ⚽"),
    (Sports, "it", "Derby stasera: la città è divisa in due e mia nonna tifa per la squadra sbagliata. ⚽"),
    (Sports, "fr", "Étape de montagne incroyable aujourd'hui, j'ai crié devant la télé comme si j'étais sur le vélo 🚴"),
    (Sports, "de", "Erster Sieg der Saison für unseren Handballverein! Die Halle hat gebebt. 🤾"),
    (Sports, "ar", "مباراة رائعة الليلة! فوز في الدقيقة الأخيرة ⚽🔥"),
    (Sports, "hi", "आखिरी ओवर में छक्का! ऐसा मैच सालों बाद देखा 🏏🔥"),
    // Travel.
    (Travel, "en", "Missed my connecting train in Zurich and ended up having the best fondue of my life. Travel rules ✈️🧀"),
    (Travel, "en", "Packing tip from a chronic overpacker: if you're not sure you'll wear it, you won't. #travel"),
    (Travel, "en", "Sunrise over the rice terraces was worth the 4 am alarm. Photos later! {link} #travel"),
    (Travel, "en", "Booked the whole trip through this monster of a link, sharing it for science: {longlink} ✈️"),
    (Travel, "es", "Mochila lista para recorrer la Patagonia durante tres semanas. ¡Nos vemos a la vuelta! 🏔️ #viajes"),
    (Travel, "fr", "Week-end à Lisbonne : tramways jaunes, pastéis de nata et des escaliers à n'en plus finir. ✈️"),
    (Travel, "it", "Treno regionale, finestrino, il mare che scorre a sinistra per due ore. Non serve altro. 🚆"),
    (Travel, "ja", "京都の朝の散歩、観光客が来る前の静けさが好き。 #travel"),
    (Travel, "pt-BR", "Chegando em Salvador! Alguém tem dica de restaurante de moqueca? 🌴"),
    (Travel, "de", "Mit dem Nachtzug nach Wien: einschlafen in Berlin, aufwachen in Österreich. Großartig! 🚂"),
    // Food.
    (Food, "en", "Made fresh pasta from scratch for the first time. The kitchen looks like a flour bomb went off. Worth it 🍝"),
    (Food, "en", "Sourdough starter update: it's alive, it's bubbling, and I've named it Gerald. 🍞"),
    (Food, "en", "A ramen place opened down the street and I've been there three times this week. No regrets. 🍜"),
    (Food, "es", "Domingo de paella en familia. Mi tío dice que la suya es la mejor y nadie se atreve a contradecirle 🥘"),
    (Food, "it", "La carbonara si fa con guanciale, pecorino, uova e pepe. Fine della discussione. 🍝"),
    (Food, "ja", "母のカレーのレシピをついに聞き出した。隠し味はりんごだった 🍛"),
    (Food, "hi", "माँ के हाथ के आलू के पराठे और दही, इससे अच्छा नाश्ता कोई नहीं 😋"),
    (Food, "ko", "비 오는 날엔 역시 김치전에 막걸리죠 🌧️"),
    (Food, "fr", "Le marché du samedi matin : fromages, pain encore chaud et des fraises qui sentent vraiment la fraise. 🍓"),
    // Photo.
    (Photo, "en", "Golden hour at the harbour, shot on a 20-year-old film camera. Grain included free of charge 📷 #photography"),
    (Photo, "en", "The best camera is the one you carry. Today that was my phone and a very photogenic pigeon."),
    (Photo, "en", "Finally printed my favourite photos from this year instead of leaving them in the cloud. {link}"),
    (Photo, "ja", "夕焼けがきれいすぎて、帰り道に何枚も写真を撮ってしまった 📷 #photography"),
    (Photo, "fr", "Balade photo dans le Marais ce matin, la lumière était parfaite. 📸 #photographie"),
    (Photo, "es", "Salí a fotografiar la niebla sobre el río al amanecer. Valió la pena el madrugón 📷"),
    // Books.
    (Books, "en", "Finished a 900-page fantasy novel in four days. I have not slept. I regret nothing. 📚"),
    (Books, "en", "Book club picked a poetry collection this month and the discussion got surprisingly emotional."),
    (Books, "en", "Currently reading three books at once, which is a polite way of saying I finish none of them. 📖"),
    (Books, "es", "Terminé de releer «Cien años de soledad» y me sigue pareciendo un milagro. 📚"),
    (Books, "fr", "Rentrée littéraire : ma pile à lire fait maintenant la taille d'un petit immeuble. 📚"),
    (Books, "ru", "Перечитываю «Мастера и Маргариту» и каждый раз нахожу что-то новое. 📖"),
    (Books, "de", "Sonntag, Regen, Decke und ein dicker Krimi. Mehr brauche ich nicht. 📚"),
    (Books, "hi", "आज लाइब्रेरी से प्रेमचंद की कहानियों की किताब ली, बचपन की यादें ताज़ा हो गईं 📚"),
    // Space.
    (Space, "en", "Saw the space station pass overhead tonight, a tiny bright dot moving way too fast. Still gives me chills 🛰️"),
    (Space, "en", "New images from the space telescope are out and I've been staring at one galaxy for twenty minutes. {link}"),
    (Space, "en", "Meteor shower peaks tonight! Get away from city lights, lie down and give your eyes 20 minutes 🌠 #space"),
    (Space, "es", "Anoche vimos la Vía Láctea desde el desierto de Atacama. Nunca había visto tantas estrellas ✨ #space"),
    (Space, "ja", "今夜は皆既月食!ベランダから見えるかな 🌕 #space"),
    (Space, "ru", "Сегодня День космонавтики: смотрим с детьми старую хронику запусков 🚀 #space"),
    (Space, "fr", "J'ai observé Saturne et ses anneaux au télescope pour la première fois. Incroyable. 🪐"),
    // Climate.
    (Climate, "en", "Our street planted 40 new trees this weekend. Small thing, big shade in ten years 🌳 #climate"),
    (Climate, "en", "Switched to a heat pump this winter and the bill went down. Climate win, wallet win."),
    (Climate, "en", "Read the new regional climate report so you don't have to: hotter summers, wetter winters, more need for shade. {link}"),
    (Climate, "de", "Seit einem Jahr ohne Auto unterwegs. Fahrrad, Bahn und ein bisschen Geduld reichen völlig. 🚲 #klima"),
    (Climate, "es", "Hoy participamos en la limpieza de la playa: 80 kilos de plástico en dos horas. 🌊 #clima"),
    (Climate, "fr", "Notre jardin partagé récupère l'eau de pluie depuis cet été. Moins d'arrosage, plus de tomates 🍅 #climat"),
    (Climate, "pt-BR", "Mutirão de reflorestamento no fim de semana: 300 mudas de árvores nativas plantadas 🌱 #clima"),
    // Gaming.
    (Gaming, "en", "Beat the final boss after 47 attempts. I'm shaking. This is what joy feels like. 🎮"),
    (Gaming, "en", "Game night with {m}: three hours of a cooperative board game and we still lost to the rules. 🎲"),
    (Gaming, "en", "Indie game recommendation: a cozy puzzle game about repairing old radios. Perfect for rainy evenings. {link}"),
    (Gaming, "ja", "積みゲーが増える一方なのに、またセールで買ってしまった… 🎮"),
    (Gaming, "ko", "주말 내내 친구들이랑 협동 게임 했어요. 목은 쉬었지만 너무 재밌었어요 🎮"),
    (Gaming, "pt-BR", "Zerei o jogo em 40 horas e já quero começar de novo no modo difícil 🎮 #gaming"),
    (Gaming, "es", "Noche de juegos retro con mis primos: la consola de 1994 sigue funcionando perfecto 👾"),
    // Daily life, several with mixed scripts.
    (Daily, "en", "Monday. The printer knows. It always knows. 🖨️"),
    (Daily, "en", "Took a walk without my phone today. Saw a heron, two squirrels arguing, and an old man teaching his grandkid to whistle."),
    (Daily, "en", "Today's small win: fixed the wobbly kitchen table with a folded postcard from 2019."),
    (Daily, "en", "Learning Japanese: today's word is 木漏れ日 (komorebi), sunlight filtering through the leaves 🌿"),
    (Daily, "en", "My toddler's new favourite word is {longword} and honestly, same."),
    (Daily, "en", "Replied to every single email in my inbox. Inbox zero. Who even am I? 🎉 {m}"),
    (Daily, "es", "Hoy aprendí a hacer pan y mi casa huele a panadería. Pequeñas alegrías 🥖"),
    (Daily, "ar", "صباح الخير من عمّان ☀️ Good morning everyone, have a great day!"),
    (Daily, "hi", "Office में आज पूरा दिन meetings में निकल गया, काम कल करेंगे 😅"),
    (Daily, "ko", "오늘의 작은 행복: 퇴근길에 본 노을 🌇"),
    (Daily, "de", "Neues Lieblingswort gelernt: Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen. Deutsch ist wunderbar."),
    (Daily, "de", "Heute den Keller aufgeräumt und drei Kisten mit alten Kabeln gefunden. Wofür waren die alle? 🔌"),
];

/// SplitMix64: tiny, fast, and good enough to make a timeline look random.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0), without modulo bias worth noticing.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Anchor(Topic),
    Free,
}

/// The demo source's timeline: the same seed always gives the same posts.
#[derive(Clone, Debug)]
pub struct DemoPosts {
    rng: SplitMix64,
    /// Posts made so far; the last one's number.
    count: u64,
    /// The rest of the current block, taken from the end.
    block: Vec<Slot>,
    blocks: u64,
    /// Which secondary topic the first block gets, so seeds differ there too.
    secondary_offset: usize,
    /// Per template, the number of the post that last used it (0: never).
    last_used: Vec<u64>,
}

impl DemoPosts {
    pub fn new(seed: u64) -> DemoPosts {
        let mut rng = SplitMix64(seed);
        let secondary_offset = rng.below(SECONDARY.len());
        DemoPosts {
            rng,
            count: 0,
            block: Vec::with_capacity(BLOCK_LEN),
            blocks: 0,
            secondary_offset,
            last_used: vec![0; TEMPLATES.len()],
        }
    }

    /// The next post of the timeline, stamped with `created_at` (the caller
    /// owns the clock, so the sequence of posts does not depend on it).
    pub fn next_post(&mut self, created_at: OffsetDateTime) -> Tweet {
        self.count += 1;
        let slot = self.next_slot();
        let mut author = self.pick_author(None);
        let author_lang = AUTHORS[author].2;
        let template = match slot {
            Slot::Anchor(topic) => self
                .pick_template(topic, author_lang, 1)
                .unwrap_or_else(|| self.stalest(Some(topic))),
            Slot::Free => self.pick_free(author_lang),
        };
        let (_, lang, _) = TEMPLATES[template];
        if lang != author_lang && lang != "en" {
            // Only the fallbacks get here: hand the post to someone who
            // writes that language rather than put it in a stranger's mouth.
            author = self.pick_author(Some(lang));
        }
        self.last_used[template] = self.count;
        let text = self.compose(template, author);
        let (name, handle, _, _) = AUTHORS[author];
        Tweet {
            id: format!("demo-{}", self.count),
            name: name.to_owned(),
            screen_name: handle.to_owned(),
            text,
            user_profile_image: format!("/avatars/{handle}.svg"),
            url: None,
            // Only years past 9999 fail to format; a demo clock never gets there.
            created_at: created_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z")),
            lang: Some(lang.to_owned()),
            source: "demo".to_owned(),
            ..Default::default()
        }
    }

    fn next_slot(&mut self) -> Slot {
        if self.block.is_empty() {
            self.refill_block();
        }
        self.block.pop().unwrap_or(Slot::Free)
    }

    fn refill_block(&mut self) {
        let mut block: Vec<Slot> = PRIMARY.iter().map(|&topic| Slot::Anchor(topic)).collect();
        let turn = (self.secondary_offset + (self.blocks % SECONDARY.len() as u64) as usize)
            % SECONDARY.len();
        block.push(Slot::Anchor(SECONDARY[turn]));
        while block.len() < BLOCK_LEN {
            block.push(Slot::Free);
        }
        for i in (1..block.len()).rev() {
            let j = self.rng.below(i + 1);
            block.swap(i, j);
        }
        self.blocks += 1;
        self.block = block;
    }

    /// `lang` limits the choice to people who write it.
    fn pick_author(&mut self, lang: Option<&str>) -> usize {
        let fits = |index: usize| lang.is_none_or(|wanted| AUTHORS[index].2 == wanted);
        let total: u32 = (0..AUTHORS.len())
            .filter(|&index| fits(index))
            .map(|index| AUTHORS[index].3)
            .sum();
        if total == 0 {
            return self.pick_author(None);
        }
        let mut ticket = self.rng.below(total as usize) as u32;
        for (index, author) in AUTHORS.iter().enumerate() {
            if !fits(index) {
                continue;
            }
            let weight = author.3;
            if ticket < weight {
                return index;
            }
            ticket -= weight;
        }
        0
    }

    fn is_fresh(&self, template: usize) -> bool {
        let last = self.last_used[template];
        last == 0 || self.count - last >= NO_REPEAT_WINDOW
    }

    /// A fresh template of `topic`, in the author's language when there is
    /// one (most of the time), else in English, else in any language; `None`
    /// when fewer than `reserve` fresh ones are left.
    fn pick_template(&mut self, topic: Topic, lang: &str, reserve: usize) -> Option<usize> {
        let mut native = Vec::new();
        let mut english = Vec::new();
        let mut other = Vec::new();
        for (index, &(t, l, _)) in TEMPLATES.iter().enumerate() {
            if t != topic || !self.is_fresh(index) {
                continue;
            }
            if l == lang {
                native.push(index);
            } else if l == "en" {
                english.push(index);
            } else {
                other.push(index);
            }
        }
        if native.len() + english.len() + other.len() < reserve.max(1) {
            return None;
        }
        let pool = if !native.is_empty() && (english.is_empty() || self.rng.chance(NATIVE_PERCENT))
        {
            native
        } else if !english.is_empty() {
            english
        } else {
            other
        };
        Some(self.rng.pick(&pool))
    }

    fn pick_free(&mut self, lang: &str) -> usize {
        for _ in 0..FREE_TRIES {
            let topic = self.rng.pick(&ALL_TOPICS);
            let reserve = if topic.is_anchor() { ANCHOR_RESERVE } else { 1 };
            if let Some(template) = self.pick_template(topic, lang, reserve) {
                return template;
            }
        }
        self.stalest(None)
    }

    /// The least recently used template (of `topic`, if given): the last
    /// resort, which repeats as little as anything can.
    fn stalest(&self, topic: Option<Topic>) -> usize {
        TEMPLATES
            .iter()
            .enumerate()
            .filter(|(_, template)| topic.is_none_or(|wanted| template.0 == wanted))
            .min_by_key(|&(index, _)| self.last_used[index])
            .map(|(index, _)| index)
            .unwrap_or(0)
    }

    /// The template's text with its placeholders filled, sometimes with a
    /// hashtag or an emoji added, within [`MAX_CHARS`].
    fn compose(&mut self, template: usize, author: usize) -> String {
        let (topic, _, pattern) = TEMPLATES[template];
        let mut text = self.render(pattern, author);
        let tags = topic.tags();
        if !tags.is_empty() && self.rng.chance(TAG_PERCENT) {
            let tag = if self.rng.chance(50) {
                tags[0]
            } else {
                self.rng.pick(tags)
            };
            append_if_room(&mut text, tag);
        }
        if self.rng.chance(EMOJI_PERCENT) {
            let emoji = self.rng.pick(EMOJI);
            append_if_room(&mut text, emoji);
        }
        text
    }

    fn render(&mut self, pattern: &str, author: usize) -> String {
        let mut out = String::with_capacity(pattern.len() + 48);
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            match &after[..close] {
                "m" => {
                    let other = self.other_author(author);
                    out.push('@');
                    out.push_str(AUTHORS[other].1);
                }
                "link" => out.push_str(self.rng.pick(LINKS)),
                "n" => out.push_str(&(2 + self.rng.below(97)).to_string()),
                "longword" => out.push_str(self.rng.pick(LONG_WORDS)),
                "longlink" => out.push_str(self.rng.pick(LONG_LINKS)),
                unknown => {
                    out.push('{');
                    out.push_str(unknown);
                    out.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Anyone but the author: people mention friends, not themselves.
    fn other_author(&mut self, author: usize) -> usize {
        let mut other = self.rng.below(AUTHORS.len() - 1);
        if other >= author {
            other += 1;
        }
        other
    }
}

/// Adds ` extra` unless the text already holds it or would grow too long.
fn append_if_room(text: &mut String, extra: &str) {
    if text.to_lowercase().contains(&extra.to_lowercase()) {
        return;
    }
    if text.chars().count() + 1 + extra.chars().count() > MAX_CHARS {
        return;
    }
    text.push(' ');
    text.push_str(extra);
}

/// Every handle of the cast, for callers that want to show or test one.
pub fn cast_handles() -> impl Iterator<Item = &'static str> {
    AUTHORS.iter().map(|author| author.1)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::query::{PreparedPost, Query};

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap()
    }

    fn posts(seed: u64, count: usize) -> Vec<Tweet> {
        let mut demo = DemoPosts::new(seed);
        (0..count)
            .map(|i| demo.next_post(start() + time::Duration::milliseconds(250 * i as i64)))
            .collect()
    }

    fn query(term: &str) -> Query {
        Query::parse(term, 512).unwrap_or_else(|e| panic!("{term:?} should parse: {e}"))
    }

    fn count_matches(term: &str, posts: &[Tweet]) -> usize {
        let query = query(term);
        posts
            .iter()
            .filter(|post| query.matches(&PreparedPost::new(post)))
            .count()
    }

    fn seeds() -> Vec<u64> {
        let mut seeds: Vec<u64> = (0..40).collect();
        seeds.extend([42, 1234, 0xDEAD_BEEF, u64::MAX, u64::MAX / 3]);
        seeds
    }

    #[test]
    fn everyday_searches_match_within_forty_posts() {
        for seed in seeds() {
            let first = posts(seed, 40);
            for term in ["music", "rust, python", "#news", "coffee -tea"] {
                let hits = count_matches(term, &first);
                assert!(
                    hits >= 2,
                    "seed {seed}: {term:?} matched {hits} of 40 posts"
                );
            }
        }
    }

    #[test]
    fn other_common_searches_match_at_least_once_per_forty_posts_on_average() {
        let all: Vec<Tweet> = (0..25).flat_map(|seed| posts(seed, 40)).collect();
        for term in [
            "#music",
            "cats OR dogs",
            "from:amara_codes",
            "lang:es",
            "\"open source\"",
            "weather",
        ] {
            let hits = count_matches(term, &all);
            assert!(hits >= 25, "{term:?} matched only {hits} of 1000 posts");
        }
    }

    #[test]
    fn secondary_searches_match_within_forty_posts() {
        for seed in seeds() {
            let first = posts(seed, 40);
            for term in ["cats OR dogs", "\"open source\"", "weather"] {
                let hits = count_matches(term, &first);
                assert!(
                    hits >= 1,
                    "seed {seed}: {term:?} matched nothing in 40 posts"
                );
            }
        }
    }

    #[test]
    fn anchor_templates_always_hold_their_search() {
        let search = |topic: Topic| match topic {
            Music => Some("music"),
            Code => Some("rust, python"),
            News => Some("#news"),
            Coffee => Some("coffee -tea"),
            Weather => Some("weather"),
            Pets => Some("cats OR dogs"),
            OpenSource => Some("\"open source\""),
            _ => None,
        };
        let mut demo = DemoPosts::new(5);
        for (index, &(topic, lang, pattern)) in TEMPLATES.iter().enumerate() {
            let Some(term) = search(topic) else { continue };
            assert!(topic.is_anchor());
            let query = query(term);
            for author in [0, 7, AUTHORS.len() - 1] {
                for _ in 0..4 {
                    let text = demo.compose(index, author);
                    let post = PreparedPost::from_parts(&text, AUTHORS[author].1, Some(lang));
                    assert!(
                        query.matches(&post),
                        "{term:?} should match {text:?} ({pattern:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn same_seed_gives_same_posts() {
        for seed in [0, 1, 77, u64::MAX] {
            let key = |t: &Tweet| {
                (
                    t.name.clone(),
                    t.screen_name.clone(),
                    t.text.clone(),
                    t.lang.clone(),
                )
            };
            let a: Vec<_> = posts(seed, 300).iter().map(key).collect();
            let b: Vec<_> = posts(seed, 300).iter().map(key).collect();
            assert_eq!(a, b, "seed {seed}");
        }
    }

    #[test]
    fn different_seeds_give_different_posts() {
        let texts = |seed| {
            posts(seed, 20)
                .into_iter()
                .map(|t| t.text)
                .collect::<Vec<_>>()
        };
        assert_ne!(texts(1), texts(2));
        assert_ne!(texts(0), texts(1));
        assert_ne!(texts(42), texts(43));
    }

    #[test]
    fn texts_do_not_repeat_within_fifty_posts() {
        for seed in [1, 2, 3, 99, 0xDEAD_BEEF] {
            let mut last_seen: HashMap<String, usize> = HashMap::new();
            for (i, post) in posts(seed, 500).into_iter().enumerate() {
                if let Some(&before) = last_seen.get(&post.text) {
                    assert!(
                        i - before >= 50,
                        "seed {seed}: post {i} repeats post {before}: {:?}",
                        post.text
                    );
                }
                last_seen.insert(post.text, i);
            }
        }
    }

    #[test]
    fn handles_are_safe_and_avatars_local() {
        let mut handles = HashSet::new();
        for &(name, handle, lang, weight) in AUTHORS {
            assert!(!name.trim().is_empty());
            assert!(!handle.is_empty() && handle.len() <= 15, "{handle}");
            assert!(
                handle
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{handle}"
            );
            assert!(handles.insert(handle), "duplicate handle {handle}");
            assert!(!lang.is_empty() && weight > 0);
        }
        assert!(AUTHORS.len() >= 36);
        for post in posts(8, 300) {
            assert!(handles.contains(post.screen_name.as_str()));
            assert_eq!(
                post.user_profile_image,
                format!("/avatars/{}.svg", post.screen_name)
            );
            assert_eq!(post.url, None);
            assert_eq!(post.source, "demo");
        }
        assert_eq!(cast_handles().count(), AUTHORS.len());
    }

    #[test]
    fn ids_count_up_and_times_are_rfc3339() {
        let all = posts(3, 30);
        for (i, post) in all.iter().enumerate() {
            assert_eq!(post.id, format!("demo-{}", i + 1));
            let parsed = OffsetDateTime::parse(&post.created_at, &Rfc3339).unwrap();
            assert_eq!(
                parsed,
                start() + time::Duration::milliseconds(250 * i as i64)
            );
        }
    }

    #[test]
    fn posts_fit_in_280_characters_and_have_no_placeholders() {
        for seed in [0, 4, 11] {
            for post in posts(seed, 2000) {
                let length = post.text.chars().count();
                assert!(length <= MAX_CHARS, "{length} characters: {:?}", post.text);
                assert!(
                    !post.text.contains('{') && !post.text.contains('}'),
                    "{:?}",
                    post.text
                );
                assert!(!post.text.trim().is_empty());
            }
        }
    }

    #[test]
    fn every_template_is_distinct_and_written_by_someone() {
        let mut seen = HashSet::new();
        let languages: HashSet<&str> = AUTHORS.iter().map(|a| a.2).collect();
        for &(_, lang, pattern) in TEMPLATES {
            assert!(seen.insert(pattern), "duplicate template {pattern:?}");
            assert!(
                languages.contains(lang),
                "nobody writes {lang}: {pattern:?}"
            );
        }
        for topic in ALL_TOPICS {
            let count = TEMPLATES.iter().filter(|t| t.0 == topic).count();
            let needed = if PRIMARY.contains(&topic) {
                16
            } else if topic.is_anchor() {
                ANCHOR_RESERVE + 4
            } else {
                5
            };
            assert!(count >= needed, "{topic:?} has only {count} templates");
        }
    }

    #[test]
    fn timeline_mixes_languages_scripts_and_long_words() {
        let all = posts(21, 1000);
        let langs: HashSet<&str> = all.iter().filter_map(|p| p.lang.as_deref()).collect();
        assert!(langs.len() >= 10, "only {langs:?}");
        assert!(langs.contains("ar"), "no right-to-left posts");
        let arabic = |c: char| ('\u{0600}'..='\u{06FF}').contains(&c);
        assert!(all.iter().any(|p| p.text.chars().any(arabic)));
        assert!(all
            .iter()
            .any(|p| p.text.split_whitespace().any(|w| w.chars().count() > 60)));
        assert!(count_matches("example com", &all) > 0, "no links");
        let authors: HashSet<&str> = all.iter().map(|p| p.screen_name.as_str()).collect();
        assert!(authors.len() >= 30, "only {} authors", authors.len());
    }

    #[test]
    fn links_use_reserved_domains_only() {
        for post in posts(6, 1000) {
            for word in post.text.split_whitespace() {
                if let Some(rest) = word
                    .strip_prefix("https://")
                    .or_else(|| word.strip_prefix("http://"))
                {
                    let host = rest.split('/').next().unwrap_or("");
                    let host = host.split('?').next().unwrap_or("");
                    let host = host.strip_prefix("www.").unwrap_or(host);
                    assert!(
                        matches!(host, "example.com" | "example.org" | "example.net"),
                        "{word}"
                    );
                }
            }
        }
    }
}
