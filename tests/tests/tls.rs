//! Remote access: https with client certificates (generated here). The
//! right client works; no certificate, or one from another CA, is refused.
use std::{path::Path, process::Command};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tracer_tests::{Daemon, tracectl_bin};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("ca cert");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate and key signed by `ca`, written as PEM files.
fn leaf(
    ca: &Ca,
    names: &[&str],
    dir: &Path,
    stem: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign");
    let (c, k) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, key.serialize_pem()).expect("write key");
    (c, k)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn https_requires_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let good = ca("tracer test CA");
    let other = ca("someone else's CA");
    std::fs::write(d.join("ca.crt"), &good.pem).expect("ca");
    let (server_crt, server_key) = leaf(&good, &["localhost"], d, "server");
    let (client_crt, client_key) = leaf(&good, &["client"], d, "client");
    let (rogue_crt, rogue_key) = leaf(&other, &["client"], d, "rogue");
    let port = free_port();
    let https = format!("https://127.0.0.1:{port}");
    let mut daemon = Daemon::start(&[
        "--pid",
        &std::process::id().to_string(),
        "--listen",
        &https,
        "--tls-cert",
        server_crt.to_str().expect("path"),
        "--tls-key",
        server_key.to_str().expect("path"),
        "--tls-client-ca",
        d.join("ca.crt").to_str().expect("path"),
    ]);
    let status = |cert: Option<(&Path, &Path)>| {
        let mut cmd = Command::new(tracectl_bin());
        cmd.args(["--connect", &format!("https://localhost:{port}"), "--ca"])
            .arg(d.join("ca.crt"));
        if let Some((c, k)) = cert {
            cmd.arg("--cert").arg(c).arg("--key").arg(k);
        }
        cmd.arg("status").output().expect("tracectl")
    };
    let ok = status(Some((&client_crt, &client_key)));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("events recorded"));
    let none = status(None);
    assert!(!none.status.success(), "no client certificate is refused");
    let rogue = status(Some((&rogue_crt, &rogue_key)));
    assert!(
        !rogue.status.success(),
        "a certificate from another CA is refused"
    );
    // The daemon is unharmed by the refused handshakes.
    assert!(status(Some((&client_crt, &client_key))).status.success());
    daemon.stop();
}

#[test]
fn https_without_tls_files_is_a_clear_error() {
    let out = Command::new(tracer_tests::daemon_bin())
        .args([
            "--data-dir",
            "/tmp/tracer-tls-none",
            "--listen",
            "https://127.0.0.1:1",
        ])
        .output()
        .expect("daemon");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("client certificates"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
