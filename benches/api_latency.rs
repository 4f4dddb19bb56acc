//! API latency at 100,000 open transits (see BENCHMARKS.md).
//!
//! Seeds a fresh store with open transits declared through the domain against the shipped
//! maps, starts the real app on 127.0.0.1 port 0, and drives each endpoint open loop at a
//! fixed rate: request `i` is due at `start + i / rate`, and its latency counts from that
//! instant, so a stalled server is charged for the requests it delayed (no coordinated
//! omission). `GET /healthz` (a store ping through the same blocking pool) is the baseline
//! measured in the same run.
//!
//! `cargo bench --bench api_latency -- [--transits N] [--rate R] [--seconds S] [--connections C]`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use caravan::app::App;
use caravan::auth::Role;
use caravan::maps::Atlas;
use caravan::settings::Settings;
use caravan::store::{self, StoreWriter, Write};
use caravan::telemetry::DeviceId;
use caravan::transit::declare::DeclaredSeal;
use caravan::transit::{
    Action, Actor, Declaration, Driver, GoodsLine, OfficerAction, RiskRules, TransitBook,
    TransitRules,
};
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

struct Args {
    transits: usize,
    rate: u32,
    seconds: u64,
    connections: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        transits: 100_000,
        rate: 1_000,
        seconds: 20,
        connections: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("a value after the flag");
        match flag.as_str() {
            "--transits" => a.transits = value()?.parse()?,
            "--rate" => a.rate = value()?.parse()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--connections" => a.connections = value()?.parse()?,
            _ => {}
        }
    }
    anyhow::ensure!(a.rate > 0 && a.rate <= 20_000, "--rate: 1 to 20000");
    anyhow::ensure!(a.seconds <= 120, "--seconds: at most 120");
    anyhow::ensure!(
        a.connections > 0 && a.connections <= 512,
        "--connections: 1 to 512"
    );
    Ok(a)
}

/// A route a seeded transit can take: offices of departure and destination and one BCP.
#[derive(Clone)]
struct Route {
    from: String,
    bcp: String,
    to: String,
}

/// Every office → BCP → office route of the shipped maps that declares.
fn routes(atlas: &Arc<Atlas>, now: DateTime<Utc>) -> anyhow::Result<Vec<Route>> {
    let mut found = Vec::new();
    let mut book = book(atlas)?;
    for bcp in &atlas.bcps {
        for from in atlas.offices.iter() {
            for to in atlas.offices.iter().filter(|o| o.country != from.country) {
                let sides = bcp.posts.iter().map(|p| p.country).collect::<Vec<_>>();
                if !sides.contains(&from.country) || !sides.contains(&to.country) {
                    continue;
                }
                let route = Route {
                    from: from.id.clone(),
                    bcp: bcp.id.clone(),
                    to: to.id.clone(),
                };
                let n = found.len();
                if book
                    .declare(declaration(&route, n, now), &Actor::system(), now, &|id| {
                        Some(id.clone())
                    })
                    .is_ok()
                {
                    found.push(route);
                }
            }
        }
    }
    anyhow::ensure!(!found.is_empty(), "no route of the shipped maps declares");
    Ok(found)
}

fn book(atlas: &Arc<Atlas>) -> anyhow::Result<TransitBook> {
    Ok(TransitBook::new(
        atlas.clone(),
        TransitRules::embedded()?,
        RiskRules::embedded()?,
    ))
}

fn declaration(route: &Route, n: usize, now: DateTime<Utc>) -> Declaration {
    Declaration {
        reference: format!("25LD{n:07}"),
        carrier: format!("carrier-{}", n % 500),
        vehicle_plate: format!("{:02}LD{:05}", n % 90 + 10, n % 100_000),
        trailer_plates: vec![format!("TR{n:07}")],
        driver: Driver {
            name: "Bakyt Asanov".into(),
            document: Some(format!("AC{n:07}")),
        },
        devices: vec![format!("load-{n}")],
        seals: vec![DeclaredSeal {
            id: format!("S-{n:07}"),
            device_id: None,
        }],
        goods: vec![GoodsLine {
            hs_code: ["845011", "870323", "520100", "610910"][n % 4].into(),
            description: "general cargo".into(),
            gross_kg: 8_000.0 + (n % 13) as f64 * 1_000.0,
            value: 20_000.0 + (n % 17) as f64 * 5_000.0,
            currency: "USD".into(),
        }],
        departure_office: route.from.clone(),
        itinerary: vec![route.bcp.clone()],
        destination_office: route.to.clone(),
        deadline: now + chrono::Duration::days(10),
    }
}

/// What the load picks from: the seeded ids and the posts with arrivals expected.
struct Seeded {
    ids: Vec<String>,
    posts: Vec<String>,
    body_bytes: usize,
}

/// Declares `n` transits over the routes (every other one departed) and commits them in
/// batches through the store's writer.
fn seed(dir: &Path, n: usize) -> anyhow::Result<Seeded> {
    let atlas = Arc::new(Atlas::embedded()?);
    let base = Utc::now();
    let routes = routes(&atlas, base)?;
    let (mut writer, _) = store::open(dir)?;
    let mut ids = Vec::with_capacity(n);
    let mut body_bytes = 0;
    let by = Actor("customs:load".into());
    for start in (0..n).step_by(2_000) {
        let mut book = book(&atlas)?;
        let mut writes = Vec::new();
        for i in start..n.min(start + 2_000) {
            let now = base - chrono::Duration::seconds((n - i) as i64);
            let route = &routes[i % routes.len()];
            let mut change = book
                .declare(declaration(route, i, now), &by, now, &|id: &DeviceId| {
                    Some(id.clone())
                })
                .map_err(|e| anyhow::anyhow!("declaring {i}: {e:?}"))?;
            if i % 2 == 1 {
                let depart = Action::Lifecycle(OfficerAction::ConfirmDeparture);
                change = book.act(&change.transit.id, depart, &by, now)?;
            }
            if i == 0 {
                body_bytes = serde_json::to_string(&change.transit)?.len();
            }
            ids.push(change.transit.id.to_string());
            writes.push(Write::Transit(change.transit));
        }
        writer.commit(&writes)?;
    }
    let mut posts: Vec<String> = routes
        .iter()
        .filter_map(|r| atlas.bcp(&r.bcp))
        .flat_map(|b| b.posts.iter().map(|p| p.id.clone()))
        .collect();
    posts.sort();
    posts.dedup();
    Ok(Seeded {
        ids,
        posts,
        body_bytes,
    })
}

/// Latencies of one open-loop run, in microseconds.
struct Run {
    name: &'static str,
    latencies_us: Vec<u64>,
    errors: usize,
    elapsed: Duration,
}

async fn drive(
    name: &'static str,
    paths: Vec<String>,
    base: &str,
    token: &str,
    a: &Args,
) -> anyhow::Result<Run> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    let gate = Arc::new(Semaphore::new(a.connections));
    let total = u64::from(a.rate) * a.seconds;
    let interval = Duration::from_secs(1) / a.rate;
    let start = tokio::time::Instant::now();
    let mut pending = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let permit = gate.clone().acquire_owned().await?;
        let request = client
            .get(format!("{base}{}", paths[i as usize % paths.len()]))
            .bearer_auth(token);
        pending.push(tokio::spawn(async move {
            let ok = match request.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            drop(permit);
            ok.then(|| due.elapsed().as_micros() as u64)
        }));
    }
    let mut run = Run {
        name,
        latencies_us: Vec::with_capacity(pending.len()),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for p in pending {
        match p.await? {
            Some(us) => run.latencies_us.push(us),
            None => run.errors += 1,
        }
    }
    run.elapsed = start.elapsed();
    run.latencies_us.sort_unstable();
    Ok(run)
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).map_or(f64::NAN, |us| *us as f64 / 1000.0)
}

fn print(runs: &[Run]) {
    println!("| endpoint | requests | errors | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | p99 / baseline p99 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let base_p99 = runs
        .first()
        .map_or(f64::NAN, |r| quantile(&r.latencies_us, 0.99));
    for r in runs {
        let l = &r.latencies_us;
        let p99 = quantile(l, 0.99);
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.name,
            l.len() + r.errors,
            r.errors,
            (l.len() + r.errors) as f64 / r.elapsed.as_secs_f64(),
            quantile(l, 0.5),
            quantile(l, 0.9),
            p99,
            l.last().map_or(f64::NAN, |us| *us as f64 / 1000.0),
            p99 / base_p99,
        );
    }
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let seeded = seed(dir.path(), a.transits)?;
    eprintln!(
        "seeded {} open transits over {} posts in {:.1} s (one transit: {} bytes of JSON)",
        seeded.ids.len(),
        seeded.posts.len(),
        t.elapsed().as_secs_f64(),
        seeded.body_bytes
    );
    let server = tokio::runtime::Runtime::new()?;
    let mut settings = Settings::default();
    settings.http.listen = "127.0.0.1:0".parse()?;
    settings.mqtt.listen = "127.0.0.1:0".parse()?;
    settings.store.data_dir = dir.path().to_owned();
    let token = caravan::tokens::create_in(&settings, "api load", Role::Coordinator)?;
    let t = Instant::now();
    let app = server.block_on(App::start(settings))?;
    eprintln!(
        "App::start with {} transits: {:.1} s",
        seeded.ids.len(),
        t.elapsed().as_secs_f64()
    );
    let base = format!("http://{}", app.http);
    let mut rng = fastrand::Rng::with_seed(7);
    let by_id: Vec<String> = (0..4096)
        .map(|_| {
            format!(
                "/api/v1/transits/{}",
                seeded.ids[rng.usize(..seeded.ids.len())]
            )
        })
        .collect();
    let at_post: Vec<String> = (0..4096)
        .map(|_| {
            let post = &seeded.posts[rng.usize(..seeded.posts.len())];
            format!("/api/v1/posts/{post}/expected-arrivals")
        })
        .collect();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runs = client.block_on(async {
        let warm = Args { seconds: 2, ..a };
        drive("warm-up", at_post.clone(), &base, &token, &warm).await?;
        let mut runs = Vec::new();
        runs.push(
            drive(
                "GET /healthz (baseline)",
                vec!["/healthz".into()],
                &base,
                &token,
                &a,
            )
            .await?,
        );
        runs.push(drive("GET /api/v1/transits/{id}", by_id, &base, &token, &a).await?);
        runs.push(
            drive(
                "GET /api/v1/posts/{id}/expected-arrivals",
                at_post,
                &base,
                &token,
                &a,
            )
            .await?,
        );
        anyhow::Ok(runs)
    })?;
    print(&runs);
    server.block_on(app.shutdown());
    Ok(())
}
