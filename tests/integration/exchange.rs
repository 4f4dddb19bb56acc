//! Three national instances (China, Kazakhstan, Kyrgyzstan), each with its own data
//! directory, HTTP server and MQTT endpoint, exchanging one transit: Urumqi → Khorgos →
//! Ak-Zhol → Bishkek, declared in China and driven over MQTT there (`docs/exchange.md`).

use std::path::Path;

use caravan::evidence::InstanceKey;
use caravan::settings::Settings;
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_in, topic, TestApp};

const ID: &str = "CN-65CN0101-000777";

struct Instance {
    name: &'static str,
    country: &'static str,
    dir: tempfile::TempDir,
    port: u16,
    key: String,
}

/// A free port below the ephemeral range. Each instance's peers must know its URL before it
/// starts, and it must come back on the same port after a restart; a port that the kernel
/// hands out for port 0 could meanwhile go to a server of another test running beside this
/// one, but the kernel gives out none below the ephemeral range (32768 on Linux).
/// Successive calls take successive ports, so no two instances of the test share one.
fn fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        fastrand::u16(20_000..28_000),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    (0..2_000)
        .map(|_| NEXT.fetch_add(1, Ordering::SeqCst))
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// A data directory with its instance key made, and a free port for its API.
fn instance(name: &'static str, country: &'static str) -> Instance {
    let dir = tempfile::tempdir().expect("a temp dir");
    let key = InstanceKey::load_or_create(dir.path()).expect("an instance key");
    let port = fixed_port();
    Instance {
        name,
        country,
        dir,
        port,
        key: key.public_hex(),
    }
}

/// `me`'s settings, with every other instance as a peer.
fn configure(settings: &mut Settings, me: &Instance, all: &[&Instance]) {
    settings.http.listen = format!("127.0.0.1:{}", me.port).parse().expect("addr");
    settings.exchange.countries = vec![me.country.parse().expect("a country")];
    settings.exchange.url = Some(format!("http://127.0.0.1:{}", me.port));
    // A peer that comes back hears from the others within a second or two.
    settings.exchange.retry_max_s = 1;
    settings.exchange.peers = all
        .iter()
        .filter(|p| p.name != me.name)
        .map(|p| caravan::exchange::PeerSettings {
            name: p.name.into(),
            url: format!("http://127.0.0.1:{}", p.port),
            countries: vec![p.country.parse().expect("a country")],
            key: p.key.clone(),
        })
        .collect();
}

async fn start(me: &Instance, all: &[&Instance]) -> TestApp {
    spawn_app_in(me.dir.path(), |s| configure(s, me, all)).await
}

fn declaration() -> Value {
    json!({
        "reference": "65CN0101-000777",
        "carrier": "kg-trans",
        "vehicle_plate": "XJ-A-12345",
        "driver": {"name": "Li Wei"},
        "devices": ["truck-cn-1"],
        "seals": [{"id": "CN-S-0777"}],
        "goods": [{"hs_code": "850440", "description": "inverters", "gross_kg": 9000.0,
                   "value": 70000.0, "currency": "USD"}],
        "departure_office": "urumqi",
        "itinerary": ["khorgos", "akzhol"],
        "destination_office": "bishkek",
        "deadline": (Utc::now() + Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

async fn transit(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.get_as(token, &format!("/api/v1/transits/{ID}")).await
}

/// `docs/exchange.schema.json`, validating its definition `def`.
fn schema(def: &str) -> jsonschema::Validator {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/exchange.schema.json")).expect("schema");
    let mut schema: Value = serde_json::from_str(&text).expect("schema JSON");
    schema["$ref"] = json!(format!("#/$defs/{def}"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema")
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?} in {instance}");
}

/// The `exchange.*` records of the transit in `app`'s evidence bundle: (record kind, seq,
/// message kind). Each message is checked against the documented schema, and its signature
/// against the key of the instance among `senders` it names as its sender.
async fn received(app: &TestApp, senders: &[&Instance]) -> Vec<(String, i64, String)> {
    let messages = schema("message");
    let (status, bundle) = app.get(&format!("/api/v1/transits/{ID}/evidence")).await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let mut out = Vec::new();
    for e in bundle["events"].as_array().into_iter().flatten() {
        let kind = e["kind"].as_str().unwrap_or_default();
        if !kind.starts_with("exchange.") {
            continue;
        }
        let body: Value =
            serde_json::from_str(e["body"].as_str().expect("the record's text")).expect("JSON");
        let text = body["message"].as_str().expect("the signed message");
        let message: Value = serde_json::from_str(text).expect("JSON");
        assert_valid(&messages, &message);
        let sender = senders
            .iter()
            .find_map(|i| {
                let key = caravan::evidence::key::parse_public(&i.key)?;
                (caravan::evidence::key::fingerprint(&key) == message["from"]).then_some(key)
            })
            .expect("a known sender");
        let signature = body["signature"].as_str().unwrap_or_default();
        assert!(
            caravan::evidence::key::verify(&sender, text.as_bytes(), signature),
            "the evidence keeps a message its sender signed: {body}"
        );
        let of = body["kind"].as_str().unwrap_or_default().to_owned();
        out.push((kind.to_owned(), body["seq"].as_i64().unwrap_or(-1), of));
    }
    out
}

/// A message signed with `key` from the instance in `from_dir`, as a peer would send it.
fn forge(from: &Path, to: &Instance, seq: i64, kind: &str, body: Value) -> Value {
    let key = InstanceKey::load_or_create(from).expect("the sender's key");
    let to_key = caravan::evidence::key::parse_public(&to.key).expect("a key");
    let message = json!({
        "protocol": 1,
        "from": key.fingerprint(),
        "to": caravan::evidence::key::fingerprint(&to_key),
        "seq": seq,
        "queued_at": Utc::now(),
        "transit_id": ID,
        "kind": kind,
        "body": body,
    })
    .to_string();
    let signature = key.sign(message.as_bytes());
    json!({"messages": [{"message": message, "signature": signature}]})
}

#[tokio::test]
async fn three_national_instances_share_one_transit_each_within_its_mandate() {
    let (cn_i, kz_i, kg_i) = (
        instance("cn", "CN"),
        instance("kz", "KZ"),
        instance("kg", "KG"),
    );
    let all = [&cn_i, &kz_i, &kg_i];
    let cn = start(&cn_i, &all).await;
    let kz = start(&kz_i, &all).await;
    let kg = start(&kg_i, &all).await;

    // Declared in China: Kazakhstan's post at Khorgos expects it before it has left Urumqi.
    cn.register("truck-cn-1").await;
    let (status, body) = cn.post("/api/v1/transits", &declaration()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Tokens are made before the servers get busy (they are written to the store directly).
    let khorgos_kz = kz.token_for("post:khorgos:KZ");
    let customs_kz = kz.token_for("customs:KZ");
    let customs_kg = kg.token_for("customs:KG");
    eventually("Khorgos (KZ) expects the transit", || async {
        let (_, list) = kz
            .get_as(&khorgos_kz, "/api/v1/posts/khorgos-kz/expected-arrivals")
            .await;
        let ids: Vec<&str> = list["expected"]
            .as_array()?
            .iter()
            .filter_map(|e| e["transit_id"].as_str())
            .collect();
        ids.contains(&ID).then_some(())
    })
    .await;
    let (_, t) = transit(&kz, &customs_kz).await;
    assert_eq!(t["stage"], "declared");
    assert_eq!(t["held_by"], "cn", "{t}");
    assert_eq!(t["goods"][0]["hs_code"], "850440");

    // Departure, then a seal cut in Kazakhstan reported over MQTT to China's instance.
    let (status, body) = cn
        .post(
            &format!("/api/v1/transits/{ID}/actions"),
            &json!({"action": "confirm_departure"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Kazakhstan's post confirms the exit from Khorgos into Kazakhstan; China, which
    // holds the transit, applies it: the truck is on its Kazakh leg.
    let exit = json!({"action": "confirm_exit", "place": "khorgos-kz"});
    let (status, body) = kz
        .post_as(
            &khorgos_kz,
            &format!("/api/v1/transits/{ID}/actions"),
            &exit,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("China applies the exit confirmed in Kazakhstan", || async {
        let (_, t) = transit(&cn, &cn.token).await;
        let by_kz = t["transitions"].as_array()?.iter().any(|tr| {
            tr["place"] == "khorgos-kz" && tr["by"].as_str().is_some_and(|b| b.ends_with("via kz"))
        });
        (by_kz && t["leg"] == 1).then_some(())
    })
    .await;
    let device = cn.mqtt("truck-cn-1").await;
    // Cut after the exit: the alert is Kazakhstan's, where the truck then was.
    let t_cut = (Utc::now() + Duration::seconds(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cut = json!({"seq": 1, "t": t_cut, "seal_id": "CN-S-0777", "event": "rope_cut",
                     "lat": 43.30, "lon": 77.10});
    device
        .publish_json(&topic("truck-cn-1", "seal"), &cut)
        .await;
    let near_almaty = json!({"seq": 2, "t": t_cut, "lat": 43.30, "lon": 77.10, "speed_kmh": 0.0});
    device
        .publish_json(&topic("truck-cn-1", "pos"), &near_almaty)
        .await;
    // Kazakhstan follows the truck on its own soil: China forwards the position.
    eventually("Kazakhstan sees the truck near Almaty", || async {
        let (_, t) = transit(&kz, &customs_kz).await;
        (t["motion"]["point"]["lat"].as_f64()? == 43.30).then_some(())
    })
    .await;

    // Kazakhstan's desk gets the alert (it occurred there); Kyrgyzstan's does not, yet.
    let alert = eventually("the seal alert reaches Kazakhstan", || async {
        let (_, list) = kz.get_as(&customs_kz, "/api/v1/alerts").await;
        list["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == "seal_breach")
            .cloned()
    })
    .await;
    assert_eq!(alert["jurisdiction"], "KZ", "{alert}");
    let alert_id = alert["id"].as_str().expect("an alert id").to_owned();
    let (_, kg_view) = transit(&kg, &customs_kg).await;
    assert_eq!(kg_view["alerts"], json!([]), "{kg_view}");

    // Kyrgyzstan's instance goes down for a stretch.
    let kg_dir = kg.data_dir.clone();
    let _ = kg.shutdown().await;

    // Kazakhstan inspects at Khorgos and escalates the alert; both travel to China, which
    // holds the transit, and from there to Kyrgyzstan once it is back.
    let inspection = json!({"place": "khorgos-kz", "result": "cleared",
                            "notes": "load checked against the declaration",
                            "checklist": [{"item": "pallet count as declared", "ok": true},
                                          {"item": "load secured", "ok": true}]});
    let (status, body) = kz
        .post_as(
            &khorgos_kz,
            &format!("/api/v1/transits/{ID}/inspections"),
            &inspection,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let escalate = json!({"action": "escalate", "notes": "seal cut near Almaty; driver held"});
    let (status, body) = kz
        .post_as(
            &customs_kz,
            &format!("/api/v1/alerts/{alert_id}/actions"),
            &escalate,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("China applies both of Kazakhstan's actions", || async {
        let (_, t) = transit(&cn, &cn.token).await;
        let inspected = t["inspections"].as_array()?.iter().any(|i| {
            i["place"] == "khorgos-kz"
                && i["officer"].as_str().is_some_and(|o| o.ends_with("via kz"))
        });
        let escalated = t["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["id"] == alert_id.as_str() && a["outcome"] == "escalated");
        (inspected && escalated).then_some(())
    })
    .await;
    let health = eventually(
        "China's outbox to Kyrgyzstan shows it unreachable",
        || async {
            let (_, health) = cn.get("/healthz").await;
            let kg = &health["exchange"]["peers"]["kg"];
            (kg["reachable"] == false && kg["waiting"].as_i64()? > 0).then_some(health)
        },
    )
    .await;
    // A peer that is down is the exchange's trouble, not China's instance's.
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        health["exchange"]["status"]
            .as_str()
            .is_some_and(|s| s.contains("kg unreachable")),
        "{health}"
    );
    // Per transit: Kazakhstan has had the record; Kyrgyzstan's wait.
    let (_, shared) = cn.get(&format!("/api/v1/transits/{ID}/exchange")).await;
    let peer = |name: &str| {
        shared["peers"]
            .as_array()
            .and_then(|p| p.iter().find(|x| x["peer"] == name).cloned())
            .unwrap_or_else(|| panic!("no peer {name} in {shared}"))
    };
    assert!(
        peer("kz")["delivered"][0]["delivered_at"].is_string(),
        "{shared}"
    );
    assert_eq!(peer("kg")["reachable"], false, "{shared}");
    assert!(
        !peer("kg")["waiting"].as_array().is_some_and(Vec::is_empty),
        "{shared}"
    );
    let (_, copy) = kz.get(&format!("/api/v1/transits/{ID}/exchange")).await;
    assert_eq!(copy["held_by"], "cn", "{copy}");
    assert_eq!(
        copy["peers"][0]["peer"], "cn",
        "Kazakhstan's actions went to the holder: {copy}"
    );
    assert!(
        copy["peers"][0]["delivered"][0]["delivered_at"].is_string(),
        "{copy}"
    );

    // Back up: everything arrives, once, in order.
    let kg = spawn_app_in(&kg_dir, |s| configure(s, &kg_i, &all)).await;
    let (_, hello) = kg.get("/api/v1/exchange/hello").await;
    assert_valid(&schema("hello"), &hello);
    let seen = eventually(
        "Kyrgyzstan sees the inspection and the escalation",
        || async {
            let (_, t) = transit(&kg, &customs_kg).await;
            let inspected = t["inspections"]
                .as_array()?
                .iter()
                .any(|i| i["place"] == "khorgos-kz");
            let escalated = t["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["id"] == alert_id.as_str());
            (inspected && escalated).then_some(t)
        },
    )
    .await;
    let escalated = &seen["alerts"][0];
    assert_eq!(escalated["outcome"], "escalated", "{seen}");
    assert_eq!(escalated["jurisdiction"], "KZ", "{seen}");
    let recognised = &seen["inspections"][0];
    assert_eq!(
        recognised["officer"], "test (post:khorgos:KZ) via kz",
        "shown with who recorded it: {seen}"
    );
    assert_eq!(seen["held_by"], "cn");
    // Recognised, and checked: Kazakhstan's own signed message travels with it, and
    // Kyrgyzstan verified it with Kazakhstan's key.
    assert_eq!(recognised["attested"]["peer"], "kz", "{seen}");
    assert_eq!(recognised["attested"]["verified"], true, "{seen}");
    assert_eq!(
        recognised["checklist"][0]["item"],
        "pallet count as declared"
    );
    // The Kyrgyz post at Ak-Zhol expects the truck next, with Kazakhstan's inspection.
    let akzhol_kg = kg.token_for("post:akzhol:KG");
    let (_, board) = kg
        .get_as(&akzhol_kg, "/api/v1/posts/akzhol-kg/expected-arrivals")
        .await;
    let row = board["expected"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["transit_id"] == ID))
        .unwrap_or_else(|| panic!("Ak-Zhol (KG) expects the transit: {board}"));
    assert_eq!(row["inspections"][0]["place"], "khorgos-kz", "{row}");
    assert_eq!(row["inspections"][0]["attested"]["verified"], true, "{row}");
    // An escalation closes the alert where it occurred (outcome `escalated`) and hands it
    // to the next country, whose desk lists it among the resolved ones.
    let (_, desk) = kg
        .get_as(&customs_kg, "/api/v1/alerts?state=resolved")
        .await;
    assert!(
        desk["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == alert_id.as_str())),
        "the escalation is on Kyrgyzstan's desk: {desk}"
    );
    let records = received(&kg, &all).await;
    assert!(
        !records.is_empty(),
        "Kyrgyzstan's evidence keeps what it received"
    );
    let seqs: Vec<i64> = records.iter().map(|(_, s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "applied in order, each once: {records:?}"
    );
    assert!(
        records.iter().all(|(k, _, _)| k == "exchange.received"),
        "{records:?}"
    );
    assert!(
        records.iter().all(|(_, _, m)| m == "transit"),
        "no position in Kazakhstan was sent to Kyrgyzstan: {records:?}"
    );
    eventually("China's outbox to Kyrgyzstan is empty", || async {
        let (_, health) = cn.get("/healthz").await;
        (health["exchange"]["peers"]["kg"]["waiting"] == 0).then_some(())
    })
    .await;
    let metrics = cn.metrics().await;
    let duplicates = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("caravan_exchange_sent_total{peer=\"kg\",outcome=\"duplicate\"} ")
        })
        .unwrap_or("0");
    assert_eq!(duplicates, "0", "nothing was delivered twice to Kyrgyzstan");

    // Forgeries: a key nobody configured, and Kazakhstan asserting a Kyrgyz exit.
    let stranger = tempfile::tempdir().expect("a temp dir");
    let forged = forge(
        stranger.path(),
        &cn_i,
        1,
        "action",
        json!({"action": {"lifecycle": {"action": "confirm_exit", "place": "akzhol-kz"}},
               "by": "someone", "at": Utc::now()}),
    );
    let (status, body) = cn.post("/api/v1/exchange/messages", &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let kg_exit = forge(
        kz_i.dir.path(),
        &cn_i,
        1_000_000,
        "action",
        json!({"action": {"lifecycle": {"action": "confirm_exit", "place": "akzhol-kg"}},
               "by": "officer (customs:KZ)", "at": Utc::now()}),
    );
    assert_valid(&schema("delivery"), &kg_exit);
    let (status, body) = cn.post("/api/v1/exchange/messages", &kg_exit).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_valid(&schema("receipt"), &body);
    assert_eq!(body["results"][0]["outcome"], "refused", "{body}");
    let reason = body["results"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("only in KZ"), "{reason}");
    // Kazakhstan sending a Chinese transit's record as if it held it.
    let (_, record) = transit(&cn, &cn.token).await;
    let not_theirs = forge(kz_i.dir.path(), &kg_i, 1_000_000, "transit", record);
    let (status, body) = kg.post("/api/v1/exchange/messages", &not_theirs).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["outcome"], "refused", "{body}");
    assert!(
        body["results"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("issued in CN"),
        "{body}"
    );
    // A protocol this release does not speak is refused with the versions it does.
    let exit_kz = json!({"action": {"lifecycle": {"action": "confirm_exit", "place": "akzhol-kz"}},
                         "by": "officer (customs:KZ)", "at": Utc::now()});
    let mut newer = forge(kz_i.dir.path(), &kg_i, 1_000_001, "action", exit_kz);
    let text = newer["messages"][0]["message"].as_str().unwrap_or_default();
    let text = text.replace("\"protocol\":1", "\"protocol\":2");
    let key = InstanceKey::load_or_create(kz_i.dir.path()).expect("the key");
    newer["messages"][0]["signature"] = json!(key.sign(text.as_bytes()));
    newer["messages"][0]["message"] = json!(text);
    let (_, body) = kg.post("/api/v1/exchange/messages", &newer).await;
    assert_eq!(body["results"][0]["outcome"], "refused", "{body}");
    assert!(
        body["results"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("protocol 2"),
        "{body}"
    );
    // The same message again is a duplicate, not a second refusal in the log.
    let (_, again) = kg.post("/api/v1/exchange/messages", &not_theirs).await;
    assert_eq!(again["results"][0]["outcome"], "duplicate", "{again}");

    // Each instance's record of the transit is what its own log rebuilds, received copies
    // included.
    for (name, app) in [("cn", &cn), ("kz", &kz), ("kg", &kg)] {
        let (status, check) = app
            .get(&format!("/api/v1/transits/{ID}/evidence/check"))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {check}");
        assert_eq!(check["holds"], true, "{name}: {check}");
    }
    // Kazakhstan's evidence holds the positions China sent it, each signed and documented.
    let kz_records = received(&kz, &all).await;
    assert!(
        kz_records.iter().any(|(_, _, m)| m == "positions"),
        "{kz_records:?}"
    );

    let _ = cn.shutdown().await;
    let _ = kz.shutdown().await;
    let _ = kg.shutdown().await;
}
