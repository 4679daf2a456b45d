//! Fan-out cost: one post through the hub to many connections.
//!
//! Run: `cargo bench --features ssr --bench hub`. Each iteration dispatches
//! one post and then drains every connection's queue, as the socket tasks
//! would. Compare cases within one run; a 2-core box is noisy.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use twitter_search::query::Query;
use twitter_search::server::hub::{Hub, Registration};
use twitter_search::server::sources::demo_posts::DemoPosts;

const SEARCHES: [&str; 10] = [
    "music",
    "rust, python",
    "#news",
    "coffee -tea",
    "\"open source\"",
    "(cats OR dogs) photo",
    "weather",
    "lang:es",
    "from:amara_codes",
    "travel OR food",
];

/// `connections` browsers spread over `distinct` searches.
fn setup(connections: usize, distinct: usize) -> (Arc<Hub>, Vec<Registration>) {
    let hub = Hub::new(connections, 1024, Arc::default());
    let registrations: Vec<_> = (0..connections)
        .map(|i| {
            let mut registration = hub.register().unwrap();
            let term = format!("{} OR word{}", SEARCHES[i % SEARCHES.len()], i % distinct);
            let fresh = hub
                .set_query(registration.id, Arc::new(Query::parse(&term, 512).unwrap()))
                .expect("no source gate in the bench");
            registration.apply(fresh);
            registration
        })
        .collect();
    (hub, registrations)
}

fn bench(c: &mut Criterion) {
    let mut demo = DemoPosts::new(3);
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let posts: Vec<_> = (0..64).map(|_| Arc::new(demo.next_post(now))).collect();
    let mut group = c.benchmark_group("dispatch one post");
    for (connections, distinct) in [(100, 10), (1000, 10), (1000, 1000), (10_000, 100)] {
        let (hub, mut registrations) = setup(connections, distinct);
        let mut next = 0;
        group.bench_with_input(
            BenchmarkId::new(format!("{distinct} distinct searches"), connections),
            &connections,
            |b, _| {
                b.iter(|| {
                    next = (next + 1) % posts.len();
                    let delivered = hub.dispatch(&posts[next]);
                    for registration in registrations.iter_mut() {
                        while registration.try_next().is_some() {}
                    }
                    black_box(delivered)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
