//! The `x` source: the X API v2 filtered stream, with the bearer token in
//! `X_BEARER_TOKEN`.
//!
//! Two parts run side by side in the source task:
//!
//! - **Rule sync** ([`sync_rules`]): the server owns its rule set. Every
//!   distinct active search (published by the hub) becomes one rule
//!   ([`rules::translate`]) tagged [`rules::TAG_PREFIX`] + a hash; a second
//!   or two after a change the rules are read back
//!   (`GET /2/tweets/search/stream/rules`) and the difference added and
//!   deleted in batches. Rules without our prefix are never touched. X
//!   allows 100 rule changes per 15 minutes; the sync keeps under that.
//! - **Stream** ([`XSource::run`]): one `GET /2/tweets/search/stream`,
//!   opened once the rules are in place, read line by line (keep-alive
//!   `\r\n` every ~20 s; after `stall_timeout_secs` of nothing it
//!   reconnects). Each
//!   post goes to the hub with the searches its `matching_rules` name,
//!   which the hub confirms with its own matcher.
//!
//! Reconnects follow X's documented schedule: at once after a dropped
//! connection, then linear +250 ms up to 16 s for network errors,
//! exponential from 5 s up to 320 s for HTTP errors, from 60 s for 429.

pub mod rules;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::rules::{desired_rules, tag_for, Routes, XGate, TAG_PREFIX};
use super::backoff::{describe, Backoff, Growth};
use super::normalize::{to_tweet, RawPost};
use super::{
    check_url, describe_http_error, http_client, read_body_capped, SearchGate, Secret, SourceError,
    SourceLink,
};
use crate::server::settings::SourceSettings;
use crate::wire::{PostLink, Tweet, UpstreamState};

/// The environment variable holding the app's bearer token.
pub const TOKEN_VAR: &str = "X_BEARER_TOKEN";

/// What the stream asks for with each post.
const STREAM_QUERY: [(&str, &str); 3] = [
    ("expansions", "author_id"),
    ("user.fields", "name,username,profile_image_url"),
    ("tweet.fields", "created_at,lang,note_tweet,entities"),
];

/// Changes to the searches are gathered this long before the rules move.
pub const SYNC_DEBOUNCE: Duration = Duration::from_millis(1500);

/// Rule changes X allows per window, and the window; the sync keeps a
/// margin under it.
const RULE_POSTS_PER_WINDOW: usize = 90;
const RULE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Rules added or deleted in one request.
const RULES_PER_REQUEST: usize = 100;

/// Longest line read from the stream; a longer one is skipped unread.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Largest rules answer read.
const MAX_RULES_BODY: usize = 4 * 1024 * 1024;

/// How often the count of posts received (X bills each) is logged.
const COST_LOG_EVERY: Duration = Duration::from_secs(3600);

pub struct XSource {
    api: reqwest::Url,
    token: Option<Secret>,
    http: reqwest::Client,
    max_rules: usize,
    max_rule_length: usize,
    /// X sends a keep-alive at least every 20 s; this long without a byte
    /// means the connection is dead.
    stall: Duration,
}

impl XSource {
    pub fn open(settings: &SourceSettings) -> Result<XSource, SourceError> {
        let x = &settings.x;
        Ok(XSource {
            api: check_url("--x-api-url", &x.api_url, &["http", "https"], "http(s)")?,
            token: Secret::from_env(TOKEN_VAR),
            http: http_client()?,
            max_rules: x.max_rules,
            max_rule_length: x.max_rule_length,
            stall: Duration::from_secs(x.stall_timeout_secs),
        })
    }

    pub fn gate(&self) -> Arc<dyn SearchGate> {
        Arc::new(XGate {
            max_rules: self.max_rules,
            max_rule_length: self.max_rule_length,
        })
    }

    pub async fn run(self, link: SourceLink) {
        info!(api = %self.api, "x source started");
        let Some(authorization) = self.token.as_ref().and_then(Secret::bearer_header) else {
            let detail =
                format!("{TOKEN_VAR} is not set: the X source needs an app's bearer token");
            warn!("{detail}");
            link.set_status(UpstreamState::Failed, Some(detail));
            return;
        };
        let api = Api {
            base: self.api.clone(),
            http: self.http.clone(),
            authorization,
        };
        let (routes_tx, routes_rx) = watch::channel(Arc::new(Routes::default()));
        tokio::select! {
            _ = sync_rules(&api, &link, self.max_rules, self.max_rule_length, routes_tx) => {}
            _ = read_stream(&api, &link, routes_rx, self.stall) => {}
        }
    }
}

/// The X API with the app's credentials.
struct Api {
    base: reqwest::Url,
    http: reqwest::Client,
    authorization: reqwest::header::HeaderValue,
}

impl Api {
    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(path))
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
    }
}

/// Why a request to X failed, and which reconnect schedule applies.
#[derive(Debug)]
enum Failure {
    /// No answer: the linear schedule.
    Network(String),
    /// An HTTP error: the exponential schedule from 5 s.
    Http { status: u16, detail: String },
    /// 429 (rate limit, usage cap, too many connections): from 60 s, and
    /// not before X's own reset time when it gives one.
    RateLimited {
        detail: String,
        reset_in: Option<Duration>,
    },
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Network(detail) => detail.clone(),
            Failure::Http { status, detail } => format!("X answered HTTP {status}: {detail}"),
            Failure::RateLimited { detail, .. } => format!("X answered HTTP 429: {detail}"),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Failure::Network(_) => "network",
            Failure::Http { .. } => "http",
            Failure::RateLimited { .. } => "rate_limited",
        }
    }

    /// The token was refused: nothing will flow until someone fixes it.
    fn is_refused_token(&self) -> bool {
        matches!(
            self,
            Failure::Http {
                status: 401 | 403,
                ..
            }
        )
    }
}

/// An error answer as a [`Failure`], with the Problem's words from its body.
async fn failure_from(response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let reset_in = response
        .headers()
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|reset| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Duration::from_secs(reset.saturating_sub(now))
        });
    let body = read_body_capped(response, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = problem_text(&body);
    if status == 429 {
        Failure::RateLimited { detail, reset_in }
    } else {
        Failure::Http { status, detail }
    }
}

/// The readable part of an X error body (an RFC 7807 Problem, a legacy
/// `{"errors":[{"message"}]}`, or anything else, shortened).
fn problem_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Problem {
        title: Option<String>,
        detail: Option<String>,
        connection_issue: Option<String>,
        errors: Option<Vec<LegacyError>>,
    }
    #[derive(Deserialize)]
    struct LegacyError {
        message: Option<String>,
        title: Option<String>,
    }
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(problem.title);
        parts.extend(problem.connection_issue);
        parts.extend(problem.detail);
        for error in problem.errors.into_iter().flatten() {
            parts.extend(error.title.or(error.message));
        }
        if !parts.is_empty() {
            parts.dedup();
            return parts.join(": ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let short: String = text.trim().chars().take(200).collect();
    if short.is_empty() {
        "no details".to_owned()
    } else {
        short
    }
}

/// Reconnect schedules of X's "handling disconnections".
struct Schedules {
    network: Backoff,
    http: Backoff,
    rate_limited: Backoff,
}

impl Schedules {
    fn new() -> Schedules {
        Schedules {
            network: Backoff::new(
                Duration::ZERO,
                Growth::Linear {
                    step: Duration::from_millis(250),
                },
                Duration::from_secs(16),
            ),
            http: Backoff::new(
                Duration::from_secs(5),
                Growth::Doubling,
                Duration::from_secs(320),
            ),
            rate_limited: Backoff::new(
                Duration::from_secs(60),
                Growth::Doubling,
                Duration::from_secs(15 * 60),
            ),
        }
    }

    fn delay(&mut self, failure: &Failure) -> Duration {
        match failure {
            Failure::Network(_) => self.network.next_delay(),
            Failure::Http { .. } => self.http.next_delay(),
            Failure::RateLimited { reset_in, .. } => {
                let planned = self.rate_limited.next_delay();
                reset_in.map_or(planned, |reset| planned.max(reset))
            }
        }
    }
}

/// Keeps X's rules equal to the active searches, for as long as the server runs.
async fn sync_rules(
    api: &Api,
    link: &SourceLink,
    max_rules: usize,
    max_rule_length: usize,
    routes: watch::Sender<Arc<Routes>>,
) {
    let mut searches = link.searches.clone();
    let mut schedules = Schedules::new();
    let mut posts = RulePosts::default();
    // The first sync runs at once, so the stream opens with the rules of
    // the searches already waiting (and rules left from an earlier run go).
    let mut retry_at: Option<Instant> = Some(Instant::now());
    loop {
        match retry_at {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    changed = searches.changed() => {
                        if changed.is_err() { return; }
                        if !link.sleep(SYNC_DEBOUNCE).await { return; }
                    }
                    _ = link.shutdown.cancelled() => return,
                }
            }
            None => {
                tokio::select! {
                    changed = searches.changed() => {
                        if changed.is_err() { return; }
                    }
                    _ = link.shutdown.cancelled() => return,
                }
                if !link.sleep(SYNC_DEBOUNCE).await {
                    return;
                }
            }
        }
        let active = searches.current();
        let desired = desired_rules(active.values(), max_rules, max_rule_length);
        match apply_rules(api, link, &desired, &mut posts).await {
            Ok(synced) => {
                schedules.http.reset();
                schedules.network.reset();
                schedules.rate_limited.reset();
                routes.send_replace(Arc::new(synced));
                retry_at = None;
            }
            Err(failure) => {
                let delay = schedules.delay(&failure).max(Duration::from_secs(1));
                warn!(error = %failure.describe(), retry_in = ?delay, "cannot update the X rules");
                if failure.is_refused_token() {
                    link.set_status(UpstreamState::Failed, Some(refused_token_detail(&failure)));
                }
                retry_at = Some(Instant::now() + delay);
            }
        }
    }
}

fn refused_token_detail(failure: &Failure) -> String {
    format!(
        "X refused {TOKEN_VAR} ({}); set a valid app bearer token and restart",
        failure.describe()
    )
}

/// Times of recent rule changes, to stay under X's limit.
#[derive(Default)]
struct RulePosts {
    sent: VecDeque<Instant>,
}

impl RulePosts {
    /// Waits until one more rule change fits in X's window.
    async fn reserve(&mut self, link: &SourceLink) -> bool {
        loop {
            let now = Instant::now();
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= RULE_WINDOW)
            {
                self.sent.pop_front();
            }
            if self.sent.len() < RULE_POSTS_PER_WINDOW {
                self.sent.push_back(now);
                return true;
            }
            let free_at = self.sent[0] + RULE_WINDOW;
            warn!(wait = ?(free_at - now), "X rule changes are at their limit; waiting");
            if !link.sleep(free_at - now).await {
                return false;
            }
        }
    }
}

#[derive(Deserialize)]
struct RulesPage {
    #[serde(default)]
    data: Vec<Rule>,
    meta: Option<RulesMeta>,
}

#[derive(Deserialize)]
struct RulesMeta {
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct Rule {
    id: RuleId,
    value: String,
    tag: Option<String>,
}

/// X documents rule ids as strings of digits; accept numbers too.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum RuleId {
    Text(String),
    Number(u64),
}

impl RuleId {
    fn into_string(self) -> String {
        match self {
            RuleId::Text(s) => s,
            RuleId::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct ChangeAnswer {
    #[serde(default)]
    data: Vec<Rule>,
    #[serde(default)]
    errors: Vec<RuleProblem>,
}

#[derive(Deserialize)]
struct RuleProblem {
    title: Option<String>,
    value: Option<String>,
    id: Option<RuleId>,
    #[serde(default)]
    details: Vec<String>,
}

/// Reads the rules back, deletes ours that no search needs, adds the
/// missing ones; returns the routes for the rules now in place.
async fn apply_rules(
    api: &Api,
    link: &SourceLink,
    desired: &BTreeMap<String, Vec<String>>,
    posts: &mut RulePosts,
) -> Result<Routes, Failure> {
    let existing = list_rules(api).await?;
    let mut routes = Routes {
        synced: true,
        ..Routes::default()
    };
    let mut to_delete = Vec::new();
    let mut in_place: HashMap<String, String> = HashMap::new();
    for rule in existing {
        let id = rule.id.into_string();
        let Some(tag) = rule.tag.filter(|t| t.starts_with(TAG_PREFIX)) else {
            continue;
        };
        if desired.contains_key(&rule.value) && tag == tag_for(&rule.value) {
            in_place.insert(rule.value, id);
        } else {
            to_delete.push(id);
        }
    }
    let to_add: Vec<(&String, String)> = desired
        .keys()
        .filter(|value| !in_place.contains_key(*value))
        .map(|value| (value, tag_for(value)))
        .collect();
    for ids in to_delete.chunks(RULES_PER_REQUEST) {
        if !posts.reserve(link).await {
            return Err(Failure::Network("the server is stopping".to_owned()));
        }
        let body = serde_json::json!({ "delete": { "ids": ids } });
        let answer = change_rules(api, &body).await?;
        info!(
            deleted = ids.len(),
            problems = answer.errors.len(),
            "X rules deleted"
        );
    }
    for batch in to_add.chunks(RULES_PER_REQUEST) {
        if !posts.reserve(link).await {
            return Err(Failure::Network("the server is stopping".to_owned()));
        }
        let add: Vec<_> = batch
            .iter()
            .map(|(value, tag)| serde_json::json!({ "value": value, "tag": tag }))
            .collect();
        let answer = change_rules(api, &serde_json::json!({ "add": add })).await?;
        for rule in answer.data {
            in_place.insert(rule.value, rule.id.into_string());
        }
        for problem in answer.errors {
            let title = problem.title.unwrap_or_default();
            match (title.as_str(), problem.value, problem.id) {
                // Someone else's rule says the same: posts come with its id.
                ("DuplicateRule", Some(value), Some(id)) => {
                    in_place.insert(value, id.into_string());
                }
                (_, value, _) => warn!(
                    rule = value.as_deref().unwrap_or("?"),
                    problem = %title,
                    details = %problem.details.join("; "),
                    "X refused a rule; its search gets no posts from X"
                ),
            }
        }
        info!(added = batch.len(), "X rules added");
    }
    for (value, id) in in_place {
        if let Some(terms) = desired.get(&value) {
            routes.by_tag.insert(tag_for(&value), terms.clone());
            routes.by_id.insert(id, terms.clone());
        }
    }
    debug!(rules = routes.by_tag.len(), "X rules in place");
    Ok(routes)
}

async fn list_rules(api: &Api) -> Result<Vec<Rule>, Failure> {
    let mut rules = Vec::new();
    let mut token: Option<String> = None;
    // X pages at 1000 rules; the app holds few pages at most.
    for _ in 0..100 {
        let mut request = api
            .get("/2/tweets/search/stream/rules")
            .query(&[("max_results", "1000")]);
        if let Some(token) = &token {
            request = request.query(&[("pagination_token", token)]);
        }
        let response = send(request).await?;
        if !response.status().is_success() {
            return Err(failure_from(response).await);
        }
        let body = read_body_capped(response, MAX_RULES_BODY)
            .await
            .map_err(Failure::Network)?;
        let page: RulesPage = serde_json::from_slice(&body).map_err(|e| Failure::Http {
            status: 200,
            detail: format!("the rules answer does not parse: {e}"),
        })?;
        rules.extend(page.data);
        token = page.meta.and_then(|m| m.next_token);
        if token.is_none() {
            break;
        }
    }
    Ok(rules)
}

async fn change_rules(api: &Api, body: &serde_json::Value) -> Result<ChangeAnswer, Failure> {
    let response = send(api.post("/2/tweets/search/stream/rules").json(body)).await?;
    if !response.status().is_success() {
        return Err(failure_from(response).await);
    }
    let body = read_body_capped(response, MAX_RULES_BODY)
        .await
        .map_err(Failure::Network)?;
    serde_json::from_slice(&body).map_err(|e| Failure::Http {
        status: 200,
        detail: format!("the rules answer does not parse: {e}"),
    })
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
    match tokio::time::timeout(Duration::from_secs(20), request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(Failure::Network(describe_http_error(&error))),
        Err(_) => Err(Failure::Network("X did not answer within 20 s".to_owned())),
    }
}

/// Opens the stream once rules are in place, and again whenever it drops,
/// never two at once.
async fn read_stream(
    api: &Api,
    link: &SourceLink,
    mut routes: watch::Receiver<Arc<Routes>>,
    stall: Duration,
) {
    let mut schedules = Schedules::new();
    let mut cost = CostLog::new();
    let mut reconnecting = false;
    loop {
        // X answers 409 to a stream without rules: wait for the first search.
        loop {
            let current = routes.borrow_and_update().clone();
            if current.synced && !current.is_empty() {
                break;
            }
            if !reconnecting {
                let detail = if current.synced {
                    "waiting for a search (X bills every post; the stream opens with the first search)"
                } else {
                    "setting up the X rules"
                };
                link.set_status(UpstreamState::Connecting, Some(detail.to_owned()));
            }
            tokio::select! {
                changed = routes.changed() => if changed.is_err() { return },
                _ = link.shutdown.cancelled() => return,
            }
        }
        let failure = match connect_stream(api).await {
            Ok(response) => {
                link.set_status(UpstreamState::Connected, None);
                info!("connected to the X filtered stream");
                schedules.http.reset();
                schedules.rate_limited.reset();
                match read_lines(response, link, &mut routes, &mut cost, stall).await {
                    Ok(()) => return,
                    Err((failure, heard)) => {
                        if heard {
                            schedules.network.reset();
                        }
                        failure
                    }
                }
            }
            Err(failure) => failure,
        };
        let delay = schedules.delay(&failure);
        let detail = failure.describe();
        warn!(error = %detail, retry_in = ?delay, "X stream lost");
        link.count_reconnect(failure.label());
        reconnecting = true;
        if failure.is_refused_token() {
            link.set_status(UpstreamState::Failed, Some(refused_token_detail(&failure)));
        } else {
            link.set_status(
                UpstreamState::Reconnecting,
                Some(format!("{detail}; reconnecting in {}", describe(delay))),
            );
        }
        if !link.sleep(delay).await {
            return;
        }
    }
}

async fn connect_stream(api: &Api) -> Result<reqwest::Response, Failure> {
    let response = send(api.get("/2/tweets/search/stream").query(&STREAM_QUERY)).await?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(failure_from(response).await)
    }
}

/// Reads the stream until it ends. `Ok` on shutdown; otherwise the failure
/// and whether anything came through first.
async fn read_lines(
    mut response: reqwest::Response,
    link: &SourceLink,
    routes: &mut watch::Receiver<Arc<Routes>>,
    cost: &mut CostLog,
    stall: Duration,
) -> Result<(), (Failure, bool)> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut skipping_long_line = false;
    let mut heard = false;
    loop {
        let chunk = tokio::select! {
            _ = link.shutdown.cancelled() => return Ok(()),
            _ = cost.due() => {
                cost.log();
                continue;
            }
            chunk = tokio::time::timeout(stall, response.chunk()) => chunk,
        };
        let chunk = match chunk {
            Err(_) => {
                return Err((
                    Failure::Network(format!(
                        "nothing from X for {} s (not even a keep-alive)",
                        stall.as_secs()
                    )),
                    heard,
                ))
            }
            Ok(Err(error)) => return Err((Failure::Network(describe_http_error(&error)), heard)),
            Ok(Ok(None)) => {
                return Err((Failure::Network("X closed the stream".to_owned()), heard))
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        heard = true;
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let (piece, ends_line) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], true),
                None => (rest, false),
            };
            rest = if ends_line {
                &rest[piece.len() + 1..]
            } else {
                &[]
            };
            if !skipping_long_line {
                if buffer.len() + piece.len() > MAX_LINE_BYTES {
                    link.bad_record(&format!(
                        "a stream line over {MAX_LINE_BYTES} bytes was skipped"
                    ));
                    buffer.clear();
                    skipping_long_line = true;
                } else {
                    buffer.extend_from_slice(piece);
                }
            }
            if ends_line {
                if !skipping_long_line {
                    let routes_now = routes.borrow().clone();
                    match read_line(&buffer, &routes_now) {
                        Line::KeepAlive => {}
                        Line::Post(tweet, searches) => {
                            cost.count();
                            if !link.emit_routed(*tweet, Some(searches)).await {
                                return Ok(());
                            }
                        }
                        Line::Bad(error) => link.bad_record(&error),
                        Line::Disconnect(detail) => {
                            warn!(%detail, "X ended the stream");
                            return Err((
                                Failure::Network(format!("X disconnected the stream: {detail}")),
                                heard,
                            ));
                        }
                        Line::TooManyConnections(detail) => {
                            warn!(%detail, "X refused another stream connection");
                            return Err((
                                Failure::RateLimited {
                                    detail,
                                    reset_in: None,
                                },
                                heard,
                            ));
                        }
                        Line::Notice(detail) => warn!(%detail, "X reported an error in the stream"),
                    }
                }
                buffer.clear();
                skipping_long_line = false;
            }
        }
    }
}

/// What one line of the stream holds.
#[derive(Debug)]
enum Line {
    KeepAlive,
    Post(Box<Tweet>, Vec<String>),
    /// X is closing the stream (`operational-disconnect` and the like).
    Disconnect(String),
    TooManyConnections(String),
    /// An error object that does not end the stream.
    Notice(String),
    Bad(String),
}

#[derive(Deserialize)]
struct StreamLine {
    data: Option<PostData>,
    #[serde(default)]
    includes: Includes,
    matching_rules: Option<Vec<MatchingRule>>,
    errors: Option<Vec<StreamError>>,
    // A bare Problem (TooManyConnections) has no `errors` wrapper.
    title: Option<String>,
    detail: Option<String>,
    connection_issue: Option<String>,
}

#[derive(Deserialize)]
struct PostData {
    id: RuleId,
    text: String,
    author_id: Option<RuleId>,
    created_at: Option<String>,
    lang: Option<String>,
    note_tweet: Option<NoteTweet>,
    entities: Option<Entities>,
}

#[derive(Deserialize)]
struct NoteTweet {
    text: String,
    entities: Option<Entities>,
}

#[derive(Deserialize, Default)]
struct Entities {
    #[serde(default)]
    urls: Vec<UrlEntity>,
}

#[derive(Deserialize)]
struct UrlEntity {
    url: Option<String>,
    expanded_url: Option<String>,
}

#[derive(Deserialize, Default)]
struct Includes {
    #[serde(default)]
    users: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    id: RuleId,
    name: Option<String>,
    username: Option<String>,
    profile_image_url: Option<String>,
}

#[derive(Deserialize)]
struct MatchingRule {
    id: RuleId,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct StreamError {
    title: Option<String>,
    detail: Option<String>,
    disconnect_type: Option<String>,
    connection_issue: Option<String>,
}

fn read_line(line: &[u8], routes: &Routes) -> Line {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::KeepAlive;
    }
    let parsed: StreamLine = match serde_json::from_slice(line) {
        Ok(parsed) => parsed,
        Err(error) => return Line::Bad(format!("a stream line that does not parse: {error}")),
    };
    if let Some(data) = parsed.data {
        let matched: Vec<(String, Option<String>)> = parsed
            .matching_rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.id.into_string(), r.tag))
            .collect();
        let searches = routes.searches(
            matched
                .iter()
                .map(|(id, tag)| (id.as_str(), tag.as_deref())),
        );
        return Line::Post(Box::new(post_from(data, &parsed.includes)), searches);
    }
    if let Some(issue) = parsed.connection_issue {
        let detail = [parsed.title, Some(issue), parsed.detail]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        return Line::TooManyConnections(detail);
    }
    let errors = parsed.errors.unwrap_or_default();
    if errors.is_empty() {
        return Line::Bad("a stream line with neither a post nor an error".to_owned());
    }
    let text = |e: &StreamError| {
        [e.title.clone(), e.disconnect_type.clone(), e.detail.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
    };
    let detail = errors.iter().map(text).collect::<Vec<_>>().join("; ");
    if errors.iter().any(|e| e.connection_issue.is_some()) {
        return Line::TooManyConnections(detail);
    }
    let disconnects = errors.iter().any(|e| {
        e.disconnect_type.is_some()
            || e.title
                .as_deref()
                .is_some_and(|t| t.ends_with("disconnect"))
    });
    if disconnects {
        Line::Disconnect(detail)
    } else {
        Line::Notice(detail)
    }
}

/// X's post and its author as the protocol's post.
fn post_from(data: PostData, includes: &Includes) -> Tweet {
    let id = data.id.into_string();
    let author_id = data.author_id.map(RuleId::into_string);
    let author = includes
        .users
        .iter()
        .find(|u| Some(u.id.clone().into_string()) == author_id);
    let username = author.and_then(|u| u.username.as_deref()).unwrap_or("");
    // A long post's full text is in note_tweet; its links are there too.
    let (text, entities) = match data.note_tweet {
        Some(note) => (note.text, note.entities.or(data.entities)),
        None => (data.text, data.entities),
    };
    let text = unescape_entities(&text);
    let links = entities
        .unwrap_or_default()
        .urls
        .into_iter()
        .filter_map(|u| {
            let shown = u.url?;
            let full = u.expanded_url.unwrap_or_else(|| shown.clone());
            let (start, end) = text
                .find(&shown)
                .map(|at| (at as u32, (at + shown.len()) as u32))
                .unwrap_or((0, 0));
            Some(PostLink {
                url: full,
                start,
                end,
            })
        })
        .collect();
    let url = if username.is_empty() {
        format!("https://x.com/i/web/status/{id}")
    } else {
        format!("https://x.com/{username}/status/{id}")
    };
    to_tweet(
        "x",
        RawPost {
            id,
            name: author.and_then(|u| u.name.as_deref()).unwrap_or(""),
            handle: username,
            text,
            avatar: author.and_then(|u| u.profile_image_url.as_deref()),
            url: Some(url),
            created_at: data.created_at.as_deref(),
            fallback_time: None,
            lang: data.lang.as_deref(),
            links,
            tags: Vec::new(),
        },
    )
}

/// X writes `&`, `<` and `>` in post text as HTML entities.
fn unescape_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Counts the posts X delivers (each is billed) and logs them hourly.
struct CostLog {
    since: Instant,
    posts: u64,
}

impl CostLog {
    fn new() -> CostLog {
        CostLog {
            since: Instant::now(),
            posts: 0,
        }
    }

    fn count(&mut self) {
        self.posts += 1;
    }

    async fn due(&self) {
        tokio::time::sleep_until(self.since + COST_LOG_EVERY).await;
    }

    fn log(&mut self) {
        info!(
            posts = self.posts,
            "X posts received in the last hour (X bills each post the stream delivers)"
        );
        self.since = Instant::now();
        self.posts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let mut routes = Routes::default();
        routes.by_tag.insert(tag_for("cat"), vec!["cat".into()]);
        routes
            .by_id
            .insert("1273026480692322304".into(), vec!["cat".into()]);
        routes
    }

    #[test]
    fn the_documented_stream_message_maps_to_a_post() {
        // The quickstart's example, with the fields this app asks for.
        let line = br#"{"data":{"id":"1234567890","text":"Look at this cute cat! \ud83d\udc31 &amp; more https://t.co/abc","author_id":"9876543210","created_at":"2024-01-15T10:35:00.000Z","lang":"en","edit_history_tweet_ids":["1234567890"],"entities":{"urls":[{"start":37,"end":56,"url":"https://t.co/abc","expanded_url":"https://example.com/cats/1","display_url":"example.com/cats/1"}]}},"includes":{"users":[{"id":"9876543210","name":"Cat Person","username":"catperson","profile_image_url":"https://pbs.twimg.com/profile_images/1/a_normal.jpg"}]},"matching_rules":[{"id":"1273026480692322304","tag":"cats with images"}]}"#;
        let Line::Post(tweet, searches) = read_line(line, &routes()) else {
            panic!("a post");
        };
        assert_eq!(searches, ["cat"], "routed by id when the tag is not ours");
        assert_eq!(tweet.id, "1234567890");
        assert_eq!(tweet.name, "Cat Person");
        assert_eq!(tweet.screen_name, "catperson");
        assert_eq!(
            tweet.text,
            "Look at this cute cat! 🐱 & more https://t.co/abc"
        );
        assert_eq!(
            tweet.user_profile_image,
            "https://pbs.twimg.com/profile_images/1/a_normal.jpg"
        );
        assert_eq!(
            tweet.url.as_deref(),
            Some("https://x.com/catperson/status/1234567890")
        );
        assert_eq!(tweet.created_at, "2024-01-15T10:35:00Z");
        assert_eq!(tweet.lang.as_deref(), Some("en"));
        assert_eq!(tweet.source, "x");
        let link = &tweet.links[0];
        assert_eq!(link.url, "https://example.com/cats/1");
        assert_eq!(
            &tweet.text[link.start as usize..link.end as usize],
            "https://t.co/abc"
        );
    }

    #[test]
    fn a_long_post_shows_its_note_text_and_numeric_ids_are_read() {
        let line = br#"{"data":{"id":1,"text":"short\u2026","author_id":2,"lang":"und","note_tweet":{"text":"the whole long text"}},"includes":{"users":[{"id":2,"username":"ada"}]},"matching_rules":[{"id":1273026480692322304}]}"#;
        let Line::Post(tweet, searches) = read_line(line, &routes()) else {
            panic!("a post");
        };
        assert_eq!(tweet.text, "the whole long text");
        assert_eq!(tweet.lang, None, "und is no language");
        assert_eq!(tweet.name, "ada");
        assert_eq!(searches, ["cat"]);
    }

    #[test]
    fn in_stream_errors_say_what_to_do() {
        let disconnect = br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#;
        assert!(
            matches!(read_line(disconnect, &routes()), Line::Disconnect(d) if d.contains("operational-disconnect"))
        );
        let too_many = br#"{"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.x.com/2/problems/streaming-connection"}"#;
        assert!(
            matches!(read_line(too_many, &routes()), Line::TooManyConnections(d) if d.contains("TooManyConnections"))
        );
        assert!(matches!(read_line(b"\r", &routes()), Line::KeepAlive));
        assert!(matches!(read_line(b"{not json", &routes()), Line::Bad(_)));
        assert!(matches!(read_line(b"{}", &routes()), Line::Bad(_)));
    }

    #[test]
    fn error_bodies_read_well() {
        assert_eq!(
            problem_text(br#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#),
            "Unauthorized"
        );
        assert_eq!(
            problem_text(br#"{"errors": [{"code": 88, "message": "Rate limit exceeded"}]}"#),
            "Rate limit exceeded"
        );
        assert_eq!(problem_text(b"<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn reconnect_schedules_follow_x_documentation() {
        let mut s = Schedules::new();
        let network = Failure::Network("x".into());
        let seen: Vec<_> = (0..3).map(|_| s.delay(&network)).collect();
        assert_eq!(seen, [0, 250, 500].map(Duration::from_millis));
        let http = Failure::Http {
            status: 503,
            detail: String::new(),
        };
        let seen: Vec<_> = (0..8).map(|_| s.delay(&http).as_secs()).collect();
        assert_eq!(seen, [5, 10, 20, 40, 80, 160, 320, 320]);
        let limited = Failure::RateLimited {
            detail: String::new(),
            reset_in: None,
        };
        assert_eq!(s.delay(&limited).as_secs(), 60);
        assert_eq!(s.delay(&limited).as_secs(), 120);
        let later = Failure::RateLimited {
            detail: String::new(),
            reset_in: Some(Duration::from_secs(600)),
        };
        assert_eq!(
            s.delay(&later).as_secs(),
            600,
            "never before X's reset time"
        );
    }
}
