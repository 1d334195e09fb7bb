//! The gRPC API (tonic): status, processes, stored and live events,
//! statistics. Reads go to the segment store on disk (off the runtime
//! thread); live events come from the drain loop through a bounded
//! broadcast channel. Every internal error becomes a gRPC status here, in
//! one place; nothing a client sends can take the daemon down.
use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use tokio::sync::broadcast;
use tokio_stream::{Stream, StreamExt as _, wrappers::UnixListenerStream};
use tonic::{Request, Response, Status};
use tracer_proto as pb;
use tracer_store::store::{self, Query};

/// Events per message of a streamed reply, at most...
const STREAM_BATCH: usize = 1024;
/// ...and bytes (encoded) per message, unless one event alone is larger:
/// tonic refuses a message over its decoding limit, so messages are bounded
/// by construction, well within `tracer_store::MAX_MESSAGE`.
const STREAM_BYTES: usize = 4 << 20;
/// Live events a slow `Follow` client may fall behind by before it is told
/// it lost some.
pub const FOLLOW_BUFFER: usize = 65536;

/// What the drain loop shares with the API.
pub struct Shared {
    pub data_dir: PathBuf,
    pub status: Mutex<pb::StatusReply>,
    pub live: broadcast::Sender<Arc<pb::Event>>,
    /// Store queries running at once.
    pub queries: Arc<tokio::sync::Semaphore>,
    /// What queries wait on before reading the store (set once recording
    /// starts).
    pub catchup: std::sync::OnceLock<Arc<crate::catchup::Catchup>>,
    /// API requests answered, by method and status (`/metrics`).
    pub api_requests: crate::metrics::ApiRequests,
}

/// A streaming client that reads nothing for this long is dropped.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(30);

/// Store queries served at once; more wait.
const CONCURRENT_QUERIES: usize = 4;

impl Shared {
    pub fn new(data_dir: PathBuf) -> Arc<Self> {
        let (live, _) = broadcast::channel(FOLLOW_BUFFER);
        Arc::new(Self {
            data_dir,
            status: Mutex::new(pb::StatusReply::default()),
            live,
            queries: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES)),
            catchup: std::sync::OnceLock::new(),
            api_requests: crate::metrics::ApiRequests::default(),
        })
    }

    /// Waits (blocking) until what was recorded before now is stored;
    /// false when the recorder could not catch up in time.
    pub fn catch_up(&self) -> bool {
        self.catchup
            .get()
            .is_none_or(|c| c.wait(crate::catchup::CATCHUP_TIMEOUT))
    }
}

/// A process not found while the recorder is behind may simply not be
/// stored yet: that is what the client is told, not "no such process".
fn not_stored_yet(status: Status, caught_up: bool) -> Status {
    if caught_up || status.code() != tonic::Code::NotFound {
        return status;
    }
    Status::unavailable(format!(
        "{}: the recorder is behind (it could not store what it had recorded within {:?}); \
         the process may not be stored yet, try again",
        status.message(),
        crate::catchup::CATCHUP_TIMEOUT
    ))
}

pub struct Api {
    shared: Arc<Shared>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::EventBatch, Status>> + Send>>;

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Syscall names to numbers; an unknown name is the client's error.
fn syscall_numbers(names: &[String]) -> Result<Vec<i64>, Status> {
    names
        .iter()
        .map(|n| {
            tracer_common::effects::x86_64::TABLE
                .iter()
                .find(|s| s.name == n)
                .map(|s| s.nr as i64)
                .ok_or_else(|| Status::invalid_argument(format!("unknown syscall {n:?}")))
        })
        .collect()
}

/// `events` cut into messages of at most `STREAM_BATCH` events and
/// `max_bytes` encoded bytes (a larger event alone is one message).
fn messages(events: Vec<pb::Event>, max_bytes: usize) -> Vec<pb::EventBatch> {
    use prost::Message as _;
    let mut out = Vec::new();
    let mut cur = pb::EventBatch::default();
    let mut bytes = 0;
    for e in events {
        // As the event's field in an EventBatch: tag, length, message.
        let n = e.encoded_len() + 11;
        if !cur.events.is_empty() && (bytes + n > max_bytes || cur.events.len() >= STREAM_BATCH) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += n;
        cur.events.push(e);
    }
    if !cur.events.is_empty() {
        out.push(cur);
    }
    out
}

/// A live event too large for any message (the store would not hold it
/// either) goes without its buffers, flagged as having lost them.
fn bounded(mut e: pb::Event) -> pb::Event {
    use prost::Message as _;
    if e.encoded_len() + 11 > tracer_store::MAX_MESSAGE
        && let Some(pb::event::Kind::Syscall(s)) = &mut e.kind
    {
        s.buffers.clear();
        s.buffers_lost = true;
    }
    e
}

fn strip_payloads(e: &mut pb::Event) {
    if let Some(pb::event::Kind::Syscall(s)) = &mut e.kind {
        s.buffers.clear();
    }
}

/// Merges per-segment summaries into one row per process (pid and start
/// time; a start time of 0 means the daemon did not see it start).
pub(crate) fn merge_processes(rows: Vec<pb::ProcessSummary>) -> Vec<pb::ProcessInfo> {
    let mut by_key: BTreeMap<(u32, u64), pb::ProcessInfo> = BTreeMap::new();
    for r in rows {
        let Some(k) = r.key else { continue };
        let key = if k.start_ns == 0 {
            // Attach to the newest known instance of this pid, if any.
            by_key
                .range((k.pid, 0)..=(k.pid, u64::MAX))
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or((k.pid, 0))
        } else {
            (k.pid, k.start_ns)
        };
        let p = by_key.entry(key).or_insert_with(|| pb::ProcessInfo {
            key: Some(pb::ProcessKey {
                pid: key.0,
                start_ns: key.1,
            }),
            first_ns: r.first_ns,
            ..Default::default()
        });
        if !r.comm.is_empty() {
            p.comm = r.comm;
        }
        if !r.exe.is_empty() {
            p.exe = r.exe;
        }
        if !r.argv.is_empty() {
            p.argv = r.argv;
        }
        if r.ppid != 0 {
            p.ppid = r.ppid;
        }
        if r.exited {
            (p.exited, p.exit_code, p.signal) = (true, r.exit_code, r.signal);
        }
        p.event_count += r.event_count;
        p.lost |= r.lost;
        p.first_ns = if p.first_ns == 0 {
            r.first_ns
        } else {
            p.first_ns.min(r.first_ns)
        };
        p.last_ns = p.last_ns.max(r.last_ns);
    }
    by_key.into_values().collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(internal)?
        .map_err(internal)
}

#[tonic::async_trait]
impl pb::tracer_server::Tracer for Api {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let st = self.shared.status.lock().map_err(internal)?.clone();
        Ok(Response::new(st))
    }

    async fn list_processes(
        &self,
        req: Request<pb::ListProcessesRequest>,
    ) -> Result<Response<pb::ListProcessesReply>, Status> {
        let r = req.into_inner();
        if r.until_ns != 0 && r.since_ns > r.until_ns {
            return Err(Status::invalid_argument("since_ns is after until_ns"));
        }
        let dir = self.shared.data_dir.clone();
        let shared = Arc::clone(&self.shared);
        let rows = blocking(move || {
            let _ = shared.catch_up();
            Ok(store::processes(&dir)?)
        })
        .await?;
        let processes = merge_processes(rows)
            .into_iter()
            .filter(|p| r.pids.is_empty() || p.key.is_some_and(|k| r.pids.contains(&k.pid)))
            .filter(|p| r.comm.is_empty() || p.comm == r.comm)
            .filter(|p| r.exe.is_empty() || p.exe == r.exe)
            .filter(|p| r.since_ns == 0 || p.last_ns >= r.since_ns)
            .filter(|p| r.until_ns == 0 || p.first_ns <= r.until_ns)
            .filter(|p| r.live.is_none_or(|live| live != p.exited))
            .collect();
        Ok(Response::new(pb::ListProcessesReply { processes }))
    }

    type GetEventsStream = EventStream;

    async fn get_events(
        &self,
        req: Request<pb::GetEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let r = req.into_inner();
        if r.pid == 0 {
            return Err(Status::invalid_argument("pid is required"));
        }
        if r.until_ns != 0 && r.since_ns > r.until_ns {
            return Err(Status::invalid_argument("since_ns is after until_ns"));
        }
        let syscalls = syscall_numbers(&r.syscalls)?;
        let dir = self.shared.data_dir.clone();
        // Queries are heavy (disk, decompression): a few at a time, the
        // rest wait their turn instead of thrashing memory and CPU.
        let permit = Arc::clone(&self.shared.queries)
            .acquire_owned()
            .await
            .map_err(internal)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::EventBatch, Status>>(4);
        let handle = tokio::runtime::Handle::current();
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let caught_up = shared.catch_up();
            let pid = r.pid;
            let run = || -> anyhow::Result<u64> {
                let mut pids = vec![pid];
                if r.children {
                    pids = crate::tree::descendants(&merge_processes(store::processes(&dir)?), pid);
                }
                let q = Query {
                    pids,
                    since_ns: (r.since_ns != 0).then_some(r.since_ns),
                    until_ns: (r.until_ns != 0).then_some(r.until_ns),
                    syscalls,
                };
                let mut sent = 0u64;
                // Streamed as read: memory stays bounded whatever the size.
                let res = store::query_each(&dir, &q, |mut events| {
                    if !r.payloads {
                        events.iter_mut().for_each(strip_payloads);
                    }
                    for m in messages(events, STREAM_BYTES) {
                        sent += m.events.len() as u64;
                        // A client that stops reading for this long is
                        // dropped, so it cannot hold a query slot forever.
                        let sent_in_time = handle
                            .block_on(tx.send_timeout(Ok(m), STALLED_CLIENT))
                            .is_ok();
                        if !sent_in_time {
                            return false; // the client went away or stalled
                        }
                    }
                    true
                })?;
                for (path, d) in &res.damage {
                    tracing::warn!(
                        "GetEvents: {}: damaged frame at {} skipped: {}",
                        path.display(),
                        d.offset,
                        d.error
                    );
                }
                if sent == 0
                    && !store::processes(&dir)?
                        .iter()
                        .any(|p| p.key.is_some_and(|k| k.pid == pid))
                {
                    let _ = tx.blocking_send(Err(not_stored_yet(
                        Status::not_found(format!("no recorded process with pid {pid}")),
                        caught_up,
                    )));
                }
                Ok(sent)
            };
            if let Err(e) = run() {
                let _ = tx.blocking_send(Err(internal(e)));
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    type FollowStream = EventStream;

    async fn follow(
        &self,
        req: Request<pb::FollowRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let r = req.into_inner();
        let syscalls = syscall_numbers(&r.syscalls)?;
        let rx = tokio_stream::wrappers::BroadcastStream::new(self.shared.live.subscribe());
        let stream = rx.filter_map(move |item| match item {
            Ok(ev) => {
                let wanted = (r.pids.is_empty() || r.pids.contains(&ev.pid))
                    && (r.comms.is_empty() || r.comms.contains(&ev.comm))
                    && (syscalls.is_empty()
                        || matches!(&ev.kind, Some(pb::event::Kind::Syscall(s)) if syscalls.contains(&s.nr)));
                wanted.then(|| {
                    let mut e = (*ev).clone();
                    if !r.payloads {
                        strip_payloads(&mut e);
                    }
                    Ok(pb::EventBatch { events: vec![bounded(e)] })
                })
            }
            // A slow client is told how much it missed, and goes on.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(Err(Status::data_loss(format!("this follower fell behind and missed {n} events"))))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type FetchBundleStream = Pin<Box<dyn Stream<Item = Result<pb::BundleChunk, Status>> + Send>>;

    async fn fetch_bundle(
        &self,
        req: Request<pb::FetchBundleRequest>,
    ) -> Result<Response<Self::FetchBundleStream>, Status> {
        let r = req.into_inner();
        if r.pid == 0 {
            return Err(Status::invalid_argument("pid is required"));
        }
        let dir = self.shared.data_dir.clone();
        let shared = Arc::clone(&self.shared);
        let built = tokio::task::spawn_blocking(move || {
            let caught_up = shared.catch_up();
            crate::bundle::build(&dir, &r).map_err(|e| not_stored_yet(e, caught_up))
        })
        .await
        .map_err(internal)??;
        let total = built.size();
        // Read out as the client takes it (a channel of a few chunks): a
        // bundle of GiBs is never held in memory.
        const CHUNK: usize = 1 << 20;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let crate::bundle::Built {
                head,
                body,
                body_len,
                others,
            } = built;
            let mut first = Some(others);
            let mut chunk = |data: Vec<u8>| {
                tx.blocking_send(Ok(pb::BundleChunk {
                    data,
                    total_bytes: total,
                    others: first.take().unwrap_or_default(),
                }))
                .is_ok()
            };
            if !chunk(head) {
                return;
            }
            let mut body = body.take(body_len);
            loop {
                let mut data = Vec::with_capacity(CHUNK);
                match (&mut body).take(CHUNK as u64).read_to_end(&mut data) {
                    Ok(0) => return,
                    Ok(_) => {
                        if !chunk(data) {
                            return; // the client went away
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!(
                            "reading the bundle back: {e}"
                        ))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsReply>, Status> {
        let pid = req.into_inner().pid;
        let dir = self.shared.data_dir.clone();
        let shared = Arc::clone(&self.shared);
        let stats = blocking(move || {
            let _ = shared.catch_up();
            Ok(store::stats(&dir, pid)?)
        })
        .await?;
        if stats.is_empty()
            && let Some(p) = pid
        {
            return Err(Status::not_found(format!(
                "no recorded syscalls of pid {p}"
            )));
        }
        let syscalls = stats
            .into_iter()
            .map(|(nr, s)| s.to_proto(nr, tracer_common::effects::name(nr).unwrap_or("")))
            .collect();
        Ok(Response::new(pb::StatsReply { syscalls }))
    }
}

fn socket_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// Binds a root-only unix socket (mode 0600, in a 0700 directory it creates
/// if missing), replacing a stale socket file (never one a daemon answers
/// on).
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        // Only a socket may be replaced: never delete a file by mistake.
        use std::os::unix::fs::FileTypeExt;
        if !std::fs::symlink_metadata(path)?.file_type().is_socket() {
            anyhow::bail!("{} exists and is not a socket", path.display());
        }
        // A socket something answers on is another daemon's: taking it
        // over would leave that one unreachable, and its stop would then
        // delete ours.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is served by another running daemon; stop it, or give this one \
                 another --listen",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The services every listener offers: the API, health and reflection.
fn router(
    shared: Arc<Shared>,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<
    tonic::transport::server::Router<
        tower::layer::util::Stack<crate::metrics::CountRequests, tower::layer::util::Identity>,
    >,
> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building gRPC reflection")?;
    tokio::spawn(async move {
        health_reporter
            .set_serving::<pb::tracer_server::TracerServer<Api>>()
            .await;
    });
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("TLS configuration")?;
    }
    let counting = crate::metrics::CountRequests(shared.api_requests.clone());
    Ok(builder
        .layer(counting)
        .add_service(health)
        .add_service(reflection)
        .add_service(
            pb::tracer_server::TracerServer::new(Api { shared })
                // Said explicitly: every reply is built within this bound,
                // and it is what clients accept.
                .max_encoding_message_size(tracer_store::MAX_MESSAGE)
                .max_decoding_message_size(tracer_store::MAX_MESSAGE),
        ))
}

/// Starts serving on the unix socket `path`; stops when `shutdown` resolves.
pub fn serve_unix(
    path: &Path,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = bind_unix(path)?;
    let ours = socket_inode(path);
    let router = router(shared, None)?;
    let path = path.to_owned();
    Ok(tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
            .await
        {
            tracing::error!("API on {}: {e}", path.display());
        }
        // Only our own socket: never one another daemon made there since.
        if ours.is_some() && socket_inode(&path) == ours {
            let _ = std::fs::remove_file(&path);
        }
    }))
}

/// Starts serving https on `addr`, requiring client certificates signed by
/// the configured CA; stops when `shutdown` resolves.
pub async fn serve_tls(
    addr: &str,
    files: &crate::config::TlsFiles,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            read(&files.cert)?,
            read(&files.key)?,
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(read(
            &files.client_ca,
        )?))
        .client_auth_optional(false);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let router = router(shared, Some(tls))?;
    let addr = addr.to_owned();
    Ok(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!("API on https://{addr}: {e}");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(pid: u32, start: u64, ppid: u32, events: u64) -> pb::ProcessSummary {
        pb::ProcessSummary {
            key: Some(pb::ProcessKey {
                pid,
                start_ns: start,
            }),
            ppid,
            event_count: events,
            first_ns: 10,
            last_ns: 20,
            ..Default::default()
        }
    }

    #[test]
    fn merges_segments_and_keeps_reused_pids_apart() {
        let rows = vec![
            summary(5, 100, 1, 3),
            summary(5, 0, 0, 2),
            summary(5, 900, 1, 7),
            summary(6, 0, 5, 1),
        ];
        let m = merge_processes(rows);
        assert_eq!(m.len(), 3, "{m:?}");
        let first = m.iter().find(|p| p.key.unwrap().start_ns == 100).unwrap();
        assert_eq!(
            first.event_count, 5,
            "a row without a start time joins the pid's known instance"
        );
        assert_eq!(crate::tree::descendants(&m, 5), vec![5, 6]);
    }

    #[test]
    fn messages_are_bounded_by_bytes_and_count() {
        use prost::Message as _;
        let ev = |seq: u64, len: usize| pb::Event {
            seq,
            pid: 1,
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                buffers: vec![pb::Buffer {
                    data: vec![7; len],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        // 900 events of 128 KiB: 115 MB, the stream.
        let events: Vec<pb::Event> = (0..900).map(|i| ev(i, 128 << 10)).collect();
        let m = messages(events.clone(), STREAM_BYTES);
        assert!(
            m.iter().all(|b| b.encoded_len() <= STREAM_BYTES),
            "each within the bound"
        );
        let flat: Vec<pb::Event> = m.iter().flat_map(|b| b.events.clone()).collect();
        assert!(flat == events, "nothing lost or reordered");
        // Small events: by count.
        let small: Vec<pb::Event> = (0..5000).map(|i| ev(i, 1)).collect();
        let m = messages(small, STREAM_BYTES);
        assert!(m.iter().all(|b| b.events.len() <= STREAM_BATCH));
        assert_eq!(m.len(), 5);
        // An event over the bound goes alone.
        let m = messages(vec![ev(0, 10), ev(1, 20 << 20), ev(2, 10)], STREAM_BYTES);
        assert_eq!(
            m.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert!(m[1].encoded_len() <= tracer_store::MAX_MESSAGE);
    }

    #[test]
    fn a_socket_another_daemon_serves_is_never_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tracer.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let other = std::os::unix::net::UnixListener::bind(&path).expect("the other daemon");
        let err = rt
            .block_on(async { bind_unix(&path) })
            .expect_err("refused while served");
        assert!(err.to_string().contains("another running daemon"), "{err}");
        assert!(path.exists(), "the other daemon's socket stays");
        // Once nothing answers, a stale socket is replaced.
        drop(other);
        rt.block_on(async { bind_unix(&path) })
            .expect("a stale socket is replaced");
    }

    #[test]
    fn unknown_syscall_names_are_invalid_arguments() {
        assert_eq!(syscall_numbers(&["read".into()]).unwrap(), vec![0]);
        assert_eq!(
            syscall_numbers(&["nope".into()]).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
