//! Prometheus metrics (`--metrics ADDR`, config `metrics`): `GET /metrics`
//! in the Prometheus text format, every name starting with `tracer_`.
//!
//! The daemon's own figures are read at each scrape from the status the
//! drain loop publishes every tick (the same numbers as `tracectl
//! status`), so nothing is counted twice; API requests are counted as they
//! are answered, by method and gRPC status code. No recorded data is ever
//! served here: counts only, which is why plain HTTP is acceptable (bind it
//! to an address only the monitoring reaches).
use std::sync::Arc;

use anyhow::Context as _;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
    },
    registry::Registry,
};

use tonic::codegen::http::{Request, Response};

use crate::api::Shared;

/// One API request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The gRPC method (`ListProcesses`, `FetchBundle`, ...).
    pub method: String,
    /// The gRPC status code the reply started with (0 is OK; a stream
    /// that fails after its first message counts by its start).
    pub code: String,
}

/// API requests answered, shared by every listener.
pub type ApiRequests = Family<ApiLabels, Counter>;

/// The figures the drain loop publishes, read at each scrape.
struct DaemonFigures(Arc<Shared>);

impl std::fmt::Debug for DaemonFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DaemonFigures")
    }
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for DaemonFigures {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Ok(st) = self.0.status.lock().map(|g| g.clone()) else {
            return Ok(());
        };
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        counter(
            &mut e,
            "events_recorded",
            "Events assembled from the kernel's records",
            st.events_recorded,
        )?;
        {
            let c = ConstCounter::new(0u64);
            let mut family = e.encode_descriptor(
                "records_lost",
                "Records the kernel could not put into the ring buffer, by kind",
                None,
                c.metric_type(),
            )?;
            let mut kinds: Vec<_> = st.lost.iter().collect();
            kinds.sort();
            for (kind, n) in kinds {
                let labels = [("kind", kind.as_str())];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "events_dropped",
            "Events the store could not keep (disk full, write errors)",
            st.events_dropped,
        )?;
        gauge(
            &mut e,
            "ring_used_bytes",
            "Bytes waiting in the ring buffer when the kernel last sampled it (the backlog)",
            as_i64(st.ring_used),
        )?;
        gauge(
            &mut e,
            "ring_size_bytes",
            "Size of the ring buffer",
            i64::from(st.ring_size),
        )?;
        gauge(
            &mut e,
            "store_bytes",
            "Bytes of segment files in the data directory",
            as_i64(st.store_bytes),
        )?;
        gauge(
            &mut e,
            "store_segments",
            "Segment files in the data directory",
            as_i64(st.store_segments),
        )?;
        gauge(
            &mut e,
            "unflushed_events",
            "Events assembled and not yet written to a segment",
            as_i64(st.unflushed_events),
        )?;
        gauge(
            &mut e,
            "writing_suspended",
            "1 while the store has stopped writing (a full disk), else 0",
            i64::from(st.writing_suspended),
        )?;
        gauge(
            &mut e,
            "uptime_seconds",
            "Seconds since the daemon started recording",
            st.uptime_s as i64,
        )?;
        Ok(())
    }
}

/// The registry served at `/metrics`.
fn registry(shared: Arc<Shared>) -> Registry {
    let mut r = Registry::with_prefix("tracer");
    r.register(
        "api_requests",
        "API requests answered, by gRPC method and status code",
        shared.api_requests.clone(),
    );
    r.register_collector(Box::new(DaemonFigures(shared)));
    r
}

/// The registry's text in Prometheus' text format (what Prometheus and
/// `promtool check metrics` read): the library writes OpenMetrics, which
/// names a counter family without its `_total` and ends with `# EOF`.
fn render(r: &Registry) -> String {
    let mut open_metrics = String::new();
    if prometheus_client::encoding::text::encode(&mut open_metrics, r).is_err() {
        return String::new();
    }
    let lines: Vec<&str> = open_metrics.lines().filter(|l| *l != "# EOF").collect();
    let counters: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len() + 64);
    for l in lines {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = l.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(r) => text.push_str(&r),
            None => text.push_str(l),
        }
        text.push('\n');
    }
    text
}

/// Serves `/metrics` on `addr` until `shutdown`; returns the address bound
/// (port 0 picks one).
pub async fn serve(
    addr: &str,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics {addr}: binding"))?;
    let bound = listener.local_addr()?;
    let reg = Arc::new(registry(shared));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let reg = Arc::clone(&reg);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(&reg),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("metrics on {bound}: {e}");
        }
    });
    Ok((bound, task))
}

/// A tower layer counting each API request by method and the gRPC status
/// its reply starts with.
#[derive(Clone)]
pub struct CountRequests(pub ApiRequests);

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    counts: ApiRequests,
}

impl<S, B, RB> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let counts = self.counts.clone();
        let reply = self.inner.call(req);
        Box::pin(async move {
            let r = reply.await;
            // A reply that fails at once carries its status in its headers
            // (trailers-only); one that starts is OK so far.
            let code = match &r {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            counts.get_or_create(&ApiLabels { method, code }).inc();
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_figure_and_counts_requests() {
        let shared = Shared::new(std::path::PathBuf::from("/nonexistent"));
        if let Ok(mut st) = shared.status.lock() {
            st.events_recorded = 1234;
            st.lost.insert("buffer".into(), 7);
            st.store_segments = 3;
        }
        shared
            .api_requests
            .get_or_create(&ApiLabels {
                method: "ListProcesses".into(),
                code: "0".into(),
            })
            .inc();
        let text = render(&registry(shared));
        for want in [
            "tracer_events_recorded_total 1234",
            "tracer_records_lost_total{kind=\"buffer\"} 7",
            "tracer_store_segments 3",
            "tracer_api_requests_total{method=\"ListProcesses\",code=\"0\"} 1",
            "# TYPE tracer_ring_used_bytes gauge",
            "# TYPE tracer_events_recorded_total counter",
            "# HELP tracer_api_requests_total API requests answered",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
    }
}
