//! Test support: real local receivers (HTTP and HTTPS with a CA made here), a real HTTP
//! CONNECT proxy, and a Worklane engine with a notifier on a fresh SQLite file, on a
//! [`TestClock`]: retries, Retry-After and leases come due only when a test moves it.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use worklane_domain::*;
use worklane_engine::{Clock, Command, Engine, EngineOptions, TestClock};
use worklane_notify_http::NotificationTargetConfig;

/// Waits for an async condition with a deadline (the project's shared helper).
pub use worklane_store::testing::wait_until as wait_for;

/// Waits for a plain condition with a deadline.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, limit: Duration, mut cond: F) {
    wait_for(what, limit, || std::future::ready(cond())).await;
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: serde_json::Value,
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <secs>`.
    RetryAfter(u16, u64),
    /// A status with `Retry-After: <HTTP date>`.
    RetryAt(u16, String),
    /// Never answers within any sane timeout.
    Hang,
    /// A redirect to this location.
    Redirect(u16, String),
}

type Behaviour = Arc<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

/// What the receiver shares with its handler.
pub struct ReceiverState {
    pub got: Mutex<Vec<Received>>,
    behaviour: Mutex<Behaviour>,
}

/// A local receiver (HTTP or HTTPS) that records every request.
pub struct Receiver {
    pub url: String,
    pub state: Arc<ReceiverState>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Receiver {
    /// Sets the answer: a function of the request and how many came before it.
    pub fn behave(&self, f: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) {
        *self.state.behaviour.lock().unwrap() = Arc::new(f);
    }

    pub fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.got.lock().unwrap().len()
    }
}

async fn handle(State(s): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> Response {
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let r = Received {
        headers,
        body,
        json,
    };
    let reply = {
        let behaviour = s.behaviour.lock().unwrap().clone();
        let mut got = s.got.lock().unwrap();
        let reply = behaviour(&r, got.len());
        got.push(r);
        reply
    };
    match reply {
        Reply::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Reply::RetryAfter(c, secs) => (
            StatusCode::from_u16(c).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Reply::RetryAt(c, date) => {
            (StatusCode::from_u16(c).unwrap(), [("retry-after", date)]).into_response()
        }
        // Never answers: the client's response timeout is what ends the request.
        Reply::Hang => std::future::pending().await,
        Reply::Redirect(c, loc) => {
            (StatusCode::from_u16(c).unwrap(), [("location", loc)]).into_response()
        }
    }
}

fn app() -> (axum::Router, Arc<ReceiverState>) {
    let state = Arc::new(ReceiverState {
        got: Mutex::new(Vec::new()),
        behaviour: Mutex::new(Arc::new(|_: &Received, _| Reply::Status(200))),
    });
    let router = axum::Router::new()
        .route("/{*path}", axum::routing::any(handle))
        .with_state(state.clone());
    (router, state)
}

/// A plain HTTP receiver on 127.0.0.1.
pub async fn http_receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (router, state) = app();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(s.cancelled_owned())
            .await
            .unwrap();
    });
    Receiver { url, state, stop }
}

/// A private CA and the PEM file that holds its certificate.
pub struct TestCa {
    pub pem_path: std::path::PathBuf,
    server_config: Arc<rustls::ServerConfig>,
}

/// Makes a CA and a server certificate for 127.0.0.1 and localhost signed by it.
pub fn test_ca() -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Worklane Test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let dir = std::env::temp_dir().join(format!("wl-notify-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem_path = dir.join("ca.pem");
    std::fs::write(&pem_path, ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    TestCa {
        pem_path,
        server_config: Arc::new(server_config),
    }
}

/// An HTTPS receiver on 127.0.0.1 with a certificate of `ca`.
pub async fn https_receiver(ca: &TestCa) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let (router, state) = app();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config.clone());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = s.cancelled() => break,
                a = listener.accept() => a.unwrap(),
            };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Receiver { url, state, stop }
}

/// A small real HTTP proxy: CONNECT tunnels (HTTPS) and absolute-form requests (HTTP).
pub struct Proxy {
    pub url: String,
    pub tunnels: Arc<AtomicUsize>,
    pub forwarded: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn proxy() -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(AtomicUsize::new(0));
    let forwarded = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let (t, f, s) = (tunnels.clone(), forwarded.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let (client, _) = tokio::select! {
                _ = s.cancelled() => break,
                a = listener.accept() => a.unwrap(),
            };
            let (t, f) = (t.clone(), f.clone());
            tokio::spawn(async move {
                let _ = proxy_conn(client, t, f).await;
            });
        }
    });
    Proxy {
        url,
        tunnels,
        forwarded,
        stop,
    }
}

async fn proxy_conn(
    mut client: TcpStream,
    tunnels: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(target).await?;
        tunnels.fetch_add(1, Ordering::SeqCst);
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        upstream.write_all(&head[end..]).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    } else {
        // http://host:port/path: forward the connection as is to host:port.
        let authority = target
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let mut upstream = TcpStream::connect(authority).await?;
        forwarded.fetch_add(1, Ordering::SeqCst);
        upstream.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    }
    Ok(())
}

/// A URL on which nobody listens.
pub fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/hook")
}

/// How long tests wait for a condition at most.
const DEADLINE: Duration = Duration::from_secs(20);

/// The targets' `http_retry_backoff_initial`: a retry comes due only when a test moves the
/// clock (a real-time wait this long would fail the test's deadline, not pass by chance).
pub const BACKOFF: Duration = Duration::from_secs(30);
/// The targets' `http_retry_backoff_max`.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A target for tests: realistic backoffs ([`BACKOFF`], [`BACKOFF_MAX`]), the whole log,
/// then the given extra TOML (which may replace those defaults).
pub fn target(id: &str, uri: &str, extra: &str) -> NotificationTargetConfig {
    let defaults = [
        ("start_at", "\"beginning\""),
        ("http_retry_backoff_initial", "\"30s\""),
        ("http_retry_backoff_max", "\"5m\""),
        ("http_response_timeout", "\"2s\""),
    ];
    let mut text = format!("id = \"{id}\"\nuri = \"{uri}\"\n");
    for (k, v) in defaults {
        if !extra
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{k} ")))
        {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    text.push_str(extra);
    let cfg: NotificationTargetConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

/// Worklane on a SQLite file, with notifiers started and stopped by the test, on a test
/// clock the test moves.
pub struct Worklane {
    pub url: String,
    pub engine: Engine,
    /// The engine's clock (and so the notifiers').
    pub clock: TestClock,
    writer: tokio::task::JoinHandle<()>,
    cancel: CancellationToken,
    notifiers: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Worklane {
    /// Starts on the store at `url` with a clock at [`TestClock::at_default`].
    pub async fn start(url: &str) -> Self {
        Self::start_with(url, TestClock::at_default()).await
    }

    /// Starts on the store at `url` with `clock`: a restart passes the clock of the run
    /// before, so the stored retry times keep their meaning.
    pub async fn start_with(url: &str, clock: TestClock) -> Self {
        let store = worklane_store::connect(url).await.unwrap();
        let options = EngineOptions {
            clock: clock.shared(),
            ..Default::default()
        };
        let (engine, writer) = Engine::start(store, options).await.unwrap();
        Self {
            url: url.into(),
            engine,
            clock,
            writer,
            cancel: CancellationToken::new(),
            notifiers: vec![],
        }
    }

    pub async fn fresh() -> Self {
        Self::start(&worklane_store::testing::fresh_sqlite_url()).await
    }

    pub fn notify(&mut self, cfg: NotificationTargetConfig) {
        let h = tokio::spawn(worklane_notify_http::run(
            self.engine.clone(),
            cfg,
            self.cancel.clone(),
        ));
        self.notifiers.push(h);
    }

    /// Kills every notifier where it stands (requests in flight dropped, nothing more
    /// recorded), as a crash would, then stops the engine.
    pub async fn crash(self) {
        for n in self.notifiers {
            n.abort();
            let _ = n.await;
        }
        // Lets the notifiers' own tasks (reader, claims) end.
        self.cancel.cancel();
        drop(self.engine);
        self.writer.await.unwrap();
    }

    /// Stops every notifier (they drain) and the engine, as a server shutdown does.
    pub async fn stop(self) {
        self.cancel.cancel();
        for n in self.notifiers {
            n.await.unwrap().unwrap();
        }
        drop(self.engine);
        self.writer.await.unwrap();
    }

    pub async fn create(&self, capture_id: &str) -> BrokerId {
        let new = NewTask {
            capture_point_id: "CP1".into(),
            fields: TaskFields {
                capture_id: Some(capture_id.into()),
                ..Default::default()
            },
            hold: false,
            on_duplicate: OnDuplicate::Allow,
        };
        self.engine
            .execute(Command::create(new, ActionMeta::default().defaulted("CP1")))
            .await
            .unwrap()
            .task
            .broker_id
    }

    pub async fn act(&self, id: BrokerId, action: Action) {
        self.engine
            .execute(Command::act(
                TaskRef::Broker(id),
                action,
                ActionMeta::default().defaulted("test"),
            ))
            .await
            .unwrap();
    }

    pub async fn update(&self, id: BrokerId, key: &str, value: &str) {
        let mut fields = TaskFields::default();
        fields.data.insert(key.into(), value.into());
        self.act(id, Action::Update(fields)).await;
    }

    /// A task with `updates` events after its creation (one notification each).
    pub async fn busy_task(&self, updates: usize) -> BrokerId {
        let id = self.create("busy").await;
        for i in 0..updates {
            self.update(id, "step", &i.to_string()).await;
        }
        id
    }

    pub async fn deliveries(&self, target: &str) -> Vec<worklane_store::Delivery> {
        self.engine
            .deliveries()
            .list_deliveries(&worklane_store::DeliveryQuery {
                target: target.into(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// The clock now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Waits until `target`'s first delivery is pending with `attempts` failed attempts
    /// recorded, and returns it: its retry time is then stored, on the clock.
    pub async fn pending_after(&self, target: &str, attempts: i64) -> worklane_store::Delivery {
        let what = format!("{target}: {attempts} failed attempt(s) recorded");
        wait_for(&what, DEADLINE, || async {
            self.deliveries(target).await.first().is_some_and(|d| {
                d.status == worklane_store::DeliveryStatus::Pending && d.attempts == attempts
            })
        })
        .await;
        self.deliveries(target).await.remove(0)
    }

    pub async fn all_delivered(&self, target: &str, n: usize) -> bool {
        let d = self.deliveries(target).await;
        d.len() == n
            && d.iter()
                .all(|d| d.status == worklane_store::DeliveryStatus::Delivered)
    }
}
