//! Roster buckets and the members a diff touches: where a new member is
//! placed, how rosters split as they grow, and which members a change
//! between two heads names.

use std::collections::{BTreeSet, HashMap};

use automerge::Automerge;
use hopluu_model::DocId;
use hopluu_model::DocMeta;
use hopluu_model::ids::stable_hash;
use hopluu_model::member::{self, MemberStatus, MemberUpdate, PrivateData};

use crate::members::{ids, read};
use crate::{d, joining, mid, node_a, reload, roster, today, uid};

fn touched(doc: &Automerge, before: &[automerge::ChangeHash]) -> Option<BTreeSet<String>> {
    member::touched_members(&doc.diff(before, &doc.get_heads()))
}

// --- buckets -------------------------------------------------------------

fn h(id: &str) -> u64 {
    stable_hash(id)
}

#[test]
fn members_fill_bucket_zero_then_spread_by_hash_among_open_buckets() {
    let size = 4;
    let ids: Vec<_> = (0..64).map(|i| mid(&format!("m{i:03}"))).collect();
    // Bucket 0 takes everyone until it is full.
    for n in 0..size {
        for id in &ids {
            let b = member::choose_bucket(id, size, |b| if b == 0 { n.max(1) } else { 0 });
            assert_eq!(b, 0, "{id} with {n} in bucket 0");
        }
    }
    // Buckets 0..k all full: bucket k opens.
    for k in 1..=6u32 {
        for id in &ids {
            let b = member::choose_bucket(id, size, |b| if b < k { size } else { 0 });
            assert_eq!(b, k, "{id}, first {k} buckets full");
        }
    }
    // k open buckets with room: the hash picks among them (h mod k).
    let mut seen = BTreeSet::new();
    for k in 2..=5u32 {
        for id in &ids {
            let b = member::choose_bucket(id, size, |b| if b < k { 1 } else { 0 });
            assert_eq!(u64::from(b), h(id.as_str()) % u64::from(k), "{id}");
            seen.insert(b);
        }
    }
    assert!(seen.len() >= 4, "spread: {seen:?}");
    // The hashed bucket full: the next one with room, wrapping.
    for id in &ids {
        let start = (h(id.as_str()) % 3) as u32;
        let b = member::choose_bucket(id, size, |b| {
            if b >= 3 {
                0
            } else if b == start {
                size
            } else {
                1
            }
        });
        assert_eq!(b, (start + 1) % 3, "{id}");
    }
    // A size of zero counts as one.
    assert_eq!(member::choose_bucket(&ids[0], 0, |_| 0), 0);
    assert_eq!(
        member::choose_bucket(&ids[0], 0, |b| usize::from(b == 0)),
        1
    );
}

/// Places `n` members with bucket size `size`, as a node would: each goes
/// to `choose_bucket` given the counts so far.
fn simulate(n: usize, size: usize) -> (HashMap<u32, usize>, Vec<u32>) {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    let mut placed = Vec::with_capacity(n);
    for i in 0..n {
        let id = mid(&format!("m{i:05}"));
        let b = member::choose_bucket(&id, size, |b| counts.get(&b).copied().unwrap_or(0));
        let c = counts.entry(b).or_default();
        assert!(*c < size, "member {i} placed in full bucket {b}");
        *c += 1;
        placed.push(b);
    }
    (counts, placed)
}

#[test]
fn real_placement_keeps_every_bucket_within_its_size() {
    let (counts, placed) = simulate(200, 4);
    assert!(counts.values().all(|c| *c <= 4), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 200);
    assert_eq!(counts[&0], 4, "bucket 0 fills first");
    assert!(placed[..4].iter().all(|b| *b == 0));
    assert!(
        placed[4..].iter().all(|b| *b != 0),
        "then it is never chosen"
    );
    let buckets = counts.len();
    assert!(
        (50..=100).contains(&buckets),
        "200 members of 4 per bucket in {buckets} buckets"
    );

    // Deterministic: the same arrivals give the same placement.
    let (again, placed_again) = simulate(200, 4);
    assert_eq!(again, counts);
    assert_eq!(placed_again, placed);

    // The number of buckets grows about like n / size.
    let mut ratios = Vec::new();
    for n in [100, 200, 400, 800, 1600] {
        let (counts, _) = simulate(n, 4);
        assert!(counts.values().all(|c| *c <= 4));
        let ratio = counts.len() as f64 / (n as f64 / 4.0);
        assert!(
            (1.0..=2.0).contains(&ratio),
            "n={n}: {} buckets",
            counts.len()
        );
        ratios.push(ratio);
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    assert!(hi / lo < 1.25, "linear growth: {ratios:?}");

    // At the design's size an average roster is one document.
    let (counts, _) = simulate(80, 1000);
    assert_eq!(counts.len(), 1);
}

#[test]
fn large_rosters_split_into_about_n_over_size_buckets() {
    for n in [2_500, 10_000] {
        let (counts, _) = simulate(n, 1000);
        let ideal = n.div_ceil(1000);
        assert!(
            counts.len() <= 2 * ideal,
            "{n} members in {} buckets (ideal {ideal}); sizes {:?}",
            counts.len(),
            {
                let mut v: Vec<_> = counts.values().copied().collect();
                v.sort_unstable();
                v
            }
        );
    }
}

#[test]
fn members_land_in_the_roster_document_of_their_bucket() {
    // Real documents: each bucket is its own roster doc, placed by count().
    let unit = uid("g1");
    let mut docs: HashMap<u32, Automerge> = HashMap::new();
    for i in 0..40 {
        let m = joining(
            &format!("m{i:03}"),
            "g1",
            &format!("Đoàn viên {i}"),
            &format!("HG-{i:04}"),
        );
        let b = member::choose_bucket(&m.id, 8, |b| docs.get(&b).map(member::count).unwrap_or(0));
        let doc = docs.entry(b).or_default();
        member::add(doc, &node_a(), &unit, b, &m).unwrap();
    }
    assert_eq!(docs.values().map(member::count).sum::<usize>(), 40);
    for (b, doc) in &docs {
        assert!(member::count(doc) <= 8);
        let meta = DocMeta::read(member::roster_doc(&unit, *b), &reload(doc)).unwrap();
        assert_eq!(meta.owner, unit);
        assert_eq!(
            meta.id,
            DocId::Roster {
                unit: unit.clone(),
                bucket: *b
            }
        );
    }
}

// --- touched members ----------------------------------------------------

#[test]
fn touched_members_names_exactly_the_members_edited_between_two_heads() {
    let m1 = joining("m1", "g1", "Lê Thị Hoa", "HG-0001");
    let m2 = joining("m2", "g1", "Trần Văn Bình", "HG-0002");
    let mut doc = roster("g1", &[m1, m2]);
    assert_eq!(touched(&doc, &[]), Some(ids(&["m1", "m2"])), "from nothing");
    let h0 = doc.get_heads();
    assert_eq!(touched(&doc, &h0), Some(BTreeSet::new()), "no change");

    member::add(
        &mut doc,
        &node_a(),
        &uid("g1"),
        0,
        &joining("m3", "g1", "C", "HG-0003"),
    )
    .unwrap();
    assert_eq!(touched(&doc, &h0), Some(ids(&["m3"])), "add");
    let h1 = doc.get_heads();

    member::update(
        &mut doc,
        &node_a(),
        &mid("m1"),
        &MemberUpdate {
            full_name: Some("Lê Thị Hoà".into()),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
    assert_eq!(touched(&doc, &h1), Some(ids(&["m1"])), "update");
    let h2 = doc.get_heads();

    member::end(
        &mut doc,
        &node_a(),
        &mid("m2"),
        MemberStatus::Transferred,
        "",
        d("2025-05-05"),
        Some(&uid("g2")),
    )
    .unwrap();
    assert_eq!(touched(&doc, &h2), Some(ids(&["m2"])), "end");
    assert_eq!(
        touched(&doc, &h1),
        Some(ids(&["m1", "m2"])),
        "update and end"
    );
    assert_eq!(touched(&doc, &h0), Some(ids(&["m1", "m2", "m3"])));
    let h3 = doc.get_heads();

    // Coming back: the old record is made active again.
    let out = read(&doc, "m2");
    member::transfer_in(
        &mut doc,
        &node_a(),
        &uid("g1"),
        0,
        &out,
        "",
        d("2025-06-06"),
    )
    .unwrap();
    assert_eq!(touched(&doc, &h3), Some(ids(&["m2"])), "transfer in");

    // The diff of a loaded copy says the same.
    let loaded = reload(&doc);
    assert_eq!(
        member::touched_members(&loaded.diff(&h1, &loaded.get_heads())),
        Some(ids(&["m1", "m2"]))
    );
    // And backwards (undoing the changes) too.
    assert_eq!(
        member::touched_members(&doc.diff(&doc.get_heads(), &h1)),
        Some(ids(&["m1", "m2"]))
    );
}

#[test]
fn touched_members_works_on_private_rosters() {
    let unit = uid("g1");
    let p = PrivateData::parse("001190004005", "Kinh", "").unwrap();
    let mut doc = Automerge::new();
    member::put_private(&mut doc, &node_a(), &unit, 0, &mid("m1"), &p).unwrap();
    assert_eq!(touched(&doc, &[]), Some(ids(&["m1"])));
    let h0 = doc.get_heads();
    member::put_private(&mut doc, &node_a(), &unit, 0, &mid("m2"), &p).unwrap();
    assert_eq!(touched(&doc, &h0), Some(ids(&["m2"])));
    let h1 = doc.get_heads();
    let q = PrivateData::parse("", "Tày", "").unwrap();
    member::put_private(&mut doc, &node_a(), &unit, 0, &mid("m1"), &q).unwrap();
    assert_eq!(touched(&doc, &h1), Some(ids(&["m1"])));
}

#[test]
fn touched_members_gives_up_on_edits_outside_the_members() {
    use automerge::transaction::Transactable;
    let mut doc = roster("g1", &[joining("m1", "g1", "A", "HG-0001")]);
    let h0 = doc.get_heads();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let list = tx.put_object(automerge::ROOT, "addressed", automerge::ObjType::List)?;
        tx.insert(&list, 0, "hg")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        touched(&doc, &h0),
        None,
        "an unknown edit means: re-read all"
    );
}
