//! The `hopluu` binary end to end: a real `hopluu serve` process on
//! loopback, over mutual TLS with certificates made by `hopluu cert`,
//! driven by the CLI as an office clerk would.
//!
//! # Layout
//! The clerk's commands against one node are here, and `reorg` holds
//! reorganisation decisions (a TOML plan, a sheet of moves); `cert` holds
//! `hopluu cert` and `serve` on its files, `tools` the `demo` and
//! `bench-sync` commands, and `tree` a running tree of nodes on which
//! `admin`, `edges`, `docs` and `conflicts` run the administrator's commands,
//! and `link_health` shows links gone silent, slow and lossy, or quiet.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod admin;
mod cert;
mod conflicts;
mod docs;
mod edges;
mod link_health;
mod reorg;
mod tools;
mod tree;

const BIN: &str = env!("CARGO_BIN_EXE_hopluu");

/// Runs `hopluu` with `args` (and none of the caller's HOPLUU_ settings).
fn hopluu(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HOPLUU_ADDR")
        .env_remove("HOPLUU_CA")
        .env_remove("HOPLUU_CERT")
        .env_remove("HOPLUU_KEY")
        .output()
        .expect("hopluu runs")
}

/// Runs `hopluu` with `args`; it must succeed. Returns stdout.
fn hopluu_ok(args: &[&str]) -> String {
    let out = hopluu(args);
    assert!(
        out.status.success(),
        "hopluu {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `hopluu` with `args`; it must fail. Returns stderr.
fn hopluu_fails(args: &[&str]) -> String {
    let out = hopluu(args);
    assert!(!out.status.success(), "hopluu {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A CA, node vn's certificate (for 127.0.0.1) and an admin's, made with
/// `hopluu cert` in `dir`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        let d = s(dir);
        hopluu_ok(&["cert", "ca", "--out", d]);
        hopluu_ok(&[
            "cert",
            "node",
            "--ca",
            d,
            "--node-id",
            "vn",
            "--unit",
            "vn",
            "--ip",
            "127.0.0.1",
            "--out",
            d,
        ]);
        hopluu_ok(&["cert", "admin", "--ca", d, "--name", "admin", "--out", d]);
        Certs {
            dir: dir.to_owned(),
        }
    }

    fn file(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_owned()
    }

    /// `hopluu serve`'s TLS flags for node vn.
    fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.file("vn.pem"),
            "--tls-key".into(),
            self.file("vn.key"),
            "--tls-ca".into(),
            self.file("ca.pem"),
        ]
    }

    /// The client flags for the admin.
    fn client_args(&self) -> Vec<String> {
        vec![
            "--ca".into(),
            self.file("ca.pem"),
            "--cert".into(),
            self.file("admin.pem"),
            "--key".into(),
            self.file("admin.key"),
        ]
    }
}

struct Node {
    child: Child,
    addr: String,
    certs: Certs,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The embedded default: the national node, which holds no personal
    /// data.
    fn start() -> Node {
        Node::start_with("")
    }

    /// Node vn with a node.toml that ends with `toml` (a `[replication]`
    /// section, say); `""` serves the embedded default.
    fn start_with(toml: &str) -> Node {
        let dir = tempfile::TempDir::new().unwrap();
        let certs = Certs::make(&dir.path().join("pki"));
        let data = dir.path().join("data");
        let place: Vec<String> = if toml.is_empty() {
            vec!["--data-dir".into(), s(&data).into()]
        } else {
            let file = dir.path().join("node.toml");
            std::fs::write(
                &file,
                format!(
                    "[node]\nid = \"vn\"\nunit = \"vn\"\n\
                     unit_name = \"Tổng Liên đoàn Lao động Việt Nam\"\n\
                     unit_kind = \"central\"\ndata_dir = {:?}\n\n{toml}",
                    s(&data)
                ),
            )
            .unwrap();
            vec!["--config".into(), s(&file).into()]
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(place)
            .args(certs.serve_args())
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
            addr: format!("https://{addr}"),
            certs,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--addr")
            .arg(&self.addr)
            .args(self.certs.client_args())
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

/// A node that holds private data (CCCD, ethnicity, religion) at every
/// depth: one office's own node. The national node of [`Node::start`]
/// refuses them.
const HOLDS_PRIVATE: &str = "[replication]\nprivate_depth = 0\n";

#[test]
fn a_clerk_adds_a_unit_and_a_member_and_reads_the_report() {
    let node = Node::start_with(HOLDS_PRIVATE);
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

    // Every report is as of a date: today by default, said in the JSON
    // and in the table's heading; another date with --as-of.
    let today = report["as_of"]
        .as_str()
        .expect("as_of in the JSON")
        .to_owned();
    assert_eq!(today.len(), 10, "{today}");
    assert!(
        table.starts_with(&format!("Members of vn, as of {today}\n")),
        "{table}"
    );
    let on = node.json(&["report", "members", "--as-of", &today]);
    assert_eq!(
        (&on["as_of"], &on["total"]),
        (&report["as_of"], &report["total"])
    );
    let works = node.ok(&["report", "works", "--unit", "hau-giang", "--as-of", &today]);
    assert!(
        works.starts_with(&format!("Dedicated works of hau-giang, as of {today}\n")),
        "{works}"
    );
    let err = node.fails(&[
        "report",
        "awards",
        "--unit",
        "hau-giang",
        "--as-of",
        "2000-01-01",
    ]);
    assert!(
        err.contains("as_of: unit hau-giang did not exist on 2000-01-01")
            && err.contains("not yet created"),
        "{err}"
    );
    // The node's own unit holds from the beginning of the records.
    let old = node.json(&["report", "members", "--as-of", "2000-01-01"]);
    assert_eq!(old["total"]["total"], "0", "{old}");
    let err = node.fails(&["report", "members", "--as-of", "01/07/2025"]);
    assert!(err.contains("as_of: expected a date"), "{err}");
    node.stop();
}

#[test]
fn import_reports_bad_rows_by_line_and_is_idempotent() {
    let node = Node::start_with(HOLDS_PRIVATE);
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
fn the_national_node_refuses_personal_data() {
    let node = Node::start();
    build_tree(&node);
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&[
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
    assert!(
        err.contains(
            "national_id: this node (depth 0) does not hold personal data; private_depth is 1"
        ),
        "{err}"
    );
    // A roster with a CCCD column: refused whole, naming the first line.
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("danh-sach.csv");
    std::fs::write(
        &file,
        "STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Số CCCD\n\
         1;Trần Thị Bình;02/11/1988;Nữ;HB-0002;01/09/2012;\n\
         2;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;001090012345\n",
    )
    .unwrap();
    let err = node.fails(&["import", "members", s(&file), "--unit", "hg-truong-a"]);
    assert!(
        err.contains("national_id: this node (depth 0) does not hold personal data")
            && err.contains("Line 3 carries it"),
        "{err}"
    );
    assert!(!err.contains("001090012345"), "{err}");
    assert_eq!(node.json(&["status"])["feed_position"], before);
    node.stop();
}

#[test]
fn a_member_is_deidentified_on_request() {
    let node = Node::start_with(HOLDS_PRIVATE);
    build_tree(&node);
    node.ok(&[
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
        "--position",
        "Tổ trưởng",
        "--national-id",
        "001090012345",
        "--ethnicity",
        "Kinh",
    ]);
    let out = node.ok(&[
        "members",
        "deidentify",
        "HG-0001",
        "--reason",
        "Đơn đề nghị của đoàn viên",
        "--reference",
        "15/ĐN",
    ]);
    assert!(out.contains("(de-identified)"), "{out}");
    assert!(out.contains("Đơn đề nghị của đoàn viên 15/ĐN"), "{out}");
    assert!(out.contains("hg-truong-a"), "{out}");
    for gone in ["Nguyễn Văn An", "1990-03-15", "Tổ trưởng", "001090012345"] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    let shown = node.json(&["members", "show", "--card", "HG-0001", "--private"]);
    assert_eq!(shown["full_name"], "(de-identified)");
    assert_eq!(shown["card_number"], "HG-0001");
    assert!(shown.get("private").is_none(), "{shown}");
    assert_eq!(shown["deidentified"]["reference"], "15/ĐN");
    let found = node.ok(&["members", "find", "nguyen van an"]);
    assert!(!found.contains("Nguyễn Văn An"), "{found}");
    // Once is enough: a second request is refused, nothing written.
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&["members", "deidentify", "HG-0001", "--reason", "lần hai"]);
    assert!(err.contains("was de-identified already"), "{err}");
    assert_eq!(node.json(&["status"])["feed_position"], before);
    let report = node.json(&["report", "members"]);
    assert_eq!(report["total"]["active"], "1", "still counted");
    node.stop();
}

#[test]
fn the_binary_explains_an_unreachable_node() {
    let err = hopluu_fails(&[
        "--insecure-plaintext",
        "--addr",
        "http://127.0.0.1:9",
        "status",
    ]);
    assert!(err.contains("cannot reach the node"), "{err}");
    // Plaintext is not tried without the flag, nor TLS without a
    // certificate.
    let err = hopluu_fails(&["--addr", "http://127.0.0.1:9", "status"]);
    assert!(
        err.contains("--addr") && err.contains("plaintext") && err.contains("--insecure-plaintext"),
        "{err}"
    );
    let err = hopluu_fails(&["--addr", "https://127.0.0.1:9", "status"]);
    assert!(err.contains("--ca"), "{err}");
}
