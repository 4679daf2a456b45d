//! Matching cost: one post against many searches, and post preparation.
//!
//! Run: `cargo bench --features ssr --bench matcher`. Compare the ratios
//! between cases within one run; absolute times on a 2-core CI box are noisy.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use twitter_search::query::{PreparedPost, Query, SearchIndex};
use twitter_search::server::sources::demo_posts::DemoPosts;

fn bench(c: &mut Criterion) {
    let mut demo = DemoPosts::new(7);
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let posts: Vec<_> = (0..256).map(|_| demo.next_post(now)).collect();
    let searches = [
        "music",
        "rust, python",
        "#news",
        "coffee -tea",
        "\"open source\"",
        "(cats OR dogs) photo",
        "from:amara_codes",
        "lang:es",
        "example.com/news",
        "weather -rain, sun",
    ];
    let queries: Vec<Query> = searches
        .iter()
        .map(|s| Query::parse(s, 512).unwrap())
        .collect();

    c.bench_function("prepare 256 posts", |b| {
        b.iter(|| {
            for post in &posts {
                black_box(PreparedPost::new(post));
            }
        })
    });
    let prepared: Vec<_> = posts.iter().map(PreparedPost::new).collect();
    c.bench_function("match 256 posts x 10 searches", |b| {
        b.iter(|| {
            let mut hits = 0;
            for post in &prepared {
                for query in &queries {
                    hits += query.matches(post) as usize;
                }
            }
            black_box(hits)
        })
    });
    let many: Vec<Query> = (0..1000)
        .map(|i| Query::parse(&format!("word{i} OR {}", searches[i % 10]), 512).unwrap())
        .collect();
    c.bench_function("match 1 post x 1000 searches", |b| {
        b.iter(|| {
            let mut hits = 0;
            for query in &many {
                hits += query.matches(&prepared[0]) as usize;
            }
            black_box(hits)
        })
    });

    // The index against checking every search, as the number of distinct
    // searches grows: the indexed cost should stay flat.
    let mut group = c.benchmark_group("1 post x N distinct searches");
    for n in [1_000usize, 10_000, 100_000] {
        let queries: Vec<Query> = (0..n)
            .map(|i| Query::parse(&format!("word{i} {}", searches[i % 10]), 512).unwrap())
            .collect();
        let mut index = SearchIndex::new();
        for (i, query) in queries.iter().enumerate() {
            index.insert(i as u64, query);
        }
        let post = &prepared[0];
        if n <= 10_000 {
            group.bench_with_input(BenchmarkId::new("every search", n), &n, |b, _| {
                b.iter(|| queries.iter().filter(|q| q.matches(post)).count())
            });
        }
        let mut candidates = Vec::new();
        group.bench_with_input(BenchmarkId::new("index", n), &n, |b, _| {
            b.iter(|| {
                index.candidates(post, &mut candidates);
                candidates
                    .iter()
                    .filter(|&&i| queries[i as usize].matches(post))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
