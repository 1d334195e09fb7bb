//! Connecting to the daemon's gRPC API: a local unix socket, or https with a
//! client certificate.
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};
use tracer_proto::tracer_client::TracerClient;

pub const DEFAULT_CONNECT: &str = "unix:/run/tracer/tracer.sock";

/// Files for https: the CA that signed the server, and this client's
/// certificate and key.
#[derive(Default)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn read(p: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

pub async fn connect(target: &str, tls: &Tls) -> anyhow::Result<TracerClient<Channel>> {
    if let Some(hostport) = target.strip_prefix("https://") {
        let host = hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport)
            .trim_matches(['[', ']']);
        let mut cfg = ClientTlsConfig::new().domain_name(host);
        if let Some(ca) = &tls.ca {
            cfg = cfg.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&tls.cert, &tls.key) {
            (Some(c), Some(k)) => cfg = cfg.identity(Identity::from_pem(read(c)?, read(k)?)),
            (None, None) => {}
            _ => bail!("--cert and --key go together"),
        }
        let channel = Endpoint::from_shared(format!("https://{hostport}"))?
            .tls_config(cfg)?
            .connect()
            .await
            .with_context(|| format!("connecting to the daemon at {target}"))?;
        return Ok(bounded(TracerClient::new(channel)));
    }
    let Some(path) = target.strip_prefix("unix:") else {
        bail!("--connect {target}: expected unix:PATH or https://HOST:PORT");
    };
    let path = path.to_owned();
    let shown = path.clone();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::try_from("http://tracer.local")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connecting to the daemon at unix:{shown} (is tracer-daemon running, and are you root?)"))?;
    Ok(bounded(TracerClient::new(channel)))
}

/// Accepts every message the daemon can send: tonic's default limit
/// (4 MiB) refused a batch of a few large events.
fn bounded(c: TracerClient<Channel>) -> TracerClient<Channel> {
    c.max_decoding_message_size(tracer_store::MAX_MESSAGE)
        .max_encoding_message_size(tracer_store::MAX_MESSAGE)
}
