//! systemd's readiness protocol (`Type=notify`): a datagram to
//! `$NOTIFY_SOCKET`. Written here (a dozen lines of std) rather than pulling
//! a crate for it. Without the variable, nothing is sent.
use std::os::{
    linux::net::SocketAddrExt,
    unix::net::{SocketAddr, UnixDatagram},
};

pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = UnixDatagram::unbound().and_then(|s| {
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&path)?,
        };
        s.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        tracing::warn!("telling systemd {state:?}: {e}");
    }
}
