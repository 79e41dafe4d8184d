//! The `hopluu` binary end to end: a real `hopluu serve` process on
//! loopback, driven by the CLI as an office clerk would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hopluu");

struct Node {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::TempDir::new().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hopluu serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        assert!(line.contains("listening on"), "{line}");
        Node {
            child,
            addr: format!("http://{addr}"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--addr")
            .arg(&self.addr)
            .args(args)
            .output()
            .expect("hopluu runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hopluu {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "hopluu {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("--json prints JSON")
    }

    /// Stops the node with SIGTERM, as systemd does; it must exit cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "node exited with {exit}");
    }
}

fn build_tree(node: &Node) {
    node.ok(&[
        "units",
        "create",
        "--id",
        "hau-giang",
        "--name",
        "LĐLĐ tỉnh Hậu Giang",
        "--kind",
        "provincial",
        "--parent",
        "vn",
    ]);
    node.ok(&[
        "units",
        "create",
        "--id",
        "hg-truong-a",
        "--name",
        "CĐCS Trường THCS Hòa Bình",
        "--kind",
        "grassroots",
        "--parent",
        "hau-giang",
    ]);
}

#[test]
fn a_clerk_adds_a_unit_and_a_member_and_reads_the_report() {
    let node = Node::start();
    let status = node.ok(&["status"]);
    assert!(
        status.contains("Tổng Liên đoàn Lao động Việt Nam"),
        "{status}"
    );
    build_tree(&node);
    let listed = node.ok(&["units", "list"]);
    assert!(
        listed.contains("hau-giang") && listed.contains("CĐCS Trường THCS Hòa Bình"),
        "{listed}"
    );

    let added = node.json(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Nguyễn Văn An",
        "--birth-date",
        "1990-03-15",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2015-05-01",
        "--national-id",
        "001090012345",
    ]);
    assert_eq!(added["status"], "MEMBER_STATUS_ACTIVE");
    let id = added["id"].as_str().unwrap().to_owned();

    // Bad input: the field and the reason, a failing exit code, nothing written.
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Trần Thị Bình",
        "--birth-date",
        "1992-01-01",
        "--gender",
        "female",
        "--card",
        "HG-0002",
        "--joined-on",
        "2016-01-01",
        "--national-id",
        "12345",
    ]);
    assert!(
        err.contains("national_id: must be exactly 12 digits"),
        "{err}"
    );
    let err = node.fails(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Lê Văn Cường",
        "--birth-date",
        "1990-01-01",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2016-01-01",
    ]);
    assert!(
        err.contains("card_number") && err.contains("already held"),
        "{err}"
    );
    assert_eq!(node.json(&["status"])["feed_position"], before);

    let shown = node.json(&["members", "show", &id, "--private"]);
    assert_eq!(shown["private"]["national_id"], "001090012345");
    let found = node.ok(&["members", "find", "nguyen van an"]);
    assert!(found.contains("Nguyễn Văn An"), "{found}");

    let report = node.json(&["report", "members"]);
    assert_eq!(report["total"]["active"], "1");
    let table = node.ok(&["report", "members"]);
    assert!(table.contains("LĐLĐ tỉnh Hậu Giang"), "{table}");
    node.stop();
}

#[test]
fn import_reports_bad_rows_by_line_and_is_idempotent() {
    let node = Node::start();
    build_tree(&node);
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("danh-sach.csv");
    std::fs::write(
        &file,
        "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HÒA BÌNH\n\
         STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Chức vụ;Số CCCD\n\
         1;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;Tổ trưởng;001090012345\n\
         2;Trần Thị Bình;02/11/1988;Nữ;HB-0002;01/09/2012;Giáo viên;\n\
         3;Lê Văn Cường;31/02/1985;Nam;HB-0003;01/05/2015;;\n\
         4;Phạm Thị Dung;01/01/1995;Nữ;HB-0004;01/05/2015;;12345\n\
         5;Hoàng Văn Em;01/01/1995;Nam;HB-0002;01/05/2016;;\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = node.ok(&["import", "members", path, "--unit", "hg-truong-a"]);
    assert!(
        out.contains("5 rows: 2 created, 0 updated, 0 unchanged, 3 rejected"),
        "{out}"
    );
    // Line numbers as the clerk sees them (title and header count).
    assert!(
        out.lines()
            .any(|l| l.starts_with("5 ") && l.contains("birth_date")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("6 ") && l.contains("national_id")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("7 ") && l.contains("card_number") && l.contains("line 4")),
        "{out}"
    );

    // Re-running the same file changes nothing.
    let again = node.ok(&["import", "members", path, "--unit", "hg-truong-a"]);
    assert!(
        again.contains("0 created, 0 updated, 2 unchanged, 3 rejected"),
        "{again}"
    );
    let listed = node.json(&["members", "list", "--unit", "hg-truong-a"]);
    assert_eq!(listed["total"], "2");

    // A file without a unit column needs --unit.
    let err = node.fails(&["import", "members", path]);
    assert!(err.contains("--unit"), "{err}");
    node.stop();
}

#[test]
fn the_binary_explains_an_unreachable_node() {
    let out = Command::new(BIN)
        .args(["--addr", "http://127.0.0.1:9", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the node"), "{err}");
}
