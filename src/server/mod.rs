//! The server: one task per source, one hub, one task per browser socket.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests start the
//! real server on port 0 and binaries stay thin.

pub mod avatar;
pub mod cluster;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod settings;
pub mod socket;
pub mod sources;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tracing::{info, warn};

use self::hub::Hub;
use self::metrics::Metrics;
use self::settings::Settings;
use self::socket::SocketContext;
use self::sources::record::Recorder;
use self::sources::{Source, SourceError, SourceStatus};
use crate::ui::{shell, App};
use crate::wire::UpstreamState;

/// Posts waiting between the source task and the hub's dispatch.
const SOURCE_QUEUE: usize = 1024;

/// Initial read buffer of each browser's WebSocket.
const READ_BUFFER_BYTES: usize = 256;

/// Most a browser's WebSocket may hold unwritten (a few full `tweets` frames).
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// How long shutdown waits for every socket to send its 1001 close.
const SOCKET_DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
    #[error("the server stopped: {0}")]
    Serve(#[from] std::io::Error),
}

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    pub socket: SocketContext,
    /// Every socket task. axum runs upgraded sockets outside its graceful
    /// shutdown, so [`run`] waits on this for their close frames.
    pub sockets: TaskTracker,
    /// `single`, or in a cluster `leader` or `follower`, for `/healthz`.
    pub role: watch::Receiver<cluster::Role>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The Leptos site options: from cargo-leptos's environment when it is
/// there, otherwise the layout `cargo leptos build` leaves in `target/site`.
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let from_cargo_leptos = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some()
        || option_env!("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = if from_cargo_leptos {
        match leptos::config::get_configuration(None) {
            Ok(conf) => Some(conf.leptos_options),
            Err(error) => {
                warn!(%error, "ignoring LEPTOS_* settings that do not parse");
                None
            }
        }
    } else {
        None
    }
    .unwrap_or_else(|| {
        LeptosOptions::builder()
            .output_name("twitter-search")
            .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
            .site_pkg_dir(std::env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into()))
            .build()
    });
    options.site_addr = settings.addr;
    // cargo-leptos names the site's files after their contents (hash-files
    // in Cargo.toml) and tells the server so when it compiles it.
    if option_env!("LEPTOS_HASH_FILES") == Some("true") {
        options.hash_files = true;
    }
    options
}

/// Runs the server on `listener` until `shutdown` completes, then closes
/// every WebSocket with 1001 and returns.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let source = Source::open(&settings.source).await?;
    run_with_source(listener, settings, source, shutdown).await
}

/// [`run`] with a source already opened (the binary opens it before it
/// binds its port, so a wrong setting stops it at once).
pub async fn run_with_source(
    listener: TcpListener,
    settings: Settings,
    source: Source,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let settings = Arc::new(settings);
    let source_name = settings.source.kind.as_str();
    let (recorder, record_writer) = match &settings.source.record {
        Some(path) => {
            let (recorder, writer) = Recorder::open(path).await?;
            info!(path = %path.display(), "recording every post received");
            (Some(recorder), Some(writer))
        }
        None => (None, None),
    };

    let metrics = Arc::new(Metrics::default());
    let hub = Hub::with_gate(
        settings.limits.max_connections,
        settings.limits.outbound_queue,
        metrics.clone(),
        source.search_gate(),
    );
    let cancel = CancellationToken::new();
    let (status_tx, status_rx) = watch::channel(SourceStatus::new(UpstreamState::Connecting, None));
    let (posts_tx, posts_rx) = mpsc::channel(SOURCE_QUEUE);

    // A single node runs its source here; in a cluster only the leader
    // does, and every node reads the posts from Redis.
    let (source_task, role, cluster_tasks) = match &settings.cluster {
        None => {
            let task = tokio::spawn(source.run(sources::SourceLink {
                name: source_name,
                posts: posts_tx,
                status: status_tx,
                searches: hub.watch_searches(),
                recorder,
                metrics: metrics.clone(),
                shutdown: cancel.clone(),
                cursor: None,
            }));
            (
                Some(task),
                watch::channel(cluster::Role::Single).1,
                Vec::new(),
            )
        }
        Some(cluster_settings) => {
            drop(source);
            let (role, tasks) = cluster::spawn(cluster::NodeParts {
                settings: settings.clone(),
                cluster: cluster_settings.clone(),
                hub: hub.clone(),
                metrics: metrics.clone(),
                recorder,
                local_posts: posts_tx,
                status: status_tx,
                shutdown: cancel.clone(),
            })
            .map_err(|error| ServerError::Cluster(error.to_string()))?;
            (None, role, tasks)
        }
    };
    // Ends by itself when the posts' senders end.
    hub::spawn_dispatch(hub.clone(), posts_rx)?;

    let posts_per_second = spawn_rate_sampler(metrics.clone(), cancel.clone());
    let sockets = TaskTracker::new();
    let state = AppState {
        role,
        sockets: sockets.clone(),
        leptos_options: leptos_options(&settings),
        hub: hub.clone(),
        metrics: metrics.clone(),
        settings: settings.clone(),
        socket: SocketContext {
            hub,
            metrics,
            limits: settings.limits.clone(),
            source_name,
            upstream: status_rx,
            shutdown: cancel.clone(),
            posts_per_second,
        },
    };
    let app = router(state);
    info!(addr = %listener.local_addr()?, source = source_name, "serving");
    let stop = cancel.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        info!("shutting down");
        stop.cancel();
    });
    http::serve(
        listener,
        app,
        settings.limits.max_connections,
        Duration::from_secs(settings.limits.header_timeout_secs),
        cancel.clone(),
        SOCKET_DRAIN,
    )
    .await;
    signal.abort();
    cancel.cancel();
    sockets.close();
    if tokio::time::timeout(SOCKET_DRAIN, sockets.wait())
        .await
        .is_err()
    {
        warn!(
            open = sockets.len(),
            "some WebSockets did not close in time"
        );
    }
    if let Some(source_task) = source_task {
        source_task.abort();
        // The aborted source drops its recorder: the writer flushes and ends.
        let _ = source_task.await;
    }
    // The cluster's tasks end at the cancellation (the leader releases its
    // lease first).
    for task in cluster_tasks {
        if tokio::time::timeout(SOCKET_DRAIN, task).await.is_err() {
            warn!("a cluster task did not stop in time");
        }
    }
    if let Some(writer) = record_writer {
        if tokio::time::timeout(SOCKET_DRAIN, writer).await.is_err() {
            warn!("the record file was not flushed in time");
        }
    }
    Ok(())
}

/// Samples the count of posts received every second and publishes the
/// rate over the last 10 s, until `stop`.
fn spawn_rate_sampler(metrics: Arc<Metrics>, stop: CancellationToken) -> watch::Receiver<f64> {
    const WINDOW: usize = 10;
    let (rate_tx, rate_rx) = watch::channel(0.0);
    tokio::spawn(async move {
        let count = || metrics.posts_received.get();
        let mut samples =
            std::collections::VecDeque::from([(tokio::time::Instant::now(), count())]);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            samples.push_back((tokio::time::Instant::now(), count()));
            while samples.len() > WINDOW + 1 {
                samples.pop_front();
            }
            if let (Some(first), Some(last)) = (samples.front(), samples.back()) {
                let seconds = last.0.duration_since(first.0).as_secs_f64();
                if seconds > 0.0 {
                    let rate = (last.1 - first.1) as f64 / seconds;
                    // Tenths are plenty for a person and keep frames short.
                    rate_tx.send_replace((rate * 10.0).round() / 10.0);
                }
            }
        }
    });
    rate_rx
}

/// All routes: the page, its assets, `/ws`, `/healthz`, `/metrics`, avatars.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let site_root = options.site_root.to_string();
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics_text))
        .route("/avatars/{file}", get(avatar_image))
        .route("/avatar-placeholder.svg", get(placeholder_image))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback_service(
            // Release builds leave brotli and gzip copies next to each file
            // (cargo leptos build --precompress): served as they are.
            ServeDir::new(site_root)
                .precompressed_br()
                .precompressed_gzip()
                .not_found_service(axum::routing::any(not_found)),
        )
        .layer(axum::middleware::from_fn(cache_headers))
        .layer(
            // The page itself is made per request; compress it on the way
            // out (precompressed files already carry their encoding).
            CompressionLayer::new().br(true).gzip(true),
        )
        .layer(axum::middleware::map_response(common_headers))
        .with_state(state)
}

/// How long browsers may keep a response: files whose name carries their
/// content hash (`/pkg/twitter-search.<hash>.wasm`) for a year, the page
/// and every other file only after checking with the server.
async fn cache_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let hashed = is_hashed_asset(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() && !response.headers().contains_key(header::CACHE_CONTROL) {
        let value = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// `/pkg/<name>.<hash>.<ext>`: a name cargo-leptos gave a file after its
/// contents.
fn is_hashed_asset(path: &str) -> bool {
    let Some(file) = path.strip_prefix("/pkg/") else {
        return false;
    };
    let mut parts = file.rsplit('.');
    let (Some(_ext), Some(hash), Some(_name)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    hash.len() >= 8
        && hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Headers every response carries: no content sniffing, no referrer sent
/// to the hosts of avatars, no framing.
async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `/healthz`: up, with the source's state, the node's role and its
/// connections (docs/protocol.md).
async fn health(State(state): State<AppState>) -> Response {
    let upstream = state.socket.upstream.borrow().state;
    let body = serde_json::json!({
        "status": "ok",
        "source": state.settings.source.kind.as_str(),
        "upstream": upstream.as_str(),
        "role": state.role.borrow().as_str(),
        "connections": state.hub.connection_count(),
    });
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Page not found.\n").into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(state.hub.active_searches()),
    )
        .into_response()
}

fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            // An SVG opened on its own is a document: let it run nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response()
}

async fn avatar_image(Path(file): Path<String>) -> Response {
    let handle = file.strip_suffix(".svg").unwrap_or(&file);
    svg_response(avatar::avatar_svg(handle))
}

async fn placeholder_image() -> Response {
    svg_response(avatar::placeholder_svg().to_owned())
}

/// Browsers may open the socket only from the server's own page or from an
/// origin listed in the settings; other clients send no `Origin`.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(host), Some(origin_host)) if host.eq_ignore_ascii_case(origin_host))
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.settings.allowed_origins) {
        state.metrics.upgrades_refused_origin.inc();
        return (
            StatusCode::FORBIDDEN,
            "this origin may not open the WebSocket\n",
        )
            .into_response();
    }
    let context = state.socket.clone();
    // The transport's own cap only guards memory; the protocol's limit is
    // checked per frame so the browser gets a proper 1009 close.
    let transport_cap = (state.settings.limits.max_frame_bytes * 16).max(64 * 1024);
    ws.max_message_size(transport_cap)
        .max_frame_size(transport_cap)
        // tungstenite allocates its read buffer up front (128 KiB by
        // default): an idle browser would cost that much. Browsers send
        // small frames; a larger one grows the buffer while it is read.
        .read_buffer_size(READ_BUFFER_BYTES)
        // Each frame is written whole and flushed at once; buffering more
        // only holds memory. A peer that stops reading is dropped by the
        // write timeout; this bounds what it can pile up before that.
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| state.sockets.track_future(socket::serve(socket, context)))
}

#[cfg(test)]
mod tests {
    use super::is_hashed_asset;

    #[test]
    fn only_hashed_package_files_are_cached_for_good() {
        assert!(is_hashed_asset("/pkg/twitter-search.GL2mk0Qx-8u7gqpP.wasm"));
        assert!(is_hashed_asset("/pkg/twitter-search.GL2mk0Qx8u7.css"));
        assert!(!is_hashed_asset("/pkg/twitter-search.wasm"));
        assert!(!is_hashed_asset("/pkg/twitter-search_bg.wasm"));
        assert!(!is_hashed_asset("/favicon.svg"));
        assert!(!is_hashed_asset("/pkg/a.b/c.d"));
    }

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn same_host_and_listed_origins_are_allowed() {
        assert!(origin_allowed(&headers(None, "a:1"), &[]));
        assert!(origin_allowed(&headers(Some("http://a:1"), "a:1"), &[]));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "a:1"),
            &[]
        ));
        assert!(!origin_allowed(&headers(Some("http://a:2"), "a:1"), &[]));
        assert!(origin_allowed(
            &headers(Some("https://app.example"), "a:1"),
            &["https://app.example".to_owned()]
        ));
    }
}
