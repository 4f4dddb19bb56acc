use crate::app::App;
use crate::settings::Settings;

/// `caravan serve`: runs until SIGINT or SIGTERM, then shuts down cleanly.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = App::start(settings).await?;
    let broker = if app.embedded_broker {
        "embedded broker"
    } else {
        "external broker"
    };
    println!("MQTT  {}:{} ({broker})", app.mqtt.host, app.mqtt.port);
    println!("HTTP  http://{}", app.http);
    if app.http.ip().is_loopback() {
        println!("The API has no authentication yet, so it listens on loopback only.");
    } else {
        println!("WARNING: the API has no authentication yet and listens beyond loopback.");
    }
    let cancel = app.cancel_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        cancel.cancel();
    });
    app.wait().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
