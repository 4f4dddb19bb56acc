use bytes::Bytes;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A batch of `lines` lines of 10 bytes each.
fn batch(tag: char, lines: usize, first_enqueued_ms: i64) -> Batch {
    let body: String = (0..lines)
        .map(|i| format!("m,t={tag} f={}\n", i % 10))
        .collect();
    Batch {
        body: Bytes::from(body),
        lines,
        first_enqueued_ms,
    }
}

fn ids(store: &SpillStore) -> Vec<u64> {
    store.segments.iter().map(|s| s.id).collect()
}

#[test]
fn segments_are_replayed_oldest_first_after_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (mut store, _) = SpillStore::open(dir.path(), 1 << 20)?;
        for (tag, t) in [('a', 100), ('b', 200), ('c', 300)] {
            store.append(&batch(tag, 3, t), None)?;
        }
    }
    let (mut store, evicted) = SpillStore::open(dir.path(), 1 << 20)?;
    assert_eq!(
        (evicted, store.len(), store.lines(), store.bytes()),
        (Evicted::default(), 3, 9, 90)
    );
    let mut replayed = Vec::new();
    while let Some(seg) = store.oldest() {
        replayed.push((String::from_utf8(store.read(&seg)?)?, seg.first_enqueued_ms));
        store.remove(seg.id)?;
    }
    let firsts: Vec<_> = replayed.iter().map(|(body, t)| (&body[..6], *t)).collect();
    assert_eq!(firsts, [("m,t=a ", 100), ("m,t=b ", 200), ("m,t=c ", 300)]);
    assert_eq!(fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn new_segments_after_a_restart_sort_after_the_old_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (mut store, _) = SpillStore::open(dir.path(), 1 << 20)?;
        store.append(&batch('a', 1, 1), None)?;
        store.append(&batch('b', 1, 2), None)?;
    }
    let (mut store, _) = SpillStore::open(dir.path(), 1 << 20)?;
    let (seg, _) = store.append(&batch('c', 1, 3), None)?;
    assert_eq!((ids(&store), seg.id), (vec![0, 1, 2], 2));
    Ok(())
}

#[test]
fn beyond_the_budget_the_oldest_segments_are_dropped_and_every_line_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, _) = SpillStore::open(dir.path(), 100)?;
    store.append(&batch('a', 4, 1), None)?;
    store.append(&batch('b', 3, 2), None)?;
    store.append(&batch('c', 2, 3), None)?;
    let (_, evicted) = store.append(&batch('d', 5, 4), None)?;
    assert_eq!(
        evicted,
        Evicted {
            segments: 1,
            lines: 4
        }
    );
    assert_eq!(
        (ids(&store), store.bytes(), store.lines()),
        (vec![1, 2, 3], 100, 10)
    );
    let (_, evicted) = store.append(&batch('e', 4, 5), None)?;
    assert_eq!(
        evicted,
        Evicted {
            segments: 2,
            lines: 5
        }
    );
    assert_eq!(
        (ids(&store), store.bytes(), store.lines()),
        (vec![3, 4], 90, 9)
    );
    Ok(())
}

#[test]
fn the_segment_being_replayed_is_not_evicted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, _) = SpillStore::open(dir.path(), 100)?;
    store.append(&batch('a', 4, 1), None)?;
    store.append(&batch('b', 4, 2), None)?;
    let (_, evicted) = store.append(&batch('c', 4, 3), Some(0))?;
    assert_eq!((evicted.lines, ids(&store)), (4, vec![0, 2]));
    Ok(())
}

#[test]
fn a_batch_larger_than_the_whole_budget_is_dropped_instead_of_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, _) = SpillStore::open(dir.path(), 50)?;
    let (_, evicted) = store.append(&batch('a', 6, 1), None)?;
    assert_eq!(
        (
            evicted.lines,
            store.len(),
            fs::read_dir(dir.path())?.count()
        ),
        (6, 0, 0)
    );
    Ok(())
}

#[test]
fn a_lowered_budget_drops_the_oldest_segments_when_opening() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (mut store, _) = SpillStore::open(dir.path(), 1000)?;
        for (tag, t) in [('a', 1), ('b', 2), ('c', 3)] {
            store.append(&batch(tag, 3, t), None)?;
        }
    }
    let (store, evicted) = SpillStore::open(dir.path(), 60)?;
    assert_eq!(
        (evicted, ids(&store)),
        (
            Evicted {
                segments: 1,
                lines: 3
            },
            vec![1, 2]
        )
    );
    Ok(())
}

#[test]
fn a_write_interrupted_by_a_crash_leaves_no_segment_behind() -> TestResult {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("00000000000000000000-3-1.tmp"), "m f=1")?;
    fs::write(dir.path().join("notes.txt"), "kept")?;
    let (store, _) = SpillStore::open(dir.path(), 1000)?;
    assert!(store.is_empty());
    assert!(!dir.path().join("00000000000000000000-3-1.tmp").exists());
    assert!(dir.path().join("notes.txt").exists());
    Ok(())
}
