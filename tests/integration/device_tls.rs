//! MQTT over TLS on the embedded endpoint, with a real client: `mosquitto_pub --cafile`.

use std::path::Path;
use std::process::Command;

use crate::helpers::{eventually, minutes_ago, spawn_app_in, tool};

/// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl tool.
fn certificate(dir: &Path, openssl: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("endpoint.crt"), dir.join("endpoint.key"));
    let status = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=caravan-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

#[tokio::test]
async fn a_device_publishes_over_tls_with_its_credential() {
    let (Some(openssl), Some(mosquitto_pub)) = (tool("openssl"), tool("mosquitto_pub")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(certs.path(), &openssl);
    let app = spawn_app_in(dir.path(), |s| {
        s.mqtt.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
        s.mqtt.tls_cert = Some(cert.clone());
        s.mqtt.tls_key = Some(key.clone());
    })
    .await;
    let tls_port = app.mqtt_tls_port().expect("a TLS listener");
    app.register("tls-1").await;
    let secret = app.credential("tls-1").await;
    let payload = format!(
        r#"{{"seq": 1, "t": "{}", "lat": 39.681, "lon": 73.9215}}"#,
        minutes_ago(1)
    );
    // tokio's Command: the server under test runs on this same runtime and must answer.
    let publish = |cafile: &Path, password: &str| {
        tokio::process::Command::new(&mosquitto_pub)
            .args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "-q", "1"])
            .arg("--cafile")
            .arg(cafile)
            .args(["-d", "-i", "tls-1", "-u", "tls-1", "-P", password])
            .args(["-t", "caravan/v1/dev/tls-1/pos", "-m", &payload])
            .output()
    };
    let wrong = publish(&cert, "cvd_wrong")
        .await
        .expect("mosquitto_pub runs");
    assert!(
        !wrong.status.success(),
        "a wrong secret is refused over TLS too"
    );
    let sent = publish(&cert, &secret).await.expect("mosquitto_pub runs");
    assert!(
        sent.status.success(),
        "{}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    eventually("the fix sent over TLS is applied", || async {
        (app.device("tls-1").await["position"]["seq"] == 1).then_some(())
    })
    .await;
}
