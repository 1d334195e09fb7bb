//! Connecting to the daemon's gRPC API.
use anyhow::{Context as _, bail};
use tonic::transport::{Channel, Endpoint, Uri};
use tracer_proto::tracer_client::TracerClient;

pub const DEFAULT_CONNECT: &str = "unix:/run/tracer/tracer.sock";

pub async fn connect(target: &str) -> anyhow::Result<TracerClient<Channel>> {
    let Some(path) = target.strip_prefix("unix:") else {
        bail!(
            "--connect {target}: only unix:PATH is supported by this build (TLS comes with remote access)"
        );
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
    Ok(TracerClient::new(channel))
}
