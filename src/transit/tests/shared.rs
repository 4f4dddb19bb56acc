//! What the book holds of each transit: one copy of its itinerary for all the transits on
//! it, however they came into the book, and its lists at the size they are.

use std::sync::Arc;

use super::*;
use crate::transit::Transit;

/// The shipped declaration again, for another truck.
fn declaration_for(n: u32) -> Declaration {
    let mut decl = declaration();
    decl.reference = format!("24CN0101-{n:06}");
    decl.devices = vec![format!("truck-{n}")];
    decl.seals[0].id = format!("CN-S-{n:04}");
    decl
}

fn device(n: u32) -> DeviceId {
    DeviceId::parse(&format!("truck-{n}")).expect("valid id")
}

fn declared(book: &mut TransitBook, decl: Declaration) -> Transit {
    *book
        .declare(decl, &officer("cn-kashgar-7"), at(0), &registered)
        .expect("a valid declaration")
        .transit
}

/// `n` transits on the same itinerary, declared by a book of their own and written as the
/// store holds them.
fn stored(n: u32) -> Vec<String> {
    let mut declaring = book();
    (1..=n)
        .map(|n| declared(&mut declaring, declaration_for(n)))
        .map(|t| serde_json::to_string(&t).expect("a transit encodes"))
        .collect()
}

fn shares(a: &Transit, b: &Transit) -> bool {
    let (a, b) = (&a.itinerary, &b.itinerary);
    Arc::ptr_eq(&a.line, &b.line)
        && Arc::ptr_eq(&a.checkpoints, &b.checkpoints)
        && Arc::ptr_eq(&a.legs, &b.legs)
}

#[test]
fn transits_declared_on_the_same_itinerary_hold_one_copy_of_it() {
    let mut book = book();
    declared(&mut book, declaration_for(1));
    declared(&mut book, declaration_for(2));
    let mut elsewhere = declaration_for(3);
    elsewhere.itinerary = vec!["irkeshtam".into(), "karasuu".into()];
    elsewhere.destination_office = "andijan".into();
    declared(&mut book, elsewhere);
    let held = |n| book.transit_of(&device(n)).expect("open");
    assert!(shares(&held(1), &held(2)));
    assert!(!Arc::ptr_eq(
        &held(1).itinerary.line,
        &held(3).itinerary.line
    ));
    assert_eq!(book.itineraries(), 2);
}

#[test]
fn transits_restored_from_the_store_share_their_itinerary_and_are_written_as_before() {
    let stored = stored(3);
    assert!(
        stored[0].contains(r#""line":{"points":[["#),
        "{}",
        stored[0]
    );
    let mut book = book();
    book.restore(
        stored
            .iter()
            .map(|json| serde_json::from_str::<Transit>(json).expect("a stored transit decodes")),
    );
    let held = |n| book.transit_of(&device(n)).expect("open");
    assert!(shares(&held(1), &held(2)) && shares(&held(2), &held(3)));
    assert_eq!(book.itineraries(), 1);
    let written = serde_json::to_string(&held(1)).expect("a transit encodes");
    assert_eq!(written, stored[0]);
}

#[test]
fn routes_on_one_itinerary_share_their_legs_and_are_named_by_their_transits_id_held_once() {
    let mut restored = book();
    restored.restore(
        stored(2)
            .iter()
            .map(|json| serde_json::from_str::<Transit>(json).expect("a stored transit decodes")),
    );
    let mut declaring = book();
    declared(&mut declaring, declaration_for(1));
    declared(&mut declaring, declaration_for(2));
    for book in [&restored, &declaring] {
        let route = |n| book.route_of(&device(n)).expect("a route");
        assert!(Arc::ptr_eq(&route(1).legs, &route(2).legs));
        for n in [1, 2] {
            let (id, _) = book.itinerary_of(&device(n)).expect("open");
            assert_eq!(&*route(n).id, id.as_str());
            assert!(route(n).id.shares(&id.shared()), "a copy of the id");
            assert_eq!(book.route_id_of(&device(n)), Some(id));
            // The record as changes and the store see it names the route by its transit too.
            let record = book.transit_of(&device(n)).expect("open");
            let named = record.itinerary.route.as_ref().map(|r| r.id.clone());
            assert_eq!(named.as_deref(), Some(id.as_str()));
        }
        let whole = |n| book.itinerary_of(&device(n)).expect("open").1;
        assert!(
            std::ptr::eq(whole(1), whole(2)),
            "one itinerary held for both"
        );
    }
}

#[test]
fn a_route_with_another_critical_distance_is_not_taken_from_a_shared_itinerary() {
    let mut stored = stored(2)
        .iter()
        .map(|json| serde_json::from_str::<Transit>(json).expect("a stored transit decodes"))
        .collect::<Vec<_>>();
    let own = stored[1].itinerary.route.as_mut().expect("a route");
    own.critical_deviation_m = Some(7_000.0);
    let mut book = book();
    book.restore(stored);
    let critical = |n| {
        book.route_of(&device(n))
            .expect("a route")
            .critical_deviation_m
    };
    assert_ne!(critical(1), Some(7_000.0));
    assert_eq!(critical(2), Some(7_000.0));
    let held = |n| book.transit_of(&device(n)).expect("open");
    assert!(shares(&held(1), &held(2)), "the rest is still shared");
    assert_eq!(book.itineraries(), 1);
}

#[test]
fn a_transit_declared_before_the_maps_changed_keeps_its_own_route() {
    let mut declaring = book();
    let current = declared(&mut declaring, declaration_for(1));
    let mut older = declared(&mut declaring, declaration_for(2));
    let mut line = (*older.itinerary.line).clone();
    line.points[1][0] += 0.01;
    older.itinerary.line = Arc::new(line.clone());
    let mut book = book();
    book.restore([current, older]);
    assert_eq!(
        *book.transit_of(&device(2)).expect("open").itinerary.line,
        line
    );
    assert!(!shares(
        &book.transit_of(&device(1)).expect("open"),
        &book.transit_of(&device(2)).expect("open")
    ));
    assert_eq!(book.itineraries(), 2);
}

#[test]
fn a_held_transit_is_packed_to_a_fraction_of_its_record_and_unpacks_whole() {
    let mut declaring = book();
    let mut records: Vec<Transit> = (1..=3)
        .map(|n| declared(&mut declaring, declaration_for(n)))
        .collect();
    // A figure that needs all 17 digits to read back as itself.
    records[1].goods[0].gross_kg = 361_765.674_381_111_63;
    let json: Vec<String> = records
        .iter()
        .map(|t| serde_json::to_string(t).expect("a transit encodes"))
        .collect();
    let read = json
        .iter()
        .map(|j| serde_json::from_str::<Transit>(j).expect("a stored transit decodes"));
    let mut book = book();
    book.restore(read);
    for (n, t) in (1..).zip(&records) {
        let held = book.transit_of(&device(n)).expect("open");
        assert_eq!(&held, t);
        // Decoded from JSON, a list of one has room for four; unpacked, it has room for one.
        assert_eq!(held.seals.capacity(), held.seals.len());
        assert_eq!(held.goods.capacity(), held.goods.len());
    }
    // The first record is the dictionary; the others pack to what they do not share with it.
    for t in &records[1..] {
        let mut bare = t.clone();
        bare.itinerary = Default::default();
        let record = serde_json::to_vec(&bare).expect("a transit encodes").len();
        let packed = book.packed_len(&t.id).expect("held");
        assert!(packed * 4 < record, "{packed} B packed of {record} B");
    }
}

#[test]
fn once_enough_records_are_held_every_one_is_packed_against_a_dictionary_trained_on_them() {
    let template: Transit = serde_json::from_str(&stored(1)[0]).expect("a stored transit decodes");
    let train_on = super::super::packed::TRAIN_ON;
    let records: Vec<Transit> = (1..=train_on + 40)
        .map(|n| {
            let mut t = template.clone();
            t.id = format!("CN-24CN0101-{n:06}").into();
            if let Some(route) = t.itinerary.route.as_mut() {
                route.id = t.id.shared();
            }
            t.reference = format!("24CN0101-{n:06}");
            t.devices = vec![device(n as u32)];
            t.seals[0].id = format!("CN-S-{n:04}");
            t.goods[0].gross_kg = 1_000.0 + n as f64 * 37.5;
            t
        })
        .collect();
    let mut book = book();
    book.restore(records[..train_on - 1].iter().cloned());
    assert_eq!(book.packed_against(&records[0].id), Some("first"));
    let before = book.packed_len(&records[1].id).expect("held");
    book.restore(records[train_on - 1..].iter().cloned());
    for t in &records {
        assert_eq!(book.packed_against(&t.id), Some("trained"), "{}", t.id);
        assert_eq!(book.transit(&t.id).as_ref(), Some(t));
    }
    let after = book.packed_len(&records[1].id).expect("held");
    assert!(
        after < before,
        "{after} B against the trained dictionary, {before} B before"
    );
}

#[test]
fn transits_shared_as_they_are_read_on_two_threads_are_held_once_by_the_book() {
    let stored = stored(4);
    let sharing = crate::transit::SharedOnRead::default();
    let decode = |half: &[String]| -> Vec<Transit> {
        half.iter()
            .map(|json| {
                let mut t: Transit = serde_json::from_str(json).expect("a stored transit decodes");
                sharing.take_in(&mut t);
                t
            })
            .collect()
    };
    let (first, second) = stored.split_at(2);
    let mut read = std::thread::scope(|scope| {
        let second = scope.spawn(|| decode(second));
        let mut read = decode(first);
        read.extend(second.join().expect("the other half decodes"));
        read
    });
    // Shared as soon as decoded, before the book sees them; lists at their size.
    assert!(read.windows(2).all(|w| shares(&w[0], &w[1])));
    assert!(read.iter().all(|t| t.seals.capacity() == t.seals.len()));
    let line = Arc::clone(&read[0].itinerary.line);
    let mut book = book();
    book.adopt_itineraries(sharing.into_inner());
    book.restore(read.drain(..));
    assert_eq!(book.itineraries(), 1);
    // The book kept the copy the reading threads shared: no transit holds another.
    for n in 1..=4 {
        let held = book.transit_of(&device(n)).expect("open");
        assert!(Arc::ptr_eq(&held.itinerary.line, &line));
    }
}
