use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use geo::Point;
use serde_json::Value;

use super::*;
use crate::maps::{measure, Atlas};

const START: i64 = 1_795_000_000; // 2026-11-17T...Z

fn atlas() -> &'static Atlas {
    static ATLAS: OnceLock<Atlas> = OnceLock::new();
    ATLAS.get_or_init(|| Atlas::embedded().expect("the shipped maps load"))
}

fn config(vehicles: usize, seed: u64) -> FleetConfig {
    let mut config = FleetConfig::new(vehicles, seed, START);
    config.rates = IncidentRates::none();
    config
}

fn payload(message: &Outgoing) -> Value {
    serde_json::from_str(&message.payload).expect("valid JSON")
}

/// Every fix in a message, single or backlog.
fn fixes(message: &Outgoing) -> Vec<Value> {
    match payload(message) {
        Value::Array(items) => items,
        one if message.kind == OutgoingKind::Pos => vec![one],
        _ => Vec::new(),
    }
}

fn device_of(message: &Outgoing) -> &str {
    message.topic.split('/').nth(3).unwrap_or_default()
}

fn off_corridor_m(corridor: &str, fix: &Value) -> f64 {
    let route = &atlas().corridor(corridor).expect("corridor").route;
    let p = Point::new(fix["lon"].as_f64().unwrap(), fix["lat"].as_f64().unwrap());
    measure::to_line_m(route, p)
}

#[test]
fn the_same_seed_gives_the_same_messages_and_another_seed_does_not() {
    let run = |seed| {
        Fleet::new(atlas(), &config(5, seed))
            .unwrap()
            .step(START + 6 * 3600)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn stepping_in_small_steps_sends_what_one_big_step_sends() {
    let mut whole = Fleet::new(atlas(), &config(4, 3)).unwrap();
    let mut pieces = Fleet::new(atlas(), &config(4, 3)).unwrap();
    let all = whole.step(START + 7200);
    let mut stepped = Vec::new();
    for k in 1..=72 {
        stepped.extend(pieces.step(START + k * 100));
    }
    let by_device = |messages: Vec<Outgoing>| {
        let mut map: HashMap<String, Vec<Outgoing>> = HashMap::new();
        for m in messages {
            map.entry(device_of(&m).to_owned()).or_default().push(m);
        }
        map
    };
    assert_eq!(by_device(all), by_device(stepped));
}

#[test]
fn a_vehicle_follows_its_corridor_at_cpmm_speeds() {
    let mut fleet = Fleet::new(atlas(), &config(30, 11)).unwrap();
    let corridors: HashMap<String, String> = fleet
        .devices()
        .into_iter()
        .map(|d| (d.device_id, d.corridor))
        .collect();
    let messages = fleet.step(START + 12 * 3600);
    let mut speeds = Vec::new();
    for message in &messages {
        for fix in fixes(message) {
            let corridor = &corridors[device_of(message)];
            let off = off_corridor_m(corridor, &fix);
            assert!(off < 50.0, "{off} m off {corridor}: {fix}");
            let speed = fix["speed_kmh"].as_f64().unwrap();
            if speed > 5.0 {
                speeds.push(speed);
            }
        }
    }
    let mean = speeds.iter().sum::<f64>() / speeds.len() as f64;
    assert!((35.0..55.0).contains(&mean), "mean moving speed {mean}");
}

#[test]
fn a_coverage_gap_yields_one_backlog_with_the_buffered_fixes_in_order() {
    let mut config = config(1, 5);
    config.reporting = Reporting::Interval(60);
    let mut fleet = Fleet::new(atlas(), &config).unwrap();
    let (route, gap) = fleet
        .routes()
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let end = r.length_m() - 20_000.0;
            r.gaps
                .iter()
                .filter(move |g| g.0 > 5_000.0 && g.1 < end)
                .map(move |g| (i, *g))
        })
        .min_by(|a, b| (a.1 .1 - a.1 .0).total_cmp(&(b.1 .1 - b.1 .0)))
        .expect("a corridor through a coverage gap");
    let vehicle = &mut fleet.vehicles[0];
    vehicle.route = route;
    vehicle.forward = true;
    vehicle.chainage = gap.0 - 2_000.0;
    // No BCP stop: the backlog should follow the drive through the gap.
    vehicle.next_bcp = None;
    let hours = ((gap.1 - gap.0) / 20_000.0).ceil() as i64 + 1;
    let messages = fleet.step(START + hours * 3600);
    let backlogs: Vec<&Outgoing> = messages
        .iter()
        .filter(|m| m.kind == OutgoingKind::Backlog)
        .collect();
    assert_eq!(backlogs.len(), 1, "one array for a short gap");
    let buffered = fixes(backlogs[0]);
    assert!(buffered.len() > 10, "{} fixes", buffered.len());
    let seqs: Vec<u64> = buffered
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    let times: Vec<&str> = buffered.iter().map(|f| f["t"].as_str().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Nothing recorded is lost: every seq from the first to the last was sent once.
    let mut sent: Vec<u64> = messages
        .iter()
        .flat_map(|m| match payload(m) {
            Value::Array(items) => items.iter().map(|f| f["seq"].as_u64().unwrap()).collect(),
            one => vec![one["seq"].as_u64().unwrap()],
        })
        .collect();
    sent.sort_unstable();
    let expected: Vec<u64> = (1..=sent.len() as u64).collect();
    assert_eq!(sent, expected);
    // The backlog goes out after the fixes before the gap and before those after it.
    let position = messages
        .iter()
        .position(|m| m.kind == OutgoingKind::Backlog)
        .unwrap();
    let before = messages[..position]
        .iter()
        .filter(|m| m.kind == OutgoingKind::Pos);
    assert!(before
        .map(|m| payload(m)["seq"].as_u64().unwrap())
        .all(|s| s < seqs[0]));
}

#[test]
fn the_truth_lists_each_injected_incident() {
    let mut config = config(40, 21);
    for kind in IncidentKind::ALL {
        config.rates.set(kind, 2.0);
    }
    let mut fleet = Fleet::new(atlas(), &config).unwrap();
    let corridors: HashMap<String, String> = fleet
        .devices()
        .into_iter()
        .map(|d| (d.device_id, d.corridor))
        .collect();
    let messages = fleet.step(START + 2 * 86_400);
    let truth = fleet.take_truth();
    let kinds: BTreeSet<IncidentKind> = truth.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        IncidentKind::ALL.into_iter().collect(),
        "every kind is staged"
    );

    let breaches: BTreeSet<(String, u64)> = messages
        .iter()
        .filter(|m| m.kind == OutgoingKind::Seal)
        .map(|m| (m, payload(m)))
        .filter(|(_, p)| matches!(p["event"].as_str(), Some("rope_cut" | "case_breach")))
        .map(|(m, p)| (device_of(m).to_owned(), p["seq"].as_u64().unwrap()))
        .collect();
    let staged_breaches: BTreeSet<(String, u64)> = truth
        .iter()
        .filter(|i| i.kind == IncidentKind::SealBreach)
        .map(|i| (i.device_id.clone(), i.seq.unwrap()))
        .collect();
    assert_eq!(breaches, staged_breaches);

    let jumps: BTreeSet<(String, u64)> = messages
        .iter()
        .flat_map(|m| fixes(m).into_iter().map(move |f| (m, f)))
        .filter(|(m, f)| off_corridor_m(&corridors[device_of(m)], f) > 40_000.0)
        .map(|(m, f)| (device_of(m).to_owned(), f["seq"].as_u64().unwrap()))
        .collect();
    let staged_jumps: BTreeSet<(String, u64)> = truth
        .iter()
        .filter(|i| i.kind == IncidentKind::GnssJump)
        .map(|i| (i.device_id.clone(), i.seq.unwrap()))
        .collect();
    assert!(
        jumps.is_subset(&staged_jumps),
        "every far-off fix was staged"
    );
    for jump in truth.iter().filter(|i| i.kind == IncidentKind::GnssJump) {
        let fix = messages
            .iter()
            .filter(|m| device_of(m) == jump.device_id)
            .flat_map(fixes)
            .find(|f| f["seq"].as_u64() == jump.seq)
            .expect("the jumped fix was sent");
        let from = (jump.lat, jump.lon);
        let to = (fix["lat"].as_f64().unwrap(), fix["lon"].as_f64().unwrap());
        assert!(route::haversine_m(from, to) > 45_000.0, "{jump:?} {fix}");
    }

    for incident in truth
        .iter()
        .filter(|i| i.kind == IncidentKind::DeviceSilent)
    {
        let until = incident.until.as_deref().unwrap();
        let heard = messages
            .iter()
            .filter(|m| device_of(m) == incident.device_id)
            .any(|m| {
                let t = payload(m)["t"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_default();
                t.as_str() > incident.at.as_str() && t.as_str() < until
            });
        assert!(!heard, "{incident:?}");
    }
}

#[test]
fn the_signal_fades_inside_a_coverage_gap_zone_not_at_its_edge() {
    use geo::Contains as _;
    let mut config = config(1, 5);
    config.transits = Some("T1".into());
    let fleet = Fleet::new(atlas(), &config).unwrap();
    let in_zone = |s: (f64, f64)| {
        atlas()
            .coverage_gaps
            .iter()
            .any(|g| g.zone.contains(&geo::Point::new(s.1, s.0)))
    };
    let mut edges = 0;
    for route in fleet.routes() {
        for &(start, end) in &route.gaps {
            // Where a vehicle driving either way loses its signal: the last fix it sends
            // lies a little before, and must be inside the zone.
            for (s, back) in [(start, start - 200.0), (end, end + 200.0)] {
                if s <= 0.0 || s >= route.length_m() {
                    continue;
                }
                let p = route.place(back);
                assert!(in_zone((p.lat, p.lon)), "{} at {s:.0} m", route.corridor_id);
                edges += 1;
            }
        }
    }
    assert!(edges > 0, "no route crosses a coverage gap");
}
