//! The tooling commands end to end: `hopluu bench-sync`, `hopluu
//! bench-writes` and `hopluu demo`, each on loopback in the `hopluu`
//! process.

use super::*;

#[test]
fn bench_sync_prints_latency_wire_and_aggregation_figures() {
    let out = Command::new(BIN)
        .args([
            "bench-sync",
            "--edits",
            "10",
            "--wire-edits",
            "2",
            "--burst",
            "5",
            "--batch-edits",
            "20",
            "--members",
            "300",
            "--provinces",
            "2",
            "--communes",
            "1",
            "--grassroots",
            "2",
            "--import-batch",
            "100",
            "--ingest-percent",
            "10",
            "--national",
            "sqlite",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("hopluu runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-sync failed: {stderr}\n{stdout}"
    );
    // The machine facts and the exact parameters.
    assert!(stdout.contains("cores"), "{stdout}");
    assert!(stdout.contains("--members 300 --provinces 2"), "{stdout}");
    // 1. Latency: every measured line has its edit count and percentiles.
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
            .to_owned()
    };
    let national = line("district -> national committed");
    let cells: Vec<&str> = national.split_whitespace().collect();
    assert!(cells.contains(&"10"), "10 edits timed: {national}");
    assert_eq!(
        national.matches(" ms").count(),
        4,
        "p50, p90, p99 and max: {national}"
    );
    assert!(line("floor: local commit at the district (AddMember").contains(" ms"));
    assert!(line("district -> province committed").contains(" ms"));
    assert!(
        stdout.contains("aim district -> national: p50 <= 5 ms"),
        "{stdout}"
    );
    // 2. Bytes on the wire: a warm edit crosses both links both ways.
    let warm = line("warm UpdateMember");
    let bytes: Vec<u64> = warm
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    // edits, d->p up, d->p down, p->n up, p->n down, ...
    assert!(bytes.len() >= 5, "{warm}");
    assert_eq!(bytes[0], 2, "{warm}");
    assert!(
        bytes[1..5].iter().all(|b| *b > 0),
        "bytes in every direction of both links: {warm}"
    );
    assert!(line("5 UpdateMember at once").contains(" ms"));
    assert!(line("one ImportMembers updating 20 positions").contains(" ms"));
    assert!(
        stdout.contains("aim: a warm single edit <= 600 B"),
        "{stdout}"
    );
    // 3. Initial aggregation: all members counted at the national node,
    // with a rate and its peak RSS.
    let agg = line("300 ");
    assert!(agg.contains("MiB"), "peak RSS read from /proc: {agg}");
    assert!(agg.contains(" s"), "{agg}");
    assert!(stdout.contains("members/s"), "{stdout}");
    // The national store, every byte, and by table.
    let store = line("national store: ");
    assert!(store.contains(" B/member; by table"), "{store}");
    assert!(store.contains("members "), "{store}");
    assert!(store.contains("docs "), "{store}");
    // The floor measured in the same run, and the ratio to it.
    let floor = line("floor: the same ");
    assert!(
        floor.contains(" documents decoded, checked, projected and stored"),
        "{floor}"
    );
    let ratio: f64 = floor
        .split("aggregation / floor = ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {floor}"));
    assert!(ratio > 0.0, "{floor}");
    // 4. Steady ingest: every 10th member of each province's 150 updated
    // at once, each edit shown at the national node.
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.starts_with(
                "4. Steady ingest: 2 provinces at once each import an update of 10 % of their members",
            )
        })
        .unwrap_or_else(|| panic!("no steady ingest in:\n{stdout}"));
    let row = lines.get(at + 3).copied().unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.first(), Some(&"30"), "30 edits: {row}");
    assert_eq!(row.matches(" s ").count(), 2, "{row}");
    assert!(row.trim_end().ends_with(" ms"), "{row}");
}

/// `hopluu demo` as a user runs it: a federation on loopback, a province
/// cut off from the national node while both sides write, then healed. The
/// national count must miss the cut province's new members while the link
/// is down and hold every member after healing; the data stays on disk.
#[test]
fn the_demo_cuts_a_province_off_and_converges_after_healing() {
    use std::io::Read;
    use std::time::{Duration, Instant};

    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("demo");
    let mut child = Command::new(BIN)
        .args(["demo", "--members", "300", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hopluu demo starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            pipe.read_to_string(&mut s).unwrap();
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "hopluu demo did not finish within 240 s; output so far:\n{}\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = stdout.join().unwrap();
    let err = stderr.join().unwrap();
    assert!(
        status.success(),
        "hopluu demo failed ({status}):\n{out}\n{err}"
    );

    for name in [
        "Liên đoàn Lao động tỉnh Hậu Giang",
        "Liên đoàn Lao động tỉnh Lai Châu",
        "Liên đoàn Lao động tỉnh Kiên Giang",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    // The sections, in order.
    let section = |title: &str| -> &str {
        let start = out
            .find(&format!("== {title}"))
            .unwrap_or_else(|| panic!("no section {title:?}:\n{out}"));
        let rest = &out[start + 3..];
        &rest[..rest.find("\n== ").unwrap_or(rest.len())]
    };
    let before = section("before");
    let during = section("while kien-giang is cut off");
    let after = section("after");
    assert!(
        out.find("== before") < out.find("== while") && out.find("== while") < out.find("== after"),
        "{out}"
    );

    // "national members: N (created so far: M)", once per section.
    let national = |s: &str| -> (u64, u64) {
        let line = s
            .lines()
            .find(|l| l.starts_with("national members: "))
            .unwrap_or_else(|| panic!("no national count in:\n{s}"));
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 2, "{line}");
        (numbers[0], numbers[1])
    };
    let (seen_before, created_before) = national(before);
    let (seen_during, created_during) = national(during);
    let (seen_after, created_after) = national(after);
    assert_eq!((seen_before, created_before), (300, 300), "{before}");
    assert!(created_during > created_before, "{during}");
    assert_eq!(
        seen_during, seen_before,
        "vn saw members written below the cut link:\n{during}"
    );
    assert_eq!(created_after, created_during, "{after}");
    assert_eq!(
        seen_after, created_after,
        "vn lacks members after healing:\n{after}"
    );

    // Kiên Giang's row of the national members report: the active count.
    let kien_giang = |s: &str| -> u64 {
        let line = s
            .lines()
            .find(|l| l.starts_with("kien-giang  "))
            .unwrap_or_else(|| panic!("no kien-giang row in:\n{s}"));
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        cells[2].parse().unwrap_or_else(|_| panic!("{line}"))
    };
    assert_eq!(kien_giang(during), kien_giang(before), "{during}");
    assert_eq!(
        kien_giang(after),
        kien_giang(before) + (created_during - created_before),
        "{after}"
    );

    // The link table: the cut link down while cut, every link in step after.
    let link = |s: &str, name: &str| -> String {
        s.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no link {name} in:\n{s}"))
            .to_owned()
    };
    assert!(link(during, "kien-giang -> vn").contains("CUT"), "{during}");
    assert!(during.contains("6 of 7 links in step"), "{during}");
    assert!(!link(after, "kien-giang -> vn").contains("CUT"), "{after}");
    assert!(after.contains("7 of 7 links in step"), "{after}");
    // `hopluu check` on every link after healing: one line each, every
    // child against its parent, each comparing documents and all in step.
    let checks: Vec<&str> = after
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" documents compared, "))
        .collect();
    assert_eq!(checks.len(), 7, "{after}");
    for l in &checks {
        assert!(l.ends_with(", all in step"), "{after}");
        let compared: u64 = l
            .split(": ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        assert!(compared > 0, "{l}");
    }
    assert!(
        checks.iter().any(|l| l.starts_with("kien-giang and vn: ")),
        "{after}"
    );

    for node in ["vn", "hau-giang", "lai-chau", "kien-giang", "kg-phu-quoc"] {
        let db = dir.join(node).join("hopluu.sqlite");
        assert!(db.is_file(), "{} missing", db.display());
        let toml = std::fs::read_to_string(dir.join(node).join("node.toml")).unwrap();
        assert!(toml.contains("[tls]"), "{toml}");
        assert!(dir.join("pki").join(format!("{node}.pem")).is_file());
    }
    // The command line's certificate, and how to use it.
    assert!(dir.join("pki/admin.pem").is_file() && dir.join("pki/admin.key").is_file());
    assert!(out.contains("export HOPLUU_CA="), "{out}");

    // The directory is not reused without --fresh.
    let again = Command::new(BIN)
        .args(["demo", "--members", "300", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("not empty") && err.contains("--fresh"),
        "{err}"
    );
}

#[test]
fn bench_writes_prints_the_cost_of_a_write_along_its_records_growth() {
    let out = Command::new(BIN)
        .args([
            "bench-writes",
            "--initiatives",
            "25",
            "--members",
            "120",
            "--batch",
            "10",
            "--backends",
            "sqlite",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("hopluu runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-writes failed: {stderr}\n{stdout}"
    );
    assert!(stdout.contains("25 initiatives recorded"), "{stdout}");
    // A row per checkpoint: the 10th and the last, each with its ratio.
    let rows = |what: &str| -> Vec<Vec<String>> {
        let from = stdout
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in:\n{stdout}"));
        stdout[from..]
            .lines()
            .skip(3)
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("sqlite"))
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    let pairs = rows("record + validate");
    assert_eq!(pairs.len(), 2, "{stdout}");
    assert_eq!(pairs[0][0], "10");
    assert_eq!(pairs[1][0], "25");
    assert_eq!(pairs[0][3], "1.00", "the first point's ratio: {stdout}");
    let batches = rows("import batch of 10");
    assert_eq!(batches.len(), 2, "{stdout}");
    assert_eq!(batches[0][0], "10");
    assert_eq!(batches[1][0], "12");
    assert!(stdout.contains("at most 1.5 times"), "{stdout}");
}
